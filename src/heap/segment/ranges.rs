//! One page segment: its signature, its page-range descriptors, the ranges they describe (back-end
//! allocations, LFH and VS subsegments, free ranges), and how much of it is committed (reference
//! §6.4, §6.5, §11.1).
//!
//! A range starts at a descriptor with RangeFlags bit 1 (first of range) and spans UnitSize units;
//! bit 0 says allocated, bits 2–3 the type (back end 0, LFH 0x8 and VS 0xC; 1709: LFH 0x4, VS 0x8).
//! Every descriptor's CommittedPageCount says how many pages of its unit are committed (observed
//! on the real 19041 code): the segment's committed bytes are its descriptor array plus those
//! pages, the heap's own accounting, as `_HEAP` uncommitted ranges are for NT heaps.
//!
//! Validation: a first descriptor must have a known type and a size that ends at the segment's end
//! or on another first descriptor. When one does not, it is reported at its address and the walk
//! resumes at the next descriptor whose chain of ranges reaches the segment's end; the units
//! between are counted as corrupt.

use super::keys::Keys;
use super::{block, extra, lfh, vs, PageSegment, Sink};
use crate::heap::block::{Coverage, FrontEnd};
use crate::layout::segment_heap::{SegmentHeapLayout, SegmentShape};

/// Descriptors per page segment.
pub const DESCRIPTORS: u64 = 256;
const PAGE: u64 = 0x1000;

/// One descriptor as read.
#[derive(Clone, Copy, Debug)]
struct Descriptor {
    flags: u8,
    units: u64,
    committed_pages: u64,
}

/// Walk page segment `s`; returns its coverage.
pub fn walk(
    sink: &mut Sink<'_>,
    s: &PageSegment,
    l: &SegmentHeapLayout,
    o: &SegmentShape,
    keys: &Keys,
) -> Coverage {
    let mem = sink.mem;
    let reserved = DESCRIPTORS << s.shift;
    let mut cov = Coverage {
        segment: s.address,
        reserved,
        ..Coverage::default()
    };
    // Everything below is addressed from the segment within its span; a segment that would wrap
    // the address space is not one.
    if s.address.checked_add(reserved).is_none() {
        sink.corrupt(
            s.address,
            s.address,
            "page segment address leaves no room for the segment".into(),
        );
        return cov;
    }
    match mem.read_ptr(s.address + o.signature, o.bits) {
        Ok(sig) if keys.scheme.key(sig, s.context, s.address) & o.mask() == keys.heap => {}
        Ok(_) => {
            let captured = mem.captured_within(s.address, s.address + reserved);
            sink.corrupt(
                s.address,
                s.address,
                "page segment signature does not match the heap key; the segment is not walked"
                    .into(),
            );
            cov.committed = captured;
            cov.corrupt = captured;
            return cov;
        }
        Err(_) => {
            sink.note(format!(
                "page segment {:#x} is not in the dump; its blocks are not listed",
                s.address
            ));
            return cov;
        }
    }
    let Ok(raw) = mem.read(s.address, (DESCRIPTORS * o.descriptor) as usize) else {
        sink.note(format!(
            "the descriptors of page segment {:#x} are not all in the dump; its blocks are not listed",
            s.address
        ));
        return cov;
    };
    let descriptors: Vec<Descriptor> = (0..DESCRIPTORS as usize)
        .map(|i| decode(&raw[i * o.descriptor as usize..], o, s.shift))
        .collect();
    cov.header = o.descriptor_bytes;
    cov.committed = o.descriptor_bytes;
    let page_segment = Segment {
        s,
        l,
        o,
        descriptors: &descriptors,
    };
    page_segment.walk_ranges(sink, keys, &mut cov);
    cov
}

fn decode(d: &[u8], o: &SegmentShape, shift: u32) -> Descriptor {
    let flags = d[o.range_flags as usize];
    let (at, sh, mask) = o.committed_pages;
    Descriptor {
        flags: if o.bits == 64 { flags } else { flags & 0x1f },
        units: u64::from(d[o.unit_size as usize]),
        committed_pages: u64::from((d[at as usize] >> sh) & mask).min(1 << (shift - 12)),
    }
}

struct Segment<'a> {
    s: &'a PageSegment,
    l: &'a SegmentHeapLayout,
    o: &'a SegmentShape,
    descriptors: &'a [Descriptor],
}

impl Segment<'_> {
    /// A first descriptor of a plausible range at index `i`: its end.
    fn range_end(&self, i: u64) -> Option<u64> {
        let d = self.descriptors[i as usize];
        let kind = d.flags & 0x0c;
        let known =
            d.flags & 1 == 0 || kind == 0 || kind == self.l.lfh_range || kind == self.l.vs_range;
        (d.flags & 2 != 0 && d.flags & 0xf0 == 0 && known && d.units >= 1)
            .then(|| i + d.units)
            .filter(|&e| e <= DESCRIPTORS)
    }

    fn walk_ranges(&self, sink: &mut Sink<'_>, keys: &Keys, cov: &mut Coverage) {
        let n = DESCRIPTORS;
        // anchored[i]: the ranges from descriptor i tile the rest of the segment.
        let mut anchored = vec![false; n as usize + 1];
        anchored[n as usize] = true;
        for i in (0..n).rev() {
            anchored[i as usize] = self.range_end(i).is_some_and(|e| anchored[e as usize]);
        }
        let mut i = u64::from(self.s.first);
        while i < n {
            match self.trusted_end(sink, i) {
                Some(e) => {
                    self.range(sink, keys, cov, i, e);
                    i = e;
                }
                None => {
                    let next = (i + 1..=n).find(|&j| anchored[j as usize]).unwrap_or(n);
                    let committed = self.committed(i, next);
                    sink.corrupt(
                        self.s.address + i * self.o.descriptor,
                        self.s.address,
                        format!(
                            "page range descriptor {i} (RangeFlags {:#04x}, UnitSize {}) does not describe a range; units {i} to {} skipped",
                            self.descriptors[i as usize].flags,
                            self.descriptors[i as usize].units,
                            next - 1
                        ),
                    );
                    cov.committed += committed;
                    cov.corrupt += committed;
                    i = next;
                }
            }
        }
    }

    /// The end of the range whose first descriptor is `i`, when the descriptors confirm it: an
    /// allocated range's continuation descriptors say RangeFlags 1 and their distance back to
    /// `i`, a free range's last one its distance back; one mismatching continuation is reported
    /// and tolerated when the range ends where another begins.
    fn trusted_end(&self, sink: &mut Sink<'_>, i: u64) -> Option<u64> {
        let e = self.range_end(i)?;
        let d = self.descriptors[i as usize];
        let tail: Vec<u64> = if d.flags & 1 != 0 {
            (i + 1..e).collect()
        } else {
            (e - 1..e).filter(|&k| k > i).collect()
        };
        let mut wrong: Vec<u64> = tail
            .into_iter()
            .filter(|&k| {
                let c = self.descriptors[k as usize];
                c.units != k - i || (d.flags & 1 != 0 && c.flags != 1)
            })
            .collect();
        // An allocated range whose next descriptor continues it is longer than it says.
        if e < DESCRIPTORS && d.flags & 1 != 0 {
            let c = self.descriptors[e as usize];
            if c.flags == 1 && c.units == e - i {
                wrong.push(e);
            }
        }
        let next_ok = e == DESCRIPTORS || self.range_end(e).is_some();
        match wrong.as_slice() {
            [] => Some(e),
            [k] if next_ok => {
                sink.corrupt(
                    self.s.address + k * self.o.descriptor,
                    self.s.address,
                    format!(
                        "page range descriptor {k} does not continue the range of descriptor {i} (RangeFlags {:#04x}, UnitOffset {})",
                        self.descriptors[*k as usize].flags, self.descriptors[*k as usize].units
                    ),
                );
                Some(e)
            }
            _ => None,
        }
    }

    /// Committed bytes of units `[from, to)`.
    fn committed(&self, from: u64, to: u64) -> u64 {
        self.descriptors[from as usize..to as usize]
            .iter()
            .map(|d| d.committed_pages * PAGE)
            .sum()
    }

    /// Committed bytes of units `[from, to)` missing from the dump (a unit's committed pages are
    /// its first ones).
    fn not_captured(&self, sink: &Sink<'_>, from: u64, to: u64) -> u64 {
        (from..to)
            .map(|u| {
                let at = self.s.address + (u << self.s.shift);
                let bytes = self.descriptors[u as usize].committed_pages * PAGE;
                bytes - sink.mem.captured_within(at, at + bytes)
            })
            .sum()
    }

    /// The range of units `[i, e)`.
    fn range(&self, sink: &mut Sink<'_>, keys: &Keys, cov: &mut Coverage, i: u64, e: u64) {
        let d = self.descriptors[i as usize];
        let base = self.s.address + (i << self.s.shift);
        let len = (e - i) << self.s.shift;
        let committed = self.committed(i, e);
        let missing = self.not_captured(sink, i, e);
        let lost = if d.flags & 1 == 0 {
            0
        } else {
            match d.flags & 0x0c {
                0 => {
                    self.backend(sink, base, len, i);
                    0
                }
                t if t == self.l.lfh_range => match keys.lfh {
                    Some(k) => lfh::walk(sink, self.o, (k, keys.scheme), base, len),
                    None => 0,
                },
                _ => vs::walk(sink, self.o, keys.heap, base, len),
            }
        };
        let lost = lost.min(committed - missing);
        cov.committed += committed;
        cov.not_captured += missing;
        cov.corrupt += lost;
        cov.walked += committed - missing - lost;
    }

    /// A back-end allocation: the whole range, the unused count in its first descriptor (+4), its
    /// ExtraPresent bit 0 of the byte at +8.
    fn backend(&self, sink: &mut Sink<'_>, base: u64, len: u64, i: u64) {
        let mem = sink.mem;
        let d = self.s.address + i * self.o.descriptor;
        let unused = u64::from(mem.read_u32(d + 4).unwrap_or(0)).min(len);
        let mut b = block(
            sink.index,
            base,
            base,
            len - unused,
            len,
            true,
            FrontEnd::Backend,
        );
        if mem.read(d + 8, 1).is_ok_and(|e| e[0] & 1 != 0) {
            b.trace = extra::trace(&mem, self.o, base, b.size);
        }
        sink.blocks.push(b);
    }
}
