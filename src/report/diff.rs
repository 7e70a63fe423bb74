//! `heapdiag diff` as text (UMDH style for stacks, a table otherwise, then the address-usage
//! tables) and CSV.

use super::csv::{self, col, num, Column};
use super::format::{
    column, frame_lines, human, left_out, ranked, ranking_table, signed, signed_human, TableColumn,
};
use super::Render;
use crate::analysis::diff::UsageDelta;
use crate::view::diff::{DiffRow, DiffView};
use std::io::{self, Write};

impl Render for DiffView {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let t = &self.totals;
        writeln!(out, "What grew, by {}", self.by.name())?;
        writeln!(
            out,
            "Busy heap memory: before {} in {} blocks, after {} in {} blocks: {} ({:+} blocks)",
            human(t.before).trim(),
            t.before_blocks,
            human(t.after).trim(),
            t.after_blocks,
            signed_human(t.delta),
            t.delta_blocks
        )?;
        let stacks = |out: &mut dyn Write| stacks(out, &self.entries);
        ranked(out, &self.notes, self.by, stacks, |out| table(out, self))?;
        left_out(out, self.more, "more changes")?;
        writeln!(out, "\nTotal increase == {}", signed(t.delta))?;
        address(out, self)
    }

    fn csv(&self, out: &mut dyn Write) -> io::Result<()> {
        csv::table(out, COLUMNS, &self.entries)
    }
}

/// `key,before_count,before_bytes,after_count,after_bytes,delta_count,delta_bytes`.
const COLUMNS: &[Column<DiffRow>] = &[
    col("key", |e| e.key.clone()),
    num("before_count", |e| e.before.count),
    num("before_bytes", |e| e.before.bytes),
    num("after_count", |e| e.after.count),
    num("after_bytes", |e| e.after.bytes),
    col("delta_count", |e| e.delta.count.to_string()),
    col("delta_bytes", |e| e.delta.bytes.to_string()),
];

/// UMDH style: per stack its byte and count changes, then its frames.
fn stacks(out: &mut dyn Write, entries: &[DiffRow]) -> io::Result<()> {
    writeln!(
        out,
        "// + BYTES_DELTA (NEW_BYTES - OLD_BYTES) NEW_COUNT allocs BackTrace ID"
    )?;
    writeln!(
        out,
        "// + COUNT_DELTA (NEW_COUNT - OLD_COUNT) BackTrace ID allocations\n"
    )?;
    for e in entries {
        writeln!(
            out,
            "{} ({:#x} - {:#x}) {} allocs\tBackTrace {}",
            signed(e.delta.bytes),
            e.after.bytes,
            e.before.bytes,
            e.after.count,
            e.backtrace
        )?;
        writeln!(
            out,
            "{} ({} - {})\tBackTrace {} allocations",
            signed(e.delta.count),
            e.after.count,
            e.before.count,
            e.backtrace
        )?;
        frame_lines(out, &e.frames, "\t")?;
    }
    Ok(())
}

/// The table's columns: the change of bytes, bytes before and after, the change of blocks.
const TABLE: &[TableColumn<DiffRow>] = &[
    column("Change", 14, |e| signed(e.delta.bytes)),
    column("", 12, |e| format!("({})", signed_human(e.delta.bytes))),
    column("Before", 14, |e| format!("{:#x}", e.before.bytes)),
    column("After", 14, |e| format!("{:#x}", e.after.bytes)),
    column("Blocks", 9, |e| format!("{:+}", e.delta.count)),
];

/// One row per changed key.
fn table(out: &mut dyn Write, v: &DiffView) -> io::Result<()> {
    ranking_table(out, TABLE, v.by, &v.entries, |e| &e.key)
}

/// The address-usage categories side by side.
fn address(out: &mut dyn Write, v: &DiffView) -> io::Result<()> {
    writeln!(out, "\nAddress usage (the !address -summary categories):")?;
    writeln!(
        out,
        "{:<28} {:>18} {:>18} {:>14} {:>10}",
        "", "Before", "After", "Change", "Regions"
    )?;
    let a = &v.address;
    let tables: [(&str, &[UsageDelta]); 4] = [
        ("Committed memory by usage", &a.committed),
        ("Usage (reserved + committed)", &a.usage),
        ("Type", &a.types),
        ("State", &a.states),
    ];
    for (title, rows) in tables {
        writeln!(out, "--- {title}")?;
        for r in rows {
            usage_row(out, r)?;
        }
    }
    Ok(())
}

/// One usage, type or state: bytes before and after, the change, the change of regions.
fn usage_row(out: &mut dyn Write, r: &UsageDelta) -> io::Result<()> {
    writeln!(
        out,
        "{:<28} {:>18} {:>18} {:>14} {:>+10}",
        r.name,
        human(r.before.bytes).trim(),
        human(r.after.bytes).trim(),
        signed_human(r.delta.bytes),
        r.delta.count
    )
}
