//! Views of `heapdiag diff`: UMDH-style text, JSON, CSV.

use super::format::human;
use super::top::FrameJson;
use crate::analysis::diff::{AddressDelta, DiffEntry, UsageDelta};
use crate::analysis::top::By;
use crate::stacks::symbols::Symbolizer;
use serde::Serialize;
use std::fmt::Write;

/// Everything a diff view shows.
pub struct DiffView<'a> {
    /// What entries are keyed by.
    pub by: By,
    /// Busy bytes and blocks before and after.
    pub totals: ((u64, u64), (u64, u64)),
    /// Changed entries, growth first.
    pub entries: &'a [DiffEntry],
    /// Address-usage tables.
    pub address: &'a AddressDelta,
    /// Symbolizers of the older and the newer dump.
    pub sym: (&'a Symbolizer, &'a Symbolizer),
    /// Notes (why stacks are missing, different ntdll builds, PDBs refused).
    pub notes: &'a [String],
    /// At most this many entries.
    pub limit: usize,
}

fn signed(v: i128) -> String {
    if v < 0 {
        format!("-{:#x}", -v)
    } else {
        format!("+{v:#x}")
    }
}

fn signed_human(v: i128) -> String {
    let h = human(v.unsigned_abs() as u64);
    format!("{}{}", if v < 0 { "-" } else { "+" }, h.trim())
}

/// The text view.
pub fn diff_text(v: &DiffView<'_>) -> String {
    let mut out = String::new();
    let ((bb, bc), (ab, ac)) = v.totals;
    let delta = i128::from(ab) - i128::from(bb);
    let _ = writeln!(out, "What grew, by {}", v.by.name());
    let _ = writeln!(
        out,
        "Busy heap memory: before {} in {} blocks, after {} in {} blocks: {} ({:+} blocks)",
        human(bb).trim(),
        bc,
        human(ab).trim(),
        ac,
        signed_human(delta),
        i128::from(ac) - i128::from(bc)
    );
    for n in v.notes {
        let _ = writeln!(out, "Note: {n}");
    }
    out.push('\n');
    if v.by == By::Stack {
        let _ = writeln!(
            out,
            "// + BYTES_DELTA (NEW_BYTES - OLD_BYTES) NEW_COUNT allocs BackTrace ID"
        );
        let _ = writeln!(
            out,
            "// + COUNT_DELTA (NEW_COUNT - OLD_COUNT) BackTrace ID allocations\n"
        );
    } else {
        let _ = writeln!(
            out,
            "{:>14} {:>12} {:>14} {:>14} {:>9}  {}",
            "Change",
            "",
            "Before",
            "After",
            "Blocks",
            match v.by {
                By::Module => "Module",
                By::Function => "Function",
                By::Size => "Size",
                By::Heap => "Heap",
                By::Stack => "Stack",
            }
        );
    }
    for e in v.entries.iter().take(v.limit) {
        if v.by == By::Stack {
            let id = e
                .stack
                .as_ref()
                .map(|s| {
                    format!(
                        "{:#x}{}",
                        s.record,
                        if e.stack_from_new {
                            ""
                        } else {
                            " (older dump)"
                        }
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{} ({:#x} - {:#x}) {} allocs\tBackTrace {}",
                signed(e.delta_bytes()),
                e.after.bytes,
                e.before.bytes,
                e.after.count,
                id
            );
            let _ = writeln!(
                out,
                "{} ({} - {})\tBackTrace {} allocations",
                signed(e.delta_count()),
                e.after.count,
                e.before.count,
                id
            );
            if let Some(s) = &e.stack {
                let sym = if e.stack_from_new { v.sym.1 } else { v.sym.0 };
                for line in s.frames.iter().flat_map(|&f| sym.lines(f)) {
                    let _ = writeln!(out, "\t{line}");
                }
            }
            out.push('\n');
        } else {
            let _ = writeln!(
                out,
                "{:>14} {:>12} {:>14} {:>14} {:>+9}  {}",
                signed(e.delta_bytes()),
                format!("({})", signed_human(e.delta_bytes())),
                format!("{:#x}", e.before.bytes),
                format!("{:#x}", e.after.bytes),
                e.delta_count(),
                e.key
            );
        }
    }
    if v.entries.len() > v.limit {
        let _ = writeln!(
            out,
            "... {} more changes (--limit)",
            v.entries.len() - v.limit
        );
    }
    let _ = writeln!(out, "\nTotal increase == {}", signed(delta));
    let _ = writeln!(out, "\nAddress usage (the !address -summary categories):");
    let _ = writeln!(
        out,
        "{:<28} {:>18} {:>18} {:>14} {:>10}",
        "", "Before", "After", "Change", "Regions"
    );
    for (title, rows) in [
        ("Committed memory by usage", &v.address.committed),
        ("Usage (reserved + committed)", &v.address.usage),
        ("Type", &v.address.types),
        ("State", &v.address.states),
    ] {
        let _ = writeln!(out, "--- {title}");
        for r in rows {
            let d = i128::from(r.after.bytes) - i128::from(r.before.bytes);
            let _ = writeln!(
                out,
                "{:<28} {:>18} {:>18} {:>14} {:>+10}",
                r.name,
                human(r.before.bytes).trim(),
                human(r.after.bytes).trim(),
                signed_human(d),
                i128::from(r.after.count) - i128::from(r.before.count)
            );
        }
    }
    out
}

#[derive(Serialize)]
struct AmountJson {
    count: i128,
    bytes: i128,
}

#[derive(Serialize)]
struct EntryJson {
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    frames: Option<Vec<FrameJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    module: Option<String>,
    before: AmountJson,
    after: AmountJson,
    delta: AmountJson,
}

#[derive(Serialize)]
struct TotalsJson {
    before: u64,
    after: u64,
    delta: i128,
    before_blocks: u64,
    after_blocks: u64,
}

#[derive(Serialize)]
struct UsageJson {
    name: String,
    before: AmountJson,
    after: AmountJson,
    delta: AmountJson,
}

#[derive(Serialize)]
struct AddressJson {
    committed: Vec<UsageJson>,
    usage: Vec<UsageJson>,
    #[serde(rename = "type")]
    types: Vec<UsageJson>,
    state: Vec<UsageJson>,
}

/// `diff --json`.
#[derive(Serialize)]
pub struct DiffJson {
    by: &'static str,
    totals: TotalsJson,
    entries: Vec<EntryJson>,
    address: AddressJson,
    notes: Vec<String>,
}

fn amount(count: u64, bytes: u64) -> AmountJson {
    AmountJson {
        count: i128::from(count),
        bytes: i128::from(bytes),
    }
}

fn usage(rows: &[UsageDelta]) -> Vec<UsageJson> {
    rows.iter()
        .map(|r| UsageJson {
            name: r.name.clone(),
            before: amount(r.before.count, r.before.bytes),
            after: amount(r.after.count, r.after.bytes),
            delta: AmountJson {
                count: i128::from(r.after.count) - i128::from(r.before.count),
                bytes: i128::from(r.after.bytes) - i128::from(r.before.bytes),
            },
        })
        .collect()
}

impl DiffJson {
    /// Build the view.
    pub fn new(v: &DiffView<'_>) -> Self {
        let ((bb, bc), (ab, ac)) = v.totals;
        DiffJson {
            by: v.by.name(),
            totals: TotalsJson {
                before: bb,
                after: ab,
                delta: i128::from(ab) - i128::from(bb),
                before_blocks: bc,
                after_blocks: ac,
            },
            entries: v
                .entries
                .iter()
                .take(v.limit)
                .map(|e| EntryJson {
                    key: e.key.clone(),
                    frames: e.stack.as_ref().map(|s| {
                        let sym = if e.stack_from_new { v.sym.1 } else { v.sym.0 };
                        s.frames.iter().map(|&f| FrameJson::new(sym, f)).collect()
                    }),
                    module: (v.by == By::Function)
                        .then(|| e.key.split(['!', '+']).next().map(String::from))
                        .flatten(),
                    before: amount(e.before.count, e.before.bytes),
                    after: amount(e.after.count, e.after.bytes),
                    delta: AmountJson {
                        count: e.delta_count(),
                        bytes: e.delta_bytes(),
                    },
                })
                .collect(),
            address: AddressJson {
                committed: usage(&v.address.committed),
                usage: usage(&v.address.usage),
                types: usage(&v.address.types),
                state: usage(&v.address.states),
            },
            notes: v.notes.to_vec(),
        }
    }
}

/// CSV rows `key,before_count,before_bytes,after_count,after_bytes,delta_count,delta_bytes`.
pub fn diff_csv(v: &DiffView<'_>) -> String {
    let mut out = String::from(
        "key,before_count,before_bytes,after_count,after_bytes,delta_count,delta_bytes\n",
    );
    for e in v.entries.iter().take(v.limit) {
        let key = if e.key.contains([',', '"']) {
            format!("\"{}\"", e.key.replace('"', "\"\""))
        } else {
            e.key.clone()
        };
        let _ = writeln!(
            out,
            "{key},{},{},{},{},{},{}",
            e.before.count,
            e.before.bytes,
            e.after.count,
            e.after.bytes,
            e.delta_count(),
            e.delta_bytes()
        );
    }
    out
}
