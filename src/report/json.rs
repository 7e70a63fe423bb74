//! The JSON contract (`docs/json.md`): addresses as `"0x…"` strings, sizes and counts as numbers,
//! snake_case names. These views are built from the analysis results; nothing here reads the dump.

use super::format::addr;
use crate::capabilities::Capability;
use crate::dump::streams::Module;
use crate::dump::{Dump, MemorySource};
use crate::layout::global_flag_names;
use crate::process::{Heap, PageHeapLink, Process};
use crate::regions::summary::{AddressSummary, Row};
use crate::regions::{protect_name, state_name, type_name, Region, RegionSource};
use serde::Serialize;

/// `info --json`.
#[derive(Serialize)]
pub struct InfoJson {
    file: String,
    file_size: u64,
    arch: Option<String>,
    os_version: Option<String>,
    os_build: Option<u32>,
    csd_version: Option<String>,
    wow64: bool,
    process_id: Option<u32>,
    timestamp: String,
    dump_flags: u64,
    dump_flag_names: Vec<&'static str>,
    memory: MemoryJson,
    streams: Vec<StreamJson>,
    modules: Vec<ModuleJson>,
    unloaded_modules: Option<Vec<ModuleJson>>,
    threads: Vec<ThreadJson>,
    handles: Option<usize>,
    nt_global_flag: Option<u32>,
    nt_global_flag_names: Vec<String>,
    pebs: Vec<PebJson>,
    heaps: Vec<HeapJson>,
    capabilities: Vec<CapabilityJson>,
    problems: Vec<String>,
}

#[derive(Serialize)]
struct MemoryJson {
    source: &'static str,
    ranges: usize,
    captured_bytes: u64,
    memory_info_regions: Option<usize>,
}

#[derive(Serialize)]
struct StreamJson {
    #[serde(rename = "type")]
    kind: u32,
    name: Option<&'static str>,
    size: u32,
}

#[derive(Serialize)]
struct ModuleJson {
    name: String,
    path: String,
    base: String,
    size: u64,
    timestamp: u32,
    version: Option<String>,
    pdb: Option<String>,
    pdb_guid: Option<String>,
    pdb_age: Option<u32>,
}

#[derive(Serialize)]
struct ThreadJson {
    id: u32,
    teb: String,
    stack_start: String,
    stack_size: u64,
}

#[derive(Serialize)]
struct PebJson {
    address: String,
    bits: u32,
    nt_global_flag: u32,
    nt_global_flag_names: Vec<String>,
    number_of_heaps: u32,
    process_heap: String,
    notes: Vec<String>,
}

#[derive(Serialize)]
struct RangeJson {
    base: String,
    size: u64,
}

#[derive(Serialize)]
struct HeapJson {
    address: String,
    #[serde(rename = "type")]
    kind: &'static str,
    bits: u32,
    peb: Option<String>,
    process_heap: bool,
    segments: Vec<RangeJson>,
    large_blocks: Vec<RangeJson>,
    /// Page heaps: `"full"` or `"light"`.
    page_heap_mode: Option<&'static str>,
    /// Page heaps: their normal heap.
    normal_heap: Option<String>,
    /// Normal heaps of a page heap: the page heap.
    normal_heap_of: Option<String>,
    problems: Vec<String>,
}

#[derive(Serialize)]
struct CapabilityJson {
    key: &'static str,
    question: &'static str,
    answer: &'static str,
    reason: String,
}

fn module_json(m: &Module) -> ModuleJson {
    ModuleJson {
        name: m.file_name().to_string(),
        path: m.path.clone(),
        base: addr(m.base),
        size: m.size,
        timestamp: m.timestamp,
        version: m.version.clone(),
        pdb: m.pdb_name.clone(),
        pdb_guid: m.pdb_guid.clone(),
        pdb_age: m.pdb_age,
    }
}

fn heap_json(h: &Heap, peb: Option<u64>, process_heap: u64) -> HeapJson {
    let ranges = |v: &[crate::process::Range]| {
        v.iter()
            .map(|r| RangeJson {
                base: addr(r.start),
                size: r.size(),
            })
            .collect()
    };
    HeapJson {
        address: addr(h.address),
        kind: h.kind.name(),
        bits: h.bits,
        peb: peb.map(addr),
        process_heap: peb.is_some() && h.address == process_heap,
        segments: ranges(&h.segments),
        large_blocks: ranges(&h.large_blocks),
        page_heap_mode: match h.page {
            Some(PageHeapLink::Root { light, .. }) => Some(if light { "light" } else { "full" }),
            _ => None,
        },
        normal_heap: match h.page {
            Some(PageHeapLink::Root {
                normal: Some(n), ..
            }) => Some(addr(n)),
            _ => None,
        },
        normal_heap_of: match h.page {
            Some(PageHeapLink::Normal(p)) => Some(addr(p)),
            _ => None,
        },
        problems: h.problems.clone(),
    }
}

impl InfoJson {
    /// Build the view.
    pub fn new(dump: &Dump, process: &Process, caps: &[Capability]) -> Self {
        let sys = dump.system.as_ref();
        let mut pebs = Vec::new();
        let mut heaps = Vec::new();
        for w in &process.worlds {
            if let Some(p) = &w.peb {
                pebs.push(PebJson {
                    address: addr(p.address),
                    bits: w.bits,
                    nt_global_flag: p.nt_global_flag,
                    nt_global_flag_names: global_flag_names(p.nt_global_flag),
                    number_of_heaps: p.number_of_heaps,
                    process_heap: addr(p.process_heap),
                    notes: w.notes.clone(),
                });
            }
            // Without a PEB the heaps were found by their signatures.
            heaps.extend(w.heaps.iter().map(|h| {
                heap_json(
                    h,
                    w.peb.as_ref().map(|p| p.address),
                    w.peb.as_ref().map_or(0, |p| p.process_heap),
                )
            }));
        }
        let flag = process.app_world().peb.as_ref().map(|p| p.nt_global_flag);
        InfoJson {
            file: dump.path().display().to_string(),
            file_size: dump.file_len(),
            arch: sys.map(|s| s.arch.name()),
            os_version: sys.map(|s| format!("{}.{}.{}", s.major, s.minor, s.build)),
            os_build: sys.map(|s| s.build),
            csd_version: sys.and_then(|s| s.csd.clone()),
            wow64: process.wow64,
            process_id: dump.misc.as_ref().and_then(|m| m.process_id),
            timestamp: super::format::utc(dump.header.timestamp),
            dump_flags: dump.header.flags,
            dump_flag_names: crate::dump::names::dump_flag_names(dump.header.flags),
            memory: MemoryJson {
                source: match dump.memory_source {
                    MemorySource::None => "none",
                    MemorySource::List => "memory_list",
                    MemorySource::List64 => "memory64_list",
                },
                ranges: dump.memory().ranges().len(),
                captured_bytes: dump.memory().captured_bytes(),
                memory_info_regions: dump.memory_info.as_ref().map(Vec::len),
            },
            streams: dump
                .directory
                .iter()
                .map(|e| StreamJson {
                    kind: e.kind,
                    name: e.name,
                    size: e.size,
                })
                .collect(),
            modules: dump.modules.iter().map(module_json).collect(),
            unloaded_modules: dump
                .unloaded_modules
                .as_ref()
                .map(|v| v.iter().map(module_json).collect()),
            threads: dump
                .threads
                .iter()
                .map(|t| ThreadJson {
                    id: t.id,
                    teb: addr(t.teb),
                    stack_start: addr(t.stack_start),
                    stack_size: t.stack_size,
                })
                .collect(),
            handles: dump.handle_count,
            nt_global_flag: flag,
            nt_global_flag_names: flag.map(global_flag_names).unwrap_or_default(),
            pebs,
            heaps,
            capabilities: caps
                .iter()
                .map(|c| CapabilityJson {
                    key: c.key,
                    question: c.question,
                    answer: c.answer.word(),
                    reason: c.reason.clone(),
                })
                .collect(),
            problems: dump.problems.clone(),
        }
    }
}

/// `address --json`.
#[derive(Serialize)]
pub struct AddressJson {
    source: &'static str,
    total_bytes: u64,
    busy_bytes: u64,
    usage: Vec<RowJson>,
    #[serde(rename = "type")]
    types: Vec<RowJson>,
    state: Vec<RowJson>,
    protect: Vec<RowJson>,
    largest: Vec<LargestJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    regions: Option<Vec<RegionJson>>,
    problems: Vec<String>,
}

#[derive(Serialize)]
struct RowJson {
    name: String,
    regions: u64,
    bytes: u64,
    pct_busy: Option<f64>,
    pct_total: f64,
}

#[derive(Serialize)]
struct LargestJson {
    usage: String,
    base: String,
    size: u64,
}

/// One region of `address --regions --json`.
#[derive(Serialize)]
pub struct RegionJson {
    base: String,
    size: u64,
    usage: String,
    state: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    protect: Option<String>,
    allocation_base: Option<String>,
    detail: Option<String>,
}

impl RegionJson {
    /// Build the view of one region.
    pub fn new(r: &Region) -> Self {
        RegionJson {
            base: addr(r.base),
            size: r.size,
            usage: r.usage.name(),
            state: r.state.map(state_name),
            kind: r.kind.filter(|_| r.is_busy()).map(type_name),
            protect: r
                .protect
                .filter(|_| r.state == Some(crate::regions::MEM_COMMIT))
                .map(protect_name),
            allocation_base: r.allocation_base.filter(|_| r.is_busy()).map(addr),
            detail: r.detail.clone(),
        }
    }
}

fn rows(v: &[Row]) -> Vec<RowJson> {
    v.iter()
        .map(|r| RowJson {
            name: r.name.clone(),
            regions: r.regions,
            bytes: r.bytes,
            pct_busy: r.pct_busy.map(round2),
            pct_total: round2(r.pct_total),
        })
        .collect()
}

/// Percentages to 1/10000 of a percent: enough for any comparison, stable across platforms.
fn round2(p: f64) -> f64 {
    (p * 10_000.0).round() / 10_000.0
}

impl AddressJson {
    /// Build the view; `regions` are included when listing was asked for.
    pub fn new(
        s: &AddressSummary,
        regions: Option<Vec<RegionJson>>,
        problems: Vec<String>,
    ) -> Self {
        AddressJson {
            source: match s.source {
                RegionSource::MemoryInfo => "memory_info",
                RegionSource::CapturedMemory => "captured_memory",
            },
            total_bytes: s.total_bytes,
            busy_bytes: s.busy_bytes,
            usage: rows(&s.usage),
            types: rows(&s.types),
            state: rows(&s.states),
            protect: rows(&s.protects),
            largest: s
                .largest
                .iter()
                .map(|l| LargestJson {
                    usage: l.usage.clone(),
                    base: addr(l.base),
                    size: l.size,
                })
                .collect(),
            regions,
            problems,
        }
    }
}
