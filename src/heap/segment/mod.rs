//! The segment heap walker (Windows 10 1709 – 11 24H2, x64 and x86; reference §6, §11.1–§11.3):
//! the page segments of both segment contexts and their ranges (back-end allocations, VS and LFH
//! subsegments), and the large allocations.
//!
//! - [`keys`]: `HeapKey` and `LfhKey` from the page-segment signatures and ntdll's data;
//! - [`ranges`]: one page segment, its descriptors, committed pages and ranges;
//! - [`vs`] and [`lfh`]: the subsegments' blocks; [`large`]: the large allocations;
//! - [`extra`]: the +ust trace record of an allocation with ExtraPresent.
//!
//! A heap's reserved and committed bytes are its page segments (descriptor array plus the pages
//! the descriptors count as committed) and its large allocations; the `_SEGMENT_HEAP` structure's
//! own allocation is not counted (see `docs/heaps.md`).

mod extra;
mod keys;
mod large;
mod lfh;
mod ranges;
mod vs;

use super::block::{Block, Corruption, FrontEnd, State};
use super::HeapWalk;
use crate::dump::memory::AddressSpace;
use crate::layout::segment_heap::{SegmentHeapLayout, SegmentShape};
use crate::process::heaps::walk_list;
use crate::process::Heap;
pub use keys::Sources;

/// One page segment of a segment context.
#[derive(Clone, Copy, Debug)]
pub struct PageSegment {
    /// Its address.
    pub address: u64,
    /// The `_HEAP_SEG_CONTEXT` it belongs to.
    pub context: u64,
    /// The context's UnitShift (12: 4 KiB units; 16: 64 KiB units).
    pub shift: u32,
    /// The context's FirstDescriptorIndex: units before it are the segment's header.
    pub first: u8,
}

/// What the parts of one walk add to: the memory read, the blocks, corruptions and notes.
pub(crate) struct Sink<'m> {
    pub mem: AddressSpace<'m>,
    pub index: u32,
    pub blocks: Vec<Block>,
    pub corruptions: Vec<Corruption>,
    pub notes: Vec<String>,
}

impl Sink<'_> {
    fn corrupt(&mut self, address: u64, segment: u64, what: String) {
        self.corruptions.push(Corruption {
            address,
            segment,
            what,
        });
    }

    fn note(&mut self, note: String) {
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }
}

/// Walk one segment heap; `src` says where its keys may be found.
pub fn walk(mem: AddressSpace<'_>, heap: &Heap, index: u32, src: &Sources) -> HeapWalk {
    let mut out = HeapWalk::new(heap, index);
    let Some(l) = heap.segment_layout else {
        // The process model has said which layout did not fit (its problems are the notes).
        if out.notes.is_empty() {
            out.notes
                .push("no known _SEGMENT_HEAP layout fits this heap; it is not walked".into());
        }
        return out;
    };
    let o = SegmentShape::new(heap.bits);
    out.walked = true;
    out.flags = mem.read_u32(heap.address.wrapping_add(o.global_flags)).ok();
    let mut sink = Sink {
        mem,
        index,
        blocks: Vec::new(),
        corruptions: Vec::new(),
        notes: std::mem::take(&mut out.notes),
    };
    let segments = page_segments(&mem, heap, &l);
    match keys::recover(&mem, &segments, &l, &o, src, &mut sink.notes) {
        Ok(keys) => {
            for s in &segments {
                let c = ranges::walk(&mut sink, s, &l, &o, &keys);
                out.coverage.push(c);
            }
        }
        Err((0, why)) => sink.note(why),
        Err((at, why)) => sink.corrupt(at, at, why),
    }
    (out.large_reserved, out.large_committed) = large::walk(&mut sink, heap, &l, &o);
    // Segment heaps have no `_HEAP.FrontEndHeap`: the first LFH subsegment stands for it.
    out.lfh = sink
        .blocks
        .iter()
        .find(|b| b.front_end == FrontEnd::Lfh)
        .map(|b| b.entry);
    out.blocks = sink.blocks;
    out.corruptions = sink.corruptions;
    out.notes = sink.notes;
    out
}

/// The page segments of both segment contexts, with each context's unit shift and first
/// descriptor.
fn page_segments(mem: &AddressSpace<'_>, heap: &Heap, l: &SegmentHeapLayout) -> Vec<PageSegment> {
    let mut out = Vec::new();
    for i in 0..2 {
        let ctx = heap.address.wrapping_add(l.seg_contexts + i * l.ctx_size);
        let Ok(b) = mem.read(ctx.wrapping_add(l.ctx_unit_shift), 3) else {
            continue;
        };
        let (shift, first) = (u32::from(b[0]), b[2]);
        if !(12..=20).contains(&shift) || u64::from(first) >= ranges::DESCRIPTORS {
            continue;
        }
        for seg in walk_list(mem, ctx.wrapping_add(l.ctx_segment_list), heap.bits).links {
            out.push(PageSegment {
                address: seg,
                context: ctx,
                shift,
                first,
            });
        }
    }
    out
}

fn block(
    heap: u32,
    entry: u64,
    address: u64,
    size: u64,
    block_size: u64,
    busy: bool,
    fe: FrontEnd,
) -> Block {
    Block {
        entry,
        address,
        size,
        block_size,
        trace: 0,
        heap,
        state: if busy { State::Busy } else { State::Free },
        front_end: fe,
        flags: u8::from(busy),
        internal: false,
    }
}
