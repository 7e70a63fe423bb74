//! Leak evidence from one dump (`heapdiag leaks`): the roots, the busy blocks they do not reach
//! (see [`reach`](super::reach)), the roots of garbage and what each keeps alive.

use super::reach::{self, BlockIndex, Garbage};
use super::roots::{self, RootSet, Roots};
use crate::analysis::heaps::is_user_busy;
use crate::dump::Dump;
use crate::heap::{Block, HeapWalk};
use crate::process::Process;

/// The reachability of a dump's busy blocks.
pub struct Leaks {
    /// Where the scan started.
    pub roots: Roots,
    /// The unreachable blocks and how they hold each other (block ids of the [`BlockIndex`] the
    /// scan used, which `BlockIndex::new` on the same walks rebuilds identically).
    pub garbage: Garbage,
    /// User address and requested size of each of `garbage.blocks`, in address order.
    pub blocks: Vec<(u64, u64)>,
    /// Busy blocks that overlap others (a damaged heap).
    pub overlapping: usize,
}

impl Leaks {
    /// Scan `dump` from the roots `set` asks for over the blocks of `walks`. The block index is
    /// dropped before returning: what the views need of the unreachable blocks is in
    /// [`Leaks::blocks`].
    pub fn find(dump: &Dump, process: &Process, walks: &[HeapWalk], set: RootSet) -> Leaks {
        let roots = roots::collect(dump, process, walks, set);
        let index = BlockIndex::new(walks);
        let mem = dump.memory();
        let marks = reach::mark(&mem, &index, &roots, None);
        let garbage = reach::garbage(&mem, &index, &marks);
        let blocks = garbage
            .blocks
            .iter()
            .map(|&i| (index.address(i), index.size(i)))
            .collect();
        Leaks {
            roots,
            garbage,
            blocks,
            overlapping: index.overlapping,
        }
    }

    /// Requested bytes of the unreachable blocks.
    pub fn unreachable_bytes(&self) -> u64 {
        self.blocks.iter().map(|b| b.1).sum()
    }

    /// The position in [`Garbage::blocks`] of the unreachable block at user address `address`.
    pub fn unreachable_at(&self, address: u64) -> Option<u32> {
        self.blocks
            .binary_search_by_key(&address, |b| b.0)
            .ok()
            .map(|k| k as u32)
    }

    /// For each of `blocks` (of one walk), whether it is an unreachable busy user block: a merge
    /// with [`Leaks::blocks`] while the walk's blocks come in address order, a search otherwise.
    pub fn flags(&self, blocks: &[Block]) -> Vec<bool> {
        let mut cursor = 0usize;
        let mut last = 0u64;
        blocks
            .iter()
            .map(|b| {
                if !is_user_busy(b) {
                    return false;
                }
                if b.address < last {
                    cursor = self.blocks.partition_point(|u| u.0 < b.address);
                }
                last = b.address;
                while self.blocks.get(cursor).is_some_and(|u| u.0 < b.address) {
                    cursor += 1;
                }
                self.blocks.get(cursor).is_some_and(|u| u.0 == b.address)
            })
            .collect()
    }

    /// User address of the unreachable block at position `k`.
    pub fn address(&self, k: u32) -> u64 {
        self.blocks[k as usize].0
    }
}
