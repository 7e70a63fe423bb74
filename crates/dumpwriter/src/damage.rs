//! Deliberate damage to heap metadata, described as data: which block or structure, which field,
//! which bits. [`apply`] changes a built dump and says where a walker must report the damage and
//! which blocks it may lose; the writer knows the layouts, so tests never compute offsets.

use crate::minidump::MinidumpBuilder;
use crate::process::{HeapFacts, StructureKind};

/// One deliberate corruption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// Flip bit `bit` (0–15) of an NT back-end block's encoded Size: its checksum breaks.
    NtSize { entry: u64, bit: u32 },
    /// Flip bit `bit` (0–15) of an NT back-end block's encoded PreviousSize.
    NtPrevSize { entry: u64, bit: u32 },
    /// Clear the busy flag of an NT large block's `_HEAP_VIRTUAL_ALLOC_ENTRY.BusyBlock`.
    NtLargeHeader { entry: u64 },
    /// Flip bit `bit` (0–14) of a VS chunk's UnsafeSize.
    VsSize { entry: u64, bit: u32 },
    /// Flip bit `bit` (0–14) of a VS chunk's UnsafePrevSize.
    VsPrevSize { entry: u64, bit: u32 },
    /// Overwrite a VS chunk header with bytes derived from `seed`. When it is its subsegment's
    /// last chunk, nothing after it confirms where the chunk before it ends: that one may be lost
    /// too (never guessed).
    VsJunk { entry: u64, seed: u64 },
    /// Flip bit `bit` (0–31) of an LFH subsegment's encoded `BlockOffsets`.
    LfhOffsets { subsegment: u64, bit: u32 },
    /// Flip bit `bit` (0–7) of a range's first descriptor's UnitSize.
    RangeUnits { descriptor: u64, bit: u32 },
    /// Point the first entry of `_HEAP.FreeLists` at itself.
    FreeListLoop { head: u64 },
    /// Point `_HEAP.FreeLists`' head at memory that is not committed.
    FreeListUnmapped { head: u64 },
}

/// What a walker must do with a damaged dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// A corruption must be reported at this address.
    pub reported_at: u64,
    /// Entries of the blocks the damage may cost (the damaged ones).
    pub may_lose: Vec<u64>,
}

/// Where in a heap this kind of damage can be done, for `heap`'s blocks and structures; each
/// target is the argument of [`Damage`]'s variant.
pub fn targets(heap: &HeapFacts, kind: &str) -> Vec<u64> {
    let blocks = |fe: &str| -> Vec<u64> {
        heap.blocks
            .iter()
            .filter(|b| b.front_end == fe && !b.internal)
            .map(|b| b.entry)
            .collect()
    };
    let structures = |k: StructureKind| -> Vec<u64> {
        heap.structures
            .iter()
            .filter(|s| s.kind == k)
            .map(|s| s.address)
            .collect()
    };
    match (kind, heap.segment_heap) {
        ("header" | "prev", false) => blocks("backend"),
        ("large", false) => blocks("large"),
        ("header" | "prev" | "junk", true) => blocks("vs"),
        ("lfh", true) => structures(StructureKind::LfhSubsegment),
        ("descriptor", true) => structures(StructureKind::RangeDescriptor),
        ("free-list", false) => structures(StructureKind::FreeLists),
        _ => Vec::new(),
    }
}

/// Damage `dump`, built with `heap` among its heaps, as `damage` says.
pub fn apply(dump: &mut MinidumpBuilder, heap: &HeapFacts, damage: Damage) -> Expected {
    let x64 = heap.bits == 64;
    let m = &mut dump.memory;
    let flip = |m: &mut crate::memory::ProcessMemory, at: u64, bit: u32| {
        let b = m.read_u64(at);
        m.write_u64(at, b ^ (1 << bit));
    };
    let lose = |entries: Vec<u64>, at: u64| Expected {
        reported_at: at,
        may_lose: entries,
    };
    // An NT header's encoded 8 bytes: at entry + 8 on x64, at entry on x86.
    let nt_header = |entry: u64| if x64 { entry + 8 } else { entry };
    match damage {
        Damage::NtSize { entry, bit } => {
            flip(m, nt_header(entry), bit % 16);
            lose(vec![entry], entry)
        }
        Damage::NtPrevSize { entry, bit } => {
            flip(m, nt_header(entry), 32 + bit % 16);
            lose(Vec::new(), entry)
        }
        Damage::NtLargeHeader { entry } => {
            // BusyBlock at +0x30 / +0x18; its Flags byte is the third encoded byte.
            let busy = entry + if x64 { 0x30 } else { 0x18 };
            flip(m, nt_header(busy), 16);
            lose(vec![entry], entry)
        }
        Damage::VsSize { entry, bit } => {
            // UnsafeSize: x64 bits 16–31 of the 64-bit Sizes, x86 bits 1–15 of the 32-bit one.
            flip(m, entry, if x64 { 16 + bit % 15 } else { 1 + bit % 15 });
            lose(vec![entry], entry)
        }
        Damage::VsPrevSize { entry, bit } => {
            flip(m, entry, if x64 { 32 + bit % 15 } else { 16 + bit % 15 });
            lose(Vec::new(), entry)
        }
        Damage::VsJunk { entry, seed } => {
            let junk = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            if x64 {
                m.write_u64(entry, junk);
            } else {
                let keep = m.read_u64(entry) & !0xffff_ffff;
                m.write_u64(entry, keep | (junk & 0xffff_ffff));
            }
            let chunks = heap
                .structures
                .iter()
                .find(|s| s.kind == StructureKind::VsSubsegment && s.covers.contains(&entry))
                .map(|s| s.covers.clone())
                .unwrap_or_default();
            let mut lost = vec![entry];
            if chunks.last() == Some(&entry) && chunks.len() > 1 {
                lost.push(chunks[chunks.len() - 2]);
            }
            lose(lost, entry)
        }
        Damage::LfhOffsets { subsegment, bit } => {
            let at = subsegment + if x64 { 0x28 } else { 0x18 };
            let v = m.read_u64(at);
            m.write_u64(at, v ^ (1 << (bit % 32)));
            lose(
                covered(heap, subsegment, StructureKind::LfhSubsegment),
                subsegment,
            )
        }
        Damage::RangeUnits { descriptor, bit } => {
            let at = descriptor + if x64 { 0x1f } else { 0x0f };
            let v = m.read_u64(at & !7);
            m.write_u64(at & !7, v ^ (1 << ((at % 8) * 8 + u64::from(bit % 8))));
            lose(
                covered(heap, descriptor, StructureKind::RangeDescriptor),
                descriptor,
            )
        }
        Damage::FreeListLoop { head } => {
            let first = read_ptr(m, head, x64);
            write_ptr(m, first, first, x64);
            lose(Vec::new(), head)
        }
        Damage::FreeListUnmapped { head } => {
            // The top of the user address space is never committed.
            let wild = if x64 { 0x7ff_fff0_0000 } else { 0x7ff0_0000 };
            write_ptr(m, head, wild, x64);
            lose(Vec::new(), head)
        }
    }
}

fn covered(heap: &HeapFacts, address: u64, kind: StructureKind) -> Vec<u64> {
    heap.structures
        .iter()
        .find(|s| s.kind == kind && s.address == address)
        .map(|s| s.covers.clone())
        .unwrap_or_default()
}

fn read_ptr(m: &crate::memory::ProcessMemory, at: u64, x64: bool) -> u64 {
    let v = m.read_u64(at);
    if x64 {
        v
    } else {
        v & 0xffff_ffff
    }
}

fn write_ptr(m: &mut crate::memory::ProcessMemory, at: u64, v: u64, x64: bool) {
    if x64 {
        m.write_u64(at, v);
    } else {
        let keep = m.read_u64(at) & !0xffff_ffff;
        m.write_u64(at, keep | v);
    }
}
