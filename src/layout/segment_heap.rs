//! `_SEGMENT_HEAP` / `_HEAP_SEG_CONTEXT` / `_HEAP_LARGE_ALLOC_DATA` offsets (reference §6.2–§6.3,
//! §6.8), for the layouts heapdiag can locate without symbols.

/// Offsets heapdiag needs to find a segment heap's address ranges.
#[derive(Clone, Copy, Debug)]
pub struct SegmentHeapLayout {
    /// The Windows builds it belongs to, for notes (`"10 1809 – 22H2"`).
    pub name: &'static str,
    /// The first ntdll build (10.0.x) that uses it; 0 for a layout found by its shape.
    pub first_build: u32,
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
    /// `_SEGMENT_HEAP.LargeAllocMetadata` (`_RTL_RB_TREE`).
    pub large_alloc_metadata: u64,
    /// `_HEAP_LARGE_ALLOC_DATA.VirtualAddress`.
    pub large_virtual_address: u64,
    /// Offset of the `AllocatedPages` bitfield word in `_HEAP_LARGE_ALLOC_DATA`.
    pub large_pages_word: u64,
    /// Width of `AllocatedPages` in bits (it starts at bit 12 of that word).
    pub large_pages_bits: u32,
    /// The range type (`RangeFlags & 0xC`) of LFH subsegments: 0x8, but 0x4 on 1709 (§11.3).
    pub lfh_range: u8,
    /// The range type of VS subsegments: 0xC, but 0x8 on 1709 (§11.3).
    pub vs_range: u8,
    /// Where `RtlpHpHeapGlobals.LfhKey` lies from `HeapKey`, in pointers: +1, but −1 on 1709
    /// (§11.3).
    pub lfh_key_after: bool,
}

/// Windows 10 1809 – 22H2, x64 (layouts D–E): the base the other x64 layouts differ from.
const X64_1809: SegmentHeapLayout = SegmentHeapLayout {
    name: "10 1809 – 22H2",
    first_build: 17763,
    ctx_unit_shift: 0x08,
    ctx_heap: 0x38,
    ctx_segment_list: 0x48,
    seg_contexts: 0x100,
    ctx_size: 0xc0,
    large_alloc_metadata: 0x48,
    large_virtual_address: 0x18,
    large_pages_word: 0x20,
    large_pages_bits: 52,
    lfh_range: 0x8,
    vs_range: 0xc,
    lfh_key_after: true,
};

/// The x64 candidates, in the order they are tried.
const X64: &[SegmentHeapLayout] = &[
    // Layouts D–E (Windows 10 1809 – 22H2).
    X64_1809,
    // Layouts F–G (Windows 11): the contexts moved to +0x140.
    SegmentHeapLayout {
        name: "11",
        first_build: 22000,
        seg_contexts: 0x140,
        ..X64_1809
    },
    // Layout C (Windows 10 1803, ntdll type dump): 0x78-byte contexts at +0x70 with the
    // back-pointer at +0x70. Tried before B, whose `Heap` (+0xD0) C keeps an EnvHandle at.
    SegmentHeapLayout {
        name: "10 1803",
        first_build: 17134,
        ctx_heap: 0x70,
        ctx_segment_list: 0x20,
        seg_contexts: 0x70,
        ctx_size: 0x78,
        large_alloc_metadata: 0x50,
        ..X64_1809
    },
    // Layout B (Windows 10 1709).
    SegmentHeapLayout {
        name: "10 1709",
        first_build: 16299,
        ctx_heap: 0x60,
        ctx_segment_list: 0x20,
        seg_contexts: 0x70,
        ctx_size: 0x68,
        large_alloc_metadata: 0x50,
        lfh_range: 0x4,
        vs_range: 0x8,
        lfh_key_after: false,
        ..X64_1809
    },
];

/// Windows 10 1809 – 22H2, x86: the base the other x86 layouts differ from.
const X86_1809: SegmentHeapLayout = SegmentHeapLayout {
    name: "10 1809 – 22H2",
    first_build: 17763,
    ctx_unit_shift: 0x04,
    ctx_heap: 0x24,
    ctx_segment_list: 0x44,
    seg_contexts: 0x100,
    ctx_size: 0x80,
    large_alloc_metadata: 0x44,
    large_virtual_address: 0x0c,
    large_pages_word: 0x10,
    large_pages_bits: 20,
    lfh_range: 0x8,
    vs_range: 0xc,
    lfh_key_after: true,
};

/// The x86 candidates, in the order they are tried.
const X86: &[SegmentHeapLayout] = &[
    // Windows 10 1809 – 22H2 (ntdll type dumps of 1909 and 2004).
    X86_1809,
    // Windows 10 1803: 0x40-byte contexts at +0x44, back-pointer +0x3C, LargeAllocMetadata +0x34.
    SegmentHeapLayout {
        name: "10 1803",
        first_build: 17134,
        ctx_heap: 0x3c,
        ctx_segment_list: 0x14,
        seg_contexts: 0x44,
        ctx_size: 0x40,
        large_alloc_metadata: 0x34,
        ..X86_1809
    },
    // Windows 10 1709: 0x38-byte contexts at +0x40, back-pointer +0x34, LargeAllocMetadata +0x30.
    SegmentHeapLayout {
        name: "10 1709",
        first_build: 16299,
        ctx_heap: 0x34,
        ctx_segment_list: 0x14,
        seg_contexts: 0x40,
        ctx_size: 0x38,
        large_alloc_metadata: 0x30,
        lfh_range: 0x4,
        vs_range: 0x8,
        lfh_key_after: false,
        ..X86_1809
    },
];

/// Candidate layouts for a bitness, in the order they are tried when the ntdll version's own
/// layout does not fit (see [`expected`]); the one whose context's `Heap` back-pointer points at
/// the heap wins.
pub fn candidates(bits: u32) -> &'static [SegmentHeapLayout] {
    if bits == 64 {
        X64
    } else {
        X86
    }
}

/// The layout ntdll build `build` (10.0.x) uses in a `bits`-bit world: the candidate with the
/// latest first build not after it (none before 1709, which had no segment contexts).
pub fn expected(bits: u32, build: u32) -> Option<&'static SegmentHeapLayout> {
    candidates(bits)
        .iter()
        .filter(|l| l.first_build <= build)
        .max_by_key(|l| l.first_build)
}

/// Offsets inside page segments and subsegments, per pointer width (reference §6.4–§6.8; x86 from
/// the 1809–1903-era x86 type dumps: `_HEAP_LFH_SUBSEGMENT` BlockCount +0x12, BlockOffsets +0x18,
/// BlockBitmap +0x20; `_HEAP_VS_CHUNK_HEADER` 8 bytes with a 32-bit `Sizes`).
#[derive(Clone, Copy, Debug)]
pub struct SegmentShape {
    /// 32 or 64.
    pub bits: u32,
    /// `_HEAP_PAGE_SEGMENT.Signature` (pointer-sized).
    pub signature: u64,
    /// `sizeof(_HEAP_PAGE_RANGE_DESCRIPTOR)`.
    pub descriptor: u64,
    /// `RangeFlags` in a descriptor (x86: its low 5 bits).
    pub range_flags: u64,
    /// `UnitSize` in a descriptor.
    pub unit_size: u64,
    /// `_HEAP_VS_SUBSEGMENT.Size` (u16; the u16 after it is `Signature ^ 0x2BED`).
    pub vs_size: u64,
    /// First chunk header in a VS subsegment.
    pub vs_first: u64,
    /// `sizeof(_HEAP_VS_CHUNK_HEADER)`, also the VS size unit.
    pub vs_header: u64,
    /// `_HEAP_LFH_SUBSEGMENT.BlockCount` (u16).
    pub lfh_count: u64,
    /// `_HEAP_LFH_SUBSEGMENT.BlockOffsets` (u32, encoded).
    pub lfh_offsets: u64,
    /// `_HEAP_LFH_SUBSEGMENT.BlockBitmap`.
    pub lfh_bitmap: u64,
    /// `_SEGMENT_HEAP.GlobalFlags` (u32).
    pub global_flags: u64,
    /// `CommittedPageCount` of a descriptor: (byte offset, shift, mask) — x64 the u8 at +0x19,
    /// x86 the top 3 bits of the byte at +0x0C (observed on real 19041 heaps: the pages of the
    /// unit that are committed).
    pub committed_pages: (u64, u32, u8),
    /// Bytes of the descriptor array at the start of a page segment (its committed header).
    pub descriptor_bytes: u64,
    /// `_SEGMENT_HEAP_EXTRA` plus the interceptor's unit: the +ust extra, and the alignment of
    /// the requested size it follows (0x20 and 16 on x64, 0x10 and 8 on x86; §6.9).
    pub extra: u64,
    /// Alignment of the requested size that the +ust extra follows.
    pub extra_align: u64,
}

impl SegmentShape {
    /// The offsets for pointer width `bits`.
    pub fn new(bits: u32) -> Self {
        if bits == 64 {
            SegmentShape {
                bits,
                signature: 0x10,
                descriptor: 0x20,
                range_flags: 0x18,
                unit_size: 0x1f,
                vs_size: 0x20,
                vs_first: 0x30,
                vs_header: 0x10,
                lfh_count: 0x22,
                lfh_offsets: 0x28,
                lfh_bitmap: 0x30,
                global_flags: 0x14,
                committed_pages: (0x19, 0, 0xff),
                descriptor_bytes: 0x2000,
                extra: 0x20,
                extra_align: 16,
            }
        } else {
            SegmentShape {
                bits,
                signature: 0x08,
                descriptor: 0x10,
                range_flags: 0x0c,
                unit_size: 0x0f,
                vs_size: 0x14,
                vs_first: 0x18,
                vs_header: 0x08,
                lfh_count: 0x12,
                lfh_offsets: 0x18,
                lfh_bitmap: 0x20,
                global_flags: 0x0c,
                committed_pages: (0x0c, 5, 0x7),
                descriptor_bytes: 0x1000,
                extra: 0x10,
                extra_align: 8,
            }
        }
    }

    /// All bits of a pointer-sized value.
    pub fn mask(&self) -> u64 {
        pointer_mask(self.bits)
    }
}

/// All bits of a pointer of a `bits`-bit world.
pub fn pointer_mask(bits: u32) -> u64 {
    if bits == 64 {
        u64::MAX
    } else {
        u64::from(u32::MAX)
    }
}
