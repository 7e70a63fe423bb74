//! `heapdiag address` on synthetic fixtures, whose every region's usage is known by construction,
//! and a golden text rendering of the bundled sample.

mod common;

use common::*;
use dumpwriter::process::{Facts, Labeled, Usage};
use serde_json::Value;
use std::collections::BTreeMap;

const FULL_FIXTURES: &[&str] = &[
    "sample-win10-x64.dmp",
    "win7-x86.dmp",
    "wow64-win7.dmp",
    "wow64-win10.dmp",
];

fn usage_name(l: &Labeled, wow64: bool) -> String {
    let base = match l.usage {
        Usage::Free => "Free",
        Usage::Image => "Image",
        Usage::Heap => "Heap",
        Usage::PageHeap => "PageHeap",
        Usage::Stack => "Stack",
        Usage::Teb => "TEB",
        Usage::Peb => "PEB",
        Usage::Other => "Other",
        Usage::Unknown => "<unknown>",
    };
    let split = matches!(
        l.usage,
        Usage::Heap | Usage::Stack | Usage::Teb | Usage::Peb
    );
    if wow64 && split {
        format!("{base}{}", l.bits)
    } else {
        base.to_string()
    }
}

fn state(v: u32) -> &'static str {
    match v {
        0x1000 => "MEM_COMMIT",
        0x2000 => "MEM_RESERVE",
        0x10000 => "MEM_FREE",
        _ => panic!("state {v:#x}"),
    }
}

fn kind(v: u32) -> &'static str {
    match v {
        0x20000 => "MEM_PRIVATE",
        0x40000 => "MEM_MAPPED",
        0x1000000 => "MEM_IMAGE",
        _ => panic!("type {v:#x}"),
    }
}

fn protect(v: u32) -> &'static str {
    match v {
        0x02 => "PAGE_READONLY",
        0x04 => "PAGE_READWRITE",
        0x08 => "PAGE_WRITECOPY",
        0x20 => "PAGE_EXECUTE_READ",
        0x104 => "PAGE_READWRITE | PAGE_GUARD",
        _ => panic!("protect {v:#x}"),
    }
}

type Table = BTreeMap<String, (u64, u64)>;

fn add(t: &mut Table, name: &str, size: u64) {
    let e = t.entry(name.to_string()).or_default();
    e.0 += 1;
    e.1 += size;
}

fn table_of(rows: &Value) -> Table {
    rows.as_array()
        .expect("array")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                (r["regions"].as_u64().unwrap(), r["bytes"].as_u64().unwrap()),
            )
        })
        .collect()
}

struct Expected {
    usage: Table,
    types: Table,
    states: Table,
    protects: Table,
    largest: BTreeMap<String, (u64, u64)>,
    total: u64,
    busy: u64,
}

fn expected(facts: &Facts, wow64: bool) -> Expected {
    let mut e = Expected {
        usage: Table::new(),
        types: Table::new(),
        states: Table::new(),
        protects: Table::new(),
        largest: BTreeMap::new(),
        total: 0,
        busy: 0,
    };
    for l in &facts.regions {
        let r = l.region;
        let name = usage_name(l, wow64);
        add(&mut e.usage, &name, r.size);
        add(&mut e.states, state(r.state), r.size);
        e.total += r.size;
        if r.state != 0x10000 {
            e.busy += r.size;
            add(&mut e.types, kind(r.kind), r.size);
        }
        if r.state == 0x1000 {
            add(&mut e.protects, protect(r.protect), r.size);
        }
        let big = e.largest.entry(name).or_insert((r.base, r.size));
        if r.size > big.1 {
            *big = (r.base, r.size);
        }
    }
    e
}

#[test]
fn summaries_match_the_constructed_regions() {
    for name in FULL_FIXTURES {
        let path = fixture(name);
        let facts = facts(name);
        let wow64 = name.starts_with("wow64");
        let want = expected(&facts, wow64);
        let got = json(&["address", path.to_str().unwrap(), "--json"]);
        assert_eq!(got["source"], "memory_info", "{name}");
        assert_eq!(got["total_bytes"].as_u64(), Some(want.total), "{name}");
        assert_eq!(got["busy_bytes"].as_u64(), Some(want.busy), "{name}");
        assert_eq!(table_of(&got["usage"]), want.usage, "{name}: usage");
        assert_eq!(table_of(&got["type"]), want.types, "{name}: type");
        assert_eq!(table_of(&got["state"]), want.states, "{name}: state");
        assert_eq!(table_of(&got["protect"]), want.protects, "{name}: protect");
        let largest: BTreeMap<String, (u64, u64)> = got["largest"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let base =
                    u64::from_str_radix(l["base"].as_str().unwrap().trim_start_matches("0x"), 16)
                        .unwrap();
                (
                    l["usage"].as_str().unwrap().to_string(),
                    (base, l["size"].as_u64().unwrap()),
                )
            })
            .collect();
        assert_eq!(largest, want.largest, "{name}: largest");
        // Percentages: WinDbg's definitions, rows sorted by size.
        let mut last = u64::MAX;
        for row in got["usage"].as_array().unwrap() {
            let bytes = row["bytes"].as_u64().unwrap();
            assert!(bytes <= last, "{name}: usage rows sorted by size");
            last = bytes;
            let total = row["pct_total"].as_f64().unwrap();
            assert!((total - bytes as f64 * 100.0 / want.total as f64).abs() < 1e-3);
            if row["name"] == "Free" {
                assert!(row["pct_busy"].is_null());
            } else {
                let busy = row["pct_busy"].as_f64().unwrap();
                assert!((busy - bytes as f64 * 100.0 / want.busy as f64).abs() < 1e-3);
            }
        }
    }
}

#[test]
fn wow64_splits_usages_by_world() {
    let path = fixture("wow64-win7.dmp");
    let got = json(&["address", path.to_str().unwrap(), "--json"]);
    let names: Vec<&str> = got["usage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for want in [
        "Heap32", "Heap64", "Stack32", "Stack64", "TEB32", "TEB64", "PEB32", "PEB64",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert!(!names.contains(&"Heap"));
}

#[test]
fn region_filters_select_like_windbg() {
    let name = "wow64-win10.dmp";
    let path = fixture(name);
    let facts = facts(name);
    let got = json(&[
        "address",
        path.to_str().unwrap(),
        "--regions",
        "-f",
        "Heap32,Stack32",
        "-f",
        "MEM_COMMIT",
        "--json",
    ]);
    let listed: Vec<(String, u64)> = got["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["base"].as_str().unwrap().to_string(),
                r["size"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = facts
        .regions
        .iter()
        .filter(|l| {
            matches!(usage_name(l, true).as_str(), "Heap32" | "Stack32") && l.region.state == 0x1000
        })
        .map(|l| (hex(l.region.base), l.region.size))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(listed, want);
    // Every listed region carries its WinDbg fields.
    let first = &got["regions"][0];
    assert_eq!(first["state"], "MEM_COMMIT");
    assert_eq!(first["type"], "MEM_PRIVATE");
    assert!(first["protect"]
        .as_str()
        .unwrap()
        .starts_with("PAGE_READWRITE"));
}

#[test]
fn csv_has_the_same_rows_as_json() {
    let path = fixture("win7-x86.dmp");
    let p = path.to_str().unwrap();
    let j = json(&["address", p, "--regions", "--json"]);
    let csv = text(&["address", p, "--regions", "--csv"]);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("base,end,size,usage,state,type,protect,allocation_base,detail")
    );
    assert_eq!(lines.count(), j["regions"].as_array().unwrap().len());
    let summary = text(&["address", p, "--csv"]);
    assert!(summary.starts_with("table,name,regions,bytes,pct_busy,pct_total,base\n"));
    assert!(summary.contains("\nusage,Free,"));
    assert!(summary.contains("\nprotect,PAGE_READWRITE | PAGE_GUARD,2,8192,"));
}

#[test]
fn minidump_without_region_table_classifies_captured_memory_only() {
    let path = fixture("win11-x64-minidump.dmp");
    let got = json(&["address", path.to_str().unwrap(), "--json"]);
    assert_eq!(got["source"], "captured_memory");
    let usage = table_of(&got["usage"]);
    let want: Table = [
        ("Image", (3, 0x3000)),
        ("Stack", (1, 0x2000)),
        ("TEB", (1, 0x2000)),
        ("PEB", (1, 0x1000)),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v))
    .collect();
    assert_eq!(usage, want);
    for t in ["type", "state", "protect"] {
        assert_eq!(got[t].as_array().unwrap().len(), 0, "{t}");
    }
    let txt = text(&["address", path.to_str().unwrap()]);
    assert!(txt.contains("no MemoryInfoList stream"));
}

/// `--windbg`: the tables exactly as `!address -summary` prints them.
#[test]
fn sample_summary_text_is_golden() {
    let path = fixture("sample-win10-x64.dmp");
    let got = text(&["address", path.to_str().unwrap(), "--windbg"]);
    let golden = include_str!("golden/sample-address.txt");
    assert_eq!(
        got, golden,
        "re-check the rendering, then update tests/golden/sample-address.txt"
    );
}

#[test]
fn filter_names_are_checked() {
    let path = fixture("win7-x86.dmp");
    heapdiag()
        .args([
            "address",
            path.to_str().unwrap(),
            "--regions",
            "-f",
            "Bogus",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("unknown filter 'Bogus'"));
}
