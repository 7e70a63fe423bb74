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
use std::collections::HashMap;

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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageDelta {
    /// Usage, type or state name.
    pub name: String,
    /// Before: regions and bytes.
    pub before: Amount,
    /// After.
    pub after: Amount,
}

/// The address-usage tables of a diff, each largest growth first.
#[derive(Clone, Debug)]
pub struct AddressDelta {
    /// Committed bytes by usage: where committed memory (what Private Bytes counts) grew.
    pub committed: Vec<UsageDelta>,
    /// All busy bytes (reserved + committed) by usage, as `!address -summary`'s Usage table.
    pub usage: Vec<UsageDelta>,
    /// By type.
    pub types: Vec<UsageDelta>,
    /// By state.
    pub states: Vec<UsageDelta>,
}

/// The address-usage diff of two summaries.
pub fn address_delta(old: &AddressSummary, new: &AddressSummary) -> AddressDelta {
    let table = |a: &[Row], b: &[Row]| {
        let mut m: HashMap<String, UsageDelta> = HashMap::new();
        for r in a {
            m.entry(r.name.clone())
                .or_insert_with(|| UsageDelta {
                    name: r.name.clone(),
                    before: Amount::default(),
                    after: Amount::default(),
                })
                .before = Amount {
                count: r.regions,
                bytes: r.bytes,
            };
        }
        for r in b {
            m.entry(r.name.clone())
                .or_insert_with(|| UsageDelta {
                    name: r.name.clone(),
                    before: Amount::default(),
                    after: Amount::default(),
                })
                .after = Amount {
                count: r.regions,
                bytes: r.bytes,
            };
        }
        let mut v: Vec<UsageDelta> = m.into_values().collect();
        v.sort_by(|x, y| {
            let dx = i128::from(x.after.bytes) - i128::from(x.before.bytes);
            let dy = i128::from(y.after.bytes) - i128::from(y.before.bytes);
            dy.cmp(&dx).then(x.name.cmp(&y.name))
        });
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
