//! A Windows process laid out in memory: images, threads with TEBs and stacks, the PEB and its
//! heap list, NT heaps and segment heaps, shared OS regions and private memory.
//!
//! Offsets come from `shared/docs/windows-heap-reference.md` §1 (TEB/PEB), §2.1–§2.2 and §2.8
//! (`_HEAP`, `_HEAP_SEGMENT`, `_HEAP_VIRTUAL_ALLOC_ENTRY`) and §6.2–§6.4 (`_SEGMENT_HEAP`,
//! `_HEAP_SEG_CONTEXT`, `_HEAP_PAGE_SEGMENT`), for the Windows 7 SP1 and the Windows 8+ (here:
//! Windows 10 1809+) layout families. Every region the builder creates is recorded with the
//! `!address` usage it is meant to have, so tests know the answer by construction.

use crate::memory::*;
use crate::minidump::{Arch, HandleSpec, MemoryListKind, MinidumpBuilder, ModuleSpec, ThreadSpec};

/// Which Windows the process imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Windows {
    /// Windows 7 SP1, build 7601.
    Win7Sp1,
    /// Windows 8, build 9200.
    Win8,
    /// Windows 8.1, build 9600.
    Win81,
    /// Windows 10 1607, build 14393.
    Win10v1607,
    /// Windows 10 1709, build 16299: the 1607 `_HEAP`; the 1709 `_SEGMENT_HEAP` (layout B:
    /// SegContexts +0x70, 0x68 each, context Heap +0x60 and SegmentListHead +0x20,
    /// LargeAllocMetadata +0x50).
    Win10v1709,
    /// Windows 10 1803, build 17134: the 1607 `_HEAP`; the 1803 `_SEGMENT_HEAP` (layout C).
    Win10v1803,
    /// Windows 10 22H2, build 19045.
    Win10,
    /// Windows 11 23H2, build 22631.
    Win11,
    /// Windows 11 24H2, build 26100: the NT heap as on 23H2; segment heaps with the 24H2 page-segment
    /// signature (no constant) and LFH offset encoding (`u32(subsegment >> 12)`).
    Win11v24H2,
    /// A Windows build newer than the reference documents (10.0.29000, with 24H2's heap list), whose `_HEAP` is imagined
    /// with FrontEndHeap at +0x1A8: the layout only `testdata/pdb/ntdll.pdb` describes.
    Future,
}

impl Windows {
    /// Major, minor, build.
    pub fn version(self) -> (u32, u32, u32) {
        match self {
            Windows::Win7Sp1 => (6, 1, 7601),
            Windows::Win8 => (6, 2, 9200),
            Windows::Win81 => (6, 3, 9600),
            Windows::Win10v1607 => (10, 0, 14393),
            Windows::Win10v1709 => (10, 0, 16299),
            Windows::Win10v1803 => (10, 0, 17134),
            Windows::Win10 => (10, 0, 19045),
            Windows::Win11 => (10, 0, 22631),
            Windows::Win11v24H2 => (10, 0, 26100),
            Windows::Future => (10, 0, 29000),
        }
    }

    /// Where a segment heap of a `bits`-bit world keeps its segment contexts and large
    /// allocations on this build (reference §6.2–§6.3, and the ntdll type dumps of 1709, 1803,
    /// 1909/2004 and 11 21H2/22H2 in both widths).
    pub fn seg_layout(self, bits: u32) -> SegLayout {
        let l = |contexts, ctx_size, ctx_heap, ctx_list, large| SegLayout {
            contexts,
            ctx_size,
            ctx_heap,
            ctx_list,
            large,
        };
        match (self, bits) {
            // Layout B (1709).
            (Windows::Win10v1709, 64) => l(0x70, 0x68, 0x60, 0x20, 0x50),
            (Windows::Win10v1709, _) => l(0x40, 0x38, 0x34, 0x14, 0x30),
            // Layout C (1803).
            (Windows::Win10v1803, 64) => l(0x70, 0x78, 0x70, 0x20, 0x50),
            (Windows::Win10v1803, _) => l(0x44, 0x40, 0x3c, 0x14, 0x34),
            // Layouts F–G (Windows 11): the contexts moved to +0x140.
            (Windows::Win11 | Windows::Win11v24H2 | Windows::Future, 64) => {
                l(0x140, 0xc0, 0x38, 0x48, 0x48)
            }
            // Layouts D–E (1809 – 22H2).
            (_, 64) => l(0x100, 0xc0, 0x38, 0x48, 0x48),
            (_, _) => l(0x100, 0x80, 0x24, 0x44, 0x44),
        }
    }

    fn is_win7(self) -> bool {
        self == Windows::Win7Sp1
    }
}

/// Offsets of a `_SEGMENT_HEAP` and its `_HEAP_SEG_CONTEXT`s, for the writer.
#[derive(Clone, Copy, Debug)]
pub struct SegLayout {
    /// `SegContexts[0]` in the heap.
    pub contexts: u64,
    /// `sizeof(_HEAP_SEG_CONTEXT)`.
    pub ctx_size: u64,
    /// The context's `Heap` back-pointer.
    pub ctx_heap: u64,
    /// The context's `SegmentListHead`.
    pub ctx_list: u64,
    /// `LargeAllocMetadata` in the heap.
    pub large: u64,
}

/// Process bitness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A 32-bit process on 32-bit Windows (x86 dump).
    Native32,
    /// A 64-bit process (x64 dump).
    Native64,
    /// A 32-bit process on 64-bit Windows, dumped by a 64-bit dumper (x64 dump, two worlds).
    Wow64,
}

/// The intended `!address` usage of a region, as WinDbg names it (without the 32/64 suffix).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Usage {
    /// `Free`.
    Free,
    /// `Image`.
    Image,
    /// `Heap`.
    Heap,
    /// `PageHeap`: a full page heap's reservation.
    PageHeap,
    /// `Stack`.
    Stack,
    /// `TEB`.
    Teb,
    /// `PEB`.
    Peb,
    /// `Other`.
    Other,
    /// `<unknown>`.
    Unknown,
}

/// A region with the usage the builder meant it to have; `bits` says which world (32/64) it
/// belongs to, for the WoW64 suffixes.
#[derive(Clone, Copy, Debug)]
pub struct Labeled {
    /// The region.
    pub region: Region,
    /// Intended usage.
    pub usage: Usage,
    /// 32 or 64 for world-specific usages (Heap, Stack, TEB, PEB); 0 otherwise.
    pub bits: u32,
}

/// A heap the builder created.
#[derive(Clone, Debug)]
pub struct HeapFacts {
    /// Heap address (what HeapCreate returned).
    pub address: u64,
    /// 32 or 64.
    pub bits: u32,
    /// true for a segment heap.
    pub segment_heap: bool,
    /// Segment ranges `[base, end)` (NT heap segments, or page segments of a segment heap).
    pub segments: Vec<(u64, u64)>,
    /// Large (VirtualAlloc'd) blocks: allocation base and reserve size.
    pub large_blocks: Vec<(u64, u64)>,
    /// Every block of an NT heap, in the order written.
    pub blocks: Vec<crate::nt_heap::ExpectedBlock>,
    /// The LFH key written (Windows 8.1+ heaps with the LFH).
    pub lfh_key: Option<u32>,
    /// +ust stack records written: (record address, frames innermost first).
    pub stacks: Vec<(u64, Vec<u64>)>,
    /// Heap structures laid out, for damage tests ([`crate::damage`]).
    pub structures: Vec<Structure>,
}

/// A heap structure the writer laid out: what it is, where, and the blocks (by entry) that
/// depend on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Structure {
    /// What it is.
    pub kind: StructureKind,
    /// Its address.
    pub address: u64,
    /// Entries of the blocks it describes.
    pub covers: Vec<u64>,
}

/// Kinds of [`Structure`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StructureKind {
    /// `_HEAP.FreeLists` (the list head).
    FreeLists,
    /// `_HEAP.VirtualAllocdBlocks` (the list head), covering the large blocks.
    LargeList,
    /// A segment heap's LFH subsegment.
    LfhSubsegment,
    /// A segment heap's VS subsegment.
    VsSubsegment,
    /// The first page-range descriptor of a segment-heap range.
    RangeDescriptor,
}

/// Everything the builder made, for tests to compare with.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// Every region of the table, labeled; free regions included after `finish`.
    pub regions: Vec<Labeled>,
    /// PEB addresses: (bits, address).
    pub pebs: Vec<(u32, u64)>,
    /// TEB addresses: (bits, address).
    pub tebs: Vec<(u32, u64)>,
    /// Heaps in ProcessHeaps order, per world (64-bit world first on WoW64).
    pub heaps: Vec<HeapFacts>,
    /// Threads in creation order, one per world each (a WoW64 thread: its 64-bit side, then its
    /// 32-bit side).
    pub threads: Vec<ThreadFacts>,
    /// The user addresses of an object graph's objects ([`crate::graph`]), in order.
    pub objects: Vec<u64>,
}

/// One world's side of a thread the builder created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadFacts {
    /// Thread id.
    pub id: u32,
    /// 32 or 64.
    pub bits: u32,
    /// Its TEB in this world.
    pub teb: u64,
    /// `NtTib.StackBase`: one past the highest stack address.
    pub stack_base: u64,
    /// `NtTib.StackLimit`: the lowest committed stack address.
    pub stack_limit: u64,
    /// Its registers: the native side's in the thread list's context record, the 32-bit side's
    /// in the `WOW64_CONTEXT` that `TEB64.TlsSlots[1]` leads to. The stack pointer is always
    /// set, a page below the stack base.
    pub registers: Vec<(&'static str, u64)>,
    /// Where its `WOW64_CONTEXT` is (32-bit side of a WoW64 thread), else `None`.
    pub wow64_context: Option<u64>,
}

impl ThreadFacts {
    /// The stack pointer.
    pub fn stack_pointer(&self) -> u64 {
        let sp = if self.bits == 64 { "rsp" } else { "esp" };
        self.registers
            .iter()
            .find(|(n, _)| *n == sp)
            .map(|r| r.1)
            .expect("a stack pointer")
    }
}

const PAGE: u64 = 0x1000;
const ALLOC_GRANULARITY: u64 = 0x10000;

struct PebOffsets {
    image_base: u64,
    process_heap: u64,
    read_only_shared_memory_base: u64,
    ansi_code_page_data: u64,
    nt_global_flag: u64,
    number_of_heaps: u64,
    maximum_number_of_heaps: u64,
    process_heaps: u64,
    os_major: u64,
    os_build: u64,
}

const PEB64: PebOffsets = PebOffsets {
    image_base: 0x10,
    process_heap: 0x30,
    read_only_shared_memory_base: 0x88,
    ansi_code_page_data: 0xa0,
    nt_global_flag: 0xbc,
    number_of_heaps: 0xe8,
    maximum_number_of_heaps: 0xec,
    process_heaps: 0xf0,
    os_major: 0x118,
    os_build: 0x120,
};

const PEB32: PebOffsets = PebOffsets {
    image_base: 0x08,
    process_heap: 0x18,
    read_only_shared_memory_base: 0x4c,
    ansi_code_page_data: 0x58,
    nt_global_flag: 0x68,
    number_of_heaps: 0x88,
    maximum_number_of_heaps: 0x8c,
    process_heaps: 0x90,
    os_major: 0xa4,
    os_build: 0xac,
};

/// Per-world state: PEB and the heaps that go into its ProcessHeaps array.
struct World {
    bits: u32,
    peb: u64,
    heaps: Vec<u64>,
    /// `_DPH_HEAP_ROOT`s of the world's page heaps, in creation order (linked by `NextHeap`).
    page_roots: Vec<u64>,
    /// `PEB.ProcessHeap` when it is not `heaps[0]` (page heap: the process heap's page heap).
    process_heap: Option<u64>,
    /// Address of the ProcessHeaps array (inside ntdll's data section of this world).
    heap_array: u64,
}

/// Builds a synthetic Windows process and its dump.
pub struct ProcessBuilder {
    /// The dump under construction; callers may adjust its streams before [`ProcessBuilder::finish`].
    pub dump: MinidumpBuilder,
    windows: Windows,
    kind: Kind,
    facts: Facts,
    worlds: Vec<World>,
    /// Next free address for private allocations.
    pub(crate) next_private: u64,
    /// Put segment heaps' `SegContexts` here instead of where the build keeps them (imitating a
    /// build whose `_SEGMENT_HEAP` heapdiag has no layout for).
    pub(crate) moved_seg_contexts: Option<u64>,
    /// Next TEB address (TEBs are allocated downwards, as Windows does).
    next_teb: u64,
    nt_global_flag: u32,
    next_thread_id: u32,
    /// +ust stack records written so far: (bits, frames) → record address.
    pub(crate) stack_records: std::collections::HashMap<(u32, Vec<u64>), u64>,
}

impl ProcessBuilder {
    /// A process with a PEB per world, ntdll (both ntdlls on WoW64), the main image, the shared user
    /// data page and the NLS/CSR regions the PEB points to. No threads, no heaps yet.
    pub fn new(windows: Windows, kind: Kind, exe_name: &str) -> Self {
        let arch = if kind == Kind::Native32 {
            Arch::X86
        } else {
            Arch::Amd64
        };
        let mut dump = MinidumpBuilder::new(arch, windows.version());
        if windows.is_win7() {
            dump.csd = "Service Pack 1".to_string();
        }
        dump.flags = 0x1826; // FullMemory | HandleData | UnloadedModules | FullMemoryInfo | ThreadInfo
        dump.pid = Some(0x1234);
        dump.memory_list = MemoryListKind::List64;
        dump.threads = Some(Vec::new());
        dump.unloaded = Some(Vec::new());
        dump.handles = Some(vec![
            HandleSpec {
                handle: 4,
                type_name: "Event".into(),
            },
            HandleSpec {
                handle: 8,
                type_name: "File".into(),
            },
        ]);
        let mut b = Self {
            dump,
            windows,
            kind,
            facts: Facts::default(),
            worlds: Vec::new(),
            next_private: 0x0100_0000,
            moved_seg_contexts: None,
            next_teb: match kind {
                Kind::Native32 => 0x7ffd_e000,
                Kind::Wow64 => 0x7efd_0000,
                Kind::Native64 => 0x7ff_fff0_0000,
            },
            nt_global_flag: 0,
            next_thread_id: 0x1000,
            stack_records: std::collections::HashMap::new(),
        };
        let (major, minor, build) = windows.version();
        let ver = [major as u16, minor as u16, build as u16, 1];
        // Images: the exe, ntdll of each world.
        let (exe_base, ntdll_base, ntdll32_base) = match kind {
            Kind::Native32 => (0x0040_0000, 0x7700_0000, 0),
            Kind::Native64 => (0x1_3f00_0000, 0x7fe_f000_0000, 0),
            Kind::Wow64 => (0x0040_0000, 0x7fe_f000_0000, 0x7700_0000),
        };
        b.add_image(exe_name, exe_base, 0x6000, ver, false);
        let native_bits = if kind == Kind::Native32 { 32 } else { 64 };
        let nt_data = b.add_image(
            r"C:\Windows\System32\ntdll.dll",
            ntdll_base,
            0x1_8000,
            ver,
            true,
        );
        let mut heap_arrays = vec![(native_bits, nt_data)];
        if kind == Kind::Wow64 {
            b.add_image(
                r"C:\Windows\System32\wow64.dll",
                0x7fe_f100_0000,
                0x6000,
                ver,
                false,
            );
            b.add_image(
                r"C:\Windows\System32\wow64cpu.dll",
                0x7fe_f110_0000,
                0x6000,
                ver,
                false,
            );
            let nt32 = b.add_image(
                r"C:\Windows\SysWOW64\ntdll.dll",
                ntdll32_base,
                0x1_8000,
                ver,
                true,
            );
            heap_arrays.push((32, nt32));
        }
        // PEBs: native PEB; on WoW64 PEB32 = PEB64 - 0x1000 (Win7) or + 0x1000 (Win8+).
        let peb_native = if kind == Kind::Native32 {
            0x7ffd_e000
        } else if kind == Kind::Wow64 {
            0x7efd_f000
        } else {
            0x7ff_fffd_e000
        };
        for (bits, arr) in heap_arrays {
            let peb = if bits == native_bits {
                peb_native
            } else if windows.is_win7() {
                peb_native - PAGE
            } else {
                peb_native + PAGE
            };
            b.world_region(peb, PAGE, PAGE_READWRITE, Usage::Peb, bits);
            b.dump.memory.capture(peb, PAGE);
            b.facts.pebs.push((bits, peb));
            b.worlds.push(World {
                bits,
                peb,
                heaps: Vec::new(),
                page_roots: Vec::new(),
                process_heap: None,
                heap_array: arr,
            });
        }
        // KUSER_SHARED_DATA, a read-only private page at the same address in every process.
        b.labeled(
            Region {
                base: 0x7ffe_0000,
                allocation_base: 0x7ffe_0000,
                allocation_protect: PAGE_READONLY,
                size: PAGE,
                state: MEM_COMMIT,
                protect: PAGE_READONLY,
                kind: MEM_PRIVATE,
            },
            Usage::Other,
            0,
        );
        // CSR shared memory and the ANSI code page (NLS) section: mapped views the PEB points to.
        let csr = b.alloc_private(0x10_0000);
        b.mapped(
            csr,
            0x4_0000,
            0x10_0000 - 0x4_0000,
            PAGE_READONLY,
            Usage::Other,
        );
        let nls = b.alloc_private(0x1_0000);
        b.mapped(nls, 0x1_0000, 0, PAGE_READONLY, Usage::Other);
        for i in 0..b.worlds.len() {
            let (bits, peb) = (b.worlds[i].bits, b.worlds[i].peb);
            let o = if bits == 64 { &PEB64 } else { &PEB32 };
            b.dump.memory.write_ptr(bits, peb + o.image_base, exe_base);
            b.dump
                .memory
                .write_ptr(bits, peb + o.read_only_shared_memory_base, csr);
            b.dump
                .memory
                .write_ptr(bits, peb + o.ansi_code_page_data, nls);
            b.dump.memory.write_u32(peb + o.os_major, major);
            b.dump.memory.write_u32(peb + o.os_major + 4, minor);
            b.dump.memory.write_u16(peb + o.os_build, build as u16);
        }
        b
    }

    /// Which Windows this process imitates.
    pub fn windows(&self) -> Windows {
        self.windows
    }

    /// Native, 32-bit or WoW64.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Replace the CodeView record of the module at `base`: PDB GUID (as `XXXXXXXX-XXXX-XXXX-XXXX-
    /// XXXXXXXXXXXX`), age and PDB name.
    pub fn set_pdb(&mut self, base: u64, guid: &str, age: u32, name: &str) {
        let bytes = guid_bytes(guid);
        let m = self
            .dump
            .modules
            .iter_mut()
            .find(|m| m.base == base)
            .expect("a module at that base");
        m.pdb = Some((bytes, age, name.to_string()));
    }

    /// Set NtGlobalFlag in every PEB (e.g. 0x1000 for +ust).
    pub fn set_nt_global_flag(&mut self, flag: u32) {
        self.nt_global_flag = flag;
    }

    /// Add a module: headers (read-only), .text (execute-read), .data (read-write, captured). Returns
    /// the address of its .data section.
    pub fn add_image(
        &mut self,
        path: &str,
        base: u64,
        size: u64,
        version: [u16; 4],
        capture_data: bool,
    ) -> u64 {
        let text = base + PAGE;
        let data = base + size - 2 * PAGE;
        let sections = [
            (base, PAGE, PAGE_READONLY),
            (text, data - text, PAGE_EXECUTE_READ),
            (data, PAGE, PAGE_READWRITE),
            (data + PAGE, PAGE, PAGE_WRITECOPY),
        ];
        for (b, s, p) in sections {
            self.labeled(
                Region {
                    base: b,
                    allocation_base: base,
                    allocation_protect: 0x80, // PAGE_EXECUTE_WRITECOPY
                    size: s,
                    state: MEM_COMMIT,
                    protect: p,
                    kind: MEM_IMAGE,
                },
                Usage::Image,
                0,
            );
        }
        self.dump.memory.capture(base, PAGE);
        self.write_pe_headers(base, size);
        if capture_data {
            self.dump.memory.capture(data, PAGE);
        }
        let name_hash = path
            .bytes()
            .fold(0u8, |a, c| a.wrapping_mul(31).wrapping_add(c));
        let file = path.rsplit('\\').next().unwrap_or(path);
        let pdb_name = format!("{}.pdb", file.rsplit_once('.').map_or(file, |(n, _)| n));
        self.dump.modules.push(ModuleSpec {
            name: path.to_string(),
            base,
            size: size as u32,
            timestamp: 0x5e00_0000 | u32::from(name_hash),
            version: Some(version),
            pdb: Some(([name_hash; 16], 1, pdb_name)),
        });
        data
    }

    /// The pointer width of an image at `base`: the process's, or on WoW64 64 above 4 GB.
    fn image_bits(&self, base: u64) -> u32 {
        match self.kind {
            Kind::Native32 => 32,
            Kind::Native64 => 64,
            Kind::Wow64 if base > u64::from(u32::MAX) => 64,
            Kind::Wow64 => 32,
        }
    }

    /// The PE headers of an image of `size` bytes at `base` laid out by [`Self::add_image`]:
    /// `MZ`, `e_lfanew` 0x80, `PE\0\0`, a PE32 or PE32+ optional header, and two sections:
    /// `.text` (code, from the second page to the last two) and `.data` (writable, the last two
    /// pages: the read-write page and the copy-on-write page).
    fn write_pe_headers(&mut self, base: u64, size: u64) {
        let bits = self.image_bits(base);
        let (machine, optional, magic) = if bits == 64 {
            (0x8664u16, 0xf0u16, 0x20bu16)
        } else {
            (0x14c, 0xe0, 0x10b)
        };
        let m = &mut self.dump.memory;
        m.write(base, b"MZ");
        m.write_u32(base + 0x3c, 0x80);
        let nt = base + 0x80;
        m.write(nt, b"PE\0\0");
        m.write_u16(nt + 4, machine);
        m.write_u16(nt + 6, 2);
        m.write_u16(nt + 20, optional);
        m.write_u16(nt + 22, 0x2022); // EXECUTABLE_IMAGE | LARGE_ADDRESS_AWARE | DLL
        m.write_u16(nt + 24, magic);
        m.write_u32(nt + 24 + 56, size as u32); // SizeOfImage
        let table = nt + 24 + u64::from(optional);
        let sections = [
            (".text", PAGE, size - 3 * PAGE, 0x6000_0020u32),
            (".data", size - 2 * PAGE, 2 * PAGE, 0xc000_0040),
        ];
        for (i, (name, rva, len, flags)) in sections.into_iter().enumerate() {
            let h = table + 40 * i as u64;
            m.write(h, name.as_bytes());
            m.write_u32(h + 8, len as u32);
            m.write_u32(h + 12, rva as u32);
            m.write_u32(h + 16, len as u32);
            m.write_u32(h + 36, flags);
        }
    }

    /// Add a thread: TEB (TEB64 + TEB32 on WoW64) and a stack per world (reserve, guard page,
    /// committed part; the committed part is captured), with a context record whose stack pointer
    /// is a page below the stack base (on WoW64 also a `WOW64_CONTEXT`, reached as Windows
    /// reaches it: `TEB64.TlsSlots[1]` (+0x1488) points to the CPU's reserved area, which holds
    /// it at +4). Returns the native TEB address.
    pub fn add_thread(&mut self) -> u64 {
        let id = self.next_thread_id;
        self.next_thread_id += 4;
        let native_bits = if self.kind == Kind::Native32 { 32 } else { 64 };
        let teb_size = if native_bits == 64 { 2 * PAGE } else { PAGE };
        let block = if self.kind == Kind::Wow64 {
            3 * PAGE
        } else {
            teb_size
        };
        self.next_teb -= block;
        let teb = self.next_teb;
        self.world_region(teb, teb_size, PAGE_READWRITE, Usage::Teb, native_bits);
        self.dump.memory.capture(teb, teb_size);
        self.facts.tebs.push((native_bits, teb));
        let (stack_base, stack_limit, dealloc) = self.add_stack(native_bits);
        self.write_teb(
            native_bits,
            teb,
            stack_base,
            stack_limit,
            dealloc,
            self.worlds[0].peb,
        );
        let sp = if native_bits == 64 { "rsp" } else { "esp" };
        self.facts.threads.push(ThreadFacts {
            id,
            bits: native_bits,
            teb,
            stack_base,
            stack_limit,
            registers: vec![(sp, stack_base - PAGE)],
            wow64_context: None,
        });
        if self.kind == Kind::Wow64 {
            let teb32 = teb + 2 * PAGE;
            self.world_region(teb32, PAGE, PAGE_READWRITE, Usage::Teb, 32);
            self.dump.memory.capture(teb32, PAGE);
            self.facts.tebs.push((32, teb32));
            let (b32, l32, d32) = self.add_stack(32);
            let peb32 = self.worlds[1].peb;
            self.write_teb(32, teb32, b32, l32, d32, peb32);
            if self.windows.is_win7() {
                // Windows 7: the TEB32 pointer sits in TEB64.NtTib.ExceptionList.
                self.dump.memory.write_u64(teb, teb32);
            } else {
                // Windows 10+: TEB64.WowTebOffset (+0x180C).
                self.dump.memory.write_u32(teb + 0x180c, (2 * PAGE) as u32);
            }
            // The CPU's reserved area near the top of the 64-bit stack: Flags, Machine
            // (IMAGE_FILE_MACHINE_I386), then the WOW64_CONTEXT.
            let reserved = stack_base - 0x400;
            self.dump.memory.write_u64(teb + 0x1488, reserved);
            self.dump.memory.write_u16(reserved + 2, 0x14c);
            self.facts.threads.push(ThreadFacts {
                id,
                bits: 32,
                teb: teb32,
                stack_base: b32,
                stack_limit: l32,
                registers: Vec::new(),
                wow64_context: Some(reserved + 4),
            });
            let index = self.facts.threads.len() - 1;
            self.set_registers(index, &[("esp", b32 - PAGE)]);
        }
        let captured = stack_base - stack_limit;
        self.dump
            .threads
            .get_or_insert_with(Vec::new)
            .push(ThreadSpec {
                id,
                teb,
                stack_start: stack_limit,
                stack_size: captured,
                registers: Vec::new(),
            });
        let index = self.facts.threads.len() - if self.kind == Kind::Wow64 { 2 } else { 1 };
        self.set_registers(index, &[(sp, stack_base - PAGE)]);
        teb
    }

    /// Set registers of the thread side `index` of [`Facts::threads`] (others keep their values):
    /// in the thread list's context record for a native side, in the `WOW64_CONTEXT` for the
    /// 32-bit side of a WoW64 thread.
    pub fn set_registers(&mut self, index: usize, registers: &[(&'static str, u64)]) {
        let t = &mut self.facts.threads[index];
        for &(name, value) in registers {
            match t.registers.iter_mut().find(|r| r.0 == name) {
                Some(r) => r.1 = value,
                None => t.registers.push((name, value)),
            }
        }
        let (id, regs, wow64) = (t.id, t.registers.clone(), t.wow64_context);
        match wow64 {
            Some(at) => {
                let record = crate::minidump::context_record(Arch::X86, &regs);
                self.dump.memory.write(at, &record);
            }
            None => {
                if let Some(spec) = self.dump.threads.iter_mut().flatten().find(|s| s.id == id) {
                    spec.registers = regs;
                }
            }
        }
    }

    /// The facts of the threads made so far.
    pub fn threads(&self) -> &[ThreadFacts] {
        &self.facts.threads
    }

    /// Record the user addresses of an object graph's objects in the facts.
    pub fn set_objects(&mut self, objects: Vec<u64>) {
        self.facts.objects = objects;
    }

    fn write_teb(&mut self, bits: u32, teb: u64, base: u64, limit: u64, dealloc: u64, peb: u64) {
        let m = &mut self.dump.memory;
        if bits == 64 {
            m.write_u64(teb + 0x08, base);
            m.write_u64(teb + 0x10, limit);
            m.write_u64(teb + 0x30, teb); // NtTib.Self
            m.write_u64(teb + 0x60, peb);
            m.write_u64(teb + 0x1478, dealloc);
        } else {
            m.write_u32(teb + 0x04, base as u32);
            m.write_u32(teb + 0x08, limit as u32);
            m.write_u32(teb + 0x18, teb as u32); // NtTib.Self
            m.write_u32(teb + 0x30, peb as u32);
            m.write_u32(teb + 0xe0c, dealloc as u32);
        }
    }

    /// A 256 KiB stack reservation: reserved part, one guard page, 8 KiB committed.
    fn add_stack(&mut self, bits: u32) -> (u64, u64, u64) {
        let size = 0x4_0000;
        let base = self.alloc_private(size);
        let committed = 2 * PAGE;
        let top = base + size;
        let guard = top - committed - PAGE;
        self.world_region_full(base, guard - base, base, MEM_RESERVE, 0, Usage::Stack, bits);
        self.world_region_full(
            guard,
            PAGE,
            base,
            MEM_COMMIT,
            PAGE_READWRITE | PAGE_GUARD,
            Usage::Stack,
            bits,
        );
        self.world_region_full(
            top - committed,
            committed,
            base,
            MEM_COMMIT,
            PAGE_READWRITE,
            Usage::Stack,
            bits,
        );
        self.dump.memory.capture(top - committed, committed);
        (top, top - committed, base)
    }

    /// The allocations of a segment heap of world `bits` with its first page segment (1 MB, 4 KiB
    /// units): the heap's own 64 KiB, both segment contexts (the second with no segment), and the
    /// page segment with its first `committed` bytes committed and captured (at least its header);
    /// returns (heap, page segment). The heap and segment contents are the segment-heap writer's.
    pub(crate) fn segment_heap_memory(&mut self, bits: u32, committed: u64) -> (u64, u64) {
        assert!(!self.windows.is_win7(), "Windows 7 has no segment heap");
        let heap = self.alloc_private(0x1_0000);
        self.world_region_full(
            heap,
            0x1_0000,
            heap,
            MEM_COMMIT,
            PAGE_READWRITE,
            Usage::Heap,
            bits,
        );
        self.dump.memory.capture(heap, 0x1_0000);
        let seg_size = 0x10_0000u64;
        // Page segments are aligned to their size.
        self.next_private = self.next_private.div_ceil(seg_size) * seg_size;
        let seg = self.alloc_private(seg_size);
        let committed = committed.clamp(if bits == 64 { 0x2000 } else { 0x1000 }, seg_size);
        self.world_region_full(
            seg,
            committed,
            seg,
            MEM_COMMIT,
            PAGE_READWRITE,
            Usage::Heap,
            bits,
        );
        if committed < seg_size {
            self.world_region_full(
                seg + committed,
                seg_size - committed,
                seg,
                MEM_RESERVE,
                0,
                Usage::Heap,
                bits,
            );
        }
        self.dump.memory.capture(seg, committed);
        let sl = self.seg_layout(bits);
        let m = &mut self.dump.memory;
        let sig_off = if bits == 64 { 0x10 } else { 0x08 };
        m.write_u32(heap + sig_off, 0xddee_ddee);
        let (ctx0, ctx_size) = (heap + sl.contexts, sl.ctx_size);
        for i in 0..2u64 {
            let ctx = ctx0 + i * ctx_size;
            let (mask, shift) = if i == 0 {
                (!(seg_size - 1), 12u8)
            } else {
                (!(0x100_0000u64 - 1), 16u8)
            };
            let shift_off = if bits == 64 { 8 } else { 4 };
            let (heap_off, list_off) = (sl.ctx_heap, sl.ctx_list);
            m.write_ptr(bits, ctx, mask);
            // FirstDescriptorIndex: the descriptors fill the first 0x2000 (x64) / 0x1000 (x86).
            let first_index = if bits == 64 { 2 } else { 1 };
            m.write(ctx + shift_off, &[shift, 0, first_index]);
            m.write_ptr(bits, ctx + heap_off, heap);
            let links: Vec<u64> = if i == 0 { vec![seg] } else { vec![] };
            write_circular_list(m, bits, ctx + list_off, &links);
        }
        self.register_heap(
            bits,
            HeapFacts {
                address: heap,
                bits,
                segment_heap: true,
                segments: vec![(seg, seg + seg_size)],
                large_blocks: Vec::new(),
                blocks: Vec::new(),
                lfh_key: None,
                stacks: Vec::new(),
                structures: Vec::new(),
            },
        );
        (heap, seg)
    }

    /// The segment heap layout of a `bits`-bit world of this process.
    pub(crate) fn seg_layout(&self, bits: u32) -> SegLayout {
        let mut l = self.windows.seg_layout(bits);
        if let Some(at) = self.moved_seg_contexts {
            l.contexts = at;
        }
        l
    }

    /// The heaps made so far.
    pub(crate) fn facts_heaps(&self) -> &[HeapFacts] {
        &self.facts.heaps
    }

    /// The heaps made so far, to complete.
    pub(crate) fn facts_heaps_mut(&mut self) -> &mut Vec<HeapFacts> {
        &mut self.facts.heaps
    }

    /// Windows 11 24H2's heap list (reference §11.2): a record per heap `{LIST_ENTRY, Heap, u32}`
    /// (x64 0x30 bytes, Heap at +0x10; x86 0x1C, Heap at +8), linked from a head in ntdll's data,
    /// and each heap's pointer to its record (NT `_HEAP` +0x188 / +0xDC, `_SEGMENT_HEAP` +0x38 /
    /// +0x24). The real records are busy blocks of the process heap; here they sit in a private
    /// page of their own, which changes nothing for a reader of the list.
    fn heap_records_24h2(&mut self) {
        for wi in 0..self.worlds.len() {
            let (bits, heaps) = (self.worlds[wi].bits, self.worlds[wi].heaps.clone());
            if heaps.is_empty() {
                continue;
            }
            let x64 = bits == 64;
            let (record_size, heap_at) = if x64 { (0x30, 0x10) } else { (0x1c, 8) };
            let page = self.add_private(0x1_0000, 0x1000);
            self.dump.memory.capture(page, 0x1000);
            let head = self.ntdll_data(bits) + 0x600;
            let records: Vec<u64> = (0..heaps.len() as u64).map(|i| page + i * 0x40).collect();
            let segment: Vec<bool> = heaps
                .iter()
                .map(|h| {
                    self.facts
                        .heaps
                        .iter()
                        .any(|f| f.address == *h && f.segment_heap)
                })
                .collect();
            let m = &mut self.dump.memory;
            write_circular_list(m, bits, head, &records);
            for ((&r, &h), seg) in records.iter().zip(&heaps).zip(segment) {
                assert!(
                    r + record_size <= page + 0x1000,
                    "too many heaps for one page"
                );
                m.write_ptr(bits, r + heap_at, h);
                m.write_u32(r + heap_at + u64::from(bits / 8), 1);
                let back = match (seg, x64) {
                    (false, true) => 0x188,
                    (false, false) => 0xdc,
                    (true, true) => 0x38,
                    (true, false) => 0x24,
                };
                m.write_ptr(bits, h + back, r);
            }
        }
    }

    /// The captured data page of the world's ntdll (where its ProcessHeaps array lives).
    pub(crate) fn ntdll_data(&self, bits: u32) -> u64 {
        self.worlds
            .iter()
            .find(|w| w.bits == bits)
            .expect("a world of that width")
            .heap_array
    }

    /// A page heap (reference §4.1): its facts go just before its normal heap's, it is not in
    /// ProcessHeaps (its normal heap is), and its root joins the world's `NextHeap` list; the
    /// process heap's page heap becomes `PEB.ProcessHeap`.
    pub(crate) fn register_page_heap(
        &mut self,
        bits: u32,
        facts: HeapFacts,
        root: u64,
        normal: u64,
    ) {
        let world = self
            .worlds
            .iter_mut()
            .find(|w| w.bits == bits)
            .expect("no world of that bitness");
        world.page_roots.push(root);
        if world.heaps.first() == Some(&normal) {
            world.process_heap = Some(facts.address);
        }
        let at = self
            .facts
            .heaps
            .iter()
            .position(|h| h.address == normal)
            .unwrap_or(self.facts.heaps.len());
        self.facts.heaps.insert(at, facts);
    }

    /// Link each world's page-heap roots through `NextHeap` (x64 +0x138, x86 +0xA4), the list
    /// head in verifier.dll's data.
    fn link_page_heaps(&mut self) {
        for wi in 0..self.worlds.len() {
            let (bits, roots) = (self.worlds[wi].bits, self.worlds[wi].page_roots.clone());
            if roots.is_empty() {
                continue;
            }
            let (major, minor, build) = self.windows.version();
            let (path, base) = match (bits, self.kind) {
                (64, _) => (r"C:\Windows\System32\verifier.dll", 0x7fe_f600_0000),
                (_, Kind::Wow64) => (r"C:\Windows\SysWOW64\verifier.dll", 0x6f00_0000),
                _ => (r"C:\Windows\System32\verifier.dll", 0x6f00_0000),
            };
            let data = self.add_image(
                path,
                base,
                0x8000,
                [major as u16, minor as u16, build as u16, 1],
                true,
            );
            let next = if bits == 64 { 0x138 } else { 0xa4 };
            let links: Vec<u64> = roots.iter().map(|r| r + next).collect();
            write_circular_list(&mut self.dump.memory, bits, data + 0x100, &links);
        }
    }

    pub(crate) fn register_heap(&mut self, bits: u32, facts: HeapFacts) {
        let world = self
            .worlds
            .iter_mut()
            .find(|w| w.bits == bits)
            .expect("no world of that bitness");
        world.heaps.push(facts.address);
        self.facts.heaps.push(facts);
    }

    /// Private memory the OS does not know the purpose of (an app's VirtualAlloc): `<unknown>`.
    pub fn add_private(&mut self, size: u64, committed: u64) -> u64 {
        self.add_private_usage(size, committed, Usage::Unknown)
    }

    /// A heap region (committed or reserved part of a segment or large block) of world `bits`.
    pub(crate) fn heap_region(
        &mut self,
        base: u64,
        size: u64,
        allocation_base: u64,
        state: u32,
        bits: u32,
    ) {
        let protect = if state == MEM_COMMIT {
            PAGE_READWRITE
        } else {
            0
        };
        self.world_region_full(
            base,
            size,
            allocation_base,
            state,
            protect,
            Usage::Heap,
            bits,
        );
    }

    /// A committed page-heap reservation of world `bits`.
    pub(crate) fn page_heap_region(&mut self, base: u64, size: u64, bits: u32) {
        self.world_region_full(
            base,
            size,
            base,
            MEM_COMMIT,
            PAGE_READWRITE,
            Usage::PageHeap,
            bits,
        );
    }

    /// Write a circular `LIST_ENTRY` list with head `head` and entries `links`.
    pub(crate) fn write_list(&mut self, bits: u32, head: u64, links: &[u64]) {
        write_circular_list(&mut self.dump.memory, bits, head, links);
    }

    /// Private memory with the given usage label.
    pub(crate) fn add_private_usage(&mut self, size: u64, committed: u64, usage: Usage) -> u64 {
        let base = self.alloc_private(size);
        if committed > 0 {
            self.labeled(
                Region {
                    base,
                    allocation_base: base,
                    allocation_protect: PAGE_READWRITE,
                    size: committed,
                    state: MEM_COMMIT,
                    protect: PAGE_READWRITE,
                    kind: MEM_PRIVATE,
                },
                usage,
                0,
            );
        }
        if size > committed {
            self.labeled(
                Region {
                    base: base + committed,
                    allocation_base: base,
                    allocation_protect: PAGE_READWRITE,
                    size: size - committed,
                    state: MEM_RESERVE,
                    protect: 0,
                    kind: MEM_PRIVATE,
                },
                usage,
                0,
            );
        }
        base
    }

    /// Like [`ProcessBuilder::add_private`], with the committed part captured (as zeros that take
    /// no memory in the builder): the bulk of a benchmark dump.
    pub fn add_private_captured(&mut self, size: u64, committed: u64) -> u64 {
        let base = self.add_private(size, committed);
        if committed > 0 {
            self.dump.memory.capture_zeros(base, committed);
        }
        base
    }

    /// A mapped view with no file name in the dump: `<unknown>`, as WinDbg shows it for dumps.
    pub fn add_mapped(&mut self, size: u64) -> u64 {
        let base = self.alloc_private(size);
        self.mapped(base, size, 0, PAGE_READONLY, Usage::Unknown);
        base
    }

    fn mapped(&mut self, base: u64, committed: u64, reserved: u64, protect: u32, usage: Usage) {
        self.labeled(
            Region {
                base,
                allocation_base: base,
                allocation_protect: protect,
                size: committed,
                state: MEM_COMMIT,
                protect,
                kind: MEM_MAPPED,
            },
            usage,
            0,
        );
        if reserved > 0 {
            self.labeled(
                Region {
                    base: base + committed,
                    allocation_base: base,
                    allocation_protect: protect,
                    size: reserved,
                    state: MEM_RESERVE,
                    protect: 0,
                    kind: MEM_MAPPED,
                },
                usage,
                0,
            );
        }
    }

    pub(crate) fn alloc_private(&mut self, size: u64) -> u64 {
        // Keep clear of the PEB/TEB/shared-data area just below 2 GB; 64-bit processes go on
        // at 8 GB, above the main image.
        if self.next_private + size > 0x7000_0000 && self.next_private < 0x1_0000_0000 {
            assert!(
                self.kind == Kind::Native64,
                "a 32-bit synthetic process ran out of address space"
            );
            self.next_private = 0x2_0000_0000;
        }
        let base = self.next_private;
        self.next_private = (base + size).div_ceil(ALLOC_GRANULARITY) * ALLOC_GRANULARITY;
        base
    }

    fn world_region(&mut self, base: u64, size: u64, protect: u32, usage: Usage, bits: u32) {
        self.world_region_full(base, size, base, MEM_COMMIT, protect, usage, bits);
    }

    #[allow(clippy::too_many_arguments)]
    fn world_region_full(
        &mut self,
        base: u64,
        size: u64,
        allocation_base: u64,
        state: u32,
        protect: u32,
        usage: Usage,
        bits: u32,
    ) {
        self.labeled(
            Region {
                base,
                allocation_base,
                allocation_protect: PAGE_READWRITE,
                size,
                state,
                protect,
                kind: MEM_PRIVATE,
            },
            usage,
            bits,
        );
    }

    pub(crate) fn labeled(&mut self, region: Region, usage: Usage, bits: u32) {
        self.dump.memory.add_region(region);
        self.facts.regions.push(Labeled {
            region,
            usage,
            bits,
        });
    }

    /// Write the PEBs' heap lists and NtGlobalFlag, complete the region table with free regions up
    /// to the top of the user address space, and return the dump and the facts.
    pub fn finish(mut self) -> (MinidumpBuilder, Facts) {
        self.link_page_heaps();
        // A future build is imagined with 24H2's heap list.
        let v24h2 = matches!(self.windows, Windows::Win11v24H2 | Windows::Future);
        if v24h2 {
            self.heap_records_24h2();
        }
        for w in &self.worlds {
            let o = if w.bits == 64 { &PEB64 } else { &PEB32 };
            let m = &mut self.dump.memory;
            m.write_u32(w.peb + o.nt_global_flag, self.nt_global_flag);
            // 24H2 keeps only the first heap in ProcessHeaps (reference §11.2).
            let listed = if v24h2 {
                w.heaps.len().min(1)
            } else {
                w.heaps.len()
            };
            m.write_u32(w.peb + o.number_of_heaps, listed as u32);
            // The array starts with 16 slots and grows 16 at a time.
            m.write_u32(
                w.peb + o.maximum_number_of_heaps,
                (w.heaps.len() as u32).max(1).div_ceil(16) * 16,
            );
            m.write_ptr(w.bits, w.peb + o.process_heaps, w.heap_array);
            m.write_ptr(
                w.bits,
                w.peb + o.process_heap,
                w.process_heap.or(w.heaps.first().copied()).unwrap_or(0),
            );
            let step = u64::from(w.bits / 8);
            for (i, h) in w.heaps.iter().take(listed).enumerate() {
                m.write_ptr(w.bits, w.heap_array + step * i as u64, *h);
            }
        }
        // Top of the user address space: 2 GB (x86), 8 TB (x64 Windows 7), 128 TB (x64 Windows 8.1+).
        let top = match self.kind {
            Kind::Native32 => 0x7fff_0000,
            _ if self.windows.is_win7() => 0x7ff_ffff_0000,
            _ => 0x7fff_ffff_0000,
        };
        self.dump.memory.fill_free(top);
        let labeled: std::collections::HashMap<u64, Labeled> = self
            .facts
            .regions
            .iter()
            .map(|l| (l.region.base, *l))
            .collect();
        self.facts.regions = self
            .dump
            .memory
            .regions()
            .iter()
            .map(|r| {
                labeled.get(&r.base).copied().unwrap_or(Labeled {
                    region: *r,
                    usage: Usage::Free,
                    bits: 0,
                })
            })
            .collect();
        (self.dump, self.facts)
    }
}

/// A GUID `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX` as CodeView stores it: Data1 (u32 LE), Data2
/// (u16 LE), Data3 (u16 LE), Data4 (8 bytes).
pub fn guid_bytes(guid: &str) -> [u8; 16] {
    let hex: String = guid.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    let b: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex GUID"))
        .collect();
    [
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
        b[14], b[15],
    ]
}

/// Write a circular doubly linked list (`LIST_ENTRY`) with head `head` and entries `links`.
fn write_circular_list(m: &mut ProcessMemory, bits: u32, head: u64, links: &[u64]) {
    let step = u64::from(bits / 8);
    let all: Vec<u64> = std::iter::once(head).chain(links.iter().copied()).collect();
    for (i, &node) in all.iter().enumerate() {
        let next = all[(i + 1) % all.len()];
        let prev = all[(i + all.len() - 1) % all.len()];
        m.write_ptr(bits, node, next);
        m.write_ptr(bits, node + step, prev);
    }
}
