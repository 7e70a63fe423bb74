//! NT heap structure offsets by layout family and bitness: `_HEAP`, `_HEAP_SEGMENT`,
//! `_HEAP_UCR_DESCRIPTOR`, `_HEAP_VIRTUAL_ALLOC_ENTRY`, and the LFH's `_LFH_HEAP`,
//! `_HEAP_SUBSEGMENT` and `_HEAP_USERDATA_HEADER`.
//!
//! Source: `shared/docs/windows-heap-reference.md` §2.1–§2.8 and §3.2–§3.3, checked against the
//! Windows 7 SP1 heaps of `fizzbuzz_wow64.dmp` (x86 and x64) where noted in `docs/heaps.md`.

/// The `_HEAP` layout families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NtFamily {
    /// Windows 7 SP1 (ntdll 6.1): the pre-Windows 8 LFH.
    Win7,
    /// Windows 8 (ntdll 6.2): new LFH, first-chunk offset stored in clear.
    Win8,
    /// Windows 8.1 and Windows 10 1507/1511 (ntdll 6.3, 10.0 before build 14393): encoded offsets.
    Win81,
    /// Windows 10 1607 – 1803 (builds 14393 – 17134): `StackTraceInitVar` added.
    Win10v1607,
    /// Windows 10 1809 and later, Windows 11 (build 17763+): `CommitLimitData` added.
    Win10v1809,
}

impl NtFamily {
    /// The family of an ntdll (or OS) version.
    pub fn for_version(major: u32, minor: u32, build: u32) -> Self {
        match (major, minor) {
            (..=6, 0..=1) | (0..=5, _) => NtFamily::Win7,
            (6, 2) => NtFamily::Win8,
            (6, _) => NtFamily::Win81,
            _ if build < 14393 => NtFamily::Win81,
            _ if build < 17763 => NtFamily::Win10v1607,
            _ => NtFamily::Win10v1809,
        }
    }

    /// Every family, oldest first.
    pub const ALL: [NtFamily; 5] = [
        NtFamily::Win7,
        NtFamily::Win8,
        NtFamily::Win81,
        NtFamily::Win10v1607,
        NtFamily::Win10v1809,
    ];

    /// A human name.
    pub fn name(self) -> &'static str {
        match self {
            NtFamily::Win7 => "Windows 7",
            NtFamily::Win8 => "Windows 8",
            NtFamily::Win81 => "Windows 8.1 / 10 1507-1511",
            NtFamily::Win10v1607 => "Windows 10 1607-1803",
            NtFamily::Win10v1809 => "Windows 10 1809+ / 11",
        }
    }

    /// Whether the LFH is the pre-Windows 8 design (zones of subsegments, no busy bitmap).
    pub fn old_lfh(self) -> bool {
        self == NtFamily::Win7
    }
}

/// LFH offsets.
#[derive(Clone, Copy, Debug)]
pub struct LfhLayout {
    /// `_LFH_HEAP.SubSegmentZones` (LIST_ENTRY head of `_LFH_BLOCK_ZONE`s).
    pub sub_segment_zones: u64,
    /// `_HEAP_SUBSEGMENT.UserBlocks`.
    pub subseg_user_blocks: u64,
    /// `_HEAP_SUBSEGMENT.AggregateExchg.Depth` (u16: free chunks).
    pub subseg_depth: u64,
    /// `_HEAP_SUBSEGMENT.BlockSize` (u16, in heap units).
    pub subseg_block_size: u64,
    /// `_HEAP_SUBSEGMENT.BlockCount` (u16).
    pub subseg_block_count: u64,
    /// `_HEAP_USERDATA_HEADER.Signature` (0xF0E0D0C0).
    pub ub_signature: u64,
    /// Windows 7: offset of the first chunk from the user block header.
    pub ub_first_chunk: u64,
    /// Windows 8+: `_HEAP_USERDATA_HEADER.EncodedOffsets` {FirstAllocationOffset u16, BlockStride u16}.
    pub ub_encoded_offsets: u64,
    /// Windows 8+: `_HEAP_USERDATA_HEADER.BusyBitmap.SizeOfBitMap`.
    pub ub_bitmap_size: u64,
    /// Windows 8+: `_HEAP_USERDATA_HEADER.BusyBitmap.Buffer`.
    pub ub_bitmap_buffer: u64,
}

/// NT heap offsets of one family and bitness.
#[derive(Clone, Copy, Debug)]
pub struct NtHeapLayout {
    /// The family.
    pub family: NtFamily,
    /// 32 or 64.
    pub bits: u32,
    /// Heap granularity: sizeof(`_HEAP_ENTRY`), 16 (x64) or 8 (x86).
    pub unit: u64,
    /// `_HEAP.Flags`.
    pub flags: u64,
    /// `_HEAP.EncodeFlagMask`.
    pub encode_flag_mask: u64,
    /// The 8 encoded bytes of `_HEAP.Encoding` (x64: its second half).
    pub encoding: u64,
    /// `_HEAP.Interceptor` (u32).
    pub interceptor: u64,
    /// `_HEAP.VirtualAllocdBlocks`.
    pub virtual_allocd_blocks: u64,
    /// `_HEAP.SegmentList`.
    pub segment_list: u64,
    /// `_HEAP.FreeLists` (LIST_ENTRY through the free blocks' `_HEAP_FREE_ENTRY.FreeList`).
    pub free_lists: u64,
    /// `_HEAP.FrontEndHeap`.
    pub front_end_heap: u64,
    /// `_HEAP.FrontEndHeapType` (u8; 2 = LFH).
    pub front_end_heap_type: u64,
    /// `_HEAP_SEGMENT.SegmentSignature` (0xFFEEFFEE).
    pub seg_signature: u64,
    /// `_HEAP_SEGMENT.SegmentListEntry`.
    pub seg_list_entry: u64,
    /// `_HEAP_SEGMENT.Heap`.
    pub seg_heap: u64,
    /// `_HEAP_SEGMENT.BaseAddress`.
    pub seg_base: u64,
    /// `_HEAP_SEGMENT.NumberOfPages` (u32).
    pub seg_pages: u64,
    /// `_HEAP_SEGMENT.FirstEntry`.
    pub seg_first_entry: u64,
    /// `_HEAP_SEGMENT.LastValidEntry`.
    pub seg_last_valid: u64,
    /// `_HEAP_SEGMENT.UCRSegmentList`.
    pub seg_ucr_list: u64,
    /// `_HEAP_UCR_DESCRIPTOR.SegmentEntry`.
    pub ucr_segment_entry: u64,
    /// `_HEAP_UCR_DESCRIPTOR.Address`.
    pub ucr_address: u64,
    /// `_HEAP_UCR_DESCRIPTOR.Size`.
    pub ucr_size: u64,
    /// `_HEAP_VIRTUAL_ALLOC_ENTRY.CommitSize`.
    pub vae_commit: u64,
    /// `_HEAP_VIRTUAL_ALLOC_ENTRY.ReserveSize`.
    pub vae_reserve: u64,
    /// `_HEAP_VIRTUAL_ALLOC_ENTRY.BusyBlock` (an encoded `_HEAP_ENTRY`).
    pub vae_busy_block: u64,
    /// `sizeof(_HEAP_VIRTUAL_ALLOC_ENTRY)`: where a large block's user data starts.
    pub vae_size: u64,
    /// LFH offsets.
    pub lfh: LfhLayout,
}

impl NtHeapLayout {
    /// The layout of `family` for `bits` (32 or 64).
    pub fn new(family: NtFamily, bits: u32) -> Self {
        use NtFamily::*;
        let x64 = bits == 64;
        let pick = |a: u64, b: u64| if x64 { a } else { b };
        let win7 = family == Win7;
        let (front_end, front_end_type) = match (family, x64) {
            (Win7, true) | (Win10v1607, true) => (0x178, 0x182),
            (Win8 | Win81, true) => (0x170, 0x17a),
            (Win10v1809, true) => (0x198, 0x1a2),
            (Win7, false) | (Win10v1607, false) => (0xd4, 0xda),
            (Win8 | Win81, false) => (0xd0, 0xd6),
            (Win10v1809, false) => (0xe4, 0xea),
        };
        NtHeapLayout {
            family,
            bits,
            unit: pick(16, 8),
            flags: pick(0x70, 0x40),
            encode_flag_mask: pick(0x7c, 0x4c),
            encoding: pick(0x88, 0x50),
            interceptor: if win7 {
                pick(0x98, 0x5c)
            } else {
                pick(0x90, 0x58)
            },
            virtual_allocd_blocks: if win7 {
                pick(0x118, 0xa0)
            } else {
                pick(0x110, 0x9c)
            },
            segment_list: if win7 {
                pick(0x128, 0xa8)
            } else {
                pick(0x120, 0xa4)
            },
            free_lists: if win7 {
                pick(0x158, 0xc4)
            } else {
                pick(0x150, 0xc0)
            },
            front_end_heap: front_end,
            front_end_heap_type: front_end_type,
            seg_signature: pick(0x10, 0x08),
            seg_list_entry: pick(0x18, 0x10),
            seg_heap: pick(0x28, 0x18),
            seg_base: pick(0x30, 0x1c),
            seg_pages: pick(0x38, 0x20),
            seg_first_entry: pick(0x40, 0x24),
            seg_last_valid: pick(0x48, 0x28),
            seg_ucr_list: pick(0x60, 0x38),
            ucr_segment_entry: pick(0x10, 0x08),
            ucr_address: pick(0x20, 0x10),
            ucr_size: pick(0x28, 0x14),
            vae_commit: pick(0x20, 0x10),
            vae_reserve: pick(0x28, 0x14),
            vae_busy_block: pick(0x30, 0x18),
            vae_size: pick(0x40, 0x20),
            lfh: if win7 {
                LfhLayout {
                    sub_segment_zones: pick(0x28, 0x18),
                    subseg_user_blocks: pick(0x08, 0x04),
                    subseg_depth: pick(0x10, 0x08),
                    subseg_block_size: pick(0x18, 0x10),
                    subseg_block_count: pick(0x1c, 0x14),
                    ub_signature: pick(0x18, 0x0c),
                    ub_first_chunk: pick(0x20, 0x10),
                    ub_encoded_offsets: 0,
                    ub_bitmap_size: 0,
                    ub_bitmap_buffer: 0,
                }
            } else {
                LfhLayout {
                    sub_segment_zones: pick(0x08, 0x04),
                    subseg_user_blocks: pick(0x08, 0x04),
                    subseg_depth: pick(0x20, 0x10),
                    subseg_block_size: pick(0x24, 0x14),
                    subseg_block_count: pick(0x28, 0x18),
                    ub_signature: pick(0x14, 0x0c),
                    ub_first_chunk: 0,
                    ub_encoded_offsets: pick(0x18, 0x10),
                    ub_bitmap_size: pick(0x20, 0x14),
                    ub_bitmap_buffer: pick(0x28, 0x18),
                }
            },
        }
    }

    /// Bytes of the +ust prefix between a block's header and its user data (trace pointer, heap
    /// pointer, x64 padding, pseudo header): 32 (x64) or 16 (x86).
    pub fn ust_prefix(&self) -> u64 {
        2 * self.unit
    }
}

/// `HEAP_ENTRY_BUSY`.
pub const ENTRY_BUSY: u8 = 0x01;
/// `HEAP_ENTRY_EXTRA_PRESENT`.
pub const ENTRY_EXTRA_PRESENT: u8 = 0x02;
/// `HEAP_ENTRY_VIRTUAL_ALLOC`: on a segment block (Windows 8+), a heap-internal allocation.
pub const ENTRY_VIRTUAL_ALLOC: u8 = 0x08;
/// `HEAP_ENTRY_LAST_ENTRY`.
pub const ENTRY_LAST_ENTRY: u8 = 0x10;
/// `_HEAP_USERDATA_HEADER.Signature`.
pub const USERDATA_SIGNATURE: u32 = 0xf0e0_d0c0;
/// `_HEAP_SEGMENT.SegmentSignature`.
pub const SEGMENT_SIGNATURE: u32 = 0xffee_ffee;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_follow_the_reference_tables() {
        assert_eq!(NtFamily::for_version(6, 1, 7601), NtFamily::Win7);
        assert_eq!(NtFamily::for_version(6, 2, 9200), NtFamily::Win8);
        assert_eq!(NtFamily::for_version(6, 3, 9600), NtFamily::Win81);
        assert_eq!(NtFamily::for_version(10, 0, 10586), NtFamily::Win81);
        assert_eq!(NtFamily::for_version(10, 0, 14393), NtFamily::Win10v1607);
        assert_eq!(NtFamily::for_version(10, 0, 19041), NtFamily::Win10v1809);
        assert_eq!(NtFamily::for_version(10, 0, 22631), NtFamily::Win10v1809);
        let l = NtHeapLayout::new(NtFamily::Win10v1809, 64);
        assert_eq!(
            (l.front_end_heap, l.front_end_heap_type, l.segment_list),
            (0x198, 0x1a2, 0x120)
        );
        let l = NtHeapLayout::new(NtFamily::Win7, 32);
        assert_eq!(
            (
                l.front_end_heap,
                l.virtual_allocd_blocks,
                l.lfh.sub_segment_zones
            ),
            (0xd4, 0xa0, 0x18)
        );
        let l = NtHeapLayout::new(NtFamily::Win81, 32);
        assert_eq!(
            (l.front_end_heap, l.segment_list, l.interceptor),
            (0xd0, 0xa4, 0x58)
        );
    }
}
