//! NT heaps laid out byte for byte as Windows lays them out, for every `_HEAP` layout family from
//! Windows 7 to 11, x86 and x64: segments with encoded block headers, uncommitted ranges and their
//! descriptor blocks, VirtualAlloc'd large blocks, the LFH (Windows 7 and Windows 8+ designs, with
//! `RtlpLFHKey`-encoded offsets from 8.1 on) and the +ust prefix with its stack records.
//!
//! Offsets and encodings: `shared/docs/windows-heap-reference.md` §2 (heap, segment, entry,
//! encoding, UCR, large blocks), §3 (LFH), §5.3–5.4 and §11 (+ust prefix, trace records, LFH chunk
//! headers). Every block written is recorded as an [`ExpectedBlock`], so tests know the walk's
//! answer by construction.

use crate::memory::*;
use crate::process::{HeapFacts, ProcessBuilder, Structure, StructureKind, Usage, Windows};

/// A block of a committed run, in address order.
#[derive(Clone, Debug)]
pub enum BlockSpec {
    /// An allocation of `size` bytes; `trace` indexes [`NtHeapSpec::stacks`] (+ust heaps).
    Busy {
        /// Requested size.
        size: u64,
        /// Stack of the allocation.
        trace: Option<usize>,
    },
    /// A block of `block` bytes holding `size` requested bytes, as after an in-place shrinking
    /// HeapReAlloc: its unused count can exceed what `UnusedBytes` holds.
    Shrunk {
        /// Requested size.
        size: u64,
        /// Block size (a multiple of the unit).
        block: u64,
    },
    /// A free block of `size` bytes (header included, a multiple of the unit).
    Free {
        /// Block size.
        size: u64,
    },
    /// An LFH user block (a busy, heap-internal container) and its chunks.
    UserBlock(UserBlockSpec),
}

/// An LFH user block.
#[derive(Clone, Debug)]
pub struct UserBlockSpec {
    /// Chunk stride in bytes (a multiple of the unit).
    pub stride: u64,
    /// The chunks: `Some((requested size, trace))` for busy ones, `None` for free ones.
    pub chunks: Vec<Option<(u64, Option<usize>)>>,
}

/// A committed run of a segment.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// Uncommitted bytes before this run (0 for the first run; a page multiple).
    pub gap_before: u64,
    /// Committed bytes of the run (a page multiple).
    pub commit: u64,
    /// Its blocks; the rest of the run becomes a free block and the range-descriptor block.
    pub blocks: Vec<BlockSpec>,
}

/// A segment: its reservation and committed runs (whatever follows the last run is uncommitted).
#[derive(Clone, Debug)]
pub struct SegmentSpec {
    /// Reserved bytes (a multiple of 64 KiB).
    pub reserve: u64,
    /// Committed runs, in address order.
    pub runs: Vec<RunSpec>,
}

/// An NT heap to build.
#[derive(Clone, Debug)]
pub struct NtHeapSpec {
    /// 32 or 64.
    pub bits: u32,
    /// Segments; the first is the heap itself.
    pub segments: Vec<SegmentSpec>,
    /// VirtualAlloc'd blocks: requested size and trace.
    pub large: Vec<(u64, Option<usize>)>,
    /// Whether the LFH front end is active (required for user blocks).
    pub lfh: bool,
    /// Whether the heap records +ust stacks (every busy block gets the prefix).
    pub ust: bool,
    /// Call stacks (return addresses, innermost first) the traced blocks refer to.
    pub stacks: Vec<Vec<u64>>,
}

impl NtHeapSpec {
    /// A heap of one 256 kB segment whose first 32 kB are committed and hold `blocks`, without
    /// the LFH; traced (+ust) when there are `stacks`.
    pub fn one_run(bits: u32, blocks: Vec<BlockSpec>, stacks: Vec<Vec<u64>>) -> Self {
        NtHeapSpec {
            bits,
            segments: vec![SegmentSpec {
                reserve: 0x4_0000,
                runs: vec![RunSpec {
                    gap_before: 0,
                    commit: 0x8000,
                    blocks,
                }],
            }],
            large: vec![],
            lfh: false,
            ust: !stacks.is_empty(),
            stacks,
        }
    }

    /// A heap of `segments` segments of `reserve` bytes whose first `commit` bytes are committed and
    /// hold no allocation, plus large blocks of the given requested sizes.
    pub fn simple(bits: u32, segments: usize, reserve: u64, commit: u64, large: &[u64]) -> Self {
        NtHeapSpec {
            bits,
            segments: (0..segments.max(1))
                .map(|_| SegmentSpec {
                    reserve,
                    runs: vec![RunSpec {
                        gap_before: 0,
                        commit,
                        blocks: vec![],
                    }],
                })
                .collect(),
            large: large.iter().map(|s| (*s, None)).collect(),
            lfh: false,
            ust: false,
            stacks: vec![],
        }
    }
}

/// A block the walker must find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpectedBlock {
    /// Header address.
    pub entry: u64,
    /// User address.
    pub address: u64,
    /// Requested size (busy) or usable size (free: block size − unit).
    pub size: u64,
    /// Block size (large blocks: committed size).
    pub block_size: u64,
    /// Busy?
    pub busy: bool,
    /// `backend`, `lfh` or `large`.
    pub front_end: &'static str,
    /// Heap metadata?
    pub internal: bool,
    /// Stack record address, 0 for none.
    pub trace: u64,
}

/// The `_HEAP` layout families, named as in the reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Family {
    Win7,
    Win8,
    Win81,
    Win10v1607,
    Win10v1809,
    /// The imagined future layout of [`Windows::Future`].
    Future,
}

impl Family {
    fn of(w: Windows) -> Family {
        match w {
            Windows::Win7Sp1 => Family::Win7,
            Windows::Win8 => Family::Win8,
            Windows::Win81 => Family::Win81,
            Windows::Win10v1607 | Windows::Win10v1709 | Windows::Win10v1803 => Family::Win10v1607,
            Windows::Win10 | Windows::Win11 | Windows::Win11v24H2 => Family::Win10v1809,
            Windows::Future => Family::Future,
        }
    }
}

/// Offsets (reference §2.1, §2.2, §2.7, §2.8, §3.2, §3.3).
#[derive(Clone, Copy)]
struct L {
    x64: bool,
    unit: u64,
    flags: u64,
    encode_flag_mask: u64,
    encoding: u64,
    interceptor: u64,
    signature: u64,
    virtual_allocd_blocks: u64,
    segment_list: u64,
    free_lists: u64,
    front_end_heap: u64,
    front_end_heap_type: u64,
    // _HEAP_SEGMENT
    seg_signature: u64,
    seg_list_entry: u64,
    seg_heap: u64,
    seg_base: u64,
    seg_pages: u64,
    seg_first: u64,
    seg_last: u64,
    seg_uncommitted_pages: u64,
    seg_uncommitted_ranges: u64,
    seg_ucr_list: u64,
    seg_header: u64,
    // _HEAP_UCR_DESCRIPTOR
    ucr_segment_entry: u64,
    ucr_address: u64,
    ucr_size: u64,
    ucr_block: u64,
    // _HEAP_VIRTUAL_ALLOC_ENTRY
    vae_commit: u64,
    vae_reserve: u64,
    vae_busy: u64,
    vae_size: u64,
    // LFH
    lfh_zones: u64,
    lfh_heap: u64,
    zone_header: u64,
    subseg_size: u64,
    subseg_user_blocks: u64,
    subseg_depth: u64,
    subseg_block_size: u64,
    subseg_block_count: u64,
    ub_signature: u64,
    ub_first_win7: u64,
    ub_encoded_offsets: u64,
    ub_bitmap_size: u64,
    ub_bitmap_buffer: u64,
    ub_bitmap_data: u64,
}

impl L {
    fn new(f: Family, bits: u32) -> L {
        let x64 = bits == 64;
        let p = |a: u64, b: u64| if x64 { a } else { b };
        let win7 = f == Family::Win7;
        let (feh, feht) = match (f, x64) {
            (Family::Win7 | Family::Win10v1607, true) => (0x178, 0x182),
            (Family::Win8 | Family::Win81, true) => (0x170, 0x17a),
            (Family::Win10v1809, true) => (0x198, 0x1a2),
            (Family::Future, true) => (0x1a8, 0x1b2),
            (Family::Win7 | Family::Win10v1607, false) => (0xd4, 0xda),
            (Family::Win8 | Family::Win81, false) => (0xd0, 0xd6),
            (Family::Win10v1809 | Family::Future, false) => (0xe4, 0xea),
        };
        L {
            x64,
            unit: p(16, 8),
            flags: p(0x70, 0x40),
            encode_flag_mask: p(0x7c, 0x4c),
            encoding: p(0x88, 0x50),
            interceptor: if win7 { p(0x98, 0x5c) } else { p(0x90, 0x58) },
            signature: if win7 { p(0xa0, 0x64) } else { p(0x98, 0x60) },
            virtual_allocd_blocks: if win7 { p(0x118, 0xa0) } else { p(0x110, 0x9c) },
            segment_list: if win7 { p(0x128, 0xa8) } else { p(0x120, 0xa4) },
            free_lists: if win7 { p(0x158, 0xc4) } else { p(0x150, 0xc0) },
            front_end_heap: feh,
            front_end_heap_type: feht,
            seg_signature: p(0x10, 0x08),
            seg_list_entry: p(0x18, 0x10),
            seg_heap: p(0x28, 0x18),
            seg_base: p(0x30, 0x1c),
            seg_pages: p(0x38, 0x20),
            seg_first: p(0x40, 0x24),
            seg_last: p(0x48, 0x28),
            seg_uncommitted_pages: p(0x50, 0x2c),
            seg_uncommitted_ranges: p(0x54, 0x30),
            seg_ucr_list: p(0x60, 0x38),
            seg_header: p(0x70, 0x40),
            ucr_segment_entry: p(0x10, 0x08),
            ucr_address: p(0x20, 0x10),
            ucr_size: p(0x28, 0x14),
            ucr_block: p(0x40, 0x20),
            vae_commit: p(0x20, 0x10),
            vae_reserve: p(0x28, 0x14),
            vae_busy: p(0x30, 0x18),
            vae_size: p(0x40, 0x20),
            lfh_zones: if win7 { p(0x28, 0x18) } else { p(0x08, 0x04) },
            lfh_heap: if win7 { p(0x40, 0x24) } else { p(0x18, 0x0c) },
            zone_header: p(0x20, 0x10),
            subseg_size: if win7 { p(0x40, 0x20) } else { p(0x38, 0x28) },
            subseg_user_blocks: p(0x08, 0x04),
            subseg_depth: if win7 { p(0x10, 0x08) } else { p(0x20, 0x10) },
            subseg_block_size: if win7 { p(0x18, 0x10) } else { p(0x24, 0x14) },
            subseg_block_count: if win7 { p(0x1c, 0x14) } else { p(0x28, 0x18) },
            ub_signature: if win7 { p(0x18, 0x0c) } else { p(0x14, 0x0c) },
            ub_first_win7: p(0x20, 0x10),
            ub_encoded_offsets: p(0x18, 0x10),
            ub_bitmap_size: p(0x20, 0x14),
            ub_bitmap_buffer: p(0x28, 0x18),
            ub_bitmap_data: p(0x30, 0x1c),
        }
    }

    fn spill(&self) -> u64 {
        if self.x64 {
            8
        } else {
            0
        }
    }

    fn prefix(&self) -> u64 {
        2 * self.unit
    }
}

fn round_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to) * to
}

/// A deterministic 64-bit mix (SplitMix64's finalizer), for keys.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Where the LFH's own structures are while a heap is being built.
struct Lfh {
    feh: u64,
    key: u32,
    zone: Option<Zone>,
}

struct Zone {
    next: u64,
    end: u64,
}

/// Builds one heap.
struct HeapWriter<'a> {
    b: &'a mut ProcessBuilder,
    l: L,
    f: Family,
    bits: u32,
    heap: u64,
    key: [u8; 8],
    ust: bool,
    traces: Vec<u64>,
    lfh: Option<Lfh>,
    interceptor: u16,
    blocks: Vec<ExpectedBlock>,
    /// Large blocks made: (entry, reserve).
    large: Vec<(u64, u64)>,
}

impl ProcessBuilder {
    /// `RtlpHeapStackTraceLog` records `{Next, Hash, Depth, Frames}` of a `bits`-bit world for
    /// `stacks`, in a private region of their own; their addresses in order. Like the process-wide
    /// stack trace database, a stack recorded earlier in the same world keeps its record.
    pub(crate) fn stack_records(&mut self, bits: u32, stacks: &[Vec<u64>]) -> Vec<u64> {
        let ptr = u64::from(bits / 8);
        let record_size = |s: &Vec<u64>| ptr + 8 + ptr * s.len() as u64;
        let mut fresh: Vec<&Vec<u64>> = Vec::new();
        for s in stacks {
            if !self.stack_records.contains_key(&(bits, s.clone())) && !fresh.contains(&s) {
                fresh.push(s);
            }
        }
        let size: u64 = fresh.iter().map(|s| record_size(s)).sum();
        let mut at = 0;
        if size > 0 {
            let region = round_up(size, 0x1000);
            let base = self.add_private_usage(round_up(region, 0x1_0000), region, Usage::Unknown);
            self.dump.memory.capture(base, region);
            at = base;
        }
        let mut out = Vec::new();
        for s in stacks {
            if let Some(&r) = self.stack_records.get(&(bits, s.clone())) {
                out.push(r);
                continue;
            }
            let hash = s.iter().fold(0u32, |a, f| a.wrapping_add(*f as u32));
            let m = &mut self.dump.memory;
            m.write_ptr(bits, at, 0);
            let hd = at + ptr;
            m.write_u32(hd, hash);
            m.write_u32(hd + 4, s.len() as u32);
            for (i, frame) in s.iter().enumerate() {
                m.write_ptr(bits, hd + 8 + ptr * i as u64, *frame);
            }
            self.stack_records.insert((bits, s.clone()), at);
            out.push(at);
            at += record_size(s);
        }
        out
    }

    /// Build an NT heap from `spec` in the world of `spec.bits`, append it to that world's
    /// ProcessHeaps, and return its address. The facts record every block.
    pub fn add_nt_heap(&mut self, spec: &NtHeapSpec) -> u64 {
        let bits = spec.bits;
        let f = Family::of(self.windows());
        let l = L::new(f, bits);
        // Reserve every segment first: the heap's address is its first segment's.
        let mut bases = Vec::new();
        for s in &spec.segments {
            bases.push(self.alloc_private(s.reserve));
        }
        let heap = bases[0];
        let key = mix(heap ^ 0x4845_4150).to_le_bytes();
        let mut w = HeapWriter {
            b: self,
            l,
            f,
            bits,
            heap,
            key,
            ust: spec.ust,
            traces: Vec::new(),
            lfh: None,
            interceptor: if f == Family::Win7 { 2 } else { 1 },
            blocks: Vec::new(),
            large: Vec::new(),
        };
        if spec.ust {
            w.write_stacks(&spec.stacks);
        }
        // Commit and capture every run, write the _HEAP fields, then the segments.
        for (s, &base) in spec.segments.iter().zip(&bases) {
            w.regions(s, base);
        }
        w.heap_header(spec);
        let mut seg_links = Vec::new();
        for (s, &base) in spec.segments.iter().zip(&bases) {
            seg_links.push(base + w.l.seg_list_entry);
            w.segment(s, base);
        }
        let head = heap + w.l.segment_list;
        w.b.write_list(bits, head, &seg_links);
        let mut large_links = Vec::new();
        if spec.lfh {
            let feh_size = if l.x64 { 0x2000 } else { 0x1000 };
            let (entry, user) = w.large_block(feh_size, None, true);
            large_links.push(entry);
            let key = if w.f >= Family::Win81 {
                mix(heap ^ 0x4c46_4800) as u32
            } else {
                0
            };
            w.lfh = Some(Lfh {
                feh: user,
                key,
                zone: None,
            });
            let m = &mut w.b.dump.memory;
            m.write_ptr(bits, heap + l.front_end_heap, user);
            m.write(heap + l.front_end_heap_type, &[2]);
            m.write_ptr(bits, user + l.lfh_heap, heap);
            let zones = user + l.lfh_zones;
            w.b.write_list(bits, zones, &[]);
        }
        for (size, trace) in &spec.large {
            let (entry, _) = w.large_block(*size, *trace, false);
            large_links.push(entry);
        }
        w.b.write_list(bits, heap + l.virtual_allocd_blocks, &large_links);
        // Blocks of the segments (user blocks need the LFH, which lives in a large block).
        for (i, (s, &base)) in spec.segments.iter().zip(&bases).enumerate() {
            w.segment_blocks(s, base, i as u8);
        }
        // `_HEAP.FreeLists`: every free back-end block, smallest first, through the LIST_ENTRY
        // after its header (`_HEAP_FREE_ENTRY.FreeList`).
        let mut free: Vec<(u64, u64)> = w
            .blocks
            .iter()
            .filter(|b| !b.busy && b.front_end == "backend")
            .map(|b| (b.block_size, b.entry + l.unit))
            .collect();
        free.sort_unstable();
        let links: Vec<u64> = free.into_iter().map(|f| f.1).collect();
        w.b.write_list(bits, heap + l.free_lists, &links);
        let structures = vec![
            Structure {
                kind: StructureKind::FreeLists,
                address: heap + l.free_lists,
                covers: Vec::new(),
            },
            Structure {
                kind: StructureKind::LargeList,
                address: heap + l.virtual_allocd_blocks,
                covers: w
                    .blocks
                    .iter()
                    .filter(|b| b.front_end == "large")
                    .map(|b| b.entry)
                    .collect(),
            },
        ];
        let facts = HeapFacts {
            address: heap,
            bits,
            segment_heap: false,
            segments: spec
                .segments
                .iter()
                .zip(&bases)
                .map(|(s, b)| (*b, b + s.reserve))
                .collect(),
            large_blocks: std::mem::take(&mut w.large),
            blocks: std::mem::take(&mut w.blocks),
            lfh_key: w
                .lfh
                .as_ref()
                .filter(|_| w.f >= Family::Win81)
                .map(|l| l.key),
            stacks: w
                .traces
                .iter()
                .copied()
                .zip(spec.stacks.iter().cloned())
                .collect(),
            structures,
        };
        self.register_heap(bits, facts);
        heap
    }
}

impl HeapWriter<'_> {
    /// Records of `stacks`, in order (see [`ProcessBuilder::stack_records`]).
    fn write_stacks(&mut self, stacks: &[Vec<u64>]) {
        self.traces = self.b.stack_records(self.bits, stacks);
    }

    fn trace(&self, t: Option<usize>) -> u64 {
        t.and_then(|i| self.traces.get(i).copied()).unwrap_or(0)
    }

    fn regions(&mut self, s: &SegmentSpec, base: u64) {
        let mut at = base;
        for r in &s.runs {
            if r.gap_before > 0 {
                self.b
                    .heap_region(at, r.gap_before, base, MEM_RESERVE, self.bits);
                at += r.gap_before;
            }
            self.b
                .heap_region(at, r.commit, base, MEM_COMMIT, self.bits);
            self.b.dump.memory.capture(at, r.commit);
            at += r.commit;
        }
        if base + s.reserve > at {
            self.b
                .heap_region(at, base + s.reserve - at, base, MEM_RESERVE, self.bits);
        }
    }

    fn heap_header(&mut self, spec: &NtHeapSpec) {
        let (l, heap) = (&self.l, self.heap);
        let m = &mut self.b.dump.memory;
        m.write_u32(heap + l.flags, if spec.ust { 0x0800_0002 } else { 0x2 });
        m.write_u32(heap + l.encode_flag_mask, 0x0010_0000);
        m.write(heap + l.encoding, &self.key);
        m.write_u32(heap + l.signature, 0xeeff_eeff);
        if spec.ust {
            m.write_u32(heap + l.interceptor, u32::from(self.interceptor));
        }
    }

    /// The `_HEAP_SEGMENT` fields of a segment (blocks come later).
    fn segment(&mut self, s: &SegmentSpec, base: u64) {
        let (l, bits, heap) = (&self.l, self.bits, self.heap);
        let first = self.first_entry(base);
        let last = base + s.reserve;
        let committed: u64 = s.runs.iter().map(|r| r.commit).sum();
        let ucr_count = s.runs.iter().filter(|r| r.gap_before > 0).count() as u32
            + u32::from(committed + s.runs.iter().map(|r| r.gap_before).sum::<u64>() < s.reserve);
        let m = &mut self.b.dump.memory;
        m.write_u32(base + l.seg_signature, 0xffee_ffee);
        m.write_ptr(bits, base + l.seg_heap, heap);
        m.write_ptr(bits, base + l.seg_base, base);
        m.write_u32(base + l.seg_pages, (s.reserve / 0x1000) as u32);
        m.write_ptr(bits, base + l.seg_first, first);
        m.write_ptr(bits, base + l.seg_last, last);
        m.write_u32(
            base + l.seg_uncommitted_pages,
            ((s.reserve - committed) / 0x1000) as u32,
        );
        m.write_u32(base + l.seg_uncommitted_ranges, ucr_count);
    }

    fn first_entry(&self, base: u64) -> u64 {
        if base == self.heap {
            base + if self.l.x64 { 0x600 } else { 0x588 }
        } else {
            base + self.l.seg_header
        }
    }

    /// The blocks of every run of a segment, each run ending in the block that holds the
    /// descriptor of the uncommitted range after it; the descriptors form UCRSegmentList.
    fn segment_blocks(&mut self, s: &SegmentSpec, base: u64, index: u8) {
        let mut at = base;
        let mut descriptors = Vec::new();
        for (i, r) in s.runs.iter().enumerate() {
            at += r.gap_before;
            let run_start = if i == 0 { self.first_entry(base) } else { at };
            let run_end = at + r.commit;
            let next_gap_end = s
                .runs
                .get(i + 1)
                .map_or(base + s.reserve, |n| run_end + n.gap_before);
            let mut p = run_start;
            // The first block's PreviousSize is the segment header block's size (as the real
            // heaps have it); a run after an uncommitted range starts from 0.
            let mut prev = if i == 0 {
                ((run_start - base) / self.l.unit) as u16
            } else {
                0u16
            };
            for spec in &r.blocks {
                let (size, units) = self.block(p, spec, prev, index);
                prev = units;
                p += size;
            }
            // Filler: free blocks up to the descriptor block, none larger than a header's Size
            // can say (0xFE00 units, as the heap splits them).
            let marker = run_end - self.l.ucr_block;
            assert!(p <= marker, "run at {run_start:#x} overflows its commit");
            while marker > p {
                let free = (marker - p).min(0xfe00 * self.l.unit);
                prev = self.free(p, free, prev, index);
                p += free;
            }
            // The descriptor block: busy, UnusedBytes 3 (the uncommitted-range marker).
            let units = (self.l.ucr_block / self.l.unit) as u16;
            self.header(marker, units, 0x01, prev, index, 3);
            let d = marker + self.l.unit;
            self.expected(ExpectedBlock {
                entry: marker,
                address: d,
                size: self.l.ucr_block - 3,
                block_size: self.l.ucr_block,
                busy: true,
                front_end: "backend",
                internal: true,
                trace: 0,
            });
            let m = &mut self.b.dump.memory;
            m.write_ptr(self.bits, d + self.l.ucr_address, run_end);
            m.write_ptr(self.bits, d + self.l.ucr_size, next_gap_end - run_end);
            descriptors.push(d + self.l.ucr_segment_entry);
            at = run_end;
        }
        self.b
            .write_list(self.bits, base + self.l.seg_ucr_list, &descriptors);
    }

    /// Write one block spec at `p`; returns (bytes, units).
    fn block(&mut self, p: u64, spec: &BlockSpec, prev: u16, seg: u8) -> (u64, u16) {
        match spec {
            BlockSpec::Free { size } => {
                let u = self.free(p, *size, prev, seg);
                (*size, u)
            }
            BlockSpec::Busy { size, trace } => {
                let t = self.trace(*trace);
                let bsize = self.busy(p, *size, t, prev, seg, 0x01, false, "backend");
                (bsize, (bsize / self.l.unit) as u16)
            }
            BlockSpec::Shrunk { size, block } => {
                self.shrunk(p, *size, *block, prev, seg);
                (*block, (*block / self.l.unit) as u16)
            }
            BlockSpec::UserBlock(ub) => self.user_block(p, ub, prev, seg),
        }
    }

    /// A free block; returns its units.
    fn free(&mut self, p: u64, size: u64, prev: u16, seg: u8) -> u16 {
        let units = (size / self.l.unit) as u16;
        self.header(p, units, 0x00, prev, seg, 0);
        self.expected(ExpectedBlock {
            entry: p,
            address: p + self.l.unit,
            size: size - self.l.unit,
            block_size: size,
            busy: false,
            front_end: "backend",
            internal: false,
            trace: 0,
        });
        units
    }

    /// The requested size that fills the block a request of `size` bytes takes, so that its unused
    /// count stays small (heap metadata is allocated that way).
    fn snug(&self, size: u64) -> u64 {
        let extra = if self.ust { self.l.prefix() } else { 0 };
        self.busy_size(size) + self.l.spill() - self.l.unit - extra
    }

    /// The block size a request of `size` bytes takes.
    fn busy_size(&self, size: u64) -> u64 {
        let extra = if self.ust { self.l.prefix() } else { 0 };
        round_up(size + self.l.unit + extra - self.l.spill(), self.l.unit).max(2 * self.l.unit)
    }

    /// A busy back-end block for a request of `size` bytes; returns its block size.
    #[allow(clippy::too_many_arguments)]
    fn busy(
        &mut self,
        p: u64,
        size: u64,
        trace: u64,
        prev: u16,
        seg: u8,
        flags: u8,
        internal: bool,
        front_end: &'static str,
    ) -> u64 {
        let bsize = self.busy_size(size);
        let unused = bsize - size;
        let data = p + self.l.unit;
        let (user, unused_byte) = if self.ust {
            self.prefix(data, trace, unused);
            (data + self.l.prefix(), 0x42)
        } else if unused >= 0x3f {
            self.overflow(p, bsize, unused);
            (data, 0x3f)
        } else {
            (data, unused as u8)
        };
        self.header(
            p,
            (bsize / self.l.unit) as u16,
            flags,
            prev,
            seg,
            unused_byte,
        );
        self.expected(ExpectedBlock {
            entry: p,
            address: user,
            size,
            block_size: bsize,
            busy: true,
            front_end,
            internal,
            trace: if self.ust { trace } else { 0 },
        });
        bsize
    }

    /// A busy block of `block` bytes holding `size` requested bytes (no +ust prefix).
    fn shrunk(&mut self, p: u64, size: u64, block: u64, prev: u16, seg: u8) {
        let unused = block - size;
        let byte = if unused >= 0x3f {
            self.overflow(p, block, unused);
            0x3f
        } else {
            unused as u8
        };
        self.header(p, (block / self.l.unit) as u16, 0x01, prev, seg, byte);
        self.expected(ExpectedBlock {
            entry: p,
            address: p + self.l.unit,
            size,
            block_size: block,
            busy: true,
            front_end: "backend",
            internal: false,
            trace: 0,
        });
    }

    /// The +ust prefix after a header: trace pointer, heap pointer, (x64) padding, pseudo header.
    fn prefix(&mut self, data: u64, trace: u64, unused: u64) {
        let (bits, heap, il) = (self.bits, self.heap, self.interceptor);
        let m = &mut self.b.dump.memory;
        m.write_ptr(bits, data, trace);
        m.write_ptr(bits, data + u64::from(bits / 8), heap);
        let pseudo = data + self.l.prefix() - 8;
        let il = il.to_le_bytes();
        let un = (unused as u16).to_le_bytes();
        m.write(pseudo, &[il[0], il[1], 0, 0, un[0], un[1], 2, 5]);
    }

    /// An unused count too large for `UnusedBytes`: stored in the last pointer-sized word of the
    /// usable area.
    fn overflow(&mut self, p: u64, size: u64, unused: u64) {
        let at = if self.l.x64 { p + size } else { p + size - 4 };
        self.b.dump.memory.write_ptr(self.bits, at, unused);
    }

    /// An encoded header at `p`.
    fn header(&mut self, p: u64, units: u16, flags: u8, prev: u16, seg: u8, unused: u8) {
        let [lo, hi] = units.to_le_bytes();
        let [plo, phi] = prev.to_le_bytes();
        let mut h = [lo, hi, flags, lo ^ hi ^ flags, plo, phi, seg, unused];
        for (x, k) in h.iter_mut().zip(self.key) {
            *x ^= k;
        }
        let at = if self.l.x64 { p + 8 } else { p };
        self.b.dump.memory.write(at, &h);
    }

    fn expected(&mut self, e: ExpectedBlock) {
        self.blocks.push(e);
    }

    /// A VirtualAlloc'd block for `size` bytes; returns (entry, user address).
    fn large_block(&mut self, size: u64, trace: Option<usize>, internal: bool) -> (u64, u64) {
        let l = &self.l;
        let prefix = if self.ust { l.prefix() } else { 0 };
        let commit = round_up(l.vae_size + prefix + size, 0x1000);
        let reserve = round_up(commit, 0x1_0000);
        let entry = self.b.alloc_private(reserve);
        self.large.push((entry, reserve));
        self.b
            .heap_region(entry, commit, entry, MEM_COMMIT, self.bits);
        if reserve > commit {
            self.b.heap_region(
                entry + commit,
                reserve - commit,
                entry,
                MEM_RESERVE,
                self.bits,
            );
        }
        self.b.dump.memory.capture(entry, commit);
        let (bits, vae_commit, vae_reserve, vae_busy, vae_size) = (
            self.bits,
            l.vae_commit,
            l.vae_reserve,
            l.vae_busy,
            l.vae_size,
        );
        let m = &mut self.b.dump.memory;
        m.write_ptr(bits, entry + vae_commit, commit);
        m.write_ptr(bits, entry + vae_reserve, reserve);
        let data = entry + vae_size;
        let t = self.trace(trace);
        let user = if self.ust {
            // Reference §11: requested = commit − unused + prefix, the unused count in the
            // pseudo header.
            self.prefix(data, t, commit + prefix - size);
            data + prefix
        } else {
            data
        };
        // The BusyBlock as the real code leaves it (reference §11, §11.1; real Windows 7 and 10
        // 19041 heaps): Size = commit − requested, Flags BUSY | EXTRA_PRESENT, UnusedBytes 0x04
        // even when the +ust prefix is there (no 0x40 bit).
        self.header(entry + vae_busy, (commit - size) as u16, 0x03, 0, 0, 0x04);
        self.expected(ExpectedBlock {
            entry,
            address: user,
            size,
            block_size: commit,
            busy: true,
            front_end: "large",
            internal,
            trace: if self.ust { t } else { 0 },
        });
        (entry, user)
    }

    /// An LFH user block: a busy internal container whose data is a `_HEAP_USERDATA_HEADER` and
    /// the chunks; its subsegment lives in a zone block placed just before it when needed.
    fn user_block(&mut self, p: u64, ub: &UserBlockSpec, prev: u16, seg: u8) -> (u64, u16) {
        let mut p = p;
        let mut prev = prev;
        let mut used = 0u64;
        let needs_zone = self
            .lfh
            .as_ref()
            .expect("user blocks need NtHeapSpec::lfh")
            .zone
            .as_ref()
            .is_none_or(|z| z.next + self.l.subseg_size > z.end);
        if needs_zone {
            let zone_size = self.l.zone_header + 8 * self.l.subseg_size;
            let bsize = self.busy(p, self.snug(zone_size), 0, prev, seg, 0x09, true, "backend");
            let zone = p + self.l.unit + if self.ust { self.l.prefix() } else { 0 };
            let lfh = self.lfh.as_mut().expect("lfh");
            let feh = lfh.feh;
            lfh.zone = Some(Zone {
                next: zone + self.l.zone_header,
                end: zone + zone_size,
            });
            // Link the zone into _LFH_HEAP.SubSegmentZones (append).
            let head = feh + self.l.lfh_zones;
            let bits = self.bits;
            let m = &mut self.b.dump.memory;
            let last = if bits == 64 {
                m.read_u64(head + 8)
            } else {
                m.read_u64(head + 4) & 0xffff_ffff
            };
            m.write_ptr(bits, zone, head);
            m.write_ptr(bits, zone + u64::from(bits / 8), last);
            m.write_ptr(bits, last, zone);
            m.write_ptr(bits, head + u64::from(bits / 8), zone);
            m.write_ptr(
                bits,
                zone + 2 * u64::from(bits / 8),
                zone + self.l.zone_header,
            );
            prev = (bsize / self.l.unit) as u16;
            p += bsize;
            used += bsize;
        }
        let (subseg, feh, key) = {
            let lfh = self.lfh.as_mut().expect("lfh");
            let z = lfh.zone.as_mut().expect("zone");
            let s = z.next;
            z.next += self.l.subseg_size;
            (s, lfh.feh, lfh.key)
        };
        let l = &self.l;
        let count = ub.chunks.len() as u64;
        let fao = if self.f == Family::Win7 {
            l.ub_first_win7
        } else {
            let bitmap_bytes = round_up(count.div_ceil(8), if l.x64 { 8 } else { 4 });
            round_up(l.ub_bitmap_data + bitmap_bytes, l.unit)
        };
        let header_off = l.unit + if self.ust { l.prefix() } else { 0 };
        let need = fao + count * ub.stride;
        let container = self.busy(p, self.snug(need), 0, prev, seg, 0x09, true, "backend");
        let uba = p + header_off;
        let (bits, heap) = (self.bits, self.heap);
        let l = &self.l;
        let m = &mut self.b.dump.memory;
        m.write_ptr(bits, uba, subseg);
        m.write_u32(uba + l.ub_signature, 0xf0e0_d0c0);
        m.write_ptr(bits, subseg + l.subseg_user_blocks, uba);
        m.write_u16(subseg + l.subseg_block_size, (ub.stride / l.unit) as u16);
        m.write_u16(subseg + l.subseg_block_count, count as u16);
        let free = ub.chunks.iter().filter(|c| c.is_none()).count() as u16;
        m.write_u16(subseg + l.subseg_depth, free);
        if self.f != Family::Win7 {
            let plain = (fao as u32) | ((ub.stride as u32) << 16);
            let stored = if self.f == Family::Win8 {
                plain
            } else {
                plain ^ (uba as u32) ^ (feh as u32) ^ key
            };
            m.write_u32(uba + l.ub_encoded_offsets, stored);
            m.write_ptr(bits, uba + l.ub_bitmap_size, count);
            m.write_ptr(bits, uba + l.ub_bitmap_buffer, uba + l.ub_bitmap_data);
            let mut bitmap = vec![0u8; count.div_ceil(8) as usize];
            for (i, c) in ub.chunks.iter().enumerate() {
                if c.is_some() {
                    bitmap[i / 8] |= 1 << (i % 8);
                }
            }
            m.write(uba + l.ub_bitmap_data, &bitmap);
        }
        for (i, c) in ub.chunks.iter().enumerate() {
            let chunk = uba + fao + i as u64 * ub.stride;
            self.chunk(chunk, i as u64, uba, subseg, heap, ub.stride, *c);
        }
        used += container;
        (used, (container / self.l.unit) as u16)
    }

    /// One LFH chunk.
    #[allow(clippy::too_many_arguments)]
    fn chunk(
        &mut self,
        c: u64,
        index: u64,
        uba: u64,
        subseg: u64,
        heap: u64,
        stride: u64,
        spec: Option<(u64, Option<usize>)>,
    ) {
        let l_unit = self.l.unit;
        let key = self.lfh.as_ref().map_or(0, |x| x.key);
        let data = c + l_unit;
        let (flag, expected) = match spec {
            None => (
                0x80u8,
                ExpectedBlock {
                    entry: c,
                    address: data,
                    size: stride - l_unit,
                    block_size: stride,
                    busy: false,
                    front_end: "lfh",
                    internal: false,
                    trace: 0,
                },
            ),
            Some((size, trace)) => {
                let unused = stride - size;
                let t = self.trace(trace);
                let (user, byte) = if self.ust {
                    self.prefix(data, t, unused);
                    (data + self.l.prefix(), 0xc2)
                } else if unused >= 0x3f {
                    self.overflow(c, stride, unused);
                    (data, 0xbf)
                } else {
                    (data, 0x80 | unused as u8)
                };
                (
                    byte,
                    ExpectedBlock {
                        entry: c,
                        address: user,
                        size,
                        block_size: stride,
                        busy: true,
                        front_end: "lfh",
                        internal: false,
                        trace: if self.ust { t } else { 0 },
                    },
                )
            }
        };
        // Bytes 0–3: the encoded subsegment code (reference §3.2/§3.3); then the plain bytes.
        let code: u32 = if self.f == Family::Win7 {
            (subseg as u32) ^ key ^ (heap as u32) ^ ((c >> 3) as u32)
        } else if self.l.x64 {
            (heap as u32) ^ ((c >> 4) as u32) ^ key ^ (((c - uba) as u32) << 12)
        } else {
            (heap as u32) ^ ((c >> 3) as u32) ^ key ^ (((c - uba) as u32) << 13)
        };
        let mut h = [0u8; 8];
        h[..4].copy_from_slice(&code.to_le_bytes());
        if self.f != Family::Win7 {
            h[5..7].copy_from_slice(&(index as u16).to_le_bytes());
        }
        h[7] = flag;
        let at = if self.l.x64 { c + 8 } else { c };
        self.b.dump.memory.write(at, &h);
        self.expected(expected);
    }
}
