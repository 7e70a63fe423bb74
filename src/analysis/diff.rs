//! What grew between two dumps of the same program (`heapdiag diff`): outstanding memory by call
//! stack, module, function, size or heap, and the address-usage tables.
//!
//! Stacks are matched by their symbolic frames (`module+offset`, or `module!function+offset` when
//! symbols are loaded), never by record address, so the two dumps may come from two runs. Heaps are
//! matched by their place in the process's heap lists (world, then ProcessHeaps order).

use super::top::{By, Entry, Top};
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

/// The largest growth of one entry (0 when nothing grew).
pub fn max_growth(entries: &[DiffEntry]) -> i128 {
    entries.first().map_or(0, |e| e.delta_bytes().max(0))
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
#[derive(Clone, Debug)]
pub struct SideEntry {
    /// Busy blocks.
    pub count: u64,
    /// Requested bytes.
    pub bytes: u64,
    /// The stack (for `By::Stack`), as recorded in this dump.
    pub stack: Option<Stack>,
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
    /// The matching key: symbolic stack, module, `module!function`, size, or `heap #N`.
    pub key: String,
    /// Before.
    pub before: Amount,
    /// After.
    pub after: Amount,
    /// The stack, from the newer dump (or the older one for a stack that vanished).
    pub stack: Option<Stack>,
    /// Whether `stack` comes from the newer dump.
    pub stack_from_new: bool,
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
}

/// The symbolic key of a stack: its frames as `module+offset` / `module!function+offset` joined,
/// so that the same code path matches across two runs.
pub fn stack_key(sym: &Symbolizer, s: &Stack) -> String {
    s.frames
        .iter()
        .map(|&a| {
            let f = sym.frame(a);
            match (f.module, &f.function) {
                (Some(m), Some((name, off))) => format!(
                    "{}!{}+{:#x}",
                    sym.modules().get(m).name.to_ascii_lowercase(),
                    name,
                    off
                ),
                (Some(m), None) => format!(
                    "{}+{:#x}",
                    sym.modules().get(m).name.to_ascii_lowercase(),
                    f.offset
                ),
                (None, _) => format!("?{a:#x}"),
            }
        })
        .collect::<Vec<_>>()
        .join(" < ")
}

/// Re-key one side's ranking for matching: stacks by their symbolic frames, heaps by position.
pub fn side(top: &Top, sym: &Symbolizer, heap_order: &[u64]) -> HashMap<String, SideEntry> {
    let mut out: HashMap<String, SideEntry> = HashMap::new();
    for Entry {
        key,
        count,
        bytes,
        stack,
        ..
    } in &top.entries
    {
        let k = match (top.by, stack) {
            (By::Stack, Some(s)) => stack_key(sym, s),
            (By::Heap, _) => {
                let addr = u64::from_str_radix(key.trim_start_matches("0x"), 16).unwrap_or(0);
                match heap_order.iter().position(|&h| h == addr) {
                    Some(i) => format!("heap #{i}"),
                    None => key.clone(),
                }
            }
            _ => key.clone(),
        };
        let e = out.entry(k).or_insert(SideEntry {
            count: 0,
            bytes: 0,
            stack: stack.clone(),
        });
        e.count += count;
        e.bytes += bytes;
    }
    out
}

/// Match two sides: every key of either, growth first (most bytes), unchanged keys left out,
/// shrinking last.
pub fn compare(
    old: HashMap<String, SideEntry>,
    mut new: HashMap<String, SideEntry>,
) -> Vec<DiffEntry> {
    let mut out = Vec::new();
    for (key, o) in old {
        let n = new.remove(&key);
        let (after, stack, from_new) = match n {
            Some(n) => (
                Amount {
                    count: n.count,
                    bytes: n.bytes,
                },
                n.stack.or(o.stack),
                true,
            ),
            None => (Amount::default(), o.stack, false),
        };
        out.push(DiffEntry {
            key,
            before: Amount {
                count: o.count,
                bytes: o.bytes,
            },
            after,
            stack,
            stack_from_new: from_new,
        });
    }
    for (key, n) in new {
        out.push(DiffEntry {
            key,
            before: Amount::default(),
            after: Amount {
                count: n.count,
                bytes: n.bytes,
            },
            stack: n.stack,
            stack_from_new: true,
        });
    }
    out.retain(|e| e.delta_bytes() != 0 || e.delta_count() != 0);
    out.sort_by(|a, b| {
        b.delta_bytes()
            .cmp(&a.delta_bytes())
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
            stack: None,
        }
    }

    #[test]
    fn growth_first_unchanged_dropped_shrink_last() {
        let old: HashMap<String, SideEntry> = [
            ("leak".to_string(), e(1, 100)),
            ("same".to_string(), e(2, 50)),
            ("shrink".to_string(), e(5, 500)),
            ("gone".to_string(), e(1, 10)),
        ]
        .into_iter()
        .collect();
        let new: HashMap<String, SideEntry> = [
            ("leak".to_string(), e(9, 900)),
            ("same".to_string(), e(2, 50)),
            ("shrink".to_string(), e(1, 100)),
            ("new".to_string(), e(3, 30)),
        ]
        .into_iter()
        .collect();
        let d = compare(old, new);
        let keys: Vec<&str> = d.iter().map(|x| x.key.as_str()).collect();
        assert_eq!(keys, ["leak", "new", "gone", "shrink"]);
        assert_eq!(d[0].delta_bytes(), 800);
        assert_eq!(d[3].delta_count(), -4);
    }
}
