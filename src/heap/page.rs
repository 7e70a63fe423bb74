//! The full page heap walker (`gflags +hpa`; reference §4): busy allocations from the root's
//! `BusyNodesTable` (an AVL tree of `_DPH_HEAP_BLOCK` nodes, each starting with its balanced
//! links), freed ones from the `pFreeAllocationListHead` chain, stacks from each node's
//! `StackTrace` (a classic `_RTL_STACK_TRACE_ENTRY`, see [`crate::stacks`]).
//!
//! A block's entry is its virtual block (the accessible pages plus the trailing guard page, which
//! is the block size); its size is the requested size. The `_DPH_BLOCK_INFORMATION` below the user
//! data of busy blocks is checked (start stamp, requested size) when captured; a node whose
//! fields contradict each other is reported and skipped, and the walk goes on.

use super::block::{Block, Corruption, Coverage, FrontEnd, State};
use super::HeapWalk;
use crate::dump::memory::AddressSpace;
use crate::layout::page_heap::{
    PageHeapLayout, BUSY_START_STAMP, LIGHT_BUSY_START_STAMP, LIGHT_FREED_START_STAMP, ROOT_OFFSET,
};
use crate::process::{Heap, PageHeapLink};
use std::collections::HashSet;

/// The most nodes one list or tree may have before the walk calls it absurd.
const MAX_NODES: usize = 1 << 24;
const PAGE: u64 = 0x1000;

/// The normal heap of the page heap `heap` (`_DPH_HEAP_ROOT.NormalHeap`), where light page-heap
/// blocks live, and the page heap's root.
pub fn normal_heap(heap: &Heap) -> Option<(u64, u64)> {
    match heap.page {
        Some(PageHeapLink::Root {
            normal: Some(normal),
            ..
        }) => Some((normal, heap.address.wrapping_add(ROOT_OFFSET))),
        _ => None,
    }
}

/// Light page heap (reference §4.1): in a page heap's normal heap, a busy block whose user data
/// starts with a `_DPH_BLOCK_INFORMATION` stamped 0xABCDAAAA whose `Heap` is the page heap's root
/// with the pointer's top bit set is an application allocation made through page heap — its user
/// data follows the information, its requested size and stack are the information's. Stamped
/// 0xABCDAAA9, the application freed it and page heap still holds it (its delay-free queue): it
/// is reported free. Both become front end `pageheap`; an information whose size does not fit
/// the block is reported as corruption and the block left as it was.
pub fn adopt_light_blocks(mem: AddressSpace<'_>, walk: &mut HeapWalk, root: u64) {
    let l = PageHeapLayout::new(walk.bits);
    let tag = l.light_heap_tag(root);
    let mut bad = Vec::new();
    for b in walk
        .blocks
        .iter_mut()
        .filter(|b| b.state == State::Busy && !b.internal)
    {
        let Ok(stamp) = mem.read_u32(b.address) else {
            continue;
        };
        if stamp != LIGHT_BUSY_START_STAMP && stamp != LIGHT_FREED_START_STAMP {
            continue;
        }
        let info = b.address;
        let (Ok(owner), Ok(requested), Ok(trace)) = (
            mem.read_ptr(info.wrapping_add(l.info_heap), l.bits),
            mem.read_ptr(info.wrapping_add(l.info_requested), l.bits),
            mem.read_ptr(info.wrapping_add(l.info_stack_trace), l.bits),
        ) else {
            continue;
        };
        if owner != tag {
            bad.push(Corruption {
                address: info,
                segment: b.entry,
                what: format!(
                    "light page heap block information names heap {owner:#x}, not this page heap ({tag:#x})"
                ),
            });
            continue;
        }
        if requested > b.size.saturating_sub(l.info_size) {
            bad.push(Corruption {
                address: info,
                segment: b.entry,
                what: format!(
                    "light page heap block information: requested size {requested} does not fit the block's {} bytes",
                    b.size
                ),
            });
            continue;
        }
        let freed = stamp == LIGHT_FREED_START_STAMP;
        b.address = info.wrapping_add(l.info_size);
        b.size = requested;
        b.front_end = FrontEnd::PageHeap;
        b.state = if freed { State::Free } else { State::Busy };
        b.trace = if freed { 0 } else { trace };
    }
    walk.corruptions.extend(bad);
}

/// Walk one page heap.
pub fn walk(mem: AddressSpace<'_>, heap: &Heap, index: u32) -> HeapWalk {
    let mut out = HeapWalk::new(heap, index);
    let mut p = PageHeap {
        mem,
        l: PageHeapLayout::new(heap.bits),
        root: heap.address.wrapping_add(ROOT_OFFSET),
        index,
        seen: HashSet::new(),
    };
    out.walked = true;
    let flags_off = if heap.bits == 64 { 0x70 } else { 0x40 };
    out.flags = mem.read_u32(heap.address.wrapping_add(flags_off)).ok();
    out.notes.push(match heap.page {
        Some(PageHeapLink::Root {
            normal: Some(normal),
            light: true,
        }) => {
            format!("light page heap: every allocation is a block of its normal heap {normal:#x}")
        }
        Some(PageHeapLink::Root {
            normal: Some(normal),
            light: false,
        }) => format!(
            "full page heap; allocations it does not take go to its normal heap {normal:#x}"
        ),
        _ => "full page heap without a normal heap".into(),
    });
    p.busy(&mut out);
    p.freed(&mut out);
    out.blocks.sort_unstable_by_key(|b| b.entry);
    out.coverage = coverage(heap, &out.blocks);
    out
}

/// One page heap being walked; `seen` keeps every node visited (a node on both lists, or twice,
/// is a loop).
struct PageHeap<'a> {
    mem: AddressSpace<'a>,
    l: PageHeapLayout,
    root: u64,
    index: u32,
    seen: HashSet<u64>,
}

impl PageHeap<'_> {
    fn corrupt(&self, out: &mut HeapWalk, address: u64, what: &str) {
        out.corruptions.push(Corruption {
            address,
            segment: self.root,
            what: what.into(),
        });
    }

    /// Busy blocks: the AVL tree under `BalancedRoot.RightChild`, depth first with an explicit
    /// stack; its element count checks the walk.
    fn busy(&mut self, out: &mut HeapWalk) {
        let (mem, l, root) = (self.mem, self.l, self.root);
        let expected = mem
            .read_u32(root.wrapping_add(l.busy_elements))
            .unwrap_or(0);
        let top = mem
            .read_ptr(root.wrapping_add(l.busy_table + 2 * l.ptr()), l.bits)
            .unwrap_or(0);
        let mut pending = vec![top];
        let mut busy = 0u32;
        while let Some(node) = pending.pop() {
            if node == 0 {
                continue;
            }
            if !self.seen.insert(node) || self.seen.len() > MAX_NODES {
                self.corrupt(out, node, "the busy-node tree loops back to this node");
                continue;
            }
            let (Ok(left), Ok(right)) = (
                mem.read_ptr(node.wrapping_add(l.ptr()), l.bits),
                mem.read_ptr(node.wrapping_add(2 * l.ptr()), l.bits),
            ) else {
                out.notes.push(format!(
                    "busy node {node:#x} is not in the dump; its subtree is not walked"
                ));
                continue;
            };
            pending.push(right);
            pending.push(left);
            busy += 1;
            if let Some(b) = node_block(mem, &l, node, self.index, State::Busy, out) {
                check_info(mem, &l, root, &b, out);
                out.blocks.push(b);
            }
        }
        if busy != expected {
            out.notes.push(format!(
                "the busy-node tree has {busy} nodes, its table counts {expected}"
            ));
        }
    }

    /// Held-back freed blocks: the `pNextAlloc` chain from the free-allocation list's head.
    fn freed(&mut self, out: &mut HeapWalk) {
        let (mem, l, root) = (self.mem, self.l, self.root);
        let expected: Vec<u32> = l
            .free_count
            .iter()
            .filter_map(|&off| mem.read_u32(root.wrapping_add(off)).ok())
            .collect();
        let mut node = mem
            .read_ptr(root.wrapping_add(l.free_head), l.bits)
            .unwrap_or(0);
        let mut freed = 0u32;
        while node != 0 {
            if !self.seen.insert(node) || self.seen.len() > MAX_NODES {
                self.corrupt(
                    out,
                    node,
                    "the free-allocation list loops back to this node",
                );
                break;
            }
            let Ok(next) = mem.read_ptr(node, l.bits) else {
                out.notes.push(format!(
                    "free node {node:#x} is not in the dump; the rest of the free list is not walked"
                ));
                break;
            };
            freed += 1;
            if let Some(mut b) = node_block(mem, &l, node, self.index, State::Free, out) {
                // A freed node's stack is where it was freed, not allocated.
                b.trace = 0;
                out.blocks.push(b);
            }
            node = next;
        }
        if !expected.contains(&freed) {
            out.notes.push(format!(
                "the free list has {freed} nodes, the root counts {expected:?}"
            ));
        }
    }
}

/// The block a node describes, or None (with a corruption recorded) when its fields contradict
/// each other.
fn node_block(
    mem: AddressSpace<'_>,
    l: &PageHeapLayout,
    node: u64,
    heap: u32,
    state: State,
    out: &mut HeapWalk,
) -> Option<Block> {
    let read = |off: u64| mem.read_ptr(node.wrapping_add(off), l.bits);
    let (Ok(user), Ok(va), Ok(vsize), Ok(requested), Ok(trace)) = (
        read(l.user),
        read(l.virtual_block),
        read(l.virtual_size),
        read(l.requested),
        read(l.stack_trace),
    ) else {
        out.notes
            .push(format!("page heap node {node:#x} is not in the dump"));
        return None;
    };
    let end = va.checked_add(vsize);
    let fits = end.is_some_and(|end| {
        user >= va && user.checked_add(requested).is_some_and(|u| u <= end) && vsize >= PAGE
    });
    if !fits {
        out.corruptions.push(Corruption {
            address: node,
            segment: va,
            what: format!(
                "page heap node: user data {user:#x} + {requested:#x} does not fit its virtual block {va:#x} + {vsize:#x}"
            ),
        });
        return None;
    }
    Some(Block {
        entry: va,
        address: user,
        size: requested,
        block_size: vsize,
        trace,
        heap,
        state,
        front_end: FrontEnd::PageHeap,
        flags: 0,
        internal: false,
    })
}

/// Check a busy block against where page heap puts it (its data ends at the aligned boundary
/// before the guard page: `user = block + size − 0x1000 − align(requested)`) and against the
/// `_DPH_BLOCK_INFORMATION` below its user data (stamp, Heap = the root, requested size).
fn check_info(mem: AddressSpace<'_>, l: &PageHeapLayout, root: u64, b: &Block, out: &mut HeapWalk) {
    let mut bad = |address: u64, what: String| {
        out.corruptions.push(Corruption {
            address,
            segment: b.entry,
            what,
        })
    };
    let placed = (b.entry + b.block_size)
        .wrapping_sub(PAGE)
        .wrapping_sub(b.size.next_multiple_of(l.align()));
    if b.address != placed {
        bad(
            b.address,
            format!(
                "page heap block: user data at {:#x}, but its {} bytes would end at the guard page from {placed:#x}",
                b.address, b.size
            ),
        );
    }
    let info = b.address.wrapping_sub(l.info_size);
    let Ok(stamp) = mem.read_u32(info) else {
        return;
    };
    if stamp != BUSY_START_STAMP {
        bad(
            info,
            format!(
                "page heap block information: start stamp {stamp:#010x}, expected {BUSY_START_STAMP:#010x}"
            ),
        );
        return;
    }
    if let Ok(owner) = mem.read_ptr(info.wrapping_add(l.info_heap), l.bits) {
        if owner != root {
            bad(
                info,
                format!(
                    "page heap block information names heap {owner:#x}, not this root {root:#x}"
                ),
            );
        }
    }
    if let Ok(size) = mem.read_ptr(info.wrapping_add(l.info_requested), l.bits) {
        if size != b.size {
            bad(
                info,
                format!(
                    "page heap block information: requested size {size}, the node says {}",
                    b.size
                ),
            );
        }
    }
}

/// Per range of the heap: reserved is the range; committed is what page heap keeps accessible
/// there (the handle and root pages, and each busy block's pages without its guard page).
fn coverage(heap: &Heap, blocks: &[Block]) -> Vec<Coverage> {
    heap.segments
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let walked: u64 = blocks
                .iter()
                .filter(|b| b.state == State::Busy && b.entry >= r.start && b.entry < r.end)
                .map(|b| b.block_size - PAGE)
                .sum();
            let header = if i == 0 { r.size() } else { 0 };
            Coverage {
                segment: r.start,
                reserved: r.size(),
                committed: header + walked,
                header,
                walked,
                ..Coverage::default()
            }
        })
        .collect()
}
