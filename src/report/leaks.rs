//! `heapdiag leaks` (totals, roots, groups like `top`, the roots of garbage) and `heapdiag leaks
//! --why ADDR` (the chain, like `!heap -x -v` done transitively) as text, JSON and CSV.

use super::csv::{self, col, hex, num, Column};
use super::format::{
    column, frame_lines, human, left_out, ranked, ranking_table, suspects, TableColumn,
};
use super::Render;
use crate::value::{pct, Hex};
use crate::view::leaks::{GarbageRootRow, LeakBlock, LeakGroup, LeaksView, LinkView, WhyView};
use std::io::{self, Write};

impl Render for LeaksView {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "Unreachable busy blocks: {} of {} ({:.1}%), {} of {} ({:.1}%)",
            self.unreachable_blocks,
            self.busy_blocks,
            pct(self.unreachable_blocks, self.busy_blocks),
            human(self.unreachable_bytes).trim(),
            human(self.busy_bytes).trim(),
            pct(self.unreachable_bytes, self.busy_bytes)
        )?;
        roots(out, self)?;
        let stacks = |out: &mut dyn Write| group_stacks(out, &self.groups);
        let table =
            |out: &mut dyn Write| ranking_table(out, GROUPS, self.by, &self.groups, |g| &g.key);
        writeln!(out, "\nUnreachable by {}", self.by.name())?;
        ranked(out, &self.notes, self.by, stacks, table)?;
        left_out(out, self.more_groups, "more")?;
        garbage_roots(out, self)?;
        suspects(out, &self.suspects, "")
    }

    fn csv(&self, out: &mut dyn Write) -> io::Result<()> {
        csv::table(out, BLOCKS, &self.blocks)
    }
}

/// What the scan started from, in one line.
fn roots(out: &mut dyn Write, v: &LeaksView) -> io::Result<()> {
    let r = &v.roots;
    write!(
        out,
        "Roots: {} from their stack pointers ({}), {}, {} ({}), {}, {}",
        plural(r.stacks, "thread stack"),
        human(r.stack_bytes).trim(),
        plural(r.registers, "register value"),
        plural(r.image_sections, "writable image section"),
        human(r.image_bytes).trim(),
        plural(r.tebs_and_pebs, "TEB or PEB").replace("TEB or PEBs", "TEBs and PEBs"),
        plural(r.heap_headers, "heap header")
    )?;
    if r.private_regions > 0 {
        write!(
            out,
            ", {} ({})",
            plural(r.private_regions, "other private region"),
            human(r.private_bytes).trim()
        )?;
    }
    writeln!(out)
}

/// `1 heap header`, `2 heap headers`.
fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The groups' table: bytes, count, key.
const GROUPS: &[TableColumn<LeakGroup>] = &[
    column("Bytes", 14, |g| format!("{:#x}", g.bytes)),
    column("", 12, |g| format!("({})", human(g.bytes).trim())),
    column("Count", 10, |g| g.count.to_string()),
];

/// UMDH style: each stack with its unreachable bytes and count, then its frames.
fn group_stacks(out: &mut dyn Write, groups: &[LeakGroup]) -> io::Result<()> {
    for g in groups {
        writeln!(
            out,
            "+ {:#x} ({}) unreachable in {} allocations, BackTrace {}",
            g.bytes,
            human(g.bytes).trim(),
            g.count,
            g.key
        )?;
        frame_lines(out, &g.frames, "        ")?;
    }
    Ok(())
}

/// The roots of garbage, most retained bytes first.
fn garbage_roots(out: &mut dyn Write, v: &LeaksView) -> io::Result<()> {
    writeln!(
        out,
        "\nRoots of garbage: {} (unreachable blocks, or cycles of them, that no other unreachable block points into), most retained bytes first",
        v.garbage_root_count
    )?;
    if v.garbage_roots.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "{:>14} {:>12} {:>8} {:>18} {:>10}  Type / allocated by",
        "Retained", "", "Blocks", "Root", "Size"
    )?;
    for r in &v.garbage_roots {
        writeln!(
            out,
            "{:>14} {:>12} {:>8} {:>18} {:>10}  {}",
            format!("{:#x}", r.retained_bytes),
            format!("({})", human(r.retained_bytes).trim()),
            r.retained_blocks,
            Hex(r.address).to_string(),
            format!("{:#x}", r.size),
            describe(r)
        )?;
    }
    left_out(out, v.more_roots, "more roots of garbage")
}

/// A root's type, cycle and allocating frame.
fn describe(r: &GarbageRootRow) -> String {
    let mut parts = Vec::new();
    if r.members > 1 {
        parts.push(format!("cycle of {} blocks", r.members));
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
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let b = &self.block;
        writeln!(
            out,
            "{} is in the busy block {} ({:#x} bytes{}) of heap {}",
            self.address,
            b.address,
            b.size,
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
            writeln!(
                out,
                "Pointed to by unreachable blocks: {}",
                if from.is_empty() {
                    "none".to_string()
                } else {
                    from.join(", ")
                }
            )?;
        }
        if let Some(frames) = &b.frames {
            writeln!(out, "Allocation stack:")?;
            for f in frames {
                writeln!(out, "    {} {}", f.address, f.text)?;
            }
        }
        for n in &self.notes {
            writeln!(out, "Note: {n}")?;
        }
        Ok(())
    }
}

/// One step: `root  stack of thread 0x1000 (64-bit): 0x… holds 0x…`, `block 0x… (0x40 bytes):
/// +0x18 holds 0x…`.
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
            "  {arrow}block {} ({:#x} bytes{}){held}",
            Hex(b),
            l.size.unwrap_or(0),
            l.type_name
                .as_ref()
                .map(|t| format!(", {t}"))
                .unwrap_or_default()
        ),
        (None, None) => Ok(()),
    }
}
