//! What the rankings (`top`, `diff`) share: a stack's blocks by size, and what stands out (the
//! entry with the most blocks and the one with the most bytes, or the most growth of each).

use crate::analysis::top::{By, NO_STACK};
use serde::Serialize;

/// How many sizes a stack's row keeps (its most frequent ones).
pub const DOMINANT_SIZES: usize = 5;

/// Blocks of one size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SizeCount {
    /// The requested size.
    pub size: u64,
    /// How many blocks.
    pub count: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl SizeCount {
    /// The most frequent sizes of `sizes` ((size, count), most blocks first), at most
    /// [`DOMINANT_SIZES`].
    pub fn dominant(sizes: &[(u64, u64)]) -> Vec<SizeCount> {
        sizes
            .iter()
            .take(DOMINANT_SIZES)
            .map(|&(size, count)| SizeCount {
                size,
                count,
                bytes: count.saturating_mul(size),
            })
            .collect()
    }
}

/// An entry that stands out, with its blocks and bytes (in `diff`: their changes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Highlight {
    /// The entry's key.
    pub key: String,
    /// Blocks (or their change).
    pub count: i128,
    /// Bytes (or their change).
    pub bytes: i128,
    /// How the text names it: `BackTrace 0x… (rsaenh+0x1a2b)`, `size 422 B`, `heap 0x…`, or the
    /// key.
    #[serde(skip)]
    pub name: String,
}

/// What stands out in a ranking: the entry with the most blocks and the one with the most bytes
/// (in `diff`, the most growth of each), which may be the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StandsOut {
    /// The most blocks (or the most growth in blocks).
    pub most_blocks: Highlight,
    /// The most bytes (or the most growth in bytes).
    pub most_bytes: Highlight,
}

impl StandsOut {
    /// From the candidates (key, count, bytes, name): the one with the largest count (then bytes)
    /// and the one with the largest bytes (then count); none when no candidate has a positive
    /// count or bytes.
    pub fn pick(candidates: impl Iterator<Item = Highlight> + Clone) -> Option<StandsOut> {
        let positive = candidates.filter(|h| h.count > 0 || h.bytes > 0);
        let most_blocks = positive.clone().filter(|h| h.count > 0).max_by(|a, b| {
            (a.count, a.bytes)
                .cmp(&(b.count, b.bytes))
                .then(b.key.cmp(&a.key))
        })?;
        let most_bytes = positive.filter(|h| h.bytes > 0).max_by(|a, b| {
            (a.bytes, a.count)
                .cmp(&(b.bytes, b.count))
                .then(b.key.cmp(&a.key))
        })?;
        Some(StandsOut {
            most_blocks,
            most_bytes,
        })
    }
}

/// How the text names an entry keyed `key` by `by`: a stack by its BackTrace and allocator frame,
/// a size with its unit, a heap as a heap; modules and functions by their key.
pub fn entry_name(by: By, key: &str, allocator: Option<&str>, size: Option<u64>) -> String {
    match (by, size) {
        _ if key == NO_STACK => "the blocks without a stack".to_string(),
        (By::Size, Some(s)) => format!("size {s} B"),
        (By::Stack, _) => match allocator {
            Some(a) => format!("BackTrace {key} ({a})"),
            None => format!("BackTrace {key}"),
        },
        (By::Heap, _) => format!("heap {key}"),
        _ => key.to_string(),
    }
}
