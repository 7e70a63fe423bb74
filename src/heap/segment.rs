//! The segment heap walker (Windows 10/11, x64 and x86; reference §6 and §11.1): page segments and
//! their range descriptors, back-end ranges, VS subsegments (encoded chunk headers), LFH
//! subsegments (encoded block offsets, 2-bit busy bitmap) and large allocations.
//!
//! Keys without symbols: `HeapKey` follows exactly from any page segment's signature
//! (`sig ^ ctx ^ seg ^ 0xA2E64EADA2E64EAD` up to 23H2, `sig ^ ctx ^ seg` on 24H2, a third scheme
//! with `seg >> 20` seen once); the scheme is the one whose key all segments agree on and ntdll's
//! data holds: that copy is `RtlpHpHeapGlobals`, and `LfhKey` is the next field. The 24H2 scheme
//! also selects 24H2's LFH offset salt, `u32(sub >> 12)` instead of `u32(sub) >> 12`. x86 heaps
//! use 32-bit keys, signatures and chunk headers (see [`SegmentShape`]). Allocations with
//! ExtraPresent carry their +ust record pointer in their tail (see [`super::segment_extra`]).

use super::block::{Block, FrontEnd, State};
use super::segment_extra::tail_trace;
use super::HeapWalk;
use crate::dump::memory::AddressSpace;
use crate::layout::segment_heap::SegmentShape;
use crate::process::heaps::{large_nodes, walk_list, LargeNode};
use crate::process::Heap;

const SIGNATURE_KEY: u64 = 0xa2e6_4ead_a2e6_4ead;
/// Descriptors per page segment.
const DESCRIPTORS: u64 = 256;

/// Walk one segment heap; `ntdll` is the world's ntdll `[base, end)`, where the keys live.
///
/// `globals` is `RtlpHpHeapGlobals`' address from ntdll's PDB, when given: its HeapKey is taken
/// when the segments' signatures agree with it under one of the schemes.
pub fn walk(
    mem: AddressSpace<'_>,
    heap: &Heap,
    index: u32,
    ntdll: Option<(u64, u64)>,
    globals: Option<u64>,
) -> HeapWalk {
    let mut out = HeapWalk::new(heap, index);
    let bits = heap.bits;
    let o = SegmentShape::new(bits);
    let Some(l) = heap.segment_layout else {
        // The process model has said which layout did not fit (its problems are the notes).
        if out.notes.is_empty() {
            out.notes
                .push("no known _SEGMENT_HEAP layout fits this heap; it is not walked".into());
        }
        return out;
    };
    out.walked = true;
    // Page segments of both contexts, with each context's unit shift and first descriptor.
    let mut segments = Vec::new();
    for i in 0..2 {
        let ctx = heap.address.wrapping_add(l.seg_contexts + i * l.ctx_size);
        let shift = mem.read(ctx.wrapping_add(l.ctx_unit_shift), 3);
        let Ok(b) = shift else { continue };
        let (shift, first) = (u64::from(b[0]), u64::from(b[2]));
        if !(12..=20).contains(&shift) {
            continue;
        }
        for seg in walk_list(&mem, ctx.wrapping_add(l.ctx_segment_list), bits).links {
            segments.push((seg, ctx, shift, first));
        }
    }
    // The signature scheme is the one whose key every captured segment agrees on and that
    // ntdll's data holds (RtlpHpHeapGlobals.HeapKey); without ntdll, the pre-24H2 scheme.
    let signatures: Vec<(u64, u64, u64)> = segments
        .iter()
        .filter_map(|&(seg, ctx, ..)| {
            mem.read_ptr(seg.wrapping_add(o.signature), bits)
                .ok()
                .map(|sig| (sig, ctx, seg))
        })
        .collect();
    if signatures.is_empty() {
        out.notes
            .push("no page segment is captured, so the heap key cannot be recovered".into());
        return out;
    }
    let agreed = |s: Scheme| {
        let (sig, ctx, seg) = signatures[0];
        let key = s.key(sig, ctx, seg) & o.mask();
        signatures
            .iter()
            .all(|&(sig, ctx, seg)| s.key(sig, ctx, seg) & o.mask() == key)
            .then_some(key)
    };
    let p = u64::from(bits / 8);
    let from_pdb = globals.and_then(|g| {
        let (Ok(hk), Ok(lk)) = (
            mem.read_ptr(g, bits),
            mem.read_ptr(g.wrapping_add(p), bits),
        ) else {
            out.notes.push(format!(
                "RtlpHpHeapGlobals at {g:#x} (from ntdll's PDB) is not in the dump"
            ));
            return None;
        };
        let s = Scheme::ALL.into_iter().find(|&s| agreed(s) == Some(hk));
        if s.is_none() {
            out.notes.push(format!(
                "RtlpHpHeapGlobals.HeapKey at {g:#x} (from ntdll's PDB) does not match the page segments' signatures; searching ntdll's data instead"
            ));
        }
        s.map(|s| (s, hk, Some(lk)))
    });
    if from_pdb.is_some() {
        out.notes
            .push("heap keys read from RtlpHpHeapGlobals (ntdll's PDB)".into());
    }
    let found = from_pdb.or_else(|| {
        Scheme::ALL.iter().find_map(|&s| {
            let key = agreed(s)?;
            let (base, end) = ntdll?;
            find_lfh_key(&mem, (base, end), key, bits).map(|lfh| (s, key, Some(lfh)))
        })
    });
    let (scheme, heap_key, lfh_key) = match found {
        Some(f) => f,
        None => match agreed(Scheme::Classic) {
            Some(key) => (Scheme::Classic, key, None),
            None => {
                out.corruptions.push(super::Corruption {
                    address: signatures[0].2,
                    segment: signatures[0].2,
                    what: "the page segments' signatures do not agree on a heap key under any known scheme"
                        .into(),
                });
                return out;
            }
        },
    };
    if scheme != Scheme::Classic {
        out.notes.push(format!(
            "page segment signatures use the {} scheme",
            scheme.name()
        ));
    }
    if lfh_key.is_none() {
        out.notes.push(
            "RtlpHpHeapGlobals was not found in ntdll's captured data: LFH subsegments are not decoded"
                .into(),
        );
    }
    for &(seg, ctx, shift, first) in &segments {
        // Everything below is addressed from `seg` within the segment's span; a segment that
        // would wrap the address space is not one.
        if seg.checked_add(DESCRIPTORS << shift).is_none() {
            out.corruptions.push(super::Corruption {
                address: seg,
                segment: seg,
                what: "page segment address leaves no room for the segment".into(),
            });
            continue;
        }
        match mem.read_ptr(seg.wrapping_add(o.signature), bits) {
            Ok(sig) if scheme.key(sig, ctx, seg) & o.mask() == heap_key => {}
            _ => {
                out.corruptions.push(super::Corruption {
                    address: seg,
                    segment: seg,
                    what: "page segment signature does not match the heap key".into(),
                });
                continue;
            }
        }
        let mut i = first;
        while i < DESCRIPTORS {
            let d = seg + i * o.descriptor;
            let (Ok(flags), Ok(units)) =
                (mem.read(d + o.range_flags, 1), mem.read(d + o.unit_size, 1))
            else {
                break;
            };
            let flags = if bits == 64 {
                flags[0]
            } else {
                flags[0] & 0x1f
            };
            let units = u64::from(units[0]).max(1);
            if flags & 2 == 0 {
                i += 1;
                continue;
            }
            let base = seg + (i << shift);
            let len = units << shift;
            if flags & 1 != 0 {
                match flags & 0x0c {
                    0x00 => {
                        let unused = u64::from(mem.read_u32(d + 4).unwrap_or(0)).min(len);
                        let mut b = block(
                            index,
                            base,
                            base,
                            len - unused,
                            len,
                            true,
                            FrontEnd::Backend,
                        );
                        // ExtraPresent, bit 0 of the descriptor's byte +8 (§6.5).
                        if mem.read(d + 8, 1).is_ok_and(|e| e[0] & 1 != 0) {
                            b.trace = tail_trace(&mem, base + len - unused, base + len, bits);
                        }
                        out.blocks.push(b);
                    }
                    0x08 => {
                        if let Some(k) = lfh_key {
                            lfh(&mem, &mut out, index, (base, len), k, (scheme, &o));
                        }
                    }
                    0x0c => vs(&mem, &mut out, index, (base, len), heap_key, &o),
                    _ => {}
                }
            }
            i += units;
        }
    }
    match large_nodes(&mem, heap.address, bits, &l) {
        Ok((nodes, problem)) => {
            for LargeNode { va, bytes, extra } in nodes {
                let unused = (va & 0xffff).min(bytes);
                let start = va & !0xffff;
                let mut b = block(
                    index,
                    start,
                    start,
                    bytes - unused,
                    bytes,
                    true,
                    FrontEnd::Large,
                );
                if extra {
                    let end = start.saturating_add(bytes);
                    b.trace = tail_trace(&mem, end - unused, end, bits);
                }
                out.blocks.push(b);
                out.large_committed = out.large_committed.saturating_add(bytes);
                out.large_reserved = out
                    .large_reserved
                    .saturating_add(bytes.div_ceil(0x1_0000).saturating_mul(0x1_0000));
            }
            // The heap's own reading of the tree (its large blocks) may have said so already.
            if let Some(p) = problem.filter(|p| !out.notes.contains(p)) {
                out.notes.push(p);
            }
        }
        Err(why) if out.notes.contains(&why) => {}
        Err(why) => out.notes.push(why),
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

/// How a page segment's signature encodes the heap key (reference §6.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    /// Windows 10 1709 – 11 23H2: `sig = seg ^ ctx ^ HeapKey ^ 0xA2E64EADA2E64EAD`.
    Classic,
    /// Windows 11 24H2 (26100+): `sig = seg ^ ctx ^ HeapKey`.
    NoConstant,
    /// Seen in one other build: `sig = ctx ^ HeapKey ^ (seg >> 20) ^ 0xA2E64EADA2E64EAD`.
    ShiftedSegment,
}

impl Scheme {
    const ALL: [Scheme; 3] = [Scheme::Classic, Scheme::NoConstant, Scheme::ShiftedSegment];

    /// The heap key a signature implies.
    fn key(self, sig: u64, ctx: u64, seg: u64) -> u64 {
        match self {
            Scheme::Classic => sig ^ ctx ^ seg ^ SIGNATURE_KEY,
            Scheme::NoConstant => sig ^ ctx ^ seg,
            Scheme::ShiftedSegment => sig ^ ctx ^ (seg >> 20) ^ SIGNATURE_KEY,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scheme::Classic => "1709–23H2",
            Scheme::NoConstant => "24H2 (no constant)",
            Scheme::ShiftedSegment => "shifted-segment",
        }
    }
}

/// `RtlpHpHeapGlobals.LfhKey`: the pointer-sized value after the first aligned copy of `heap_key`
/// in ntdll's captured memory `[base, end)`.
fn find_lfh_key(
    mem: &AddressSpace<'_>,
    (base, end): (u64, u64),
    heap_key: u64,
    bits: u32,
) -> Option<u64> {
    // Windows draws the key at random; a zero "key" would match any zero word.
    if heap_key == 0 {
        return None;
    }
    let w = (bits / 8) as usize;
    let needle = &heap_key.to_le_bytes()[..w];
    for r in mem.ranges() {
        let (start, stop) = (r.base.max(base), r.end().min(end));
        if start >= stop {
            continue;
        }
        let bytes = mem.read(start, (stop - start) as usize).ok()?;
        let mut at = ((w as u64 - (start % w as u64)) % w as u64) as usize;
        while at + 2 * w <= bytes.len() {
            if &bytes[at..at + w] == needle {
                let mut key = [0u8; 8];
                key[..w].copy_from_slice(&bytes[at + w..at + 2 * w]);
                return Some(u64::from_le_bytes(key));
            }
            at += w;
        }
    }
    None
}

/// The chunks of a VS subsegment at `base`, `len` bytes. x64 chunk headers hold a 64-bit `Sizes`
/// (UnsafeSize at bits 16–31, Allocated at bits 48–55, in 16-byte units); x86 a 32-bit one
/// (UnsafeSize at bits 1–15, Allocated at bit 31, in 8-byte units). The flag byte after the
/// encoded page offset says whether the chunk's last two bytes hold its unused count.
fn vs(
    mem: &AddressSpace<'_>,
    out: &mut HeapWalk,
    index: u32,
    (base, len): (u64, u64),
    key: u64,
    o: &SegmentShape,
) {
    let (Ok(size), Ok(sig)) = (
        mem.read_u16(base + o.vs_size),
        mem.read_u16(base + o.vs_size + 2),
    ) else {
        return;
    };
    if size ^ 0x2bed != sig & 0x7fff {
        out.corruptions.push(super::Corruption {
            address: base,
            segment: base,
            what: format!("VS subsegment signature {sig:#x} does not match its size {size:#x}"),
        });
        return;
    }
    let unit = o.vs_header;
    let end = base + (u64::from(size) * unit).min(len);
    let mut hdr = base + o.vs_first;
    while hdr + unit <= end {
        let Ok(raw) = mem.read_ptr(hdr, o.bits) else {
            break;
        };
        let sizes = (raw ^ hdr ^ key) & o.mask();
        let (chunk, allocated) = if o.bits == 64 {
            (((sizes >> 16) & 0xffff) * unit, (sizes >> 48) & 0xff != 0)
        } else {
            (((sizes >> 1) & 0x7fff) * unit, sizes >> 31 != 0)
        };
        if chunk < unit || hdr + chunk > end {
            out.corruptions.push(super::Corruption {
                address: hdr,
                segment: base,
                what: format!("VS chunk header decodes to size {chunk:#x}, past its subsegment ending {end:#x}"),
            });
            break;
        }
        let capacity = chunk - unit;
        let has_unused = mem
            .read(hdr + unit / 2 + 1, 1)
            .map(|b| b[0] & 1 != 0)
            .unwrap_or(false);
        // `_HEAP_VS_UNUSED_BYTES_INFO`: UnusedBytes 13 bits, ExtraPresent 0x4000, OneByteUnused
        // 0x8000 (then one byte is unused and the rest of the u16 is data).
        let info = if allocated && has_unused {
            mem.read_u16(hdr + chunk - 2).unwrap_or(0)
        } else {
            0
        };
        let unused = if info & 0x8000 != 0 {
            1
        } else {
            u64::from(info & 0x1fff)
        }
        .min(capacity);
        let mut b = block(
            index,
            hdr,
            hdr + unit,
            capacity - unused,
            chunk,
            allocated,
            FrontEnd::Vs,
        );
        if info & 0xc000 == 0x4000 {
            b.trace = tail_trace(mem, hdr + chunk - unused, hdr + chunk, o.bits);
        }
        out.blocks.push(b);
        hdr += chunk;
    }
}

/// The blocks of an LFH subsegment at `base`, `len` bytes.
fn lfh(
    mem: &AddressSpace<'_>,
    out: &mut HeapWalk,
    index: u32,
    (base, len): (u64, u64),
    key: u64,
    (scheme, o): (Scheme, &SegmentShape),
) {
    let (Ok(count), Ok(enc)) = (
        mem.read_u16(base + o.lfh_count),
        mem.read_u32(base + o.lfh_offsets),
    ) else {
        return;
    };
    // Windows 10 – 11 23H2 salt the offsets with `u32(sub) >> 12`, 24H2 with `u32(sub >> 12)`
    // (they differ above 4 GB, often both plausibly): the page segments' scheme tells the build.
    let count = u64::from(count);
    let salt = if scheme == Scheme::NoConstant {
        (base >> 12) as u32
    } else {
        (base as u32) >> 12
    };
    let plain = enc ^ (key as u32) ^ salt;
    let (bsize, first) = (u64::from(plain & 0xffff), u64::from(plain >> 16));
    if bsize < 8 || first < o.lfh_bitmap || first + count * bsize > len {
        out.corruptions.push(super::Corruption {
            address: base,
            segment: base,
            what: format!(
                "LFH subsegment offsets decode to block size {bsize:#x} and first block {first:#x}: not plausible for {count} blocks"
            ),
        });
        return;
    }
    let Ok(bitmap) = mem.read(base + o.lfh_bitmap, (count * 2).div_ceil(8) as usize) else {
        return;
    };
    for i in 0..count {
        let bits = (bitmap[(i / 4) as usize] >> ((i % 4) * 2)) & 3;
        let at = base + first + i * bsize;
        // `_HEAP_LFH_UNUSED_BYTES_INFO` in the last two bytes when the second bit is set:
        // UnusedBytes 14 bits, ExtraPresent 0x4000, OneByteUnused 0x8000.
        let info = if bits == 3 {
            mem.read_u16(at + bsize - 2).unwrap_or(0)
        } else {
            0
        };
        let unused = if info & 0x8000 != 0 {
            1
        } else {
            u64::from(info & 0x3fff).min(bsize)
        };
        let mut b = block(
            index,
            at,
            at,
            bsize - unused,
            bsize,
            bits & 1 != 0,
            FrontEnd::Lfh,
        );
        if info & 0xc000 == 0x4000 {
            b.trace = tail_trace(mem, at + bsize - unused, at + bsize, o.bits);
        }
        out.blocks.push(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::memory::{MemoryIndex, MemoryRange};
    use crate::process::HeapKind;

    /// A 64-bit VS subsegment at 0x10000 (one page, heap key 0) whose first chunk is a bare
    /// header marked allocated, with unused-bytes info saying OneByteUnused, then one free chunk.
    #[test]
    fn a_vs_chunk_without_capacity_claiming_one_unused_byte_is_kept_at_size_zero() {
        let (base, len) = (0x1_0000u64, 0x1000u64);
        let mut page = vec![0u8; len as usize];
        let mut put = |at: u64, v: &[u8]| {
            page[at as usize..at as usize + v.len()].copy_from_slice(v);
        };
        let units = (len / 16) as u16;
        put(0x20, &units.to_le_bytes());
        put(0x22, &(units ^ 0x2bed).to_le_bytes());
        let first = base + 0x30;
        put(0x30, &((1u64 << 16 | 1 << 48) ^ first).to_le_bytes());
        put(0x39, &[1]); // the chunk's last two bytes hold unused-bytes info
        put(0x3e, &0x8000u16.to_le_bytes());
        let rest = (len - 0x40) / 16;
        put(0x40, &((rest << 16) ^ (first + 0x10)).to_le_bytes());
        let mut problems = Vec::new();
        let index = MemoryIndex::build(
            vec![MemoryRange {
                base,
                size: len,
                offset: 0,
            }],
            len,
            &mut problems,
        );
        let mem = AddressSpace::new(&page, &index);
        let heap = Heap {
            address: 0x2_0000,
            bits: 64,
            kind: HeapKind::Segment,
            segments: Vec::new(),
            large_blocks: Vec::new(),
            family: None,
            segment_layout: None,
            problems: Vec::new(),
        };
        let mut out = HeapWalk::new(&heap, 0);
        vs(&mem, &mut out, 0, (base, len), 0, &SegmentShape::new(64));
        assert!(out.corruptions.is_empty(), "{:?}", out.corruptions);
        let sizes: Vec<(u64, u64, State)> = out
            .blocks
            .iter()
            .map(|b| (b.size, b.block_size, b.state))
            .collect();
        assert_eq!(
            sizes,
            vec![
                (0, 0x10, State::Busy),
                ((rest - 1) * 16, rest * 16, State::Free)
            ]
        );
    }
}
