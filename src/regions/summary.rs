//! The `!address -summary` tables: Usage, Type (for busy), State, Protect (for commit), and the
//! largest region of each usage, with WinDbg's arithmetic.
//!
//! `%ofTotal` is a share of the sum of all regions (the whole user address space when the dump
//! has a MemoryInfoList, since that list covers it from 0 to the top); `%ofBusy` is a share of
//! the non-free regions. Free rows have no `%ofBusy`. Rows are sorted by size, largest first.

use super::{protect_name, state_name, type_name, RegionMap, RegionSource, Usage, MEM_COMMIT};
use std::collections::BTreeMap;

/// One row of a summary table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Usage, type, state or protection name as WinDbg prints it.
    pub name: String,
    /// Number of regions (`RgnCount`).
    pub regions: u64,
    /// Total bytes.
    pub bytes: u64,
    /// Share of busy bytes, in percent; `None` for free rows.
    pub pct_busy: Option<f64>,
    /// Share of all bytes, in percent.
    pub pct_total: f64,
}

/// The largest region of one usage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Largest {
    /// Usage name.
    pub usage: String,
    /// Base address.
    pub base: u64,
    /// Size.
    pub size: u64,
}

/// All five tables.
#[derive(Clone, Debug)]
pub struct AddressSummary {
    /// Where the regions came from.
    pub source: RegionSource,
    /// Usage Summary.
    pub usage: Vec<Row>,
    /// Type Summary (for busy); empty without a region table.
    pub types: Vec<Row>,
    /// State Summary; empty without a region table.
    pub states: Vec<Row>,
    /// Protect Summary (for commit); empty without a region table.
    pub protects: Vec<Row>,
    /// Largest Region by Usage, in the Usage table's order.
    pub largest: Vec<Largest>,
    /// Committed regions only, by usage (what "private bytes"-style growth shows); empty without
    /// a region table.
    pub committed: Vec<Row>,
    /// Sum of all region sizes.
    pub total_bytes: u64,
    /// Sum of non-free region sizes.
    pub busy_bytes: u64,
}

#[derive(Default)]
struct Acc {
    regions: u64,
    bytes: u64,
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
    let mut usage: BTreeMap<Usage, Acc> = BTreeMap::new();
    let mut largest: BTreeMap<Usage, (u64, u64)> = BTreeMap::new();
    let mut types: BTreeMap<String, Acc> = BTreeMap::new();
    let mut states: BTreeMap<String, Acc> = BTreeMap::new();
    let mut protects: BTreeMap<String, Acc> = BTreeMap::new();
    let mut committed: BTreeMap<String, Acc> = BTreeMap::new();
    let add = |m: &mut BTreeMap<String, Acc>, k: String, size: u64| {
        let a = m.entry(k).or_default();
        a.regions += 1;
        a.bytes += size;
    };
    for r in &map.regions {
        let a = usage.entry(r.usage).or_default();
        a.regions += 1;
        a.bytes += r.size;
        let l = largest.entry(r.usage).or_insert((r.base, r.size));
        if r.size > l.1 {
            *l = (r.base, r.size);
        }
        if let Some(s) = r.state {
            add(&mut states, state_name(s), r.size);
            if r.is_busy() {
                if let Some(k) = r.kind {
                    add(&mut types, type_name(k), r.size);
                }
            }
            if s == MEM_COMMIT {
                if let Some(p) = r.protect {
                    add(&mut protects, protect_name(p), r.size);
                }
                add(&mut committed, r.usage.name(), r.size);
            }
        }
    }
    let pct = |part: u64, whole: u64| {
        if whole == 0 {
            0.0
        } else {
            part as f64 * 100.0 / whole as f64
        }
    };
    let row = |name: String, a: &Acc, free: bool| Row {
        name,
        regions: a.regions,
        bytes: a.bytes,
        pct_busy: (!free).then(|| pct(a.bytes, busy)),
        pct_total: pct(a.bytes, total),
    };
    let mut usage_rows: Vec<(Usage, Row)> = usage
        .iter()
        .map(|(u, a)| (*u, row(u.name(), a, !u_is_busy(u))))
        .collect();
    usage_rows.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then(a.0.cmp(&b.0)));
    let sorted = |m: BTreeMap<String, Acc>, free_name: Option<&str>| {
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
                let (base, size) = largest[u];
                Largest {
                    usage: r.name.clone(),
                    base,
                    size,
                }
            })
            .collect(),
        usage: usage_rows.into_iter().map(|(_, r)| r).collect(),
        types: sorted(types, None),
        states: sorted(states, Some("MEM_FREE")),
        protects: sorted(protects, None),
        committed: sorted(committed, None),
        total_bytes: total,
        busy_bytes: busy,
    }
}

fn u_is_busy(u: &Usage) -> bool {
    u.kind != super::UsageKind::Free
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
