//! `heapdiag top` as text (each stack with its frames for `--by stack`, a table otherwise; with
//! `--windbg` the stacks as UMDH prints a single log) and CSV.

use super::csv::{self, col, num, Column};
use super::format::{
    blocks_and_bytes, blocks_of, column, frame_lines, left_out, paragraph, ranked, ranking_table,
    size, size_cell, suspects, umdh_change, TableColumn,
};
use super::{Render, Style};
use crate::analysis::top::{By, Sort};
use crate::value::plural;
use crate::view::frame::FrameView;
use crate::view::ranking::{SizeCount, StandsOut};
use crate::view::top::{TopEntry, TopView};
use std::io::{self, Write};

impl Render for TopView {
    fn text(&self, out: &mut dyn Write, style: &Style) -> io::Result<()> {
        writeln!(
            out,
            "Outstanding busy memory by {}, {}",
            self.by.name(),
            order_words(self.sort)
        )?;
        paragraph(
            out,
            style,
            "Busy: ",
            &format!(
                "{}; with an allocation stack: {} ({:.1}%), {} ({:.1}%); {}",
                blocks_and_bytes(self.total_busy_blocks, self.total_busy_bytes),
                plural(self.traced_blocks, "block"),
                self.pct_traced_blocks,
                size(self.traced_bytes),
                self.pct_traced_bytes,
                plural(self.stacks, "distinct stack")
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
        left_out(out, self.more, "more")?;
        suspects(
            out,
            style,
            &self.suspects,
            "; heapdiag leaks adds unreachable blocks",
        )
    }

    fn csv(&self, out: &mut dyn Write, _style: &Style) -> io::Result<()> {
        csv::table(out, COLUMNS, &self.entries)
    }
}

/// `most bytes first`, `most blocks first`.
pub fn order_words(sort: Sort) -> &'static str {
    match sort {
        Sort::Count => "most blocks first",
        _ => "most bytes first",
    }
}

/// `X holds the most blocks (…); Y the most bytes (…)`, or one entry holding both.
fn stands_out_text(s: &StandsOut) -> String {
    let (b, y) = (&s.most_blocks, &s.most_bytes);
    let amounts = |h: &crate::view::ranking::Highlight| {
        blocks_and_bytes(h.count.max(0) as u64, h.bytes.max(0) as u64)
    };
    if b.key == y.key {
        format!(
            "{} holds the most blocks and the most bytes ({})",
            b.name,
            amounts(b)
        )
    } else {
        format!(
            "{} holds the most blocks ({}); {} the most bytes ({})",
            b.name,
            amounts(b),
            y.name,
            amounts(y)
        )
    }
}

/// `key,count,bytes,pct_traced,pct_busy,frames,no_stack` (frames innermost first, inlined
/// functions included, `;`-separated).
const COLUMNS: &[Column<TopEntry>] = &[
    col("key", |e| e.key.clone()),
    num("count", |e| e.count),
    num("bytes", |e| e.bytes),
    col("pct_traced", |e| {
        e.pct_traced.map(csv::pct4).unwrap_or_default()
    }),
    col("pct_busy", |e| csv::pct4(e.pct_busy)),
    col("frames", |e| frames_text(e, ";")),
    col("no_stack", |e| e.no_stack.to_string()),
];

/// The frames' lines (inlined functions included) joined with `sep`.
fn frames_text(e: &TopEntry, sep: &str) -> String {
    e.frames
        .iter()
        .flatten()
        .flat_map(FrameView::lines)
        .collect::<Vec<_>>()
        .join(sep)
}

/// The table's columns: bytes, count, shares.
const TABLE: &[TableColumn<TopEntry>] = &[
    column("Bytes", 11, |e| size_cell(&size(e.bytes), 11)),
    column("Count", 9, |e| e.count.to_string()),
    column("%traced", 8, |e| {
        e.pct_traced.map(|p| format!("{p:.1}%")).unwrap_or_default()
    }),
    column("%busy", 7, |e| format!("{:.1}%", e.pct_busy)),
];

/// One row per entry: bytes, count, shares, key (a size as `422 B`).
fn table(out: &mut dyn Write, v: &TopView) -> io::Result<()> {
    ranking_table(out, TABLE, v.by, &v.entries, |e| match (v.by, e.size) {
        (By::Size, Some(s)) => format!("{s} B"),
        _ => e.key.clone(),
    })
}

/// `1 × 528948 B, 3 × 216 B, 3 × 152 B` (the first three sizes, `…` when there are more).
pub fn sizes_text(sizes: &[SizeCount]) -> String {
    let mut parts: Vec<String> = sizes
        .iter()
        .take(3)
        .map(|s| blocks_of(s.count, s.size))
        .collect();
    if sizes.len() > 3 {
        parts.push("…".into());
    }
    parts.join(", ")
}

/// Each stack: its BackTrace, then its blocks, bytes, shares and sizes, then its frames; with
/// `--windbg`, UMDH's lines for a single log (a compare against nothing).
fn stacks(out: &mut dyn Write, entries: &[TopEntry], style: &Style) -> io::Result<()> {
    if style.windbg {
        return umdh_stacks(out, entries);
    }
    for e in entries {
        writeln!(out, "{}", backtrace(e))?;
        let share = e
            .pct_traced
            .map(|p| format!("{p:.1}% of traced, "))
            .unwrap_or_default();
        let mut line = format!(
            "{} ({share}{:.1}% of busy)",
            blocks_and_bytes(e.count, e.bytes),
            e.pct_busy
        );
        if !e.sizes.is_empty() {
            line.push_str(&format!(": {}", sizes_text(&e.sizes)));
        }
        paragraph(out, style, "    ", &line)?;
        frame_lines(out, &e.frames, "        ")?;
    }
    Ok(())
}

/// `BackTrace 0x…`, or `(no stack)`.
fn backtrace(e: &TopEntry) -> String {
    if e.no_stack {
        e.key.clone()
    } else {
        format!("BackTrace {}", e.key)
    }
}

/// UMDH's lines, in hex, for each stack as a compare against nothing.
fn umdh_stacks(out: &mut dyn Write, entries: &[TopEntry]) -> io::Result<()> {
    writeln!(
        out,
        "// + BYTES_DELTA (NEW_BYTES - OLD_BYTES) NEW_COUNT allocs BackTrace ID"
    )?;
    writeln!(
        out,
        "// + COUNT_DELTA (NEW_COUNT - OLD_COUNT) BackTrace ID allocations\n"
    )?;
    for e in entries {
        let id = umdh_id(&e.key);
        let (bytes, count) = (i128::from(e.bytes), i128::from(e.count));
        writeln!(
            out,
            "{} {:x} allocs\tBackTrace{id}",
            umdh_change(bytes, e.bytes, 0),
            e.count
        )?;
        writeln!(
            out,
            "{}\tBackTrace{id}\tallocations\n",
            umdh_change(count, e.count, 0)
        )?;
        frame_lines(out, &e.frames, "\t")?;
    }
    Ok(())
}

/// A BackTrace id as UMDH writes it: hex without prefix (`1270070`), or ` (no stack)`.
pub fn umdh_id(key: &str) -> String {
    match key.strip_prefix("0x") {
        Some(hex) => hex.to_string(),
        None => format!(" {key}"),
    }
}
