//! `heapdiag analyze` as a short terminal summary (the HTML report is [`super::html`]; JSON: the
//! view itself).

use super::format::{human, percent, signed_human};
use super::Render;
use crate::view::analyze::AnalyzeView;
use crate::view::top::TopView;
use std::io::{self, Write};

/// Rows of each ranking the summary shows.
const ROWS: usize = 5;

impl Render for AnalyzeView {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        facts(self, out)?;
        memory(self, out)?;
        ranking(out, "Top modules (outstanding bytes)", &self.modules)?;
        ranking(out, "Top functions", &self.functions)?;
        stacks(out, &self.stacks)?;
        growth(self, out)?;
        if !self.next_steps.is_empty() {
            writeln!(out, "\nWhat the dump cannot tell, and what to do:")?;
            for s in &self.next_steps {
                writeln!(out, "  - {s}")?;
            }
        }
        Ok(())
    }
}

/// The process and what the dump can answer.
fn facts(v: &AnalyzeView, out: &mut dyn Write) -> io::Result<()> {
    let i = &v.info;
    writeln!(out, "Dump:     {} ({})", i.file, human(i.file_size).trim())?;
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
fn memory(v: &AnalyzeView, out: &mut dyn Write) -> io::Result<()> {
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
    writeln!(
        out,
        "\nCommitted memory: {} = native heaps {}{} + other private {}{} + images {}{} + mapped {}{}",
        human(h.committed).trim(),
        human(h.native_heaps).trim(),
        share(h.native_heaps),
        human(h.other_private).trim(),
        share(h.other_private),
        human(h.images).trim(),
        share(h.images),
        human(h.mapped).trim(),
        share(h.mapped)
    )?;
    let heaps = &v.heaps.heaps;
    let busy_blocks: u64 = heaps.iter().map(|h| h.busy_blocks).sum();
    let busy_bytes: u64 = heaps.iter().map(|h| h.busy_bytes).sum();
    let committed: u64 = heaps.iter().map(|h| h.committed).sum();
    let damaged = heaps.iter().filter(|h| !h.corruptions.is_empty()).count();
    writeln!(
        out,
        "Heaps:    {} heaps, {} committed, {busy_blocks} busy blocks holding {} requested{}",
        heaps.len(),
        human(committed).trim(),
        human(busy_bytes).trim(),
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
            human(e.bytes).trim(),
            e.count,
            percent(e.pct_busy).trim(),
            e.key
        )?;
    }
    Ok(())
}

/// The first call stacks, a few frames each.
fn stacks(out: &mut dyn Write, t: &TopView) -> io::Result<()> {
    if t.entries.iter().all(|e| e.frames.is_none()) {
        return Ok(());
    }
    writeln!(out, "\nTop call stacks:")?;
    for e in t.entries.iter().filter(|e| e.frames.is_some()).take(3) {
        writeln!(
            out,
            "  {} in {} blocks ({} of busy bytes), stack {}:",
            human(e.bytes).trim(),
            e.count,
            percent(e.pct_busy).trim(),
            e.key
        )?;
        for f in e.frames.iter().flatten().take(6) {
            writeln!(out, "      {}", f.text)?;
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
        signed_human(d.totals.delta).trim(),
        human(d.totals.before).trim(),
        human(d.totals.after).trim()
    )?;
    for e in d.entries.iter().take(ROWS) {
        writeln!(
            out,
            "  {:>12}  {:>+9} blocks  {}",
            signed_human(e.delta.bytes).trim(),
            e.delta.count,
            e.key
        )?;
    }
    Ok(())
}
