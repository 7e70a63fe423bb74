//! Text view of `heapdiag info`.

use super::format::{addr, human, utc};
use crate::capabilities::Capability;
use crate::dump::names::dump_flag_names;
use crate::dump::{Dump, MemorySource};
use crate::layout::global_flag_names;
use crate::process::{PageHeapLink, Process};
use comfy_table::{presets::NOTHING, CellAlignment, Table};
use std::fmt::Write;

/// Render `info`. With `modules`, every module is listed.
pub fn info_text(dump: &Dump, process: &Process, caps: &[Capability], modules: bool) -> String {
    let mut out = String::new();
    let mem = dump.memory();
    let _ = writeln!(
        out,
        "File:        {} ({})",
        dump.path().display(),
        human(dump.file_len()).trim()
    );
    let _ = writeln!(out, "Written:     {}", utc(dump.header.timestamp));
    let flags = dump_flag_names(dump.header.flags)
        .iter()
        .map(|n| n.trim_start_matches("MiniDump"))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        out,
        "Dump flags:  {:#x}{}",
        dump.header.flags,
        if flags.is_empty() {
            String::new()
        } else {
            format!(" ({flags})")
        }
    );
    let source = match dump.memory_source {
        MemorySource::List64 => "Memory64List (full memory)",
        MemorySource::List => "MemoryList (minidump)",
        MemorySource::None => "no memory stream",
    };
    let _ = writeln!(
        out,
        "Memory:      {} in {} ranges, from {}",
        human(mem.captured_bytes()).trim(),
        mem.ranges().len(),
        source
    );
    match &dump.system {
        Some(s) => {
            let _ = writeln!(
                out,
                "System:      {} Windows {}.{}.{}{}, {} processors",
                s.arch.name(),
                s.major,
                s.minor,
                s.build,
                s.csd
                    .as_deref()
                    .map(|c| format!(" {c}"))
                    .unwrap_or_default(),
                s.processors
            );
        }
        None => {
            let _ = writeln!(out, "System:      unknown (no SystemInfo stream)");
        }
    }
    let pid = dump
        .misc
        .as_ref()
        .and_then(|m| m.process_id)
        .map(|p| format!("pid {p} ({p:#x})"))
        .unwrap_or_else(|| "pid unknown".into());
    let image = process
        .main_module(&dump.modules)
        .map(|m| m.file_name().to_string())
        .unwrap_or_else(|| "unknown image".into());
    let _ = writeln!(
        out,
        "Process:     {image}, {pid}{}",
        if process.wow64 {
            ", WoW64 (32-bit process on 64-bit Windows)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "Modules:     {} loaded{}",
        dump.modules.len(),
        dump.unloaded_modules
            .as_ref()
            .map(|u| format!(", {} unloaded", u.len()))
            .unwrap_or_default()
    );
    let _ = writeln!(out, "Threads:     {}", dump.threads.len());
    if let Some(h) = dump.handle_count {
        let _ = writeln!(out, "Handles:     {h}");
    }
    let names: Vec<String> = dump
        .directory
        .iter()
        .filter(|e| e.kind != 0)
        .map(|e| match e.name {
            Some(n) => n.trim_end_matches("Stream").to_string(),
            None => format!("{:#x}", e.kind),
        })
        .collect();
    let _ = writeln!(out, "Streams:     {}", names.join(", "));

    for w in &process.worlds {
        let suffix = if process.wow64 {
            w.bits.to_string()
        } else {
            String::new()
        };
        out.push('\n');
        match &w.peb {
            Some(p) => {
                let flags = global_flag_names(p.nt_global_flag);
                let _ = writeln!(
                    out,
                    "PEB{suffix} at {}: NtGlobalFlag {:#x}{}, NumberOfHeaps {}",
                    addr(p.address),
                    p.nt_global_flag,
                    if flags.is_empty() {
                        " (none)".to_string()
                    } else {
                        format!(" ({})", flags.join(" "))
                    },
                    p.number_of_heaps
                );
                heap_table(&mut out, &w.heaps, Some(p.process_heap));
            }
            None => {
                let _ = writeln!(out, "PEB{suffix}: not found");
                heap_table(&mut out, &w.heaps, None);
            }
        }
        for n in &w.notes {
            let _ = writeln!(out, "  note: {n}");
        }
    }

    if modules && !dump.modules.is_empty() {
        out.push('\n');
        let mut t = Table::new();
        t.load_style(NOTHING);
        t.set_header(vec!["Base", "Size", "Module", "Version", "PDB"]);
        for m in &dump.modules {
            t.add_row(vec![
                addr(m.base),
                format!("{:#x}", m.size),
                m.file_name().to_string(),
                m.version.clone().unwrap_or_default(),
                match (&m.pdb_name, &m.pdb_guid, m.pdb_age) {
                    (Some(n), Some(g), Some(a)) => format!("{n} {g} age {a}"),
                    (Some(n), _, _) => n.clone(),
                    _ => String::new(),
                },
            ]);
        }
        let _ = writeln!(out, "{t}");
    }

    out.push_str("\nWhat this dump can answer:\n");
    for c in caps {
        let _ = writeln!(out, "  {:<7}{}: {}", c.answer.word(), c.question, c.reason);
    }
    if !dump.problems.is_empty() {
        out.push_str("\nProblems in the dump file:\n");
        for p in &dump.problems {
            let _ = writeln!(out, "  {p}");
        }
    }
    out
}

/// The heaps of one world, one row each (nothing when there are none).
fn heap_table(out: &mut String, heaps: &[crate::process::Heap], process_heap: Option<u64>) {
    if heaps.is_empty() {
        return;
    }
    let mut t = Table::new();
    t.load_style(NOTHING);
    t.set_header(vec![
        "  Heap",
        "Type",
        "Segments",
        "Reserved",
        "Large blocks",
        "Notes",
    ]);
    for h in heaps {
        let reserved: u64 = h.segments.iter().map(|s| s.size()).sum();
        let mut notes = Vec::new();
        if Some(h.address) == process_heap {
            notes.push("process heap".to_string());
        }
        match h.page {
            Some(PageHeapLink::Root { normal, light }) => notes.push(format!(
                "{} page heap{}",
                if light { "light" } else { "full" },
                normal
                    .map(|n| format!(", normal heap {}", addr(n)))
                    .unwrap_or_default()
            )),
            Some(PageHeapLink::Normal(of)) => {
                notes.push(format!("normal heap of page heap {}", addr(of)))
            }
            None => {}
        }
        notes.extend(h.problems.iter().cloned());
        t.add_row(vec![
            format!("  {}", addr(h.address)),
            h.kind.name().to_string(),
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
    let _ = writeln!(out, "{t}");
}
