//! LFH subsegments of a segment heap (reference §6.6, §11.1, §11.2): headerless blocks of one
//! size, `BlockOffsets` encoded with `LfhKey` and the subsegment's address, and a busy bitmap.
//!
//! Up to Windows 11 23H2 the bitmap has 2 bits per block from +0x30 (x64) / +0x20 (x86): bit 0
//! handed out, bit 1 the block's last u16 holds its unused-bytes info (UnusedBytes 14 bits,
//! ExtraPresent 0x4000, OneByteUnused 0x8000). 24H2 (observed on real 26100 code) keeps u64 words
//! from +0x40, one per 32 blocks (low dword: handed out; high dword: unused-bytes info present), a
//! remote-free list (head: block index + 1 at +0x10, count at +0x12, each free block's first u16
//! the next link) whose blocks keep their bits but are free, and an unused count in the low 10
//! bits of the last u16.

use super::keys::Scheme;
use super::{block, extra, Sink};
use crate::dump::memory::AddressSpace;
use crate::heap::block::FrontEnd;
use crate::layout::segment_heap::SegmentShape;

/// 24H2: first bitmap word.
const BITMAP_24H2: u64 = 0x40;
/// 24H2: remote-free list head (u16, block index + 1) and count (u16).
const REMOTE_FREE_HEAD: u64 = 0x10;
const REMOTE_FREE_COUNT: u64 = 0x12;

/// One block's state as the bitmap says.
#[derive(Clone, Copy)]
struct Bits {
    handed_out: bool,
    unused_info: bool,
}

/// The busy-state rules of one build family.
enum Bitmap {
    /// 2 bits per block (Windows 10 – 11 23H2).
    Pairs(Vec<u8>),
    /// 24H2: u64 words; the remote-free blocks.
    Words(Vec<u8>, Vec<bool>),
}

impl Bitmap {
    fn bits(&self, i: u64) -> Bits {
        match self {
            Bitmap::Pairs(b) => {
                let v = (b[(i / 4) as usize] >> ((i % 4) * 2)) & 3;
                Bits {
                    handed_out: v & 1 != 0,
                    unused_info: v & 2 != 0,
                }
            }
            Bitmap::Words(b, remote) => {
                let word = (i / 32) as usize * 8;
                let bit = |at: usize| b[at + (i % 32 / 8) as usize] >> (i % 8) & 1 != 0;
                Bits {
                    handed_out: bit(word) && !remote[i as usize],
                    unused_info: bit(word + 4),
                }
            }
        }
    }
}

/// Where an LFH subsegment's blocks and bitmap are, decoded from its header.
struct Geometry {
    count: u64,
    bsize: u64,
    first: u64,
    bitmap_at: u64,
    bitmap_len: u64,
}

/// Decodes the subsegment header at `base`: `Ok(None)` when it cannot be read,
/// `Err(message)` when the decoded offsets do not describe how the blocks fill
/// the subsegment (wrong key or damage).
fn geometry(
    mem: &AddressSpace<'_>,
    o: &SegmentShape,
    key: u64,
    v24h2: bool,
    base: u64,
    len: u64,
) -> Result<Option<Geometry>, String> {
    let (Ok(count), Ok(enc)) = (
        mem.read_u16(base + o.lfh_count),
        mem.read_u32(base + o.lfh_offsets),
    ) else {
        return Ok(None);
    };
    let count = u64::from(count);
    // Windows 10 – 11 23H2 salt the offsets with `u32(sub) >> 12`, 24H2 with `u32(sub >> 12)`
    // (they differ above 4 GB, often both plausibly): the page segments' scheme tells the build.
    let salt = if v24h2 {
        (base >> 12) as u32
    } else {
        (base as u32) >> 12
    };
    let plain = enc ^ (key as u32) ^ salt;
    let (bsize, first) = (u64::from(plain & 0xffff), u64::from(plain >> 16));
    let (bitmap_at, bitmap_len) = if v24h2 {
        (BITMAP_24H2, count.div_ceil(32) * 8)
    } else {
        (o.lfh_bitmap, (count * 2).div_ceil(8))
    };
    // On the real heaps the blocks fill the subsegment: BlockCount is how many fit after the
    // first, both offsets are multiples of the granularity (16 x64, 8 x86).
    let grain = if o.bits == 64 { 16 } else { 8 };
    let fits = bsize >= 8
        && bsize % grain == 0
        && first % grain == 0
        && first >= bitmap_at + bitmap_len
        && first < len
        && (len - first) / bsize == count;
    if !fits {
        return Err(format!(
            "LFH subsegment offsets decode to block size {bsize} and first block {first:#x}: not how {count} blocks fill its {len} bytes"
        ));
    }
    Ok(Some(Geometry {
        count,
        bsize,
        first,
        bitmap_at,
        bitmap_len,
    }))
}

/// Walk the LFH subsegment at `base` (`len` bytes). Returns the bytes lost to damage.
pub fn walk(
    sink: &mut Sink<'_>,
    o: &SegmentShape,
    (key, scheme): (u64, Scheme),
    base: u64,
    len: u64,
) -> u64 {
    let mem = sink.mem;
    let v24h2 = scheme == Scheme::NoConstant && o.bits == 64;
    let g = match geometry(&mem, o, key, v24h2, base, len) {
        Ok(Some(g)) => g,
        Ok(None) => return 0,
        Err(message) => {
            sink.corrupt(base, base, message);
            return len;
        }
    };
    let Ok(raw) = mem.read(base + g.bitmap_at, g.bitmap_len as usize) else {
        return 0;
    };
    let bitmap = if v24h2 {
        Bitmap::Words(
            raw.into_owned(),
            remote_free(sink, base, g.count, (g.first, g.bsize)),
        )
    } else {
        Bitmap::Pairs(raw.into_owned())
    };
    let mask = if v24h2 { 0x3ff } else { 0x3fff };
    for i in 0..g.count {
        let at = base + g.first + i * g.bsize;
        lfh_block(sink, o, base, at, g.bsize, bitmap.bits(i), mask);
    }
    0
}

/// Emits one LFH block at `at`: its requested size from the
/// `_HEAP_LFH_UNUSED_BYTES_INFO` in its last two bytes, and its +ust trace.
fn lfh_block(
    sink: &mut Sink<'_>,
    o: &SegmentShape,
    base: u64,
    at: u64,
    bsize: u64,
    bits: Bits,
    mask: u16,
) {
    let mem = sink.mem;
    let info = if bits.handed_out && bits.unused_info {
        mem.read_u16(at + bsize - 2).unwrap_or(0)
    } else {
        0
    };
    let unused = if info & 0x8000 != 0 {
        1
    } else {
        u64::from(info & mask)
    };
    if unused > bsize {
        sink.corrupt(
            at,
            base,
            format!("LFH block's unused-bytes info {info:#06x} exceeds its {bsize} bytes"),
        );
    }
    let mut b = block(
        sink.index,
        at,
        at,
        bsize - unused.min(bsize),
        bsize,
        bits.handed_out,
        FrontEnd::Lfh,
    );
    if info & 0xc000 == 0x4000 {
        b.trace = extra::trace(&mem, o, at, b.size);
    }
    sink.blocks.push(b);
}

/// 24H2: which blocks are on the subsegment's remote-free list (bounded, loop-safe); damage is
/// reported and ends the list.
fn remote_free(
    sink: &mut Sink<'_>,
    base: u64,
    count: u64,
    (first, bsize): (u64, u64),
) -> Vec<bool> {
    let mem = sink.mem;
    let mut on = vec![false; count as usize];
    let listed = mem.read_u16(base + REMOTE_FREE_COUNT).unwrap_or(0);
    if listed == 0 {
        return on;
    }
    let mut link = mem.read_u16(base + REMOTE_FREE_HEAD).unwrap_or(0);
    let mut seen = 0u64;
    while link != 0 && seen < u64::from(listed) {
        let i = u64::from(link) - 1;
        if i >= count || on[i as usize] {
            sink.corrupt(
                base + REMOTE_FREE_HEAD,
                base,
                format!("LFH remote-free list names block {i} of {count} twice or out of range"),
            );
            break;
        }
        on[i as usize] = true;
        seen += 1;
        link = mem.read_u16(base + first + i * bsize).unwrap_or(0);
    }
    on
}
