//! Selecting blocks (`!heap -flt`) and finding the block that holds an address (`!heap -p -a`).

use crate::heap::{Block, FrontEnd, HeapWalk, State};

/// A block filter; every set criterion must hold.
#[derive(Clone, Debug, Default)]
pub struct BlockFilter {
    /// Only blocks of this heap (address).
    pub heap: Option<u64>,
    /// Only busy (`Some(Busy)`) or free (`Some(Free)`) blocks.
    pub state: Option<State>,
    /// Only this front end.
    pub front_end: Option<FrontEnd>,
    /// Requested size exactly (`!heap -flt s SIZE`).
    pub size: Option<u64>,
    /// Requested size within `[min, max]` (`!heap -flt r MIN MAX`).
    pub size_range: Option<(u64, u64)>,
    /// Include heap metadata (LFH containers, range markers).
    pub internal: bool,
}

impl BlockFilter {
    /// Whether `b` of heap `heap` passes.
    pub fn matches(&self, heap: u64, b: &Block) -> bool {
        self.heap.is_none_or(|h| h == heap)
            && self.state.is_none_or(|s| s == b.state)
            && self.front_end.is_none_or(|f| f == b.front_end)
            && self.size.is_none_or(|s| s == b.size)
            && self
                .size_range
                .is_none_or(|(lo, hi)| lo <= b.size && b.size <= hi)
            && (self.internal || !b.internal)
    }
}

/// The blocks of `walks` that pass `filter`, with their heap address, in heap then address order.
pub fn select<'a>(walks: &'a [HeapWalk], filter: &'a BlockFilter) -> Vec<(u64, &'a Block)> {
    let mut out = Vec::new();
    for w in walks {
        let start = out.len();
        out.extend(
            w.blocks
                .iter()
                .filter(|b| filter.matches(w.heap, b))
                .map(|b| (w.heap, b)),
        );
        out[start..].sort_by_key(|(_, b)| b.entry);
    }
    out
}

/// The block that contains `addr` (from its header to its end), preferring an LFH chunk over the
/// user block that holds it. Returns the heap address and the block.
pub fn find(walks: &[HeapWalk], addr: u64) -> Option<(u64, &Block)> {
    let mut best: Option<(u64, &Block)> = None;
    for w in walks {
        for b in &w.blocks {
            if b.entry <= addr && addr < b.entry.saturating_add(b.block_size) {
                let better = match best {
                    None => true,
                    Some((_, cur)) => b.block_size < cur.block_size,
                };
                if better {
                    best = Some((w.heap, b));
                }
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(entry: u64, size: u64, fe: FrontEnd, internal: bool) -> Block {
        Block {
            entry,
            address: entry + 8,
            size: size - 8,
            block_size: size,
            trace: 0,
            heap: 0,
            state: State::Busy,
            front_end: fe,
            flags: 1,
            internal,
        }
    }

    #[test]
    fn find_prefers_the_chunk_inside_a_container() {
        let w = HeapWalk {
            heap: 0x1000,
            index: 0,
            bits: 32,
            kind: crate::process::HeapKind::Nt,
            walked: true,
            family: None,
            flags: None,
            lfh: None,
            lfh_key: None,
            blocks: vec![
                b(0x2000, 0x800, FrontEnd::Backend, true),
                b(0x2010, 0x20, FrontEnd::Lfh, false),
                b(0x2030, 0x20, FrontEnd::Lfh, false),
            ],
            corruptions: vec![],
            coverage: vec![],
            large_reserved: 0,
            large_committed: 0,
            notes: vec![],
        };
        let walks = [w];
        assert_eq!(find(&walks, 0x2035).unwrap().1.entry, 0x2030);
        assert_eq!(find(&walks, 0x2005).unwrap().1.entry, 0x2000);
        assert!(find(&walks, 0x2800).is_none());
        let f = BlockFilter {
            front_end: Some(FrontEnd::Lfh),
            size_range: Some((0x10, 0x18)),
            ..BlockFilter::default()
        };
        assert_eq!(select(&walks, &f).len(), 2);
        let all = BlockFilter::default();
        assert_eq!(
            select(&walks, &all).len(),
            2,
            "internal blocks need --internal"
        );
    }
}
