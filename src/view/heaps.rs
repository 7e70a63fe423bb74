//! The `heaps` views: every heap's `!heap -s` figures, and the `!heap -stat` size histograms.
//! Serialized, `heaps --json` and `heaps --stat --json`.

use crate::analysis::heaps::{self, Component, HeapSummary, SizeRow};
use crate::analysis::top::Sort;
use crate::heap::HeapWalk;
use crate::process::HeapKind;
use crate::value::Hex;
use serde::Serialize;

/// Everything `heaps` prints: one summary per heap, in the process's heap order.
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct HeapsView {
    /// The heaps.
    pub heaps: Vec<HeapSummary>,
}

impl HeapsView {
    /// The view of the walked heaps.
    pub fn new(walks: &[HeapWalk]) -> Self {
        HeapsView {
            heaps: walks.iter().map(heaps::summarize).collect(),
        }
    }
}

/// Everything `heaps --stat` prints.
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct HeapStatView {
    /// One histogram per heap asked for.
    pub heaps: Vec<HeapStat>,
    /// At most this many sizes per heap.
    #[serde(skip)]
    pub limit: usize,
    /// How the sizes are ordered.
    #[serde(skip)]
    pub sort: Sort,
}

/// The size histogram of one heap.
#[derive(Clone, Debug, Serialize)]
pub struct HeapStat {
    /// The heap.
    pub heap: Hex,
    /// Its busy bytes (requested).
    pub busy_bytes: u64,
    /// The largest totals, at most the view's limit.
    pub sizes: Vec<SizeRow>,
    /// Segment and page heaps: busy blocks by component.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
    /// How many distinct sizes there are.
    #[serde(skip)]
    pub distinct_sizes: usize,
    /// Its busy blocks.
    #[serde(skip)]
    pub busy_blocks: u64,
}

impl HeapStatView {
    /// The histograms of `walks`, `limit` sizes each, in `sort` order.
    pub fn new<'a>(walks: impl Iterator<Item = &'a HeapWalk>, limit: usize, sort: Sort) -> Self {
        let stat = |w: &HeapWalk| {
            let (busy, mut rows) = heaps::size_histogram(w.blocks.iter(), sort);
            let busy_blocks = rows.iter().map(|r| r.count).sum();
            let distinct_sizes = rows.len();
            rows.truncate(limit);
            HeapStat {
                heap: Hex(w.heap),
                busy_bytes: busy,
                sizes: rows,
                components: if w.kind == HeapKind::Nt {
                    Vec::new()
                } else {
                    heaps::summarize(w).components
                },
                distinct_sizes,
                busy_blocks,
            }
        };
        HeapStatView {
            heaps: walks.map(stat).collect(),
            limit,
            sort,
        }
    }
}
