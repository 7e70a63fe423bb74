//! Views of `heapdiag top`: a table (UMDH-style stacks for `--by stack`), JSON and CSV.

use super::format::{addr, human};
use crate::analysis::top::{By, Entry, Top};
use crate::stacks::symbols::{inline_text, Symbolizer};
use serde::Serialize;
use std::fmt::Write;

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// The trace-health sentence shared by `top`, `heaps` and `info`.
pub fn health_line(t: &Top) -> String {
    let h = &t.health;
    format!(
        "Busy: {} blocks, {}; with an allocation stack: {} blocks ({:.1}%), {} ({:.1}%); {} distinct stacks",
        h.busy_blocks,
        human(h.busy_bytes).trim(),
        h.traced_blocks,
        pct(h.traced_blocks, h.busy_blocks),
        human(h.traced_bytes).trim(),
        pct(h.traced_bytes, h.busy_bytes),
        h.stacks
    )
}

/// The text view; `limit` entries at most.
pub fn top_text(t: &Top, sym: &Symbolizer, limit: usize, notes: &[String]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Outstanding busy memory by {}", t.by.name());
    let _ = writeln!(out, "{}", health_line(t));
    for n in notes {
        let _ = writeln!(out, "Note: {n}");
    }
    out.push('\n');
    let traced = t.health.traced_bytes;
    let busy = t.health.busy_bytes;
    if t.by == By::Stack {
        for e in t.entries.iter().take(limit) {
            let share = if e.traced {
                format!("{:.1}% of traced, ", pct(e.bytes, traced))
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "+ {:#x} ({}) in {} allocations ({}{:.1}% of busy), BackTrace {}",
                e.bytes,
                human(e.bytes).trim(),
                e.count,
                share,
                pct(e.bytes, busy),
                e.key
            );
            if let Some(s) = &e.stack {
                for line in s.frames.iter().flat_map(|&f| sym.lines(f)) {
                    let _ = writeln!(out, "        {line}");
                }
            }
            out.push('\n');
        }
    } else {
        let _ = writeln!(
            out,
            "{:>14} {:>12} {:>10} {:>8} {:>7}  {}",
            "Bytes",
            "",
            "Count",
            "%traced",
            "%busy",
            match t.by {
                By::Module => "Module",
                By::Function => "Function",
                By::Size => "Size",
                By::Heap => "Heap",
                By::Stack => "Stack",
            }
        );
        for e in t.entries.iter().take(limit) {
            let _ = writeln!(
                out,
                "{:>14} {:>12} {:>10} {:>8} {:>6.1}%  {}",
                format!("{:#x}", e.bytes),
                format!("({})", human(e.bytes).trim()),
                e.count,
                if e.traced && t.by != By::Size && t.by != By::Heap {
                    format!("{:.1}%", pct(e.bytes, traced))
                } else {
                    String::new()
                },
                pct(e.bytes, busy),
                e.key
            );
        }
    }
    if t.entries.len() > limit {
        let _ = writeln!(out, "... {} more (--limit)", t.entries.len() - limit);
    }
    out
}

/// A frame in JSON: `text` is the line the text views print.
#[derive(Serialize)]
pub struct FrameJson {
    address: String,
    module: Option<String>,
    offset: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    function: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_offset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    inlined: Vec<InlineJson>,
    text: String,
}

/// A function inlined at a frame's call, in JSON.
#[derive(Serialize)]
struct InlineJson {
    function: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u32>,
    text: String,
}

impl FrameJson {
    /// Build the view of the frame at `address`.
    pub fn new(sym: &Symbolizer, address: u64) -> Self {
        let f = sym.frame(address);
        let short = f.module.map_or("", |m| sym.modules().get(m).short.as_str());
        FrameJson {
            address: addr(address),
            module: f.module.map(|m| sym.modules().get(m).name.clone()),
            offset: addr(f.offset),
            function: f.function.map(|(n, _)| n.to_string()),
            function_offset: f.function.map(|(_, o)| addr(o)),
            file: f.source.map(|s| s.file.clone()),
            line: f.source.map(|s| s.line),
            inlined: f
                .inlined
                .iter()
                .map(|i| InlineJson {
                    function: i.function.clone(),
                    file: i.source.as_ref().map(|s| s.file.clone()),
                    line: i.source.as_ref().map(|s| s.line),
                    text: inline_text(short, i),
                })
                .collect(),
            text: sym.display(address),
        }
    }
}

#[derive(Serialize)]
struct EntryJson {
    key: String,
    count: u64,
    bytes: u64,
    pct_traced: Option<f64>,
    pct_busy: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    frames: Option<Vec<FrameJson>>,
}

/// `top --json`.
#[derive(Serialize)]
pub struct TopJson {
    by: &'static str,
    total_busy_bytes: u64,
    total_busy_blocks: u64,
    traced_bytes: u64,
    traced_blocks: u64,
    stacks: u64,
    entries: Vec<EntryJson>,
    notes: Vec<String>,
}

fn round4(p: f64) -> f64 {
    (p * 10_000.0).round() / 10_000.0
}

impl TopJson {
    /// Build the view.
    pub fn new(t: &Top, sym: &Symbolizer, limit: usize, notes: &[String]) -> Self {
        let entry = |e: &Entry| EntryJson {
            key: e.key.clone(),
            count: e.count,
            bytes: e.bytes,
            pct_traced: (e.traced && matches!(t.by, By::Module | By::Function | By::Stack))
                .then(|| round4(pct(e.bytes, t.health.traced_bytes))),
            pct_busy: round4(pct(e.bytes, t.health.busy_bytes)),
            frames: e
                .stack
                .as_ref()
                .map(|s| s.frames.iter().map(|&f| FrameJson::new(sym, f)).collect()),
        };
        TopJson {
            by: t.by.name(),
            total_busy_bytes: t.health.busy_bytes,
            total_busy_blocks: t.health.busy_blocks,
            traced_bytes: t.health.traced_bytes,
            traced_blocks: t.health.traced_blocks,
            stacks: t.health.stacks,
            entries: t.entries.iter().take(limit).map(entry).collect(),
            notes: notes.to_vec(),
        }
    }
}

/// CSV rows `key,count,bytes,pct_traced,pct_busy,frames` (frames innermost first, inlined
/// functions included, `;`-separated).
pub fn top_csv(t: &Top, sym: &Symbolizer, limit: usize) -> String {
    let mut out = String::from("key,count,bytes,pct_traced,pct_busy,frames\n");
    for e in t.entries.iter().take(limit) {
        let frames = e
            .stack
            .as_ref()
            .map(|s| {
                s.frames
                    .iter()
                    .flat_map(|&f| sym.lines(f))
                    .collect::<Vec<_>>()
                    .join(";")
            })
            .unwrap_or_default();
        let key = if e.key.contains([',', '"']) {
            format!("\"{}\"", e.key.replace('"', "\"\""))
        } else {
            e.key.clone()
        };
        let frames = if frames.contains([',', '"']) {
            format!("\"{}\"", frames.replace('"', "\"\""))
        } else {
            frames
        };
        let _ = writeln!(
            out,
            "{key},{},{},{},{:.4},{frames}",
            e.count,
            e.bytes,
            if e.traced {
                format!("{:.4}", pct(e.bytes, t.health.traced_bytes))
            } else {
                String::new()
            },
            pct(e.bytes, t.health.busy_bytes)
        );
    }
    out
}
