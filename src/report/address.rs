//! Text views of `heapdiag address`: the `!address -summary` tables in WinDbg's column layout, and
//! the region list.

use super::format::{percent, windbg_hex, windbg_size};
use crate::regions::summary::{AddressSummary, Row};
use crate::regions::{protect_name, state_name, type_name, Region, RegionSource, MEM_COMMIT};
use std::fmt::Write;

const USAGE_HEADER: &str =
    "--- Usage Summary ---------------- RgnCount ----------- Total Size -------- %ofBusy %ofTotal";
const TYPE_HEADER: &str =
    "--- Type Summary (for busy) ------ RgnCount ----------- Total Size -------- %ofBusy %ofTotal";
const STATE_HEADER: &str =
    "--- State Summary ---------------- RgnCount ----------- Total Size -------- %ofBusy %ofTotal";
const PROTECT_HEADER: &str =
    "--- Protect Summary (for commit) - RgnCount ----------- Total Size -------- %ofBusy %ofTotal";
const LARGEST_HEADER: &str =
    "--- Largest Region by Usage ----------- Base Address -------- Region Size ----------";

fn table(out: &mut String, header: &str, rows: &[Row], bits: u32) {
    let _ = writeln!(out, "{header}");
    for r in rows {
        let _ = writeln!(
            out,
            "{:<32}{:>11}{:>18} {}{:>8}{:>9}",
            r.name,
            r.regions,
            windbg_hex(r.bytes, bits),
            windbg_size(r.bytes),
            r.pct_busy.map(percent).unwrap_or_default(),
            percent(r.pct_total)
        );
    }
    out.push('\n');
}

/// The summary, as `!address -summary` prints it. `bits` is the dump's pointer width.
pub fn summary_text(s: &AddressSummary, bits: u32, problems: &[String]) -> String {
    let mut out = String::new();
    if s.source == RegionSource::CapturedMemory {
        out.push_str(
            "Note: this dump has no MemoryInfoList stream, so free, reserved and uncaptured memory are unknown\n\
             and Type, State and Protect cannot be computed. The table covers only the captured memory ranges;\n\
             %ofTotal is a share of captured bytes. A full dump (procdump -ma) has the region table.\n\n",
        );
    }
    table(&mut out, USAGE_HEADER, &s.usage, bits);
    if s.source == RegionSource::MemoryInfo {
        table(&mut out, TYPE_HEADER, &s.types, bits);
        table(&mut out, STATE_HEADER, &s.states, bits);
        table(&mut out, PROTECT_HEADER, &s.protects, bits);
    }
    let _ = writeln!(out, "{LARGEST_HEADER}");
    for l in &s.largest {
        let _ = writeln!(
            out,
            "{:<32}{:>20}{:>18} {}",
            l.usage,
            windbg_hex(l.base, bits),
            windbg_hex(l.size, bits),
            windbg_size(l.size)
        );
    }
    for p in problems {
        let _ = writeln!(out, "\nwarning: {p}");
    }
    out
}

/// The region list, one line per region, like `!address` without options.
pub fn regions_text<'a>(regions: impl Iterator<Item = &'a Region>, bits: u32) -> String {
    let w = if bits == 64 { 17 } else { 8 };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>w$} {:>w$} {:>w$} {:<11} {:<11} {:<28} {:<10} Details",
        "BaseAddress", "EndAddress+1", "RegionSize", "Type", "State", "Protect", "Usage"
    );
    let mut n = 0usize;
    for r in regions {
        n += 1;
        let _ = writeln!(
            out,
            "{:>w$} {:>w$} {:>w$} {:<11} {:<11} {:<28} {:<10} {}",
            windbg_hex(r.base, bits),
            windbg_hex(r.end(), bits),
            windbg_hex(r.size, bits),
            r.kind
                .filter(|_| r.is_busy())
                .map(type_name)
                .unwrap_or_default(),
            r.state.map(state_name).unwrap_or_else(|| "captured".into()),
            r.protect
                .filter(|_| r.state == Some(MEM_COMMIT))
                .map(protect_name)
                .unwrap_or_default(),
            r.usage.name(),
            r.detail.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(out, "{n} regions");
    out
}
