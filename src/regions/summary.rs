//! The `!address -summary` tables: Usage, Type (for busy), State, Protect (for commit), and the
//! largest region of each usage, with WinDbg's arithmetic.
//!
//! `%ofTotal` is a share of the sum of all regions (the whole user address space when the dump
//! has a MemoryInfoList, since that list covers it from 0 to the top); `%ofBusy` is a share of
//! the non-free regions. Free rows have no `%ofBusy`. Rows are sorted by size, largest first.

use super::{
    protect_name, state_name, type_name, RegionMap, RegionSource, Usage, UsageKind, MEM_COMMIT,
};
use crate::value::{self, pct};
use serde::Serialize;
use std::collections::BTreeMap;

/// One row of a summary table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// Usage, type, state or protection name as WinDbg prints it.
    pub name: String,
    /// Number of regions (`RgnCount`).
    pub regions: u64,
    /// Total bytes.
    pub bytes: u64,
    /// Share of busy bytes, in percent; `None` for free rows.
    #[serde(serialize_with = "value::percent4_opt")]
    pub pct_busy: Option<f64>,
    /// Share of all bytes, in percent.
    #[serde(serialize_with = "value::percent4")]
    pub pct_total: f64,
}

/// The largest region of one usage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Largest {
    /// Usage name.
    pub usage: String,
    /// Base address.
    #[serde(serialize_with = "value::hex")]
    pub base: u64,
    /// Size.
    pub size: u64,
}

/// All five tables; serialized, the summary part of `address --json`.
#[derive(Clone, Debug, Serialize)]
pub struct AddressSummary {
    /// Where the regions came from.
    pub source: RegionSource,
    /// Sum of all region sizes.
    pub total_bytes: u64,
    /// Sum of non-free region sizes.
    pub busy_bytes: u64,
    /// Usage Summary.
    pub usage: Vec<Row>,
    /// Type Summary (for busy); empty without a region table.
    #[serde(rename = "type")]
    pub types: Vec<Row>,
    /// State Summary; empty without a region table.
    #[serde(rename = "state")]
    pub states: Vec<Row>,
    /// Protect Summary (for commit); empty without a region table.
    #[serde(rename = "protect")]
    pub protects: Vec<Row>,
    /// Largest Region by Usage, in the Usage table's order.
    pub largest: Vec<Largest>,
    /// Committed regions only, by usage (what "private bytes"-style growth shows); empty without
    /// a region table.
    #[serde(skip)]
    pub committed: Vec<Row>,
}

#[derive(Default)]
struct Acc {
    regions: u64,
    bytes: u64,
}

impl Acc {
    fn add(&mut self, size: u64) {
        self.regions += 1;
        self.bytes += size;
    }
}

/// The regions counted by usage, type, state, protection and committed usage.
#[derive(Default)]
struct Tally {
    usage: BTreeMap<Usage, Acc>,
    largest: BTreeMap<Usage, (u64, u64)>,
    types: BTreeMap<String, Acc>,
    states: BTreeMap<String, Acc>,
    protects: BTreeMap<String, Acc>,
    committed: BTreeMap<String, Acc>,
}

fn tally(map: &RegionMap) -> Tally {
    let mut t = Tally::default();
    for r in &map.regions {
        t.usage.entry(r.usage).or_default().add(r.size);
        let l = t.largest.entry(r.usage).or_insert((r.base, r.size));
        if r.size > l.1 {
            *l = (r.base, r.size);
        }
        let Some(s) = r.state else { continue };
        t.states.entry(state_name(s)).or_default().add(r.size);
        if let Some(k) = r.kind.filter(|_| r.is_busy()) {
            t.types.entry(type_name(k)).or_default().add(r.size);
        }
        if s == MEM_COMMIT {
            if let Some(p) = r.protect {
                t.protects.entry(protect_name(p)).or_default().add(r.size);
            }
            t.committed.entry(r.usage.name()).or_default().add(r.size);
        }
    }
    t
}

/// Compute the summary of a region map.
pub fn summarize(map: &RegionMap) -> AddressSummary {
    let total: u64 = map.regions.iter().map(|r| r.size).sum();
    let busy: u64 = map
        .regions
        .iter()
        .filter(|r| r.is_busy())
        .map(|r| r.size)
        .sum();
    let t = tally(map);
    let row = |name: String, a: &Acc, free: bool| Row {
        name,
        regions: a.regions,
        bytes: a.bytes,
        pct_busy: (!free).then(|| pct(a.bytes, busy)),
        pct_total: pct(a.bytes, total),
    };
    let mut usage_rows: Vec<(Usage, Row)> = t
        .usage
        .iter()
        .map(|(u, a)| (*u, row(u.name(), a, u.kind == super::UsageKind::Free)))
        .collect();
    usage_rows.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then(a.0.cmp(&b.0)));
    let sorted = |m: &BTreeMap<String, Acc>, free_name: Option<&str>| {
        let mut v: Vec<Row> = m
            .iter()
            .map(|(n, a)| row(n.clone(), a, Some(n.as_str()) == free_name))
            .collect();
        v.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.name.cmp(&b.name)));
        v
    };
    AddressSummary {
        source: map.source,
        largest: usage_rows
            .iter()
            .map(|(u, r)| {
                let (base, size) = t.largest[u];
                Largest {
                    usage: r.name.clone(),
                    base,
                    size,
                }
            })
            .collect(),
        usage: usage_rows.into_iter().map(|(_, r)| r).collect(),
        types: sorted(&t.types, None),
        states: sorted(&t.states, Some("MEM_FREE")),
        protects: sorted(&t.protects, None),
        committed: sorted(&t.committed, None),
        total_bytes: total,
        busy_bytes: busy,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Region, UsageKind, MEM_FREE, MEM_PRIVATE, MEM_RESERVE};
    use super::*;

    fn region(base: u64, size: u64, state: u32, kind: UsageKind) -> Region {
        Region {
            base,
            size,
            allocation_base: Some(base),
            allocation_protect: Some(4),
            state: Some(state),
            protect: Some(if state == MEM_COMMIT { 4 } else { 0 }),
            kind: (state != MEM_FREE).then_some(MEM_PRIVATE),
            usage: Usage { kind, bits: None },
            detail: None,
        }
    }

    #[test]
    fn arithmetic_matches_windbg_definitions() {
        let map = RegionMap {
            regions: vec![
                region(0, 0x6000, MEM_FREE, UsageKind::Free),
                region(0x6000, 0x1000, MEM_COMMIT, UsageKind::Heap),
                region(0x7000, 0x3000, MEM_RESERVE, UsageKind::Heap),
                region(0xa000, 0x2000, MEM_COMMIT, UsageKind::Unknown),
                region(0xc000, 0x4000, MEM_FREE, UsageKind::Free),
            ],
            source: RegionSource::MemoryInfo,
            wow64: false,
            bits: 64,
            problems: vec![],
        };
        let s = summarize(&map);
        assert_eq!((s.total_bytes, s.busy_bytes), (0x10000, 0x6000));
        let names: Vec<&str> = s.usage.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["Free", "Heap", "<unknown>"]);
        assert_eq!(s.usage[0].pct_busy, None);
        assert_eq!(s.usage[0].pct_total, 62.5);
        assert_eq!(s.usage[1].regions, 2);
        assert!((s.usage[1].pct_busy.unwrap() - 66.666).abs() < 0.01);
        assert_eq!(
            s.largest[1],
            Largest {
                usage: "Heap".into(),
                base: 0x7000,
                size: 0x3000
            }
        );
        assert_eq!(s.largest[0].base, 0);
        let states: Vec<(&str, u64)> = s
            .states
            .iter()
            .map(|r| (r.name.as_str(), r.regions))
            .collect();
        assert_eq!(
            states,
            [("MEM_FREE", 2), ("MEM_COMMIT", 2), ("MEM_RESERVE", 1)]
        );
        assert_eq!(
            s.types,
            vec![Row {
                name: "MEM_PRIVATE".into(),
                regions: 3,
                bytes: 0x6000,
                pct_busy: Some(100.0),
                pct_total: 37.5
            }]
        );
        assert_eq!(s.protects.len(), 1);
        assert_eq!((s.protects[0].regions, s.protects[0].bytes), (2, 0x3000));
    }
}

/// Where the committed memory is, in the four parts a memory investigation starts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Headline {
    /// Native heaps: NT, segment and page heaps (`Heap*`, `PageHeap`).
    pub native_heaps: u64,
    /// Other private memory: `VirtualAlloc`, GC heaps, thread stacks, TEBs and PEBs.
    pub other_private: u64,
    /// Images (EXE and DLL files mapped).
    pub images: u64,
    /// Mapped views other than images (sections, files).
    pub mapped: u64,
    /// Committed bytes in all.
    pub committed: u64,
}

/// The committed memory of `map` by [`Headline`] part (everything captured when the dump has no
/// region table: the capture is what a minidump can say).
pub fn headline(map: &RegionMap) -> Headline {
    use super::{MEM_IMAGE, MEM_MAPPED};
    let mut h = Headline::default();
    for r in map.regions.iter().filter(|r| r.is_busy()) {
        if r.state.is_some_and(|s| s != MEM_COMMIT) {
            continue;
        }
        h.committed += r.size;
        let part = match (r.usage.kind, r.kind) {
            (UsageKind::Heap | UsageKind::PageHeap, _) => &mut h.native_heaps,
            (UsageKind::Image, _) | (_, Some(MEM_IMAGE)) => &mut h.images,
            (_, Some(MEM_MAPPED)) => &mut h.mapped,
            _ => &mut h.other_private,
        };
        *part += r.size;
    }
    h
}
