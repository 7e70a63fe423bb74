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
use crate::analysis::top::{self, By, SkipList, Top, TraceHealth};
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
use crate::value::Hex;
use crate::view::address::AddressView;
use crate::view::analyze::AnalyzeView;
use crate::view::blocks::{AllocationStack, BlockView, BlocksView, Found};
use crate::view::diff::{DiffRow, DiffView, Totals};
use crate::view::frame::FrameView;
use crate::view::heaps::{HeapStatView, HeapsView};
use crate::view::info::InfoView;
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
}

/// The options `top` and `diff` share: what to rank by, how many entries, which frames are
/// allocator plumbing, where the PDBs are.
#[derive(Clone, Debug)]
pub struct Ranking {
    /// What to rank by.
    pub by: By,
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

/// `heapdiag heaps`: the `!heap -s` view of every heap.
pub fn heaps(dump: &Dump, symbols: &SymbolPath) -> HeapsView {
    let (process, walks) = walk(dump, symbols);
    heaps_view(dump, &process, &walks)
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

/// `heapdiag heaps --stat`: the `!heap -stat -h` histogram of one heap, or of each heap.
pub fn heap_stat(
    dump: &Dump,
    heap: Option<u64>,
    limit: usize,
    symbols: &SymbolPath,
) -> Result<HeapStatView, Error> {
    let (_, walks) = walk(dump, symbols);
    check_heap(&walks, heap)?;
    let chosen = walks.iter().filter(|w| heap.is_none_or(|h| h == w.heap));
    Ok(HeapStatView::new(chosen, limit))
}

/// `heapdiag blocks`: the blocks that pass `filter` (selected while they are written).
pub fn blocks(dump: &Dump, filter: BlockFilter, symbols: &SymbolPath) -> Result<BlocksView, Error> {
    let (_, walks) = walk(dump, symbols);
    check_heap(&walks, filter.heap)?;
    let table = StackTable::collect(&dump.memory(), &walks);
    Ok(BlocksView::new(walks, filter, table))
}

/// `heapdiag block ADDR`: the block that holds `addr`, with its allocation stack.
pub fn block(dump: &Dump, addr: u64, symbols: &SymbolPath) -> BlockView {
    let (process, walks) = walk(dump, symbols);
    let found = crate::analysis::blocks::find(&walks, addr).map(|(heap, b)| {
        let bits = walks.iter().find(|w| w.heap == heap).map(|w| w.bits);
        let table = StackTable::collect(&dump.memory(), &walks);
        let recorded = bits.and_then(|bits| table.get(bits, b.trace)).cloned();
        let sym = symbolizer(dump, recorded.iter().map(|s| s.frames.as_slice()), symbols);
        let stack = match &recorded {
            Some(s) => AllocationStack::Frames(FrameView::resolve_all(&sym, &s.frames)),
            None if b.trace != 0 => AllocationStack::Unreadable,
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
    BlockView {
        asked: Hex(addr),
        found,
    }
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
    /// The blocks' type labels, when ranking by type.
    labels: Option<TypeLabels>,
    /// Why some vtables could not be named from their PDBs.
    type_notes: Vec<String>,
}

impl Ranked {
    /// Walk and read the stacks of `dump`; with `types`, label every busy block too.
    fn new(dump: &Dump, symbols: &SymbolPath, types: bool) -> Self {
        let (process, walks) = walk(dump, symbols);
        let table = StackTable::collect(&dump.memory(), &walks);
        let sym = symbolizer(
            dump,
            table.stacks.iter().map(|s| s.frames.as_slice()),
            symbols,
        );
        let (labels, type_notes) = if types {
            let namer = TypeNamer::new(dump, &walks, symbols);
            (Some(namer.labels(&dump.memory(), &walks)), namer.notes)
        } else {
            (None, Vec::new())
        };
        Ranked {
            process,
            walks,
            table,
            sym,
            labels,
            type_notes,
        }
    }

    fn rank(&self, skip: &SkipList, by: By) -> Top {
        let labels = self.labels.as_ref();
        top::rank(&self.walks, &self.table, &self.sym, skip, by, labels)
    }

    fn facts<'a>(&'a self, dump: &'a Dump, health: &'a TraceHealth) -> Facts<'a> {
        Facts {
            dump,
            process: &self.process,
            health: Some(health),
        }
    }

    /// Whether any block carries a stack record.
    fn traced(&self) -> bool {
        self.walks
            .iter()
            .any(|w| w.blocks.iter().any(|b| b.trace != 0))
    }
}

/// Sentences about the traces of a ranking: why stacks are missing, how many blocks have none,
/// whether the database filled up, records that cannot be read, PDBs refused.
fn trace_notes(t: &Top, facts: Facts<'_>, sym: &Symbolizer) -> Vec<String> {
    let h = &t.health;
    let mut notes = Vec::new();
    if h.traced_blocks == 0 {
        notes.extend(capabilities::unmet(needs::TOP, facts));
    }
    if h.untraced_on_traced_heaps > 0 {
        notes.push(format!(
            "{} busy blocks on traced heaps have no stack: {UNTRACED}",
            h.untraced_on_traced_heaps
        ));
    }
    if h.traced_blocks > 0 && h.looks_full(facts.process.app_world().bits) {
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

/// The baseline's side of the ranking suspects are drawn from (by stack when `traced`, else by
/// size), keyed as `diff` keys it; exit code 6 when the dumps cannot be compared.
pub fn baseline_side(
    dump: &Dump,
    baseline: &Dump,
    r: &Ranking,
    traced: bool,
) -> Result<HashMap<String, SideEntry>, Error> {
    comparable(baseline, dump)?;
    let b = Ranked::new(baseline, &r.symbols, false);
    let by = if traced { By::Stack } else { By::Size };
    let skip = SkipList::new(&r.skip);
    Ok(diff::side(&b.rank(&skip, by), &b.sym, &[]))
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

/// `heapdiag top`: outstanding busy memory ranked as `r` asks, and the leak suspects (growth
/// against `baseline` when given).
pub fn top(dump: &Dump, r: &Ranking, baseline: Option<&Dump>) -> Result<TopView, Error> {
    let d = Ranked::new(dump, &r.symbols, r.by == By::Type);
    let skip = SkipList::new(&r.skip);
    let base = match baseline {
        Some(b) => Some(baseline_side(dump, b, r, d.traced())?),
        None => None,
    };
    let t = d.rank(&skip, r.by);
    let mut notes = trace_notes(&t, d.facts(dump, &t.health), &d.sym);
    notes.extend(d.type_notes.iter().cloned());
    let mut view = TopView::new(&t, &d.sym, r.limit, notes);
    view.suspects = suspects(&d.walks, &d.table, &d.sym, &skip, None, base.as_ref());
    if r.folded {
        let by_stack = if r.by == By::Stack {
            t
        } else {
            d.rank(&skip, By::Stack)
        };
        view.folded = Some(folded::folded(&by_stack, &d.sym, &skip));
    }
    Ok(view)
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
pub fn diff(old: &Dump, new: &Dump, r: &Ranking, stack_growth: bool) -> Result<DiffView, Error> {
    let ids = comparable(old, new)?;
    let skip = SkipList::new(&r.skip);
    // One dump at a time: each side's walk is dropped once it is ranked, so a diff needs no more
    // memory than the larger walk plus the rankings.
    let a = DiffSide::new(old, r, &skip, stack_growth);
    let b = DiffSide::new(new, r, &skip, stack_growth);
    Ok(compare((old, &a), (new, &b), &ids, r, stack_growth))
}

/// The two dumps' identities, or why they cannot be compared (exit code 6).
fn comparable(old: &Dump, new: &Dump) -> Result<(Identity, Identity), Error> {
    let ids = (
        identity(old, &Process::load(old)),
        identity(new, &Process::load(new)),
    );
    diff::comparable(&ids.0, &ids.1).map_err(|m| Error::new(Exit::Incomparable, m))?;
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
    );
    let max_stack_growth = if by == By::Stack {
        diff::max_growth(&entries)
    } else if stack_growth && a.traced && b.traced {
        diff::max_growth(&diff::compare(
            diff::side(a.top(By::Stack), &a.sym, &[]),
            diff::side(b.top(By::Stack), &b.sym, &[]),
        ))
    } else {
        0
    };
    // Symbol notes once, even when both dumps miss the same PDBs.
    for w in a.sym.warnings.iter().chain(&b.sym.warnings) {
        if !notes.contains(w) {
            notes.push(w.clone());
        }
    }
    let busy = |t: &Top| Amount {
        count: t.health.busy_blocks,
        bytes: t.health.busy_bytes,
    };
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
        totals: Totals::new(busy(top_a), busy(top_b)),
        entries: entries
            .iter()
            .take(r.limit)
            .map(|e| DiffRow::new(e, by, (&a.sym, &b.sym)))
            .collect(),
        address: diff::address_delta(&a.address, &b.address),
        notes,
        more: entries.len().saturating_sub(r.limit),
        max_stack_growth,
    }
}

/// `heapdiag analyze DUMP [--baseline OLD]`: every analysis of `dump` from one walk (see
/// [`AnalyzeView`]); with a baseline, the growth by call stack. The baseline is walked first and
/// only its rankings kept, so no more than one walk is held at a time.
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
            Some((b, ids, DiffSide::new(b, &by_stack, &skip, false)))
        }
        None => None,
    };
    progress::phase("walking the heaps");
    let d = Ranked::new(dump, &r.symbols, false);
    progress::phase("ranking the outstanding memory");
    let rank = |by| {
        let t = d.rank(&skip, by);
        let notes = trace_notes(&t, d.facts(dump, &t.health), &d.sym);
        (TopView::new(&t, &d.sym, r.limit, notes), t)
    };
    let (modules, _) = rank(By::Module);
    let (functions, _) = rank(By::Function);
    let (sizes, _) = rank(By::Size);
    let (stacks, stack_top) = rank(By::Stack);
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
        baseline: baseline.map(|b| b.path().display().to_string()),
        diff: None,
        next_steps: Vec::new(),
        folded,
        differential: None,
    };
    if let Some((old, ids, a)) = base {
        progress::phase("comparing with the baseline");
        let b = DiffSide::from_ranked(d, dump, &by_stack, &skip, false);
        let diff = compare((old, &a), (dump, &b), &ids, &by_stack, false);
        view.differential = diff.folded.clone();
        view.diff = Some(diff);
    }
    view.collect_next_steps();
    Ok(view)
}

/// One side of a diff: a dump walked, ranked by every key the diff may need, and its walk
/// dropped.
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
}

impl DiffSide {
    fn new(dump: &Dump, r: &Ranking, skip: &SkipList, stack_growth: bool) -> Self {
        let types = r.by == By::Type;
        Self::from_ranked(
            Ranked::new(dump, &r.symbols, types),
            dump,
            r,
            skip,
            stack_growth,
        )
    }

    /// The side of `ranked`, the walk of `dump` (dropped here).
    fn from_ranked(
        ranked: Ranked,
        dump: &Dump,
        r: &Ranking,
        skip: &SkipList,
        stack_growth: bool,
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
        let ranks = keys.iter().map(|&k| (k, ranked.rank(skip, k))).collect();
        let address = summary::summarize(&regions::classify(dump, &ranked.process));
        let traced = ranked.traced();
        let order = ranked.walks.iter().map(|w| w.heap).collect();
        let Ranked { process, sym, .. } = ranked;
        DiffSide {
            process,
            sym,
            order,
            traced,
            ranks,
            address,
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
