//! heapdiag against heaps built by the real Windows 10 19041 ntdll heap code (`../shared/oracle`):
//! every live allocation the real code handed out must be reported at its exact address, with its
//! requested size, front end, heap and +ust stack; no freed allocation may be reported busy; the
//! busy count of each heap must equal what the real `RtlWalkHeap` counted; every heap must walk
//! with no corruption and a coverage ledger with nothing unexplained.
//!
//! The oracle's dumps are not redistributable (they hold ntdll code): the tests read them from
//! `$ORACLE_OUT`, `$ORACLE_ROOT/out` or `~/.cache/heapdiag-oracle/out` (see
//! `../shared/oracle/README.md`: `get-ntdll.sh`, then `make.sh`) and skip with a printed reason
//! when they are absent.

mod common;

use common::json;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;

/// Every output the oracle makes (`../shared/oracle/README.md`).
const DUMPS: [&str; 8] = [
    "win10x64_nt",
    "win10x86_nt",
    "win10x64_seg",
    "win10x86_seg",
    "win10x64_nt_ust",
    "win10x86_nt_ust",
    "win10x64_seg_ust",
    "win10x86_seg_ust",
];

/// The oracle's output folder, or `None` with the reason printed.
fn oracle_out() -> Option<PathBuf> {
    let dir = std::env::var_os("ORACLE_OUT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("ORACLE_ROOT").map(|r| PathBuf::from(r).join("out")))
        .or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
            Some(cache.join("heapdiag-oracle/out"))
        })?;
    if DUMPS
        .iter()
        .all(|d| dir.join(format!("{d}.json")).is_file() && dir.join(format!("{d}.dmp")).is_file())
    {
        Some(dir)
    } else {
        eprintln!(
            "skipping: the real-ntdll oracle's dumps are not in {} (run ../shared/oracle/get-ntdll.sh and make.sh)",
            dir.display()
        );
        None
    }
}

fn addr(v: &Value) -> u64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not an address: {v}"));
    u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex address")
}

/// The oracle's truth for one dump: `(heap, live allocation)` by user address, freed addresses
/// not reused, and the real `RtlWalkHeap`'s busy count per heap.
struct Truth {
    live: HashMap<u64, (u64, Value)>,
    freed: Vec<u64>,
    walk_busy: HashMap<u64, u64>,
}

fn truth(dir: &std::path::Path, name: &str) -> Truth {
    let text = std::fs::read_to_string(dir.join(format!("{name}.json"))).expect("oracle JSON");
    let j: Value = serde_json::from_str(&text).expect("oracle JSON parses");
    let mut live = HashMap::new();
    let mut freed = Vec::new();
    for (heap, h) in j["heaps"].as_object().expect("heaps") {
        let heap = u64::from_str_radix(heap.trim_start_matches("0x"), 16).unwrap();
        for l in h["live"].as_array().unwrap() {
            live.insert(addr(&l["user_address"]), (heap, l.clone()));
        }
        for f in h["freed"].as_array().unwrap() {
            if !f["reused_by_live"].as_bool().unwrap_or(false) {
                freed.push(addr(&f["user_address"]));
            }
        }
    }
    let walk_busy = j["rtlwalkheap_oracle"]
        .as_object()
        .expect("rtlwalkheap_oracle")
        .iter()
        .map(|(h, o)| {
            (
                u64::from_str_radix(h.trim_start_matches("0x"), 16).unwrap(),
                o["busy"].as_u64().unwrap(),
            )
        })
        .collect();
    Truth {
        live,
        freed,
        walk_busy,
    }
}

/// What heapdiag gets wrong on one oracle dump, one line each.
fn disagreements(dir: &std::path::Path, name: &str) -> Vec<String> {
    let t = truth(dir, name);
    let dump = dir.join(format!("{name}.dmp"));
    let blocks = json(&["blocks", dump.to_str().unwrap(), "--json"]);
    let mut busy: HashMap<u64, &Value> = HashMap::new();
    let mut busy_per_heap: HashMap<u64, u64> = HashMap::new();
    let mut free = Vec::new();
    for b in blocks.as_array().unwrap() {
        if b["state"] == "busy" {
            busy.insert(addr(&b["address"]), b);
            *busy_per_heap.entry(addr(&b["heap"])).or_default() += 1;
        } else {
            free.push(addr(&b["address"]));
        }
    }
    let mut bad = Vec::new();
    for (&a, (heap, l)) in &t.live {
        let Some(b) = busy.get(&a) else {
            bad.push(format!(
                "{name}: live {} allocation {a:#x} ({} bytes) of heap {heap:#x} not reported",
                l["frontend"], l["requested_size"]
            ));
            continue;
        };
        let mut why = Vec::new();
        if b["size"] != l["requested_size"] {
            why.push(format!("size {} (real {})", b["size"], l["requested_size"]));
        }
        if b["front_end"] != l["frontend"] {
            why.push(format!(
                "front end {} (real {})",
                b["front_end"], l["frontend"]
            ));
        }
        if addr(&b["heap"]) != *heap {
            why.push(format!("heap {} (real {heap:#x})", b["heap"]));
        }
        if let Some(stack) = l["stack"].as_array() {
            let want: Vec<u64> = stack.iter().map(addr).collect();
            let got: Vec<u64> = b["stack"]
                .as_array()
                .map(|s| s.iter().map(addr).collect())
                .unwrap_or_default();
            if got != want {
                why.push(format!("stack {got:x?} (real {want:x?})"));
            }
            if b["trace"].is_null() || addr(&b["trace"]) != addr(&l["ust"]["record"]) {
                why.push(format!(
                    "trace record {} (real {})",
                    b["trace"], l["ust"]["record"]
                ));
            }
        }
        if !why.is_empty() {
            bad.push(format!("{name}: allocation {a:#x}: {}", why.join(", ")));
        }
    }
    for a in &t.freed {
        if busy.contains_key(a) {
            bad.push(format!("{name}: freed allocation {a:#x} is reported busy"));
        }
    }
    // Beside the script's allocations, ntdll makes a few of its own (RtlWalkHeap counts them):
    // the busy count of each heap must be the real walk's.
    for (heap, want) in &t.walk_busy {
        let got = busy_per_heap.get(heap).copied().unwrap_or(0);
        if got != *want {
            bad.push(format!(
                "{name}: heap {heap:#x} has {got} busy blocks; the real RtlWalkHeap counts {want}"
            ));
        }
    }
    bad
}

#[test]
fn every_live_allocation_is_reported_exactly_as_the_real_heap_made_it() {
    let Some(dir) = oracle_out() else { return };
    let bad: Vec<String> = DUMPS.iter().flat_map(|d| disagreements(&dir, d)).collect();
    assert!(
        bad.is_empty(),
        "{} disagreements:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn every_real_heap_walks_clean_and_fully_explained() {
    let Some(dir) = oracle_out() else { return };
    let mut bad = Vec::new();
    for name in DUMPS {
        let dump = dir.join(format!("{name}.dmp"));
        let heaps = json(&["heaps", dump.to_str().unwrap(), "--json"]);
        let t = truth(&dir, name);
        for h in heaps.as_array().unwrap() {
            let a = h["address"].as_str().unwrap();
            if !t.walk_busy.contains_key(&addr(&h["address"])) {
                continue;
            }
            let c = &h["coverage"];
            let mut why = Vec::new();
            if h["walked"] != true {
                why.push("not walked".to_string());
            }
            if !h["corruptions"].as_array().unwrap().is_empty() {
                why.push(format!("corruptions {}", h["corruptions"]));
            }
            if c["unexplained"] != 0 || c["corrupt"] != 0 || c["not_captured"] != 0 {
                why.push(format!("coverage {c}"));
            }
            let (reserved, committed) = (
                h["reserved"].as_u64().unwrap(),
                h["committed"].as_u64().unwrap(),
            );
            if committed == 0 || reserved < committed {
                why.push(format!("reserved {reserved}, committed {committed}"));
            }
            if h["flags"].is_null() {
                why.push("no flags".into());
            }
            let lfh_blocks = h["lfh_busy_blocks"].as_u64().unwrap_or(0);
            if lfh_blocks > 0 && h["lfh"] != true {
                why.push(format!("lfh false with {lfh_blocks} LFH blocks"));
            }
            if !why.is_empty() {
                bad.push(format!("{name}: heap {a}: {}", why.join("; ")));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
