//! The report's leak sections: the suspects with their evidence, the unreachable blocks (by call
//! stack, and the roots of garbage with what each alone keeps alive), and what the blocks hold.

use super::{bytes, count, esc, stack_cell, table, text, Cell};
use crate::analysis::types::UNKNOWN;
use crate::report::format::evidence;
use crate::report::leaks::{describe, missing_roots, roots_of_garbage, unreachable_share};
use crate::value::Hex;
use crate::view::analyze::AnalyzeView;
use crate::view::leaks::LeaksView;
use std::fmt::Write as _;

/// Leak suspects, strongest evidence first, each with its stack expandable and its evidence.
pub fn suspects(page: &mut String, v: &AnalyzeView) {
    if v.unreachable.is_none() {
        return;
    }
    page.push_str(r#"<h2 id="suspects">Leak suspects</h2>"#);
    if v.suspects.is_empty() {
        page.push_str(r#"<p class="sub">None: no stack has unreachable blocks, grew, holds many blocks of one size or a large share.</p>"#);
        return;
    }
    page.push_str(r#"<p class="sub">Strongest evidence first: how many kinds of evidence agree, then unreachable bytes, growth, blocks of one size, bytes.</p>"#);
    let rows = v
        .suspects
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let who = match (&s.frames, s.backtrace) {
                (Some(frames), Some(b)) => stack_cell(&b.to_string(), Some(&s.key), frames),
                _ => text(&s.key),
            };
            let items: Vec<String> = evidence(s)
                .iter()
                .map(|e| format!("<li>{}</li>", esc(e)))
                .collect();
            vec![
                count(i as u64 + 1),
                who,
                Cell::Html(format!(r#"<ul class="evidence">{}</ul>"#, items.join(""))),
                bytes(s.outstanding.bytes),
            ]
        })
        .collect();
    table(
        page,
        "suspects-table",
        &["#", "Allocated by", "Evidence", "Outstanding"],
        rows,
    );
}

/// The unreachable blocks: totals, by call stack (or size), and the roots of garbage.
pub fn unreachable(page: &mut String, u: &LeaksView) {
    let _ = write!(
        page,
        r#"<h2 id="unreachable">Unreachable blocks</h2><p class="sub">{}</p>"#,
        esc(&format!(
            "{}: busy blocks that no chain of pointers from the thread stacks, registers, \
             writable image sections, TEBs, PEBs and heap headers reaches, in {}{}.",
            unreachable_share(u, "busy block"),
            roots_of_garbage(u.garbage_root_count),
            missing_roots(u.roots.missing)
        ))
    );
    let rows = u
        .groups
        .iter()
        .map(|g| {
            let key = match &g.frames {
                Some(frames) => stack_cell(&g.key, g.allocated_by.as_deref(), frames),
                None => text(&g.key),
            };
            vec![key, count(g.count), bytes(g.bytes)]
        })
        .collect();
    let _ = write!(page, "<h3>By {}</h3>", esc(u.by.name()));
    table(page, "unreachable-table", &["Key", "Blocks", "Bytes"], rows);
    page.push_str(r#"<h3>Roots of garbage</h3><p class="sub">Unreachable blocks, or cycles of them, that no other unreachable block points into; each retains its own bytes and those of the blocks only it keeps alive. <code>heapdiag leaks --why ADDR</code> shows the chain.</p>"#);
    let rows = u
        .garbage_roots
        .iter()
        .map(|r| {
            vec![
                text(Hex(r.address).to_string()),
                bytes(r.retained_bytes),
                count(r.retained_blocks),
                bytes(r.size),
                text(describe(r)),
            ]
        })
        .collect();
    table(
        page,
        "garbage-table",
        &["Root", "Retained", "Blocks", "Size", "Type / allocated by"],
        rows,
    );
}

/// Whether the type ranking says anything (some block's type is known).
pub fn any_type(v: &AnalyzeView) -> bool {
    v.types.entries.iter().any(|e| e.key != UNKNOWN)
}
