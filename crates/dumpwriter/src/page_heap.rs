//! Page heaps (`gflags +hpa`, full and light), as verifier.dll and ntdll really build them
//! (`shared/docs/windows-heap-reference.md` §4.1, observed on real Windows 10 19041 x86 and 1607
//! x64 code; the `_DPH_*` layouts in `shared/docs/layouts/`).
//!
//! A page heap's handle is a read-only page filled with 0xEE whose `_HEAP.Flags` and `ForceFlags`
//! are 0x01000002 (`HEAP_FLAG_PAGE_ALLOCS | HEAP_GROWABLE`); the page after it is the
//! `_DPH_HEAP_ROOT` (signature 0xFFEEDDCC). `PEB.ProcessHeaps` lists the page heaps' *normal*
//! heaps, not them; `PEB.ProcessHeap` is the process heap's page heap; the roots are linked by
//! `NextHeap` from a head in verifier.dll's data. Busy allocations are `_DPH_HEAP_BLOCK` nodes of
//! the root's `BusyNodesTable` (an `RTL_AVL_TABLE` whose nodes start with their balanced links,
//! its element count kept in the table); freed ones are a `pNextAlloc` chain from
//! `pFreeAllocationListHead`. Each busy allocation has its own virtual block: accessible pages
//! ending at a guard page, user data ending at the guard page (aligned down to 16 bytes on x64, 8
//! on x86), a `_DPH_BLOCK_INFORMATION` just before the user data (StartStamp 0xABCDBBBB, Heap =
//! the root, EndStamp 0xDCBABBBB). A light page heap (`ExtraFlags & 0x20000`) puts every block in
//! its normal heap, behind an information stamped 0xABCDAAAA whose Heap is the root with the top
//! bit set. Stacks are classic `_RTL_STACK_TRACE_ENTRY` records (Depth u16 at +0xE/+0xA,
//! BackTrace at +0x10/+0xC).

use crate::memory::*;
use crate::nt_heap::ExpectedBlock;
use crate::process::{HeapFacts, ProcessBuilder, Usage, Windows};

const PAGE: u64 = 0x1000;
/// `_DPH_HEAP_ROOT.Signature`.
pub const DPH_SIGNATURE: u32 = 0xffee_ddcc;
/// `_DPH_BLOCK_INFORMATION.StartStamp` of a busy full-page-heap block.
pub const BUSY_START_STAMP: u32 = 0xabcd_bbbb;
/// `_DPH_BLOCK_INFORMATION.EndStamp` of a busy full-page-heap block.
pub const BUSY_END_STAMP: u32 = 0xdcba_bbbb;
/// `StartStamp` of a busy light-page-heap block (a block of the page heap's normal heap).
pub const LIGHT_BUSY_START_STAMP: u32 = 0xabcd_aaaa;
/// `EndStamp` of a busy light-page-heap block.
pub const LIGHT_BUSY_END_STAMP: u32 = 0xdcba_aaaa;
const RESERVE: u64 = 0x10_0000;

/// What a page heap holds.
#[derive(Clone, Debug)]
pub struct PageHeapSpec {
    /// Busy allocations: requested size and the index of its stack in `stacks` (None: no stack).
    pub busy: Vec<(u64, Option<usize>)>,
    /// Freed allocations (requested sizes), kept on the free list with their memory decommitted.
    pub freed: Vec<u64>,
    /// Call stacks, innermost first.
    pub stacks: Vec<Vec<u64>>,
    /// Light page heap (`ExtraFlags` 0x20000): its blocks are in the normal heap (see
    /// [`ProcessBuilder::add_light_page_heap_blocks`]).
    pub light: bool,
}

/// Offsets of one width.
struct Dph {
    p: u64,
    heap_flags: u64,
    busy_table: u64,
    busy_elements: u64,
    busy_count: u64,
    free_head: u64,
    free_count: u64,
    extra_flags: u64,
    storage_head: u64,
    normal_heap: u64,
    node_size: u64,
    user: u64,
    vblock: u64,
    vsize: u64,
    access: u64,
    requested: u64,
    actual: u64,
    trace: u64,
    info: u64,
    info_trace: u64,
    align: u64,
}

/// The offsets of a `bits`-bit page heap on `windows`: the held-back free count where the real
/// Windows 10 code keeps it (§4.1: x64 +0xD8, x86 +0x74), on Windows 7 where the `dt` dump puts
/// `nFreeAllocations` (+0xC8 / +0x6C).
fn dph(bits: u32, windows: Windows) -> Dph {
    let win7 = windows == Windows::Win7Sp1;
    if bits == 64 {
        Dph {
            p: 8,
            heap_flags: 0x70,
            busy_table: 0x38,
            busy_elements: 0x64,
            busy_count: 0xa8,
            free_head: 0xb8,
            free_count: if win7 { 0xc8 } else { 0xd8 },
            extra_flags: 0x148,
            storage_head: 0x18,
            normal_heap: 0x150,
            node_size: 0x88,
            user: 0x20,
            vblock: 0x28,
            vsize: 0x30,
            access: 0x38,
            requested: 0x40,
            actual: 0x48,
            trace: 0x60,
            info: 0x40,
            info_trace: 0x30,
            align: 16,
        }
    } else {
        Dph {
            p: 4,
            heap_flags: 0x40,
            busy_table: 0x20,
            busy_elements: 0x38,
            busy_count: 0x5c,
            free_head: 0x64,
            free_count: if win7 { 0x6c } else { 0x74 },
            extra_flags: 0xac,
            storage_head: 0x10,
            normal_heap: 0xb4,
            node_size: 0x40,
            user: 0x10,
            vblock: 0x14,
            vsize: 0x18,
            access: 0x1c,
            requested: 0x20,
            actual: 0x24,
            trace: 0x30,
            info: 0x20,
            info_trace: 0x18,
            align: 8,
        }
    }
}

impl ProcessBuilder {
    /// A page heap of world `bits` holding `spec`'s allocations, whose normal heap is `normal` (an
    /// NT heap made before, in ProcessHeaps); returns its handle (`HeapCreate`'s answer).
    pub fn add_page_heap(&mut self, bits: u32, normal: u64, spec: &PageHeapSpec) -> u64 {
        let d = dph(bits, self.windows());
        let p = d.p;
        // Classic stack trace database entries: 0x10/0x0C header + 32 pointer-sized frames.
        let entry_size = if bits == 64 { 0x10 } else { 0xc } + 32 * p;
        let db = self.add_private_usage(0x1_0000, 0x1_0000, Usage::Unknown);
        self.dump.memory.capture(db, 0x1_0000);
        let mut records = Vec::new();
        for (i, frames) in spec.stacks.iter().enumerate() {
            let at = db + 0x100 + i as u64 * entry_size;
            let m = &mut self.dump.memory;
            let (count_off, index_off, depth_off, frames_off) = if bits == 64 {
                (8, 0xc, 0xe, 0x10)
            } else {
                (4, 0x8, 0xa, 0xc)
            };
            m.write_u16(at + count_off, 1);
            m.write_u16(at + index_off, i as u16 + 1);
            m.write_u16(at + depth_off, frames.len() as u16);
            for (k, f) in frames.iter().enumerate() {
                m.write_ptr(bits, at + frames_off + k as u64 * p, *f);
            }
            records.push(at);
        }

        let heap = self.alloc_private(RESERVE);
        self.page_heap_region(heap, RESERVE, bits);
        let root = heap + PAGE;
        let m = &mut self.dump.memory;
        m.capture(heap, 0x1_0000);
        m.write(heap, &[0xee; PAGE as usize]);
        m.write_u32(heap + d.heap_flags, 0x0100_0002);
        m.write_u32(heap + d.heap_flags + 4, 0x0100_0002);
        m.write_u32(root, DPH_SIGNATURE);
        m.write_u32(root + 4, 2);
        m.write_ptr(bits, root + d.normal_heap, normal);
        if spec.light {
            m.write_u32(root + d.extra_flags, 0x2_0000);
        }
        // Node pool: the third page onwards. Node 0 describes the virtual storage: the rest of the
        // reservation, from which every block below is carved.
        let node = |i: u64| heap + 2 * PAGE + i * d.node_size.next_multiple_of(0x10);
        let storage = node(0);
        m.write_ptr(bits, storage + d.vblock, heap + 0x1_0000);
        m.write_ptr(bits, storage + d.vsize, RESERVE - 0x1_0000);
        m.write_ptr(bits, root + d.storage_head, storage);
        m.write_ptr(bits, root + d.storage_head + p, storage);
        m.write_u32(root + d.storage_head + 2 * p, 1);

        let mut blocks = Vec::new();
        let mut next_va = heap + 0x1_0000;
        let mut busy_nodes = Vec::new();
        for (i, (req, stack)) in spec.busy.iter().enumerate() {
            let n = node(1 + i as u64);
            let accessible = (req + d.info).div_ceil(PAGE) * PAGE;
            let va = next_va;
            next_va += accessible + PAGE;
            let user = (va + accessible - req) & !(d.align - 1);
            let trace = stack.map_or(0, |s| records[s]);
            m.capture(va, accessible);
            m.write_ptr(bits, n + d.user, user);
            m.write_ptr(bits, n + d.vblock, va);
            m.write_ptr(bits, n + d.vsize, accessible + PAGE);
            m.write_ptr(bits, n + d.access, accessible);
            m.write_ptr(bits, n + d.requested, *req);
            m.write_ptr(bits, n + d.actual, va + accessible - user);
            m.write_ptr(bits, n + d.trace, trace);
            let info = user - d.info;
            m.write_u32(info, BUSY_START_STAMP);
            m.write_ptr(bits, info + p, root);
            m.write_ptr(bits, info + 2 * p, *req);
            m.write_ptr(bits, info + 3 * p, va + accessible - user);
            m.write_ptr(bits, info + d.info_trace, trace);
            m.write_u32(info + d.info - 4, BUSY_END_STAMP);
            busy_nodes.push((user, n));
            blocks.push(ExpectedBlock {
                entry: va,
                address: user,
                size: *req,
                block_size: accessible + PAGE,
                busy: true,
                front_end: "pageheap",
                internal: false,
                trace,
            });
        }
        // The busy table: a balanced tree in user-address order under BalancedRoot.RightChild.
        busy_nodes.sort_unstable();
        let table = root + d.busy_table;
        let top = link_tree(m, bits, &busy_nodes, table);
        m.write_ptr(bits, table + 2 * p, top);
        m.write_u32(root + d.busy_elements, busy_nodes.len() as u32);
        m.write_u32(root + d.busy_count, busy_nodes.len() as u32);
        // Freed blocks: nodes chained by pNextAlloc, their memory decommitted (not captured).
        let first_free = 1 + spec.busy.len() as u64;
        let mut prev: Option<u64> = None;
        for (i, req) in spec.freed.iter().enumerate() {
            let n = node(first_free + i as u64);
            let accessible = (req + d.info).div_ceil(PAGE) * PAGE;
            let va = next_va;
            next_va += accessible + PAGE;
            let user = (va + accessible - req) & !(d.align - 1);
            m.write_ptr(bits, n + d.user, user);
            m.write_ptr(bits, n + d.vblock, va);
            m.write_ptr(bits, n + d.vsize, accessible + PAGE);
            m.write_ptr(bits, n + d.requested, *req);
            match prev {
                Some(pn) => m.write_ptr(bits, pn, n),
                None => m.write_ptr(bits, root + d.free_head, n),
            }
            m.write_ptr(bits, root + d.free_head + p, n);
            prev = Some(n);
            blocks.push(ExpectedBlock {
                entry: va,
                address: user,
                size: *req,
                block_size: accessible + PAGE,
                busy: false,
                front_end: "pageheap",
                internal: false,
                trace: 0,
            });
        }
        m.write_u32(root + d.free_count, spec.freed.len() as u32);
        assert!(next_va <= heap + RESERVE, "page heap reservation too small");
        assert!(
            node(first_free + spec.freed.len() as u64) <= heap + 0x1_0000,
            "node pool too small"
        );
        self.register_page_heap(
            bits,
            HeapFacts {
                address: heap,
                bits,
                segment_heap: false,
                segments: vec![(heap, heap + RESERVE)],
                large_blocks: Vec::new(),
                blocks,
                lfh_key: None,
                stacks: records
                    .iter()
                    .zip(&spec.stacks)
                    .map(|(r, f)| (*r, f.clone()))
                    .collect(),
                structures: Vec::new(),
            },
            root,
            normal,
        );
        heap
    }
}

impl ProcessBuilder {
    /// Turn busy back-end blocks of the NT heap `normal`, the normal heap of the light page heap
    /// whose handle is `page_heap`, into light page-heap blocks: `_DPH_BLOCK_INFORMATION` at the
    /// start of the block's user data (Heap: the root with the top bit set), the application's
    /// data after it. Every `every`-th eligible block becomes one; the odd ones of those are left
    /// "freed" (start stamp 0xABCDAAA9: page heap holds them in its delay-free queue). Stacks
    /// cycle through `records`. The facts are updated to match.
    pub fn add_light_page_heap_blocks(
        &mut self,
        bits: u32,
        (page_heap, normal): (u64, u64),
        records: &[u64],
        every: usize,
    ) {
        let d = dph(bits, self.windows());
        let owner = (page_heap + PAGE) | 1 << (bits - 1);
        let p = d.p;
        let facts = self
            .facts_heaps_mut()
            .iter_mut()
            .find(|h| h.address == normal)
            .expect("the normal heap");
        let mut changed = Vec::new();
        let eligible = facts.blocks.iter_mut().filter(|b| {
            b.busy && !b.internal && b.front_end == "backend" && b.size >= d.info + 0x10
        });
        for (k, b) in eligible.step_by(every.max(1)).enumerate() {
            let info = b.address;
            let requested = (b.size - d.info) / 2;
            let trace = records[k % records.len()];
            let freed = k % 2 == 1;
            changed.push((info, requested, trace, freed));
            b.address = info + d.info;
            b.size = requested;
            b.front_end = "pageheap";
            b.busy = !freed;
            b.trace = if freed { 0 } else { trace };
        }
        let m = &mut self.dump.memory;
        for (info, requested, trace, freed) in changed {
            let stamp = if freed {
                LIGHT_BUSY_START_STAMP - 1
            } else {
                LIGHT_BUSY_START_STAMP
            };
            m.write_u32(info, stamp);
            m.write_ptr(bits, info + p, owner);
            m.write_ptr(bits, info + 2 * p, requested);
            m.write_ptr(bits, info + 3 * p, requested);
            m.write_ptr(bits, info + d.info_trace, trace);
            m.write_u32(info + d.info - 4, LIGHT_BUSY_END_STAMP - u32::from(freed));
        }
    }
}

/// Link `nodes` (sorted) as a balanced binary tree whose root's parent is `parent`; returns the
/// root (0 for none). `_RTL_BALANCED_LINKS`: Parent, LeftChild, RightChild.
fn link_tree(m: &mut ProcessMemory, bits: u32, nodes: &[(u64, u64)], parent: u64) -> u64 {
    if nodes.is_empty() {
        return 0;
    }
    let p = u64::from(bits / 8);
    let mid = nodes.len() / 2;
    let me = nodes[mid].1;
    let left = link_tree(m, bits, &nodes[..mid], me);
    let right = link_tree(m, bits, &nodes[mid + 1..], me);
    m.write_ptr(bits, me, parent);
    m.write_ptr(bits, me + p, left);
    m.write_ptr(bits, me + 2 * p, right);
    me
}
