//! `heapdiag leaks` (totals, roots, groups like `top`, the roots of garbage, the suspects) and
//! `heapdiag leaks --why ADDR` (the chain, like `!heap -x -v` done transitively) as text, JSON and
//! CSV.

use super::csv::{self, col, hex, num, Column};
use super::format::{
    blocks_and_bytes, column, exact, frame_lines, left_out, notes, paragraph, ranked,
    ranking_table, size, size_cell, suspects, TableColumn,
};
use super::{Render, Style};
use crate::value::{pct, plural, Hex};
use crate::view::leaks::{GarbageRootRow, LeakBlock, LeakGroup, LeaksView, LinkView, WhyView};
use std::io::{self, Write};

impl Render for LeaksView {
    fn text(&self, out: &mut dyn Write, style: &Style) -> io::Result<()> {
        paragraph(
            out,
            style,
            "Unreachable busy blocks: ",
            &format!(
                "{}{}",
                unreachable_share(self, "block"),
                missing_roots(self.roots.missing)
            ),
        )?;
        paragraph(out, style, "Roots: ", &roots(self))?;
        writeln!(out, "\nUnreachable by {}", self.by.name())?;
        let stacks = |out: &mut dyn Write| group_stacks(out, &self.groups);
        let table = |out: &mut dyn Write| {
            ranking_table(out, GROUPS, self.by, &self.groups, |g| g.key.clone())
        };
        ranked(out, style, (&self.notes, None), self.by, stacks, table)?;
        left_out(out, self.more_groups, "more")?;
        garbage_roots(out, style, self)?;
        suspects(out, style, &self.suspects, "")
    }

    fn csv(&self, out: &mut dyn Write, _style: &Style) -> io::Result<()> {
        csv::table(out, BLOCKS, self.blocks.as_deref().unwrap_or_default())
    }
}

/// What the scan started from, in one sentence.
fn roots(v: &LeaksView) -> String {
    let r = &v.roots;
    let mut s = format!(
        "{} from their stack pointers ({}), {}, {} ({}), {} TEBs and PEBs, {}",
        plural(r.stacks, "thread stack"),
        size(r.stack_bytes),
        plural(r.registers, "register value"),
        plural(r.image_sections, "writable image section"),
        size(r.image_bytes),
        r.tebs_and_pebs,
        plural(r.heap_headers, "heap header")
    );
    if r.private_regions > 0 {
        s.push_str(&format!(
            ", {} ({})",
            plural(r.private_regions, "other private region"),
            size(r.private_bytes)
        ));
    }
    s
}

/// The groups' table: bytes, count, key.
const GROUPS: &[TableColumn<LeakGroup>] = &[
    column("Bytes", 12, |g| size_cell(&size(g.bytes), 12)),
    column("Blocks", 10, |g| g.count.to_string()),
];

/// UMDH style: each stack with its unreachable bytes and blocks, then its frames.
fn group_stacks(out: &mut dyn Write, groups: &[LeakGroup]) -> io::Result<()> {
    for g in groups {
        writeln!(
            out,
            "+ {} unreachable, BackTrace {}",
            blocks_and_bytes(g.count, g.bytes),
            g.key
        )?;
        if let Some(a) = &g.allocated_by {
            writeln!(out, "    allocated by {a}")?;
        }
        frame_lines(out, &g.frames, "        ")?;
    }
    Ok(())
}

/// The roots of garbage, most retained bytes first.
fn garbage_roots(out: &mut dyn Write, style: &Style, v: &LeaksView) -> io::Result<()> {
    writeln!(out)?;
    paragraph(
        out,
        style,
        "Roots of garbage: ",
        &format!(
            "{} (unreachable blocks, or cycles of them, that no other unreachable block points \
             into), most retained bytes first",
            v.garbage_root_count
        ),
    )?;
    if v.garbage_roots.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "{:>12} {:>8} {:>18} {:>12}  Type / allocated by",
        "Retained", "Blocks", "Root", "Size"
    )?;
    for r in &v.garbage_roots {
        writeln!(
            out,
            "{} {:>8} {:>18} {:>12}  {}",
            size_cell(&size(r.retained_bytes), 12),
            r.retained_blocks,
            Hex(r.address).to_string(),
            exact(r.size),
            describe(r)
        )?;
    }
    left_out(out, v.more_roots, "more roots of garbage")
}

/// A root's cycle, type and allocating frame.
pub fn describe(r: &GarbageRootRow) -> String {
    let mut parts = Vec::new();
    if r.members > 1 {
        parts.push(format!("cycle of {}", plural(r.members, "block")));
    }
    parts.extend(r.type_name.clone());
    parts.extend(r.allocated_by.clone());
    parts.join(", ")
}

/// `heap,address,size,garbage_root,retained_bytes,retained_by,type,stack`.
const BLOCKS: &[Column<LeakBlock>] = &[
    hex("heap", |b| b.heap.0),
    hex("address", |b| b.address.0),
    num("size", |b| b.size),
    col("garbage_root", |b| b.garbage_root.to_string()),
    col("retained_bytes", |b| {
        b.retained_bytes.map(|r| r.to_string()).unwrap_or_default()
    }),
    col("retained_by", |b| {
        b.retained_by
            .map(|r| Hex(r).to_string())
            .unwrap_or_default()
    }),
    col("type", |b| b.type_name.clone().unwrap_or_default()),
    col("stack", |b| {
        b.stack
            .iter()
            .flatten()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(";")
    }),
];

impl Render for WhyView {
    fn text(&self, out: &mut dyn Write, style: &Style) -> io::Result<()> {
        let b = &self.block;
        writeln!(
            out,
            "{} is in the busy block {}, {}{}, of heap {}",
            self.address,
            b.address,
            exact(b.size),
            b.type_name
                .as_ref()
                .map(|t| format!(", {t}"))
                .unwrap_or_default(),
            b.heap
        )?;
        if self.reachable {
            writeln!(out, "Reachable: kept alive by this chain of pointers")?;
        } else {
            writeln!(
                out,
                "Unreachable: no chain of pointers from the roots leads to it"
            )?;
            match self.retained_by {
                Some(r) => writeln!(out, "Root of garbage that alone keeps it: {}", Hex(r))?,
                None => writeln!(out, "Several roots of garbage keep it")?,
            }
            writeln!(out, "Chain from a root of garbage:")?;
        }
        for (i, l) in self.chain.iter().enumerate() {
            link(out, l, i)?;
        }
        if !self.reachable {
            let from: Vec<String> = self.pointed_from.iter().map(Hex::to_string).collect();
            let from = if from.is_empty() {
                "none".to_string()
            } else {
                from.join(", ")
            };
            paragraph(out, style, "Pointed to by unreachable blocks: ", &from)?;
        }
        if let Some(frames) = &b.frames {
            writeln!(out, "Allocation stack:")?;
            for f in frames {
                for line in f.lines() {
                    writeln!(out, "    {} {line}", f.address)?;
                }
            }
        }
        notes(out, style, "", &self.notes)
    }
}

/// One step: `stack of thread 0x1000 (64-bit): 0x… holds 0x…`, `-> block 0x…, 64 B: +0x18
/// holds 0x…`.
fn link(out: &mut dyn Write, l: &LinkView, i: usize) -> io::Result<()> {
    let arrow = if i == 0 { "   " } else { "-> " };
    let held = match (l.at, l.value, l.block) {
        (Some(at), Some(v), Some(b)) => format!(": +{:#x} holds {}", at - b, Hex(v)),
        (Some(at), Some(v), None) => format!(": {} holds {}", Hex(at), Hex(v)),
        (None, Some(v), None) => format!(" holds {}", Hex(v)),
        _ => String::new(),
    };
    match (&l.root, l.block) {
        (Some(root), _) => writeln!(out, "  {arrow}{root}{held}"),
        (None, Some(b)) => writeln!(
            out,
            "  {arrow}block {}, {}{}{held}",
            Hex(b),
            exact(l.size.unwrap_or(0)),
            l.type_name
                .as_ref()
                .map(|t| format!(", {t}"))
                .unwrap_or_default()
        ),
        (None, None) => Ok(()),
    }
}

/// `1 root of garbage`, `2 roots of garbage`.
pub fn roots_of_garbage(n: u64) -> String {
    if n == 1 {
        "1 root of garbage".into()
    } else {
        format!("{n} roots of garbage")
    }
}

/// A warning that the count may be too high, when roots are missing from the dump.
pub fn missing_roots(n: u64) -> String {
    match n {
        0 => String::new(),
        1 => "; 1 root is missing from the dump (see the notes), so some of these may be reachable"
            .into(),
        n => format!(
            "; {n} roots are missing from the dump (see the notes), so some of these may be reachable"
        ),
    }
}

/// `18 of 25 blocks (72.0%), 1.3 kB of 1.6 kB (78.9%)`: the unreachable share of the busy
/// blocks (`noun`) and of their bytes.
pub fn unreachable_share(v: &LeaksView, noun: &str) -> String {
    format!(
        "{} of {} ({:.1}%), {} of {} ({:.1}%)",
        v.unreachable_blocks,
        plural(v.busy_blocks, noun),
        pct(v.unreachable_blocks, v.busy_blocks),
        size(v.unreachable_bytes),
        size(v.busy_bytes),
        pct(v.unreachable_bytes, v.busy_bytes)
    )
}
