//! Assigning a usage to every region, in WinDbg's order of precedence.
//!
//! Image regions are those of type `MEM_IMAGE` (named from the module list). The others are
//! labeled from the process model: PEB pages, TEB pages, each thread stack's whole allocation
//! (`DeallocationStack .. StackBase`), heap ranges, and the OS-shared regions the PEB points to
//! (plus the shared user data page) as Other. A region that several labels touch takes the first
//! in that order. Free regions stay Free; everything left is `<unknown>`.

use super::{Region, RegionMap, RegionSource, Usage, UsageKind, MEM_FREE, MEM_IMAGE};
use crate::dump::streams::Module;
use crate::dump::Dump;
use crate::layout;
use crate::process::{Heap, HeapKind, Peb, Process, Teb};

/// `KUSER_SHARED_DATA`: the shared user data page, at the same address in every process.
const SHARED_USER_DATA: u64 = 0x7ffe_0000;

/// A label to put on the regions that a range touches.
struct Label {
    start: u64,
    end: u64,
    usage: Usage,
    detail: String,
    /// Label every region of the allocation(s) the range touches, not only the touched regions.
    whole_allocation: bool,
}

/// Precedence: lower wins.
fn rank(kind: UsageKind) -> u8 {
    match kind {
        UsageKind::Image => 0,
        UsageKind::Peb => 1,
        UsageKind::Teb => 2,
        UsageKind::Stack => 3,
        UsageKind::Heap | UsageKind::PageHeap => 4,
        UsageKind::Other => 5,
        UsageKind::Unknown => 6,
        UsageKind::Free => 7,
    }
}

/// Classify the regions of `dump` using the process model.
pub fn classify(dump: &Dump, process: &Process) -> RegionMap {
    let bits = process.arch.and_then(|a| a.bits()).unwrap_or(64);
    let mut problems = dump.memory_info_problems.clone();
    let (mut regions, source) = match &dump.memory_info {
        Some(info) => (
            from_memory_info(info, &mut problems),
            RegionSource::MemoryInfo,
        ),
        None => (from_captured(dump), RegionSource::CapturedMemory),
    };
    let mut modules: Vec<&Module> = dump.modules.iter().collect();
    modules.sort_by_key(|m| m.base);
    // Image regions first: by type when the region table has types, by module range otherwise.
    for r in regions.iter_mut() {
        let by_type = r.kind == Some(MEM_IMAGE);
        let module = module_at(&modules, r.base);
        if by_type || (source == RegionSource::CapturedMemory && module.is_some()) {
            r.usage = Usage {
                kind: UsageKind::Image,
                bits: None,
            };
            r.detail = module.map(|m| m.file_name().to_string());
        }
    }
    let labels = labels(process);
    split_at_labels(&mut regions, &labels);
    for l in &labels {
        apply(&mut regions, l);
    }
    RegionMap {
        regions,
        source,
        wow64: process.wow64,
        bits,
        problems,
    }
}

fn module_at<'a>(sorted: &[&'a Module], addr: u64) -> Option<&'a Module> {
    let i = sorted.partition_point(|m| m.base <= addr);
    let m = sorted.get(i.checked_sub(1)?)?;
    (addr < m.end()).then_some(*m)
}

fn from_memory_info(
    info: &[crate::dump::streams::MemoryInfo],
    problems: &mut Vec<String>,
) -> Vec<Region> {
    let mut sorted: Vec<_> = info.iter().filter(|i| i.size > 0).collect();
    sorted.sort_by_key(|i| i.base);
    let mut out: Vec<Region> = Vec::with_capacity(sorted.len());
    let mut overlaps = 0usize;
    for i in sorted {
        if out.last().is_some_and(|last| i.base < last.end()) {
            overlaps += 1;
            continue;
        }
        let free = i.state == MEM_FREE;
        out.push(Region {
            base: i.base,
            size: i.size.min(u64::MAX - i.base),
            allocation_base: Some(i.allocation_base),
            allocation_protect: Some(i.allocation_protect),
            state: Some(i.state),
            protect: Some(i.protect),
            kind: Some(i.kind),
            usage: Usage {
                kind: if free {
                    UsageKind::Free
                } else {
                    UsageKind::Unknown
                },
                bits: None,
            },
            detail: None,
        });
    }
    if overlaps > 0 {
        problems.push(format!(
            "{overlaps} MemoryInfoList entries overlap earlier ones and are ignored"
        ));
    }
    out
}

fn from_captured(dump: &Dump) -> Vec<Region> {
    dump.memory()
        .ranges()
        .iter()
        .map(|r| Region {
            base: r.base,
            size: r.size,
            allocation_base: None,
            allocation_protect: None,
            state: None,
            protect: None,
            kind: None,
            usage: Usage {
                kind: UsageKind::Unknown,
                bits: None,
            },
            detail: None,
        })
        .collect()
}

/// Every label the process model yields, in no particular order (precedence decides).
fn labels(process: &Process) -> Vec<Label> {
    let mut out = vec![Label {
        start: SHARED_USER_DATA,
        end: SHARED_USER_DATA + 0x1000,
        usage: Usage {
            kind: UsageKind::Other,
            bits: None,
        },
        detail: "Shared user data (KUSER_SHARED_DATA)".into(),
        whole_allocation: false,
    }];
    for w in &process.worlds {
        // WoW64 splits the per-world usages (`Heap32`, `Stack64`, …).
        let usage = |kind: UsageKind| Usage {
            kind,
            bits: process.wow64.then_some(w.bits),
        };
        if let Some(peb) = &w.peb {
            peb_labels(&mut out, peb, usage(UsageKind::Peb));
        }
        for t in &w.tebs {
            thread_labels(
                &mut out,
                t,
                w.bits,
                (usage(UsageKind::Teb), usage(UsageKind::Stack)),
            );
        }
        for h in &w.heaps {
            let kind = if h.kind == HeapKind::PageHeap {
                UsageKind::PageHeap
            } else {
                UsageKind::Heap
            };
            heap_labels(&mut out, h, usage(kind));
        }
    }
    out
}

/// The PEB's page and the OS-owned shared regions it points to.
fn peb_labels(out: &mut Vec<Label>, peb: &Peb, usage: Usage) {
    let page = peb.address & !0xfff;
    out.push(Label {
        start: page,
        end: page.saturating_add(0x1000),
        usage,
        detail: match usage.bits {
            Some(bits) => format!("PEB{bits}"),
            None => "PEB".to_string(),
        },
        whole_allocation: false,
    });
    for (what, addr) in &peb.shared {
        out.push(Label {
            start: *addr,
            end: addr.saturating_add(1),
            usage: Usage {
                kind: UsageKind::Other,
                bits: None,
            },
            detail: (*what).to_string(),
            whole_allocation: true,
        });
    }
}

/// A thread's TEB and its stack's whole reservation (the allocation at DeallocationStack when
/// the TEB has it, else the allocation around StackLimit).
fn thread_labels(out: &mut Vec<Label>, t: &Teb, bits: u32, (teb, stack): (Usage, Usage)) {
    let teb_layout = if bits == 64 {
        &layout::TEB64
    } else {
        &layout::TEB32
    };
    out.push(Label {
        start: t.address,
        end: t.address.saturating_add(teb_layout.region_size),
        usage: teb,
        detail: format!("thread {:#x}", t.thread_id),
        whole_allocation: false,
    });
    let anchor = t
        .deallocation_stack
        .filter(|&d| d != 0 && t.stack_base.is_some_and(|b| d < b))
        .or(t.stack_limit.filter(|&l| l != 0));
    if let Some(a) = anchor {
        let end = t
            .stack_base
            .filter(|&b| b > a && b - a <= 1 << 32)
            .unwrap_or(a.saturating_add(1));
        out.push(Label {
            start: a,
            end,
            usage: stack,
            detail: format!("thread {:#x} stack", t.thread_id),
            whole_allocation: true,
        });
    }
}

/// A heap's allocation, its segments and its large blocks.
fn heap_labels(out: &mut Vec<Label>, h: &Heap, usage: Usage) {
    out.push(Label {
        start: h.address,
        end: h.address.saturating_add(1),
        usage,
        detail: format!("heap {:#x}", h.address),
        whole_allocation: true,
    });
    let parts = [(&h.segments, "segment"), (&h.large_blocks, "large block")];
    for (ranges, what) in parts {
        // Page heap ranges are reservations page heap carves blocks from: label them whole
        // rather than splitting regions at the carved edges.
        out.extend(ranges.iter().map(|r| Label {
            start: r.start,
            end: r.end,
            usage,
            detail: format!("heap {:#x} {what}", h.address),
            whole_allocation: usage.kind == UsageKind::PageHeap,
        }));
    }
}

/// Split busy regions at the edges of exact labels, as WinDbg does: a PEB page and the TEBs that
/// share one committed run of pages come out as separate regions (`PEB` 4 kB, `TEB` 8 kB).
fn split_at_labels(regions: &mut Vec<Region>, labels: &[Label]) {
    let mut cuts: Vec<u64> = labels
        .iter()
        .filter(|l| !l.whole_allocation)
        .flat_map(|l| [l.start, l.end])
        .filter(|c| c & 0xfff == 0)
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    if cuts.is_empty() {
        return;
    }
    let mut out = Vec::with_capacity(regions.len() + cuts.len());
    for r in regions.drain(..) {
        let first = cuts.partition_point(|&c| c <= r.base);
        let inner: Vec<u64> = cuts[first..]
            .iter()
            .copied()
            .take_while(|&c| c < r.end())
            .collect();
        if inner.is_empty() || r.usage.kind == UsageKind::Free {
            out.push(r);
            continue;
        }
        let mut start = r.base;
        for c in inner.into_iter().chain(std::iter::once(r.end())) {
            out.push(Region {
                base: start,
                size: c - start,
                ..r.clone()
            });
            start = c;
        }
    }
    *regions = out;
}

/// Put `label` on the regions it touches (or on their whole allocations), where it outranks the
/// current usage. Free regions are never labeled.
fn apply(regions: &mut [Region], label: &Label) {
    if label.end <= label.start {
        return;
    }
    let first = regions.partition_point(|r| r.end() <= label.start);
    let last = regions.partition_point(|r| r.base < label.end);
    if first >= last {
        return;
    }
    let mut targets: Vec<usize> = (first..last).collect();
    if label.whole_allocation {
        let mut bases: Vec<u64> = targets
            .iter()
            .filter_map(|&i| regions[i].allocation_base)
            .filter(|&b| b != 0)
            .collect();
        bases.dedup();
        for ab in bases {
            let mut i = regions.partition_point(|r| r.base < ab);
            while i < regions.len() && regions[i].allocation_base == Some(ab) {
                targets.push(i);
                i += 1;
            }
        }
        targets.sort_unstable();
        targets.dedup();
    }
    for i in targets {
        let r = &mut regions[i];
        if r.usage.kind == UsageKind::Free {
            continue;
        }
        if rank(label.usage.kind) < rank(r.usage.kind) {
            r.usage = label.usage;
            r.detail = Some(label.detail.clone());
        }
    }
}
