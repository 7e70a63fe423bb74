//! The subcommands as functions from opened dumps to their views, so that the command line, the
//! tests and the mutation test all run exactly the same code. Rendering is the caller's
//! ([`crate::report::render`]).

pub mod leaks;

use std::collections::HashMap;

use crate::analysis;
use crate::analysis::blocks::BlockFilter;
use crate::analysis::diff::SideEntry;
use crate::analysis::diff::{self, Amount, Identity, Side};
use crate::analysis::folded;
use crate::analysis::suspects;
use crate::analysis::top::{self, By, SkipList, Sort, Top, TraceHealth};
use crate::analysis::types::{TypeLabels, TypeNamer};
use crate::capabilities::{self, Facts, UNTRACED};
use crate::dump::Dump;
use crate::error::{Error, Exit};
use crate::heap::{self, HeapWalk, State};
use crate::layout::FLG_USER_STACK_TRACE_DB;
use crate::pdbfile::SymbolPath;
use crate::process::Process;
use crate::progress;
use crate::regions::summary::AddressSummary;
use crate::regions::{self, filter::RegionFilter, summary};
use crate::stacks::symbols::{ModuleMap, Symbolizer};
use crate::stacks::StackTable;
use crate::value::{plural, Hex};
use crate::view::address::AddressView;
use crate::view::analyze::AnalyzeView;
use crate::view::blocks::{AllocationStack, BlockView, BlocksView, Found};
use crate::view::diff::{DiffRow, DiffView, Totals};
use crate::view::frame::FrameView;
use crate::view::heaps::{HeapStatView, HeapsView};
use crate::view::info::InfoView;
use crate::view::leaks::LeaksView;
use crate::view::ranking::SizeCount;
use crate::view::suspects::SuspectView;
use crate::view::symbols::SymbolsView;
use crate::view::top::TopView;

/// What each command needs from the dump beyond its own view: when the dump cannot answer one of
/// these, the command says why in `info`'s words ([`capabilities::unmet`]).
pub mod needs {
    use crate::capabilities::Capability;

    /// `top`: the allocation stacks (the size and heap rankings work without them, and say so).
    pub const TOP: &[Capability] = &[Capability::AllocationStacks];
    /// `block ADDR`: the block's allocation stack.
    pub const BLOCK: &[Capability] = &[Capability::AllocationStacks];
    /// `diff` by stack, module or function: both dumps' allocation stacks.
    pub const DIFF: &[Capability] = &[Capability::AllocationStacks];
    /// `heaps`, `blocks`, `block`, `top`, `diff`: the heaps' blocks (without them these commands
    /// refuse, exit code 5).
    pub const HEAP_BLOCKS: &[Capability] = &[Capability::HeapContents];
}

/// The options `top` and `diff` share: what to rank by, how many entries, which frames are
/// allocator plumbing, where the PDBs are.
#[derive(Clone, Debug)]
pub struct Ranking {
    /// What to rank by.
    pub by: By,
    /// How to order the entries.
    pub sort: Sort,
    /// At most this many entries.
    pub limit: usize,
    /// Extra allocator-frame patterns.
    pub skip: Vec<String>,
    /// Where the PDBs are.
    pub symbols: SymbolPath,
    /// Also give the folded stacks (`--folded`).
    pub folded: bool,
}

/// `heapdiag info`: the dump's facts and what it can answer; with `list_modules` the text lists
/// every module.
pub fn info(dump: &Dump, list_modules: bool) -> InfoView {
    let process = Process::load(dump);
    // Trace health needs the heaps walked: only when +ust was on.
    let ust = process
        .app_world()
        .peb
        .as_ref()
        .is_some_and(|p| p.nt_global_flag & FLG_USER_STACK_TRACE_DB != 0);
    let health = ust.then(|| {
        let walks = heap::walk_all(dump, &process);
        let table = StackTable::collect(&dump.memory(), &walks);
        TraceHealth::of(&walks, &table)
    });
    let verdicts = capabilities::assess(Facts {
        dump,
        process: &process,
        health: health.as_ref(),
    });
    InfoView {
        list_modules,
        ..InfoView::new(dump, &process, verdicts)
    }
}

/// `heapdiag address`: the summary, and with `list` the regions that pass `filter`.
pub fn address(dump: &Dump, list: bool, filter: &RegionFilter) -> AddressView {
    let process = Process::load(dump);
    let map = regions::classify(dump, &process);
    let summary = summary::summarize(&map);
    let listed = list.then(|| map.regions.iter().filter(|r| filter.matches(r)));
    let mut view = AddressView::new(&map, summary, listed);
    view.notes = analysis::commitment::disagreements(dump, &process)
        .iter()
        .map(|d| d.sentence())
        .collect();
    view
}

/// The walked heaps of a dump (structure offsets from ntdll's PDB when `symbols` has it).
fn walk(dump: &Dump, symbols: &SymbolPath) -> (Process, Vec<HeapWalk>) {
    let process = Process::load(dump);
    let walks = heap::walk_all_with(dump, &process, symbols);
    (process, walks)
}

/// The refusal (exit code 5, naming the file) of a command that needs the heaps' blocks when the
/// dump cannot give them, in `info`'s words.
pub fn require_heap_blocks(dump: &Dump, process: &Process) -> Result<(), Error> {
    let facts = Facts {
        dump,
        process,
        health: None,
    };
    match capabilities::unmet(needs::HEAP_BLOCKS, facts)
        .into_iter()
        .next()
    {
        Some(why) => Err(Error::file(Exit::NotAnswerable, dump.path(), why)),
        None => Ok(()),
    }
}

/// `heapdiag heaps`: the `!heap -s` view of every heap.
pub fn heaps(dump: &Dump, symbols: &SymbolPath) -> Result<HeapsView, Error> {
    let (process, walks) = walk(dump, symbols);
    require_heap_blocks(dump, &process)?;
    Ok(heaps_view(dump, &process, &walks))
}

/// The heaps view of `walks`, with a note where a heap's own committed bytes and the region
/// table's differ.
fn heaps_view(dump: &Dump, process: &Process, walks: &[HeapWalk]) -> HeapsView {
    let mut view = HeapsView::new(walks);
    for d in analysis::commitment::disagreements(dump, process) {
        if let Some(h) = view.heaps.iter_mut().find(|h| h.address == d.heap) {
            h.notes.push(d.sentence());
        }
    }
    view
}

/// A usage error unless `heap` is `None` or one of the walked heaps.
fn check_heap(walks: &[HeapWalk], heap: Option<u64>) -> Result<(), Error> {
    match heap {
        Some(h) if !walks.iter().any(|w| w.heap == h) => {
            let heaps: Vec<String> = walks.iter().map(|w| Hex(w.heap).to_string()).collect();
            Err(Error::new(
                Exit::Usage,
                format!("no heap at {h:#x}; the heaps are {}", heaps.join(", ")),
            ))
        }
        _ => Ok(()),
    }
}

/// `heapdiag heaps --stat`: the `!heap -stat -h` histogram of one heap, or of each heap, largest
/// totals (or most blocks) first.
pub fn heap_stat(
    dump: &Dump,
    heap: Option<u64>,
    (limit, sort): (usize, Sort),
    symbols: &SymbolPath,
) -> Result<HeapStatView, Error> {
    let (process, walks) = walk(dump, symbols);
    require_heap_blocks(dump, &process)?;
    check_heap(&walks, heap)?;
    let chosen = walks.iter().filter(|w| heap.is_none_or(|h| h == w.heap));
    Ok(HeapStatView::new(chosen, limit, sort))
}

/// `heapdiag blocks`: the blocks that pass `filter` (selected while they are written), with each
/// stack's frames as they read.
pub fn blocks(dump: &Dump, filter: BlockFilter, symbols: &SymbolPath) -> Result<BlocksView, Error> {
    let (process, walks) = walk(dump, symbols);
    require_heap_blocks(dump, &process)?;
    check_heap(&walks, filter.heap)?;
    let table = StackTable::collect(&dump.memory(), &walks);
    let sym = symbolizer(
        dump,
        table.stacks.iter().map(|s| s.frames.as_slice()),
        symbols,
    );
    Ok(BlocksView::new(walks, filter, table, &sym))
}

/// `heapdiag block ADDR`: the block that holds `addr`, with its allocation stack; when no block
/// does, where the address is instead.
pub fn block(dump: &Dump, addr: u64, symbols: &SymbolPath) -> Result<BlockView, Error> {
    let (process, walks) = walk(dump, symbols);
    require_heap_blocks(dump, &process)?;
    let found = crate::analysis::blocks::find(&walks, addr).map(|(heap, b)| {
        let bits = walks.iter().find(|w| w.heap == heap).map(|w| w.bits);
        let table = StackTable::collect(&dump.memory(), &walks);
        let recorded = bits.and_then(|bits| table.get(bits, b.trace)).cloned();
        let sym = symbolizer(dump, recorded.iter().map(|s| s.frames.as_slice()), symbols);
        let stack = match &recorded {
            Some(s) => AllocationStack::Frames(FrameView::resolve_all(&sym, &s.frames)),
            None if b.trace != 0 => AllocationStack::Unreadable(
                table
                    .bad
                    .iter()
                    .find(|(r, _)| *r == b.trace)
                    .map(|(_, why)| why.clone())
                    .unwrap_or_else(|| format!("stack record {:#x} cannot be read", b.trace)),
            ),
            None => AllocationStack::None(why_no_stack(dump, &process, b.state, b.internal)),
        };
        let busy = b.state == State::Busy && !b.internal;
        let (type_name, mut notes) = match (busy, bits) {
            (true, Some(bits)) => {
                let namer = TypeNamer::for_block(dump, b.address, b.size, bits, symbols);
                let label = namer.label(&dump.memory(), b, bits).map(String::from);
                (label, namer.notes)
            }
            _ => (None, Vec::new()),
        };
        notes.extend(sym.warnings);
        Found {
            heap,
            bits,
            block: *b,
            stack,
            type_name,
            notes,
        }
    });
    let outside = found
        .is_none()
        .then(|| outside_every_block(dump, &process, addr));
    Ok(BlockView {
        asked: Hex(addr),
        found,
        outside,
    })
}

/// Why no heap block holds `addr`, in one sentence: where the address is instead.
fn outside_every_block(dump: &Dump, process: &Process, addr: u64) -> String {
    let map = regions::classify(dump, process);
    let at = map
        .regions
        .iter()
        .find(|r| r.base <= addr && addr < r.end())
        .map(|r| {
            let what = r
                .detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            format!("it lies in {} memory{what}", r.usage.name())
        })
        .unwrap_or_else(|| "the dump describes no memory there".to_string());
    format!("address {addr:#x} is not in any heap block of this dump: {at}")
}

/// Why a block has no allocation stack: the dump's reason when it has none at all, else (for a
/// busy user block on a traced heap) [`UNTRACED`].
fn why_no_stack(dump: &Dump, process: &Process, state: State, internal: bool) -> Option<String> {
    let facts = Facts {
        dump,
        process,
        health: None,
    };
    let reasons = capabilities::unmet(needs::BLOCK, facts);
    if !reasons.is_empty() {
        Some(reasons.join("; "))
    } else if state == State::Busy && !internal {
        Some(UNTRACED.to_string())
    } else {
        None
    }
}

/// The symbolizer for the frames of `stacks`.
fn symbolizer<'a>(
    dump: &Dump,
    stacks: impl Iterator<Item = &'a [u64]>,
    symbols: &SymbolPath,
) -> Symbolizer {
    let modules = ModuleMap::new(
        &dump.modules,
        dump.unloaded_modules.as_deref().unwrap_or(&[]),
    );
    Symbolizer::new(modules, symbols, stacks.flatten().copied())
}

/// One dump walked and ranked: what `top` shows and each side of a `diff` holds.
struct Ranked {
    process: Process,
    walks: Vec<HeapWalk>,
    table: StackTable,
    sym: Symbolizer,
    /// The blocks' type labels, when ranking by type ([`Ranked::label`]).
    labels: Option<TypeLabels>,
    /// The vtables' names, when ranking by type ([`Ranked::label`]); its notes say why some
    /// could not be named from their PDBs.
    namer: Option<TypeNamer>,
}

impl Ranked {
    /// Walk `dump`. The frames are resolved (PDBs looked up) only when `frames`: a ranking by
    /// size or heap names none.
    fn new(dump: &Dump, symbols: &SymbolPath, frames: bool) -> Self {
        let (process, walks) = walk(dump, symbols);
        let table = StackTable::collect(&dump.memory(), &walks);
        let stacks = table
            .stacks
            .iter()
            .filter(|_| frames)
            .map(|s| s.frames.as_slice());
        let sym = symbolizer(dump, stacks, symbols);
        Ranked {
            process,
            walks,
            table,
            sym,
            labels: None,
            namer: None,
        }
    }

    /// Label every busy block with what it holds (for ranking by type).
    fn label(&mut self, dump: &Dump, symbols: &SymbolPath) {
        let namer = TypeNamer::new(dump, &self.walks, symbols);
        self.labels = Some(namer.labels(&dump.memory(), &self.walks));
        self.namer = Some(namer);
    }

    /// Why some vtables could not be named from their PDBs (once labelled).
    fn type_notes(&self) -> &[String] {
        self.namer.as_ref().map_or(&[], |n| &n.notes)
    }

    /// [`Ranked::new`], refused when the dump's heaps cannot be walked.
    fn walked(dump: &Dump, symbols: &SymbolPath, frames: bool) -> Result<Self, Error> {
        let d = Ranked::new(dump, symbols, frames);
        require_heap_blocks(dump, &d.process)?;
        Ok(d)
    }

    /// Rank by `by` in `sort` order; the first `sizes_for` stacks with their sizes.
    fn rank(&self, skip: &SkipList, (by, sort): (By, Sort), sizes_for: usize) -> Top {
        top::rank(
            &self.walks,
            &self.table,
            (&self.sym, skip),
            (by, sort),
            sizes_for,
            self.labels.as_ref(),
        )
    }

    /// Whether any block carries a stack record.
    fn traced(&self) -> bool {
        self.walks
            .iter()
            .any(|w| w.blocks.iter().any(|b| b.trace != 0))
    }
}

/// Whether ranking by `by` needs allocation stacks.
fn needs_stacks(by: By) -> bool {
    matches!(by, By::Stack | By::Module | By::Function)
}

/// Sentences about the traces of a ranking by stack, module or function: how many blocks have no
/// stack, whether the database filled up, records that cannot be read (named), PDBs refused.
fn trace_notes(t: &Top, bits: u32, sym: &Symbolizer) -> Vec<String> {
    let h = &t.health;
    let mut notes = Vec::new();
    if h.untraced_on_traced_heaps > 0 {
        notes.push(format!(
            "{} on traced heaps {} no stack: {UNTRACED}",
            plural(h.untraced_on_traced_heaps, "busy block"),
            if h.untraced_on_traced_heaps == 1 {
                "has"
            } else {
                "have"
            }
        ));
    }
    if h.traced_blocks > 0 && h.looks_full(bits) {
        notes.push(format!(
            "the stack records take {}, close to the database's default size: later allocations may not have been recorded",
            plural(h.record_bytes, "byte")
        ));
    }
    if let Some(n) = damaged_records_note(h) {
        notes.push(n);
    }
    notes.extend(sym.warnings.iter().cloned());
    notes
}

/// The damaged or missing stack records busy blocks point to, named (the first three) with how
/// many blocks point to them: those blocks were traced, their stacks are lost.
fn damaged_records_note(h: &TraceHealth) -> Option<String> {
    if h.bad.is_empty() {
        return None;
    }
    let blocks: u64 = h.bad.iter().map(|(_, n)| n).sum();
    let named: Vec<String> = h
        .bad
        .iter()
        .take(3)
        .map(|(r, n)| format!("{} ({})", Hex(*r), plural(*n, "block")))
        .collect();
    let more = match h.bad.len().saturating_sub(3) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    Some(format!(
        "{} {} to stack records that cannot be read (damaged, or not in the dump): {}{more}; \
         they were traced, but their stacks are lost",
        plural(blocks, "busy block"),
        if blocks == 1 { "points" } else { "point" },
        named.join(", ")
    ))
}

/// Why a ranking by `asked` (which needs stacks) is by size instead: the dump's reason, in
/// `info`'s words.
fn stackless_reason(dump: &Dump, process: &Process, health: &TraceHealth) -> String {
    let reasons = capabilities::unmet(
        needs::TOP,
        Facts {
            dump,
            process,
            health: Some(health),
        },
    );
    if reasons.is_empty() {
        "no busy block carries a stack record".to_string()
    } else {
        reasons.join("; ")
    }
}

/// The notes of a ranking `t` (by `by`, asked `asked`) of the walk `d` of `dump`: for keys made
/// of stacks the traces' health and the symbols; for sizes and heaps why the ranking fell back to
/// size, if it did, and what is wrong with the symbol path itself.
fn ranking_notes(dump: &Dump, d: &Ranked, t: &Top, asked: By, symbols: &SymbolPath) -> Vec<String> {
    let mut notes = Vec::new();
    if needs_stacks(t.by) {
        notes.extend(trace_notes(t, d.process.app_world().bits, &d.sym));
    } else {
        if needs_stacks(asked) {
            notes.push(format!(
                "the ranking is by size, not by {}: {}",
                asked.name(),
                stackless_reason(dump, &d.process, &t.health)
            ));
        }
        // Sizes and heaps name no frame: only what is wrong with the symbol path itself.
        notes.extend(symbols.notes().iter().cloned());
    }
    notes
}

/// The key a ranking by `asked` can use in `d`: size when stacks are asked for and it has none.
fn usable_key(d: &Ranked, asked: By) -> By {
    match diff::effective_key(asked, d.traced(), true) {
        (by, None) => by,
        (_, Some(_)) => By::Size,
    }
}

/// `heapdiag top`: outstanding busy memory ranked as `r` asks; by size when stacks were asked
/// for and the dump has none (and the notes say why). Refused when the heaps cannot be walked.
pub fn top(dump: &Dump, r: &Ranking, baseline: Option<&Dump>) -> Result<TopView, Error> {
    let mut d = Ranked::walked(dump, &r.symbols, true)?;
    if r.by == By::Type {
        d.label(dump, &r.symbols);
    }
    let skip = SkipList::new(&r.skip);
    let base = match baseline {
        Some(b) => Some(baseline_side(dump, b, r, d.traced())?),
        None => None,
    };
    let by = usable_key(&d, r.by);
    let t = d.rank(&skip, (by, r.sort), r.limit);
    let mut notes = ranking_notes(dump, &d, &t, r.by, &r.symbols);
    notes.extend(d.type_notes().iter().cloned());
    let mut view = TopView::new(&t, &d.sym, r.limit, notes);
    view.suspects = suspects(&d.walks, &d.table, &d.sym, &skip, None, base.as_ref());
    if r.folded {
        let by_stack = if by == By::Stack {
            t
        } else {
            d.rank(&skip, (By::Stack, Sort::Bytes), 0)
        };
        view.folded = Some(folded::folded(&by_stack, &d.sym, &skip));
    }
    Ok(view)
}

/// The baseline's side of the ranking suspects are drawn from (by stack when `traced`, else by
/// size), keyed as `diff` keys it; exit code 6 when the dumps cannot be compared.
pub fn baseline_side(
    dump: &Dump,
    baseline: &Dump,
    r: &Ranking,
    traced: bool,
) -> Result<HashMap<String, SideEntry>, Error> {
    comparable(baseline, dump)?;
    let b = Ranked::walked(baseline, &r.symbols, traced)?;
    let by = if traced { By::Stack } else { By::Size };
    let skip = SkipList::new(&r.skip);
    Ok(diff::side(
        &b.rank(&skip, (by, Sort::Bytes), 0),
        &b.sym,
        &[],
    ))
}

/// The leak suspects of a walked dump (`unreachable` from `leaks`, `baseline` from
/// [`baseline_side`]).
pub fn suspects(
    walks: &[HeapWalk],
    table: &StackTable,
    sym: &Symbolizer,
    skip: &SkipList,
    unreachable: Option<&suspects::Unreachable>,
    baseline: Option<&HashMap<String, SideEntry>>,
) -> Vec<SuspectView> {
    let inputs = suspects::Inputs {
        walks,
        table,
        sym,
        unreachable,
        baseline,
    };
    suspects::find(&inputs)
        .iter()
        .map(|s| SuspectView::new(s, sym, skip))
        .collect()
}

/// `heapdiag symbols`: every loaded module with its PDB and where it was found, or why not
/// (servers on the symbol path are asked for all of them).
pub fn symbols(dump: &Dump, path: &SymbolPath) -> SymbolsView {
    let modules = ModuleMap::new(&dump.modules, &[]);
    let all: Vec<usize> = (0..modules.len()).collect();
    let lookups = crate::stacks::symbols::look_up(&modules, &all, path);
    SymbolsView::new(&modules, &lookups, path)
}

fn identity(dump: &Dump, process: &Process) -> Identity {
    Identity {
        arch: dump.system.as_ref().map(|s| s.arch.name()),
        image: process
            .main_module(&dump.modules)
            .map(|m| m.file_name().to_ascii_lowercase()),
        process_id: dump.misc.as_ref().and_then(|m| m.process_id),
        ntdll: dump
            .modules
            .iter()
            .find(|m| m.file_name().eq_ignore_ascii_case("ntdll.dll"))
            .and_then(|m| m.version.clone()),
    }
}

/// `heapdiag diff OLD NEW`: what grew, ranked as `r` asks, plus the address-usage tables. With
/// `stack_growth`, the largest growth of one call stack is measured too (for a per-stack gate).
/// Refused (naming the file) when either dump's heaps cannot be walked.
pub fn diff(old: &Dump, new: &Dump, r: &Ranking, stack_growth: bool) -> Result<DiffView, Error> {
    let ids = comparable(old, new)?;
    let skip = SkipList::new(&r.skip);
    // One dump at a time: each side's walk is dropped once it is ranked (the newer one once the
    // rows to show are known), so a diff needs no more memory than the larger walk plus the
    // rankings.
    let a = DiffSide::new(old, r, &skip, stack_growth, false)?;
    let b = DiffSide::new(new, r, &skip, stack_growth, true)?;
    Ok(compare((old, &a), (new, &b), &ids, r, stack_growth))
}

/// The two dumps' identities, or why they cannot be compared (exit code 6), or why either
/// cannot answer (its heaps cannot be walked, exit code 5).
fn comparable(old: &Dump, new: &Dump) -> Result<(Identity, Identity), Error> {
    let (p_old, p_new) = (Process::load(old), Process::load(new));
    let ids = (identity(old, &p_old), identity(new, &p_new));
    diff::comparable(&ids.0, &ids.1).map_err(|m| Error::new(Exit::Incomparable, m))?;
    require_heap_blocks(old, &p_old)?;
    require_heap_blocks(new, &p_new)?;
    Ok(ids)
}

/// The diff of two ranked sides.
fn compare(
    (old, a): (&Dump, &DiffSide),
    (new, b): (&Dump, &DiffSide),
    ids: &(Identity, Identity),
    r: &Ranking,
    stack_growth: bool,
) -> DiffView {
    let mut notes = diff::identity_notes(&ids.0, &ids.1);
    let (by, lacking) = diff::effective_key(r.by, a.traced, b.traced);
    let (top_a, top_b) = (a.top(by), b.top(by));
    if let Some(side) = lacking {
        notes.push(fallback_note(side, (old, a, top_a), (new, b, top_b)));
    }
    let entries = diff::compare(
        diff::side(top_a, &a.sym, &a.order),
        diff::side(top_b, &b.sym, &b.order),
        r.sort,
    );
    let max_stack_growth = if by == By::Stack {
        diff::max_growth(&entries)
    } else if stack_growth && a.traced && b.traced {
        diff::max_growth(&diff::compare(
            diff::side(a.top(By::Stack), &a.sym, &[]),
            diff::side(b.top(By::Stack), &b.sym, &[]),
            Sort::Bytes,
        ))
    } else {
        0
    };
    if needs_stacks(by) {
        // Symbol notes once for both dumps: the modules without symbols in either, listed once.
        notes.extend(Symbolizer::notes_of(&[&a.sym, &b.sym]));
    } else {
        notes.extend(r.symbols.notes().iter().cloned());
    }
    let busy = |t: &Top| Amount {
        count: t.health.busy_blocks,
        bytes: t.health.busy_bytes,
    };
    let mut rows: Vec<DiffRow> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| DiffRow::new(e, by, (&a.sym, &b.sym), i < r.limit))
        .collect();
    let stands_out = crate::view::diff::stands_out(&rows, by);
    let more = rows.len().saturating_sub(r.limit);
    rows.truncate(r.limit);
    if let Some(walks) = &b.walks {
        newer_sizes(&mut rows, &entries, walks);
    }
    let folded = (r.folded && a.traced && b.traced).then(|| {
        let skip = SkipList::new(&r.skip);
        folded::differential(
            &folded::folded(a.top(By::Stack), &a.sym, &skip),
            &folded::folded(b.top(By::Stack), &b.sym, &skip),
        )
    });
    DiffView {
        folded,
        by,
        sort: r.sort,
        totals: Totals::new(busy(top_a), busy(top_b)),
        entries: rows,
        stands_out,
        address: diff::address_delta(&a.address, &b.address),
        notes,
        more,
        max_stack_growth,
    }
}

/// `heapdiag analyze DUMP [--baseline OLD]`: every analysis of `dump` from one walk (see
/// [`AnalyzeView`]); with a baseline, the growth by call stack. The baseline is walked first and
/// only its rankings kept, so no more than one walk is held at a time. A dump whose heaps cannot
/// be walked still gets its facts and address usage (the heap sections say why they are empty).
pub fn analyze(dump: &Dump, baseline: Option<&Dump>, r: &Ranking) -> Result<AnalyzeView, Error> {
    let skip = SkipList::new(&r.skip);
    let by_stack = Ranking {
        by: By::Stack,
        folded: true,
        ..r.clone()
    };
    let base = match baseline {
        Some(b) => {
            let ids = comparable(b, dump)?;
            progress::phase("walking the baseline's heaps");
            Some((b, ids, DiffSide::new(b, &by_stack, &skip, false, false)?))
        }
        None => None,
    };
    progress::phase("walking the heaps");
    let mut d = Ranked::new(dump, &r.symbols, true);
    progress::phase("ranking the outstanding memory");
    let rank = |d: &Ranked, by| {
        let t = d.rank(&skip, (by, r.sort), r.limit);
        let notes = ranking_notes(dump, d, &t, by, &r.symbols);
        (TopView::new(&t, &d.sym, r.limit, notes), t)
    };
    let (modules, _) = rank(&d, By::Module);
    let (functions, _) = rank(&d, By::Function);
    let (sizes, _) = rank(&d, By::Size);
    let (stacks, stack_top) = rank(&d, By::Stack);
    progress::phase("naming the blocks' types");
    d.label(dump, &r.symbols);
    let (mut types, _) = rank(&d, By::Type);
    types.notes.extend(d.type_notes().iter().cloned());
    progress::phase("finding unreachable blocks");
    let unreachable = unreachable(dump, &d, base.as_ref().map(|(_, _, a)| a), r);
    let verdicts = capabilities::assess(Facts {
        dump,
        process: &d.process,
        health: Some(&stack_top.health),
    });
    let map = regions::classify(dump, &d.process);
    let heaps = heaps_view(dump, &d.process, &d.walks);
    progress::phase("classifying the address space");
    let folded = folded::folded(&stack_top, &d.sym, &skip);
    let mut view = AnalyzeView {
        info: InfoView::new(dump, &d.process, verdicts),
        headline: summary::headline(&map),
        address: summary::summarize(&map),
        heaps,
        modules,
        functions,
        stacks,
        sizes,
        types,
        suspects: unreachable
            .as_ref()
            .map(|u| u.suspects.clone())
            .unwrap_or_default(),
        unreachable,
        baseline: baseline.map(|b| b.path().display().to_string()),
        diff: None,
        next_steps: Vec::new(),
        folded,
        differential: None,
    };
    if let Some((old, ids, a)) = base {
        progress::phase("comparing with the baseline");
        let b = DiffSide::from_ranked(d, dump, &by_stack, &skip, (false, true));
        let diff = compare((old, &a), (dump, &b), &ids, &by_stack, false);
        view.differential = diff.folded.clone();
        view.diff = Some(diff);
    }
    view.collect_next_steps();
    Ok(view)
}

/// `analyze`'s reachability view of the walked `d` (none when its heaps hold no blocks to scan),
/// its suspects' growth measured against the baseline's side `base`.
fn unreachable(dump: &Dump, d: &Ranked, base: Option<&DiffSide>, r: &Ranking) -> Option<LeaksView> {
    require_heap_blocks(dump, &d.process).ok()?;
    let by = if d.traced() { By::Stack } else { By::Size };
    let base = base.map(|a| diff::side(a.top(by), &a.sym, &[]));
    let by_stack = Ranking {
        by: By::Stack,
        folded: false,
        ..r.clone()
    };
    let walked = leaks::Walked {
        dump,
        process: &d.process,
        walks: &d.walks,
        table: &d.table,
        sym: &d.sym,
        namer: d.namer.as_ref(),
    };
    let set = crate::analysis::roots::RootSet::default();
    Some(leaks::unreachable(
        walked,
        &by_stack,
        set,
        base.as_ref(),
        Vec::new(),
        false,
    ))
}

/// The most frequent sizes, in the newer dump, of the stacks of `rows` that are in it (a second
/// pass over its blocks, for the rows shown only).
fn newer_sizes(rows: &mut [DiffRow], entries: &[diff::DiffEntry], walks: &[HeapWalk]) {
    let stack_of = |e: &diff::DiffEntry| {
        e.stack
            .as_ref()
            .filter(|_| e.stack_from_new)
            .map(|s| (s.bits, s.record))
    };
    let wanted = entries
        .iter()
        .take(rows.len())
        .filter_map(stack_of)
        .collect();
    let mut sizes = top::stack_sizes(walks, &wanted);
    for (row, e) in rows.iter_mut().zip(entries) {
        if let Some(m) = stack_of(e).and_then(|k| sizes.remove(&k)) {
            row.sizes = SizeCount::dominant(&top::by_count(m));
        }
    }
}

/// One side of a diff: a dump walked, ranked by every key the diff may need, and its walk
/// dropped (or, for the newer dump, kept until the rows to show are known).
struct DiffSide {
    process: Process,
    sym: Symbolizer,
    /// Heap addresses in walk order (for `--by heap`).
    order: Vec<u64>,
    /// Whether any block carries a stack record.
    traced: bool,
    /// Rankings by the asked key, by size (the fallback) and, for `--per-stack`, by stack.
    ranks: Vec<(By, Top)>,
    address: AddressSummary,
    /// The walk, when kept (the newer dump, ranked by stack).
    walks: Option<Vec<HeapWalk>>,
}

impl DiffSide {
    /// Walk `dump` (refused when its heaps cannot be walked) and rank it for `r`; keep the walk
    /// when `keep_walk` (the newer dump, to count the sizes of the rows shown).
    fn new(
        dump: &Dump,
        r: &Ranking,
        skip: &SkipList,
        stack_growth: bool,
        keep_walk: bool,
    ) -> Result<Self, Error> {
        let frames = needs_stacks(r.by) || stack_growth || r.folded;
        let mut ranked = Ranked::walked(dump, &r.symbols, frames)?;
        if r.by == By::Type {
            ranked.label(dump, &r.symbols);
        }
        Ok(Self::from_ranked(
            ranked,
            dump,
            r,
            skip,
            (stack_growth, keep_walk),
        ))
    }

    /// The side of `ranked`, the walk of `dump` (dropped here unless `keep_walk` and ranked by
    /// stack).
    fn from_ranked(
        ranked: Ranked,
        dump: &Dump,
        r: &Ranking,
        skip: &SkipList,
        (stack_growth, keep_walk): (bool, bool),
    ) -> Self {
        let mut keys = vec![r.by];
        for k in [
            Some(By::Size),
            (stack_growth || r.folded).then_some(By::Stack),
        ]
        .into_iter()
        .flatten()
        {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        let ranks = keys
            .iter()
            .map(|&k| (k, ranked.rank(skip, (k, Sort::Bytes), 0)))
            .collect();
        let address = summary::summarize(&regions::classify(dump, &ranked.process));
        let traced = ranked.traced();
        let order = ranked.walks.iter().map(|w| w.heap).collect();
        let Ranked {
            process,
            sym,
            walks,
            ..
        } = ranked;
        DiffSide {
            process,
            sym,
            order,
            traced,
            ranks,
            address,
            walks: (keep_walk && r.by == By::Stack).then_some(walks),
        }
    }

    fn top(&self, by: By) -> &Top {
        &self
            .ranks
            .iter()
            .find(|(k, _)| *k == by)
            .expect("ranked by every key the diff uses")
            .1
    }

    fn facts<'a>(&'a self, dump: &'a Dump, health: &'a TraceHealth) -> Facts<'a> {
        Facts {
            dump,
            process: &self.process,
            health: Some(health),
        }
    }
}

/// Why the diff fell back to size, in `info`'s words for the dump without stacks.
fn fallback_note(
    side: Side,
    old: (&Dump, &DiffSide, &Top),
    new: (&Dump, &DiffSide, &Top),
) -> String {
    let (dump, d, t) = if side == Side::Older { old } else { new };
    let reasons = capabilities::unmet(needs::DIFF, d.facts(dump, &t.health));
    let why = if reasons.is_empty() {
        "no busy block carries a stack record".to_string()
    } else {
        reasons.join("; ")
    };
    format!(
        "the diff is by size because of the {} dump: {why}",
        side.name()
    )
}

/// `diff`'s `--fail-over` gate on a view: the error (exit code 1) when it trips.
pub fn gate(view: &DiffView, limit: Option<u64>, per_stack: bool) -> Result<(), Error> {
    match limit.and_then(|l| diff::gate(l, per_stack, view.totals.delta, view.max_stack_growth)) {
        Some(m) => Err(Error::new(Exit::Gate, m)),
        None => Ok(()),
    }
}
