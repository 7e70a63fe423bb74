//! Where a heap's own accounting of its committed memory and the region table disagree: a heap
//! whose segment is a mapped view (the CSR-port heaps of `fizzbuzz_wow64.dmp`) keeps uncommitted
//! ranges in memory that the region table, and so `!address`, counts as committed whole. `heaps`
//! shows the heap's own figure (`!heap -s`'s), `address` the region table's (`!address`'s); both
//! say where they differ and why (see `docs/address.md`).

use crate::dump::Dump;
use crate::process::{HeapKind, Process};
use crate::regions::{MEM_COMMIT, MEM_MAPPED};

/// One heap whose own committed bytes and the region table's differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disagreement {
    /// The heap.
    pub heap: u64,
    /// 32 or 64.
    pub bits: u32,
    /// Committed bytes of its segments by its own accounting.
    pub own: u64,
    /// Committed bytes of its segments by the region table.
    pub regions: u64,
    /// Some of its segment memory is a mapped view (MEM_MAPPED).
    pub mapped: bool,
}

impl Disagreement {
    /// The sentence both views print.
    pub fn sentence(&self) -> String {
        let why = if self.mapped {
            "its segment memory is a mapped view, committed whole, in which the heap keeps uncommitted ranges"
        } else {
            "the heap's uncommitted ranges and the region table's states differ"
        };
        format!(
            "heap {:#x}: the region table counts {} bytes committed in its segments, its own accounting {} ({} bytes apart): {why}",
            self.heap,
            self.regions,
            self.own,
            self.regions.abs_diff(self.own)
        )
    }
}

/// The NT heaps whose segments' committed bytes differ between the heap's own accounting and the
/// region table (none without a region table).
pub fn disagreements(dump: &Dump, process: &Process) -> Vec<Disagreement> {
    let Some(info) = &dump.memory_info else {
        return Vec::new();
    };
    let mut sorted: Vec<_> = info.iter().collect();
    sorted.sort_by_key(|r| r.base);
    let mut out = Vec::new();
    for w in &process.worlds {
        for h in w.heaps.iter().filter(|h| h.kind == HeapKind::Nt) {
            let Some(own) = h.own_committed else { continue };
            let (mut committed, mut mapped) = (0u64, false);
            for s in &h.segments {
                let first = sorted.partition_point(|r| r.base.saturating_add(r.size) <= s.start);
                for r in sorted[first..].iter().take_while(|r| r.base < s.end) {
                    // A damaged segment may end before it starts: no overlap then.
                    let overlap = r
                        .base
                        .saturating_add(r.size)
                        .min(s.end)
                        .saturating_sub(r.base.max(s.start));
                    if r.state == MEM_COMMIT {
                        committed += overlap;
                        mapped |= r.kind == MEM_MAPPED;
                    }
                }
            }
            if committed != own {
                out.push(Disagreement {
                    heap: h.address,
                    bits: h.bits,
                    own,
                    regions: committed,
                    mapped,
                });
            }
        }
    }
    out
}
