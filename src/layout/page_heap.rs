//! Debug page heap (`gflags +hpa`) offsets: `_DPH_HEAP_ROOT`, `_DPH_HEAP_BLOCK` and
//! `_DPH_BLOCK_INFORMATION` (reference §4; `dt` dumps in `shared/docs/layouts/`, Win10 x64 and
//! Win7 x86, identical in the fields read here from Windows 7 to 11).

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
    /// `_DPH_HEAP_ROOT.nBusyAllocations` (u32).
    pub busy_count: u64,
    /// `_DPH_HEAP_ROOT.pFreeAllocationListHead`.
    pub free_head: u64,
    /// `_DPH_HEAP_ROOT.nFreeAllocations` (u32).
    pub free_count: u64,
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
                busy_count: 0xa8,
                free_head: 0xb8,
                free_count: 0xc8,
                normal_heap: 0x150,
                user: 0x20,
                virtual_block: 0x28,
                virtual_size: 0x30,
                requested: 0x40,
                stack_trace: 0x60,
                info_size: 0x40,
                info_requested: 0x10,
                info_stack_trace: 0x30,
            }
        } else {
            PageHeapLayout {
                bits,
                virtual_storage_head: 0x10,
                virtual_storage_count: 0x18,
                busy_table: 0x20,
                busy_count: 0x5c,
                free_head: 0x64,
                free_count: 0x6c,
                normal_heap: 0xb4,
                user: 0x10,
                virtual_block: 0x14,
                virtual_size: 0x18,
                requested: 0x20,
                stack_trace: 0x30,
                info_size: 0x20,
                info_requested: 0x08,
                info_stack_trace: 0x18,
            }
        }
    }

    /// Pointer size in bytes.
    pub fn ptr(&self) -> u64 {
        u64::from(self.bits / 8)
    }
}
