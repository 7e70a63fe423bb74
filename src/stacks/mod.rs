//! Allocation stacks recorded by +ust, and their symbols.
//!
//! On Windows 7 to 11 a traced NT-heap block points to a record `{Next, Hash, Depth, Frames[]}` of
//! `RtlpHeapStackTraceLog` (reference §5.4); identical stacks share one record, so the record's
//! address is the stack's identity within a dump. Page-heap blocks (`+hpa`, full or light) point to a classic
//! `_RTL_STACK_TRACE_ENTRY` instead (reference §5.5): Depth is a u16 at +0xE/+0xA, frames start at
//! +0x10/+0xC. [`StackTable::collect`] reads every distinct
//! record the blocks point to; [`symbols`] turns frames into `module!function+offset`.

pub mod symbols;

use crate::dump::memory::AddressSpace;
use crate::fasthash::{FastMap, FastSet};
use crate::heap::{FrontEnd, HeapWalk};
use rayon::prelude::*;

/// The deepest record heapdiag accepts (Windows captures at most 32 frames; some builds 62/64).
pub const MAX_DEPTH: u32 = 64;

/// One distinct recorded stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stack {
    /// Address of its record (the identity UMDH calls the BackTrace).
    pub record: u64,
    /// 32 or 64: the world whose heaps recorded it.
    pub bits: u32,
    /// Return addresses, innermost first, exactly as recorded.
    pub frames: Vec<u64>,
}

/// All distinct stacks the blocks of a walk point to.
#[derive(Clone, Debug, Default)]
pub struct StackTable {
    /// The stacks.
    pub stacks: Vec<Stack>,
    /// Stack index by (bits, record address).
    index: FastMap<(u32, u64), usize>,
    /// Records that could not be read or did not look like records: (record, why).
    pub bad: Vec<(u64, String)>,
}

impl StackTable {
    /// Read every record the blocks of `walks` refer to.
    pub fn collect(mem: &AddressSpace<'_>, walks: &[HeapWalk]) -> StackTable {
        // The distinct record pointers, heap by heap in parallel.
        let per_heap: Vec<FastSet<(u32, u64, Format)>> = walks
            .par_iter()
            .map(|w| {
                w.blocks
                    .iter()
                    .filter(|b| b.trace != 0)
                    .map(|b| {
                        let format = if b.front_end == FrontEnd::PageHeap {
                            Format::Classic
                        } else {
                            Format::HeapLog
                        };
                        (w.bits, b.trace, format)
                    })
                    .collect()
            })
            .collect();
        let mut records: Vec<(u32, u64, Format)> = per_heap.into_iter().flatten().collect();
        records.sort_unstable();
        records.dedup_by_key(|r| (r.0, r.1));
        let mut t = StackTable::default();
        for (bits, record, format) in records {
            match read_record(mem, record, bits, format) {
                Ok(frames) => {
                    t.index.insert((bits, record), t.stacks.len());
                    t.stacks.push(Stack {
                        record,
                        bits,
                        frames,
                    });
                }
                Err(why) => {
                    // Remember it as bad so that it is reported once.
                    t.index.insert((bits, record), usize::MAX);
                    t.bad.push((record, why));
                }
            }
        }
        t
    }

    /// The index in [`StackTable::stacks`] of the stack a block of a heap of width `bits` refers
    /// to.
    pub fn index_of(&self, bits: u32, record: u64) -> Option<usize> {
        self.index
            .get(&(bits, record))
            .copied()
            .filter(|&i| i != usize::MAX)
    }

    /// The stack a block of a heap of width `bits` refers to.
    pub fn get(&self, bits: u32, record: u64) -> Option<&Stack> {
        match self.index.get(&(bits, record)) {
            Some(&i) if i != usize::MAX => self.stacks.get(i),
            _ => None,
        }
    }

    /// Bytes the distinct records occupy (header + frames), for judging whether the database
    /// filled up.
    pub fn record_bytes(&self) -> u64 {
        self.stacks
            .iter()
            .map(|s| {
                let p = u64::from(s.bits / 8);
                p + 8 + p * s.frames.len() as u64
            })
            .sum()
    }
}

/// Which kind of record a block's trace pointer refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Format {
    /// `RtlpHeapStackTraceLog` records of +ust NT heaps: `{Next, Hash u32, Depth u32, Frames[]}`.
    HeapLog,
    /// Classic `_RTL_STACK_TRACE_ENTRY` (page heap): `{HashChain, TraceCount/BlockDepth u16,
    /// IndexHigh u16, Index u16, Depth u16, BackTrace[]}`.
    Classic,
}

/// Read the record at `at`: pointer-sized link, two u32 (HeapLog: hash, depth) or four u16
/// (Classic: depth last), then pointer-sized frames.
fn read_record(
    mem: &AddressSpace<'_>,
    at: u64,
    bits: u32,
    format: Format,
) -> Result<Vec<u64>, String> {
    let p = u64::from(bits / 8);
    let depth = match format {
        Format::HeapLog => mem.read_u32(at.wrapping_add(p + 4)),
        Format::Classic => mem
            .read(at.wrapping_add(p + 6), 2)
            .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]]))),
    }
    .map_err(|e| format!("stack record {at:#x}: {e}"))?;
    if depth == 0 || depth > MAX_DEPTH {
        return Err(format!(
            "stack record {at:#x}: depth {depth} is not plausible"
        ));
    }
    let frames_at = at.wrapping_add(p + 8);
    let raw = mem
        .read(frames_at, (depth as usize) * p as usize)
        .map_err(|e| format!("stack record {at:#x}: {e}"))?;
    Ok(raw
        .chunks_exact(p as usize)
        .map(|c| {
            if bits == 64 {
                u64::from_le_bytes(c.try_into().expect("8 bytes"))
            } else {
                u64::from(u32::from_le_bytes(c.try_into().expect("4 bytes")))
            }
        })
        .collect())
}
