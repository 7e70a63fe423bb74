//! `heapdiag heaps` (`!heap -s`) and `heaps --stat` (`!heap -stat -h`) as text and CSV.

use super::csv::{self, col, hex, num, opt, Column};
use super::format::human;
use super::Render;
use crate::analysis::heaps::{HeapSummary, SizeRow};
use crate::process::HeapKind;
use crate::value::{pct, Hex};
use crate::view::heaps::{HeapStat, HeapStatView, HeapsView};
use std::collections::BTreeSet;
use std::io::{self, Write};

impl Render for HeapsView {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        lfh_keys(out, &self.heaps)?;
        table(out, &self.heaps)?;
        for h in &self.heaps {
            details(out, h)?;
        }
        Ok(())
    }

    fn csv(&self, out: &mut dyn Write) -> io::Result<()> {
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

/// `nt`, `segment`, `page`: the first word of the heap's type.
fn short_kind(h: &HeapSummary) -> &'static str {
    h.kind.name().split(' ').next().unwrap_or("")
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
            "{:<w$} {:<7} {:>8} {:>9} {:>9} {:>8} {:>8} {:>6} {:>4} {:>5} {:>4} {:>10} {:>9}",
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
    let rule = "-".repeat(w + 104);
    writeln!(out, "{rule}")?;
    for h in heaps {
        if !h.walked {
            writeln!(
                out,
                "{:<w$} {:<7} not walked (see below)",
                Hex(h.address),
                short_kind(h)
            )?;
            continue;
        }
        heap_row!(
            out,
            w,
            Hex(h.address),
            short_kind(h),
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
fn details(out: &mut dyn Write, h: &HeapSummary) -> io::Result<()> {
    let hm = |b: u64| human(b).trim().to_string();
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
            "    External fragmentation  {:.0} % ({} free blocks, largest {})",
            h.external_fragmentation,
            h.free_blocks,
            hm(h.largest_free)
        )?;
    }
    if h.lfh {
        writeln!(
            out,
            "    LFH: {} busy chunks, {} requested; {} free chunks",
            h.lfh_busy_blocks,
            hm(h.lfh_busy_bytes),
            h.lfh_free_blocks
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
            hm(h.traced_bytes),
            hm(h.busy_bytes)
        )?;
    }
    let c = &h.coverage;
    if c.committed > 0 {
        writeln!(
            out,
            "    Coverage: {} committed in segments = {} segment headers + {} blocks + {} not captured + {} corrupt + {} unexplained",
            hm(c.committed),
            hm(c.header),
            hm(c.walked),
            hm(c.not_captured),
            hm(c.corrupt),
            hm(c.unexplained)
        )?;
    }
    if h.internal_blocks > 0 {
        writeln!(
            out,
            "    Heap metadata: {} (blocks: {}; LFH user blocks and zones, range markers, front end)",
            hm(h.internal_bytes),
            h.internal_blocks
        )?;
    }
    corruptions(out, h)?;
    for n in &h.notes {
        writeln!(out, "    Note: {n}")?;
    }
    Ok(())
}

/// The user blocks of a segment or page heap by component.
fn components(out: &mut dyn Write, h: &HeapSummary) -> io::Result<()> {
    if h.kind == HeapKind::Nt || h.components.is_empty() {
        return Ok(());
    }
    writeln!(out, "    Components:")?;
    let hm = |b: u64| human(b).trim().to_string();
    for c in &h.components {
        writeln!(
            out,
            "      {:<9} {:>8} busy, {:>12} requested in {:>12}; {:>8} free, {:>12}",
            c.front_end.name(),
            c.busy_blocks,
            hm(c.busy_bytes),
            hm(c.busy_block_bytes),
            c.free_blocks,
            hm(c.free_bytes)
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
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for (i, h) in self.heaps.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            stat_text(out, h, self.limit)?;
        }
        Ok(())
    }

    fn csv(&self, out: &mut dyn Write) -> io::Result<()> {
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

/// The `!heap -stat -h` view of one heap; hex columns like WinDbg's, then the components of
/// segment and page heaps.
fn stat_text(out: &mut dyn Write, h: &HeapStat, limit: usize) -> io::Result<()> {
    writeln!(out, " heap @ {}", h.heap)?;
    writeln!(out, "group-by: TOTSIZE max-display: {limit}")?;
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
        "    busy: {:#x} bytes in {} sizes",
        h.busy_bytes, h.distinct_sizes
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
