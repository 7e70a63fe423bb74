//! Segment heaps (Windows 10 1709 – 11 24H2, x64 and x86) with allocations in every component: a
//! VS subsegment, LFH subsegments, back-end ranges and large allocations.
//!
//! Layouts and encodings as the real ntdll builds them (`shared/docs/windows-heap-reference.md`
//! §6, §11.1–§11.3, observed on real 19041 heaps with `../shared/oracle`): page-segment signature
//! `seg ^ ctx ^ HeapKey ^ 0xA2E64EADA2E64EAD` (24H2: without the constant); range descriptors
//! (RangeFlags +0x18 / +0x0C, UnitSize +0x1F / +0x0F, UnusedBytes +0x04, CommittedPageCount +0x19
//! / top 3 bits of +0x0C; range types back end 0, LFH 0x8, VS 0xC, on 1709 LFH 0x4 and VS 0x8);
//! a VS subsegment whose `Size` counts the units after its 0x30 / 0x18-byte header; VS chunk
//! headers `Sizes ^ hdr ^ HeapKey` with an allocated chunk's page offset byte `^ (u8)hdr ^
//! (u8)HeapKey`; LFH `BlockOffsets ^ low32(LfhKey) ^ (low32(sub) >> 12)` with a 2-bit busy
//! bitmap (24H2: `^ low32(sub >> 12)`, u64 bitmap words from +0x40 and a remote-free list); large
//! allocations in an `_RTL_RB_TREE`; `RtlpHpHeapGlobals` `{HeapKey, LfhKey}` in ntdll's data
//! (1709: LfhKey first); and +ust extras right after the requested bytes rounded up to 16 (x64) /
//! 8 (x86).

use crate::memory::*;
use crate::nt_heap::ExpectedBlock;
use crate::process::{ProcessBuilder, Structure, StructureKind, Windows};

/// What a segment heap holds.
#[derive(Clone, Debug, Default)]
pub struct SegmentHeapSpec {
    /// VS chunks in one VS subsegment: `Some(requested)` busy, `None` free.
    pub vs: Vec<Option<u64>>,
    /// LFH subsegments: block size and blocks (`Some(requested)` busy).
    pub lfh: Vec<(u64, Vec<Option<u64>>)>,
    /// Back-end allocations (requested sizes): one page range each.
    pub backend: Vec<u64>,
    /// Large allocations (requested sizes): their own VirtualAlloc each.
    pub large: Vec<u64>,
    /// +ust call stacks (return addresses, innermost first). When not empty, the busy allocations
    /// record them in turn (VS, LFH, back end, large): each gets ExtraPresent and, right after its
    /// requested bytes rounded up to 16 (x64) / 8 (x86), an `_SEGMENT_HEAP_EXTRA`
    /// {AllocationTag 0, InterceptorIndex 1, ExtraSizeInUnits 1, Settable 0} followed by the
    /// pointer to the stack's record (reference §6.9). LFH blocks whose slack cannot hold it are
    /// not traced.
    pub stacks: Vec<Vec<u64>>,
    /// Store the large-allocation tree encoded (`RTL_RB_TREE.Encoded`): the root XORed with the
    /// tree's address, each child link with its node's address, Min as `Min ^ (tree | 1)`.
    pub encoded_large_tree: bool,
    /// 24H2 only: in each LFH subsegment, this many of the free blocks were freed by another
    /// thread: they keep their handed-out bit and sit on the subsegment's remote-free list.
    pub remote_freed: usize,
}

/// Writes the +ust extras of one heap's allocations.
struct Tracer {
    records: Vec<u64>,
    next: usize,
    p: u64,
}

impl Tracer {
    /// Bytes an extra takes: the header (two pointers) and one unit of interceptor data.
    fn len(&self) -> u64 {
        4 * self.p
    }

    /// The alignment of the requested size the extra follows (16 x64, 8 x86).
    fn align(&self) -> u64 {
        2 * self.p
    }

    /// Bytes an allocation of `req` bytes needs to hold its extra too (0 extra when untraced).
    fn need(&self, req: u64) -> u64 {
        if self.records.is_empty() {
            req
        } else {
            req.div_ceil(self.align()) * self.align() + self.len()
        }
    }

    /// Write the extra of the allocation at `user` with `req` bytes requested, if the heap is
    /// traced (capturing the pages it lies on); the record pointer or 0.
    fn write(&mut self, m: &mut ProcessMemory, bits: u32, user: u64, req: u64) -> u64 {
        if self.records.is_empty() {
            return 0;
        }
        let record = self.records[self.next % self.records.len()];
        self.next += 1;
        let at = user + req.div_ceil(self.align()) * self.align();
        let page = at & !(PAGE - 1);
        m.capture(page, (at + self.len()).div_ceil(PAGE) * PAGE - page);
        m.write(at, &vec![0u8; (2 * self.p) as usize]);
        m.write(at + 2, &[1, 1]);
        m.write_ptr(bits, at + 2 * self.p, record);
        record
    }
}

/// `0xA2E64EADA2E64EAD`, the page-segment signature constant (Windows 10 1709 – 11 23H2).
const SEGMENT_SIGNATURE_KEY: u64 = 0xa2e6_4ead_a2e6_4ead;
const PAGE: u64 = 0x1000;
/// 24H2 LFH subsegment: bitmap words, remote-free head and count.
const LFH_24H2_BITMAP: u64 = 0x40;
const LFH_24H2_REMOTE_HEAD: u64 = 0x10;
const LFH_24H2_REMOTE_COUNT: u64 = 0x12;

/// Offsets of one width: x64 from the 1809+ layouts, x86 from reference §6 (page segment
/// signature +0x08, 0x10-byte descriptors with RangeFlags +0x0C and UnitSize +0x0F, VS subsegment
/// Size +0x14 and first chunk +0x18 with 8-byte chunk headers in 8-byte units, LFH BlockCount
/// +0x12, BlockOffsets +0x18, bitmap +0x20, and large nodes with VirtualAddress +0x0C; the same
/// in every build from 1709). Where the heap keeps its contexts is [`crate::process::SegLayout`].
struct Shape {
    p: u64,
    mask: u64,
    sig: u64,
    desc: u64,
    flags: u64,
    unit_size: u64,
    first_unit: u64,
    vs_size: u64,
    vs_first: u64,
    vs_header: u64,
    vs_unit: u64,
    lfh_count: u64,
    lfh_offsets: u64,
    lfh_bitmap: u64,
    large_va: u64,
}

impl Shape {
    fn new(bits: u32) -> Self {
        if bits == 64 {
            Shape {
                p: 8,
                mask: u64::MAX,
                sig: 0x10,
                desc: 0x20,
                flags: 0x18,
                unit_size: 0x1f,
                first_unit: 2,
                vs_size: 0x20,
                vs_first: 0x30,
                vs_header: 0x10,
                vs_unit: 16,
                lfh_count: 0x22,
                lfh_offsets: 0x28,
                lfh_bitmap: 0x30,
                large_va: 0x18,
            }
        } else {
            Shape {
                p: 4,
                mask: u64::from(u32::MAX),
                sig: 0x08,
                desc: 0x10,
                flags: 0x0c,
                unit_size: 0x0f,
                first_unit: 1,
                vs_size: 0x14,
                vs_first: 0x18,
                vs_header: 0x08,
                vs_unit: 8,
                lfh_count: 0x12,
                lfh_offsets: 0x18,
                lfh_bitmap: 0x20,
                large_va: 0x0c,
            }
        }
    }

    /// Write a range's first descriptor and its continuation descriptors (allocated ranges:
    /// RangeFlags 1 and UnitOffset k; free ranges: only the last one's UnitOffset), each unit
    /// committed when `committed`.
    fn range(
        &self,
        m: &mut ProcessMemory,
        seg: u64,
        (first, units): (u64, u64),
        flags: u8,
        committed: bool,
    ) {
        let desc = |u: u64| seg + u * self.desc;
        let cp = |f: u8| -> (u64, u8) {
            // CommittedPageCount: x64 the byte after RangeFlags, x86 the top 3 bits of RangeFlags.
            if self.p == 8 {
                (self.flags + 1, u8::from(committed))
            } else {
                (self.flags, f | u8::from(committed) << 5)
            }
        };
        for k in 0..units {
            // Continuations of an allocated range say just "allocated" (RangeFlags 1), as on the
            // real 19041 heaps.
            let f = match k {
                0 => flags,
                _ if flags & 1 != 0 => 1,
                _ => 0,
            };
            m.write(desc(first + k) + self.flags, &[f]);
            let (at, v) = cp(f);
            m.write(desc(first + k) + at, &[v]);
            let size = match k {
                0 => units as u8,
                _ if flags & 1 != 0 || k == units - 1 => k as u8,
                _ => 0,
            };
            m.write(desc(first + k) + self.unit_size, &[size]);
        }
    }
}

/// A segment heap's keys (one `RtlpHpHeapGlobals` per world).
#[derive(Clone, Copy)]
struct Keys {
    heap: u64,
    lfh: u64,
}

/// Where a build's segment heap differs.
struct Build {
    /// Windows 11 24H2: signatures without the constant, 24H2 LFH salt and bitmap.
    v24h2: bool,
    /// RangeFlags of a VS and an LFH subsegment range.
    vs_flags: u8,
    lfh_flags: u8,
}

impl Build {
    fn of(w: Windows) -> Self {
        let v1709 = w == Windows::Win10v1709;
        Build {
            v24h2: w == Windows::Win11v24H2,
            vs_flags: if v1709 { 0x0b } else { 0x0f },
            lfh_flags: if v1709 { 0x07 } else { 0x0b },
        }
    }
}

impl ProcessBuilder {
    /// Add an empty segment heap of world `bits` (Windows 10 1809+ x64 layout: `_SEGMENT_HEAP.
    /// SegContexts` at +0x100, 0xC0 bytes each; x86: +0x100, 0x80 each; Windows 11 +0x140) with
    /// one 1 MiB page segment in context 0 that is one free range; returns its address.
    pub fn add_segment_heap(&mut self, bits: u32) -> u64 {
        self.add_rich_segment_heap(bits, &SegmentHeapSpec::default())
    }

    /// `RtlpHpHeapGlobals` of world `bits`: written once in ntdll's data (HeapKey then LfhKey;
    /// 1709: LfhKey then HeapKey).
    fn segment_keys(&mut self, bits: u32, o: &Shape) -> Keys {
        let globals = self.ntdll_data(bits) + 0x400;
        let heap = (0x5eed_0000_0000_0000
            ^ globals.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17))
            & o.mask;
        let lfh = (heap.rotate_left(29) ^ 0x1f2e_3d4c_5b6a_7988) & o.mask;
        let (first, second) = if self.windows() == Windows::Win10v1709 {
            (lfh, heap)
        } else {
            (heap, lfh)
        };
        let m = &mut self.dump.memory;
        m.write_ptr(bits, globals, first);
        m.write_ptr(bits, globals + o.p, second);
        Keys { heap, lfh }
    }

    /// A segment heap of world `bits` (its build's layout) holding `spec`'s allocations; returns
    /// its address.
    pub fn add_rich_segment_heap(&mut self, bits: u32, spec: &SegmentHeapSpec) -> u64 {
        let o = Shape::new(bits);
        let build = Build::of(self.windows());
        let records = self.stack_records(bits, &spec.stacks);
        let mut tracer = Tracer {
            records,
            next: 0,
            p: o.p,
        };
        // Units the ranges take: VS 4, LFH 2 each, back end as needed; the rest is one free range.
        let backend_units: Vec<u64> = spec
            .backend
            .iter()
            .map(|r| tracer.need(*r).div_ceil(PAGE))
            .collect();
        let used = if spec.vs.is_empty() { 0 } else { 4 }
            + 2 * spec.lfh.len() as u64
            + backend_units.iter().sum::<u64>();
        assert!(
            o.first_unit + used < 256,
            "segment heap allocations do not fit one page segment"
        );
        let (heap, seg) = self.segment_heap_memory(bits, (o.first_unit + used) * PAGE);
        let keys = self.segment_keys(bits, &o);
        let ctx = heap + self.seg_layout(bits).contexts;
        let m = &mut self.dump.memory;
        let constant = if build.v24h2 {
            0
        } else {
            SEGMENT_SIGNATURE_KEY & o.mask
        };
        m.write_ptr(bits, seg + o.sig, seg ^ ctx ^ keys.heap ^ constant);
        let mut blocks: Vec<ExpectedBlock> = Vec::new();
        let mut unit = o.first_unit;
        let mut range = |m: &mut ProcessMemory, units: u64, flags: u8, unused: u32| {
            o.range(m, seg, (unit, units), flags, true);
            m.write_u32(seg + unit * o.desc + 4, unused);
            unit += units;
            seg + (unit - units) * PAGE
        };
        let mut structures = Vec::new();
        let mut record = |kind, address, covers: &[ExpectedBlock]| {
            structures.push(Structure {
                kind,
                address,
                covers: covers.iter().map(|b| b.entry).collect(),
            })
        };
        let descriptor = |at: u64| seg + (at - seg) / PAGE * o.desc;
        if !spec.vs.is_empty() {
            let vs = range(m, 4, build.vs_flags, 0);
            let from = blocks.len();
            write_vs(
                m,
                &o,
                (vs, 4 * PAGE),
                keys.heap,
                &spec.vs,
                &mut tracer,
                &mut blocks,
            );
            record(StructureKind::VsSubsegment, vs, &blocks[from..]);
            record(
                StructureKind::RangeDescriptor,
                descriptor(vs),
                &blocks[from..],
            );
        }
        for (bsize, list) in &spec.lfh {
            let sub = range(m, 2, build.lfh_flags, 0);
            let lfh = Lfh {
                base: sub,
                bsize: *bsize,
                key: keys.lfh,
                v24h2: build.v24h2,
                remote_freed: spec.remote_freed,
            };
            let from = blocks.len();
            lfh.write(m, &o, list, &mut tracer, &mut blocks);
            record(StructureKind::LfhSubsegment, sub, &blocks[from..]);
            record(
                StructureKind::RangeDescriptor,
                descriptor(sub),
                &blocks[from..],
            );
        }
        // Back-end allocations: one range each, the unused count in the first descriptor.
        for (req, units) in spec.backend.iter().zip(&backend_units) {
            let unused = units * PAGE - req;
            let at = range(m, *units, 0x03, unused as u32);
            let trace = tracer.write(m, bits, at, *req);
            if trace != 0 {
                // ExtraPresent: bit 0 of the first descriptor's byte +8.
                m.write(seg + (at - seg) / PAGE * o.desc + 8, &[1]);
            }
            blocks.push(ExpectedBlock {
                entry: at,
                address: at,
                size: *req,
                block_size: units * PAGE,
                busy: true,
                front_end: "backend",
                internal: false,
                trace,
            });
            record(
                StructureKind::RangeDescriptor,
                descriptor(at),
                &blocks[blocks.len() - 1..],
            );
        }
        // The rest of the segment: one free range, not committed.
        o.range(m, seg, (unit, 256 - unit), 0x02, false);
        let large = self.large_allocations(bits, &o, heap, spec, &mut tracer);
        blocks.extend(large);
        let facts = self.facts_heaps_mut().last_mut().expect("just added");
        facts.large_blocks = blocks
            .iter()
            .filter(|b| b.front_end == "large")
            .map(|b| (b.entry, b.block_size.div_ceil(0x1_0000) * 0x1_0000))
            .collect();
        facts.blocks = blocks;
        facts.structures = structures;
        facts.stacks = tracer
            .records
            .into_iter()
            .zip(spec.stacks.clone())
            .collect();
        heap
    }

    /// The large allocations of `spec`: their own VirtualAlloc each (first page captured, and the
    /// extra's), nodes in the heap's own allocation chained through right links.
    fn large_allocations(
        &mut self,
        bits: u32,
        o: &Shape,
        heap: u64,
        spec: &SegmentHeapSpec,
        tracer: &mut Tracer,
    ) -> Vec<ExpectedBlock> {
        let tree = heap + self.seg_layout(bits).large;
        let mut nodes = Vec::new();
        let mut blocks = Vec::new();
        for (i, req) in spec.large.iter().enumerate() {
            let pages = tracer.need(*req).div_ceil(PAGE);
            let reserve = (pages * PAGE).div_ceil(0x1_0000) * 0x1_0000;
            let va = self.alloc_private(reserve);
            self.heap_region(va, pages * PAGE, va, MEM_COMMIT, bits);
            if reserve > pages * PAGE {
                self.heap_region(
                    va + pages * PAGE,
                    reserve - pages * PAGE,
                    va,
                    MEM_RESERVE,
                    bits,
                );
            }
            self.dump.memory.capture(va, PAGE);
            let node = heap + 0x2000 + i as u64 * 0x40;
            let unused = pages * PAGE - req;
            nodes.push(node);
            let m = &mut self.dump.memory;
            let trace = tracer.write(m, bits, va, *req);
            m.write_ptr(bits, node + o.large_va, va | unused);
            // AllocatedPages from bit 12; ExtraPresent is bit 0.
            m.write_ptr(
                bits,
                node + o.large_va + o.p,
                pages << 12 | u64::from(trace != 0),
            );
            blocks.push(ExpectedBlock {
                entry: va,
                address: va,
                size: *req,
                block_size: pages * PAGE,
                busy: true,
                front_end: "large",
                internal: false,
                trace,
            });
        }
        let m = &mut self.dump.memory;
        let enc = |holder: u64, link: u64| {
            if spec.encoded_large_tree && link != 0 {
                (link ^ holder) & o.mask
            } else {
                link
            }
        };
        for (i, &n) in nodes.iter().enumerate() {
            let right = nodes.get(i + 1).copied().unwrap_or(0);
            m.write_ptr(bits, n, 0);
            m.write_ptr(bits, n + o.p, enc(n, right));
        }
        let first = nodes.first().copied().unwrap_or(0);
        m.write_ptr(bits, tree, enc(tree, first));
        let min = if spec.encoded_large_tree {
            (first ^ (tree | 1)) & o.mask
        } else {
            first
        };
        m.write_ptr(bits, tree + o.p, min);
        blocks
    }
}

/// The chunks of the VS subsegment at `vs` (`len` bytes): `chunks` then one free chunk with the
/// rest.
fn write_vs(
    m: &mut ProcessMemory,
    o: &Shape,
    (vs, len): (u64, u64),
    heap_key: u64,
    chunks: &[Option<u64>],
    tracer: &mut Tracer,
    blocks: &mut Vec<ExpectedBlock>,
) {
    let bits = if o.p == 8 { 64 } else { 32 };
    // Size: the units after the subsegment header; the signature is `Size ^ 0x2BED`.
    let units = (len - o.vs_first) / o.vs_unit;
    m.write_u16(vs + o.vs_size, units as u16);
    m.write_u16(vs + o.vs_size + 2, (units as u16) ^ 0x2bed);
    let hsize = o.vs_header;
    let mut sized: Vec<(Option<u64>, u64)> = chunks
        .iter()
        .map(|c| {
            (
                *c,
                c.map_or(0x40, |req| {
                    (tracer.need(req) + hsize).div_ceil(o.vs_unit) * o.vs_unit
                }),
            )
        })
        .collect();
    let used: u64 = sized.iter().map(|c| c.1).sum();
    assert!(o.vs_first + used + 0x20 <= len, "VS chunks do not fit");
    sized.push((None, len - o.vs_first - used));
    let mut hdr = vs + o.vs_first;
    let mut prev = 0u64;
    for (c, size) in sized {
        let allocated = u64::from(c.is_some());
        let (u, pu) = (size / o.vs_unit, prev / o.vs_unit);
        let sizes = if bits == 64 {
            u << 16 | pu << 32 | allocated << 48
        } else {
            u << 1 | pu << 16 | allocated << 31
        };
        m.write_ptr(bits, hdr, (sizes ^ hdr ^ heap_key) & o.mask);
        let page_off = (hdr - vs) / PAGE;
        m.write(
            hdr + o.p,
            &[(page_off as u8) ^ (hdr as u8) ^ (heap_key as u8)],
        );
        let capacity = size - hsize;
        let trace = match c {
            Some(req) => tracer.write(m, bits, hdr + hsize, req),
            None => 0,
        };
        let extra = if trace != 0 { 0x4000 } else { 0 };
        let (flag, req) = match c {
            Some(req) if req < capacity => {
                m.write_u16(hdr + size - 2, (capacity - req) as u16 | extra);
                (1u8, req)
            }
            Some(req) => (0, req),
            None => (0, capacity),
        };
        m.write(hdr + o.p + 1, &[flag]);
        blocks.push(ExpectedBlock {
            entry: hdr,
            address: hdr + hsize,
            size: req,
            block_size: size,
            busy: c.is_some(),
            front_end: "vs",
            internal: false,
            trace,
        });
        prev = size;
        hdr += size;
    }
}

/// One LFH subsegment being written.
struct Lfh {
    base: u64,
    bsize: u64,
    key: u64,
    v24h2: bool,
    remote_freed: usize,
}

impl Lfh {
    /// Its header (count, encoded offsets, bitmap, 24H2 remote-free list) and blocks.
    fn write(
        &self,
        m: &mut ProcessMemory,
        o: &Shape,
        list: &[Option<u64>],
        tracer: &mut Tracer,
        blocks: &mut Vec<ExpectedBlock>,
    ) {
        let (sub, bsize) = (self.base, self.bsize);
        let bits = if o.p == 8 { 64 } else { 32 };
        // As on the real heaps, the blocks fill the subsegment: `list`'s blocks first, the rest
        // free. The bitmap's size depends on the count and the count on where the blocks start.
        let len = 2 * PAGE;
        let layout = |count: u64| {
            let (at, bytes) = if self.v24h2 {
                (LFH_24H2_BITMAP, count.div_ceil(32) * 8)
            } else {
                (o.lfh_bitmap, (count * 2).div_ceil(8))
            };
            (at, bytes, (at + bytes).div_ceil(16) * 16)
        };
        let mut count = len / bsize;
        while count * bsize + layout(count).2 > len {
            count -= 1;
        }
        let (bitmap_at, bitmap_len, first) = layout(count);
        assert!(list.len() as u64 <= count, "LFH subsegment too small");
        let list: Vec<Option<u64>> = list
            .iter()
            .copied()
            .chain(std::iter::repeat(None))
            .take(count as usize)
            .collect();
        let list = &list[..];
        m.write_u16(sub + o.lfh_count, count as u16);
        let plain = (bsize as u32) | ((first as u32) << 16);
        let salt = if self.v24h2 {
            (sub >> 12) as u32
        } else {
            (sub as u32) >> 12
        };
        m.write_u32(sub + o.lfh_offsets, plain ^ (self.key as u32) ^ salt);
        let mut bitmap = vec![0u8; bitmap_len as usize];
        let mut set = |i: usize, unused_info: bool| {
            if self.v24h2 {
                let w = i / 32 * 8;
                bitmap[w + i % 32 / 8] |= 1 << (i % 8);
                if unused_info {
                    bitmap[w + 4 + i % 32 / 8] |= 1 << (i % 8);
                }
            } else {
                bitmap[i / 4] |= (1 | u8::from(unused_info) << 1) << ((i % 4) * 2);
            }
        };
        let mut remote = Vec::new();
        for (i, b) in list.iter().enumerate() {
            let at = sub + first + i as u64 * bsize;
            let mut trace = 0;
            let (busy, req) = match b {
                Some(req) => {
                    if tracer.need(*req) + 2 <= bsize {
                        trace = tracer.write(m, bits, at, *req);
                    }
                    set(i, *req < bsize);
                    if *req < bsize {
                        let extra = if trace != 0 { 0x4000 } else { 0 };
                        m.write_u16(at + bsize - 2, (bsize - req) as u16 | extra);
                    }
                    (true, *req)
                }
                None => {
                    if self.v24h2 && remote.len() < self.remote_freed {
                        // Freed by another thread: still handed out in the bitmap.
                        set(i, false);
                        remote.push(i);
                    }
                    (false, bsize)
                }
            };
            blocks.push(ExpectedBlock {
                entry: at,
                address: at,
                size: req,
                block_size: bsize,
                busy,
                front_end: "lfh",
                internal: false,
                trace,
            });
        }
        m.write(sub + bitmap_at, &bitmap);
        if !remote.is_empty() {
            // The list: head (index + 1), count, and each block's first u16 the next link.
            m.write_u16(sub + LFH_24H2_REMOTE_HEAD, remote[0] as u16 + 1);
            m.write_u16(sub + LFH_24H2_REMOTE_COUNT, remote.len() as u16);
            for (k, &i) in remote.iter().enumerate() {
                let next = remote.get(k + 1).map_or(0, |&j| j as u16 + 1);
                m.write_u16(sub + first + i as u64 * bsize, next);
            }
        }
    }
}
