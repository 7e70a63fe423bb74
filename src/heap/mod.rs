//! Heap walkers: every allocation of every heap, as a stream of [`Block`]s with the corruption
//! found and how much of each segment the walk explained.

pub mod block;
pub mod nt;

use crate::dump::Dump;
use crate::layout::nt_heap::NtFamily;
use crate::process::{Heap, HeapKind, Process};
pub use block::{Block, Corruption, Coverage, FrontEnd, State};
use rayon::prelude::*;

/// The walk of one heap.
#[derive(Clone, Debug)]
pub struct HeapWalk {
    /// Heap address.
    pub heap: u64,
    /// Index in the process-wide heap list ([`Process`] worlds in order, each heap in
    /// ProcessHeaps order); blocks carry it.
    pub index: u32,
    /// 32 or 64.
    pub bits: u32,
    /// NT heap or segment heap.
    pub kind: HeapKind,
    /// The layout family walked with.
    pub family: Option<NtFamily>,
    /// `_HEAP.Flags`, when read.
    pub flags: Option<u32>,
    /// The LFH front end's address, when the LFH is active.
    pub lfh: Option<u64>,
    /// The LFH key (`RtlpLFHKey`, low 32 bits) recovered from the user blocks (Windows 8.1+).
    pub lfh_key: Option<u32>,
    /// Every block: back end, large, LFH chunks; heap metadata marked internal.
    pub blocks: Vec<Block>,
    /// Inconsistencies found.
    pub corruptions: Vec<Corruption>,
    /// Per segment: how much of its committed memory the walk explained.
    pub coverage: Vec<Coverage>,
    /// Bytes reserved by large blocks.
    pub large_reserved: u64,
    /// Bytes committed by large blocks.
    pub large_committed: u64,
    /// Why parts of the heap were not walked.
    pub notes: Vec<String>,
}

impl HeapWalk {
    fn new(heap: &Heap, index: u32) -> Self {
        HeapWalk {
            heap: heap.address,
            index,
            bits: heap.bits,
            kind: heap.kind,
            family: heap.family,
            flags: None,
            lfh: None,
            lfh_key: None,
            blocks: Vec::new(),
            corruptions: Vec::new(),
            coverage: Vec::new(),
            large_reserved: 0,
            large_committed: 0,
            notes: Vec::new(),
        }
    }
}

/// Walk every heap of every world, in parallel, in the order of [`HeapWalk::index`].
pub fn walk_all(dump: &Dump, process: &Process) -> Vec<HeapWalk> {
    let heaps: Vec<&Heap> = process.worlds.iter().flat_map(|w| w.heaps.iter()).collect();
    let mem = dump.memory();
    heaps
        .par_iter()
        .enumerate()
        .map(|(i, h)| {
            let index = i as u32;
            match h.kind {
                HeapKind::Nt => nt::walk(mem, h, index),
                HeapKind::Segment => {
                    let mut w = HeapWalk::new(h, index);
                    w.notes.push(
                        "segment heaps are not walked yet; their ranges are still labeled".into(),
                    );
                    w
                }
                HeapKind::NotCaptured => {
                    let mut w = HeapWalk::new(h, index);
                    w.notes.push("the heap's memory is not in the dump".into());
                    w
                }
                HeapKind::Unknown(sig) => {
                    let mut w = HeapWalk::new(h, index);
                    w.notes
                        .push(format!("unknown heap signature {sig:#010x}; not walked"));
                    w
                }
            }
        })
        .collect()
}
