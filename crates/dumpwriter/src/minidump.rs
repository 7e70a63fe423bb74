//! The minidump container: header, stream directory and the streams heapdiag reads.
//!
//! Layouts follow `minidumpapiset.h` (`MINIDUMP_HEADER`, `MINIDUMP_DIRECTORY`, `MINIDUMP_THREAD`,
//! `MINIDUMP_MODULE` (108 bytes, packed), `MINIDUMP_MEMORY_DESCRIPTOR[64]`, `MINIDUMP_SYSTEM_INFO`,
//! `MINIDUMP_MISC_INFO`, `MINIDUMP_UNLOADED_MODULE`, `MINIDUMP_MEMORY_INFO_LIST` with its 16-byte
//! header, `MINIDUMP_HANDLE_DATA_STREAM`). The file is laid out as Windows' dbghelp lays out a full
//! dump: header, directory, streams, strings, then all memory data last.

use crate::memory::{Content, ProcessMemory};
use std::io::{self, Write};

/// `MINIDUMP_SIGNATURE` ("MDMP").
pub const SIGNATURE: u32 = 0x504d_444d;
/// `MINIDUMP_VERSION` in the low 16 bits; dbghelp puts its build in the high 16 bits.
pub const VERSION: u32 = 0xa793;

/// Stream type numbers (`MINIDUMP_STREAM_TYPE`).
pub mod stream {
    /// ThreadListStream.
    pub const THREAD_LIST: u32 = 3;
    /// ModuleListStream.
    pub const MODULE_LIST: u32 = 4;
    /// MemoryListStream.
    pub const MEMORY_LIST: u32 = 5;
    /// SystemInfoStream.
    pub const SYSTEM_INFO: u32 = 7;
    /// Memory64ListStream.
    pub const MEMORY64_LIST: u32 = 9;
    /// HandleDataStream.
    pub const HANDLE_DATA: u32 = 12;
    /// UnloadedModuleListStream.
    pub const UNLOADED_MODULE_LIST: u32 = 14;
    /// MiscInfoStream.
    pub const MISC_INFO: u32 = 15;
    /// MemoryInfoListStream.
    pub const MEMORY_INFO_LIST: u32 = 16;
}

/// Processor architecture of the dumped process's OS (`PROCESSOR_ARCHITECTURE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// `PROCESSOR_ARCHITECTURE_INTEL` (0): a 32-bit Windows or a 32-bit dumper.
    X86,
    /// `PROCESSOR_ARCHITECTURE_AMD64` (9).
    Amd64,
}

impl Arch {
    /// Pointer width of the dump's native world.
    pub fn bits(self) -> u32 {
        match self {
            Arch::X86 => 32,
            Arch::Amd64 => 64,
        }
    }
}

/// Which stream carries captured memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryListKind {
    /// `MemoryListStream` (5): what minidumps (`procdump` without `-ma`) carry.
    List,
    /// `Memory64ListStream` (9): what full-memory dumps (`procdump -ma`) carry.
    List64,
}

/// A loaded module.
#[derive(Clone, Debug)]
pub struct ModuleSpec {
    /// Full path as Windows records it.
    pub name: String,
    /// Image base.
    pub base: u64,
    /// SizeOfImage.
    pub size: u32,
    /// PE TimeDateStamp.
    pub timestamp: u32,
    /// File version a.b.c.d, written as `VS_FIXEDFILEINFO`.
    pub version: Option<[u16; 4]>,
    /// CodeView PDB 7.0 record: GUID bytes (as stored), age, PDB path.
    pub pdb: Option<([u8; 16], u32, String)>,
}

/// A thread.
#[derive(Clone, Debug)]
pub struct ThreadSpec {
    /// Thread id.
    pub id: u32,
    /// Address of its (native) TEB.
    pub teb: u64,
    /// Start of the stack memory the dump captured (usually the current stack pointer's page).
    pub stack_start: u64,
    /// Bytes of stack captured.
    pub stack_size: u64,
    /// Registers of its context record by name (`esp`, `eax`…, or `rsp`, `rax`…, `r8`…); the
    /// others are zero.
    pub registers: Vec<(&'static str, u64)>,
}

/// Where the registers are in an x86 `CONTEXT` (and a WoW64 thread's `WOW64_CONTEXT`).
pub const X86_REGISTERS: &[(&str, usize)] = &[
    ("edi", 0x9c),
    ("esi", 0xa0),
    ("ebx", 0xa4),
    ("edx", 0xa8),
    ("ecx", 0xac),
    ("eax", 0xb0),
    ("ebp", 0xb4),
    ("eip", 0xb8),
    ("esp", 0xc4),
];

/// Where the registers are in an AMD64 `CONTEXT`.
pub const AMD64_REGISTERS: &[(&str, usize)] = &[
    ("rax", 0x78),
    ("rcx", 0x80),
    ("rdx", 0x88),
    ("rbx", 0x90),
    ("rsp", 0x98),
    ("rbp", 0xa0),
    ("rsi", 0xa8),
    ("rdi", 0xb0),
    ("r8", 0xb8),
    ("r9", 0xc0),
    ("r10", 0xc8),
    ("r11", 0xd0),
    ("r12", 0xd8),
    ("r13", 0xe0),
    ("r14", 0xe8),
    ("r15", 0xf0),
    ("rip", 0xf8),
];

/// A `CONTEXT` record of `arch` (x86: 0x2CC bytes, `CONTEXT_i386 | CONTROL | INTEGER |
/// SEGMENTS`; AMD64: 0x4D0 bytes, `CONTEXT_AMD64 | CONTROL | INTEGER | FLOATING_POINT`) holding
/// `registers`. Panics on a register name the architecture does not have (a fixture error).
pub fn context_record(arch: Arch, registers: &[(&str, u64)]) -> Vec<u8> {
    let (mut c, table) = match arch {
        Arch::X86 => {
            let mut c = vec![0u8; 0x2cc];
            c[..4].copy_from_slice(&0x0001_0007u32.to_le_bytes());
            (c, X86_REGISTERS)
        }
        Arch::Amd64 => {
            let mut c = vec![0u8; 0x4d0];
            c[0x30..0x34].copy_from_slice(&0x0010_000bu32.to_le_bytes());
            (c, AMD64_REGISTERS)
        }
    };
    for (name, value) in registers {
        let at = table
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no register {name} in a {arch:?} context"))
            .1;
        match arch {
            Arch::X86 => c[at..at + 4].copy_from_slice(&(*value as u32).to_le_bytes()),
            Arch::Amd64 => c[at..at + 8].copy_from_slice(&value.to_le_bytes()),
        }
    }
    c
}

/// One handle of the HandleData stream.
#[derive(Clone, Debug)]
pub struct HandleSpec {
    /// Handle value.
    pub handle: u64,
    /// Object type name, e.g. "Event".
    pub type_name: String,
}

/// Everything a synthetic dump contains.
#[derive(Clone, Debug)]
pub struct MinidumpBuilder {
    /// Processor architecture of the dump.
    pub arch: Arch,
    /// OS major, minor, build.
    pub os: (u32, u32, u32),
    /// CSD version string ("Service Pack 1"), empty for none.
    pub csd: String,
    /// `MINIDUMP_TYPE` flags in the header.
    pub flags: u64,
    /// Header TimeDateStamp.
    pub timestamp: u32,
    /// Process id (MiscInfo stream); `None` writes no MiscInfo.
    pub pid: Option<u32>,
    /// Loaded modules.
    pub modules: Vec<ModuleSpec>,
    /// Unloaded modules (name, base, size); `None` writes no stream.
    pub unloaded: Option<Vec<(String, u64, u32)>>,
    /// Threads; `None` writes no ThreadList stream.
    pub threads: Option<Vec<ThreadSpec>>,
    /// Handles; `None` writes no HandleData stream.
    pub handles: Option<Vec<HandleSpec>>,
    /// Captured memory and region table.
    pub memory: ProcessMemory,
    /// Which list carries the memory.
    pub memory_list: MemoryListKind,
    /// Whether to write the region table as a MemoryInfoList stream.
    pub memory_info: bool,
    /// Extra raw streams (type, bytes).
    pub extra_streams: Vec<(u32, Vec<u8>)>,
}

impl MinidumpBuilder {
    /// A dump with no streams but SystemInfo.
    pub fn new(arch: Arch, os: (u32, u32, u32)) -> Self {
        Self {
            arch,
            os,
            csd: String::new(),
            flags: 0,
            timestamp: 0x5f00_0000,
            pid: None,
            modules: Vec::new(),
            unloaded: None,
            threads: None,
            handles: None,
            memory: ProcessMemory::new(),
            memory_list: MemoryListKind::List64,
            memory_info: true,
            extra_streams: Vec::new(),
        }
    }

    /// The whole file in memory.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_to(&mut v).expect("writing to a Vec cannot fail");
        v
    }

    /// Write the file: metadata first, then every captured range in address order (zero-only
    /// ranges are written as real zero bytes, so the file is as large on disk as it says).
    pub fn write_to<W: Write>(&self, w: &mut W) -> io::Result<()> {
        // The lengths of the parts do not depend on the offsets written into them, so lay the
        // metadata out once to learn them and again with the real offsets.
        let (head, blob) = self.metadata(0, 0);
        let blob_rva = align4(head.len() as u64);
        let memory_rva = align8(blob_rva + blob.len() as u64);
        let (head, blob) = self.metadata(memory_rva, blob_rva as u32);
        w.write_all(&head)?;
        w.write_all(&vec![0u8; (blob_rva - head.len() as u64) as usize])?;
        w.write_all(&blob)?;
        w.write_all(&vec![
            0u8;
            (memory_rva - blob_rva - blob.len() as u64) as usize
        ])?;
        let zeros = vec![0u8; 1 << 20];
        for (_, piece) in self.memory.pieces() {
            match piece {
                Content::Bytes(data) => w.write_all(data)?,
                Content::Zeros(mut n) => {
                    while n > 0 {
                        let k = n.min(zeros.len() as u64);
                        w.write_all(&zeros[..k as usize])?;
                        n -= k;
                    }
                }
            }
        }
        Ok(())
    }

    /// Header, directory and stream bodies; and the blob of strings and records they refer to.
    fn metadata(&self, memory_rva: u64, blob_rva: u32) -> (Vec<u8>, Vec<u8>) {
        let mut streams: Vec<(u32, Vec<u8>)> = Vec::new();
        let mut strings = Blob {
            rva: blob_rva,
            data: Vec::new(),
        };
        // Memory placement: ranges are written back to back from memory_rva.
        let mut placed = Vec::new();
        let mut rva = memory_rva;
        for (base, piece) in self.memory.pieces() {
            placed.push((base, piece.len(), rva));
            rva += piece.len();
        }
        let locate = |start: u64, size: u64| -> (u32, u32) {
            placed
                .iter()
                .find(|(b, l, _)| *b <= start && start + size <= b + l)
                .map(|(b, _, r)| (size as u32, (r + (start - b)) as u32))
                .unwrap_or((0, 0))
        };

        streams.push((stream::SYSTEM_INFO, self.system_info(&mut strings)));
        if let Some(pid) = self.pid {
            let mut s = Vec::new();
            put32(&mut s, 24); // SizeOfInfo: MINIDUMP_MISC_INFO
            put32(&mut s, 1); // MINIDUMP_MISC1_PROCESS_ID
            put32(&mut s, pid);
            put32(&mut s, 0);
            put32(&mut s, 0);
            put32(&mut s, 0);
            streams.push((stream::MISC_INFO, s));
        }
        if let Some(threads) = &self.threads {
            let mut s = Vec::new();
            put32(&mut s, threads.len() as u32);
            for t in threads {
                let record = context_record(self.arch, &t.registers);
                let ctx = strings.add(&record);
                put32(&mut s, t.id);
                put32(&mut s, 0); // SuspendCount
                put32(&mut s, 0x20); // PriorityClass
                put32(&mut s, 0); // Priority
                put64(&mut s, t.teb);
                put64(&mut s, t.stack_start);
                let (size, at) = locate(t.stack_start, t.stack_size);
                put32(&mut s, size);
                put32(&mut s, at);
                put32(&mut s, record.len() as u32);
                put32(&mut s, ctx);
            }
            streams.push((stream::THREAD_LIST, s));
        }
        if !self.modules.is_empty() {
            let mut s = Vec::new();
            put32(&mut s, self.modules.len() as u32);
            for m in &self.modules {
                let name = strings.add_string(&m.name);
                let cv = m.pdb.as_ref().map(|(guid, age, path)| {
                    let mut r = Vec::new();
                    put32(&mut r, 0x5344_5352); // "RSDS"
                    r.extend_from_slice(guid);
                    put32(&mut r, *age);
                    r.extend_from_slice(path.as_bytes());
                    r.push(0);
                    (r.len() as u32, strings.add(&r))
                });
                put64(&mut s, m.base);
                put32(&mut s, m.size);
                put32(&mut s, 0); // CheckSum
                put32(&mut s, m.timestamp);
                put32(&mut s, name);
                fixed_file_info(&mut s, m.version);
                let (cv_size, cv_rva) = cv.unwrap_or((0, 0));
                put32(&mut s, cv_size);
                put32(&mut s, cv_rva);
                put64(&mut s, 0); // MiscRecord
                put64(&mut s, 0); // Reserved0
                put64(&mut s, 0); // Reserved1
            }
            streams.push((stream::MODULE_LIST, s));
        }
        if let Some(unloaded) = &self.unloaded {
            let mut s = Vec::new();
            put32(&mut s, 12);
            put32(&mut s, 24);
            put32(&mut s, unloaded.len() as u32);
            for (name, base, size) in unloaded {
                let n = strings.add_string(name);
                put64(&mut s, *base);
                put32(&mut s, *size);
                put32(&mut s, 0);
                put32(&mut s, 0);
                put32(&mut s, n);
            }
            streams.push((stream::UNLOADED_MODULE_LIST, s));
        }
        if let Some(handles) = &self.handles {
            let mut s = Vec::new();
            put32(&mut s, 16);
            put32(&mut s, 32);
            put32(&mut s, handles.len() as u32);
            put32(&mut s, 0);
            for h in handles {
                let t = strings.add_string(&h.type_name);
                put64(&mut s, h.handle);
                put32(&mut s, t);
                put32(&mut s, 0); // ObjectNameRva
                put32(&mut s, 0); // Attributes
                put32(&mut s, 0x1f0003); // GrantedAccess
                put32(&mut s, 1);
                put32(&mut s, 2);
            }
            streams.push((stream::HANDLE_DATA, s));
        }
        if self.memory_info {
            let regions = self.memory.regions();
            let mut s = Vec::new();
            put32(&mut s, 16);
            put32(&mut s, 48);
            put64(&mut s, regions.len() as u64);
            for r in regions {
                put64(&mut s, r.base);
                put64(&mut s, r.allocation_base);
                put32(&mut s, r.allocation_protect);
                put32(&mut s, 0);
                put64(&mut s, r.size);
                put32(&mut s, r.state);
                put32(&mut s, r.protect);
                put32(&mut s, r.kind);
                put32(&mut s, 0);
            }
            streams.push((stream::MEMORY_INFO_LIST, s));
        }
        let mut s = Vec::new();
        match self.memory_list {
            MemoryListKind::List => {
                put32(&mut s, placed.len() as u32);
                for (base, len, at) in &placed {
                    put64(&mut s, *base);
                    put32(&mut s, *len as u32);
                    put32(&mut s, *at as u32);
                }
                streams.push((stream::MEMORY_LIST, s));
            }
            MemoryListKind::List64 => {
                put64(&mut s, placed.len() as u64);
                put64(&mut s, memory_rva);
                for (base, len, _) in &placed {
                    put64(&mut s, *base);
                    put64(&mut s, *len);
                }
                streams.push((stream::MEMORY64_LIST, s));
            }
        }
        streams.extend(self.extra_streams.iter().cloned());

        // Header, directory, stream bodies, then the string blob.
        let dir_rva = 32u32;
        let mut body_rva = dir_rva + 12 * streams.len() as u32;
        let mut out = Vec::new();
        put32(&mut out, SIGNATURE);
        put32(&mut out, VERSION);
        put32(&mut out, streams.len() as u32);
        put32(&mut out, dir_rva);
        put32(&mut out, 0); // CheckSum
        put32(&mut out, self.timestamp);
        put64(&mut out, self.flags);
        let mut bodies = Vec::new();
        for (kind, data) in &streams {
            body_rva = align4(body_rva);
            put32(&mut out, *kind);
            put32(&mut out, data.len() as u32);
            put32(&mut out, body_rva);
            body_rva += data.len() as u32;
            bodies.push(data);
        }
        for data in bodies {
            while !out.len().is_multiple_of(4) {
                out.push(0);
            }
            out.extend_from_slice(data);
        }
        (out, strings.data)
    }

    fn system_info(&self, strings: &mut Blob) -> Vec<u8> {
        let mut s = Vec::new();
        let (arch, level) = match self.arch {
            Arch::X86 => (0u16, 6u16),
            Arch::Amd64 => (9u16, 6u16),
        };
        put16(&mut s, arch);
        put16(&mut s, level);
        put16(&mut s, 0x5e03); // ProcessorRevision
        s.push(4); // NumberOfProcessors
        s.push(1); // ProductType: VER_NT_WORKSTATION
        put32(&mut s, self.os.0);
        put32(&mut s, self.os.1);
        put32(&mut s, self.os.2);
        put32(&mut s, 2); // VER_PLATFORM_WIN32_NT
        let csd = strings.add_string(&self.csd);
        put32(&mut s, csd);
        put16(&mut s, 0x100); // SuiteMask
        put16(&mut s, 0);
        // CPU_INFORMATION (24 bytes): vendor id for x86, processor features otherwise.
        let mut cpu = [0u8; 24];
        if self.arch == Arch::X86 {
            cpu[..12].copy_from_slice(b"GenuineIntel");
        }
        s.extend_from_slice(&cpu);
        s
    }
}

/// Strings and variable-length records, referenced by RVA from the streams; written right after
/// the stream bodies, at `rva`.
struct Blob {
    rva: u32,
    data: Vec<u8>,
}

impl Blob {
    fn add(&mut self, bytes: &[u8]) -> u32 {
        while !self.data.len().is_multiple_of(4) {
            self.data.push(0);
        }
        let at = self.rva + self.data.len() as u32;
        self.data.extend_from_slice(bytes);
        at
    }

    /// A `MINIDUMP_STRING`: byte length, UTF-16LE text, NUL.
    fn add_string(&mut self, s: &str) -> u32 {
        let units: Vec<u16> = s.encode_utf16().collect();
        let mut b = Vec::with_capacity(4 + 2 * units.len() + 2);
        put32(&mut b, 2 * units.len() as u32);
        for u in units {
            put16(&mut b, u);
        }
        put16(&mut b, 0);
        self.add(&b)
    }
}

fn fixed_file_info(s: &mut Vec<u8>, version: Option<[u16; 4]>) {
    match version {
        Some([a, b, c, d]) => {
            put32(s, 0xfeef_04bd);
            put32(s, 0x0001_0000);
            let ms = (u32::from(a) << 16) | u32::from(b);
            let ls = (u32::from(c) << 16) | u32::from(d);
            put32(s, ms);
            put32(s, ls);
            put32(s, ms);
            put32(s, ls);
            put32(s, 0x3f); // FileFlagsMask
            put32(s, 0);
            put32(s, 0x0004_0004); // VOS_NT_WINDOWS32
            put32(s, 2); // VFT_DLL
            put32(s, 0);
            put32(s, 0);
            put32(s, 0);
        }
        None => s.extend_from_slice(&[0u8; 52]),
    }
}

fn align4<T: Into<u64> + TryFrom<u64>>(v: T) -> T
where
    <T as TryFrom<u64>>::Error: std::fmt::Debug,
{
    T::try_from((v.into() + 3) & !3).expect("aligned value fits")
}

fn align8(v: u64) -> u64 {
    (v + 7) & !7
}

fn put16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn put32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn put64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}
