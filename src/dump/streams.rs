//! Plain, owned records of the streams heapdiag uses, decoded once when the dump is opened.
//!
//! SystemInfo, MiscInfo and the memory lists are decoded here from their documented layouts;
//! modules, threads, the region table and handles go through the `minidump` crate and are copied
//! into these records so that no later layer depends on that crate's types or lifetimes.

use super::memory::MemoryRange;
use minidump::{
    Minidump, MinidumpContext, MinidumpHandleDataStream, MinidumpMiscInfo, MinidumpModuleList,
    MinidumpRawContext, MinidumpSystemInfo, MinidumpThreadList, MinidumpUnloadedModuleList,
    Module as _,
};

/// `PROCESSOR_ARCHITECTURE_*` of the dump, decided by SystemInfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// `PROCESSOR_ARCHITECTURE_INTEL` (0).
    X86,
    /// `PROCESSOR_ARCHITECTURE_AMD64` (9).
    Amd64,
    /// `PROCESSOR_ARCHITECTURE_ARM64` (12).
    Arm64,
    /// Anything else, with its raw code.
    Other(u16),
}

impl Arch {
    /// From the raw SystemInfo code.
    pub fn from_code(code: u16) -> Self {
        match code {
            0 => Arch::X86,
            9 => Arch::Amd64,
            12 => Arch::Arm64,
            c => Arch::Other(c),
        }
    }

    /// Native pointer width, when heapdiag knows it.
    pub fn bits(self) -> Option<u32> {
        match self {
            Arch::X86 => Some(32),
            Arch::Amd64 | Arch::Arm64 => Some(64),
            Arch::Other(_) => None,
        }
    }

    /// Short name: `x86`, `x64`, `arm64`, or `arch(N)`.
    pub fn name(self) -> String {
        match self {
            Arch::X86 => "x86".into(),
            Arch::Amd64 => "x64".into(),
            Arch::Arm64 => "arm64".into(),
            Arch::Other(c) => format!("arch({c})"),
        }
    }
}

/// SystemInfoStream.
#[derive(Clone, Debug)]
pub struct SystemInfo {
    /// Processor architecture.
    pub arch: Arch,
    /// OS major version.
    pub major: u32,
    /// OS minor version.
    pub minor: u32,
    /// OS build number.
    pub build: u32,
    /// Platform id (2 = Windows NT).
    pub platform_id: u32,
    /// Number of processors.
    pub processors: u8,
    /// Service pack string, when stored.
    pub csd: Option<String>,
}

/// MiscInfoStream: what heapdiag uses of it.
#[derive(Clone, Debug, Default)]
pub struct MiscInfo {
    /// Process id, when the writer stored it.
    pub process_id: Option<u32>,
    /// Process creation time (seconds since 1970), when stored.
    pub process_create_time: Option<u32>,
}

/// A loaded or unloaded module.
#[derive(Clone, Debug)]
pub struct Module {
    /// Path as recorded.
    pub path: String,
    /// Image base.
    pub base: u64,
    /// SizeOfImage.
    pub size: u64,
    /// PE TimeDateStamp.
    pub timestamp: u32,
    /// File version "a.b.c.d" from `VS_FIXEDFILEINFO`.
    pub version: Option<String>,
    /// CodeView PDB name.
    pub pdb_name: Option<String>,
    /// CodeView GUID, `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX`.
    pub pdb_guid: Option<String>,
    /// CodeView age.
    pub pdb_age: Option<u32>,
}

impl Module {
    /// The file name without directories.
    pub fn file_name(&self) -> &str {
        self.path
            .rsplit(['\\', '/'])
            .next()
            .unwrap_or(self.path.as_str())
    }

    /// One past the last address.
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }
}

/// A thread of the ThreadList stream.
#[derive(Clone, Debug)]
pub struct Thread {
    /// Thread id.
    pub id: u32,
    /// Address of its TEB (the native, 64-bit one in a WoW64 dump).
    pub teb: u64,
    /// Start of the captured stack memory.
    pub stack_start: u64,
    /// Bytes of stack memory the descriptor names.
    pub stack_size: u64,
    /// Its saved registers, when the stream holds a context record heapdiag can read.
    pub context: Option<Context>,
}

/// A thread's saved registers (its `CONTEXT` record), as far as heapdiag uses them: the stack
/// pointer, where the live part of its stack starts, and every general-purpose register, which
/// may hold the only pointer to an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// 32 or 64: the width of its registers.
    pub bits: u32,
    /// The stack pointer (`esp`, `rsp`, `sp`).
    pub stack_pointer: u64,
    /// The general-purpose registers by name (`eax`…, `rax`…, `x0`…), instruction and stack
    /// pointers included, flags left out.
    pub registers: Vec<(&'static str, u64)>,
}

/// Where the registers are in an x86 `CONTEXT` record (also a WoW64 thread's `WOW64_CONTEXT`).
const X86_CONTEXT_REGISTERS: &[(&str, usize)] = &[
    ("eip", 0xb8),
    ("esp", 0xc4),
    ("ebp", 0xb4),
    ("ebx", 0xa4),
    ("esi", 0xa0),
    ("edi", 0x9c),
    ("eax", 0xb0),
    ("ecx", 0xac),
    ("edx", 0xa8),
];

/// Bytes of an x86 `CONTEXT` record.
pub const X86_CONTEXT_SIZE: usize = 0x2cc;

impl Context {
    /// An x86 `CONTEXT` record in process memory (a WoW64 thread's `WOW64_CONTEXT`): `None`
    /// unless `ContextFlags` says `CONTEXT_i386` with the control and integer registers.
    pub fn from_x86_record(b: &[u8]) -> Option<Context> {
        const I386_CONTROL_INTEGER: u32 = 0x0001_0003;
        let flags = u32_at(b, 0)?;
        if flags & I386_CONTROL_INTEGER != I386_CONTROL_INTEGER {
            return None;
        }
        let registers: Vec<(&'static str, u64)> = X86_CONTEXT_REGISTERS
            .iter()
            .map(|&(name, at)| Some((name, u64::from(u32_at(b, at)?))))
            .collect::<Option<_>>()?;
        Some(Context {
            bits: 32,
            stack_pointer: registers[1].1,
            registers,
        })
    }

    /// The registers of a decoded context record; `None` for architectures heapdiag does not
    /// read (anything but x86, x64 and ARM64).
    fn from_minidump(c: &MinidumpContext) -> Option<Context> {
        let bits = match c.raw {
            MinidumpRawContext::X86(_) => 32,
            MinidumpRawContext::Amd64(_)
            | MinidumpRawContext::Arm64(_)
            | MinidumpRawContext::OldArm64(_) => 64,
            _ => return None,
        };
        Some(Context {
            bits,
            stack_pointer: c.get_stack_pointer(),
            registers: c
                .valid_registers()
                .filter(|(name, _)| !matches!(*name, "eflags" | "cpsr"))
                .collect(),
        })
    }
}

/// One entry of the MemoryInfoList stream (`MINIDUMP_MEMORY_INFO`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryInfo {
    /// BaseAddress.
    pub base: u64,
    /// AllocationBase.
    pub allocation_base: u64,
    /// AllocationProtect.
    pub allocation_protect: u32,
    /// RegionSize.
    pub size: u64,
    /// State (`MEM_COMMIT`, `MEM_RESERVE`, `MEM_FREE`).
    pub state: u32,
    /// Protect.
    pub protect: u32,
    /// Type (`MEM_PRIVATE`, `MEM_MAPPED`, `MEM_IMAGE`).
    pub kind: u32,
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// A `MINIDUMP_STRING` at `rva` in the file, if it is readable.
pub fn read_string(file: &[u8], rva: u32) -> Option<String> {
    let len = u32_at(file, rva as usize)? as usize;
    let start = (rva as usize).checked_add(4)?;
    let bytes = file.get(start..start.checked_add(len)?)?;
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    Some(String::from_utf16_lossy(&units))
}

/// Decode a SystemInfo stream body (`MINIDUMP_SYSTEM_INFO`, 56 bytes).
pub fn system_info(body: &[u8], file: &[u8]) -> Option<SystemInfo> {
    let csd_rva = u32_at(body, 24)?;
    Some(SystemInfo {
        arch: Arch::from_code(u16_at(body, 0)?),
        processors: *body.get(6)?,
        major: u32_at(body, 8)?,
        minor: u32_at(body, 12)?,
        build: u32_at(body, 16)?,
        platform_id: u32_at(body, 20)?,
        csd: (csd_rva != 0)
            .then(|| read_string(file, csd_rva))
            .flatten()
            .filter(|s| !s.is_empty()),
    })
}

/// Decode a MiscInfo stream body (any `MINIDUMP_MISC_INFO*` version).
pub fn misc_info(body: &[u8]) -> Option<MiscInfo> {
    let flags = u32_at(body, 4)?;
    Some(MiscInfo {
        process_id: if flags & 1 != 0 {
            u32_at(body, 8)
        } else {
            None
        },
        process_create_time: if flags & 2 != 0 {
            u32_at(body, 12)
        } else {
            None
        },
    })
}

/// Decode MemoryListStream: `u32 count`, then 16-byte descriptors `{u64 start, u32 size, u32 rva}`.
/// Entries beyond the stream are dropped and reported.
pub fn memory_list(body: &[u8], problems: &mut Vec<String>) -> Vec<MemoryRange> {
    let Some(count) = u32_at(body, 0) else {
        problems.push("MemoryListStream is shorter than its count field".into());
        return Vec::new();
    };
    let fits = body.len().saturating_sub(4) / 16;
    if count as usize > fits {
        problems.push(format!(
            "MemoryListStream claims {count} ranges but holds {fits}; the rest are ignored"
        ));
    }
    (0..(count as usize).min(fits))
        .filter_map(|i| {
            let at = 4 + 16 * i;
            Some(MemoryRange {
                base: u64_at(body, at)?,
                size: u64::from(u32_at(body, at + 8)?),
                offset: u64::from(u32_at(body, at + 12)?),
            })
        })
        .collect()
}

/// Decode Memory64ListStream: `u64 count, u64 base_rva`, then `{u64 start, u64 size}`; the data of
/// all ranges follows back to back from `base_rva`. Tolerant: a count beyond the stream or data
/// beyond the file keeps what is there (unlike the `minidump` crate, which drops the whole list).
pub fn memory64_list(body: &[u8], problems: &mut Vec<String>) -> Vec<MemoryRange> {
    let (Some(count), Some(mut rva)) = (u64_at(body, 0), u64_at(body, 8)) else {
        problems.push("Memory64ListStream is shorter than its header".into());
        return Vec::new();
    };
    let fits = (body.len().saturating_sub(16) / 16) as u64;
    if count > fits {
        problems.push(format!(
            "Memory64ListStream claims {count} ranges but holds {fits}; the rest are ignored"
        ));
    }
    let mut out = Vec::with_capacity(count.min(fits) as usize);
    for i in 0..count.min(fits) as usize {
        let at = 16 + 16 * i;
        let (Some(base), Some(size)) = (u64_at(body, at), u64_at(body, at + 8)) else {
            break;
        };
        out.push(MemoryRange {
            base,
            size,
            offset: rva,
        });
        let Some(next) = rva.checked_add(size) else {
            problems.push("Memory64ListStream sizes overflow; later ranges are ignored".into());
            break;
        };
        rva = next;
    }
    out
}

fn version_string(raw: &minidump::format::VS_FIXEDFILEINFO) -> Option<String> {
    (raw.signature == 0xfeef_04bd).then(|| {
        format!(
            "{}.{}.{}.{}",
            raw.file_version_hi >> 16,
            raw.file_version_hi & 0xffff,
            raw.file_version_lo >> 16,
            raw.file_version_lo & 0xffff
        )
    })
}

fn guid_string(g: &minidump::format::GUID) -> String {
    format!(
        "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
        g.data1,
        g.data2,
        g.data3,
        g.data4[0],
        g.data4[1],
        g.data4[2],
        g.data4[3],
        g.data4[4],
        g.data4[5],
        g.data4[6],
        g.data4[7]
    )
}

/// ModuleListStream through the `minidump` crate.
pub fn modules<T: std::ops::Deref<Target = [u8]>>(
    md: &Minidump<'_, T>,
) -> Result<Vec<Module>, minidump::Error> {
    let list = md.get_stream::<MinidumpModuleList>()?;
    Ok(list
        .iter()
        .map(|m| {
            let (guid, age, name) = match &m.codeview_info {
                Some(minidump::CodeView::Pdb70(cv)) => (
                    Some(guid_string(&cv.signature)),
                    Some(cv.age),
                    Some(
                        String::from_utf8_lossy(&cv.pdb_file_name)
                            .trim_end_matches('\0')
                            .to_string(),
                    ),
                ),
                Some(minidump::CodeView::Pdb20(cv)) => (
                    None,
                    Some(cv.age),
                    Some(
                        String::from_utf8_lossy(&cv.pdb_file_name)
                            .trim_end_matches('\0')
                            .to_string(),
                    ),
                ),
                _ => (None, None, None),
            };
            Module {
                path: m.name.clone(),
                base: m.base_address(),
                size: m.size(),
                timestamp: m.raw.time_date_stamp,
                version: version_string(&m.raw.version_info),
                pdb_name: name,
                pdb_guid: guid,
                pdb_age: age,
            }
        })
        .collect())
}

/// UnloadedModuleListStream through the `minidump` crate.
pub fn unloaded_modules<T: std::ops::Deref<Target = [u8]>>(
    md: &Minidump<'_, T>,
) -> Result<Vec<Module>, minidump::Error> {
    let list = md.get_stream::<MinidumpUnloadedModuleList>()?;
    Ok(list
        .iter()
        .map(|m| Module {
            path: m.name.clone(),
            base: m.raw.base_of_image,
            size: u64::from(m.raw.size_of_image),
            timestamp: m.raw.time_date_stamp,
            version: None,
            pdb_name: None,
            pdb_guid: None,
            pdb_age: None,
        })
        .collect())
}

/// ThreadListStream through the `minidump` crate.
pub fn threads<T: std::ops::Deref<Target = [u8]>>(
    md: &Minidump<'_, T>,
) -> Result<Vec<Thread>, minidump::Error> {
    let list = md.get_stream::<MinidumpThreadList>()?;
    // Context records are decoded for the dump's architecture (SystemInfo); without it they are
    // left out.
    let system = md.get_stream::<MinidumpSystemInfo>().ok();
    let misc = md.get_stream::<MinidumpMiscInfo>().ok();
    Ok(list
        .threads
        .iter()
        .map(|t| Thread {
            id: t.raw.thread_id,
            teb: t.raw.teb,
            stack_start: t.raw.stack.start_of_memory_range,
            stack_size: u64::from(t.raw.stack.memory.data_size),
            context: system
                .as_ref()
                .and_then(|s| t.context(s, misc.as_ref()))
                .and_then(|c| Context::from_minidump(&c)),
        })
        .collect())
}

/// Decode MemoryInfoListStream: `u32 SizeOfHeader, u32 SizeOfEntry, u64 NumberOfEntries`, then
/// entries of `SizeOfEntry` bytes (at least 48): `{u64 BaseAddress, u64 AllocationBase, u32
/// AllocationProtect, u32 pad, u64 RegionSize, u32 State, u32 Protect, u32 Type, u32 pad}`. The
/// count is read to its full 64-bit width; entries beyond the stream are dropped and reported.
pub fn memory_info(body: &[u8], problems: &mut Vec<String>) -> Vec<MemoryInfo> {
    let (Some(header), Some(entry), Some(count)) =
        (u32_at(body, 0), u32_at(body, 4), u64_at(body, 8))
    else {
        problems.push("MemoryInfoListStream is shorter than its header; no region table".into());
        return Vec::new();
    };
    let (header, entry) = (header as usize, entry as usize);
    if header < 16 || entry < 48 {
        problems.push(format!(
            "MemoryInfoListStream has a {header}-byte header and {entry}-byte entries (at least 16 and 48 expected); no region table"
        ));
        return Vec::new();
    }
    let fits = (body.len().saturating_sub(header) / entry) as u64;
    if count > fits {
        problems.push(format!(
            "MemoryInfoListStream claims {count} entries but holds {fits}; the rest are ignored"
        ));
    }
    (0..count.min(fits) as usize)
        .filter_map(|i| {
            let at = header + entry * i;
            Some(MemoryInfo {
                base: u64_at(body, at)?,
                allocation_base: u64_at(body, at + 8)?,
                allocation_protect: u32_at(body, at + 16)?,
                size: u64_at(body, at + 24)?,
                state: u32_at(body, at + 32)?,
                protect: u32_at(body, at + 36)?,
                kind: u32_at(body, at + 40)?,
            })
        })
        .collect()
}

/// The number of handles in HandleDataStream.
pub fn handle_count<T: std::ops::Deref<Target = [u8]>>(
    md: &Minidump<'_, T>,
) -> Result<usize, minidump::Error> {
    Ok(md.get_stream::<MinidumpHandleDataStream>()?.handles.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_info_counts_are_read_to_their_full_width() {
        let mut body = Vec::new();
        body.extend_from_slice(&16u32.to_le_bytes());
        body.extend_from_slice(&48u32.to_le_bytes());
        body.extend_from_slice(&((1u64 << 32) + 5).to_le_bytes());
        for i in 0..2u64 {
            let mut e = [0u8; 48];
            e[..8].copy_from_slice(&(0x1_0000 * (i + 1)).to_le_bytes());
            e[24..32].copy_from_slice(&0x1000u64.to_le_bytes());
            e[32..36].copy_from_slice(&0x1000u32.to_le_bytes());
            body.extend_from_slice(&e);
        }
        let mut problems = Vec::new();
        let r = memory_info(&body, &mut problems);
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[1].base, r[1].size, r[1].state),
            (0x2_0000, 0x1000, 0x1000)
        );
        assert_eq!(
            problems,
            ["MemoryInfoListStream claims 4294967301 entries but holds 2; the rest are ignored"]
        );
        body[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes());
        let mut problems = Vec::new();
        assert_eq!(memory_info(&body, &mut problems).len(), 2);
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn memory64_list_keeps_good_ranges_when_the_count_lies() {
        let mut body = Vec::new();
        body.extend_from_slice(&5u64.to_le_bytes());
        body.extend_from_slice(&0x100u64.to_le_bytes());
        for (b, s) in [(0x1000u64, 0x10u64), (0x3000, 0x20)] {
            body.extend_from_slice(&b.to_le_bytes());
            body.extend_from_slice(&s.to_le_bytes());
        }
        let mut problems = Vec::new();
        let r = memory64_list(&body, &mut problems);
        assert_eq!(r.len(), 2);
        assert_eq!((r[1].base, r[1].size, r[1].offset), (0x3000, 0x20, 0x110));
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn strings_out_of_bounds_are_none() {
        let file = [4u8, 0, 0, 0, b'a', 0, b'b', 0];
        assert_eq!(read_string(&file, 0).as_deref(), Some("ab"));
        assert_eq!(read_string(&file, 6), None);
        assert_eq!(read_string(&file, u32::MAX), None);
    }
}
