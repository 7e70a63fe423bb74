//! Reachability of heap blocks by a conservative scan (`heapdiag leaks`; definitions in
//! docs/leaks.md).
//!
//! A pointer is a pointer-size, pointer-aligned value (4 bytes in 32-bit memory, 8 in 64-bit) that
//! points anywhere into a busy user block's data `[address, address + size)`. From the
//! [`Roots`](super::roots::Roots), blocks are marked breadth first, each newly marked block's data
//! read for more pointers, until nothing new is found; free blocks and heap metadata are never
//! read. What stays unmarked is unreachable; among those, [`garbage`] finds the roots of garbage
//! (an unreachable block, or a cycle of them, that no other unreachable block points into) and
//! the bytes each one alone keeps alive.
//!
//! Built for millions of blocks: one sorted array of 16 bytes per busy block (start, end) searched
//! by bisection, one mark bit per block, the frontier of the breadth-first search, block data read
//! in place from the mapped dump, rayon over roots and over each frontier.

use super::roots::{RootKind, RootRange, Roots};
use crate::analysis::heaps::is_user_busy;
use crate::dump::memory::AddressSpace;
use crate::heap::{Block, HeapWalk};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// The top bit of [`BlockIndex`]'s stored end: the block is in a 32-bit heap (user-mode addresses
/// never reach it).
const NARROW: u64 = 1 << 63;
/// A frontier at least this long is scanned in parallel.
const PARALLEL: usize = 64;
/// Blocks per parallel task (1024: fewer, larger batches of lookups; measured on the bench dump).
const CHUNK: usize = 1024;

/// Blocks further apart than this start a new cluster of [`BlockIndex`]'s page table.
const CLUSTER_GAP: u64 = 1 << 20;

/// The busy user blocks of all heaps, sorted by address: which block a value points into.
///
/// A value is looked up in three steps that stay in cache: the cluster of blocks it falls in
/// (blocks less than [`CLUSTER_GAP`] apart form one; a few thousand in all), the page of that
/// cluster (a table of the first block that ends past each page's start), then the few blocks
/// of that page, by bisection.
pub struct BlockIndex {
    /// Per block, sorted by user address: the user address, then the end of the user data with
    /// [`NARROW`] for blocks of 32-bit heaps (side by side: a lookup reads one cache line).
    blocks: Vec<[u64; 2]>,
    /// Clusters: first address (page-aligned), one past the last, and where their pages start
    /// in `pages`.
    clusters: Vec<(u64, u64, u32)>,
    /// Per page of each cluster, and one past its last page: the first block whose user data
    /// ends past the page's start.
    pages: Vec<u32>,
    /// Page size: `1 << shift` bytes.
    shift: u32,
    /// Lowest address and highest end: a quick test that rejects most values.
    lo: u64,
    hi: u64,
    /// Blocks left out because another block starts at the same address, or that overlap the one
    /// before them.
    pub overlapping: usize,
}

impl BlockIndex {
    /// Index the busy user blocks of `walks`.
    pub fn new(walks: &[HeapWalk]) -> Self {
        // Each walk's blocks into its own part of one array, in parallel.
        let keep = |b: &Block| is_user_busy(b) && b.address < NARROW - 1;
        let counts: Vec<usize> = walks
            .par_iter()
            .map(|w| w.blocks.iter().filter(|b| keep(b)).count())
            .collect();
        let mut blocks: Vec<[u64; 2]> = vec![[0; 2]; counts.iter().sum()];
        let mut parts = Vec::with_capacity(walks.len());
        let mut rest = &mut blocks[..];
        for &n in &counts {
            let (part, tail) = rest.split_at_mut(n);
            parts.push(part);
            rest = tail;
        }
        parts.into_par_iter().zip(walks).for_each(|(part, w)| {
            let flag = if w.bits == 32 { NARROW } else { 0 };
            let ends = w.blocks.iter().filter(|b| keep(b)).map(|b| {
                [
                    b.address,
                    b.address.saturating_add(b.size).min(NARROW - 1) | flag,
                ]
            });
            for (slot, pair) in part.iter_mut().zip(ends) {
                *slot = pair;
            }
        });
        blocks.par_sort_unstable();
        let before = blocks.len();
        blocks.dedup_by_key(|b| b[0]);
        let mut overlapping = before - blocks.len();
        overlapping += blocks
            .windows(2)
            .filter(|w| w[1][0] < w[0][1] & !NARROW)
            .count();
        let mut index = BlockIndex {
            blocks,
            clusters: Vec::new(),
            pages: Vec::new(),
            shift: 10,
            lo: 0,
            hi: 0,
            overlapping,
        };
        index.build_pages();
        index
    }

    /// The end a lookup uses for block `i`: one past its start for a block of size 0 (pointed to
    /// by its address).
    fn reach_end(&self, i: usize) -> u64 {
        let [start, end] = self.blocks[i];
        (end & !NARROW).max(start + 1)
    }

    /// Clusters and their page table; pages grow (from 1 KiB) until the table has at most one
    /// entry per block.
    fn build_pages(&mut self) {
        let n = self.blocks.len();
        let mut clusters: Vec<(u64, u64, usize)> = Vec::new();
        for i in 0..n {
            let (start, end) = (self.blocks[i][0], self.reach_end(i));
            match clusters.last_mut() {
                Some(c) if start <= c.1.saturating_add(CLUSTER_GAP) => c.1 = c.1.max(end),
                _ => clusters.push((start, end, i)),
            }
        }
        let pages_at = |shift: u32| -> u64 {
            clusters
                .iter()
                .map(|c| ((c.1 - (c.0 >> shift << shift)) >> shift) + 2)
                .sum()
        };
        while pages_at(self.shift) > n as u64 + 1024 && self.shift < 40 {
            self.shift += 1;
        }
        let shift = self.shift;
        for (k, &(start, end, first)) in clusters.iter().enumerate() {
            let base = start >> shift << shift;
            let count = ((end - base) >> shift) + 1;
            let last = clusters.get(k + 1).map_or(n, |c| c.2);
            self.clusters.push((base, end, self.pages.len() as u32));
            // The first block (of this cluster) whose end, or any earlier block's, passes each
            // page's start.
            let (mut i, mut reach) = (first, 0u64);
            for p in 0..=count {
                let page = base + (p << shift);
                while i < last && reach.max(self.reach_end(i)) <= page {
                    reach = reach.max(self.reach_end(i));
                    i += 1;
                }
                self.pages.push(i as u32);
            }
        }
        self.lo = clusters.first().map_or(0, |c| c.0);
        self.hi = clusters.last().map_or(0, |c| c.1);
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// User address of block `i`.
    pub fn address(&self, i: u32) -> u64 {
        self.blocks[i as usize][0]
    }

    /// Requested size of block `i`.
    pub fn size(&self, i: u32) -> u64 {
        let [start, end] = self.blocks[i as usize];
        (end & !NARROW) - start
    }

    /// Pointer width of block `i`'s heap.
    pub fn bits(&self, i: u32) -> u32 {
        if self.blocks[i as usize][1] & NARROW != 0 {
            32
        } else {
            64
        }
    }

    /// Whether `v` lies between the lowest block and the end of the highest: most values that
    /// are not pointers fail this.
    #[inline]
    pub fn spans(&self, v: u64) -> bool {
        v.wrapping_sub(self.lo) < self.hi.wrapping_sub(self.lo)
    }

    /// The block whose user data holds `v`; a block of size 0 is pointed to by its address.
    #[inline]
    pub fn find(&self, v: u64) -> Option<u32> {
        if !self.spans(v) {
            return None;
        }
        let c = self.clusters.partition_point(|c| c.0 <= v).checked_sub(1)?;
        let (base, end, first) = self.clusters[c];
        if v >= end {
            return None;
        }
        let p = first as usize + ((v - base) >> self.shift) as usize;
        let (from, to) = (self.pages[p] as usize, self.pages[p + 1] as usize);
        let window = &self.blocks[from..(to + 1).min(self.blocks.len())];
        let j = from + window.partition_point(|b| b[0] <= v).checked_sub(1)?;
        let [start, end] = self.blocks[j];
        (v < end & !NARROW || v == start).then_some(j as u32)
    }

    /// Load what [`BlockIndex::find`] will read for `v` (its page's entry and the first blocks of
    /// that page) without waiting for it: called for a whole batch of values first, the loads of
    /// the batch overlap instead of waiting one after the other.
    #[inline]
    pub fn touch(&self, v: u64) {
        if !self.spans(v) {
            return;
        }
        let c = self
            .clusters
            .partition_point(|c| c.0 <= v)
            .saturating_sub(1);
        let (base, end, first) = self.clusters[c];
        if v < base || v >= end {
            return;
        }
        let p = first as usize + ((v - base) >> self.shift) as usize;
        let (from, to) = (self.pages[p] as usize, self.pages[p + 1] as usize);
        std::hint::black_box((self.blocks.get(from), self.blocks.get((from + to) / 2)));
    }

    /// The block starting at `address`.
    pub fn at(&self, address: u64) -> Option<u32> {
        self.find(address).filter(|&i| self.address(i) == address)
    }
}

/// Per block, four bits of one word (16 blocks a word): marked, in level set 0, in level set 1.
/// A block found during a breadth-first level is marked and put in the next level's set with
/// one atomic operation on one cache line.
pub struct Marks(Vec<AtomicU64>);

/// The mark bit of a block's four.
const MARKED: u64 = 1;
/// The mark bit of each of a word's 16 blocks.
const MARKED_BITS: u64 = 0x1111_1111_1111_1111;

impl Marks {
    /// `n` blocks, none marked.
    pub fn new(n: usize) -> Self {
        Marks((0..n.div_ceil(16)).map(|_| AtomicU64::new(0)).collect())
    }

    /// The word and the shift of block `i`.
    #[inline]
    fn at(&self, i: u32) -> (&AtomicU64, u32) {
        (&self.0[(i / 16) as usize], 4 * (i % 16))
    }

    /// Mark block `i` and put it in level set `level` (0 or 1); true when this call marked it.
    #[inline]
    fn mark(&self, i: u32, level: usize) -> bool {
        let (word, shift) = self.at(i);
        let bits = (MARKED | 2 << level) << shift;
        let mut old = word.load(Ordering::Relaxed);
        loop {
            if old & (MARKED << shift) != 0 {
                return false;
            }
            match word.compare_exchange_weak(old, old | bits, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => old = now,
            }
        }
    }

    /// Take block `i` out of level set `level`.
    fn unqueue(&self, i: u32, level: usize) {
        let (word, shift) = self.at(i);
        word.fetch_and(!((2 << level) << shift), Ordering::Relaxed);
    }

    /// Take the blocks of word `w` out of level set `level`: a mask of their mark bits.
    fn take(&self, w: usize, level: usize) -> u64 {
        let set = MARKED_BITS << (1 + level);
        (self.0[w].fetch_and(!set, Ordering::Relaxed) & set) >> (1 + level)
    }

    /// Whether block `i` is marked.
    #[inline]
    pub fn get(&self, i: u32) -> bool {
        let (word, shift) = self.at(i);
        word.load(Ordering::Relaxed) & (MARKED << shift) != 0
    }
}

/// For each pointer-aligned value of `bytes` (the memory at `addr`, of a world of `bits`) that
/// falls in the index's span: `each(value, address of the value)`.
#[inline]
fn each_value(
    index: &BlockIndex,
    bytes: &[u8],
    addr: u64,
    bits: u32,
    mut each: impl FnMut(u64, u64),
) {
    let width = (bits / 8) as usize;
    let skip = ((width as u64 - addr % width as u64) % width as u64) as usize;
    let Some(aligned) = bytes.get(skip..) else {
        return;
    };
    let base = addr + skip as u64;
    if width == 8 {
        for (k, c) in aligned.chunks_exact(8).enumerate() {
            let v = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            if index.spans(v) {
                each(v, base + 8 * k as u64);
            }
        }
    } else {
        for (k, c) in aligned.chunks_exact(4).enumerate() {
            let v = u64::from(u32::from_le_bytes(c.try_into().expect("4 bytes")));
            if index.spans(v) {
                each(v, base + 4 * k as u64);
            }
        }
    }
}

/// For each pointer-aligned value of `bytes` (the memory at `addr`, of a world of `bits`) that
/// points into a block: `hit(block, address of the value)`.
#[inline]
fn each_pointer(
    index: &BlockIndex,
    bytes: &[u8],
    addr: u64,
    bits: u32,
    mut hit: impl FnMut(u32, u64),
) {
    each_value(index, bytes, addr, bits, |v, at| {
        if let Some(t) = index.find(v) {
            hit(t, at);
        }
    });
}

/// Call `f(address, bytes)` for each captured piece of `[start, end)`, read in place.
fn captured<'a>(mem: &AddressSpace<'a>, start: u64, end: u64, mut f: impl FnMut(u64, &[u8])) {
    let ranges = mem.ranges();
    let first = ranges.partition_point(|r| r.end() <= start);
    for r in ranges[first..].iter().take_while(|r| r.base < end) {
        let (s, e) = (r.base.max(start), r.end().min(end));
        if let Ok(b) = mem.read(s, (e - s) as usize) {
            f(s, &b);
        }
    }
}

/// The pointers of block `i`'s data: `hit(target, address of the value)`.
fn block_pointers(mem: &AddressSpace<'_>, index: &BlockIndex, i: u32, hit: impl FnMut(u32, u64)) {
    let mut hit = hit;
    block_values(mem, &mut 0, index, i, |v, at| {
        if let Some(t) = index.find(v) {
            hit(t, at);
        }
    });
}

/// The values of block `i`'s data that fall in the index's span: `each(value, address)`;
/// `hint` is [`AddressSpace::read_near`]'s.
fn block_values(
    mem: &AddressSpace<'_>,
    hint: &mut usize,
    index: &BlockIndex,
    i: u32,
    mut each: impl FnMut(u64, u64),
) {
    let (start, size, bits) = (index.address(i), index.size(i), index.bits(i));
    match mem.read_near(hint, start, size as usize) {
        Ok(b) => each_value(index, &b, start, bits, &mut each),
        // Partly captured: the pieces that are there.
        Err(_) => captured(mem, start, start + size, |a, b| {
            each_value(index, b, a, bits, &mut each)
        }),
    }
}

/// Values waiting to be looked up at most; looking many up in a row lets the processor overlap
/// their cache misses.
const BATCH: usize = 4096;

/// Read `blocks` in order: the blocks their values point into, `visit(target, from)`.
fn scan_blocks(
    mem: &AddressSpace<'_>,
    index: &BlockIndex,
    blocks: impl Iterator<Item = u32>,
    mut visit: impl FnMut(u32, u32),
) {
    let mut hint = 0;
    let mut batch: Vec<(u64, u32)> = Vec::new();
    let mut flush = |batch: &mut Vec<(u64, u32)>| {
        for &(v, _) in batch.iter() {
            index.touch(v);
        }
        for &(v, from) in batch.iter() {
            if let Some(t) = index.find(v) {
                visit(t, from);
            }
        }
        batch.clear();
    };
    for i in blocks {
        block_values(mem, &mut hint, index, i, |v, _| batch.push((v, i)));
        if batch.len() >= BATCH {
            flush(&mut batch);
        }
    }
    flush(&mut batch);
}

/// The pointers of a root range, in 1 MB pieces for parallel reading.
fn range_pieces(r: &RootRange) -> impl Iterator<Item = (u64, u64, u32)> + '_ {
    const PIECE: u64 = 1 << 20;
    (r.start..r.end)
        .step_by(PIECE as usize)
        .map(move |s| (s, (s + PIECE).min(r.end), r.bits))
}

/// No parent recorded.
const NO_PARENT: u32 = u32::MAX;
/// Found in a root.
const FROM_ROOT: u32 = u32::MAX - 1;

/// The blocks the roots reach, marked; with `parents`, each block's parent in a shortest chain
/// from the roots ([`FROM_ROOT`] for blocks a root points to).
///
/// Breadth first, level by level. A small level is a list of blocks, read in address order; a
/// large one (more than one block in 64) is a bit set, read in one parallel sweep over the blocks
/// in address order: the memory is then read in the order the dump holds it, and the levels
/// never take more than two bits per block.
pub fn mark(
    mem: &AddressSpace<'_>,
    index: &BlockIndex,
    roots: &Roots,
    parents: Option<&[AtomicU32]>,
) -> Marks {
    let n = index.len();
    let m = Marker {
        mem,
        index,
        parents,
        marks: Marks::new(n),
        next: AtomicUsize::new(0),
        sparse_max: (n / 64).max(PARALLEL),
        listed: AtomicUsize::new(0),
        too_many: AtomicBool::new(false),
    };
    let mut level = m.roots(roots);
    loop {
        let total: usize = level.iter().map(|f| f.count).sum();
        if total == 0 {
            break;
        }
        let list = !m.too_many.swap(false, Ordering::Relaxed)
            && total <= m.sparse_max
            && level.iter().all(|f| f.list.len() == f.count);
        m.listed.store(0, Ordering::Relaxed);
        level = if list {
            m.list_level(level)
        } else {
            drop(level);
            m.set_level()
        };
    }
    m.marks
}

/// One breadth-first marking under way ([`mark`]).
struct Marker<'a, 'm> {
    mem: &'a AddressSpace<'m>,
    index: &'a BlockIndex,
    parents: Option<&'a [AtomicU32]>,
    /// Marks, and the level being found in set `next`; a large level is swept from its set
    /// while the one after it is found in the other.
    marks: Marks,
    next: AtomicUsize,
    /// The most blocks a level may have and still be a list.
    sparse_max: usize,
    /// Blocks listed in this level so far (by finished tasks), and whether the level is too
    /// large to be a list: then no task lists any more (at most a list per running task is
    /// left).
    listed: AtomicUsize,
    too_many: AtomicBool,
}

impl Marker<'_, '_> {
    /// Block `t`, pointed to from `from`: marked, counted and listed when not marked yet.
    fn visit(&self, t: u32, from: u32, found: &mut Found) {
        if self.marks.get(t) || !self.marks.mark(t, self.next.load(Ordering::Relaxed)) {
            return;
        }
        if let Some(p) = self.parents {
            p[t as usize].store(from, Ordering::Relaxed);
        }
        found.count += 1;
        if !self.too_many.load(Ordering::Relaxed) {
            found.list.push(t);
            if found.list.len() > self.sparse_max {
                self.too_many.store(true, Ordering::Relaxed);
            }
        }
    }

    /// What a task found: counted and, while the level may be a list, listed.
    fn done(&self, found: Found) -> Found {
        let n = found.list.len();
        if self.listed.fetch_add(n, Ordering::Relaxed) + n > self.sparse_max {
            self.too_many.store(true, Ordering::Relaxed);
        }
        found
    }

    /// Read the blocks `ids` (in address order) and visit what they point to.
    fn read(&self, ids: &mut dyn Iterator<Item = u32>) -> Found {
        let mut found = Found::default();
        scan_blocks(self.mem, self.index, ids, |t, from| {
            self.visit(t, from, &mut found)
        });
        self.done(found)
    }

    /// The first level: the blocks the root ranges (read in parallel pieces) and the registers
    /// point to.
    fn roots(&self, roots: &Roots) -> Vec<Found> {
        let pieces: Vec<(u64, u64, u32)> = roots.ranges.iter().flat_map(range_pieces).collect();
        let mut level: Vec<Found> = pieces
            .par_iter()
            .map(|&(s, e, bits)| {
                let mut found = Found::default();
                captured(self.mem, s, e, |a, b| {
                    each_pointer(self.index, b, a, bits, |t, _| {
                        self.visit(t, FROM_ROOT, &mut found)
                    })
                });
                self.done(found)
            })
            .collect();
        let mut found = Found::default();
        for (_, v) in &roots.registers {
            if let Some(t) = self.index.find(*v) {
                self.visit(t, FROM_ROOT, &mut found);
            }
        }
        level.push(self.done(found));
        level
    }

    /// The next level from a level that is a list: its blocks taken out of the set and read in
    /// address order.
    fn list_level(&self, level: Vec<Found>) -> Vec<Found> {
        let mut ids: Vec<u32> = level.into_iter().flat_map(|f| f.list).collect();
        let set = self.next.load(Ordering::Relaxed);
        for &i in &ids {
            self.marks.unqueue(i, set);
        }
        if ids.len() < PARALLEL {
            // A long list of single blocks (a linked list) would pay rayon's cost per level.
            ids.sort_unstable();
            vec![self.read(&mut ids.iter().copied())]
        } else {
            ids.par_sort_unstable();
            ids.par_chunks(CHUNK)
                .map(|chunk| self.read(&mut chunk.iter().copied()))
                .collect()
        }
    }

    /// The next level from a level that is a set: swept in parallel, cleared for the level
    /// after next.
    fn set_level(&self) -> Vec<Found> {
        let swept = self.next.fetch_xor(1, Ordering::Relaxed);
        let words = self.marks.0.len();
        (0..words.div_ceil(CHUNK / 16))
            .into_par_iter()
            .map(|c| {
                let chunk = c * CHUNK / 16..((c + 1) * CHUNK / 16).min(words);
                let marks = &self.marks;
                let mut ids = chunk.flat_map(move |w| {
                    let mut bits = marks.take(w, swept);
                    std::iter::from_fn(move || {
                        (bits != 0).then(|| {
                            let b = bits.trailing_zeros() / 4;
                            bits &= bits - 1;
                            (16 * w) as u32 + b
                        })
                    })
                });
                self.read(&mut ids)
            })
            .collect()
    }
}

/// What one task of a breadth-first level found.
#[derive(Default)]
struct Found {
    /// How many blocks it marked.
    count: usize,
    /// The blocks it marked, while the level may still be a list.
    list: Vec<u32>,
}

/// The unreachable blocks and how they hold each other.
pub struct Garbage {
    /// Unreachable blocks (ids into the [`BlockIndex`]), in address order.
    pub blocks: Vec<u32>,
    /// For each of `blocks`: the root of garbage (index into `roots`) that alone keeps it,
    /// or `None` when several do.
    pub owner: Vec<Option<u32>>,
    /// The roots of garbage, in address order of their first block.
    pub roots: Vec<GarbageRoot>,
    /// Pointers between unreachable blocks: `edges[offsets[k]..offsets[k + 1]]` are the
    /// positions (in `blocks`) that block `k` points into.
    offsets: Vec<u32>,
    edges: Vec<u32>,
}

/// A root of garbage: an unreachable block, or a cycle of them, that no other unreachable block
/// points into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GarbageRoot {
    /// Its blocks (positions in [`Garbage::blocks`]), in address order: one, or a cycle.
    pub members: Vec<u32>,
    /// Requested bytes of itself and of the blocks it alone keeps alive.
    pub retained_bytes: u64,
    /// Those blocks, itself included.
    pub retained_blocks: u64,
}

/// The unreachable blocks of `index` given the reachable `marks`: the pointers among them, their
/// cycles, roots of garbage and retained bytes.
pub fn garbage(mem: &AddressSpace<'_>, index: &BlockIndex, marks: &Marks) -> Garbage {
    let blocks: Vec<u32> = (0..index.len() as u32).filter(|&i| !marks.get(i)).collect();
    let pos = |t: u32| blocks.binary_search(&t).ok().map(|p| p as u32);
    // Pointers between unreachable blocks, as adjacency lists (compressed rows).
    let lists: Vec<(Vec<u32>, Vec<u32>)> = blocks
        .par_chunks(CHUNK)
        .map(|chunk| {
            let (mut counts, mut targets) = (Vec::with_capacity(chunk.len()), Vec::new());
            for &i in chunk {
                let before = targets.len();
                block_pointers(mem, index, i, |t, _| {
                    if !marks.get(t) {
                        targets.extend(pos(t));
                    }
                });
                targets[before..].sort_unstable();
                let mut k = before;
                // Keep each target once.
                for j in before..targets.len() {
                    if j == before || targets[j] != targets[k - 1] {
                        targets[k] = targets[j];
                        k += 1;
                    }
                }
                targets.truncate(k);
                counts.push((targets.len() - before) as u32);
            }
            (counts, targets)
        })
        .collect();
    let mut offsets = Vec::with_capacity(blocks.len() + 1);
    offsets.push(0u32);
    let mut edges = Vec::new();
    for (counts, targets) in lists {
        for c in counts {
            offsets.push(offsets.last().expect("one offset") + c);
        }
        edges.extend(targets);
    }
    let mut g = Garbage {
        owner: vec![None; blocks.len()],
        blocks,
        roots: Vec::new(),
        offsets,
        edges,
    };
    g.find_roots(index);
    g
}

impl Garbage {
    /// The positions block `k` points into.
    pub fn targets(&self, k: u32) -> &[u32] {
        &self.edges[self.offsets[k as usize] as usize..self.offsets[k as usize + 1] as usize]
    }

    /// The position of block id `i`, when it is unreachable.
    pub fn position(&self, i: u32) -> Option<u32> {
        self.blocks.binary_search(&i).ok().map(|p| p as u32)
    }

    /// Strongly connected components (Tarjan, iterative), then in topological order each
    /// component's owner: itself when nothing points into it (a root of garbage), the one root
    /// all its predecessors share, or none.
    fn find_roots(&mut self, index: &BlockIndex) {
        let n = self.blocks.len();
        let (comp, order, starts) = self.components();
        let comps = starts.len() - 1;
        const NONE: u32 = u32::MAX;
        const MANY: u32 = u32::MAX - 1;
        let mut owner = vec![NONE; comps];
        let mut root_of_comp = vec![NONE; comps];
        let mut roots: Vec<GarbageRoot> = Vec::new();
        // Tarjan finishes a component after every component it reaches: reversed, sources first.
        for c in (0..comps).rev() {
            let members = &order[starts[c] as usize..starts[c + 1] as usize];
            if owner[c] == NONE {
                let mut m = members.to_vec();
                m.sort_unstable();
                root_of_comp[c] = roots.len() as u32;
                owner[c] = c as u32;
                roots.push(GarbageRoot {
                    members: m,
                    retained_bytes: 0,
                    retained_blocks: 0,
                });
            }
            let own = owner[c];
            for &k in members {
                for &t in self.targets(k) {
                    let d = comp[t as usize] as usize;
                    if d != c {
                        owner[d] = match owner[d] {
                            NONE => own,
                            o if o == own => own,
                            _ => MANY,
                        };
                    }
                }
            }
        }
        for k in 0..n {
            let o = owner[comp[k] as usize];
            if o != MANY {
                let r = root_of_comp[o as usize];
                self.owner[k] = Some(r);
                let root = &mut roots[r as usize];
                root.retained_bytes += index.size(self.blocks[k]);
                root.retained_blocks += 1;
            }
        }
        // Number the roots in address order of their first block.
        let mut by_address: Vec<u32> = (0..roots.len() as u32).collect();
        by_address.sort_by_key(|&r| roots[r as usize].members[0]);
        let mut renumber = vec![0u32; roots.len()];
        for (new, &old) in by_address.iter().enumerate() {
            renumber[old as usize] = new as u32;
        }
        for o in self.owner.iter_mut().flatten() {
            *o = renumber[*o as usize];
        }
        let mut slots: Vec<Option<GarbageRoot>> = roots.into_iter().map(Some).collect();
        self.roots = by_address
            .iter()
            .map(|&r| slots[r as usize].take().expect("each root once"))
            .collect();
    }

    /// Tarjan's strongly connected components: each position's component, the positions in
    /// component order, and where each component starts in that order (components numbered in
    /// the order they finish).
    fn components(&self) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
        let n = self.blocks.len();
        const UNSEEN: u32 = u32::MAX;
        let mut num = vec![UNSEEN; n];
        let mut low = vec![0u32; n];
        let mut on_stack = vec![false; n];
        let mut stack: Vec<u32> = Vec::new();
        let mut comp = vec![0u32; n];
        let mut order = Vec::with_capacity(n);
        let mut starts = vec![0u32];
        let mut next = 0u32;
        // (node, index of its next edge)
        let mut calls: Vec<(u32, u32)> = Vec::new();
        for s in 0..n as u32 {
            if num[s as usize] != UNSEEN {
                continue;
            }
            calls.push((s, self.offsets[s as usize]));
            num[s as usize] = next;
            low[s as usize] = next;
            next += 1;
            stack.push(s);
            on_stack[s as usize] = true;
            while let Some(&(v, e)) = calls.last() {
                if e < self.offsets[v as usize + 1] {
                    let w = self.edges[e as usize];
                    if let Some(top) = calls.last_mut() {
                        top.1 += 1;
                    }
                    if num[w as usize] == UNSEEN {
                        num[w as usize] = next;
                        low[w as usize] = next;
                        next += 1;
                        stack.push(w);
                        on_stack[w as usize] = true;
                        calls.push((w, self.offsets[w as usize]));
                    } else if on_stack[w as usize] {
                        low[v as usize] = low[v as usize].min(num[w as usize]);
                    }
                    continue;
                }
                calls.pop();
                if let Some(&(u, _)) = calls.last() {
                    low[u as usize] = low[u as usize].min(low[v as usize]);
                }
                if low[v as usize] == num[v as usize] {
                    let c = (starts.len() - 1) as u32;
                    loop {
                        let w = stack.pop().expect("v is on the stack");
                        on_stack[w as usize] = false;
                        comp[w as usize] = c;
                        order.push(w);
                        if w == v {
                            break;
                        }
                    }
                    starts.push(order.len() as u32);
                }
            }
        }
        (comp, order, starts)
    }
}

/// One step of the chain that keeps a block alive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// A root holds a pointer into the next block: the root, and where (the register's value
    /// for a register).
    Root {
        /// The root.
        kind: RootKind,
        /// Address of the value (0 for a register).
        at: u64,
        /// The value.
        value: u64,
    },
    /// A block (id into the index) holds a pointer into the next one at `at`.
    Block {
        /// The block.
        block: u32,
        /// Address of the pointer in it (`None` for the last block of the chain).
        at: Option<u64>,
        /// The value.
        value: Option<u64>,
    },
}

/// The shortest chain from a root to block `target`, when it is reachable: the root, then each
/// block, `target` last.
pub fn chain_from_roots(
    mem: &AddressSpace<'_>,
    index: &BlockIndex,
    roots: &Roots,
    target: u32,
) -> Option<Vec<Link>> {
    let parents: Vec<AtomicU32> = (0..index.len())
        .map(|_| AtomicU32::new(NO_PARENT))
        .collect();
    let marks = mark(mem, index, roots, Some(&parents));
    if !marks.get(target) {
        return None;
    }
    let mut path = vec![target];
    let mut at = target;
    // Bounded by the number of blocks: parents form a tree.
    for _ in 0..index.len() {
        match parents[at as usize].load(Ordering::Relaxed) {
            FROM_ROOT | NO_PARENT => break,
            p => {
                path.push(p);
                at = p;
            }
        }
    }
    path.reverse();
    let mut links = vec![root_link(mem, index, roots, path[0])];
    links.extend(block_links(mem, index, &path));
    Some(links)
}

/// The first root value that points into block `first`.
fn root_link(mem: &AddressSpace<'_>, index: &BlockIndex, roots: &Roots, first: u32) -> Link {
    for (kind, v) in &roots.registers {
        if index.find(*v) == Some(first) {
            return Link::Root {
                kind: kind.clone(),
                at: 0,
                value: *v,
            };
        }
    }
    for r in &roots.ranges {
        let mut hit = None;
        captured(mem, r.start, r.end, |a, b| {
            if hit.is_none() {
                each_pointer(index, b, a, r.bits, |t, at| {
                    if t == first && hit.is_none() {
                        hit = Some(at);
                    }
                });
            }
        });
        if let Some(at) = hit {
            let value = mem.read_ptr(at, r.bits).unwrap_or(0);
            return Link::Root {
                kind: r.kind.clone(),
                at,
                value,
            };
        }
    }
    unreachable_root()
}

/// A root link for a chain whose first block no root value was found for again (cannot happen:
/// marking found one).
fn unreachable_root() -> Link {
    Link::Root {
        kind: RootKind::Private,
        at: 0,
        value: 0,
    }
}

/// The links of a path of blocks: where each holds its pointer into the next.
fn block_links(mem: &AddressSpace<'_>, index: &BlockIndex, path: &[u32]) -> Vec<Link> {
    path.iter()
        .enumerate()
        .map(|(k, &b)| match path.get(k + 1) {
            Some(&next) => {
                let mut hit = None;
                block_pointers(mem, index, b, |t, at| {
                    if t == next && hit.is_none() {
                        hit = Some(at);
                    }
                });
                Link::Block {
                    block: b,
                    at: hit,
                    value: hit.and_then(|a| mem.read_ptr(a, index.bits(b)).ok()),
                }
            }
            None => Link::Block {
                block: b,
                at: None,
                value: None,
            },
        })
        .collect()
}

impl Garbage {
    /// The shortest chain from a root of garbage to the unreachable block at position `k`: the
    /// root's block first, `k` last.
    pub fn chain(&self, mem: &AddressSpace<'_>, index: &BlockIndex, k: u32) -> Vec<Link> {
        let n = self.blocks.len();
        let mut parent = vec![NO_PARENT; n];
        let mut frontier: Vec<u32> = Vec::new();
        for r in &self.roots {
            for &m in &r.members {
                parent[m as usize] = FROM_ROOT;
                frontier.push(m);
            }
        }
        while !frontier.is_empty() && parent[k as usize] == NO_PARENT {
            let mut next = Vec::new();
            for &v in &frontier {
                for &t in self.targets(v) {
                    if parent[t as usize] == NO_PARENT {
                        parent[t as usize] = v;
                        next.push(t);
                    }
                }
            }
            frontier = next;
        }
        let mut path = vec![k];
        let mut at = k;
        for _ in 0..n {
            match parent[at as usize] {
                FROM_ROOT | NO_PARENT => break,
                p => {
                    path.push(p);
                    at = p;
                }
            }
        }
        path.reverse();
        let ids: Vec<u32> = path.iter().map(|&p| self.blocks[p as usize]).collect();
        block_links(mem, index, &ids)
    }

    /// The unreachable blocks (positions) that point into position `k`.
    pub fn pointed_from(&self, k: u32) -> Vec<u32> {
        (0..self.blocks.len() as u32)
            .filter(|&v| v != k && self.targets(v).binary_search(&k).is_ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::memory::{MemoryIndex, MemoryRange};
    use crate::heap::{FrontEnd, State};

    /// A 64-bit heap whose blocks are (address, size), all busy.
    fn walk(blocks: &[(u64, u64)]) -> HeapWalk {
        HeapWalk {
            heap: 0x1000,
            index: 0,
            bits: 64,
            kind: crate::process::HeapKind::Nt,
            walked: true,
            family: None,
            flags: None,
            lfh: None,
            lfh_key: None,
            blocks: blocks
                .iter()
                .map(|&(address, size)| Block {
                    entry: address - 16,
                    address,
                    size,
                    block_size: size + 16,
                    trace: 0,
                    heap: 0,
                    state: State::Busy,
                    front_end: FrontEnd::Backend,
                    flags: 1,
                    internal: false,
                })
                .collect(),
            corruptions: vec![],
            coverage: vec![],
            large_reserved: 0,
            large_committed: 0,
            notes: vec![],
        }
    }

    #[test]
    fn interior_pointers_find_their_block_and_ends_do_not() {
        let idx = BlockIndex::new(&[walk(&[(0x2000, 0x40), (0x1000, 0x10), (0x3000, 0)])]);
        assert_eq!(idx.find(0x1000), Some(0));
        assert_eq!(idx.find(0x100f), Some(0));
        assert_eq!(idx.find(0x1010), None);
        assert_eq!(idx.find(0x2020), Some(1));
        assert_eq!(
            idx.find(0x3000),
            Some(2),
            "a block of size 0 by its address"
        );
        assert_eq!(idx.find(0x3001), None);
        assert_eq!(idx.find(0xfff), None);
        assert_eq!(idx.find(u64::MAX), None);
        assert_eq!((idx.size(1), idx.bits(1)), (0x40, 64));
    }

    #[test]
    fn the_page_table_finds_what_a_linear_search_finds() {
        // Seeded: clusters of small blocks, a few far apart, one large block over many pages,
        // blocks of size 0, page-aligned starts.
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut blocks = Vec::new();
        let mut at = 0x2_0000_0000u64;
        for k in 0..5000u64 {
            let size = match k % 97 {
                0 => 0,
                1 => 0x30_0000,
                _ => 1 + next(0x300),
            };
            blocks.push((at, size));
            at += size.max(1) + next(0x40) * 8;
            if k % 500 == 499 {
                at += 0x10_0000 + next(1 << 36);
                at &= !0xfff;
            }
        }
        let idx = BlockIndex::new(&[walk(&blocks)]);
        let linear = |v: u64| {
            blocks
                .iter()
                .position(|&(a, s)| a <= v && (v < a + s || v == a))
                .map(|i| i as u32)
        };
        let probe = |v: u64| assert_eq!(idx.find(v), linear(v), "{v:#x}");
        for &(a, s) in &blocks {
            for v in [
                a,
                a + s / 2,
                a + s,
                a.wrapping_sub(1),
                (a & !0xfff) + 0x1000,
            ] {
                probe(v);
            }
        }
        for _ in 0..20_000 {
            probe(0x2_0000_0000 + next(at - 0x2_0000_0000 + 0x1000));
        }
        assert_eq!(idx.find(0), None);
        assert_eq!(idx.at(blocks[7].0), Some(7));
        assert_eq!(idx.at(blocks[7].0 + 1), None);
    }

    /// Memory at 0x10000: 0x400 bytes of little-endian u64 words given as (offset, value).
    fn memory(words: &[(u64, u64)]) -> Vec<u8> {
        let mut b = vec![0u8; 0x400];
        for &(o, v) in words {
            b[o as usize..o as usize + 8].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    #[test]
    fn cycles_and_shared_blocks_are_retained_as_defined() {
        // Blocks of 0x20 at 0x10000 + 0x40 * k, k = 0..8; a root range [0x10200, 0x10208).
        // Reachable: 0 (root) → 1 (interior pointer). Garbage: 2 → 3 ⇄ 4; 5 → 7, 6 → 7.
        let at = |k: u64| 0x10000 + 0x40 * k;
        let file = memory(&[
            (0x200, at(0)),
            (0x00, at(1) + 0x18),
            (0x80, at(3)),
            (0xc0, at(4) + 8),
            (0x100, at(3)),
            (0x140, at(7)),
            (0x180, at(7)),
            (0x88, at(0)),
        ]);
        let range = MemoryRange {
            base: 0x10000,
            size: file.len() as u64,
            offset: 0,
        };
        let mi = MemoryIndex::build(vec![range], file.len() as u64, &mut Vec::new());
        let mem = AddressSpace::new(&file, &mi);
        let blocks: Vec<(u64, u64)> = (0..8).map(|k| (at(k), 0x20)).collect();
        let idx = BlockIndex::new(&[walk(&blocks)]);
        let roots = Roots {
            ranges: vec![RootRange {
                kind: RootKind::Private,
                start: 0x10200,
                end: 0x10208,
                bits: 64,
            }],
            ..Roots::default()
        };
        let marks = mark(&mem, &idx, &roots, None);
        let reachable: Vec<u32> = (0..8).filter(|&i| marks.get(i)).collect();
        assert_eq!(reachable, [0, 1]);
        let g = garbage(&mem, &idx, &marks);
        assert_eq!(g.blocks, [2, 3, 4, 5, 6, 7]);
        let roots: Vec<(Vec<u32>, u64, u64)> = g
            .roots
            .iter()
            .map(|r| (r.members.clone(), r.retained_bytes, r.retained_blocks))
            .collect();
        // Positions: 2→0, 3→1, 4→2, 5→3, 6→4, 7→5.
        assert_eq!(
            roots,
            [(vec![0], 0x60, 3), (vec![3], 0x20, 1), (vec![4], 0x20, 1)]
        );
        assert_eq!(g.owner, [Some(0), Some(0), Some(0), Some(1), Some(2), None]);
        assert_eq!(g.pointed_from(5), [3, 4]);
        let chain = g.chain(&mem, &idx, 2);
        let ids: Vec<u32> = chain
            .iter()
            .map(|l| match l {
                Link::Block { block, .. } => *block,
                Link::Root { .. } => u32::MAX,
            })
            .collect();
        assert_eq!(ids, [2, 3, 4]);
        let why = chain_from_roots(&mem, &idx, &roots_of(&roots_range()), 1).unwrap();
        assert_eq!(
            why[0],
            Link::Root {
                kind: RootKind::Private,
                at: 0x10200,
                value: at(0)
            }
        );
        assert_eq!(
            why[1],
            Link::Block {
                block: 0,
                at: Some(0x10000),
                value: Some(at(1) + 0x18)
            }
        );
        assert!(chain_from_roots(&mem, &idx, &roots_of(&roots_range()), 7).is_none());
    }

    fn roots_range() -> Vec<RootRange> {
        vec![RootRange {
            kind: RootKind::Private,
            start: 0x10200,
            end: 0x10208,
            bits: 64,
        }]
    }

    fn roots_of(ranges: &[RootRange]) -> Roots {
        Roots {
            ranges: ranges.to_vec(),
            ..Roots::default()
        }
    }
}
