//! `heapdiag address` as text (the `!address -summary` tables in WinDbg's column layout, or the
//! region list) and CSV.

use super::csv::{self, col, hex, num, opt, Column};
use super::format::{notes, paragraph, percent, size, size_cell, windbg_hex, windbg_size};
use super::{Render, Style};
use crate::regions::summary::{AddressSummary, Row};
use crate::regions::RegionSource;
use crate::value::plural;
use crate::value::Hex;
use crate::view::address::{AddressView, RegionView};
use std::io::{self, Write};

impl Render for AddressView {
    /// The summary or the region list: sizes in human units, addresses in hex; with `--windbg`,
    /// `!address`'s own columns (sizes in hex, `hi`lo` on 64-bit targets).
    fn text(&self, out: &mut dyn Write, style: &Style) -> io::Result<()> {
        match &self.regions {
            Some(regions) => regions_text(out, regions, self.bits, style),
            None => summary_text(out, self, style),
        }
    }

    fn csv(&self, out: &mut dyn Write, _style: &Style) -> io::Result<()> {
        match &self.regions {
            Some(regions) => csv::table(out, REGION_COLUMNS, regions),
            None => csv::table(out, SUMMARY_COLUMNS, &summary_lines(&self.summary)),
        }
    }
}

/// The titles of the usage, type, state and protect tables.
const TITLES: [&str; 4] = [
    "Usage Summary",
    "Type Summary (for busy)",
    "State Summary",
    "Protect Summary (for commit)",
];

/// The headers of the usage, type, state and protect tables, as WinDbg prints them.
const HEADERS: [&str; 4] = [
    "--- Usage Summary ---------------- RgnCount ----------- Total Size -------- %ofBusy %ofTotal",
    "--- Type Summary (for busy) ------ RgnCount ----------- Total Size -------- %ofBusy %ofTotal",
    "--- State Summary ---------------- RgnCount ----------- Total Size -------- %ofBusy %ofTotal",
    "--- Protect Summary (for commit) - RgnCount ----------- Total Size -------- %ofBusy %ofTotal",
];

const LARGEST_HEADER: &str =
    "--- Largest Region by Usage ----------- Base Address -------- Region Size ----------";

/// The summary's tables by name, in `HEADERS` order.
fn tables(s: &AddressSummary) -> [(&'static str, &[Row]); 4] {
    [
        ("usage", &s.usage),
        ("type", &s.types),
        ("state", &s.states),
        ("protect", &s.protects),
    ]
}

/// The summary: the tables of `!address -summary`.
fn summary_text(out: &mut dyn Write, v: &AddressView, style: &Style) -> io::Result<()> {
    let (s, bits) = (&v.summary, v.bits);
    if s.source == RegionSource::CapturedMemory {
        paragraph(
            out,
            style,
            "Note: ",
            "this dump has no MemoryInfoList stream, so free, reserved and uncaptured memory are \
             unknown and Type, State and Protect cannot be computed. The table covers only the \
             captured memory ranges; %ofTotal is a share of captured bytes. A full dump \
             (procdump -ma) has the region table.",
        )?;
        writeln!(out)?;
    }
    let shown = if s.source == RegionSource::MemoryInfo {
        4
    } else {
        1
    };
    for ((title, header), (_, rows)) in TITLES.iter().zip(HEADERS).zip(tables(s)).take(shown) {
        if style.windbg {
            writeln!(out, "{header}")?;
        } else {
            writeln!(
                out,
                "{:-<32}{:->11}{:->14}{:>9}{:>9}",
                format!("--- {title} "),
                " RgnCount ",
                " Total Size",
                "%ofBusy",
                "%ofTotal"
            )?;
        }
        for r in rows {
            summary_row(out, r, bits, style)?;
        }
        writeln!(out)?;
    }
    if style.windbg {
        writeln!(out, "{LARGEST_HEADER}")?;
    } else {
        writeln!(
            out,
            "{:-<32}{:->20}{:->14}",
            "--- Largest Region by Usage ", " Base Address ", " Region Size"
        )?;
    }
    for l in &s.largest {
        if style.windbg {
            writeln!(
                out,
                "{:<32}{:>20}{:>18} {}",
                l.usage,
                windbg_hex(l.base, bits),
                windbg_hex(l.size, bits),
                windbg_size(l.size)
            )?;
        } else {
            writeln!(
                out,
                "{:<32}{:>20}{:>14}",
                l.usage,
                Hex(l.base),
                size_cell(&size(l.size), 12)
            )?;
        }
    }
    for p in &v.problems {
        writeln!(out)?;
        paragraph(out, style, "warning: ", p)?;
    }
    if !v.notes.is_empty() {
        writeln!(out)?;
        notes(out, style, "", &v.notes)?;
    }
    Ok(())
}

/// One row of a summary table.
fn summary_row(out: &mut dyn Write, r: &Row, bits: u32, style: &Style) -> io::Result<()> {
    let busy = r.pct_busy.map(percent).unwrap_or_default();
    if style.windbg {
        writeln!(
            out,
            "{:<32}{:>11}{:>18} {}{:>8}{:>9}",
            r.name,
            r.regions,
            windbg_hex(r.bytes, bits),
            windbg_size(r.bytes),
            busy,
            percent(r.pct_total)
        )
    } else {
        writeln!(
            out,
            "{:<32}{:>11}{:>14}{:>9}{:>9}",
            r.name,
            r.regions,
            size_cell(&size(r.bytes), 12),
            busy,
            percent(r.pct_total)
        )
    }
}

/// The region list, one line per region, like `!address` without options.
fn regions_text(
    out: &mut dyn Write,
    regions: &[RegionView],
    bits: u32,
    style: &Style,
) -> io::Result<()> {
    let (w, sw) = match (style.windbg, bits) {
        (true, 64) => (17, 17),
        (true, _) => (8, 8),
        (false, 64) => (14, 11),
        (false, _) => (10, 11),
    };
    writeln!(
        out,
        "{:>w$} {:>w$} {:>sw$} {:<11} {:<11} {:<28} {:<10} Details",
        "BaseAddress", "EndAddress+1", "RegionSize", "Type", "State", "Protect", "Usage"
    )?;
    for r in regions {
        let (base, end, size_text) = if style.windbg {
            (
                windbg_hex(r.base.0, bits),
                windbg_hex(r.end.0, bits),
                windbg_hex(r.size, bits),
            )
        } else {
            (
                r.base.to_string(),
                r.end.to_string(),
                size_cell(&size(r.size), sw),
            )
        };
        writeln!(
            out,
            "{base:>w$} {end:>w$} {size_text:>sw$} {:<11} {:<11} {:<28} {:<10} {}",
            r.kind.as_deref().unwrap_or(""),
            r.state.as_deref().unwrap_or("captured"),
            r.protect.as_deref().unwrap_or(""),
            r.usage,
            r.detail.as_deref().unwrap_or("")
        )?;
    }
    writeln!(out, "{}", plural(regions.len() as u64, "region"))
}

/// One line of the summary's CSV: a row of a table, or the largest region of a usage.
struct SummaryLine {
    table: &'static str,
    name: String,
    regions: u64,
    bytes: u64,
    pct_busy: Option<f64>,
    pct_total: Option<f64>,
    base: Option<Hex>,
}

fn summary_lines(s: &AddressSummary) -> Vec<SummaryLine> {
    let rows = tables(s).into_iter().flat_map(|(table, rows)| {
        rows.iter().map(move |r| SummaryLine {
            table,
            name: r.name.clone(),
            regions: r.regions,
            bytes: r.bytes,
            pct_busy: r.pct_busy,
            pct_total: Some(r.pct_total),
            base: None,
        })
    });
    let largest = s.largest.iter().map(|l| SummaryLine {
        table: "largest",
        name: l.usage.clone(),
        regions: 1,
        bytes: l.size,
        pct_busy: None,
        pct_total: None,
        base: Some(Hex(l.base)),
    });
    rows.chain(largest).collect()
}

/// `table,name,regions,bytes,pct_busy,pct_total,base`; `base` only on `largest` rows.
const SUMMARY_COLUMNS: &[Column<SummaryLine>] = &[
    col("table", |r| r.table.to_string()),
    col("name", |r| r.name.clone()),
    num("regions", |r| r.regions),
    num("bytes", |r| r.bytes),
    col("pct_busy", |r| {
        r.pct_busy.map(csv::pct4).unwrap_or_default()
    }),
    col("pct_total", |r| {
        r.pct_total.map(csv::pct4).unwrap_or_default()
    }),
    col("base", |r| opt(&r.base)),
];

/// `base,end,size,usage,state,type,protect,allocation_base,detail`.
const REGION_COLUMNS: &[Column<RegionView>] = &[
    hex("base", |r| r.base.0),
    hex("end", |r| r.end.0),
    num("size", |r| r.size),
    col("usage", |r| r.usage.clone()),
    col("state", |r| opt(&r.state)),
    col("type", |r| opt(&r.kind)),
    col("protect", |r| opt(&r.protect)),
    col("allocation_base", |r| opt(&r.allocation_base)),
    col("detail", |r| opt(&r.detail)),
];
