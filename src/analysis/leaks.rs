//! Leak evidence from one dump (`heapdiag leaks`): the roots, the busy blocks they do not reach
//! (see [`reach`](super::reach)), the roots of garbage and what each keeps alive.

use super::reach::{self, BlockIndex, Garbage};
use super::roots::{self, RootSet, Roots};
use crate::dump::Dump;
use crate::heap::HeapWalk;
use crate::process::Process;

/// The reachability of a dump's busy blocks.
pub struct Leaks {
    /// Where the scan started.
    pub roots: Roots,
    /// The busy user blocks.
    pub index: BlockIndex,
    /// The unreachable ones and how they hold each other.
    pub garbage: Garbage,
}

impl Leaks {
    /// Scan `dump` from the roots `set` asks for over the blocks of `walks`.
    pub fn find(dump: &Dump, process: &Process, walks: &[HeapWalk], set: RootSet) -> Leaks {
        let roots = roots::collect(dump, process, walks, set);
        let index = BlockIndex::new(walks);
        let mem = dump.memory();
        let marks = reach::mark(&mem, &index, &roots, None);
        let garbage = reach::garbage(&mem, &index, &marks);
        Leaks {
            roots,
            index,
            garbage,
        }
    }

    /// Requested bytes of the unreachable blocks.
    pub fn unreachable_bytes(&self) -> u64 {
        self.garbage
            .blocks
            .iter()
            .map(|&i| self.index.size(i))
            .sum()
    }

    /// The position in [`Garbage::blocks`] of the unreachable block at user address `address`.
    pub fn unreachable_at(&self, address: u64) -> Option<u32> {
        self.garbage.position(self.index.at(address)?)
    }
}
