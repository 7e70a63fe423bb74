//! The `diff` view: what grew between two dumps, by stack, module, function, size or heap, what
//! stands out, and the address-usage tables side by side. Serialized, `diff --json`.

use crate::analysis::diff::{AddressDelta, Amount, Change, DiffEntry};
use crate::analysis::top::{By, Sort};
use crate::stacks::symbols::Symbolizer;
use crate::value::Hex;
use crate::view::frame::FrameView;
use crate::view::ranking::{entry_name, Highlight, SizeCount, StandsOut};
use serde::Serialize;

/// Everything `diff` prints.
#[derive(Clone, Debug, Serialize)]
pub struct DiffView {
    /// What entries are keyed by (after any fallback).
    pub by: By,
    /// How the entries are ordered.
    pub sort: Sort,
    /// Busy heap bytes and blocks of each dump.
    pub totals: Totals,
    /// Changed keys, in `sort` order, at most the limit.
    pub entries: Vec<DiffRow>,
    /// The entry that grew the most in blocks and the one that grew the most in bytes (of all,
    /// not only those within the limit); none when nothing grew.
    pub stands_out: Option<StandsOut>,
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

/// A heap's address in each dump (`--by heap`: heaps are matched by their place in the heap
/// lists).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct HeapPair {
    /// In the older dump, if there.
    pub before: Option<Hex>,
    /// In the newer dump, if there.
    pub after: Option<Hex>,
}

/// One changed key.
#[derive(Clone, Debug, Serialize)]
pub struct DiffRow {
    /// The key as the newer dump shows it (the older one for a key that vanished): a stack's
    /// frames as they read joined with ` < `, a module, `module!function`, a size, or a heap's
    /// address.
    pub key: String,
    /// Whether this is the bucket of blocks without a stack (`(no stack)`).
    pub no_stack: bool,
    /// The stack's frames (newer dump, or the older one for a stack that vanished).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<Vec<FrameView>>,
    /// The stack's allocator frame, as the frames read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocator: Option<String>,
    /// The stack's most frequent sizes in the newer dump, most blocks first (the rows shown).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sizes: Vec<SizeCount>,
    /// With `--by function`: the function's module (its file name, as `--by module` names it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// With `--by heap`: the heap's address in each dump.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heaps: Option<HeapPair>,
    /// With `--by size`: the size, as a number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
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
    /// The row of `e`, its frames resolved (when `frames`) with the symbolizer of the dump they
    /// come from.
    pub fn new(e: &DiffEntry, by: By, sym: (&Symbolizer, &Symbolizer), frames: bool) -> Self {
        let sym = if e.stack_from_new { sym.1 } else { sym.0 };
        let module = (by == By::Function)
            .then(|| function_module(e, sym))
            .flatten();
        DiffRow {
            key: e.key.clone(),
            no_stack: e.no_stack(),
            frames: e
                .stack
                .as_ref()
                .filter(|_| frames)
                .map(|s| FrameView::resolve_all(sym, &s.frames)),
            allocator: e.allocator.map(|a| sym.display(a)),
            sizes: Vec::new(),
            module,
            heaps: (by == By::Heap).then_some(HeapPair {
                before: e.heaps.0.map(Hex),
                after: e.heaps.1.map(Hex),
            }),
            size: (by == By::Size)
                .then(|| u64::from_str_radix(e.key.trim_start_matches("0x"), 16).ok())
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
                .unwrap_or_else(|| e.key.clone()),
        }
    }

    /// How the text names it.
    pub fn name(&self, by: By) -> String {
        let key = if by == By::Stack {
            &self.backtrace
        } else {
            &self.key
        };
        entry_name(by, key, self.allocator.as_deref(), self.size)
    }
}

/// The file name of the module of a `--by function` key (`module!function`, or the call site
/// `module+0x…`), as `--by module` names modules.
fn function_module(e: &DiffEntry, sym: &Symbolizer) -> Option<String> {
    let short = e.key.split(['!', '+']).next()?;
    let modules = sym.modules();
    (0..modules.len())
        .map(|i| modules.get(i))
        .find(|m| m.short.eq_ignore_ascii_case(short))
        .map(|m| m.name.clone())
        .or_else(|| Some(short.to_string()))
}

/// What stands out among `rows`: the most growth in blocks and in bytes.
pub fn stands_out(rows: &[DiffRow], by: By) -> Option<StandsOut> {
    StandsOut::pick(rows.iter().map(|r| Highlight {
        key: r.key.clone(),
        count: r.delta.count,
        bytes: r.delta.bytes,
        name: r.name(by),
    }))
}
