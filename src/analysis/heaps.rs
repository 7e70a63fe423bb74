//! Per-heap statistics in `!heap -s` terms and the `!heap -stat` size histogram: pure functions
//! over walked blocks.
//!
//! Definitions (see `docs/heaps.md`): busy counts and bytes are user allocations only (requested
//! sizes; heap metadata such as LFH user-block containers is excluded, its chunks are counted);
//! free counts and bytes are the back end's free blocks (WinDbg's `Free(k)` and `List length`);
//! external fragmentation is 1 − largest free block ÷ total free.

use crate::analysis::top::Sort;
use crate::heap::{Block, Corruption, FrontEnd, HeapWalk, State};
use crate::process::HeapKind;
use crate::value::{self, pct};
use serde::{Serialize, Serializer};
use std::collections::HashMap;

/// One heap's `!heap -s` row and coverage: the `heaps` view of one heap (serialized, one element
/// of `heaps --json`).
#[derive(Clone, Debug, Serialize)]
pub struct HeapSummary {
    /// Heap address.
    #[serde(serialize_with = "value::hex")]
    pub address: u64,
    /// `nt`, `segment`, …
    #[serde(rename = "type", serialize_with = "kind_name")]
    pub kind: HeapKind,
    /// 32 or 64.
    pub bits: u32,
    /// Whether the heap was walked (false for heaps not captured or of a kind not walked yet).
    pub walked: bool,
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
    /// Busy user blocks that carry a +ust stack pointer.
    pub traced_blocks: u64,
    /// Their requested bytes.
    pub traced_bytes: u64,
    /// Back-end free blocks (`List length`).
    pub free_blocks: u64,
    /// Their bytes, headers included (`Free`).
    pub free_bytes: u64,
    /// The largest back-end free block.
    pub largest_free: u64,
    /// External fragmentation in percent: 1 − largest free ÷ total free (0 without free blocks).
    #[serde(serialize_with = "value::percent2")]
    pub external_fragmentation: f64,
    /// LFH active.
    pub lfh: bool,
    /// Busy LFH chunks.
    pub lfh_busy_blocks: u64,
    /// Their requested bytes.
    pub lfh_busy_bytes: u64,
    /// Free LFH chunks.
    pub lfh_free_blocks: u64,
    /// The LFH key recovered from the dump.
    #[serde(serialize_with = "value::hex_opt")]
    pub lfh_key: Option<u32>,
    /// Heap metadata blocks (LFH containers and zones, range markers, the LFH front end).
    pub internal_blocks: u64,
    /// Their bytes.
    pub internal_bytes: u64,
    /// User blocks by the component holding them (back end, LFH, VS, large, page heap), in that
    /// order; components without blocks are left out.
    pub components: Vec<Component>,
    /// How much of the segments' committed memory the walk explained.
    pub coverage: CoverageTotals,
    /// Corruptions found.
    pub corruptions: Vec<Corruption>,
    /// Why parts were not walked.
    pub notes: Vec<String>,
}

fn kind_name<S: Serializer>(k: &HeapKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.name())
}

/// The committed bytes of a heap's segments, by what the walk made of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CoverageTotals {
    /// Committed bytes of the segments alone.
    pub committed: u64,
    /// Of which segment headers.
    pub header: u64,
    /// Of which blocks the walk explained.
    pub walked: u64,
    /// Of which memory missing from the dump.
    pub not_captured: u64,
    /// Of which memory skipped as corrupt.
    pub corrupt: u64,
    /// Of which memory the walk could not explain.
    pub unexplained: u64,
}

/// The user blocks one component of a heap holds (heap metadata excluded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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

impl Component {
    fn empty(front_end: FrontEnd) -> Self {
        Component {
            front_end,
            busy_blocks: 0,
            busy_bytes: 0,
            busy_block_bytes: 0,
            free_blocks: 0,
            free_bytes: 0,
        }
    }

    fn add(&mut self, b: &Block) {
        if b.state == State::Busy {
            self.busy_blocks += 1;
            self.busy_bytes += b.size;
            self.busy_block_bytes += b.block_size;
        } else {
            self.free_blocks += 1;
            self.free_bytes += b.block_size;
        }
    }
}

/// The components in the order the views list them.
const COMPONENTS: [FrontEnd; 5] = [
    FrontEnd::Backend,
    FrontEnd::Lfh,
    FrontEnd::Vs,
    FrontEnd::Large,
    FrontEnd::PageHeap,
];

/// Whether a block is a user allocation in use.
pub fn is_user_busy(b: &Block) -> bool {
    b.state == State::Busy && !b.internal
}

/// Summarize one walked heap.
pub fn summarize(w: &HeapWalk) -> HeapSummary {
    let mut s = HeapSummary {
        address: w.heap,
        kind: w.kind,
        bits: w.bits,
        walked: w.walked,
        flags: w.flags,
        reserved: w.large_reserved,
        committed: w.large_committed,
        virtual_bytes: w.large_reserved,
        large_blocks: 0,
        ucr: 0,
        busy_blocks: 0,
        busy_bytes: 0,
        traced_blocks: 0,
        traced_bytes: 0,
        free_blocks: 0,
        free_bytes: 0,
        largest_free: 0,
        external_fragmentation: 0.0,
        lfh: w.lfh.is_some(),
        lfh_busy_blocks: 0,
        lfh_busy_bytes: 0,
        lfh_free_blocks: 0,
        lfh_key: w.lfh_key,
        internal_blocks: 0,
        internal_bytes: 0,
        components: Vec::new(),
        coverage: CoverageTotals::default(),
        corruptions: w.corruptions.clone(),
        notes: w.notes.clone(),
    };
    for c in &w.coverage {
        s.reserved += c.reserved;
        s.committed += c.committed;
        s.ucr += c.ucr_count;
        let t = &mut s.coverage;
        t.committed += c.committed;
        t.walked += c.walked;
        t.header += c.header;
        t.not_captured += c.not_captured;
        t.corrupt += c.corrupt;
        t.unexplained += c.unexplained();
    }
    let mut parts = COMPONENTS.map(Component::empty);
    for b in &w.blocks {
        s.add(b, &mut parts);
    }
    s.components = parts
        .into_iter()
        .filter(|c| c.busy_blocks + c.free_blocks > 0)
        .collect();
    if s.free_bytes > 0 {
        s.external_fragmentation = (1.0 - s.largest_free as f64 / s.free_bytes as f64) * 100.0;
    }
    s
}

impl HeapSummary {
    /// Count one block (and its component in `parts`).
    fn add(&mut self, b: &Block, parts: &mut [Component]) {
        if b.front_end == FrontEnd::Large {
            self.large_blocks += 1;
        }
        if b.internal {
            self.internal_blocks += 1;
            self.internal_bytes += b.block_size;
            return;
        }
        if let Some(c) = parts.iter_mut().find(|c| c.front_end == b.front_end) {
            c.add(b);
        }
        match (b.state, b.front_end) {
            (State::Busy, fe) => {
                self.busy_blocks += 1;
                self.busy_bytes += b.size;
                if b.trace != 0 {
                    self.traced_blocks += 1;
                    self.traced_bytes += b.size;
                }
                if fe == FrontEnd::Lfh {
                    self.lfh_busy_blocks += 1;
                    self.lfh_busy_bytes += b.size;
                }
            }
            (State::Free, FrontEnd::Lfh) => self.lfh_free_blocks += 1,
            (State::Free, _) => {
                self.free_blocks += 1;
                self.free_bytes += b.block_size;
                self.largest_free = self.largest_free.max(b.block_size);
            }
        }
    }
}

/// One row of the `!heap -stat` histogram.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SizeRow {
    /// Requested size.
    pub size: u64,
    /// Busy blocks of that size.
    pub count: u64,
    /// size × count.
    pub total: u64,
    /// Share of the heap's busy bytes, in percent.
    #[serde(serialize_with = "value::percent4")]
    pub percent: f64,
}

/// The `!heap -stat -h` histogram of busy user blocks by requested size, largest total first
/// (`-grp A`), or with [`Sort::Count`] most blocks first (`-grp B`); ties: larger size first.
/// `blocks` may span several heaps.
pub fn size_histogram<'a>(
    blocks: impl Iterator<Item = &'a Block>,
    sort: Sort,
) -> (u64, Vec<SizeRow>) {
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
            percent: pct(size * count, busy),
        })
        .collect();
    rows.sort_by(|a, b| {
        let (x, y) = if sort == Sort::Count {
            (b.count.cmp(&a.count), b.total.cmp(&a.total))
        } else {
            (b.total.cmp(&a.total), b.count.cmp(&a.count))
        };
        x.then(y).then(b.size.cmp(&a.size))
    });
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
        let (busy, rows) = size_histogram(blocks.iter(), Sort::Bytes);
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
        let (_, by_count) = size_histogram(blocks.iter(), Sort::Count);
        assert_eq!((by_count[0].size, by_count[0].count), (0x28, 2));
    }
}
