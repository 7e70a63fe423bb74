//! `heapdiag diff` as text (each stack with its frames, a table otherwise, then the address-usage
//! tables; with `--windbg` the stacks as UMDH compares two logs) and CSV.

use super::csv::{self, col, num, Column};
use super::format::{
    blocks_and_bytes, column, frame_lines, left_out, paragraph, ranked, ranking_table,
    signed_blocks, signed_count, signed_size, size, size_cell, umdh_change, TableColumn,
};
use super::top::{sizes_text, umdh_id};
use super::{Render, Style};
use crate::analysis::diff::UsageDelta;
use crate::analysis::top::{By, Sort};
use crate::value::plural;
use crate::view::diff::{DiffRow, DiffView};
use crate::view::ranking::StandsOut;
use std::io::{self, Write};

impl Render for DiffView {
    fn text(&self, out: &mut dyn Write, style: &Style) -> io::Result<()> {
        let t = &self.totals;
        writeln!(
            out,
            "What grew, by {}, {}",
            self.by.name(),
            sort_words(self.sort)
        )?;
        paragraph(
            out,
            style,
            "Busy heap memory: ",
            &format!(
                "before {} in {}, after {} in {}: {} ({})",
                size(t.before),
                plural(t.before_blocks, "block"),
                size(t.after),
                plural(t.after_blocks, "block"),
                signed_size(t.delta),
                signed_blocks(t.delta_blocks)
            ),
        )?;
        let stands_out = self.stands_out.as_ref().map(stands_out_text);
        let stacks = |out: &mut dyn Write| stacks(out, &self.entries, style);
        ranked(
            out,
            style,
            (&self.notes, stands_out.as_deref()),
            self.by,
            stacks,
            |out| table(out, self),
        )?;
        left_out(out, self.more, "more changes")?;
        if style.windbg {
            let sign = if t.delta < 0 { "-" } else { "" };
            writeln!(
                out,
                "\nTotal increase == {sign}{:x}",
                t.delta.unsigned_abs()
            )?;
        } else {
            writeln!(
                out,
                "\nTotal increase: {} ({})",
                signed_size(t.delta),
                signed_blocks(t.delta_blocks)
            )?;
        }
        address(out, self)
    }

    fn csv(&self, out: &mut dyn Write, _style: &Style) -> io::Result<()> {
        csv::table(out, COLUMNS, &self.entries)
    }
}

/// `most growth in bytes first`, …
fn sort_words(sort: Sort) -> &'static str {
    match sort {
        Sort::Growth => "largest relative growth first",
        Sort::Count => "most growth in blocks first",
        Sort::Bytes => "most growth in bytes first",
    }
}

/// `X grew the most in blocks (…); Y the most in bytes (…)`, or one entry for both.
fn stands_out_text(s: &StandsOut) -> String {
    let (b, y) = (&s.most_blocks, &s.most_bytes);
    let change = |h: &crate::view::ranking::Highlight| {
        format!("{}, {}", signed_blocks(h.count), signed_size(h.bytes))
    };
    if b.key == y.key {
        format!(
            "{} grew the most, in blocks and in bytes ({})",
            b.name,
            change(b)
        )
    } else {
        format!(
            "{} grew the most in blocks ({}); {} the most in bytes ({})",
            b.name,
            change(b),
            y.name,
            change(y)
        )
    }
}

/// `key,before_count,before_bytes,after_count,after_bytes,delta_count,delta_bytes,no_stack`.
const COLUMNS: &[Column<DiffRow>] = &[
    col("key", |e| e.key.clone()),
    num("before_count", |e| e.before.count),
    num("before_bytes", |e| e.before.bytes),
    num("after_count", |e| e.after.count),
    num("after_bytes", |e| e.after.bytes),
    col("delta_count", |e| e.delta.count.to_string()),
    col("delta_bytes", |e| e.delta.bytes.to_string()),
    col("no_stack", |e| e.no_stack.to_string()),
];

/// Each stack: its BackTrace, then the change of its blocks and bytes, both dumps' figures and
/// its most frequent sizes now, then its frames; with `--windbg`, UMDH's lines.
fn stacks(out: &mut dyn Write, entries: &[DiffRow], style: &Style) -> io::Result<()> {
    if style.windbg {
        return umdh_stacks(out, entries);
    }
    for e in entries {
        if e.no_stack {
            writeln!(out, "{}", e.key)?;
        } else {
            writeln!(out, "BackTrace {}", e.backtrace)?;
        }
        let sizes = if e.sizes.is_empty() {
            String::new()
        } else {
            format!(": {}", sizes_text(&e.sizes))
        };
        let line = format!(
            "{}, {} (before {}; now {}{sizes})",
            signed_blocks(e.delta.count),
            signed_size(e.delta.bytes),
            blocks_and_bytes(e.before.count, e.before.bytes),
            blocks_and_bytes(e.after.count, e.after.bytes)
        );
        paragraph(out, style, "    ", &line)?;
        frame_lines(out, &e.frames, "        ")?;
    }
    Ok(())
}

/// UMDH's compare lines, in hex: per stack its byte and count changes, then its frames.
fn umdh_stacks(out: &mut dyn Write, entries: &[DiffRow]) -> io::Result<()> {
    writeln!(
        out,
        "// + BYTES_DELTA (NEW_BYTES - OLD_BYTES) NEW_COUNT allocs BackTrace ID"
    )?;
    writeln!(
        out,
        "// + COUNT_DELTA (NEW_COUNT - OLD_COUNT) BackTrace ID allocations\n"
    )?;
    for e in entries {
        let id = umdh_id(&e.backtrace);
        writeln!(
            out,
            "{} {:x} allocs\tBackTrace{id}",
            umdh_change(e.delta.bytes, e.after.bytes, e.before.bytes),
            e.after.count
        )?;
        writeln!(
            out,
            "{}\tBackTrace{id}\tallocations\n",
            umdh_change(e.delta.count, e.after.count, e.before.count)
        )?;
        frame_lines(out, &e.frames, "\t")?;
    }
    Ok(())
}

/// The table's columns: the change of bytes and of blocks, bytes before and after.
const TABLE: &[TableColumn<DiffRow>] = &[
    column("Change", 12, |e| size_cell(&signed_size(e.delta.bytes), 12)),
    column("Blocks", 8, |e| signed_count(e.delta.count)),
    column("Before", 11, |e| size_cell(&size(e.before.bytes), 11)),
    column("After", 11, |e| size_cell(&size(e.after.bytes), 11)),
];

/// One row per changed key (a size as `422 B`, a heap as its address).
fn table(out: &mut dyn Write, v: &DiffView) -> io::Result<()> {
    ranking_table(out, TABLE, v.by, &v.entries, |e| match (v.by, e.size) {
        (By::Size, Some(s)) => format!("{s} B"),
        _ => e.key.clone(),
    })
}

/// The address-usage categories side by side.
fn address(out: &mut dyn Write, v: &DiffView) -> io::Result<()> {
    writeln!(out, "\nAddress usage (the !address -summary categories):")?;
    writeln!(
        out,
        "{:<28} {:>12} {:>12} {:>12} {:>8}",
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
        "{:<28} {:>12} {:>12} {:>12} {:>8}",
        r.name,
        size_cell(&size(r.before.bytes), 12),
        size_cell(&size(r.after.bytes), 12),
        size_cell(&signed_size(r.delta.bytes), 12),
        signed_count(r.delta.count)
    )
}
