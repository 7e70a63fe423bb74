//! The `top` view: outstanding busy memory ranked by module, function, stack, size or heap, with
//! the trace health, what stands out, and the notes that explain missing stacks. Serialized,
//! `top --json`.

use crate::analysis::folded::Folded;
use crate::analysis::top::{By, Entry, Sort, Top, NO_STACK};
use crate::stacks::symbols::Symbolizer;
use crate::value::{self, pct};
use crate::view::frame::FrameView;
use crate::view::ranking::{entry_name, Highlight, SizeCount, StandsOut};
use crate::view::suspects::SuspectView;
use serde::Serialize;

/// Everything `top` prints.
#[derive(Clone, Debug, Serialize)]
pub struct TopView {
    /// What the entries are ranked by (`size` when stacks were asked for and the dump has none).
    pub by: By,
    /// How the entries are ordered.
    pub sort: Sort,
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
    /// The entry with the most blocks and the one with the most bytes (of all, not only those
    /// within the limit); none with fewer than two entries.
    pub stands_out: Option<StandsOut>,
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
    /// Module, `module!function` (or call site), stack record, size (`0x…`) or heap.
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
    /// Whether this is the bucket of blocks without a stack (`(no stack)`).
    pub no_stack: bool,
    /// The requested size, as a number (`--by size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The stack's most frequent sizes (`--by stack`), most blocks first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sizes: Vec<SizeCount>,
    /// The stack's allocator frame (`--by stack`): its first frame that is not allocator
    /// plumbing, as the frames read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocator: Option<String>,
    /// The stack's frames (`--by stack`), innermost first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<Vec<FrameView>>,
}

impl TopEntry {
    /// The entry `e` of `t`; its frames resolved when `frames` (only the shown entries need them).
    fn new(e: &Entry, t: &Top, sym: &Symbolizer, frames: bool) -> Self {
        let by_stack = matches!(t.by, By::Module | By::Function | By::Stack);
        let h = &t.health;
        TopEntry {
            key: e.key.clone(),
            count: e.count,
            bytes: e.bytes,
            pct_traced: (e.traced && by_stack).then(|| pct(e.bytes, h.traced_bytes)),
            pct_busy: pct(e.bytes, h.busy_bytes),
            no_stack: e.key == NO_STACK,
            size: e.size,
            sizes: SizeCount::dominant(&e.sizes),
            allocator: e.allocator.map(|a| sym.display(a)),
            frames: e
                .stack
                .as_ref()
                .filter(|_| frames)
                .map(|s| FrameView::resolve_all(sym, &s.frames)),
        }
    }

    /// How the text names it.
    pub fn name(&self, by: By) -> String {
        entry_name(by, &self.key, self.allocator.as_deref(), self.size)
    }
}

impl TopView {
    /// The view of the ranking `t`, its frames resolved with `sym`, at most `limit` entries.
    pub fn new(t: &Top, sym: &Symbolizer, limit: usize, notes: Vec<String>) -> Self {
        let h = &t.health;
        let all: Vec<TopEntry> = t
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| TopEntry::new(e, t, sym, i < limit))
            .collect();
        let stands_out = if all.len() > 1 {
            StandsOut::pick(all.iter().map(|e| Highlight {
                key: e.key.clone(),
                count: i128::from(e.count),
                bytes: i128::from(e.bytes),
                name: e.name(t.by),
            }))
        } else {
            None
        };
        TopView {
            by: t.by,
            sort: t.sort,
            total_busy_bytes: h.busy_bytes,
            total_busy_blocks: h.busy_blocks,
            traced_bytes: h.traced_bytes,
            traced_blocks: h.traced_blocks,
            stacks: h.stacks,
            more: all.len().saturating_sub(limit),
            entries: all.into_iter().take(limit).collect(),
            stands_out,
            notes,
            pct_traced_blocks: pct(h.traced_blocks, h.busy_blocks),
            pct_traced_bytes: pct(h.traced_bytes, h.busy_bytes),
            suspects: Vec::new(),
            folded: None,
        }
    }
}
