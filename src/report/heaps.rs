//! `heapdiag heaps` (`!heap -s`) and `heaps --stat` (`!heap -stat -h`) as text and CSV.

use super::csv::{self, col, hex, num, opt, Column};
use super::format::{blocks_and_bytes, exact, notes, paragraph, size, size_cell};
use super::{Render, Style};
use crate::analysis::heaps::{HeapSummary, SizeRow};
use crate::analysis::top::Sort;
use crate::process::HeapKind;
use crate::value::{pct, plural, Hex};
use crate::view::heaps::{HeapStat, HeapStatView, HeapsView};
use std::collections::BTreeSet;
use std::io::{self, Write};

impl Render for HeapsView {
    fn text(&self, out: &mut dyn Write, style: &Style) -> io::Result<()> {
        lfh_keys(out, &self.heaps)?;
        table(out, &self.heaps)?;
        for h in &self.heaps {
            details(out, h, style)?;
        }
        Ok(())
    }

    fn csv(&self, out: &mut dyn Write, _style: &Style) -> io::Result<()> {
        csv::table(out, HEAP_COLUMNS, &self.heaps)
    }
}

/// Heaps as rows of their `!heap -s` figures.
const HEAP_COLUMNS: &[Column<HeapSummary>] = &[
    hex("address", |h| h.address),
    col("type", |h| h.kind.name().into()),
    num("bits", |h| h.bits.into()),
    col("flags", |h| opt(&h.flags.map(|f| Hex(f.into())))),
    num("reserved", |h| h.reserved),
    num("committed", |h| h.committed),
    num("virtual_bytes", |h| h.virtual_bytes),
    num("large_blocks", |h| h.large_blocks),
    num("ucr", |h| h.ucr),
    num("busy_blocks", |h| h.busy_blocks),
    num("busy_bytes", |h| h.busy_bytes),
    num("free_blocks", |h| h.free_blocks),
    num("free_bytes", |h| h.free_bytes),
    col("external_fragmentation", |h| {
        format!("{:.2}", h.external_fragmentation)
    }),
    col("lfh", |h| h.lfh.to_string()),
    num("lfh_busy_blocks", |h| h.lfh_busy_blocks),
    num("lfh_busy_bytes", |h| h.lfh_busy_bytes),
    num("internal_blocks", |h| h.internal_blocks),
    num("internal_bytes", |h| h.internal_bytes),
    num("corruptions", |h| h.corruptions.len() as u64),
];

/// Kilobytes, as `!heap -s` shows sizes.
fn k(bytes: u64) -> String {
    (bytes / 1024).to_string()
}

/// The LFH keys recovered, one per width.
fn lfh_keys(out: &mut dyn Write, heaps: &[HeapSummary]) -> io::Result<()> {
    let keys: BTreeSet<String> = heaps
        .iter()
        .filter_map(|h| {
            h.lfh_key
                .map(|k| format!("{k:#010x} ({}-bit heaps)", h.bits))
        })
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = keys.into_iter().collect();
    writeln!(
        out,
        "LFH Key (low 32 bits, recovered from the dump): {}",
        keys.join(", ")
    )
}

/// One line of the `!heap -s` table.
macro_rules! heap_row {
    ($out:expr, $w:expr, $($cell:expr),* $(,)?) => {
        writeln!(
            $out,
            "{:<w$} {:<12} {:>8} {:>9} {:>9} {:>8} {:>8} {:>6} {:>4} {:>5} {:>4} {:>10} {:>9}",
            $($cell),*,
            w = $w
        )
    };
}

/// The `!heap -s` table: one row per heap.
fn table(out: &mut dyn Write, heaps: &[HeapSummary]) -> io::Result<()> {
    let w = heaps
        .iter()
        .map(|h| Hex(h.address).to_string().len())
        .max()
        .unwrap_or(10)
        .max(10);
    heap_row!(
        out,
        w,
        "Heap",
        "Type",
        "Flags",
        "Reserv(k)",
        "Commit(k)",
        "Virt(k)",
        "Free(k)",
        "List",
        "UCR",
        "Virt",
        "Fast",
        "Busy",
        "Busy(k)"
    )?;
    heap_row!(out, w, "", "", "", "", "", "", "", "length", "", "blks", "heap", "blocks", "")?;
    let rule = "-".repeat(w + 109);
    writeln!(out, "{rule}")?;
    for h in heaps {
        if !h.walked {
            writeln!(
                out,
                "{:<w$} {:<12} not walked (see below)",
                Hex(h.address),
                h.kind.name()
            )?;
            continue;
        }
        heap_row!(
            out,
            w,
            Hex(h.address),
            h.kind.name(),
            h.flags.map(|f| format!("{f:08x}")).unwrap_or_default(),
            k(h.reserved),
            k(h.committed),
            k(h.virtual_bytes),
            k(h.free_bytes),
            h.free_blocks,
            h.ucr,
            h.large_blocks,
            if h.lfh { "LFH" } else { "" },
            h.busy_blocks,
            k(h.busy_bytes)
        )?;
    }
    writeln!(out, "{rule}")
}

/// A heap's details: fragmentation, LFH, components, stacks, coverage, metadata, corruption, notes.
fn details(out: &mut dyn Write, h: &HeapSummary, style: &Style) -> io::Result<()> {
    writeln!(
        out,
        "\nHeap {} ({}-bit {})",
        Hex(h.address),
        h.bits,
        h.kind.name()
    )?;
    if h.free_blocks > 0 {
        writeln!(
            out,
            "    External fragmentation  {:.0} % ({}, largest {})",
            h.external_fragmentation,
            plural(h.free_blocks, "free block"),
            size(h.largest_free)
        )?;
    }
    if h.lfh {
        writeln!(
            out,
            "    LFH: {}, {} requested; {}",
            plural(h.lfh_busy_blocks, "busy chunk"),
            size(h.lfh_busy_bytes),
            plural(h.lfh_free_blocks, "free chunk")
        )?;
    }
    components(out, h)?;
    if h.traced_blocks > 0 {
        writeln!(
            out,
            "    Allocation stacks (+ust): {} of {} busy blocks ({:.1}%), {} of {}",
            h.traced_blocks,
            h.busy_blocks,
            pct(h.traced_blocks, h.busy_blocks.max(1)),
            size(h.traced_bytes),
            size(h.busy_bytes)
        )?;
    }
    let c = &h.coverage;
    if c.committed > 0 {
        paragraph(
            out,
            style,
            "    Coverage: ",
            &format!(
                "{} committed in segments = {} segment headers + {} blocks + {} not captured + {} corrupt + {} unexplained",
                size(c.committed),
                size(c.header),
                size(c.walked),
                size(c.not_captured),
                size(c.corrupt),
                size(c.unexplained)
            ),
        )?;
    }
    if h.internal_blocks > 0 {
        writeln!(
            out,
            "    Heap metadata: {} (LFH user blocks and zones, range markers, front end)",
            blocks_and_bytes(h.internal_blocks, h.internal_bytes)
        )?;
    }
    corruptions(out, h)?;
    notes(out, style, "    ", &h.notes)
}

/// The user blocks of a segment or page heap by component.
fn components(out: &mut dyn Write, h: &HeapSummary) -> io::Result<()> {
    if h.kind == HeapKind::Nt || h.components.is_empty() {
        return Ok(());
    }
    writeln!(out, "    Components:")?;
    for c in &h.components {
        writeln!(
            out,
            "      {:<9} {:>8} busy, {} requested in {}; {:>8} free, {}",
            c.front_end.name(),
            c.busy_blocks,
            size_cell(&size(c.busy_bytes), 10),
            size_cell(&size(c.busy_block_bytes), 10),
            c.free_blocks,
            size_cell(&size(c.free_bytes), 10)
        )?;
    }
    Ok(())
}

/// How many corruptions, and the first twenty.
fn corruptions(out: &mut dyn Write, h: &HeapSummary) -> io::Result<()> {
    if h.walked {
        writeln!(out, "    Corruptions: {}", h.corruptions.len())?;
    }
    for c in h.corruptions.iter().take(20) {
        writeln!(
            out,
            "      {} (segment {}): {}",
            Hex(c.address),
            Hex(c.segment),
            c.what
        )?;
    }
    if h.corruptions.len() > 20 {
        writeln!(
            out,
            "      … and {} more (see --json)",
            h.corruptions.len() - 20
        )?;
    }
    Ok(())
}

impl Render for HeapStatView {
    fn text(&self, out: &mut dyn Write, style: &Style) -> io::Result<()> {
        for (i, h) in self.heaps.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            if style.windbg {
                windbg_stat_text(out, h, self.limit, self.sort)?;
            } else {
                stat_text(out, h, self.sort)?;
            }
        }
        Ok(())
    }

    fn csv(&self, out: &mut dyn Write, _style: &Style) -> io::Result<()> {
        let rows: Vec<(Hex, &SizeRow)> = self
            .heaps
            .iter()
            .flat_map(|h| h.sizes.iter().map(move |r| (h.heap, r)))
            .collect();
        let columns: [Column<(Hex, &SizeRow)>; 5] = [
            hex("heap", |(h, _)| h.0),
            num("size", |(_, r)| r.size),
            num("count", |(_, r)| r.count),
            num("total", |(_, r)| r.total),
            col("percent", |(_, r)| csv::pct4(r.percent)),
        ];
        csv::table(out, &columns, &rows)
    }
}

/// One heap's sizes: exact size, blocks, total, share of busy bytes, then the components of
/// segment and page heaps.
fn stat_text(out: &mut dyn Write, h: &HeapStat, sort: Sort) -> io::Result<()> {
    if h.busy_blocks == 0 {
        return writeln!(out, "Heap {}: no busy blocks", h.heap);
    }
    writeln!(
        out,
        "Heap {}: {} of {}, {}; {}",
        h.heap,
        plural(h.busy_blocks, "busy block"),
        plural(h.distinct_sizes as u64, "size"),
        size(h.busy_bytes),
        if sort == Sort::Count {
            "most blocks first"
        } else {
            "largest total first"
        }
    )?;
    writeln!(
        out,
        "    {:>12} {:>9} {:>11} {:>8}",
        "Size", "Blocks", "Total", "%busy"
    )?;
    for r in &h.sizes {
        writeln!(
            out,
            "    {:>12} {:>9} {:>11} {:>7.2}%",
            exact(r.size),
            r.count,
            size_cell(&size(r.total), 11),
            r.percent
        )?;
    }
    if h.sizes.len() < h.distinct_sizes {
        writeln!(
            out,
            "    ... {} (--limit)",
            plural((h.distinct_sizes - h.sizes.len()) as u64, "more size")
        )?;
    }
    for c in h.components.iter().filter(|c| c.busy_blocks > 0) {
        writeln!(
            out,
            "    {}: {}",
            c.front_end.name(),
            blocks_and_bytes(c.busy_blocks, c.busy_bytes)
        )?;
    }
    Ok(())
}

/// The `!heap -stat -h` view of one heap (`--windbg`): hex columns like WinDbg's, then the
/// components of segment and page heaps.
fn windbg_stat_text(out: &mut dyn Write, h: &HeapStat, limit: usize, sort: Sort) -> io::Result<()> {
    writeln!(out, " heap @ {}", h.heap)?;
    let group = if sort == Sort::Count {
        "BLOCKCOUNT"
    } else {
        "TOTSIZE"
    };
    writeln!(out, "group-by: {group} max-display: {limit}")?;
    writeln!(
        out,
        "    size     #blocks     total     ( %) (percent of total busy bytes)"
    )?;
    for r in &h.sizes {
        writeln!(
            out,
            "    {:x} {:x} - {:x}  ({:.2})",
            r.size, r.count, r.total, r.percent
        )?;
    }
    writeln!(
        out,
        "    busy: {:#x} bytes in {}",
        h.busy_bytes,
        plural(h.distinct_sizes as u64, "size")
    )?;
    for c in h.components.iter().filter(|c| c.busy_blocks > 0) {
        writeln!(
            out,
            "    {}: {:#x} bytes in {:x} blocks",
            c.front_end.name(),
            c.busy_bytes,
            c.busy_blocks
        )?;
    }
    Ok(())
}
