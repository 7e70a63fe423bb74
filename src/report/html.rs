//! `analyze --html`: one self-contained page (inline style, script and flamegraphs; no network,
//! no fonts), read top to bottom: the summary, what the dump can answer, address usage, the heaps,
//! outstanding memory by module, function, stack and size, the flamegraph, the leak suspects, the
//! unreachable blocks, the types, the growth against a baseline with its differential flamegraph,
//! and the notes. Tables sort and filter in the page (`html/report.js`); the flamegraphs are
//! inferno's SVG, each in a frame of its own so their scripts (search, zoom) do not meet.

mod leaks;

use super::format::{percent, signed_size, size};
use crate::analysis::folded::{clean, Folded};
use crate::view::analyze::AnalyzeView;
use crate::view::diff::DiffView;
use crate::view::frame::FrameView;
use crate::view::top::TopView;
use std::fmt::Write as _;
use std::io::{self, Write};

const CSS: &str = include_str!("html/report.css");
const JS: &str = include_str!("html/report.js");

/// Escape text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A table cell: its text, and the value it sorts by (numbers).
enum Cell {
    Text(String),
    Num(String, f64),
    Html(String),
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

fn bytes(b: u64) -> Cell {
    Cell::Num(size(b), b as f64)
}

fn count(n: u64) -> Cell {
    Cell::Num(n.to_string(), n as f64)
}

fn share(p: f64) -> Cell {
    Cell::Num(percent(p), p)
}

/// A sortable, filterable table.
fn table(page: &mut String, id: &str, headers: &[&str], rows: Vec<Vec<Cell>>) {
    let _ = write!(
        page,
        r#"<input class="filter noprint" data-table="{id}" placeholder="filter rows"><table class="sortable" id="{id}" data-num-col="{}"><thead><tr>"#,
        first_num_col(&rows)
    );
    for h in headers {
        let _ = write!(page, "<th>{}</th>", esc(h));
    }
    page.push_str("</tr></thead><tbody>");
    for r in rows {
        page.push_str("<tr>");
        for c in r {
            match c {
                Cell::Text(t) => {
                    let _ = write!(page, "<td>{}</td>", esc(&t));
                }
                Cell::Num(t, v) => {
                    let _ = write!(page, r#"<td class="num" data-v="{v}">{}</td>"#, esc(&t));
                }
                Cell::Html(h) => {
                    let _ = write!(page, "<td>{h}</td>");
                }
            }
        }
        page.push_str("</tr>");
    }
    page.push_str("</tbody></table>");
}

fn first_num_col(rows: &[Vec<Cell>]) -> usize {
    rows.first()
        .and_then(|r| r.iter().position(|c| matches!(c, Cell::Num(..))))
        .unwrap_or(0)
}

/// Write the report.
pub fn write(v: &AnalyzeView, out: &mut dyn Write) -> io::Result<()> {
    let mut page = String::with_capacity(1 << 20);
    head(&mut page, v);
    summary(&mut page, v);
    answers(&mut page, v);
    address(&mut page, v);
    heaps(&mut page, v);
    ranking(&mut page, "modules", "By module", &v.modules);
    ranking(&mut page, "functions", "By function", &v.functions);
    stacks(&mut page, &v.stacks);
    ranking(&mut page, "sizes", "By requested size", &v.sizes);
    flame(
        &mut page,
        "Flamegraph: outstanding bytes by call stack",
        flamegraph(&v.folded, None),
    );
    leaks::suspects(&mut page, v);
    if let Some(u) = &v.unreachable {
        leaks::unreachable(&mut page, u);
    }
    if leaks::any_type(v) {
        ranking(
            &mut page,
            "types",
            "By type (what the blocks hold)",
            &v.types,
        );
    }
    if let Some(d) = &v.diff {
        growth(&mut page, v, d);
    }
    notes(&mut page, v);
    let _ = write!(
        page,
        "<footer>Written by heapdiag {} from {}. Numbers as WinDbg defines them; see docs/ for the definitions.</footer><script>{JS}</script></body></html>",
        env!("CARGO_PKG_VERSION"),
        esc(&v.info.file)
    );
    out.write_all(page.as_bytes())
}

fn head(page: &mut String, v: &AnalyzeView) {
    let image = v.info.image.as_deref().unwrap_or("process");
    let _ = write!(
        page,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>heapdiag: {}</title><style>{CSS}</style></head><body><h1>Memory of {}</h1><p class="sub">{}{} · {} Windows {} · dump written {} · {}</p>"#,
        esc(image),
        esc(image),
        v.info
            .process_id
            .map(|p| format!("pid {p} · "))
            .unwrap_or_default(),
        esc(&v.info.file),
        esc(v.info.arch.as_deref().unwrap_or("unknown architecture")),
        esc(v.info.os_version.as_deref().unwrap_or("(unknown version)")),
        esc(&v.info.timestamp),
        esc(&size(v.info.file_size))
    );
}

/// The few sentences a reader needs first.
fn summary(page: &mut String, v: &AnalyzeView) {
    let mut lines = Vec::new();
    let h = &v.headline;
    lines.push(format!(
        "{} committed: native heaps {}, other private memory {}, images {}, mapped views {}.",
        size(h.committed),
        size(h.native_heaps),
        size(h.other_private),
        size(h.images),
        size(h.mapped)
    ));
    let busy: u64 = v.heaps.heaps.iter().map(|h| h.busy_bytes).sum();
    let blocks: u64 = v.heaps.heaps.iter().map(|h| h.busy_blocks).sum();
    lines.push(format!(
        "{} heaps hold {blocks} busy blocks, {} requested.",
        v.heaps.heaps.len(),
        size(busy)
    ));
    if let Some(m) = v.modules.entries.iter().find(|e| e.pct_traced.is_some()) {
        lines.push(format!(
            "Module {} is responsible for {} of outstanding allocations ({} of busy heap bytes, {} blocks).",
            m.key,
            size(m.bytes),
            percent(m.pct_busy),
            m.count
        ));
    }
    if let Some(f) = v.functions.entries.iter().find(|e| e.pct_traced.is_some()) {
        lines.push(format!(
            "The largest allocating function is {} with {} in {} blocks.",
            f.key,
            size(f.bytes),
            f.count
        ));
    }
    if let Some(s) = v.suspects.first() {
        lines.push(format!(
            "The first leak suspect is {}: {}.",
            s.key,
            super::format::evidence(s).join("; ")
        ));
    }
    if let Some(u) = v.unreachable.as_ref().filter(|u| u.unreachable_blocks > 0) {
        lines.push(format!(
            "{} unreachable blocks hold {}{} (see Unreachable blocks).",
            u.unreachable_blocks,
            size(u.unreachable_bytes),
            super::leaks::missing_roots(u.roots.missing)
        ));
    }
    if let Some(d) = &v.diff {
        lines.push(format!(
            "Since the baseline, busy heap memory changed by {}{}.",
            signed_size(d.totals.delta),
            d.entries
                .first()
                .filter(|e| e.delta.bytes > 0)
                .map(|e| format!(
                    "; the most growth is stack {} ({})",
                    e.key,
                    signed_size(e.delta.bytes)
                ))
                .unwrap_or_default()
        ));
    }
    page.push_str(r#"<h2 id="summary">Summary</h2><div class="lead"><ul>"#);
    for l in lines {
        let _ = write!(page, "<li>{}</li>", esc(&l));
    }
    page.push_str("</ul></div>");
}

fn answers(page: &mut String, v: &AnalyzeView) {
    page.push_str(r#"<h2 id="answers">What this dump can answer</h2><ul>"#);
    for c in &v.info.capabilities {
        let _ = write!(
            page,
            r#"<li><span class="answer-{w}">{w}</span> {}: {}</li>"#,
            esc(c.question),
            esc(&c.reason),
            w = c.answer.word()
        );
    }
    page.push_str("</ul>");
}

/// The committed memory as a bar, then the `!address -summary` usage table.
fn address(page: &mut String, v: &AnalyzeView) {
    let h = &v.headline;
    page.push_str(r#"<h2 id="address">Address usage</h2><div class="bar">"#);
    let parts = [
        ("native heaps", h.native_heaps, "#b3261e"),
        ("other private", h.other_private, "#e8a33d"),
        ("images", h.images, "#4f7fbf"),
        ("mapped", h.mapped, "#7aa874"),
    ];
    for (name, b, color) in parts {
        if h.committed > 0 && b > 0 {
            let _ = write!(
                page,
                r#"<div title="{name}: {}" style="width:{:.3}%;background:{color}"></div>"#,
                esc(&size(b)),
                b as f64 * 100.0 / h.committed as f64
            );
        }
    }
    page.push_str(r#"</div><div class="legend">"#);
    for (name, b, color) in parts {
        let _ = write!(
            page,
            r#"<span><i style="background:{color}"></i>{name} {}</span>"#,
            esc(&size(b))
        );
    }
    page.push_str("</div>");
    let rows = v
        .address
        .usage
        .iter()
        .map(|r| {
            vec![
                text(&r.name),
                count(r.regions),
                bytes(r.bytes),
                r.pct_busy.map_or(text(""), share),
                share(r.pct_total),
            ]
        })
        .collect();
    table(
        page,
        "usage",
        &["Usage", "Regions", "Size", "% of busy", "% of total"],
        rows,
    );
}

fn heaps(page: &mut String, v: &AnalyzeView) {
    page.push_str(r#"<h2 id="heaps">Heaps</h2>"#);
    let rows = v
        .heaps
        .heaps
        .iter()
        .map(|h| {
            vec![
                Cell::Html(format!("<code>{:#x}</code>", h.address)),
                text(format!("{} ({}-bit)", h.kind.name(), h.bits)),
                bytes(h.reserved),
                bytes(h.committed),
                count(h.busy_blocks),
                bytes(h.busy_bytes),
                count(h.corruptions.len() as u64),
                text(h.notes.join("; ")),
            ]
        })
        .collect();
    table(
        page,
        "heaps-table",
        &[
            "Heap",
            "Type",
            "Reserved",
            "Committed",
            "Busy blocks",
            "Busy bytes",
            "Corruptions",
            "Notes",
        ],
        rows,
    );
}

fn ranking(page: &mut String, id: &str, title: &str, t: &TopView) {
    let _ = write!(page, r#"<h2 id="{id}">{}</h2>"#, esc(title));
    let rows = t
        .entries
        .iter()
        .map(|e| {
            vec![
                text(&e.key),
                count(e.count),
                bytes(e.bytes),
                share(e.pct_busy),
            ]
        })
        .collect();
    table(
        page,
        &format!("{id}-table"),
        &["Key", "Blocks", "Bytes", "% of busy"],
        rows,
    );
    for n in &t.notes {
        let _ = write!(page, r#"<p class="note">{}</p>"#, esc(n));
    }
}

/// A stack's cell: its key and the frame it is attributed to, expanding to
/// every frame (inlined functions on their own lines), as `top` prints them.
fn stack_cell(key: &str, allocator: Option<&str>, frames: &[FrameView]) -> Cell {
    let all: Vec<String> = frames.iter().flat_map(FrameView::lines).map(esc).collect();
    Cell::Html(format!(
        r#"<details><summary><code>{}</code> {}</summary><div class="frames mono">{}</div></details>"#,
        esc(key),
        esc(allocator.unwrap_or_default()),
        all.join("\n")
    ))
}

/// Call stacks, each expandable to its frames.
fn stacks(page: &mut String, t: &TopView) {
    page.push_str(r#"<h2 id="stacks">By call stack</h2>"#);
    let rows = t
        .entries
        .iter()
        .map(|e| {
            let stack = match &e.frames {
                Some(frames) => stack_cell(&e.key, e.allocator.as_deref(), frames),
                None => text(&e.key),
            };
            vec![stack, count(e.count), bytes(e.bytes), share(e.pct_busy)]
        })
        .collect();
    table(
        page,
        "stacks-table",
        &["Stack", "Blocks", "Bytes", "% of busy"],
        rows,
    );
}

fn growth(page: &mut String, v: &AnalyzeView, d: &DiffView) {
    let _ = write!(
        page,
        r#"<h2 id="growth">Growth since the baseline</h2><p class="sub">Baseline {}: busy heap bytes {} → {} ({}).</p>"#,
        esc(v.baseline.as_deref().unwrap_or("")),
        esc(&size(d.totals.before)),
        esc(&size(d.totals.after)),
        esc(&signed_size(d.totals.delta))
    );
    let rows = d
        .entries
        .iter()
        .map(|e| {
            let key = match &e.frames {
                Some(frames) => stack_cell(&e.key, e.allocator.as_deref(), frames),
                None => text(&e.key),
            };
            vec![
                key,
                Cell::Num(signed_size(e.delta.bytes), e.delta.bytes as f64),
                Cell::Num(format!("{:+}", e.delta.count), e.delta.count as f64),
                bytes(e.before.bytes),
                bytes(e.after.bytes),
            ]
        })
        .collect();
    table(
        page,
        "growth-table",
        &["Key", "Growth", "Blocks", "Before", "After"],
        rows,
    );
    if let Some(diff) = &v.differential {
        flame(
            page,
            "Differential flamegraph: growth by call stack (red grew, blue shrank)",
            flamegraph(&[], Some(diff)),
        );
    }
}

fn notes(page: &mut String, v: &AnalyzeView) {
    if v.next_steps.is_empty() {
        return;
    }
    page.push_str(r#"<h2 id="notes">What the dump cannot tell, and what to do</h2><ul>"#);
    for n in &v.next_steps {
        let _ = write!(page, "<li>{}</li>", esc(n));
    }
    page.push_str("</ul>");
}

/// A flamegraph in its own frame (or a sentence when there is nothing to draw).
fn flame(page: &mut String, title: &str, svg: Option<String>) {
    let _ = write!(page, "<h2>{}</h2>", esc(title));
    match svg {
        Some(svg) => {
            let _ = write!(
                page,
                r#"<iframe class="flame" title="{}" height="{}" srcdoc="{}"></iframe><p class="note noprint">Click a frame to zoom; Search (top right) highlights matching frames.</p>"#,
                esc(title),
                svg_height(&svg) + 24,
                esc(&format!(
                    r#"<!doctype html><html><head><meta charset="utf-8"></head><body style="margin:0">{svg}</body></html>"#
                ))
            );
        }
        None => page.push_str(r#"<p class="note">No call stacks to draw.</p>"#),
    }
}

/// The height an SVG asks for (its `height` attribute), 520 when it does not say.
fn svg_height(svg: &str) -> usize {
    svg.split_once(" height=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .and_then(|(h, _)| h.parse().ok())
        .unwrap_or(520)
}

/// inferno's SVG of `folded` (or of the differential set), `None` when empty.
fn flamegraph(
    folded: &[Folded],
    differential: Option<&[(Vec<String>, u64, u64)]>,
) -> Option<String> {
    let line = |frames: &[String]| {
        frames
            .iter()
            .map(|f| clean(f))
            .collect::<Vec<_>>()
            .join(";")
    };
    let lines: Vec<String> = match differential {
        Some(d) => d
            .iter()
            .map(|(f, b, a)| format!("{} {b} {a}", line(f)))
            .collect(),
        None => folded
            .iter()
            .filter(|f| f.bytes > 0)
            .map(|f| format!("{} {}", line(&f.frames), f.bytes))
            .collect(),
    };
    if lines.is_empty() {
        return None;
    }
    let mut opts = inferno::flamegraph::Options::default();
    opts.count_name = "bytes".into();
    opts.title = String::new();
    opts.hash = true;
    opts.image_width = Some(1200);
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut opts, lines.iter().map(String::as_str), &mut svg).ok()?;
    String::from_utf8(svg).ok()
}
