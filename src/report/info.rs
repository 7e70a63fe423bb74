//! `heapdiag info` as text (JSON: the view itself; no CSV).

use super::format::human;
use super::Render;
use crate::dump::MemorySource;
use crate::view::info::{InfoView, WorldView};
use comfy_table::{presets::NOTHING, CellAlignment, Table};
use std::io::{self, Write};

impl Render for InfoView {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        facts(self, out)?;
        for w in &self.worlds {
            world(self, w, out)?;
        }
        if self.list_modules && !self.modules.is_empty() {
            modules(self, out)?;
        }
        writeln!(out, "\nWhat this dump can answer:")?;
        for c in &self.capabilities {
            writeln!(out, "  {:<7}{}: {}", c.answer.word(), c.question, c.reason)?;
        }
        if !self.problems.is_empty() {
            writeln!(out, "\nProblems in the dump file:")?;
            for p in &self.problems {
                writeln!(out, "  {p}")?;
            }
        }
        Ok(())
    }
}

/// `File:` to `Streams:`.
fn facts(v: &InfoView, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "File:        {} ({})",
        v.file,
        human(v.file_size).trim()
    )?;
    writeln!(out, "Written:     {}", v.timestamp)?;
    let flags: Vec<&str> = v
        .dump_flag_names
        .iter()
        .map(|n| n.trim_start_matches("MiniDump"))
        .collect();
    writeln!(
        out,
        "Dump flags:  {:#x}{}",
        v.dump_flags,
        parenthesized(&flags.join(", "))
    )?;
    let source = match v.memory.source {
        MemorySource::List64 => "Memory64List (full memory)",
        MemorySource::List => "MemoryList (minidump)",
        MemorySource::None => "no memory stream",
    };
    writeln!(
        out,
        "Memory:      {} in {} ranges, from {source}",
        human(v.memory.captured_bytes).trim(),
        v.memory.ranges
    )?;
    match (&v.arch, &v.os_version, v.processors) {
        (Some(arch), Some(os), Some(n)) => writeln!(
            out,
            "System:      {arch} Windows {os}{}, {n} processors",
            v.csd_version
                .as_deref()
                .map(|c| format!(" {c}"))
                .unwrap_or_default()
        )?,
        _ => writeln!(out, "System:      unknown (no SystemInfo stream)")?,
    }
    process(v, out)?;
    let streams: Vec<String> = v
        .streams
        .iter()
        .filter(|e| e.kind != 0)
        .map(|e| match e.name {
            Some(n) => n.trim_end_matches("Stream").to_string(),
            None => format!("{:#x}", e.kind),
        })
        .collect();
    writeln!(out, "Streams:     {}", streams.join(", "))
}

/// ` (text)`, or nothing for empty text.
fn parenthesized(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(" ({text})")
    }
}

/// `Process:` to `Handles:`.
fn process(v: &InfoView, out: &mut dyn Write) -> io::Result<()> {
    let pid = v
        .process_id
        .map(|p| format!("pid {p} ({p:#x})"))
        .unwrap_or_else(|| "pid unknown".into());
    writeln!(
        out,
        "Process:     {}, {pid}{}",
        v.image.as_deref().unwrap_or("unknown image"),
        if v.wow64 {
            ", WoW64 (32-bit process on 64-bit Windows)"
        } else {
            ""
        }
    )?;
    writeln!(
        out,
        "Modules:     {} loaded{}",
        v.modules.len(),
        v.unloaded_modules
            .as_ref()
            .map(|u| format!(", {} unloaded", u.len()))
            .unwrap_or_default()
    )?;
    writeln!(out, "Threads:     {}", v.threads.len())?;
    if let Some(h) = v.handles {
        writeln!(out, "Handles:     {h}")?;
    }
    Ok(())
}

/// One world: its PEB with its heaps, and its notes.
fn world(v: &InfoView, w: &WorldView, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out)?;
    match w.peb.and_then(|a| v.pebs.iter().find(|p| p.address == a)) {
        Some(p) => {
            let names = p.nt_global_flag_names.join(" ");
            writeln!(
                out,
                "{} at {}: NtGlobalFlag {:#x}{}, NumberOfHeaps {}",
                w.label,
                p.address,
                p.nt_global_flag,
                if names.is_empty() {
                    " (none)".to_string()
                } else {
                    parenthesized(&names)
                },
                p.number_of_heaps
            )?;
        }
        None => writeln!(out, "{}: not found", w.label)?,
    }
    heap_table(v, w.bits, out)?;
    for n in &w.notes {
        writeln!(out, "  note: {n}")?;
    }
    Ok(())
}

/// The heaps of the `bits`-bit world (its PEB's, or found by their signatures), if any.
fn heap_table(v: &InfoView, bits: u32, out: &mut dyn Write) -> io::Result<()> {
    let heaps: Vec<_> = v.heaps.iter().filter(|h| h.bits == bits).collect();
    if heaps.is_empty() {
        return Ok(());
    }
    let mut t = table(&[
        "  Heap",
        "Type",
        "Segments",
        "Reserved",
        "Large blocks",
        "Notes",
    ]);
    for h in heaps {
        let reserved: u64 = h.segments.iter().map(|s| s.size).sum();
        let mut notes = Vec::new();
        if h.process_heap {
            notes.push("process heap".to_string());
        }
        notes.extend(h.page_heap_note());
        notes.extend(h.problems.iter().cloned());
        t.add_row(vec![
            format!("  {}", h.address),
            h.kind.to_string(),
            h.segments.len().to_string(),
            if h.segments.is_empty() {
                String::new()
            } else {
                human(reserved).trim().to_string()
            },
            h.large_blocks.len().to_string(),
            notes.join("; "),
        ]);
    }
    for i in 2..5 {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    writeln!(out, "{t}")
}

/// Every module.
fn modules(v: &InfoView, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out)?;
    let mut t = table(&["Base", "Size", "Module", "Version", "PDB"]);
    for m in &v.modules {
        t.add_row(vec![
            m.base.to_string(),
            format!("{:#x}", m.size),
            m.name.clone(),
            m.version.clone().unwrap_or_default(),
            match (&m.pdb, &m.pdb_guid, m.pdb_age) {
                (Some(n), Some(g), Some(a)) => format!("{n} {g} age {a}"),
                (Some(n), _, _) => n.clone(),
                _ => String::new(),
            },
        ]);
    }
    writeln!(out, "{t}")
}

/// A borderless table with `header`.
fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(NOTHING);
    t.set_header(header.to_vec());
    t
}
