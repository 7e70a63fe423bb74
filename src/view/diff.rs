//! The `diff` view: what grew between two dumps, by stack, module, function, size or heap, and
//! the address-usage tables side by side. Serialized, `diff --json`.

use crate::analysis::diff::{AddressDelta, Amount, Change, DiffEntry};
use crate::analysis::top::By;
use crate::stacks::symbols::Symbolizer;
use crate::view::frame::FrameView;
use serde::Serialize;

/// Everything `diff` prints.
#[derive(Clone, Debug, Serialize)]
pub struct DiffView {
    /// What entries are keyed by (after any fallback).
    pub by: By,
    /// Busy heap bytes and blocks of each dump.
    pub totals: Totals,
    /// Changed keys, growth first, at most the limit.
    pub entries: Vec<DiffRow>,
    /// The address-usage tables.
    pub address: AddressDelta,
    /// Two runs, different ntdll builds, the fallback to size, PDBs refused.
    pub notes: Vec<String>,
    /// Changes left out by the limit.
    #[serde(skip)]
    pub more: usize,
    /// The largest growth of one call stack (0 without stacks, or when not measured).
    #[serde(skip)]
    pub max_stack_growth: i128,
    /// Each call stack's bytes before and after (`--folded`; both dumps need stacks).
    #[serde(skip)]
    pub folded: Option<Vec<(Vec<String>, u64, u64)>>,
}

/// Busy heap memory of each dump.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Totals {
    /// Busy bytes before.
    pub before: u64,
    /// Busy bytes after.
    pub after: u64,
    /// After − before.
    pub delta: i128,
    /// Busy blocks before.
    pub before_blocks: u64,
    /// Busy blocks after.
    pub after_blocks: u64,
    /// After − before, blocks.
    #[serde(skip)]
    pub delta_blocks: i128,
}

impl Totals {
    /// From each dump's busy (bytes, blocks).
    pub fn new(before: Amount, after: Amount) -> Self {
        let d = Change::between(before, after);
        Totals {
            before: before.bytes,
            after: after.bytes,
            delta: d.bytes,
            before_blocks: before.count,
            after_blocks: after.count,
            delta_blocks: d.count,
        }
    }
}

/// One changed key.
#[derive(Clone, Debug, Serialize)]
pub struct DiffRow {
    /// The matching key: symbolic stack, module, `module!function`, size, or `heap #N`.
    pub key: String,
    /// The stack's frames (newer dump, or the older one for a stack that vanished).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<Vec<FrameView>>,
    /// With `--by function`: the function's module.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Before.
    pub before: Amount,
    /// After.
    pub after: Amount,
    /// After − before.
    pub delta: Change,
    /// UMDH's BackTrace id: the stack's record, marked when it comes from the older dump.
    #[serde(skip)]
    pub backtrace: String,
}

impl DiffRow {
    /// The row of `e`, its frames resolved with the symbolizer of the dump they come from.
    pub fn new(e: &DiffEntry, by: By, sym: (&Symbolizer, &Symbolizer)) -> Self {
        let sym = if e.stack_from_new { sym.1 } else { sym.0 };
        DiffRow {
            key: e.key.clone(),
            frames: e
                .stack
                .as_ref()
                .map(|s| FrameView::resolve_all(sym, &s.frames)),
            module: (by == By::Function)
                .then(|| e.key.split(['!', '+']).next().map(String::from))
                .flatten(),
            before: e.before,
            after: e.after,
            delta: Change::between(e.before, e.after),
            backtrace: e
                .stack
                .as_ref()
                .map(|s| {
                    let older = if e.stack_from_new {
                        ""
                    } else {
                        " (older dump)"
                    };
                    format!("{:#x}{older}", s.record)
                })
                .unwrap_or_default(),
        }
    }
}
