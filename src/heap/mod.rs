//! Heap walkers: every allocation of every heap, as a stream of [`Block`]s with the corruption
//! found and how much of each segment the walk explained.

pub mod block;
pub mod nt;
pub mod page;
pub mod segment;

use crate::dump::Dump;
use crate::layout::nt_heap::{NtFamily, NtHeapLayout};
use crate::layout::pdb::{self, PdbLayout};
use crate::pdbfile::SymbolPath;
use crate::process::{Heap, HeapKind, Process};
pub use block::{Block, Corruption, Coverage, FrontEnd, State};
use rayon::prelude::*;

/// The walk of one heap.
#[derive(Clone, Debug)]
pub struct HeapWalk {
    /// Heap address.
    pub heap: u64,
    /// Index in the process-wide heap list ([`Process`] worlds in order, each heap in
    /// ProcessHeaps order); blocks carry it.
    pub index: u32,
    /// 32 or 64.
    pub bits: u32,
    /// NT heap or segment heap.
    pub kind: HeapKind,
    /// Whether the heap was walked (false for heaps not captured or of a kind not walked).
    pub walked: bool,
    /// The layout family walked with.
    pub family: Option<NtFamily>,
    /// `_HEAP.Flags`, when read.
    pub flags: Option<u32>,
    /// The LFH front end's address, when the LFH is active.
    pub lfh: Option<u64>,
    /// The LFH key (`RtlpLFHKey`, low 32 bits) recovered from the user blocks (Windows 8.1+).
    pub lfh_key: Option<u32>,
    /// Every block: back end, large, LFH chunks; heap metadata marked internal.
    pub blocks: Vec<Block>,
    /// Inconsistencies found.
    pub corruptions: Vec<Corruption>,
    /// Per segment: how much of its committed memory the walk explained.
    pub coverage: Vec<Coverage>,
    /// Bytes reserved by large blocks.
    pub large_reserved: u64,
    /// Bytes committed by large blocks.
    pub large_committed: u64,
    /// Why parts of the heap were not walked.
    pub notes: Vec<String>,
}

impl HeapWalk {
    fn new(heap: &Heap, index: u32) -> Self {
        HeapWalk {
            heap: heap.address,
            index,
            bits: heap.bits,
            kind: heap.kind,
            walked: false,
            family: heap.family,
            flags: None,
            lfh: None,
            lfh_key: None,
            blocks: Vec::new(),
            corruptions: Vec::new(),
            coverage: Vec::new(),
            large_reserved: 0,
            large_committed: 0,
            notes: heap.problems.clone(),
        }
    }

    /// This walk's heap, facts and findings with `blocks` in place of its blocks (a subset kept
    /// for a later view, the full walk left as it is).
    pub fn with_blocks(&self, blocks: Vec<Block>) -> Self {
        HeapWalk {
            heap: self.heap,
            index: self.index,
            bits: self.bits,
            kind: self.kind,
            walked: self.walked,
            family: self.family,
            flags: self.flags,
            lfh: self.lfh,
            lfh_key: self.lfh_key,
            blocks,
            corruptions: self.corruptions.clone(),
            coverage: self.coverage.clone(),
            large_reserved: self.large_reserved,
            large_committed: self.large_committed,
            notes: self.notes.clone(),
        }
    }
}

/// What ntdll's PDB gave for one world's heaps.
#[derive(Clone, Debug)]
pub struct NtdllSymbols {
    /// Structure offsets.
    pub layout: PdbLayout,
    /// `RtlpLFHKey` (low 32 bits) read from ntdll's data at the PDB's address.
    pub lfh_key: Option<u32>,
    /// Address of `RtlpHpHeapGlobals` in the dump (segment heaps' keys).
    pub hp_globals: Option<u64>,
    /// The PDB file.
    pub path: std::path::PathBuf,
}

/// ntdll's PDB for the world of width `bits`, when the symbol path has one that matches.
pub fn ntdll_symbols(
    dump: &Dump,
    process: &Process,
    bits: u32,
    symbols: &SymbolPath,
) -> Result<Option<NtdllSymbols>, String> {
    if symbols.is_empty() {
        return Ok(None);
    }
    let Some(ntdll) = crate::process::ntdll_of(&dump.modules, bits, process.wow64) else {
        return Ok(None);
    };
    let (Some(name), Some(guid), Some(age)) = (&ntdll.pdb_name, &ntdll.pdb_guid, ntdll.pdb_age)
    else {
        return Ok(None);
    };
    let file = name.rsplit(['\\', '/']).next().unwrap_or(name);
    // The NT family the PDB's offsets refine; a world with segment heaps only still has ntdll.
    let family = process
        .worlds
        .iter()
        .find(|w| w.bits == bits)
        .and_then(|w| w.heaps.iter().find_map(|h| h.family))
        .unwrap_or(NtFamily::Win10v1809);
    let mut refused = Vec::new();
    for cand in symbols.candidates(file, guid, age) {
        match crate::pdbfile::open_matching(&cand, guid, age) {
            Ok(bytes) => {
                let layout = pdb::nt_layout(&bytes, NtHeapLayout::new(family, bits))
                    .map_err(|e| format!("{}: unreadable types ({e})", cand.display()))?;
                let lfh_key = layout
                    .lfh_key_rva
                    .and_then(|rva| dump.memory().read_u32(ntdll.base + u64::from(rva)).ok());
                let hp_globals = layout.hp_globals_rva.map(|rva| ntdll.base + u64::from(rva));
                return Ok(Some(NtdllSymbols {
                    layout,
                    lfh_key,
                    hp_globals,
                    path: cand,
                }));
            }
            Err(why) => refused.push(format!(
                "{}: {file} for ntdll.dll refused: {why}",
                cand.display()
            )),
        }
    }
    if refused.is_empty() {
        Ok(None)
    } else {
        Err(refused.join("; "))
    }
}

/// Walk every heap of every world, in parallel, in the order of [`HeapWalk::index`].
pub fn walk_all(dump: &Dump, process: &Process) -> Vec<HeapWalk> {
    walk_all_with(dump, process, &SymbolPath::default())
}

/// [`walk_all`], with structure offsets and the LFH key from ntdll's PDB when `symbols` has it.
pub fn walk_all_with(dump: &Dump, process: &Process, symbols: &SymbolPath) -> Vec<HeapWalk> {
    let per_world: Vec<(u32, Result<Option<NtdllSymbols>, String>)> = process
        .worlds
        .iter()
        .map(|w| (w.bits, ntdll_symbols(dump, process, w.bits, symbols)))
        .collect();
    let heaps: Vec<&Heap> = process.worlds.iter().flat_map(|w| w.heaps.iter()).collect();
    let mem = dump.memory();
    // The normal heaps of page heaps hold light page-heap blocks.
    let normals: Vec<(u64, u64)> = heaps.iter().filter_map(|h| page::normal_heap(h)).collect();
    heaps
        .par_iter()
        .enumerate()
        .map(|(i, h)| {
            let index = i as u32;
            let world = per_world.iter().find(|(b, _)| *b == h.bits).map(|(_, s)| s);
            match h.kind {
                HeapKind::Nt => {
                    let syms = world.and_then(|s| s.as_ref().ok()).and_then(Option::as_ref);
                    let mut w = nt::walk(mem, h, index, syms);
                    if let Some(Err(why)) = world {
                        w.notes.push(why.clone());
                    }
                    if let Some(&(_, root)) = normals.iter().find(|n| n.0 == h.address) {
                        page::adopt_light_blocks(mem, &mut w, root);
                    }
                    w
                }
                HeapKind::Segment => {
                    let src = segment::Sources {
                        ntdll: crate::process::ntdll_of(&dump.modules, h.bits, process.wow64)
                            .map(|m| (m.base, m.end())),
                        globals: world
                            .and_then(|s| s.as_ref().ok())
                            .and_then(Option::as_ref)
                            .and_then(|s| s.hp_globals),
                    };
                    segment::walk(mem, h, index, &src)
                }
                HeapKind::PageHeap => page::walk(mem, h, index),
                HeapKind::NotCaptured => {
                    let mut w = HeapWalk::new(h, index);
                    w.notes.push("the heap's memory is not in the dump".into());
                    w
                }
                HeapKind::Unknown(sig) => {
                    let mut w = HeapWalk::new(h, index);
                    w.notes
                        .push(format!("unknown heap signature {sig:#010x}; not walked"));
                    w
                }
            }
        })
        .collect()
}
