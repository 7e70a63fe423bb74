//! `heapdiag analyze` as a short terminal summary (the HTML report is [`super::html`]; JSON: the
//! view itself).

use super::format::{paragraph, signed_blocks, suspects};
use super::format::{percent, signed_size, size};
use super::leaks::{describe, missing_roots, roots_of_garbage, unreachable_share};
use super::{Render, Style};
use crate::analysis::types::UNKNOWN;
use crate::value::{plural, Hex};
use crate::view::analyze::AnalyzeView;
use crate::view::frame::FrameView;
use crate::view::top::TopView;
use std::io::{self, Write};

/// Rows of each ranking the summary shows.
const ROWS: usize = 5;

impl Render for AnalyzeView {
    fn text(&self, out: &mut dyn Write, style: &Style) -> io::Result<()> {
        facts(self, out)?;
        memory(self, out, style)?;
        ranking(out, "Top modules (outstanding bytes)", &self.modules)?;
        ranking(out, "Top functions", &self.functions)?;
        stacks(out, &self.stacks)?;
        growth(self, out)?;
        if self.unreachable.is_some() {
            suspects(out, style, &self.suspects, "")?;
        }
        unreachable(self, out, style)?;
        if self.types.entries.iter().any(|e| e.key != UNKNOWN) {
            ranking(out, "Top types (what the blocks hold)", &self.types)?;
        }
        if !self.next_steps.is_empty() {
            writeln!(out, "\nWhat the dump cannot tell, and what to do:")?;
            for s in &self.next_steps {
                paragraph(out, style, "  - ", s)?;
            }
        }
        Ok(())
    }
}

/// The process and what the dump can answer.
fn facts(v: &AnalyzeView, out: &mut dyn Write) -> io::Result<()> {
    let i = &v.info;
    writeln!(out, "Dump:     {} ({})", i.file, size(i.file_size))?;
    writeln!(
        out,
        "Process:  {}{}, {} Windows {}, written {}",
        i.image.as_deref().unwrap_or("(unknown image)"),
        i.process_id
            .map(|p| format!(" (pid {p})"))
            .unwrap_or_default(),
        i.arch.as_deref().unwrap_or("unknown architecture"),
        i.os_version.as_deref().unwrap_or("(unknown version)"),
        i.timestamp
    )?;
    let answers: Vec<String> = i
        .capabilities
        .iter()
        .map(|c| format!("{} {}", c.key, c.answer.word()))
        .collect();
    writeln!(out, "Answers:  {}", answers.join(", "))
}

/// Where the committed memory is, and the heaps in one line.
fn memory(v: &AnalyzeView, out: &mut dyn Write, style: &Style) -> io::Result<()> {
    let h = &v.headline;
    let share = |b: u64| {
        if h.committed == 0 {
            String::new()
        } else {
            format!(
                " ({})",
                percent(b as f64 * 100.0 / h.committed as f64).trim()
            )
        }
    };
    writeln!(out)?;
    paragraph(
        out,
        style,
        "Committed memory: ",
        &format!(
            "{} = native heaps {}{} + other private {}{} + images {}{} + mapped {}{}",
            size(h.committed),
            size(h.native_heaps),
            share(h.native_heaps),
            size(h.other_private),
            share(h.other_private),
            size(h.images),
            share(h.images),
            size(h.mapped),
            share(h.mapped)
        ),
    )?;
    let heaps = &v.heaps.heaps;
    let busy_blocks: u64 = heaps.iter().map(|h| h.busy_blocks).sum();
    let busy_bytes: u64 = heaps.iter().map(|h| h.busy_bytes).sum();
    let committed: u64 = heaps.iter().map(|h| h.committed).sum();
    let damaged = heaps.iter().filter(|h| !h.corruptions.is_empty()).count();
    writeln!(
        out,
        "Heaps:    {}, {} committed, {} holding {} requested{}",
        plural(heaps.len() as u64, "heap"),
        size(committed),
        plural(busy_blocks, "busy block"),
        size(busy_bytes),
        if damaged == 0 {
            String::new()
        } else {
            format!("; {damaged} with corruption (see `heapdiag heaps`)")
        }
    )
}

/// The first rows of a ranking.
fn ranking(out: &mut dyn Write, title: &str, t: &TopView) -> io::Result<()> {
    if t.entries.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n{title}:")?;
    for e in t.entries.iter().take(ROWS) {
        writeln!(
            out,
            "  {:>12}  {:>9} blocks  {:>7}  {}",
            size(e.bytes),
            e.count,
            percent(e.pct_busy).trim(),
            e.key
        )?;
    }
    Ok(())
}

/// Frame lines shown per stack in the summary.
const STACK_LINES: usize = 8;

/// The first call stacks: where each was attributed, then its first frames.
fn stacks(out: &mut dyn Write, t: &TopView) -> io::Result<()> {
    if t.entries.iter().all(|e| e.frames.is_none()) {
        return Ok(());
    }
    writeln!(out, "\nTop call stacks:")?;
    for e in t.entries.iter().filter(|e| e.frames.is_some()).take(3) {
        writeln!(
            out,
            "  {} in {} ({} of busy bytes), BackTrace {}",
            size(e.bytes),
            plural(e.count, "block"),
            percent(e.pct_busy).trim(),
            e.key
        )?;
        if let Some(a) = &e.allocator {
            writeln!(out, "    allocated by {a}")?;
        }
        let lines: Vec<&str> = e
            .frames
            .iter()
            .flatten()
            .flat_map(FrameView::lines)
            .collect();
        for line in lines.iter().take(STACK_LINES) {
            writeln!(out, "      {line}")?;
        }
        if lines.len() > STACK_LINES {
            writeln!(
                out,
                "      … {} more frames (--html, top --by stack)",
                lines.len() - STACK_LINES
            )?;
        }
    }
    Ok(())
}

/// The growth against the baseline.
fn growth(v: &AnalyzeView, out: &mut dyn Write) -> io::Result<()> {
    let Some(d) = &v.diff else { return Ok(()) };
    writeln!(
        out,
        "\nGrowth since {}: {} busy heap bytes ({} → {})",
        v.baseline.as_deref().unwrap_or("the baseline"),
        signed_size(d.totals.delta),
        size(d.totals.before),
        size(d.totals.after)
    )?;
    for e in d.entries.iter().take(ROWS) {
        writeln!(
            out,
            "  {:>12}  {:>16}  {}",
            signed_size(e.delta.bytes),
            signed_blocks(e.delta.count),
            e.key
        )?;
    }
    Ok(())
}

/// Roots of garbage the summary shows.
const GARBAGE_ROWS: usize = 3;

/// The unreachable blocks in one sentence, and the roots of garbage that retain the most.
fn unreachable(v: &AnalyzeView, out: &mut dyn Write, style: &Style) -> io::Result<()> {
    let Some(u) = &v.unreachable else {
        return Ok(());
    };
    writeln!(out)?;
    paragraph(
        out,
        style,
        "Unreachable: ",
        &format!(
            "{}, in {}{} (`heapdiag leaks` groups and lists them, `leaks --why ADDR` shows \
             what holds a block)",
            unreachable_share(u, "busy block"),
            roots_of_garbage(u.garbage_root_count),
            missing_roots(u.roots.missing)
        ),
    )?;
    for r in u.garbage_roots.iter().take(GARBAGE_ROWS) {
        let what = describe(r);
        writeln!(
            out,
            "  {:>12} in {} retained by root {}{}{}",
            size(r.retained_bytes),
            plural(r.retained_blocks, "block"),
            Hex(r.address),
            if what.is_empty() { "" } else { ": " },
            what
        )?;
    }
    Ok(())
}
