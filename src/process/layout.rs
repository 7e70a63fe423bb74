//! Structure offsets of the process-level Windows structures heapdiag reads, as data.
//!
//! Sources: `shared/docs/windows-heap-reference.md` §1.1–§1.3 (TEB, PEB, WoW64), §2.1–§2.2 and
//! §2.8 (`_HEAP`, `_HEAP_SEGMENT`, `_HEAP_VIRTUAL_ALLOC_ENTRY`), §6.2–§6.3 (`_SEGMENT_HEAP`), and
//! the WinDbg `dt` dumps in `shared/docs/layouts/` (Win10 x64, Win7 x86). PEB and TEB offsets used
//! here are identical from Windows 7 to 11.

/// TEB offsets for one bitness.
#[derive(Clone, Copy, Debug)]
pub struct TebLayout {
    /// `NtTib.StackBase`.
    pub stack_base: u64,
    /// `NtTib.StackLimit`.
    pub stack_limit: u64,
    /// `NtTib.Self`.
    pub self_ptr: u64,
    /// `ProcessEnvironmentBlock`.
    pub peb: u64,
    /// `DeallocationStack`: the allocation base of the stack reservation.
    pub deallocation_stack: u64,
    /// Bytes of the TEB page(s) `!address` labels TEB (x64 0x2000, x86 0x1000).
    pub region_size: u64,
}

/// TEB of a 64-bit process (and the TEB64 of a WoW64 process).
pub const TEB64: TebLayout = TebLayout {
    stack_base: 0x08,
    stack_limit: 0x10,
    self_ptr: 0x30,
    peb: 0x60,
    deallocation_stack: 0x1478,
    region_size: 0x2000,
};

/// TEB of a 32-bit process (and the TEB32 of a WoW64 process).
pub const TEB32: TebLayout = TebLayout {
    stack_base: 0x04,
    stack_limit: 0x08,
    self_ptr: 0x18,
    peb: 0x30,
    deallocation_stack: 0xe0c,
    region_size: 0x1000,
};

/// `TEB64.WowTebOffset` (Windows 10+): signed distance from TEB64 to TEB32.
pub const TEB64_WOW_TEB_OFFSET: u64 = 0x180c;

/// PEB offsets for one bitness.
#[derive(Clone, Copy, Debug)]
pub struct PebLayout {
    /// `ImageBaseAddress`.
    pub image_base: u64,
    /// `ProcessHeap`.
    pub process_heap: u64,
    /// `NtGlobalFlag` (u32).
    pub nt_global_flag: u64,
    /// `NumberOfHeaps` (u32).
    pub number_of_heaps: u64,
    /// `MaximumNumberOfHeaps` (u32).
    pub maximum_number_of_heaps: u64,
    /// `ProcessHeaps` (pointer to the heap pointer array).
    pub process_heaps: u64,
    /// `OSMajorVersion` (u32); `OSMinorVersion` follows it.
    pub os_major: u64,
    /// `OSBuildNumber` (u16).
    pub os_build: u64,
    /// Pointers to OS-owned shared regions that `!address` labels Other, with their labels.
    pub shared: &'static [(u64, &'static str)],
}

/// PEB of a 64-bit process.
pub const PEB64: PebLayout = PebLayout {
    image_base: 0x10,
    process_heap: 0x30,
    nt_global_flag: 0xbc,
    number_of_heaps: 0xe8,
    maximum_number_of_heaps: 0xec,
    process_heaps: 0xf0,
    os_major: 0x118,
    os_build: 0x120,
    shared: &[
        (0x68, "ApiSetMap"),
        (0x88, "CSR shared memory"),
        (0xa0, "NLS tables (ANSI code page)"),
        (0xa8, "NLS tables (OEM code page)"),
        (0xb0, "NLS tables (Unicode case table)"),
        (0xf8, "GDI shared handle table"),
        (0x2f8, "Activation context data"),
        (0x308, "System default activation context data"),
    ],
};

/// PEB of a 32-bit process (and the PEB32 of a WoW64 process).
pub const PEB32: PebLayout = PebLayout {
    image_base: 0x08,
    process_heap: 0x18,
    nt_global_flag: 0x68,
    number_of_heaps: 0x88,
    maximum_number_of_heaps: 0x8c,
    process_heaps: 0x90,
    os_major: 0xa4,
    os_build: 0xac,
    shared: &[
        (0x38, "ApiSetMap"),
        (0x4c, "CSR shared memory"),
        (0x58, "NLS tables (ANSI code page)"),
        (0x5c, "NLS tables (OEM code page)"),
        (0x60, "NLS tables (Unicode case table)"),
        (0x94, "GDI shared handle table"),
        (0x1f8, "Activation context data"),
        (0x200, "System default activation context data"),
    ],
};

/// The `_HEAP` layout families that differ in the fields heapdiag reads here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeapFamily {
    /// Windows 7 SP1 (ntdll 6.1).
    Win7,
    /// Windows 8 and later (ntdll 6.2+), through Windows 11.
    Win8Plus,
}

impl HeapFamily {
    /// The family of an ntdll (or OS) version.
    pub fn for_version(major: u32, minor: u32) -> Self {
        if (major, minor) < (6, 2) {
            HeapFamily::Win7
        } else {
            HeapFamily::Win8Plus
        }
    }

    /// The other family, tried when the chosen one does not validate.
    pub fn other(self) -> Self {
        match self {
            HeapFamily::Win7 => HeapFamily::Win8Plus,
            HeapFamily::Win8Plus => HeapFamily::Win7,
        }
    }

    /// A human name.
    pub fn name(self) -> &'static str {
        match self {
            HeapFamily::Win7 => "Windows 7",
            HeapFamily::Win8Plus => "Windows 8+",
        }
    }
}

/// `_HEAP`, `_HEAP_SEGMENT` and `_HEAP_VIRTUAL_ALLOC_ENTRY` offsets heapdiag needs to find a heap's
/// address ranges.
#[derive(Clone, Copy, Debug)]
pub struct NtHeapLayout {
    /// `_HEAP.Segment.SegmentSignature` (also `_HEAP_SEGMENT.SegmentSignature`), 0xFFEEFFEE.
    pub segment_signature: u64,
    /// `_HEAP.VirtualAllocdBlocks` (LIST_ENTRY head).
    pub virtual_allocd_blocks: u64,
    /// `_HEAP.SegmentList` (LIST_ENTRY head).
    pub segment_list: u64,
    /// `_HEAP_SEGMENT.SegmentListEntry`.
    pub seg_list_entry: u64,
    /// `_HEAP_SEGMENT.Heap`.
    pub seg_heap: u64,
    /// `_HEAP_SEGMENT.BaseAddress`.
    pub seg_base: u64,
    /// `_HEAP_SEGMENT.NumberOfPages` (u32).
    pub seg_pages: u64,
    /// `_HEAP_VIRTUAL_ALLOC_ENTRY.CommitSize`.
    pub vae_commit: u64,
    /// `_HEAP_VIRTUAL_ALLOC_ENTRY.ReserveSize`.
    pub vae_reserve: u64,
}

/// The NT heap layout of a family and bitness.
pub fn nt_heap(family: HeapFamily, bits: u32) -> NtHeapLayout {
    match (bits, family) {
        (64, HeapFamily::Win7) => NtHeapLayout {
            segment_signature: 0x10,
            virtual_allocd_blocks: 0x118,
            segment_list: 0x128,
            seg_list_entry: 0x18,
            seg_heap: 0x28,
            seg_base: 0x30,
            seg_pages: 0x38,
            vae_commit: 0x20,
            vae_reserve: 0x28,
        },
        (64, HeapFamily::Win8Plus) => NtHeapLayout {
            virtual_allocd_blocks: 0x110,
            segment_list: 0x120,
            ..nt_heap(HeapFamily::Win7, 64)
        },
        (_, HeapFamily::Win7) => NtHeapLayout {
            segment_signature: 0x08,
            virtual_allocd_blocks: 0xa0,
            segment_list: 0xa8,
            seg_list_entry: 0x10,
            seg_heap: 0x18,
            seg_base: 0x1c,
            seg_pages: 0x20,
            vae_commit: 0x10,
            vae_reserve: 0x14,
        },
        (_, HeapFamily::Win8Plus) => NtHeapLayout {
            virtual_allocd_blocks: 0x9c,
            segment_list: 0xa4,
            ..nt_heap(HeapFamily::Win7, 32)
        },
    }
}

/// `_SEGMENT_HEAP` / `_HEAP_SEG_CONTEXT` offsets heapdiag needs (layouts B and D–G of §6.2).
#[derive(Clone, Copy, Debug)]
pub struct SegmentHeapLayout {
    /// `_HEAP_SEG_CONTEXT.UnitShift` (u8).
    pub ctx_unit_shift: u64,
    /// `_HEAP_SEG_CONTEXT.Heap` (back-pointer).
    pub ctx_heap: u64,
    /// `_HEAP_SEG_CONTEXT.SegmentListHead` (LIST_ENTRY).
    pub ctx_segment_list: u64,
    /// Offset of `SegContexts[0]` in `_SEGMENT_HEAP`.
    pub seg_contexts: u64,
    /// `sizeof(_HEAP_SEG_CONTEXT)`.
    pub ctx_size: u64,
    /// `_SEGMENT_HEAP.LargeAllocMetadata` (`_RTL_RB_TREE`), when known for this layout.
    pub large_alloc_metadata: Option<u64>,
    /// `_HEAP_LARGE_ALLOC_DATA.VirtualAddress`.
    pub large_virtual_address: u64,
    /// Offset of the `AllocatedPages` bitfield word in `_HEAP_LARGE_ALLOC_DATA`.
    pub large_pages_word: u64,
    /// Width of `AllocatedPages` in bits (it starts at bit 12 of that word).
    pub large_pages_bits: u32,
}

/// Candidate segment-heap layouts for a bitness, tried in order; the one whose context's `Heap`
/// back-pointer points at the heap wins.
pub fn segment_heap_candidates(bits: u32) -> &'static [SegmentHeapLayout] {
    const X64: &[SegmentHeapLayout] = &[
        // Layouts D–E (Windows 10 1809 – 22H2).
        SegmentHeapLayout {
            ctx_unit_shift: 0x08,
            ctx_heap: 0x38,
            ctx_segment_list: 0x48,
            seg_contexts: 0x100,
            ctx_size: 0xc0,
            large_alloc_metadata: Some(0x48),
            large_virtual_address: 0x18,
            large_pages_word: 0x20,
            large_pages_bits: 52,
        },
        // Layouts F–G (Windows 11).
        SegmentHeapLayout {
            ctx_unit_shift: 0x08,
            ctx_heap: 0x38,
            ctx_segment_list: 0x48,
            seg_contexts: 0x140,
            ctx_size: 0xc0,
            large_alloc_metadata: Some(0x48),
            large_virtual_address: 0x18,
            large_pages_word: 0x20,
            large_pages_bits: 52,
        },
        // Layout B (Windows 10 1709).
        SegmentHeapLayout {
            ctx_unit_shift: 0x08,
            ctx_heap: 0x60,
            ctx_segment_list: 0x20,
            seg_contexts: 0x70,
            ctx_size: 0x68,
            large_alloc_metadata: Some(0x50),
            large_virtual_address: 0x18,
            large_pages_word: 0x20,
            large_pages_bits: 52,
        },
    ];
    const X86: &[SegmentHeapLayout] = &[SegmentHeapLayout {
        ctx_unit_shift: 0x04,
        ctx_heap: 0x24,
        ctx_segment_list: 0x44,
        seg_contexts: 0x100,
        ctx_size: 0x80,
        large_alloc_metadata: None,
        large_virtual_address: 0x0c,
        large_pages_word: 0x10,
        large_pages_bits: 20,
    }];
    if bits == 64 {
        X64
    } else {
        X86
    }
}

/// NtGlobalFlag `FLG_USER_STACK_TRACE_DB` (+ust).
pub const FLG_USER_STACK_TRACE_DB: u32 = 0x0000_1000;
/// NtGlobalFlag `FLG_HEAP_PAGE_ALLOCS` (+hpa, full page heap).
pub const FLG_HEAP_PAGE_ALLOCS: u32 = 0x0200_0000;

/// NtGlobalFlag bits with their gflags abbreviations.
pub const GLOBAL_FLAGS: &[(u32, &str)] = &[
    (0x0000_0001, "soe"),
    (0x0000_0002, "sls"),
    (0x0000_0004, "dic"),
    (0x0000_0010, "htc"),
    (0x0000_0020, "hfc"),
    (0x0000_0040, "hpc"),
    (0x0000_0080, "hvc"),
    (0x0000_0100, "vrf"),
    (0x0000_0800, "htg"),
    (0x0000_1000, "ust"),
    (0x0000_4000, "otl"),
    (0x0000_8000, "htd"),
    (0x0002_0000, "dse"),
    (0x0010_0000, "scb"),
    (0x0040_0000, "dhc"),
    (0x0080_0000, "ece"),
    (0x0200_0000, "hpa"),
    (0x2000_0000, "dpd"),
];

/// `+ust +hpa …` for a NtGlobalFlag value; bits without a known abbreviation print as hex.
pub fn global_flag_names(flag: u32) -> Vec<String> {
    let mut rest = flag;
    let mut out = Vec::new();
    for (bit, name) in GLOBAL_FLAGS {
        if flag & bit != 0 {
            out.push(format!("+{name}"));
            rest &= !bit;
        }
    }
    if rest != 0 {
        out.push(format!("{rest:#x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_follow_the_reference_tables() {
        assert_eq!(HeapFamily::for_version(6, 1), HeapFamily::Win7);
        assert_eq!(HeapFamily::for_version(6, 3), HeapFamily::Win8Plus);
        assert_eq!(HeapFamily::for_version(10, 0), HeapFamily::Win8Plus);
        let l = nt_heap(HeapFamily::Win8Plus, 32);
        assert_eq!(
            (l.segment_list, l.virtual_allocd_blocks, l.seg_base),
            (0xa4, 0x9c, 0x1c)
        );
        let l = nt_heap(HeapFamily::Win7, 64);
        assert_eq!((l.segment_list, l.virtual_allocd_blocks), (0x128, 0x118));
    }

    #[test]
    fn global_flags_decode() {
        assert_eq!(global_flag_names(0x0200_1000), vec!["+ust", "+hpa"]);
        assert_eq!(global_flag_names(0x1000_0000), vec!["0x10000000"]);
        assert!(global_flag_names(0).is_empty());
    }
}
