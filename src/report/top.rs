//! `heapdiag top` as text (UMDH-style stacks for `--by stack`, a table otherwise) and CSV.

use super::csv::{self, col, num, Column};
use super::format::{
    column, frame_lines, human, left_out, ranked, ranking_table, suspects, TableColumn,
};
use super::Render;
use crate::view::frame::FrameView;
use crate::view::top::{TopEntry, TopView};
use std::io::{self, Write};

impl Render for TopView {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "Outstanding busy memory by {}", self.by.name())?;
        writeln!(
            out,
            "Busy: {} blocks, {}; with an allocation stack: {} blocks ({:.1}%), {} ({:.1}%); {} distinct stacks",
            self.total_busy_blocks,
            human(self.total_busy_bytes).trim(),
            self.traced_blocks,
            self.pct_traced_blocks,
            human(self.traced_bytes).trim(),
            self.pct_traced_bytes,
            self.stacks
        )?;
        let stacks = |out: &mut dyn Write| stacks(out, &self.entries);
        ranked(out, &self.notes, self.by, stacks, |out| table(out, self))?;
        left_out(out, self.more, "more")?;
        suspects(
            out,
            &self.suspects,
            "; heapdiag leaks adds unreachable blocks",
        )
    }

    fn csv(&self, out: &mut dyn Write) -> io::Result<()> {
        csv::table(out, COLUMNS, &self.entries)
    }
}

/// `key,count,bytes,pct_traced,pct_busy,frames` (frames innermost first, inlined functions
/// included, `;`-separated).
const COLUMNS: &[Column<TopEntry>] = &[
    col("key", |e| e.key.clone()),
    num("count", |e| e.count),
    num("bytes", |e| e.bytes),
    col("pct_traced", |e| {
        e.pct_traced.map(csv::pct4).unwrap_or_default()
    }),
    col("pct_busy", |e| csv::pct4(e.pct_busy)),
    col("frames", |e| frames_text(e, ";")),
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
    column("Bytes", 14, |e| format!("{:#x}", e.bytes)),
    column("", 12, |e| format!("({})", human(e.bytes).trim())),
    column("Count", 10, |e| e.count.to_string()),
    column("%traced", 8, |e| {
        e.pct_traced.map(|p| format!("{p:.1}%")).unwrap_or_default()
    }),
    column("%busy", 7, |e| format!("{:.1}%", e.pct_busy)),
];

/// One row per entry: bytes, count, shares, key.
fn table(out: &mut dyn Write, v: &TopView) -> io::Result<()> {
    ranking_table(out, TABLE, v.by, &v.entries, |e| &e.key)
}

/// UMDH style: each stack with its bytes, count and shares, then its frames.
fn stacks(out: &mut dyn Write, entries: &[TopEntry]) -> io::Result<()> {
    for e in entries {
        let share = e
            .pct_traced
            .map(|p| format!("{p:.1}% of traced, "))
            .unwrap_or_default();
        writeln!(
            out,
            "+ {:#x} ({}) in {} allocations ({share}{:.1}% of busy), BackTrace {}",
            e.bytes,
            human(e.bytes).trim(),
            e.count,
            e.pct_busy,
            e.key
        )?;
        frame_lines(out, &e.frames, "        ")?;
    }
    Ok(())
}
