//! What grew between two dumps of the same program (`heapdiag diff`): outstanding memory by call
//! stack, module, function, size or heap, and the address-usage tables.
//!
//! Stacks are matched by their symbolic frames (`module+offset`, or `module!function+offset` when
//! symbols are loaded), never by record address, so the two dumps may come from two runs. Heaps are
//! matched by their place in the process's heap lists (world, then ProcessHeaps order).

use super::top::{By, Entry, Sort, Top, NO_STACK};
use crate::regions::summary::{AddressSummary, Row};
use crate::stacks::symbols::Symbolizer;
use crate::stacks::Stack;
use serde::Serialize;
use std::collections::HashMap;

/// What decides whether two dumps can be compared, and what the comparison should say about them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// `x86`, `x64`, … (SystemInfo).
    pub arch: Option<String>,
    /// The main executable's file name, lower-case.
    pub image: Option<String>,
    /// The process id (MiscInfo).
    pub process_id: Option<u32>,
    /// ntdll's file version.
    pub ntdll: Option<String>,
}

/// Two dumps can be compared when they are of the same architecture and the same program (two
/// runs are fine); the error says why not.
pub fn comparable(old: &Identity, new: &Identity) -> Result<(), String> {
    let unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    if old.arch != new.arch {
        return Err(format!(
            "the dumps are of different architectures ({} and {}); compare dumps of the same program",
            unknown(&old.arch),
            unknown(&new.arch)
        ));
    }
    if old.image != new.image {
        return Err(format!(
            "the dumps are of different programs ({} and {}); compare two dumps of the same program",
            unknown(&old.image),
            unknown(&new.image)
        ));
    }
    Ok(())
}

/// What a comparison should say about the two dumps: two runs, two ntdll builds.
pub fn identity_notes(old: &Identity, new: &Identity) -> Vec<String> {
    let mut notes = Vec::new();
    if old.process_id != new.process_id {
        let pid = |p: Option<u32>| p.map_or("?".into(), |p| p.to_string());
        notes.push(format!(
            "the dumps come from two runs (process ids {} and {}): stacks are matched by module and offset",
            pid(old.process_id),
            pid(new.process_id)
        ));
    }
    if old.ntdll != new.ntdll {
        let v = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
        notes.push(format!(
            "ntdll differs ({} and {}): its frames may not match across the dumps",
            v(&old.ntdll),
            v(&new.ntdll)
        ));
    }
    notes
}

/// One of the two dumps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The older dump.
    Older,
    /// The newer dump.
    Newer,
}

impl Side {
    /// `older`, `newer`.
    pub fn name(self) -> &'static str {
        match self {
            Side::Older => "older",
            Side::Newer => "newer",
        }
    }
}

/// The key a diff can use: keys that need stacks fall back to size when a dump has none (the
/// side is the one without, the older one when neither has them).
pub fn effective_key(by: By, old_traced: bool, new_traced: bool) -> (By, Option<Side>) {
    let needs_stacks = matches!(by, By::Stack | By::Module | By::Function);
    match (needs_stacks, old_traced, new_traced) {
        (true, false, _) => (By::Size, Some(Side::Older)),
        (true, true, false) => (By::Size, Some(Side::Newer)),
        _ => (by, None),
    }
}

/// The largest growth in bytes of one entry (0 when nothing grew), whatever their order.
pub fn max_growth(entries: &[DiffEntry]) -> i128 {
    entries
        .iter()
        .map(DiffEntry::delta_bytes)
        .max()
        .unwrap_or(0)
        .max(0)
}

/// The CI gate (`--fail-over LIMIT`, `--per-stack`): why it trips, or `None`.
pub fn gate(limit: u64, per_stack: bool, growth: i128, max_stack_growth: i128) -> Option<String> {
    let limit_i = i128::from(limit);
    if per_stack && max_stack_growth > limit_i {
        Some(format!(
            "a call stack grew by {max_stack_growth} bytes, over --fail-over {limit}"
        ))
    } else if !per_stack && growth > limit_i {
        Some(format!(
            "busy heap memory grew by {growth} bytes, over --fail-over {limit}"
        ))
    } else {
        None
    }
}

/// One side's entry, re-keyed for matching.
#[derive(Clone, Debug, Default)]
pub struct SideEntry {
    /// The key as this dump's views show it: a stack's frames as they read, joined with ` < `; a
    /// heap's address; else the ranking's key.
    pub key: String,
    /// Busy blocks.
    pub count: u64,
    /// Requested bytes.
    pub bytes: u64,
    /// The stack (for `By::Stack`), as recorded in this dump.
    pub stack: Option<Stack>,
    /// The stack's allocator frame.
    pub allocator: Option<u64>,
    /// The heap's address (for `By::Heap`).
    pub heap: Option<u64>,
}

/// A count and a byte total.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Amount {
    /// Blocks (or regions).
    pub count: u64,
    /// Bytes.
    pub bytes: u64,
}

/// The change of one key.
#[derive(Clone, Debug)]
pub struct DiffEntry {
    /// The key as the newer dump shows it (the older one for a key that vanished): a stack's
    /// frames joined with ` < `, a module, `module!function`, a size, or a heap's address.
    pub key: String,
    /// Before.
    pub before: Amount,
    /// After.
    pub after: Amount,
    /// The stack, from the newer dump (or the older one for a stack that vanished).
    pub stack: Option<Stack>,
    /// Whether `stack` (and `allocator`) come from the newer dump.
    pub stack_from_new: bool,
    /// The stack's allocator frame.
    pub allocator: Option<u64>,
    /// The heap's address in each dump (for `By::Heap`).
    pub heaps: (Option<u64>, Option<u64>),
}

/// A change of a count and a byte total: after − before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Blocks (or regions).
    pub count: i128,
    /// Bytes.
    pub bytes: i128,
}

impl Change {
    /// `after − before`.
    pub fn between(before: Amount, after: Amount) -> Self {
        Change {
            count: i128::from(after.count) - i128::from(before.count),
            bytes: i128::from(after.bytes) - i128::from(before.bytes),
        }
    }
}

impl DiffEntry {
    /// after − before, bytes.
    pub fn delta_bytes(&self) -> i128 {
        i128::from(self.after.bytes) - i128::from(self.before.bytes)
    }

    /// after − before, blocks.
    pub fn delta_count(&self) -> i128 {
        i128::from(self.after.count) - i128::from(self.before.count)
    }

    /// The relative growth of bytes: after ÷ before (infinite for a key new in the newer dump).
    pub fn growth(&self) -> f64 {
        if self.before.bytes == 0 {
            if self.after.bytes == 0 {
                1.0
            } else {
                f64::INFINITY
            }
        } else {
            self.after.bytes as f64 / self.before.bytes as f64
        }
    }

    /// Whether this is the bucket of blocks without a stack.
    pub fn no_stack(&self) -> bool {
        self.key == NO_STACK
    }
}

/// The text of a stack as the views show it: its frames' text ([`Symbolizer::display`]) joined
/// with ` < `, innermost first.
pub fn stack_key(sym: &Symbolizer, s: &Stack) -> String {
    s.frames
        .iter()
        .map(|&a| sym.display(a))
        .collect::<Vec<_>>()
        .join(" < ")
}

/// Re-key one side's ranking for matching, by a key that is the same for the same thing in two
/// runs: stacks by their frames' text, heaps by their place in the heap lists (`heap_order`), all
/// compared without regard to case (module names differ in case between dumps).
pub fn side(top: &Top, sym: &Symbolizer, heap_order: &[u64]) -> HashMap<String, SideEntry> {
    let mut out: HashMap<String, SideEntry> = HashMap::new();
    for Entry {
        key,
        count,
        bytes,
        stack,
        allocator,
        ..
    } in &top.entries
    {
        let (shown, matched, heap) = match (top.by, stack) {
            (By::Stack, Some(s)) => {
                let k = stack_key(sym, s);
                (k.clone(), k, None)
            }
            (By::Heap, _) => {
                let addr = u64::from_str_radix(key.trim_start_matches("0x"), 16).unwrap_or(0);
                let matched = match heap_order.iter().position(|&h| h == addr) {
                    Some(i) => format!("heap #{i}"),
                    None => key.clone(),
                };
                (key.clone(), matched, Some(addr))
            }
            _ => (key.clone(), key.clone(), None),
        };
        let e = out
            .entry(matched.to_lowercase())
            .or_insert_with(|| SideEntry {
                key: shown,
                stack: stack.clone(),
                allocator: *allocator,
                heap,
                ..SideEntry::default()
            });
        e.count += count;
        e.bytes += bytes;
    }
    out
}

/// Match two sides: every key of either, unchanged keys left out, in `sort` order (growth first,
/// shrinking last).
pub fn compare(
    old: HashMap<String, SideEntry>,
    mut new: HashMap<String, SideEntry>,
    sort: Sort,
) -> Vec<DiffEntry> {
    let amount = |e: &SideEntry| Amount {
        count: e.count,
        bytes: e.bytes,
    };
    let mut out = Vec::new();
    for (k, o) in old {
        let n = new.remove(&k);
        let from_new = n.is_some();
        let n = n.unwrap_or_default();
        out.push(DiffEntry {
            key: if from_new {
                n.key.clone()
            } else {
                o.key.clone()
            },
            before: amount(&o),
            after: amount(&n),
            heaps: (o.heap, n.heap),
            stack_from_new: from_new && n.stack.is_some(),
            allocator: if from_new && n.stack.is_some() {
                n.allocator
            } else {
                o.allocator
            },
            stack: n.stack.or(o.stack),
        });
    }
    for (_, n) in new {
        out.push(DiffEntry {
            key: n.key.clone(),
            before: Amount::default(),
            after: amount(&n),
            heaps: (None, n.heap),
            stack_from_new: true,
            allocator: n.allocator,
            stack: n.stack,
        });
    }
    out.retain(|e| e.delta_bytes() != 0 || e.delta_count() != 0);
    out.sort_by(|a, b| {
        let first = match sort {
            Sort::Bytes => b.delta_bytes().cmp(&a.delta_bytes()),
            Sort::Count => b.delta_count().cmp(&a.delta_count()),
            Sort::Growth => b.growth().total_cmp(&a.growth()),
        };
        first
            .then(b.delta_bytes().cmp(&a.delta_bytes()))
            .then(b.delta_count().cmp(&a.delta_count()))
            .then(a.key.cmp(&b.key))
    });
    out
}

/// One row of the address-usage diff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UsageDelta {
    /// Usage, type or state name.
    pub name: String,
    /// Before: regions and bytes.
    pub before: Amount,
    /// After.
    pub after: Amount,
    /// After − before.
    pub delta: Change,
}

/// The address-usage tables of a diff, each largest growth first.
#[derive(Clone, Debug, Serialize)]
pub struct AddressDelta {
    /// Committed bytes by usage: where committed memory (what Private Bytes counts) grew.
    pub committed: Vec<UsageDelta>,
    /// All busy bytes (reserved + committed) by usage, as `!address -summary`'s Usage table.
    pub usage: Vec<UsageDelta>,
    /// By type.
    #[serde(rename = "type")]
    pub types: Vec<UsageDelta>,
    /// By state.
    #[serde(rename = "state")]
    pub states: Vec<UsageDelta>,
}

/// The address-usage diff of two summaries.
pub fn address_delta(old: &AddressSummary, new: &AddressSummary) -> AddressDelta {
    let amount = |r: &Row| Amount {
        count: r.regions,
        bytes: r.bytes,
    };
    let table = |a: &[Row], b: &[Row]| {
        let mut m: HashMap<&str, (Amount, Amount)> = HashMap::new();
        for r in a {
            m.entry(&r.name).or_default().0 = amount(r);
        }
        for r in b {
            m.entry(&r.name).or_default().1 = amount(r);
        }
        let mut v: Vec<UsageDelta> = m
            .into_iter()
            .map(|(name, (before, after))| UsageDelta {
                name: name.to_string(),
                before,
                after,
                delta: Change::between(before, after),
            })
            .collect();
        v.sort_by(|x, y| y.delta.bytes.cmp(&x.delta.bytes).then(x.name.cmp(&y.name)));
        v
    };
    AddressDelta {
        committed: table(&old.committed, &new.committed),
        usage: table(&old.usage, &new.usage),
        types: table(&old.types, &new.types),
        states: table(&old.states, &new.states),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(count: u64, bytes: u64) -> SideEntry {
        SideEntry {
            count,
            bytes,
            ..SideEntry::default()
        }
    }

    fn keyed(v: Vec<(&str, SideEntry)>) -> HashMap<String, SideEntry> {
        v.into_iter()
            .map(|(k, e)| {
                (
                    k.to_string(),
                    SideEntry {
                        key: k.to_string(),
                        ..e
                    },
                )
            })
            .collect()
    }

    #[test]
    fn growth_first_unchanged_dropped_shrink_last() {
        let old = || {
            keyed(vec![
                ("leak", e(1, 100)),
                ("same", e(2, 50)),
                ("shrink", e(5, 500)),
                ("gone", e(1, 10)),
                ("many", e(10, 100)),
            ])
        };
        let new = || {
            keyed(vec![
                ("leak", e(9, 900)),
                ("same", e(2, 50)),
                ("shrink", e(1, 100)),
                ("new", e(3, 30)),
                ("many", e(30, 300)),
            ])
        };
        let keys = |sort| {
            compare(old(), new(), sort)
                .iter()
                .map(|x| x.key.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(Sort::Bytes), ["leak", "many", "new", "gone", "shrink"]);
        assert_eq!(keys(Sort::Count), ["many", "leak", "new", "gone", "shrink"]);
        assert_eq!(
            keys(Sort::Growth),
            ["new", "leak", "many", "shrink", "gone"]
        );
        let d = compare(old(), new(), Sort::Bytes);
        assert_eq!(d[0].delta_bytes(), 800);
        assert_eq!(d[4].delta_count(), -4);
    }
}
