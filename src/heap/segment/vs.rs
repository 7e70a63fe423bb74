//! VS (variable size) subsegments (reference §6.7, §11.1, §11.2): a `_HEAP_VS_SUBSEGMENT` header
//! and a chain of encoded chunk headers.
//!
//! The subsegment's `Size` counts the units after its header (the chunks run from +0x30 / +0x18 to
//! `+ 0x30 + Size × 16` / `+ 0x18 + Size × 8`; the range may hold one more page); its signature
//! is `Size ^ 0x2BED` at +0x22 (26100.5074: +0x24). A chunk header decodes to
//! `Sizes = raw ^ header address ^ HeapKey`: x64 UnsafeSize bits 16–31 and UnsafePrevSize bits
//! 32–47 in 16-byte units, Allocated byte 6 (0 or 1), byte 7 zero; x86 UnsafeSize bits 1–15 and
//! UnsafePrevSize bits 16–30 in 8-byte units, Allocated bit 31. An allocated chunk's next byte
//! holds its page offset in the subsegment, encoded with the header's and the key's low bytes
//! (free chunks reuse those bytes for their tree node), and bit 0 of the byte after says whether
//! the chunk's last two bytes hold its unused-bytes info.
//!
//! Validation, like the NT back end's: every chunk must be plausible (size within the
//! subsegment, Allocated 0 or 1, page offset right when allocated) and chain to the next with
//! UnsafePrevSize. When the chain breaks, the chunks are re-read from the other end: a position
//! is *anchored* when its chain reaches the subsegment's end with every UnsafePrevSize matching
//! (a stale header left inside a coalesced chunk never is: its chain meets a real header whose
//! UnsafePrevSize names the coalesced chunk). The damaged header is reported at its own address,
//! the walk resumes at the next anchored header, and only the chunk(s) between are lost. A
//! damaged UnsafePrevSize alone loses nothing.

use super::{block, extra, Sink};
use crate::heap::block::FrontEnd;
use crate::layout::segment_heap::SegmentShape;

/// The VS subsegment signature constant: `Size ^ Signature == 0x2BED`.
const VS_SIGNATURE: u16 = 0x2bed;

/// One decoded chunk header.
#[derive(Clone, Copy, Debug)]
struct Chunk {
    size: u64,
    prev: u64,
    allocated: bool,
}

/// The subsegment being walked.
struct Subsegment<'a, 'm> {
    sink: &'a mut Sink<'m>,
    o: &'a SegmentShape,
    key: u64,
    base: u64,
    first: u64,
    end: u64,
    unit: u64,
}

/// Walk the VS subsegment at `base` (range of `len` bytes). Returns the bytes lost to damage.
pub fn walk(sink: &mut Sink<'_>, o: &SegmentShape, key: u64, base: u64, len: u64) -> u64 {
    let mem = sink.mem;
    let size_at = base.wrapping_add(o.vs_size);
    let Ok(size) = mem.read_u16(size_at) else {
        return 0;
    };
    // 26100.5074 moved the signature from +0x22 to +0x24 (x64; §11.2).
    let signed = [2u64, 4].iter().any(|&d| {
        mem.read_u16(size_at.wrapping_add(d))
            .is_ok_and(|sig| size ^ (sig & 0x7fff) == VS_SIGNATURE)
    });
    let unit = o.vs_header;
    let end = base + o.vs_first + u64::from(size) * unit;
    if !signed || end > base + len {
        sink.corrupt(
            base,
            base,
            format!(
                "VS subsegment header: Size {size:#x} without its signature, or past the range's {len} bytes"
            ),
        );
        return len;
    }
    let mut s = Subsegment {
        sink,
        o,
        key,
        base,
        first: base + o.vs_first,
        end,
        unit,
    };
    match s.clean_chain() {
        Some(chunks) => {
            for (hdr, c) in chunks {
                s.emit(hdr, c);
            }
            0
        }
        None => s.damaged(),
    }
}

impl Subsegment<'_, '_> {
    /// The header at `hdr` decoded, plausible or not, and whether its Allocated byte is 0 or 1
    /// with a zero byte after it (x64).
    fn decode(&self, hdr: u64) -> Option<(Chunk, bool)> {
        let raw = self.sink.mem.read_ptr(hdr, self.o.bits).ok()?;
        let sizes = (raw ^ hdr ^ self.key) & self.o.mask();
        Some(if self.o.bits == 64 {
            let allocated = (sizes >> 48) & 0xff;
            (
                Chunk {
                    size: ((sizes >> 16) & 0xffff) * 16,
                    prev: ((sizes >> 32) & 0xffff) * 16,
                    allocated: allocated == 1,
                },
                allocated <= 1 && sizes >> 56 == 0,
            )
        } else {
            (
                Chunk {
                    size: ((sizes >> 1) & 0x7fff) * 8,
                    prev: ((sizes >> 16) & 0x7fff) * 8,
                    allocated: sizes >> 31 != 0,
                },
                true,
            )
        })
    }

    /// The chunk header at `hdr` when it is plausible on its own.
    fn chunk(&self, hdr: u64) -> Option<Chunk> {
        let mem = self.sink.mem;
        let (c, flags_ok) = self.decode(hdr)?;
        if !flags_ok || c.size < self.unit || hdr.checked_add(c.size)? > self.end {
            return None;
        }
        if c.allocated {
            // The page offset, encoded with the header's and the key's low bytes.
            let b = mem.read(hdr + u64::from(self.o.bits / 8), 1).ok()?[0];
            let off = u64::from(b ^ hdr as u8 ^ self.key as u8);
            if (hdr.wrapping_sub(off << 12)) & !0xfff != self.base {
                return None;
            }
        }
        Some(c)
    }

    /// The chunks from the first to the end when every header is plausible and chains.
    fn clean_chain(&self) -> Option<Vec<(u64, Chunk)>> {
        let mut out = Vec::new();
        let (mut hdr, mut prev) = (self.first, 0);
        while hdr < self.end {
            let c = self.chunk(hdr)?;
            if c.prev != prev {
                return None;
            }
            out.push((hdr, c));
            prev = c.size;
            hdr += c.size;
        }
        Some(out)
    }

    /// The walk of a subsegment whose chain breaks somewhere (see the module's description).
    fn damaged(&mut self) -> u64 {
        let r = Reread::new(self);
        let (mut hdr, mut expected, mut lost) = (self.first, Some(0u64), 0);
        while hdr < self.end {
            let q = r.anchor_after(hdr);
            match r.at(hdr).filter(|&c| r.trusted(self, hdr, c, q)) {
                Some(c) => {
                    if let Some(e) = expected.filter(|&e| e != c.prev) {
                        self.sink.corrupt(
                            hdr,
                            self.base,
                            format!(
                                "VS chunk UnsafePrevSize is {:#x}, but the previous chunk is {e} bytes",
                                c.prev
                            ),
                        );
                    }
                    self.emit(hdr, c);
                    expected = Some(c.size);
                    hdr += c.size;
                }
                None => {
                    self.untrusted(&r, hdr, q, expected);
                    lost += q - hdr;
                    hdr = q;
                    expected = None;
                }
            }
        }
        lost
    }

    /// Report the chunk at `hdr` that no evidence confirms; the walk resumes at `q`.
    fn untrusted(&mut self, r: &Reread, hdr: u64, q: u64, expected: Option<u64>) {
        // A plausible chunk that chains back, followed by an implausible header with nothing
        // after it to confirm either (no anchored chunk up to the end): one of the two is
        // damaged, and which one cannot be told; both are reported.
        let ambiguous = r
            .at(hdr)
            .filter(|c| q == self.end && expected == Some(c.prev))
            .map(|c| hdr + c.size)
            .filter(|&n| n < q && r.at(n).is_none());
        let what = match (ambiguous, r.at(hdr)) {
            (Some(n), Some(c)) => {
                self.sink.corrupt(
                    n,
                    self.base,
                    format!(
                        "VS chunk header does not decode to a plausible chunk (it follows the chunk at {hdr:#x}, which this one or that one's damage leaves unconfirmed)"
                    ),
                );
                format!(
                    "VS chunk header decodes to size {:#x}, which leads to {n:#x}, where no plausible chunk starts: this header or that one is damaged",
                    c.size
                )
            }
            (_, Some(c)) => format!(
                "VS chunk header decodes to size {:#x}, which leads to no valid chunk",
                c.size
            ),
            (_, None) => "VS chunk header does not decode to a plausible chunk".to_string(),
        };
        self.sink.corrupt(
            hdr,
            self.base,
            format!("{what}; {} bytes skipped to the next valid chunk", q - hdr),
        );
    }

    /// Report the chunk at `hdr`.
    fn emit(&mut self, hdr: u64, c: Chunk) {
        let mem = self.sink.mem;
        let capacity = c.size - self.unit;
        let has_unused = c.allocated
            && mem
                .read(hdr + u64::from(self.o.bits / 8) + 1, 1)
                .is_ok_and(|b| b[0] & 1 != 0);
        // `_HEAP_VS_UNUSED_BYTES_INFO`: UnusedBytes 13 bits, ExtraPresent 0x4000, OneByteUnused
        // 0x8000 (then one byte is unused and the rest of the u16 is data).
        let info = if has_unused {
            mem.read_u16(hdr + c.size - 2).unwrap_or(0)
        } else {
            0
        };
        let unused = if info & 0x8000 != 0 {
            1
        } else {
            u64::from(info & 0x1fff)
        }
        .min(capacity);
        let user = hdr + self.unit;
        let mut b = block(
            self.sink.index,
            hdr,
            user,
            capacity - unused,
            c.size,
            c.allocated,
            FrontEnd::Vs,
        );
        if info & 0xc000 == 0x4000 {
            b.trace = extra::trace(&mem, self.o, user, b.size);
        }
        self.sink.blocks.push(b);
    }
}

/// A damaged subsegment re-read at every unit: the plausible headers, and which positions are
/// anchored (their chain reaches the end with every UnsafePrevSize matching).
struct Reread {
    first: u64,
    unit: u64,
    end: u64,
    chunks: Vec<Option<Chunk>>,
    anchored: Vec<bool>,
}

impl Reread {
    fn new(s: &Subsegment<'_, '_>) -> Self {
        let (first, unit, end) = (s.first, s.unit, s.end);
        let n = ((end - first) / unit) as usize;
        let chunks: Vec<Option<Chunk>> = (0..n).map(|k| s.chunk(first + k as u64 * unit)).collect();
        let mut anchored = vec![false; n + 1];
        anchored[n] = true;
        for k in (0..n).rev() {
            if let Some(c) = chunks[k] {
                let next = first + k as u64 * unit + c.size;
                let j = ((next - first) / unit) as usize;
                anchored[k] =
                    j == n || (anchored[j] && chunks[j].is_some_and(|d| d.prev == c.size));
            }
        }
        Reread {
            first,
            unit,
            end,
            chunks,
            anchored,
        }
    }

    fn index(&self, p: u64) -> usize {
        ((p - self.first) / self.unit) as usize
    }

    /// The plausible chunk at `p`.
    fn at(&self, p: u64) -> Option<Chunk> {
        self.chunks[self.index(p)]
    }

    /// The first anchored position after `p` (the end when there is none).
    fn anchor_after(&self, p: u64) -> u64 {
        (self.index(p) + 1..self.anchored.len())
            .find(|&j| self.anchored[j])
            .map_or(self.end, |j| self.first + j as u64 * self.unit)
    }

    /// Whether the chunk `c` at `hdr` is confirmed: anchored, or ending at the next anchor `q`, or
    /// before it where a header names it as the previous chunk (even one damaged in its size
    /// alone), or where `q`'s UnsafePrevSize says a chunk starts.
    fn trusted(&self, s: &Subsegment<'_, '_>, hdr: u64, c: Chunk, q: u64) -> bool {
        let next = hdr + c.size;
        self.anchored[self.index(hdr)]
            || next == q
            || (next < q
                && (self.at(next).is_some_and(|d| d.prev == c.size)
                    || s.decode(next).is_some_and(|(d, _)| d.prev == c.size)
                    || (q < self.end && self.at(q).is_some_and(|d| d.prev == q - next))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::memory::{AddressSpace, MemoryIndex, MemoryRange};

    /// A 64-bit VS subsegment at 0x10000 (one page, heap key 0) whose first chunk is a bare
    /// header marked allocated, with unused-bytes info saying OneByteUnused, then one free chunk.
    #[test]
    fn a_vs_chunk_without_capacity_claiming_one_unused_byte_is_kept_at_size_zero() {
        let (base, len) = (0x1_0000u64, 0x1000u64);
        let mut page = vec![0u8; len as usize];
        let mut put = |at: u64, v: &[u8]| {
            page[at as usize..at as usize + v.len()].copy_from_slice(v);
        };
        // Size counts the units after the 0x30-byte subsegment header.
        let units = ((len - 0x30) / 16) as u16;
        put(0x20, &units.to_le_bytes());
        put(0x22, &(units ^ 0x2bed).to_le_bytes());
        let first = base + 0x30;
        put(0x30, &((1u64 << 16 | 1 << 48) ^ first).to_le_bytes());
        put(0x38, &[first as u8]); // page offset 0, encoded with the header's low byte
        put(0x39, &[1]); // the chunk's last two bytes hold unused-bytes info
        put(0x3e, &0x8000u16.to_le_bytes());
        let rest = (len - 0x40) / 16;
        put(
            0x40,
            &((rest << 16 | 1 << 32) ^ (first + 0x10)).to_le_bytes(),
        );
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
        let mut sink = Sink {
            mem: AddressSpace::new(&page, &index),
            index: 0,
            blocks: Vec::new(),
            corruptions: Vec::new(),
            notes: Vec::new(),
        };
        let lost = walk(&mut sink, &SegmentShape::new(64), 0, base, len);
        assert_eq!(lost, 0);
        assert!(sink.corruptions.is_empty(), "{:?}", sink.corruptions);
        let sizes: Vec<(u64, u64, bool)> = sink
            .blocks
            .iter()
            .map(|b| (b.size, b.block_size, b.state == crate::heap::State::Busy))
            .collect();
        assert_eq!(
            sizes,
            vec![(0, 0x10, true), ((rest - 1) * 16, rest * 16, false)]
        );
    }
}
