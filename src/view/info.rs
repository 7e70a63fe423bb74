//! The `info` view: the dump's and the process's facts and the verdict of what the dump can
//! answer. Its JSON form is `info --json`'s contract.

use crate::capabilities::Verdict;
use crate::dump::names::dump_flag_names;
use crate::dump::streams::Module;
use crate::dump::{Dump, MemorySource};
use crate::layout::global_flag_names;
use crate::process::{module_bits, Heap, PageHeapLink, Peb, Process, Range, World};
use crate::value::{utc, Hex};
use serde::{Serialize, Serializer};

/// Everything `info` prints.
#[derive(Clone, Debug, Serialize)]
pub struct InfoView {
    /// The dump file as given.
    pub file: String,
    /// Its size in bytes.
    pub file_size: u64,
    /// `x86`, `x64`, `arm64` (SystemInfo).
    pub arch: Option<String>,
    /// `6.1.7601`.
    pub os_version: Option<String>,
    /// `7601`.
    pub os_build: Option<u32>,
    /// `Service Pack 1`.
    pub csd_version: Option<String>,
    /// A 32-bit process in a 64-bit dump.
    pub wow64: bool,
    /// From MiscInfo.
    pub process_id: Option<u32>,
    /// When the dump was written, `YYYY-MM-DD HH:MM:SS UTC`.
    pub timestamp: String,
    /// `MINIDUMP_TYPE` flags.
    pub dump_flags: u64,
    /// Their names.
    pub dump_flag_names: Vec<&'static str>,
    /// The captured memory.
    pub memory: MemoryView,
    /// The stream directory.
    pub streams: Vec<StreamView>,
    /// Loaded modules.
    pub modules: Vec<ModuleView>,
    /// Unloaded modules, when the stream is present.
    pub unloaded_modules: Option<Vec<ModuleView>>,
    /// Threads.
    pub threads: Vec<ThreadView>,
    /// Handles in HandleData.
    pub handles: Option<usize>,
    /// NtGlobalFlag of the application's PEB.
    pub nt_global_flag: Option<u32>,
    /// Its gflags names (`+ust`).
    pub nt_global_flag_names: Vec<String>,
    /// Each world's PEB, when found.
    pub pebs: Vec<PebView>,
    /// The heaps of every PEB, in ProcessHeaps order.
    pub heaps: Vec<HeapView>,
    /// What the dump can answer.
    pub capabilities: Vec<Verdict>,
    /// Damage found in the file's streams.
    pub problems: Vec<String>,
    /// Processors (SystemInfo).
    #[serde(skip)]
    pub processors: Option<u8>,
    /// The main executable's file name.
    #[serde(skip)]
    pub image: Option<String>,
    /// Each world in order (the native one first): its label, its PEB, its notes.
    #[serde(skip)]
    pub worlds: Vec<WorldView>,
    /// Whether the text lists every module.
    #[serde(skip)]
    pub list_modules: bool,
}

/// The captured memory.
#[derive(Clone, Debug, Serialize)]
pub struct MemoryView {
    /// Which stream it came from.
    #[serde(serialize_with = "memory_source")]
    pub source: MemorySource,
    /// Captured ranges.
    pub ranges: usize,
    /// Captured bytes.
    pub captured_bytes: u64,
    /// Regions of the MemoryInfoList, when present.
    pub memory_info_regions: Option<usize>,
}

fn memory_source<S: Serializer>(m: &MemorySource, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match m {
        MemorySource::None => "none",
        MemorySource::List => "memory_list",
        MemorySource::List64 => "memory64_list",
    })
}

/// One stream directory entry.
#[derive(Clone, Debug, Serialize)]
pub struct StreamView {
    /// Stream type number.
    #[serde(rename = "type")]
    pub kind: u32,
    /// Its name, `None` for unknown types.
    pub name: Option<&'static str>,
    /// DataSize.
    pub size: u32,
}

/// One module.
#[derive(Clone, Debug, Serialize)]
pub struct ModuleView {
    /// File name.
    pub name: String,
    /// Path as recorded.
    pub path: String,
    /// Image base.
    pub base: Hex,
    /// SizeOfImage.
    pub size: u64,
    /// PE TimeDateStamp.
    pub timestamp: u32,
    /// File version.
    pub version: Option<String>,
    /// CodeView PDB name.
    pub pdb: Option<String>,
    /// CodeView GUID.
    pub pdb_guid: Option<String>,
    /// CodeView age.
    pub pdb_age: Option<u32>,
    /// 32 or 64: the image's machine (its PE header, else its address or folder); null when
    /// neither tells.
    pub bits: Option<u32>,
}

impl ModuleView {
    fn new(m: &Module, bits: Option<u32>) -> Self {
        ModuleView {
            bits,
            name: m.file_name().to_string(),
            path: m.path.clone(),
            base: Hex(m.base),
            size: m.size,
            timestamp: m.timestamp,
            version: m.version.clone(),
            pdb: m.pdb_name.clone(),
            pdb_guid: m.pdb_guid.clone(),
            pdb_age: m.pdb_age,
        }
    }
}

/// One thread.
#[derive(Clone, Debug, Serialize)]
pub struct ThreadView {
    /// Thread id.
    pub id: u32,
    /// TEB (the 64-bit one on WoW64).
    pub teb: Hex,
    /// Stack start.
    pub stack_start: Hex,
    /// Stack bytes captured.
    pub stack_size: u64,
}

/// One world's PEB.
#[derive(Clone, Debug, Serialize)]
pub struct PebView {
    /// PEB address.
    pub address: Hex,
    /// 32 or 64.
    pub bits: u32,
    /// NtGlobalFlag.
    pub nt_global_flag: u32,
    /// Its gflags names.
    pub nt_global_flag_names: Vec<String>,
    /// NumberOfHeaps.
    pub number_of_heaps: u32,
    /// ProcessHeap.
    pub process_heap: Hex,
    /// Why parts of this world could not be read.
    pub notes: Vec<String>,
}

/// One heap of a PEB's list.
#[derive(Clone, Debug, Serialize)]
pub struct HeapView {
    /// Heap address.
    pub address: Hex,
    /// `nt`, `segment`, `page heap`, `not captured`, `unknown`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// 32 or 64.
    pub bits: u32,
    /// The PEB listing it; none when the heap list is not in the dump and the heap was found by
    /// its signature.
    pub peb: Option<Hex>,
    /// Whether it is the PEB's ProcessHeap.
    pub process_heap: bool,
    /// Segments.
    pub segments: Vec<RangeView>,
    /// Large blocks (their reservations).
    pub large_blocks: Vec<RangeView>,
    /// Page heaps: `"full"` or `"light"`.
    pub page_heap_mode: Option<&'static str>,
    /// Page heaps: their normal heap.
    pub normal_heap: Option<Hex>,
    /// Normal heaps of a page heap: the page heap.
    pub normal_heap_of: Option<Hex>,
    /// What is wrong with it.
    pub problems: Vec<String>,
}

impl HeapView {
    /// How it belongs with a page heap, in words (for the text).
    pub fn page_heap_note(&self) -> Option<String> {
        if let Some(mode) = self.page_heap_mode {
            return Some(format!(
                "{mode} page heap{}",
                self.normal_heap
                    .map(|n| format!(", normal heap {n}"))
                    .unwrap_or_default()
            ));
        }
        self.normal_heap_of
            .map(|p| format!("normal heap of page heap {p}"))
    }
}

/// An address range.
#[derive(Clone, Debug, Serialize)]
pub struct RangeView {
    /// First address.
    pub base: Hex,
    /// Bytes.
    pub size: u64,
}

/// One world, for the text: `PEB`, `PEB64` or `PEB32`, its PEB's address and its notes.
#[derive(Clone, Debug)]
pub struct WorldView {
    /// `PEB`, or on WoW64 `PEB64` / `PEB32`.
    pub label: String,
    /// 32 or 64.
    pub bits: u32,
    /// Its PEB, when found (one of [`InfoView::pebs`]).
    pub peb: Option<Hex>,
    /// Why parts of it could not be read.
    pub notes: Vec<String>,
}

impl InfoView {
    /// The view of `dump`, its `process` and what it can answer.
    pub fn new(dump: &Dump, process: &Process, capabilities: Vec<Verdict>) -> Self {
        let sys = dump.system.as_ref();
        let flag = process.app_world().peb.as_ref().map(|p| p.nt_global_flag);
        let mem = dump.memory();
        let modules = |v: &[Module]| {
            v.iter()
                .map(|m| ModuleView::new(m, module_bits(&mem, m)))
                .collect::<Vec<_>>()
        };
        InfoView {
            file: dump.path().display().to_string(),
            file_size: dump.file_len(),
            arch: sys.map(|s| s.arch.name()),
            os_version: sys.map(|s| format!("{}.{}.{}", s.major, s.minor, s.build)),
            os_build: sys.map(|s| s.build),
            csd_version: sys.and_then(|s| s.csd.clone()),
            wow64: process.wow64,
            process_id: dump.misc.as_ref().and_then(|m| m.process_id),
            timestamp: utc(dump.header.timestamp),
            dump_flags: dump.header.flags,
            dump_flag_names: dump_flag_names(dump.header.flags),
            memory: MemoryView {
                source: dump.memory_source,
                ranges: dump.memory().ranges().len(),
                captured_bytes: dump.memory().captured_bytes(),
                memory_info_regions: dump.memory_info.as_ref().map(Vec::len),
            },
            streams: streams(dump),
            modules: modules(&dump.modules),
            unloaded_modules: dump.unloaded_modules.as_deref().map(modules),
            threads: threads(dump),
            handles: dump.handle_count,
            nt_global_flag: flag,
            nt_global_flag_names: flag.map(global_flag_names).unwrap_or_default(),
            pebs: pebs(process),
            heaps: heaps(process),
            capabilities,
            problems: dump.problems.clone(),
            processors: sys.map(|s| s.processors),
            image: process
                .main_module(&dump.modules)
                .map(|m| m.file_name().to_string()),
            worlds: worlds(process),
            list_modules: false,
        }
    }
}

fn streams(dump: &Dump) -> Vec<StreamView> {
    dump.directory
        .iter()
        .map(|e| StreamView {
            kind: e.kind,
            name: e.name,
            size: e.size,
        })
        .collect()
}

fn threads(dump: &Dump) -> Vec<ThreadView> {
    dump.threads
        .iter()
        .map(|t| ThreadView {
            id: t.id,
            teb: Hex(t.teb),
            stack_start: Hex(t.stack_start),
            stack_size: t.stack_size,
        })
        .collect()
}

/// The worlds that have a PEB, with it.
fn with_peb(process: &Process) -> impl Iterator<Item = (&World, &Peb)> {
    process
        .worlds
        .iter()
        .filter_map(|w| w.peb.as_ref().map(|p| (w, p)))
}

fn pebs(process: &Process) -> Vec<PebView> {
    with_peb(process)
        .map(|(w, p)| PebView {
            address: Hex(p.address),
            bits: w.bits,
            nt_global_flag: p.nt_global_flag,
            nt_global_flag_names: global_flag_names(p.nt_global_flag),
            number_of_heaps: p.number_of_heaps,
            process_heap: Hex(p.process_heap),
            notes: w.notes.clone(),
        })
        .collect()
}

fn heaps(process: &Process) -> Vec<HeapView> {
    let ranges = |v: &[Range]| {
        v.iter()
            .map(|r| RangeView {
                base: Hex(r.start),
                size: r.size(),
            })
            .collect()
    };
    let heap = |h: &Heap, p: Option<&Peb>| HeapView {
        address: Hex(h.address),
        kind: h.kind.name(),
        bits: h.bits,
        peb: p.map(|p| Hex(p.address)),
        process_heap: p.is_some_and(|p| h.address == p.process_heap),
        segments: ranges(&h.segments),
        large_blocks: ranges(&h.large_blocks),
        page_heap_mode: match h.page {
            Some(PageHeapLink::Root { light, .. }) => Some(if light { "light" } else { "full" }),
            _ => None,
        },
        normal_heap: match h.page {
            Some(PageHeapLink::Root { normal, .. }) => normal.map(Hex),
            _ => None,
        },
        normal_heap_of: match h.page {
            Some(PageHeapLink::Normal(p)) => Some(Hex(p)),
            _ => None,
        },
        problems: h.problems.clone(),
    };
    // Without a PEB the heaps were found by their signatures.
    process
        .worlds
        .iter()
        .flat_map(|w| w.heaps.iter().map(move |h| heap(h, w.peb.as_ref())))
        .collect()
}

fn worlds(process: &Process) -> Vec<WorldView> {
    process
        .worlds
        .iter()
        .map(|w| WorldView {
            label: if process.wow64 {
                format!("PEB{}", w.bits)
            } else {
                "PEB".to_string()
            },
            bits: w.bits,
            peb: w.peb.as_ref().map(|p| Hex(p.address)),
            notes: w.notes.clone(),
        })
        .collect()
}
