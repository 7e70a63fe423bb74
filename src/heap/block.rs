//! What heap walkers produce: blocks (small `Copy` values), corruption records and per-heap
//! coverage figures.

use crate::value;
use serde::{Serialize, Serializer};

/// Allocated or free.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Allocated (HeapAlloc returned it and it was not freed).
    Busy,
    /// Free.
    Free,
}

impl State {
    /// `busy` / `free`.
    pub fn name(self) -> &'static str {
        match self {
            State::Busy => "busy",
            State::Free => "free",
        }
    }
}

/// As its name (`"busy"`, `"free"`).
impl Serialize for State {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Which part of the heap manager holds the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrontEnd {
    /// A block of a heap segment (the back end).
    Backend,
    /// A chunk of an LFH user block.
    Lfh,
    /// A VirtualAlloc'd large block.
    Large,
    /// A chunk of a segment heap's VS (variable size) subsegment.
    Vs,
    /// A full page heap allocation (`gflags +hpa`).
    PageHeap,
}

impl FrontEnd {
    /// `backend`, `lfh`, `large`, `vs`, `pageheap`.
    pub fn name(self) -> &'static str {
        match self {
            FrontEnd::Backend => "backend",
            FrontEnd::Lfh => "lfh",
            FrontEnd::Large => "large",
            FrontEnd::Vs => "vs",
            FrontEnd::PageHeap => "pageheap",
        }
    }
}

/// As its name (`"backend"`, `"lfh"`, …).
impl Serialize for FrontEnd {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// One heap block. 48 bytes, so that millions fit comfortably.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// Address of its header (`HEAP_ENTRY`; for large blocks the `_HEAP_VIRTUAL_ALLOC_ENTRY`; for
    /// page-heap blocks the start of the virtual block).
    pub entry: u64,
    /// User address: what HeapAlloc returned.
    pub address: u64,
    /// Requested size for busy blocks; usable bytes (block size minus header) for free blocks.
    pub size: u64,
    /// The whole block, header included (for large blocks: the committed size).
    pub block_size: u64,
    /// Address of the +ust stack record, 0 when the block carries none.
    pub trace: u64,
    /// Index of the heap in the walk's heap list.
    pub heap: u32,
    /// Busy or free.
    pub state: State,
    /// Back end, LFH or large.
    pub front_end: FrontEnd,
    /// The header's flags byte (`HEAP_ENTRY_BUSY` 0x01, `EXTRA_PRESENT` 0x02, …) as decoded.
    pub flags: u8,
    /// Heap metadata (LFH user-block containers and zones, the LFH front end, segment-range
    /// markers): never counted as a user allocation.
    pub internal: bool,
}

/// A place where the heap's own structures are inconsistent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Corruption {
    /// Address of the bad structure.
    #[serde(serialize_with = "value::hex")]
    pub address: u64,
    /// The segment (or user block, or large block) it was found in.
    #[serde(serialize_with = "value::hex")]
    pub segment: u64,
    /// What was wrong: what was expected and what was found.
    pub what: String,
}

/// How much of a segment's committed memory the walk explained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Segment base.
    pub segment: u64,
    /// Reserved bytes (the segment's size).
    pub reserved: u64,
    /// Committed bytes (reserved minus uncommitted ranges).
    pub committed: u64,
    /// Bytes of the segment header (from BaseAddress to FirstEntry).
    pub header: u64,
    /// Bytes covered by decoded blocks.
    pub walked: u64,
    /// Committed bytes missing from the dump.
    pub not_captured: u64,
    /// Committed bytes skipped because their headers were corrupt.
    pub corrupt: u64,
    /// Number of uncommitted ranges.
    pub ucr_count: u64,
}

impl Coverage {
    /// Committed bytes that are neither header, walked, not captured nor corrupt (0 when the walk
    /// explained everything).
    pub fn unexplained(&self) -> u64 {
        self.committed
            .saturating_sub(self.header + self.walked + self.not_captured + self.corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_stay_small() {
        assert!(std::mem::size_of::<Block>() <= 48);
    }
}
