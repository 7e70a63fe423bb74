//! The subcommands as functions from an opened dump to the text they print, so that the command
//! line, the tests and the mutation test all run exactly the same code.

use crate::analysis::{self, blocks::BlockFilter};
use crate::capabilities;
use crate::dump::Dump;
use crate::heap::{self, HeapWalk};
use crate::pdbfile::SymbolPath;
use crate::process::HeapKind;
use crate::process::Process;
use crate::regions::{self, filter::RegionFilter, summary};
use crate::report::{self, address, csv, heap_json, heaps, info, json, top};
use crate::stacks::symbols::{ModuleMap, Symbolizer};
use crate::stacks::StackTable;
use std::io::Write;

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Human-readable text.
    Text,
    /// JSON (docs/json.md).
    Json,
    /// CSV.
    Csv,
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("views serialize");
    s.push('\n');
    s
}

/// `heapdiag info`. CSV is not offered for this view; [`Format::Csv`] renders text.
pub fn info(dump: &Dump, format: Format, list_modules: bool) -> String {
    let process = Process::load(dump);
    // Trace health needs the heaps walked: only when +ust was on.
    let ust = process
        .app_world()
        .peb
        .as_ref()
        .is_some_and(|p| p.nt_global_flag & crate::layout::FLG_USER_STACK_TRACE_DB != 0);
    let health = ust.then(|| {
        let walks = heap::walk_all(dump, &process);
        let table = StackTable::collect(&dump.memory(), &walks);
        analysis::top::TraceHealth::of(&walks, &table)
    });
    let caps = capabilities::assess(dump, &process, health.as_ref());
    match format {
        Format::Json => to_json(&json::InfoJson::new(dump, &process, &caps)),
        _ => info::info_text(dump, &process, &caps, list_modules),
    }
}

/// `heapdiag address`: the summary, or with `list` the regions that pass `filter`.
pub fn address(dump: &Dump, format: Format, list: bool, filter: &RegionFilter) -> String {
    let process = Process::load(dump);
    let map = regions::classify(dump, &process);
    let selected = || map.regions.iter().filter(|r| filter.matches(r));
    let summary = summary::summarize(&map);
    match (format, list) {
        (Format::Json, _) => {
            let listed = list.then(|| selected().map(json::RegionJson::new).collect());
            to_json(&json::AddressJson::new(
                &summary,
                listed,
                map.problems.clone(),
            ))
        }
        (Format::Csv, true) => csv::regions_csv(selected()),
        (Format::Csv, false) => csv::summary_csv(&summary),
        (Format::Text, true) => address::regions_text(selected(), map.bits),
        (Format::Text, false) => address::summary_text(&summary, map.bits, &map.problems),
    }
}

/// The walked heaps of a dump (structure offsets from ntdll's PDB when `symbols` has it).
fn walk(dump: &Dump, symbols: &SymbolPath) -> (Process, Vec<HeapWalk>) {
    let process = Process::load(dump);
    let walks = heap::walk_all_with(dump, &process, symbols);
    (process, walks)
}

/// `heapdiag heaps`: the `!heap -s` view of every heap.
pub fn heaps(dump: &Dump, format: Format, symbols: &SymbolPath) -> String {
    let (_, walks) = walk(dump, symbols);
    let summaries: Vec<_> = walks.iter().map(analysis::heaps::summarize).collect();
    match format {
        Format::Json => to_json(
            &summaries
                .iter()
                .map(heap_json::HeapJson::new)
                .collect::<Vec<_>>(),
        ),
        Format::Csv => csv::heaps_csv(&summaries),
        Format::Text => heaps::summary_text(&summaries),
    }
}

/// A heap address that is not one of the dump's heaps.
#[derive(Debug)]
pub struct NoSuchHeap(pub String);

fn check_heap(walks: &[HeapWalk], heap: Option<u64>) -> Result<(), NoSuchHeap> {
    match heap {
        Some(h) if !walks.iter().any(|w| w.heap == h) => Err(NoSuchHeap(format!(
            "no heap at {h:#x}; the heaps are {}",
            walks
                .iter()
                .map(|w| format!("{:#x}", w.heap))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        _ => Ok(()),
    }
}

/// `heapdiag heaps --stat`: the `!heap -stat -h` histogram of one heap, or of each heap.
pub fn heap_stat(
    dump: &Dump,
    format: Format,
    heap: Option<u64>,
    limit: usize,
    symbols: &SymbolPath,
) -> Result<String, NoSuchHeap> {
    let (_, walks) = walk(dump, symbols);
    check_heap(&walks, heap)?;
    let chosen: Vec<&HeapWalk> = walks
        .iter()
        .filter(|w| heap.is_none_or(|h| h == w.heap))
        .collect();
    type Stat = (
        u64,
        u64,
        Vec<analysis::heaps::SizeRow>,
        Vec<analysis::heaps::Component>,
    );
    let stats: Vec<Stat> = chosen
        .iter()
        .map(|w| {
            let (busy, rows) = analysis::heaps::size_histogram(w.blocks.iter());
            let components = if w.kind == HeapKind::Nt {
                Vec::new()
            } else {
                analysis::heaps::summarize(w).components
            };
            (w.heap, busy, rows, components)
        })
        .collect();
    Ok(match format {
        Format::Json => to_json(
            &stats
                .iter()
                .map(|(h, busy, rows, c)| heap_json::StatJson::new(Some(*h), *busy, rows, limit, c))
                .collect::<Vec<_>>(),
        ),
        Format::Csv => {
            let mut out = String::new();
            for (i, (h, _, rows, _)) in stats.iter().enumerate() {
                let body = csv::stat_csv(rows, limit);
                let mut lines = body.lines();
                let header = lines.next().unwrap_or_default();
                if i == 0 {
                    out.push_str(&format!("heap,{header}\n"));
                }
                for l in lines {
                    out.push_str(&format!("{h:#x},{l}\n"));
                }
            }
            out
        }
        Format::Text => stats
            .iter()
            .map(|(h, busy, rows, c)| heaps::stat_text(Some(*h), *busy, rows, limit, c))
            .collect::<Vec<_>>()
            .join("\n"),
    })
}

/// `heapdiag blocks`: the blocks that pass `filter`, streamed to `out` (millions of lines).
pub fn blocks(
    dump: &Dump,
    format: Format,
    filter: &BlockFilter,
    symbols: &SymbolPath,
    out: &mut dyn Write,
) -> Result<std::io::Result<()>, NoSuchHeap> {
    let (_, walks) = walk(dump, symbols);
    check_heap(&walks, filter.heap)?;
    let selected = analysis::blocks::select(&walks, filter);
    Ok(match format {
        Format::Json => {
            let table = StackTable::collect(&dump.memory(), &walks);
            let bits: std::collections::HashMap<u64, u32> =
                walks.iter().map(|w| (w.heap, w.bits)).collect();
            heap_json::write_blocks(out, selected.iter().copied(), |heap, b| {
                table
                    .get(bits.get(&heap).copied().unwrap_or(64), b.trace)
                    .map(|s| s.frames.as_slice())
            })
        }
        Format::Csv => csv::blocks_csv(out, selected.iter().copied()),
        Format::Text => heaps::blocks_text(out, selected.iter().copied()),
    })
}

/// `heapdiag block ADDR`: the block that holds `addr`, with its allocation stack; the flag says
/// whether one does.
pub fn block(dump: &Dump, format: Format, addr: u64, symbols: &SymbolPath) -> (String, bool) {
    let (_, walks) = walk(dump, symbols);
    let found = analysis::blocks::find(&walks, addr);
    let bits = found.and_then(|(h, _)| walks.iter().find(|w| w.heap == h).map(|w| w.bits));
    let table = StackTable::collect(&dump.memory(), &walks);
    let stack = found
        .zip(bits)
        .and_then(|((_, b), bits)| table.get(bits, b.trace))
        .cloned();
    let sym_table = StackTable::from_stacks(stack.iter().cloned().collect());
    let sym = symbolizer(dump, &sym_table, symbols);
    let text = match format {
        Format::Json => to_json(&found.map(|(h, b)| {
            heap_json::BlockJson::new(h, b).with_stack(stack.as_ref().map(|s| s.frames.as_slice()))
        })),
        _ => {
            let mut t = heaps::block_text(addr, found, bits);
            if let Some((_, b)) = found {
                t.push_str(&match &stack {
                    Some(s) => {
                        let mut lines = String::from("    Allocation stack:\n");
                        for &f in &s.frames {
                            for l in sym.lines(f) {
                                lines.push_str(&format!("        {f:#x} {l}\n"));
                            }
                        }
                        lines
                    }
                    None if b.trace != 0 => {
                        "    Allocation stack: its record is not readable\n".to_string()
                    }
                    None => {
                        "    Allocation stack: none recorded (was +ust on when it was allocated?)\n"
                            .to_string()
                    }
                });
                for w in &sym.warnings {
                    t.push_str(&format!("    Note: {w}\n"));
                }
            }
            t
        }
    };
    (text, found.is_some())
}

/// The symbolizer for every frame of `table`.
fn symbolizer(dump: &Dump, table: &StackTable, symbols: &SymbolPath) -> Symbolizer {
    let modules = ModuleMap::new(
        &dump.modules,
        dump.unloaded_modules.as_deref().unwrap_or(&[]),
    );
    let frames = table.stacks.iter().flat_map(|s| s.frames.iter().copied());
    Symbolizer::new(modules, symbols, frames)
}

/// Sentences about the traces for a report: why stacks are missing, PDBs refused.
fn trace_notes(
    dump: &Dump,
    process: &Process,
    top: &analysis::top::Top,
    sym: &Symbolizer,
) -> Vec<String> {
    let mut notes = Vec::new();
    let h = &top.health;
    if h.traced_blocks == 0 {
        let caps = capabilities::assess(dump, process, Some(h));
        if let Some(c) = caps.iter().find(|c| c.key == "allocation_stacks") {
            notes.push(if c.answer == capabilities::Answer::Yes {
                "no busy block carries a stack record".to_string()
            } else {
                c.reason.clone()
            });
        }
    }
    if h.untraced_on_traced_heaps > 0 {
        notes.push(format!(
            "{} busy blocks on traced heaps have no stack: allocated before tracing started or when the stack database was full",
            h.untraced_on_traced_heaps
        ));
    }
    if h.traced_blocks > 0 && h.looks_full(process.app_world().bits) {
        notes.push(format!(
            "the stack records take {} bytes, close to the database's default size: later allocations may not have been recorded",
            h.record_bytes
        ));
    }
    if h.bad_records > 0 {
        notes.push(format!(
            "{} stack pointers do not lead to a readable stack record",
            h.bad_records
        ));
    }
    notes.extend(sym.warnings.iter().cloned());
    notes
}

/// `heapdiag top`: outstanding busy memory ranked `by` module, function, stack, size or heap.
pub fn top(
    dump: &Dump,
    format: Format,
    by: analysis::top::By,
    limit: usize,
    symbols: &SymbolPath,
    skip: &[String],
) -> String {
    let (process, walks) = walk(dump, symbols);
    let table = StackTable::collect(&dump.memory(), &walks);
    let sym = symbolizer(dump, &table, symbols);
    let skip = analysis::top::SkipList::new(skip);
    let t = analysis::top::rank(&walks, &table, &sym, &skip, by);
    let notes = trace_notes(dump, &process, &t, &sym);
    match format {
        Format::Json => to_json(&top::TopJson::new(&t, &sym, limit, &notes)),
        Format::Csv => top::top_csv(&t, &sym, limit),
        Format::Text => top::top_text(&t, &sym, limit, &notes),
    }
}

/// `heapdiag symbols`: every loaded module with its PDB and where it was found, or why not
/// (servers on the symbol path are asked for all of them).
pub fn symbols(dump: &Dump, format: Format, path: &SymbolPath) -> String {
    let modules = ModuleMap::new(&dump.modules, &[]);
    let all: Vec<usize> = (0..modules.len()).collect();
    let lookups = crate::stacks::symbols::look_up(&modules, &all, path);
    match format {
        Format::Json => to_json(&report::symbols::SymbolsJson::new(&modules, &lookups, path)),
        _ => report::symbols::symbols_text(&modules, &lookups, path),
    }
}

/// Two dumps that cannot be compared, and why.
#[derive(Debug)]
pub struct Incomparable(pub String);

/// What `diff` found, beyond its text: for the `--fail-over` gate.
pub struct DiffOutcome {
    /// The rendered view.
    pub text: String,
    /// Growth of busy heap bytes (after − before).
    pub growth: i128,
    /// The largest growth of one call stack (0 without stacks).
    pub max_stack_growth: i128,
}

/// One dump's share of a diff.
struct DiffSide {
    walks: Vec<HeapWalk>,
    table: StackTable,
    sym: Symbolizer,
    process: Process,
    address: summary::AddressSummary,
}

fn diff_side(dump: &Dump, symbols: &SymbolPath) -> DiffSide {
    let (process, walks) = walk(dump, symbols);
    let table = StackTable::collect(&dump.memory(), &walks);
    let sym = symbolizer(dump, &table, symbols);
    let address = summary::summarize(&regions::classify(dump, &process));
    DiffSide {
        walks,
        table,
        sym,
        process,
        address,
    }
}

fn ntdll_version(dump: &Dump) -> Option<String> {
    dump.modules
        .iter()
        .find(|m| m.file_name().eq_ignore_ascii_case("ntdll.dll"))
        .and_then(|m| m.version.clone())
}

/// `heapdiag diff OLD NEW`: what grew, by `by`, plus the address-usage tables. With
/// `stack_growth`, the largest growth of one call stack is measured too (for a per-stack gate).
#[allow(clippy::too_many_arguments)]
pub fn diff(
    old: &Dump,
    new: &Dump,
    format: Format,
    by: analysis::top::By,
    limit: usize,
    symbols: &SymbolPath,
    skip: &[String],
    stack_growth: bool,
) -> Result<DiffOutcome, Incomparable> {
    use analysis::diff;
    use analysis::top::{rank, By, SkipList};
    let arch = |d: &Dump| d.system.as_ref().map(|s| s.arch.name());
    if arch(old) != arch(new) {
        return Err(Incomparable(format!(
            "the dumps are of different architectures ({} and {}); compare dumps of the same program",
            arch(old).unwrap_or_else(|| "unknown".into()),
            arch(new).unwrap_or_else(|| "unknown".into())
        )));
    }
    let (a, b) = rayon::join(|| diff_side(old, symbols), || diff_side(new, symbols));
    let image = |s: &DiffSide, d: &Dump| {
        s.process
            .main_module(&d.modules)
            .map(|m| m.file_name().to_ascii_lowercase())
    };
    if image(&a, old) != image(&b, new) {
        return Err(Incomparable(format!(
            "the dumps are of different programs ({} and {}); compare two dumps of the same program",
            image(&a, old).unwrap_or_else(|| "unknown".into()),
            image(&b, new).unwrap_or_else(|| "unknown".into())
        )));
    }
    let mut notes = Vec::new();
    let pid = |d: &Dump| d.misc.as_ref().and_then(|m| m.process_id);
    if pid(old) != pid(new) {
        notes.push(format!(
            "the dumps come from two runs (process ids {} and {}): stacks are matched by module and offset",
            pid(old).map_or("?".into(), |p| p.to_string()),
            pid(new).map_or("?".into(), |p| p.to_string())
        ));
    }
    if ntdll_version(old) != ntdll_version(new) {
        notes.push(format!(
            "ntdll differs ({} and {}): its frames may not match across the dumps",
            ntdll_version(old).unwrap_or_else(|| "?".into()),
            ntdll_version(new).unwrap_or_else(|| "?".into())
        ));
    }
    let skip = SkipList::new(skip);
    let traced = |s: &DiffSide| {
        s.walks
            .iter()
            .any(|w| w.blocks.iter().any(|b| b.trace != 0))
    };
    let mut by = by;
    if matches!(by, By::Stack | By::Module | By::Function) && !(traced(&a) && traced(&b)) {
        notes.push(format!(
            "{} has no allocation stacks (+ust was off), so the diff is by size",
            if traced(&a) {
                "the newer dump"
            } else {
                "the older dump"
            }
        ));
        by = By::Size;
    }
    let heap_order = |s: &DiffSide| s.walks.iter().map(|w| w.heap).collect::<Vec<_>>();
    let top_a = rank(&a.walks, &a.table, &a.sym, &skip, by);
    let top_b = rank(&b.walks, &b.table, &b.sym, &skip, by);
    let entries = diff::compare(
        diff::side(&top_a, &a.sym, &heap_order(&a)),
        diff::side(&top_b, &b.sym, &heap_order(&b)),
    );
    let max_stack_growth = if by == By::Stack {
        entries.first().map_or(0, |e| e.delta_bytes().max(0))
    } else if stack_growth && traced(&a) && traced(&b) {
        let sa = rank(&a.walks, &a.table, &a.sym, &skip, By::Stack);
        let sb = rank(&b.walks, &b.table, &b.sym, &skip, By::Stack);
        diff::compare(diff::side(&sa, &a.sym, &[]), diff::side(&sb, &b.sym, &[]))
            .first()
            .map_or(0, |e| e.delta_bytes().max(0))
    } else {
        0
    };
    // Symbol notes once, even when both dumps miss the same PDBs.
    for w in a.sym.warnings.iter().chain(&b.sym.warnings) {
        if !notes.contains(w) {
            notes.push(w.clone());
        }
    }
    let address = diff::address_delta(&a.address, &b.address);
    let totals = (
        (top_a.health.busy_bytes, top_a.health.busy_blocks),
        (top_b.health.busy_bytes, top_b.health.busy_blocks),
    );
    let view = report::diff::DiffView {
        by,
        totals,
        entries: &entries,
        address: &address,
        sym: (&a.sym, &b.sym),
        notes: &notes,
        limit,
    };
    let text = match format {
        Format::Json => to_json(&report::diff::DiffJson::new(&view)),
        Format::Csv => report::diff::diff_csv(&view),
        Format::Text => report::diff::diff_text(&view),
    };
    Ok(DiffOutcome {
        text,
        growth: i128::from(totals.1 .0) - i128::from(totals.0 .0),
        max_stack_growth,
    })
}
