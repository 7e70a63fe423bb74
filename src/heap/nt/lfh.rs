//! The Low Fragmentation Heap front end (reference §3, §11).
//!
//! LFH chunks live in "user blocks": busy back-end (or large) blocks whose data starts with a
//! `_HEAP_USERDATA_HEADER` (signature 0xF0E0D0C0) pointing to a `_HEAP_SUBSEGMENT` that points
//! back. The container is heap metadata; its chunks are the allocations.
//!
//! - Windows 7: chunks start at a fixed offset, stride = `BlockSize` units; a chunk's
//!   `UnusedBytes` byte (plain) tells free (0x80) from busy (0x80 | unused count).
//! - Windows 8: `EncodedOffsets` holds {first chunk offset, stride} in clear.
//! - Windows 8.1+: `EncodedOffsets ^ UserBlocks ^ _LFH_HEAP ^ RtlpLFHKey` (32-bit). The key is
//!   recovered from the dump without symbols: each chunk header carries its index in clear (bytes
//!   5–6 of its 8 meaningful bytes, byte 4 zero), which pins the first chunk offset of a user block,
//!   and one user block then gives the key; every other user block must agree. A busy bitmap in
//!   the header says which chunks are allocated.

use super::{ust, Walker};
use crate::heap::block::{Block, FrontEnd, State};
use crate::layout::nt_heap::{NtFamily, USERDATA_SIGNATURE};
use crate::process::heaps::walk_list;

/// A validated user block.
struct UserBlock {
    /// Index of the container block in the walk's output.
    container: usize,
    /// `_HEAP_USERDATA_HEADER` address (the container's user address).
    header: u64,
    /// One past the container's usable bytes.
    end: u64,
    /// Chunk stride in bytes (`BlockSize` × unit).
    stride: u64,
    /// Number of chunks.
    count: u64,
}

/// The most chunks a user block may claim (the real maximum is a few thousand).
const MAX_CHUNKS: u64 = 1 << 16;

/// Find the user blocks among the walked blocks, mark the LFH's own structures internal, and emit
/// every chunk.
pub(super) fn expand(w: &mut Walker<'_>, feh: u64, known_key: Option<u32>) {
    mark_internal(w, feh);
    let blocks = user_blocks(w);
    for ub in &blocks {
        w.out.blocks[ub.container].internal = true;
    }
    let key = if w.l.family >= NtFamily::Win81 {
        choose_key(w, feh, &blocks, known_key)
    } else {
        None
    };
    w.out.lfh_key = key;
    for ub in &blocks {
        let Some(first) = first_chunk(w, feh, ub, key) else {
            w.corrupt(
                ub.header,
                ub.header,
                "the first chunk of this LFH user block cannot be located (no LFH key)".into(),
            );
            continue;
        };
        chunks(w, ub, ub.header + first);
    }
}

/// The busy back-end blocks that are LFH user blocks: `USERDATA` signature,
/// a subsegment that points back, and a plausible chunk size and count.
fn user_blocks(w: &Walker<'_>) -> Vec<UserBlock> {
    let lfh = w.l.lfh;
    let mut blocks = Vec::new();
    for (i, b) in w.out.blocks.iter().enumerate() {
        if b.state != State::Busy || b.front_end == FrontEnd::Lfh {
            continue;
        }
        let ub = b.address;
        if w.mem.read_u32(ub.wrapping_add(lfh.ub_signature)).ok() != Some(USERDATA_SIGNATURE) {
            continue;
        }
        let Ok(subseg) = w.mem.read_ptr(ub, w.l.bits) else {
            continue;
        };
        let field = |off: u64| w.mem.read_u16(subseg.wrapping_add(off)).ok();
        let back = w
            .mem
            .read_ptr(subseg.wrapping_add(lfh.subseg_user_blocks), w.l.bits);
        let (Some(units), Some(count)) =
            (field(lfh.subseg_block_size), field(lfh.subseg_block_count))
        else {
            continue;
        };
        if back.ok() != Some(ub) || units == 0 || count == 0 || u64::from(count) > MAX_CHUNKS {
            continue;
        }
        blocks.push(UserBlock {
            container: i,
            header: ub,
            end: b.entry + b.block_size + if w.l.bits == 64 { 8 } else { 0 },
            stride: u64::from(units) * w.l.unit,
            count: u64::from(count),
        });
    }
    blocks
}

/// Windows 8.1+: the LFH key, from the PDB when known (checked against the
/// user blocks), else recovered from them.
fn choose_key(
    w: &mut Walker<'_>,
    feh: u64,
    blocks: &[UserBlock],
    known_key: Option<u32>,
) -> Option<u32> {
    let recovered = recover_key(w, feh, blocks);
    match (known_key, recovered) {
        (Some(k), Some(r)) if k != r => {
            let heap = w.heap;
            w.corrupt(
                heap,
                heap,
                format!("RtlpLFHKey from the PDB ({k:#x}) differs from the key the user blocks give ({r:#x}); using the PDB's"),
            );
            Some(k)
        }
        (Some(k), _) => Some(k),
        (None, r) => r,
    }
}

/// Offset of the first chunk in user block `ub`: fixed on Windows 7, in
/// clear on 8, encoded with the key from 8.1 (checked against the stride).
fn first_chunk(w: &mut Walker<'_>, feh: u64, ub: &UserBlock, key: Option<u32>) -> Option<u64> {
    let lfh = w.l.lfh;
    match w.l.family {
        NtFamily::Win7 => Some(lfh.ub_first_chunk),
        NtFamily::Win8 => w
            .mem
            .read_u32(ub.header.wrapping_add(lfh.ub_encoded_offsets))
            .ok()
            .map(|v| u64::from(v & 0xffff)),
        _ => {
            let (first, stride) = decode_offsets(w, feh, ub.header, key?)?;
            if stride != ub.stride {
                w.corrupt(
                    ub.header,
                    ub.header,
                    format!(
                        "user block stride decodes to {stride:#x}, but its subsegment says {:#x}",
                        ub.stride
                    ),
                );
                return None;
            }
            Some(first)
        }
    }
}

/// Mark the LFH front end itself and its subsegment zones as heap metadata.
fn mark_internal(w: &mut Walker<'_>, feh: u64) {
    let zones = walk_list(
        &w.mem,
        feh.wrapping_add(w.l.lfh.sub_segment_zones),
        w.l.bits,
    );
    let mut inside: Vec<u64> = zones.links;
    inside.push(feh);
    inside.sort_unstable();
    for b in w.out.blocks.iter_mut() {
        let i = inside.partition_point(|&a| a <= b.entry);
        if inside
            .get(i)
            .is_some_and(|&a| a < b.entry.saturating_add(b.block_size))
        {
            b.internal = true;
        }
    }
}

/// `(first chunk offset, stride)` of a Windows 8.1+ user block with the key `key`.
fn decode_offsets(w: &Walker<'_>, feh: u64, ub: u64, key: u32) -> Option<(u64, u64)> {
    let enc = w
        .mem
        .read_u32(ub.wrapping_add(w.l.lfh.ub_encoded_offsets))
        .ok()?;
    let plain = enc ^ (ub as u32) ^ (feh as u32) ^ key;
    Some((u64::from(plain & 0xffff), u64::from(plain >> 16)))
}

/// The 8 meaningful header bytes of the chunk at `c`.
fn chunk_header(w: &Walker<'_>, c: u64) -> Option<[u8; 8]> {
    let b = w.mem.read(c.wrapping_add(w.dec.offset), 8).ok()?;
    let mut a = [0u8; 8];
    a.copy_from_slice(&b);
    Some(a)
}

/// Whether the chunk header at `c` carries index `i` in clear (Windows 8+).
fn indexed(w: &Walker<'_>, c: u64, i: u64) -> bool {
    chunk_header(w, c).is_some_and(|h| {
        h[4] == 0 && u64::from(u16::from_le_bytes([h[5], h[6]])) == i && h[7] >= 0x80
    })
}

/// Recover `RtlpLFHKey` (its low 32 bits) from the user blocks; `None` when no user block pins it
/// or they disagree.
fn recover_key(w: &mut Walker<'_>, feh: u64, blocks: &[UserBlock]) -> Option<u32> {
    let mut votes: Vec<(u32, usize)> = Vec::new();
    for ub in blocks {
        // The chunk array starts after the header and its bitmap, within the first page.
        let mut found = None;
        let mut fao = 0x10;
        while fao < 0x1000 && ub.header + fao + ub.stride <= ub.end {
            let c0 = ub.header + fao;
            if indexed(w, c0, 0)
                && (ub.count < 2 || indexed(w, c0 + ub.stride, 1))
                && indexed(w, c0 + (ub.count - 1) * ub.stride, ub.count - 1)
            {
                found = Some(fao);
                break;
            }
            fao += 8;
        }
        let (Some(fao), Ok(enc)) = (
            found,
            w.mem
                .read_u32(ub.header.wrapping_add(w.l.lfh.ub_encoded_offsets)),
        ) else {
            continue;
        };
        let key = enc ^ (ub.header as u32) ^ (feh as u32) ^ (fao as u32 | (ub.stride as u32) << 16);
        match votes.iter_mut().find(|(k, _)| *k == key) {
            Some(v) => v.1 += 1,
            None => votes.push((key, 1)),
        }
    }
    votes.sort_by_key(|v| std::cmp::Reverse(v.1));
    if votes.len() > 1 {
        let heap = w.heap;
        w.corrupt(
            heap,
            heap,
            format!(
                "LFH user blocks disagree on the LFH key ({} candidates); using the most common",
                votes.len()
            ),
        );
    }
    votes.first().map(|v| v.0)
}

/// Emit the chunks of one user block starting at `first`.
fn chunks(w: &mut Walker<'_>, ub: &UserBlock, first: u64) {
    let unit = w.l.unit;
    let emitted_from = w.out.blocks.len();
    let bitmap = if w.l.family.old_lfh() {
        None
    } else {
        busy_bitmap(w, ub, first)
    };
    for i in 0..ub.count {
        let c = first + i * ub.stride;
        if c + ub.stride > ub.end {
            w.corrupt(
                c,
                ub.header,
                format!(
                    "chunk {i} of {} runs past its user block (ends {:#x})",
                    ub.count, ub.end
                ),
            );
            break;
        }
        let Some(h) = chunk_header(w, c) else {
            continue;
        };
        let flag = h[7];
        let by_header = flag & 0x80 != 0 && flag != 0x80;
        let busy = match &bitmap {
            Some(bits) => {
                let by_bitmap = bits[(i / 8) as usize] & (1 << (i % 8)) != 0;
                if by_bitmap != by_header {
                    w.corrupt(
                        c,
                        ub.header,
                        format!(
                            "chunk {i}: the busy bitmap says {} but the header's UnusedBytes is {flag:#04x}",
                            if by_bitmap { "busy" } else { "free" }
                        ),
                    );
                }
                by_bitmap
            }
            None => by_header,
        };
        let mut b = Block {
            entry: c,
            address: c + unit,
            size: ub.stride - unit,
            block_size: ub.stride,
            trace: 0,
            heap: w.index,
            state: if busy { State::Busy } else { State::Free },
            front_end: FrontEnd::Lfh,
            flags: u8::from(busy),
            internal: false,
        };
        if busy {
            let (user, requested, trace) = ust::user_data(&w.mem, &w.l, c, ub.stride, flag);
            b.address = user;
            b.size = requested;
            b.trace = trace;
        }
        w.out.blocks.push(b);
    }
    if w.l.family.old_lfh() {
        check_depth(w, ub, emitted_from);
    }
}

/// Windows 7: the subsegment's Depth counts the free chunks (checked on real
/// Windows 7 heaps); the chunks emitted from `emitted_from` must agree.
fn check_depth(w: &mut Walker<'_>, ub: &UserBlock, emitted_from: usize) {
    let free = w.out.blocks[emitted_from..]
        .iter()
        .filter(|b| b.state == State::Free)
        .count();
    let depth = w
        .mem
        .read_ptr(ub.header, w.l.bits)
        .and_then(|s| w.mem.read_u16(s.wrapping_add(w.l.lfh.subseg_depth)));
    if let Ok(d) = depth {
        if usize::from(d) != free {
            w.corrupt(
                ub.header,
                ub.header,
                format!("{free} chunks are free, but the subsegment counts {d}"),
            );
        }
    }
}

/// The busy bitmap of a Windows 8+ user block, when its buffer lies in the header.
fn busy_bitmap(w: &Walker<'_>, ub: &UserBlock, first: u64) -> Option<Vec<u8>> {
    let lfh = w.l.lfh;
    let bits = w.mem.read_u32(ub.header + lfh.ub_bitmap_size).ok()?;
    let buf = w
        .mem
        .read_ptr(ub.header + lfh.ub_bitmap_buffer, w.l.bits)
        .ok()?;
    let bytes = u64::from(bits).div_ceil(8);
    if u64::from(bits) < ub.count || buf < ub.header || buf + bytes > first {
        return None;
    }
    w.mem.read(buf, bytes as usize).ok().map(|b| b.into_owned())
}
