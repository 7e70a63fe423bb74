//! Object graphs for the reachability fixtures: busy blocks ("objects") in NT heaps, and pointers
//! to them written where the test wants them: in other objects, in the live or the dead part of
//! a thread's stack, in registers, in the main image's `.data`, in a TEB, in a free block, or in
//! other private memory. What is reachable is then known by construction (the fixtures state it
//! next to their graphs, in [`crate::fixtures`]).

use crate::nt_heap::{BlockSpec, NtHeapSpec};
use crate::process::ProcessBuilder;

/// Where a pointer is written.
#[derive(Clone, Copy, Debug)]
pub enum Slot {
    /// In object `.0`, `.1` bytes into its user data.
    Object(usize, u64),
    /// In the live part of the stack of thread side `.0` (an index of `Facts::threads`), `.1`
    /// bytes above its stack pointer.
    LiveStack(usize, u64),
    /// In the dead part of that stack, `.1` bytes below its stack pointer.
    DeadStack(usize, u64),
    /// In a register of thread side `.0`.
    Register(usize, &'static str),
    /// In the main image's `.data` section, at `.0`.
    ImageData(u64),
    /// In the TEB of thread side `.0`, at `.1`.
    Teb(usize, u64),
    /// In the data of a free block of the first heap, at `.0` (past its free-list links).
    FreeBlock(u64),
    /// In a committed private region (an application's VirtualAlloc), at `.0`.
    Private(u64),
}

/// What a pointer points at.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// Object `.0`'s user data, `.1` bytes in.
    Into(usize, u64),
    /// Object `.0`'s block header (before its user data).
    Header(usize),
    /// One past object `.0`'s user data.
    End(usize),
}

/// A pointer of `width` bytes (4 or 8) to `to`, written at `at`.
#[derive(Clone, Copy, Debug)]
pub struct Pointer {
    /// Where.
    pub at: Slot,
    /// To what.
    pub to: Target,
    /// 4 or 8.
    pub width: u32,
}

/// One heap of objects.
#[derive(Clone, Debug)]
pub struct GraphHeap {
    /// 32 or 64.
    pub bits: u32,
    /// Requested sizes of its objects, with the index of their +ust stack.
    pub objects: Vec<(u64, Option<usize>)>,
}

impl ProcessBuilder {
    /// Build one NT heap per entry of `heaps` (one committed run of back-end blocks: the objects in
    /// order, the first heap with a free block after them), write `pointers`, and return the
    /// objects' user addresses in order (the objects of all heaps numbered in sequence).
    /// `stacks` are the +ust stacks of every heap (none: no +ust).
    pub fn add_object_graph(
        &mut self,
        heaps: &[GraphHeap],
        stacks: &[Vec<u64>],
        pointers: &[Pointer],
    ) -> Vec<u64> {
        let mut objects = Vec::new();
        let mut free_block = None;
        for (i, h) in heaps.iter().enumerate() {
            let mut blocks: Vec<BlockSpec> = h
                .objects
                .iter()
                .map(|&(size, trace)| BlockSpec::Busy { size, trace })
                .collect();
            let unit = if h.bits == 64 { 16 } else { 8 };
            if i == 0 {
                blocks.push(BlockSpec::Free { size: 8 * unit });
            }
            let heap = self.add_nt_heap(&NtHeapSpec::one_run(h.bits, blocks, stacks.to_vec()));
            let facts = self
                .facts_heaps()
                .iter()
                .find(|f| f.address == heap)
                .expect("the heap just built");
            let mine: Vec<_> = facts
                .blocks
                .iter()
                .filter(|b| b.busy && !b.internal)
                .take(h.objects.len())
                .map(|b| (b.entry, b.address))
                .collect();
            if i == 0 {
                let last = mine.last().map_or(0, |m| m.0);
                free_block = facts
                    .blocks
                    .iter()
                    .find(|b| !b.busy && b.entry > last)
                    .map(|b| b.address);
            }
            objects.extend(mine);
        }
        let sizes: Vec<u64> = heaps
            .iter()
            .flat_map(|h| h.objects.iter().map(|o| o.0))
            .collect();
        let exe = &self.dump.modules[0];
        let data = exe.base + u64::from(exe.size) - 0x2000;
        self.dump.memory.capture(data, 0x2000);
        let private = pointers
            .iter()
            .any(|p| matches!(p.at, Slot::Private(_)))
            .then(|| {
                let base = self.add_private(0x1_0000, 0x1000);
                self.dump.memory.capture(base, 0x1000);
                base
            });
        for p in pointers {
            let value = match p.to {
                Target::Into(o, off) => objects[o].1 + off,
                Target::Header(o) => objects[o].0,
                Target::End(o) => objects[o].1 + sizes[o],
            };
            let threads = self.threads();
            let at = match p.at {
                Slot::Object(o, off) => objects[o].1 + off,
                Slot::LiveStack(t, off) => threads[t].stack_pointer() + off,
                Slot::DeadStack(t, off) => threads[t].stack_pointer() - off,
                Slot::Teb(t, off) => threads[t].teb + off,
                Slot::ImageData(off) => data + off,
                Slot::FreeBlock(off) => free_block.expect("a free block") + off,
                Slot::Private(off) => private.expect("a private region") + off,
                Slot::Register(t, name) => {
                    self.set_registers(t, &[(name, value)]);
                    continue;
                }
            };
            if p.width == 8 {
                self.dump.memory.write_u64(at, value);
            } else {
                self.dump.memory.write_u32(at, value as u32);
            }
        }
        objects.into_iter().map(|o| o.1).collect()
    }
}
