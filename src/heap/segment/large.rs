//! A segment heap's large allocations (reference §6.8): one VirtualAlloc each, described by the
//! nodes of the `_RTL_RB_TREE` at `LargeAllocMetadata` (read by the process model's
//! [`large_nodes`]).

use super::{block, extra, Sink};
use crate::heap::block::FrontEnd;
use crate::layout::segment_heap::{SegmentHeapLayout, SegmentShape};
use crate::process::heaps::{large_nodes, LargeNode};
use crate::process::Heap;

/// Report every large allocation of `heap`; returns (reserved, committed) bytes.
pub fn walk(
    sink: &mut Sink<'_>,
    heap: &Heap,
    l: &SegmentHeapLayout,
    o: &SegmentShape,
) -> (u64, u64) {
    let mem = sink.mem;
    let (mut reserved, mut committed) = (0u64, 0u64);
    match large_nodes(&mem, heap.address, heap.bits, l) {
        Ok((nodes, problem)) => {
            for LargeNode { va, bytes, extra } in nodes {
                // `VirtualAddress`'s low 16 bits hold the unused byte count.
                let unused = (va & 0xffff).min(bytes);
                let start = va & !0xffff;
                let mut b = block(
                    sink.index,
                    start,
                    start,
                    bytes - unused,
                    bytes,
                    true,
                    FrontEnd::Large,
                );
                if extra {
                    b.trace = extra::trace(&mem, o, start, b.size);
                }
                sink.blocks.push(b);
                committed = committed.saturating_add(bytes);
                reserved =
                    reserved.saturating_add(bytes.div_ceil(0x1_0000).saturating_mul(0x1_0000));
            }
            // The process model's reading of the tree may have said so already.
            if let Some(p) = problem {
                sink.note(p);
            }
        }
        Err(why) => sink.note(why),
    }
    (reserved, committed)
}
