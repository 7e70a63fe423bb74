//! `heapdiag info` as text (JSON: the view itself; no CSV).

use super::format::{paragraph, size, size_cell};
use super::{Render, Style};
use crate::dump::MemorySource;
use crate::symsrv::name::printable;
use crate::value::plural;
use crate::view::info::{InfoView, WorldView};
use comfy_table::{presets::NOTHING, CellAlignment, ContentArrangement, Table};
use std::io::{self, Write};

impl Render for InfoView {
    fn text(&self, out: &mut dyn Write, style: &Style) -> io::Result<()> {
        facts(self, out)?;
        for w in &self.worlds {
            world(self, w, out, style)?;
        }
        if self.list_modules && !self.modules.is_empty() {
            modules(self, out)?;
        }
        writeln!(out, "\nWhat this dump can answer:")?;
        for c in &self.capabilities {
            let first = format!("  {:<7}", c.answer.word());
            paragraph(out, style, &first, &format!("{}: {}", c.question, c.reason))?;
        }
        if !self.problems.is_empty() {
            writeln!(out, "\nProblems in the dump file:")?;
            for p in &self.problems {
                paragraph(out, style, "  ", p)?;
            }
        }
        Ok(())
    }
}

/// `File:` to `Streams:`.
fn facts(v: &InfoView, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "File:        {} ({})", v.file, size(v.file_size))?;
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
        "Memory:      {} in {}, from {source}",
        size(v.memory.captured_bytes),
        plural(v.memory.ranges as u64, "range")
    )?;
    match (&v.arch, &v.os_version, v.processors) {
        (Some(arch), Some(os), Some(n)) => writeln!(
            out,
            "System:      {arch} Windows {}, {}",
            os_text(os, v.csd_version.as_deref()),
            plural(u64::from(n), "processor")
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

/// `10.0.22000.282` when the CSD string is the build's revision (as some dumpers write it),
/// `6.1.7601 Service Pack 1` when it names a service pack.
fn os_text(version: &str, csd: Option<&str>) -> String {
    match csd.map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) if c.bytes().all(|b| b.is_ascii_digit()) => format!("{version}.{c}"),
        Some(c) => format!("{version} {}", printable(c)),
        None => version.to_string(),
    }
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
        printable(v.image.as_deref().unwrap_or("unknown image")),
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
fn world(v: &InfoView, w: &WorldView, out: &mut dyn Write, style: &Style) -> io::Result<()> {
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
    heap_table(v, w.bits, out, style)?;
    for n in &w.notes {
        paragraph(out, style, "  note: ", n)?;
    }
    Ok(())
}

/// The heaps of the `bits`-bit world (its PEB's, or found by their signatures), if any.
fn heap_table(v: &InfoView, bits: u32, out: &mut dyn Write, style: &Style) -> io::Result<()> {
    let heaps: Vec<_> = v.heaps.iter().filter(|h| h.bits == bits).collect();
    if heaps.is_empty() {
        return Ok(());
    }
    let mut t = table(
        &[
            "  Heap",
            "Type",
            "Segments",
            "Reserved",
            "Large blocks",
            "Notes",
        ],
        Some(style),
    );
    for h in heaps {
        let reserved: u64 = h.segments.iter().map(|s| s.size).sum();
        let mut notes = Vec::new();
        if h.process_heap {
            notes.push("process heap".to_string());
        }
        notes.extend(h.page_heap_note());
        notes.extend(h.problems.iter().map(|p| printable(p).into_owned()));
        t.add_row(vec![
            format!("  {}", h.address),
            h.kind.to_string(),
            h.segments.len().to_string(),
            if h.segments.is_empty() {
                String::new()
            } else {
                size_cell(&size(reserved), 10)
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

/// Every module; on WoW64 with its width (32 or 64).
fn modules(v: &InfoView, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out)?;
    let mut header = vec!["Base", "Size", "Module", "Version", "PDB"];
    if v.wow64 {
        header.insert(2, "Bits");
    }
    let mut t = table(&header, None);
    for m in &v.modules {
        let mut row = vec![
            m.base.to_string(),
            size_cell(&size(m.size), 10),
            printable(&m.name).into_owned(),
            m.version.clone().unwrap_or_default(),
            match (&m.pdb, &m.pdb_guid, m.pdb_age) {
                (Some(n), Some(g), Some(a)) => format!("{} {g} age {a}", cut(n)),
                (Some(n), _, _) => cut(n),
                _ => String::new(),
            },
        ];
        if v.wow64 {
            row.insert(2, m.bits.map(|b| b.to_string()).unwrap_or_default());
        }
        t.add_row(row);
    }
    if let Some(c) = t.column_mut(1) {
        c.set_cell_alignment(CellAlignment::Right);
    }
    writeln!(out, "{t}")
}

/// A name from the dump as a table shows it: control characters escaped, at most 100 characters
/// (then `…` and its length; `--json` has it whole).
fn cut(name: &str) -> String {
    let shown = printable(name);
    match shown.char_indices().nth(100) {
        Some((i, _)) => format!("{}… ({} bytes)", &shown[..i], name.len()),
        None => shown.into_owned(),
    }
}

/// A borderless table with `header`; with a style, its widest columns (notes) wrapped to the
/// style's width.
fn table(header: &[&str], wrap: Option<&Style>) -> Table {
    let mut t = Table::new();
    t.load_style(NOTHING);
    t.set_header(header.to_vec());
    if let Some(style) = wrap {
        t.set_content_arrangement(ContentArrangement::Dynamic);
        t.set_width(u16::try_from(style.width).unwrap_or(u16::MAX));
    }
    t
}
