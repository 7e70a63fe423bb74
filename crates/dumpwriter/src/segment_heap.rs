//! Segment heaps (Windows 10 1809+ x64 layout) with allocations in every component: a VS
//! subsegment, LFH subsegments, a back-end range and large allocations.
//!
//! Layouts and encodings: `shared/docs/windows-heap-reference.md` §6 and §11.1 — page-segment
//! signature `seg ^ ctx ^ HeapKey ^ 0xA2E64EADA2E64EAD` (24H2: without the constant), range descriptors (RangeFlags +0x18,
//! UnitSize +0x1F, UnusedBytes +0x04), VS chunk headers `Sizes ^ hdr ^ HeapKey` with the page offset
//! byte `^ (u8)hdr ^ (u8)HeapKey`, LFH `BlockOffsets ^ low32(LfhKey) ^ (low32(sub) >> 12)` (24H2:
//! `^ low32(sub >> 12)`) with a
//! 2-bit busy bitmap, large allocations in an unencoded `_RTL_RB_TREE`, and `RtlpHpHeapGlobals`
//! `{HeapKey, LfhKey}` in ntdll's data.

use crate::memory::*;
use crate::nt_heap::ExpectedBlock;
use crate::process::ProcessBuilder;

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
    /// data (pointer-aligned), an `_SEGMENT_HEAP_EXTRA` {AllocationTag 0, InterceptorIndex 1,
    /// ExtraSizeInUnits 1, Settable 0} followed by one unit (0x10 / 8 bytes) holding the pointer to
    /// the stack's record (reference §6.9, `_SEGMENT_HEAP_EXTRA` type dump). LFH blocks whose slack
    /// cannot hold it are not traced.
    pub stacks: Vec<Vec<u64>>,
    /// Store the large-allocation tree encoded (`RTL_RB_TREE.Encoded`): the root XORed with the
    /// tree's address, each child link with its node's address, Min as `Min ^ (tree | 1)`.
    pub encoded_large_tree: bool,
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

    /// Bytes an allocation of `req` bytes needs to hold its extra too (0 extra when untraced).
    fn need(&self, req: u64) -> u64 {
        if self.records.is_empty() {
            req
        } else {
            req.div_ceil(self.p) * self.p + self.len()
        }
    }

    /// Write the extra of the allocation at `user` with `req` bytes requested, if the heap is
    /// traced; the record pointer or 0.
    fn write(&mut self, m: &mut ProcessMemory, bits: u32, user: u64, req: u64) -> u64 {
        if self.records.is_empty() {
            return 0;
        }
        let record = self.records[self.next % self.records.len()];
        self.next += 1;
        let at = user + req.div_ceil(self.p) * self.p;
        m.write(at, &vec![0u8; (2 * self.p) as usize]);
        m.write(at + 2, &[1, 1]);
        m.write_ptr(bits, at + 2 * self.p, record);
        record
    }
}

/// `0xA2E64EADA2E64EAD`, the page-segment signature constant (Windows 10 1709 – 11 23H2).
const SEGMENT_SIGNATURE_KEY: u64 = 0xa2e6_4ead_a2e6_4ead;
const PAGE: u64 = 0x1000;

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
}

impl ProcessBuilder {
    /// A segment heap of world `bits` (1809+ layout; x86 offsets from reference §6) holding
    /// `spec`'s allocations; returns its address.
    pub fn add_rich_segment_heap(&mut self, bits: u32, spec: &SegmentHeapSpec) -> u64 {
        let o = Shape::new(bits);
        let records = self.stack_records(bits, &spec.stacks);
        let mut tracer = Tracer {
            records,
            next: 0,
            p: o.p,
        };
        let heap = self.add_segment_heap(bits);
        let seg = self.facts_heaps().last().expect("just added").segments[0].0;
        // The keys are the process's (one RtlpHpHeapGlobals per world), not the heap's.
        let globals = self.ntdll_data(bits) + 0x400;
        let heap_key = (0x5eed_0000_0000_0000
            ^ globals.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17))
            & o.mask;
        let lfh_key = (heap_key.rotate_left(29) ^ 0x1f2e_3d4c_5b6a_7988) & o.mask;
        let ctx = heap + self.seg_layout(bits).contexts;
        let v24h2 = self.windows() == crate::process::Windows::Win11v24H2;
        let m = &mut self.dump.memory;
        m.write_ptr(bits, globals, heap_key);
        m.write_ptr(bits, globals + o.p, lfh_key);
        m.capture(seg, 0x2_0000);
        let constant = if v24h2 {
            0
        } else {
            SEGMENT_SIGNATURE_KEY & o.mask
        };
        m.write_ptr(bits, seg + o.sig, seg ^ ctx ^ heap_key ^ constant);
        let mut blocks: Vec<ExpectedBlock> = Vec::new();
        // Units are pages (UnitShift 12); the header (0x2000 bytes x64, 0x1000 x86) comes first.
        let mut unit = o.first_unit;
        let desc = |u: u64| seg + u * o.desc;
        let mut range = |m: &mut ProcessMemory, units: u64, flags: u8, unused: u32| {
            let first = unit;
            m.write(desc(first) + o.flags, &[flags]);
            m.write(desc(first) + o.unit_size, &[units as u8]);
            m.write_u32(desc(first) + 4, unused);
            for k in 1..units {
                m.write(desc(first + k) + o.flags, &[flags & !2]);
                m.write(desc(first + k) + o.unit_size, &[k as u8]);
            }
            unit += units;
            seg + first * PAGE
        };
        // VS subsegment: 4 pages.
        let vs = range(m, 4, 0x0f, 0);
        let vs_units = 4 * PAGE / o.vs_unit;
        m.write_u16(vs + o.vs_size, vs_units as u16);
        m.write_u16(vs + o.vs_size + 2, (vs_units as u16) ^ 0x2bed);
        let hsize = o.vs_header;
        let mut chunks: Vec<(Option<u64>, u64)> = spec
            .vs
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
        let used: u64 = chunks.iter().map(|c| c.1).sum();
        assert!(o.vs_first + used + 0x20 <= 4 * PAGE, "VS chunks do not fit");
        // The rest of the subsegment is one free chunk.
        chunks.push((None, 4 * PAGE - o.vs_first - used));
        let mut hdr = vs + o.vs_first;
        let mut prev = 0u64;
        for (c, size) in chunks {
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
        // LFH subsegments: 2 pages each.
        for (bsize, list) in &spec.lfh {
            let sub = range(m, 2, 0x0b, 0);
            m.capture(sub, 2 * PAGE);
            let count = list.len() as u64;
            let first = (o.lfh_bitmap + (count * 2).div_ceil(8)).div_ceil(16) * 16;
            assert!(
                first + count * bsize <= 2 * PAGE,
                "LFH subsegment too small"
            );
            m.write_u16(sub + o.lfh_count, count as u16);
            let plain = (*bsize as u32) | ((first as u32) << 16);
            let salt = if v24h2 {
                (sub >> 12) as u32
            } else {
                (sub as u32) >> 12
            };
            m.write_u32(sub + o.lfh_offsets, plain ^ (lfh_key as u32) ^ salt);
            let mut bitmap = vec![0u8; (count * 2).div_ceil(8) as usize];
            for (i, b) in list.iter().enumerate() {
                let at = sub + first + i as u64 * bsize;
                let mut trace = 0;
                let (busy, req) = match b {
                    Some(req) => {
                        bitmap[i / 4] |= 1 << ((i % 4) * 2);
                        if tracer.need(*req) + 2 <= *bsize {
                            trace = tracer.write(m, bits, at, *req);
                        }
                        if *req < *bsize {
                            bitmap[i / 4] |= 2 << ((i % 4) * 2);
                            let extra = if trace != 0 { 0x4000 } else { 0 };
                            m.write_u16(at + bsize - 2, (bsize - req) as u16 | extra);
                        }
                        (true, *req)
                    }
                    None => (false, *bsize),
                };
                blocks.push(ExpectedBlock {
                    entry: at,
                    address: at,
                    size: req,
                    block_size: *bsize,
                    busy,
                    front_end: "lfh",
                    internal: false,
                    trace,
                });
            }
            m.write(sub + o.lfh_bitmap, &bitmap);
        }
        // Back-end allocations: one range each, the unused count in the first descriptor.
        for req in &spec.backend {
            let units = tracer.need(*req).div_ceil(PAGE);
            let unused = units * PAGE - req;
            let at = range(m, units, 0x03, unused as u32);
            if !tracer.records.is_empty() {
                // The extra sits in the last page, which the segment's capture may not reach.
                m.capture(at + (units - 1) * PAGE, PAGE);
            }
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
        }
        // The rest of the segment: one free range.
        let rest = 256 - unit;
        m.write(desc(unit) + o.flags, &[0x02]);
        m.write(desc(unit) + o.unit_size, &[rest as u8]);
        // Large allocations: nodes in the heap's own allocation, an in-order chain of right links.
        let tree = heap + self.seg_layout(bits).large;
        let mut nodes = Vec::new();
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
            if !tracer.records.is_empty() {
                self.dump.memory.capture(va + (pages - 1) * PAGE, PAGE);
            }
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
        let facts = self.facts_heaps_mut().last_mut().expect("just added");
        facts.large_blocks = blocks
            .iter()
            .filter(|b| b.front_end == "large")
            .map(|b| (b.entry, b.block_size.div_ceil(0x1_0000) * 0x1_0000))
            .collect();
        facts.blocks = blocks;
        facts.stacks = tracer
            .records
            .into_iter()
            .zip(spec.stacks.clone())
            .collect();
        heap
    }
}
