//! Debug page heap (`gflags +hpa`) offsets: `_DPH_HEAP_ROOT`, `_DPH_HEAP_BLOCK` and
//! `_DPH_BLOCK_INFORMATION` (reference §4 and §4.1, observed on the real verifier.dll of Windows
//! 10 19041 x86 and 1607 x64; `dt` dumps in `shared/docs/layouts/`, Win10 x64 and Win7 x86).

/// `_DPH_HEAP_ROOT.Signature`.
pub const ROOT_SIGNATURE: u32 = 0xffee_ddcc;
/// The root is one page after the handle stored in ProcessHeaps.
pub const ROOT_OFFSET: u64 = 0x1000;
/// `_DPH_BLOCK_INFORMATION.StartStamp` of a busy full-page-heap block.
pub const BUSY_START_STAMP: u32 = 0xabcd_bbbb;
/// `StartStamp` of a busy light-page-heap block (in the page heap's normal heap).
pub const LIGHT_BUSY_START_STAMP: u32 = 0xabcd_aaaa;
/// `StartStamp` of a light-page-heap block the application freed and page heap still holds.
pub const LIGHT_FREED_START_STAMP: u32 = 0xabcd_aaa9;
/// `_DPH_HEAP_ROOT.ExtraFlags` bit: every block goes to the normal heap (light page heap).
pub const EXTRA_FLAGS_LIGHT: u32 = 0x2_0000;

/// Offsets for one pointer width.
#[derive(Clone, Copy, Debug)]
pub struct PageHeapLayout {
    /// 32 or 64.
    pub bits: u32,
    /// `_DPH_HEAP_ROOT.pVirtualStorageListHead` (a `pNextAlloc` chain of `_DPH_HEAP_BLOCK`).
    pub virtual_storage_head: u64,
    /// `_DPH_HEAP_ROOT.nVirtualStorageRanges` (u32).
    pub virtual_storage_count: u64,
    /// `_DPH_HEAP_ROOT.BusyNodesTable` (`RTL_AVL_TABLE`; its `BalancedRoot.RightChild` is the tree).
    pub busy_table: u64,
    /// `BusyNodesTable.NumberGenericTableElements` (u32): the busy nodes in the tree.
    pub busy_elements: u64,
    /// `_DPH_HEAP_ROOT.nBusyAllocations` (u32).
    pub busy_count: u64,
    /// `_DPH_HEAP_ROOT.pFreeAllocationListHead`.
    pub free_head: u64,
    /// The held-back freed blocks' count (u32): where the real 19041 x86 / 1607 x64 code keeps
    /// it (§4.1), and where the `dt` dumps put `nFreeAllocations`; the walk checks both.
    pub free_count: [u64; 2],
    /// `_DPH_HEAP_ROOT.NextHeap` (LIST_ENTRY linking every root; the head is in verifier.dll).
    pub next_heap: u64,
    /// `_DPH_HEAP_ROOT.ExtraFlags` (u32; [`EXTRA_FLAGS_LIGHT`]).
    pub extra_flags: u64,
    /// `_DPH_HEAP_ROOT.NormalHeap`.
    pub normal_heap: u64,
    /// `_DPH_HEAP_BLOCK.pUserAllocation`.
    pub user: u64,
    /// `_DPH_HEAP_BLOCK.pVirtualBlock`.
    pub virtual_block: u64,
    /// `_DPH_HEAP_BLOCK.nVirtualBlockSize`.
    pub virtual_size: u64,
    /// `_DPH_HEAP_BLOCK.nUserRequestedSize`.
    pub requested: u64,
    /// `_DPH_HEAP_BLOCK.StackTrace`.
    pub stack_trace: u64,
    /// `sizeof(_DPH_BLOCK_INFORMATION)`, which sits just below the user data.
    pub info_size: u64,
    /// `_DPH_BLOCK_INFORMATION.Heap`: the root (full), or the root with the top bit set (light).
    pub info_heap: u64,
    /// `_DPH_BLOCK_INFORMATION.RequestedSize`.
    pub info_requested: u64,
    /// `_DPH_BLOCK_INFORMATION.StackTrace`.
    pub info_stack_trace: u64,
}

impl PageHeapLayout {
    /// The layout for pointer width `bits`.
    pub fn new(bits: u32) -> Self {
        if bits == 64 {
            PageHeapLayout {
                bits,
                virtual_storage_head: 0x18,
                virtual_storage_count: 0x28,
                busy_table: 0x38,
                busy_elements: 0x64,
                busy_count: 0xa8,
                free_head: 0xb8,
                free_count: [0xd8, 0xc8],
                next_heap: 0x138,
                extra_flags: 0x148,
                normal_heap: 0x150,
                user: 0x20,
                virtual_block: 0x28,
                virtual_size: 0x30,
                requested: 0x40,
                stack_trace: 0x60,
                info_size: 0x40,
                info_heap: 0x08,
                info_requested: 0x10,
                info_stack_trace: 0x30,
            }
        } else {
            PageHeapLayout {
                bits,
                virtual_storage_head: 0x10,
                virtual_storage_count: 0x18,
                busy_table: 0x20,
                busy_elements: 0x38,
                busy_count: 0x5c,
                free_head: 0x64,
                free_count: [0x74, 0x6c],
                next_heap: 0xa4,
                extra_flags: 0xac,
                normal_heap: 0xb4,
                user: 0x10,
                virtual_block: 0x14,
                virtual_size: 0x18,
                requested: 0x20,
                stack_trace: 0x30,
                info_size: 0x20,
                info_heap: 0x04,
                info_requested: 0x08,
                info_stack_trace: 0x18,
            }
        }
    }

    /// Pointer size in bytes.
    pub fn ptr(&self) -> u64 {
        u64::from(self.bits / 8)
    }

    /// The alignment of a full page-heap block's end (16 on x64, 8 on x86).
    pub fn align(&self) -> u64 {
        if self.bits == 64 {
            16
        } else {
            8
        }
    }

    /// The `Heap` field of a light block's information: the root with the pointer's top bit set.
    pub fn light_heap_tag(&self, root: u64) -> u64 {
        root | 1 << (self.bits - 1)
    }
}
