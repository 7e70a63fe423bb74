//! The `top` view: outstanding busy memory ranked by module, function, stack, size or heap, with
//! the trace health and the notes that explain missing stacks. Serialized, `top --json`.

use crate::analysis::folded::Folded;
use crate::analysis::top::{By, Entry, Top};
use crate::stacks::symbols::Symbolizer;
use crate::value::{self, pct};
use crate::view::frame::FrameView;
use crate::view::suspects::SuspectView;
use serde::Serialize;

/// Everything `top` prints.
#[derive(Clone, Debug, Serialize)]
pub struct TopView {
    /// What the entries are ranked by.
    pub by: By,
    /// Busy user blocks' requested bytes.
    pub total_busy_bytes: u64,
    /// Busy user blocks.
    pub total_busy_blocks: u64,
    /// Of the busy bytes, those with a readable stack.
    pub traced_bytes: u64,
    /// Of the busy blocks, those with a readable stack.
    pub traced_blocks: u64,
    /// Distinct stacks.
    pub stacks: u64,
    /// The largest entries, at most the limit.
    pub entries: Vec<TopEntry>,
    /// Why stacks are missing, PDBs refused.
    pub notes: Vec<String>,
    /// Traced blocks in percent of busy blocks.
    #[serde(skip)]
    pub pct_traced_blocks: f64,
    /// Traced bytes in percent of busy bytes.
    #[serde(skip)]
    pub pct_traced_bytes: f64,
    /// Entries left out by the limit.
    #[serde(skip)]
    pub more: usize,
    /// Leak suspects, strongest evidence first.
    pub suspects: Vec<SuspectView>,
    /// The folded stacks, when asked for (`--folded`).
    #[serde(skip)]
    pub folded: Option<Vec<Folded>>,
}

/// One ranked entry.
#[derive(Clone, Debug, Serialize)]
pub struct TopEntry {
    /// Module, `module!function` (or call site), stack record, size or heap.
    pub key: String,
    /// Busy blocks.
    pub count: u64,
    /// Their requested bytes.
    pub bytes: u64,
    /// Share of the traced bytes (module, function and stack rankings; not for `(no stack)`).
    #[serde(serialize_with = "value::percent4_opt")]
    pub pct_traced: Option<f64>,
    /// Share of the busy bytes.
    #[serde(serialize_with = "value::percent4")]
    pub pct_busy: f64,
    /// The stack's frames (`--by stack`), innermost first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<Vec<FrameView>>,
}

impl TopView {
    /// The view of the ranking `t`, its frames resolved with `sym`, at most `limit` entries.
    pub fn new(t: &Top, sym: &Symbolizer, limit: usize, notes: Vec<String>) -> Self {
        let h = &t.health;
        let by_stack = matches!(t.by, By::Module | By::Function | By::Stack);
        let entry = |e: &Entry| TopEntry {
            key: e.key.clone(),
            count: e.count,
            bytes: e.bytes,
            pct_traced: (e.traced && by_stack).then(|| pct(e.bytes, h.traced_bytes)),
            pct_busy: pct(e.bytes, h.busy_bytes),
            frames: e
                .stack
                .as_ref()
                .map(|s| FrameView::resolve_all(sym, &s.frames)),
        };
        TopView {
            by: t.by,
            total_busy_bytes: h.busy_bytes,
            total_busy_blocks: h.busy_blocks,
            traced_bytes: h.traced_bytes,
            traced_blocks: h.traced_blocks,
            stacks: h.stacks,
            entries: t.entries.iter().take(limit).map(entry).collect(),
            notes,
            pct_traced_blocks: pct(h.traced_blocks, h.busy_blocks),
            pct_traced_bytes: pct(h.traced_bytes, h.busy_bytes),
            more: t.entries.len().saturating_sub(limit),
            suspects: Vec::new(),
            folded: None,
        }
    }
}
