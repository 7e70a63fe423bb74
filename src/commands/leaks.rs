//! `heapdiag leaks` and `heapdiag leaks --why ADDR`: reachability views of one dump.

use super::{symbolizer, walk, Ranking};
use crate::analysis::diff::SideEntry;
use crate::analysis::folded::Folded;
use crate::analysis::heaps::is_user_busy;
use crate::analysis::leaks::Leaks;
use crate::analysis::reach::{self, Link};
use crate::analysis::roots::{RootKind, RootSet, Roots};
use crate::analysis::suspects;
use crate::analysis::top::{self, By, SkipList, Sort};
use crate::analysis::types::{TypeLabels, TypeNamer, UNKNOWN};
use crate::capabilities::{self, Answer, Capability, Facts};
use crate::dump::Dump;
use crate::error::{Error, Exit};
use crate::fasthash::{FastMap, FastSet};
use crate::heap::{Block, HeapWalk, State};
use crate::process::Process;
use crate::stacks::symbols::Symbolizer;
use crate::stacks::StackTable;
use crate::value::Hex;
use crate::view::frame::FrameView;
use crate::view::leaks::{
    GarbageRootRow, LeakBlock, LeakGroup, LeaksView, LinkView, RootsSummary, WhyBlock, WhyView,
};
use rayon::prelude::*;
use std::collections::HashMap;

/// What `leaks` needs: the heaps' blocks (without them it cannot answer at all).
pub const NEEDS: &[Capability] = &[Capability::HeapContents];

/// The walked heaps, or the reason (exit code 5) why the dump cannot say what is unreachable;
/// notes when it can only in part.
fn walked(dump: &Dump, r: &Ranking) -> Result<(Process, Vec<HeapWalk>, Vec<String>), Error> {
    let (process, walks) = walk(dump, &r.symbols);
    super::require_heap_blocks(dump, &process)?;
    let facts = Facts {
        dump,
        process: &process,
        health: None,
    };
    let mut notes = Vec::new();
    if let Some(v) = capabilities::judge(Capability::HeapContents, facts) {
        if v.answer == Answer::Partial {
            notes.push(format!(
                "blocks of heaps that are not in the dump are not counted, and pointers in them are not seen: {}",
                v.reason
            ));
        }
    }
    Ok((process, walks, notes))
}

/// `heapdiag leaks`: the unreachable busy blocks grouped as `r` asks, the roots of garbage with
/// what they retain.
pub fn leaks(
    dump: &Dump,
    r: &Ranking,
    set: RootSet,
    baseline: Option<&Dump>,
) -> Result<LeaksView, Error> {
    let (process, walks, notes) = walked(dump, r)?;
    let table = StackTable::collect(&dump.memory(), &walks);
    let sym = symbolizer(
        dump,
        table.stacks.iter().map(|s| s.frames.as_slice()),
        &r.symbols,
    );
    let traced_any = walks.iter().any(|w| w.blocks.iter().any(|b| b.trace != 0));
    let base = match baseline {
        Some(b) => Some(super::baseline_side(dump, b, r, traced_any)?),
        None => None,
    };
    let w = Walked {
        dump,
        process: &process,
        walks: &walks,
        table: &table,
        sym: &sym,
        namer: None,
    };
    Ok(unreachable(w, r, set, base.as_ref(), notes, true))
}

/// One dump walked, its stacks collected and their frames resolvable: what the reachability
/// view is computed from (by `leaks`, and by `analyze` from its one walk).
pub struct Walked<'a> {
    /// The dump.
    pub dump: &'a Dump,
    /// Its process model.
    pub process: &'a Process,
    /// Every heap's walk, whole.
    pub walks: &'a [HeapWalk],
    /// The stack records the blocks refer to.
    pub table: &'a StackTable,
    /// Their frames' names.
    pub sym: &'a Symbolizer,
    /// The vtables' names, when the caller has them for these walks (else they are named here,
    /// for the unreachable blocks only).
    pub namer: Option<&'a TypeNamer>,
}

/// The unreachable busy blocks of a walked dump grouped as `r` asks, the roots of garbage, the
/// suspects (with growth against `base`, keyed as [`super::baseline_side`] keys it); `notes`
/// come first among the view's notes. The walks are left whole; every unreachable block is
/// listed when `every_block` (`leaks`), none when not (`analyze`, which shows groups and roots).
pub fn unreachable(
    w: Walked<'_>,
    r: &Ranking,
    set: RootSet,
    base: Option<&HashMap<String, SideEntry>>,
    mut notes: Vec<String>,
    every_block: bool,
) -> LeaksView {
    let Walked {
        dump,
        process,
        walks: all,
        table,
        sym,
        namer,
    } = w;
    let found = Leaks::find(dump, process, all, set);
    let (busy_blocks, busy_bytes) = all
        .iter()
        .flat_map(|w| w.blocks.iter().filter(|b| is_user_busy(b)))
        .fold((0, 0), |(n, s), b| (n + 1, s + b.size));
    let skip = SkipList::new(&r.skip);
    let traced_any = all.iter().any(|w| w.blocks.iter().any(|b| b.trace != 0));
    // Which blocks of each walk are unreachable.
    let flags: Vec<Vec<bool>> = all.par_iter().map(|w| found.flags(&w.blocks)).collect();
    let counts = unreachable_counts(all, &flags, traced_any);
    let suspects = super::suspects(all, table, sym, &skip, Some(&counts), base);
    // From here on only the unreachable blocks matter: each walk's are copied out.
    let walks: Vec<HeapWalk> = all
        .par_iter()
        .zip(flags)
        .map(|(w, flags)| {
            let kept = w.blocks.iter().zip(flags).filter(|(_, f)| *f);
            w.with_blocks(kept.map(|(b, _)| *b).collect())
        })
        .collect();
    let traced = walks.iter().any(|w| w.blocks.iter().any(|b| b.trace != 0));
    let by = group_key(r.by, traced, (dump, process, &found), &mut notes);
    let own;
    let namer = match namer {
        Some(n) => n,
        None => {
            own = TypeNamer::new(dump, &walks, &r.symbols);
            &own
        }
    };
    let labels = namer.labels(&dump.memory(), &walks);
    let ranked = top::rank(
        &walks,
        table,
        (sym, &skip),
        (by, Sort::Bytes),
        0,
        Some(&labels),
    );
    let folded = (r.folded && traced).then(|| folded(&walks, table, (sym, &skip)));
    scan_notes(&mut notes, &found, sym, &namer.notes);
    let blocks = every_block.then(|| leak_blocks(&walks, &found, table, &labels));
    let mut rows = garbage_rows(&walks, &found, table, sym, &skip, &labels);
    let roots_count = rows.len();
    rows.truncate(r.limit);
    LeaksView {
        by,
        unreachable_blocks: found.blocks.len() as u64,
        unreachable_bytes: found.unreachable_bytes(),
        busy_blocks,
        busy_bytes,
        roots: summary(&found.roots),
        blocks,
        groups: groups(&ranked, (sym, &skip), r.limit),
        garbage_roots: rows,
        garbage_root_count: roots_count as u64,
        suspects,
        notes,
        more_groups: ranked.entries.len().saturating_sub(r.limit),
        more_roots: roots_count.saturating_sub(r.limit),
        folded,
    }
}

/// The unreachable bytes by call stack, folded (`--folded`).
fn folded(
    walks: &[HeapWalk],
    table: &StackTable,
    (sym, skip): (&Symbolizer, &SkipList),
) -> Vec<Folded> {
    let by_stack = top::rank(walks, table, (sym, skip), (By::Stack, Sort::Bytes), 0, None);
    crate::analysis::folded::folded(&by_stack, sym, skip)
}

/// The key the unreachable blocks are grouped by: `asked`, or size (with a note saying why)
/// when stacks were asked for and no unreachable block has one.
fn group_key(
    asked: By,
    traced: bool,
    (dump, process, found): (&Dump, &Process, &Leaks),
    notes: &mut Vec<String>,
) -> By {
    match asked {
        By::Stack | By::Module | By::Function if !traced => {
            notes.push(format!(
                "grouped by size: {}",
                no_stack_reason(dump, process, found.blocks.is_empty())
            ));
            By::Size
        }
        by => by,
    }
}

/// The scan's notes (roots the dump lacks, overlapping blocks), then the symbols' and the type
/// namer's.
fn scan_notes(notes: &mut Vec<String>, found: &Leaks, sym: &Symbolizer, type_notes: &[String]) {
    notes.extend(found.roots.notes.iter().cloned());
    if found.overlapping > 0 {
        notes.push(format!(
            "{} busy blocks overlap others (a damaged heap): a pointer into the overlap counts for the later block",
            found.overlapping
        ));
    }
    notes.extend(sym.warnings.iter().cloned());
    notes.extend(type_notes.iter().cloned());
}

/// The first `limit` groups of a ranking of unreachable blocks, each stack with the frame it is
/// attributed to and its frames.
fn groups(
    ranked: &top::Top,
    (sym, skip): (&Symbolizer, &SkipList),
    limit: usize,
) -> Vec<LeakGroup> {
    ranked
        .entries
        .iter()
        .take(limit)
        .map(|e| LeakGroup {
            key: e.key.clone(),
            count: e.count,
            bytes: e.bytes,
            allocated_by: e
                .stack
                .as_ref()
                .and_then(|s| skip.allocator(sym, s))
                .map(|f| sym.display(f)),
            frames: e
                .stack
                .as_ref()
                .map(|s| FrameView::resolve_all(sym, &s.frames)),
        })
        .collect()
}

/// Unreachable blocks and bytes per stack record (per size when no block is traced), for the
/// suspects.
fn unreachable_counts(
    walks: &[HeapWalk],
    flags: &[Vec<bool>],
    traced: bool,
) -> suspects::Unreachable {
    walks
        .par_iter()
        .zip(flags)
        .map(|(w, flags)| {
            let mut m: suspects::Unreachable = FastMap::default();
            for (b, _) in w.blocks.iter().zip(flags).filter(|(_, &f)| f) {
                let key = match (traced, b.trace) {
                    (true, 0) => (0, 0),
                    (true, t) => (w.bits, t),
                    (false, _) => (0, b.size),
                };
                let e = m.entry(key).or_default();
                e.count += 1;
                e.bytes += b.size;
            }
            m
        })
        .reduce(FastMap::default, |mut a, b| {
            for (k, v) in b {
                let e = a.entry(k).or_default();
                e.count += v.count;
                e.bytes += v.bytes;
            }
            a
        })
}

/// Why unreachable blocks cannot be grouped by stack.
fn no_stack_reason(dump: &Dump, process: &Process, none: bool) -> String {
    let facts = Facts {
        dump,
        process,
        health: None,
    };
    let reasons = capabilities::unmet(super::needs::TOP, facts);
    if none {
        "there are no unreachable blocks".into()
    } else if reasons.is_empty() {
        "no unreachable block carries a stack record".into()
    } else {
        reasons.join("; ")
    }
}

/// What the roots are, counted.
fn summary(roots: &Roots) -> RootsSummary {
    let mut s = RootsSummary {
        registers: roots.registers.len() as u64,
        missing: roots.missing,
        ..RootsSummary::default()
    };
    for r in &roots.ranges {
        let len = r.end - r.start;
        match r.kind {
            RootKind::Stack { .. } => {
                s.stacks += 1;
                s.stack_bytes += len;
            }
            RootKind::Image { .. } => {
                s.image_sections += 1;
                s.image_bytes += len;
            }
            RootKind::Teb { .. } | RootKind::Peb { .. } => s.tebs_and_pebs += 1,
            RootKind::HeapHeader { .. } => s.heap_headers += 1,
            RootKind::Private => {
                s.private_regions += 1;
                s.private_bytes += len;
            }
            RootKind::Register { .. } => {}
        }
    }
    s
}

/// Every block of `walks` with the positions of its walk and of itself in that walk (as type
/// labels are indexed).
fn indexed_blocks(walks: &[HeapWalk]) -> impl Iterator<Item = (usize, usize, &HeapWalk, &Block)> {
    walks.iter().enumerate().flat_map(|(wi, w)| {
        w.blocks
            .iter()
            .enumerate()
            .map(move |(bi, b)| (wi, bi, w, b))
    })
}

/// Every unreachable block (the blocks `walks` kept), in address order, with its type label.
fn leak_blocks(
    walks: &[HeapWalk],
    found: &Leaks,
    table: &StackTable,
    labels: &TypeLabels,
) -> Vec<LeakBlock> {
    let g = &found.garbage;
    let first = |r: u32| g.roots[r as usize].members[0];
    let address_of = |k: u32| found.address(k);
    let heads: FastMap<u32, u32> = (0..g.roots.len() as u32).map(|r| (first(r), r)).collect();
    let mut out: Vec<LeakBlock> = indexed_blocks(walks)
        .filter_map(|(wi, bi, w, b)| {
            let k = found.unreachable_at(b.address)?;
            let root = heads.get(&k).map(|&r| &g.roots[r as usize]);
            Some(LeakBlock {
                heap: Hex(w.heap),
                address: Hex(b.address),
                size: b.size,
                stack: table
                    .get(w.bits, b.trace)
                    .map(|s| s.frames.iter().map(|&a| Hex(a)).collect()),
                type_name: known(labels.get(wi, bi)),
                garbage_root: root.is_some(),
                retained_bytes: root.map(|r| r.retained_bytes),
                cycle: root
                    .filter(|r| r.members.len() > 1)
                    .map(|r| r.members[1..].iter().map(|&m| Hex(address_of(m))).collect()),
                retained_by: g.owner[k as usize].map(|r| address_of(first(r))),
            })
        })
        .collect();
    out.sort_unstable_by_key(|b| b.address);
    out
}

/// A label that says something (not [`UNKNOWN`]).
fn known(label: Option<&str>) -> Option<String> {
    label.filter(|&l| l != UNKNOWN).map(String::from)
}

/// The roots of garbage, most retained bytes first.
fn garbage_rows(
    walks: &[HeapWalk],
    found: &Leaks,
    table: &StackTable,
    sym: &Symbolizer,
    skip: &SkipList,
    labels: &TypeLabels,
) -> Vec<GarbageRootRow> {
    let g = &found.garbage;
    let heads: FastSet<u64> = g
        .roots
        .iter()
        .map(|r| found.address(r.members[0]))
        .collect();
    // Each root's first block: its stack record and its type.
    let firsts: FastMap<u64, (u32, u64, Option<String>)> = indexed_blocks(walks)
        .filter(|(_, _, _, b)| heads.contains(&b.address))
        .map(|(wi, bi, w, b)| (b.address, (w.bits, b.trace, known(labels.get(wi, bi)))))
        .collect();
    // The allocating frame of each stack, once.
    let mut frames: FastMap<(u32, u64), Option<String>> = FastMap::default();
    let mut rows: Vec<GarbageRootRow> = g
        .roots
        .iter()
        .map(|r| {
            let (address, size) = found.blocks[r.members[0] as usize];
            let first = firsts.get(&address);
            let allocated_by = first.and_then(|&(bits, trace, _)| {
                frames
                    .entry((bits, trace))
                    .or_insert_with(|| {
                        let stack = table.get(bits, trace)?;
                        skip.allocator(sym, stack).map(|f| sym.display(f))
                    })
                    .clone()
            });
            GarbageRootRow {
                address,
                size,
                members: r.members.len() as u64,
                retained_bytes: r.retained_bytes,
                retained_blocks: r.retained_blocks,
                type_name: first.and_then(|f| f.2.clone()),
                allocated_by,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.retained_bytes
            .cmp(&a.retained_bytes)
            .then(a.address.cmp(&b.address))
    });
    rows
}

/// The busy user block of `walks` holding `addr` (with its heap), or what `addr` is instead.
fn busy_block_at(walks: &[HeapWalk], addr: u64) -> Result<(u64, Block), String> {
    let (heap, b) = crate::analysis::blocks::find(walks, addr)
        .ok_or_else(|| "not in any heap block this dump's heaps hold".to_string())?;
    if b.state == State::Free {
        return Err(format!(
            "in a free block of heap {heap:#x} (user address {:#x}); only busy blocks are kept alive",
            b.address
        ));
    }
    if b.internal {
        return Err(format!(
            "in heap metadata of heap {heap:#x} (block {:#x}), not in a user allocation",
            b.entry
        ));
    }
    Ok((heap, *b))
}

/// A step of a chain as `--why` shows it; `type_of(address, size, bits)` names a block's type.
fn link_view(
    l: &Link,
    index: &reach::BlockIndex,
    type_of: &dyn Fn(u64, u64, u32) -> Option<String>,
) -> LinkView {
    match l {
        Link::Root { kind, at, value } => LinkView {
            kind: "root",
            root: Some(kind.describe()),
            block: None,
            size: None,
            type_name: None,
            at: (*at != 0).then_some(*at),
            value: Some(*value),
        },
        Link::Block { block, at, value } => LinkView {
            kind: "block",
            root: None,
            block: Some(index.address(*block)),
            size: Some(index.size(*block)),
            type_name: type_of(
                index.address(*block),
                index.size(*block),
                index.bits(*block),
            ),
            at: *at,
            value: *value,
        },
    }
}

/// `heapdiag leaks --why ADDR`: the chain of pointers that keeps the busy block holding `addr`
/// alive, or, when nothing does, its root of garbage and the blocks that point into it.
pub fn why(dump: &Dump, addr: u64, r: &Ranking, set: RootSet) -> Result<WhyView, Error> {
    let (process, walks, mut notes) = walked(dump, r)?;
    let not_busy = |what: String| Error::new(Exit::NotAnswerable, format!("{addr:#x} is {what}"));
    let (heap, b) = busy_block_at(&walks, addr).map_err(not_busy)?;
    let bits = walks.iter().find(|w| w.heap == heap).map_or(64, |w| w.bits);
    let roots = crate::analysis::roots::collect(dump, &process, &walks, set);
    notes.extend(roots.notes.iter().cloned());
    let index = reach::BlockIndex::new(&walks);
    let target = index
        .at(b.address)
        .ok_or_else(|| not_busy("in a block that overlaps another (a damaged heap)".into()))?;
    let mem = dump.memory();
    let table = StackTable::collect(&mem, &walks);
    let recorded = table.get(bits, b.trace);
    let sym = symbolizer(
        dump,
        recorded.iter().map(|s| s.frames.as_slice()),
        &r.symbols,
    );
    notes.extend(sym.warnings.iter().cloned());
    let namer = TypeNamer::new(dump, &walks, &r.symbols);
    notes.extend(namer.notes.iter().cloned());
    let type_of =
        |address: u64, size: u64, bits: u32| known(namer.label_at(&mem, address, size, bits));
    let block = WhyBlock {
        heap: Hex(heap),
        address: Hex(b.address),
        size: b.size,
        type_name: type_of(b.address, b.size, bits),
        frames: recorded.map(|s| FrameView::resolve_all(&sym, &s.frames)),
    };
    let link_view = |l: &Link| link_view(l, &index, &type_of);
    if let Some(chain) = reach::chain_from_roots(&mem, &index, &roots, target) {
        return Ok(WhyView {
            address: Hex(addr),
            block,
            reachable: true,
            chain: chain.iter().map(link_view).collect(),
            pointed_from: Vec::new(),
            retained_by: None,
            notes,
        });
    }
    let found = Leaks::find(dump, &process, &walks, set);
    let g = &found.garbage;
    let k = g
        .position(target)
        .expect("an unmarked block is unreachable");
    let address_of = |p: u32| found.address(p);
    Ok(WhyView {
        address: Hex(addr),
        block,
        reachable: false,
        chain: g.chain(&mem, &index, k).iter().map(link_view).collect(),
        pointed_from: g
            .pointed_from(k)
            .into_iter()
            .map(|p| Hex(address_of(p)))
            .collect(),
        retained_by: g.owner[k as usize].map(|o| address_of(g.roots[o as usize].members[0])),
        notes,
    })
}
