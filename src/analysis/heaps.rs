//! Per-heap statistics in `!heap -s` terms and the `!heap -stat` size histogram: pure functions
//! over walked blocks.
//!
//! Definitions (see `docs/heaps.md`): busy counts and bytes are user allocations only (requested
//! sizes; heap metadata such as LFH user-block containers is excluded, its chunks are counted);
//! free counts and bytes are the back end's free blocks (WinDbg's `Free(k)` and `List length`);
//! external fragmentation is 1 − largest free block ÷ total free.

use crate::heap::{Block, Corruption, FrontEnd, HeapWalk, State};
use crate::process::HeapKind;
use std::collections::HashMap;

/// One heap's `!heap -s` row and coverage.
#[derive(Clone, Debug)]
pub struct HeapSummary {
    /// Heap address.
    pub address: u64,
    /// `nt`, `segment`, …
    pub kind: HeapKind,
    /// Whether the heap was walked (false for heaps not captured or of a kind not walked yet).
    pub analyzed: bool,
    /// 32 or 64.
    pub bits: u32,
    /// `_HEAP.Flags`.
    pub flags: Option<u32>,
    /// Reserved bytes: segments plus large blocks.
    pub reserved: u64,
    /// Committed bytes: segments (minus uncommitted ranges) plus large blocks.
    pub committed: u64,
    /// Bytes reserved by VirtualAlloc'd large blocks (`Virt`).
    pub virtual_bytes: u64,
    /// Number of large blocks (`Virt blocks`).
    pub large_blocks: u64,
    /// Uncommitted ranges (`UCR`).
    pub ucr: u64,
    /// Busy user allocations.
    pub busy_blocks: u64,
    /// Their requested bytes.
    pub busy_bytes: u64,
    /// Back-end free blocks (`List length`).
    pub free_blocks: u64,
    /// Their bytes, headers included (`Free`).
    pub free_bytes: u64,
    /// The largest back-end free block.
    pub largest_free: u64,
    /// LFH active.
    pub lfh: bool,
    /// Busy user blocks that carry a +ust stack pointer.
    pub traced_blocks: u64,
    /// Their requested bytes.
    pub traced_bytes: u64,
    /// Busy LFH chunks.
    pub lfh_busy_blocks: u64,
    /// Their requested bytes.
    pub lfh_busy_bytes: u64,
    /// Free LFH chunks.
    pub lfh_free_blocks: u64,
    /// Heap metadata blocks (LFH containers and zones, range markers, the LFH front end).
    pub internal_blocks: u64,
    /// Their bytes.
    pub internal_bytes: u64,
    /// Committed segment bytes explained by the walk (header + blocks).
    pub walked: u64,
    /// Committed segment bytes of the segment headers.
    pub header: u64,
    /// Committed segment bytes missing from the dump.
    pub not_captured: u64,
    /// Committed segment bytes skipped as corrupt.
    pub corrupt: u64,
    /// Committed segment bytes the walk could not explain.
    pub unexplained: u64,
    /// Committed bytes of the segments alone.
    pub segment_committed: u64,
    /// Corruptions found.
    pub corruptions: Vec<Corruption>,
    /// The LFH key recovered from the dump.
    pub lfh_key: Option<u32>,
    /// Why parts were not walked.
    pub notes: Vec<String>,
    /// User blocks by the component holding them (back end, LFH, VS, large, page heap), in that
    /// order; components without blocks are left out.
    pub components: Vec<Component>,
}

/// The user blocks one component of a heap holds (heap metadata excluded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Component {
    /// Which component.
    pub front_end: FrontEnd,
    /// Busy blocks.
    pub busy_blocks: u64,
    /// Their requested bytes.
    pub busy_bytes: u64,
    /// Their whole blocks' bytes (headers, alignment and unused tails included).
    pub busy_block_bytes: u64,
    /// Free blocks.
    pub free_blocks: u64,
    /// Their bytes.
    pub free_bytes: u64,
}

impl HeapSummary {
    /// External fragmentation in percent: 1 − largest free ÷ total free (0 without free blocks).
    pub fn external_fragmentation(&self) -> f64 {
        if self.free_bytes == 0 {
            0.0
        } else {
            (1.0 - self.largest_free as f64 / self.free_bytes as f64) * 100.0
        }
    }
}

/// Whether a block is a user allocation in use.
pub fn is_user_busy(b: &Block) -> bool {
    b.state == State::Busy && !b.internal
}

/// Summarize one walked heap.
pub fn summarize(w: &HeapWalk) -> HeapSummary {
    let mut s = HeapSummary {
        address: w.heap,
        kind: w.kind,
        analyzed: w.walked,
        bits: w.bits,
        flags: w.flags,
        reserved: w.large_reserved,
        committed: w.large_committed,
        virtual_bytes: w.large_reserved,
        large_blocks: 0,
        ucr: 0,
        busy_blocks: 0,
        busy_bytes: 0,
        free_blocks: 0,
        free_bytes: 0,
        largest_free: 0,
        lfh: w.lfh.is_some(),
        traced_blocks: 0,
        traced_bytes: 0,
        lfh_busy_blocks: 0,
        lfh_busy_bytes: 0,
        lfh_free_blocks: 0,
        internal_blocks: 0,
        internal_bytes: 0,
        walked: 0,
        header: 0,
        not_captured: 0,
        corrupt: 0,
        unexplained: 0,
        segment_committed: 0,
        corruptions: w.corruptions.clone(),
        lfh_key: w.lfh_key,
        notes: w.notes.clone(),
        components: Vec::new(),
    };
    let order = [
        FrontEnd::Backend,
        FrontEnd::Lfh,
        FrontEnd::Vs,
        FrontEnd::Large,
        FrontEnd::PageHeap,
    ];
    let mut parts = order.map(|front_end| Component {
        front_end,
        busy_blocks: 0,
        busy_bytes: 0,
        busy_block_bytes: 0,
        free_blocks: 0,
        free_bytes: 0,
    });
    for c in &w.coverage {
        s.reserved += c.reserved;
        s.committed += c.committed;
        s.segment_committed += c.committed;
        s.ucr += c.ucr_count;
        s.walked += c.walked;
        s.header += c.header;
        s.not_captured += c.not_captured;
        s.corrupt += c.corrupt;
        s.unexplained += c.unexplained();
    }
    for b in &w.blocks {
        if b.front_end == FrontEnd::Large {
            s.large_blocks += 1;
        }
        if b.internal {
            s.internal_blocks += 1;
            s.internal_bytes += b.block_size;
            continue;
        }
        if let Some(c) = parts.iter_mut().find(|c| c.front_end == b.front_end) {
            if b.state == State::Busy {
                c.busy_blocks += 1;
                c.busy_bytes += b.size;
                c.busy_block_bytes += b.block_size;
            } else {
                c.free_blocks += 1;
                c.free_bytes += b.block_size;
            }
        }
        match (b.state, b.front_end) {
            (State::Busy, fe) => {
                s.busy_blocks += 1;
                s.busy_bytes += b.size;
                if b.trace != 0 {
                    s.traced_blocks += 1;
                    s.traced_bytes += b.size;
                }
                if fe == FrontEnd::Lfh {
                    s.lfh_busy_blocks += 1;
                    s.lfh_busy_bytes += b.size;
                }
            }
            (State::Free, FrontEnd::Lfh) => s.lfh_free_blocks += 1,
            (State::Free, _) => {
                s.free_blocks += 1;
                s.free_bytes += b.block_size;
                s.largest_free = s.largest_free.max(b.block_size);
            }
        }
    }
    s.components = parts
        .into_iter()
        .filter(|c| c.busy_blocks + c.free_blocks > 0)
        .collect();
    s
}

/// One row of the `!heap -stat` histogram.
#[derive(Clone, Debug, PartialEq)]
pub struct SizeRow {
    /// Requested size.
    pub size: u64,
    /// Busy blocks of that size.
    pub count: u64,
    /// size × count.
    pub total: u64,
    /// Share of the heap's busy bytes, in percent.
    pub percent: f64,
}

/// The `!heap -stat -h` histogram of busy user blocks by requested size, largest total first
/// (ties: larger size first). `blocks` may span several heaps.
pub fn size_histogram<'a>(blocks: impl Iterator<Item = &'a Block>) -> (u64, Vec<SizeRow>) {
    let mut by_size: HashMap<u64, u64> = HashMap::new();
    let mut busy = 0u64;
    for b in blocks.filter(|b| is_user_busy(b)) {
        *by_size.entry(b.size).or_default() += 1;
        busy += b.size;
    }
    let mut rows: Vec<SizeRow> = by_size
        .into_iter()
        .map(|(size, count)| SizeRow {
            size,
            count,
            total: size * count,
            percent: if busy == 0 {
                0.0
            } else {
                (size * count) as f64 * 100.0 / busy as f64
            },
        })
        .collect();
    rows.sort_by(|a, b| b.total.cmp(&a.total).then(b.size.cmp(&a.size)));
    (busy, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(size: u64, state: State, fe: FrontEnd, internal: bool) -> Block {
        Block {
            entry: 0x1000,
            address: 0x1010,
            size,
            block_size: size + 0x10,
            trace: 0,
            heap: 0,
            state,
            front_end: fe,
            flags: 1,
            internal,
        }
    }

    #[test]
    fn histogram_counts_user_busy_blocks_only() {
        let blocks = [
            block(0x28, State::Busy, FrontEnd::Lfh, false),
            block(0x28, State::Busy, FrontEnd::Backend, false),
            block(0x100, State::Busy, FrontEnd::Backend, false),
            block(0x800, State::Busy, FrontEnd::Backend, true),
            block(0x40, State::Free, FrontEnd::Backend, false),
        ];
        let (busy, rows) = size_histogram(blocks.iter());
        assert_eq!(busy, 0x150);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].size, rows[0].count, rows[0].total),
            (0x100, 1, 0x100)
        );
        assert_eq!(
            (rows[1].size, rows[1].count, rows[1].total),
            (0x28, 2, 0x50)
        );
        assert!((rows[1].percent - 23.8095).abs() < 1e-3);
    }
}
