//! Damage is reported where it is and never invents blocks: a seeded campaign of deliberate
//! corruptions of heap metadata (`dumpwriter::damage`: NT back-end headers and large-block
//! headers, VS chunk headers, LFH subsegments, page-range descriptors, free lists) on fixtures of
//! every heap kind. For each case: no panic, no hang, the damage reported at its address, no
//! block that the undamaged dump does not have, and at most the damaged block(s) lost.

mod common;

use common::*;
use dumpwriter::damage::{self, Damage};
use dumpwriter::fixtures;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Fixtures of every heap kind: NT (Windows 7, 8.1, 10, x86 and x64, with the LFH), segment heaps
/// (x64, x86, 1709, 24H2) and page heaps (their normal heaps are NT heaps).
const FIXTURES: &[&str] = &[
    "heap-win7-x86.dmp",
    "heap-win81-x64.dmp",
    "heap-win10-x64.dmp",
    "heap-win10-1607-x86.dmp",
    "ust-win10-x64.dmp",
    "segheap-mixed-win10-x64.dmp",
    "segheap-win10-x86.dmp",
    "segheap-win10-1709-x64.dmp",
    "segheap-win11-24h2-x64.dmp",
    "segheap-ust-win10-x86.dmp",
    "pageheap-win10-x64.dmp",
];

/// Damage kinds, as `dumpwriter::damage::targets` names them.
const KINDS: &[&str] = &[
    "header",
    "prev",
    "large",
    "junk",
    "lfh",
    "descriptor",
    "free-list",
];

/// (heap, entry, address, size, state, front end) of every block.
type Row = (String, String, String, u64, String, String);

fn rows(blocks: &Value) -> BTreeSet<Row> {
    blocks
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["heap"].as_str().unwrap().to_string(),
                b["entry"].as_str().unwrap().to_string(),
                b["address"].as_str().unwrap().to_string(),
                b["size"].as_u64().unwrap(),
                b["state"].as_str().unwrap().to_string(),
                b["front_end"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Run heapdiag with a deadline: a hang fails the test instead of stalling it.
fn run(args: &[&str]) -> Value {
    let start = Instant::now();
    let out = heapdiag()
        .args(args)
        .timeout(Duration::from_secs(30))
        .output()
        .expect("run heapdiag");
    assert!(
        out.status.success(),
        "heapdiag {args:?} failed after {:?}: {}",
        start.elapsed(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

/// One damage case's outcome, or why it failed.
fn case(name: &str, heap_index: usize, d: Damage) -> Result<(usize, usize), String> {
    let f = fixtures::by_name(name).unwrap();
    let (clean_dump, facts) = (f.build)();
    let clean = write_temp(&format!("clean-{name}"), &clean_dump.to_bytes());
    let clean_rows = rows(&run(&["blocks", clean.to_str().unwrap(), "--json"]));
    let (mut dump, _) = (f.build)();
    let heap = &facts.heaps[heap_index];
    let want = damage::apply(&mut dump, heap, d);
    let path = write_temp(&format!("damaged-{name}"), &dump.to_bytes());
    let p = path.to_str().unwrap();
    let got_rows = rows(&run(&["blocks", p, "--json"]));
    let heaps = run(&["heaps", p, "--json"]);
    let h = heaps
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["address"] == hex(heap.address))
        .ok_or("heap not listed")?;
    let reported: Vec<&str> = h["corruptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    if !reported.contains(&hex(want.reported_at).as_str()) {
        return Err(format!(
            "not reported at {:#x}; corruptions {}",
            want.reported_at, h["corruptions"]
        ));
    }
    let invented: Vec<&Row> = got_rows.difference(&clean_rows).collect();
    if !invented.is_empty() {
        return Err(format!(
            "blocks the undamaged dump does not have: {invented:?}"
        ));
    }
    let lost: Vec<&Row> = clean_rows
        .difference(&got_rows)
        .filter(|r| !want.may_lose.iter().any(|e| hex(*e) == r.1))
        .collect();
    if !lost.is_empty() {
        return Err(format!(
            "lost blocks beyond the damaged ones {:x?}: {lost:?}",
            want.may_lose
        ));
    }
    Ok((reported.len(), clean_rows.len() - got_rows.len()))
}

#[test]
fn seeded_damage_is_reported_at_its_address_and_costs_only_the_damaged_blocks() {
    let mut rng = Rng(0x5eed_da3a_9e00_0001);
    let mut failures = Vec::new();
    let (mut cases, mut lost_total, mut max_lost) = (0usize, 0usize, 0usize);
    for name in FIXTURES {
        let facts = facts(name);
        for kind in KINDS {
            for (i, heap) in facts.heaps.iter().enumerate() {
                let targets = damage::targets(heap, kind);
                if targets.is_empty() {
                    continue;
                }
                for _ in 0..5 {
                    let t = targets[rng.below(targets.len())];
                    let bit = rng.below(64) as u32;
                    let d = match *kind {
                        "header" if heap.segment_heap => Damage::VsSize { entry: t, bit },
                        "header" => Damage::NtSize { entry: t, bit },
                        "prev" if heap.segment_heap => Damage::VsPrevSize { entry: t, bit },
                        "prev" => Damage::NtPrevSize { entry: t, bit },
                        "large" => Damage::NtLargeHeader { entry: t },
                        "junk" => Damage::VsJunk {
                            entry: t,
                            seed: rng.next(),
                        },
                        "lfh" => Damage::LfhOffsets { subsegment: t, bit },
                        "descriptor" => Damage::RangeUnits { descriptor: t, bit },
                        _ if rng.below(2) == 0 => Damage::FreeListLoop { head: t },
                        _ => Damage::FreeListUnmapped { head: t },
                    };
                    cases += 1;
                    match case(name, i, d) {
                        Ok((_, lost)) => {
                            lost_total += lost;
                            max_lost = max_lost.max(lost);
                        }
                        Err(why) => failures.push(format!("{name} heap {i} {d:?}: {why}")),
                    }
                }
            }
        }
    }
    eprintln!(
        "{cases} damage cases, {} failed; {lost_total} blocks lost in all, at most {max_lost} in one case",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One fixed case per finding of the damage campaign, with its exact expectation.
#[test]
fn each_kind_of_damage_is_found_where_it_is() {
    let vs_chunks = |name: &str| -> Vec<u64> {
        facts(name).heaps[1]
            .blocks
            .iter()
            .filter(|b| b.front_end == "vs")
            .map(|b| b.entry)
            .collect()
    };
    let mut failures = Vec::new();
    for name in ["segheap-mixed-win10-x64.dmp", "segheap-win10-x86.dmp"] {
        let chunks = vs_chunks(name);
        let second = chunks[1];
        for d in [
            // A flipped size bit (x64 byte 2, x86 byte 0): only that chunk is lost.
            Damage::VsSize {
                entry: second,
                bit: 0,
            },
            Damage::VsSize {
                entry: second,
                bit: 9,
            },
            // A flipped UnsafePrevSize: reported, nothing lost.
            Damage::VsPrevSize {
                entry: second,
                bit: 1,
            },
            // A junk header in the middle: only that chunk is lost.
            Damage::VsJunk {
                entry: second,
                seed: 7,
            },
        ] {
            if let Err(why) = case(name, 1, d) {
                failures.push(format!("{name} {d:?}: {why}"));
            }
        }
    }
    for name in ["heap-win10-x64.dmp", "heap-win7-x86.dmp"] {
        let head = damage::targets(&facts(name).heaps[0], "free-list")[0];
        for d in [
            Damage::FreeListLoop { head },
            Damage::FreeListUnmapped { head },
        ] {
            if let Err(why) = case(name, 0, d) {
                failures.push(format!("{name} {d:?}: {why}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The stream directory entry of `kind` in a minidump's bytes: (rva, size).
fn stream(bytes: &[u8], kind: u32) -> (usize, usize) {
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) as usize;
    let (count, dir) = (u32_at(8), u32_at(12));
    (0..count)
        .map(|i| dir + 12 * i)
        .find(|&e| u32_at(e) == kind as usize)
        .map(|e| (u32_at(e + 8), u32_at(e + 4)))
        .expect("stream present")
}

#[test]
fn a_region_count_is_read_to_its_full_width() {
    let f = fixtures::by_name("heap-win10-x64.dmp").unwrap();
    let mut bytes = (f.build)().0.to_bytes();
    let (rva, _) = stream(&bytes, 16);
    let count = u64::from_le_bytes(bytes[rva + 8..rva + 16].try_into().unwrap());
    for claim in [(1u64 << 32) + 5, 1 << 40] {
        bytes[rva + 8..rva + 16].copy_from_slice(&claim.to_le_bytes());
        let path = write_temp("region-count.dmp", &bytes);
        let a = run(&["address", path.to_str().unwrap(), "--json"]);
        let regions: u64 = a["usage"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["regions"].as_u64().unwrap())
            .sum();
        assert_eq!(regions, count, "{claim:#x}: every entry present is read");
        let want = format!("MemoryInfoListStream claims {claim} entries but holds {count}");
        assert!(
            a["problems"].to_string().contains(&want),
            "{}",
            a["problems"]
        );
    }
}

#[test]
fn absurd_heap_counts_list_only_the_heaps() {
    let f = fixtures::by_name("heap-win10-x64.dmp").unwrap();
    let (mut dump, facts) = (f.build)();
    let peb = facts.pebs[0].1;
    // NumberOfHeaps and MaximumNumberOfHeaps (x64 PEB +0xE8, +0xEC), both absurd: the array's
    // other slots are zeros and whatever follows it in ntdll's data.
    dump.memory.write_u32(peb + 0xe8, u32::MAX);
    dump.memory.write_u32(peb + 0xec, u32::MAX);
    let path = write_temp("absurd-heaps.dmp", &dump.to_bytes());
    let info = run(&["info", path.to_str().unwrap(), "--json"]);
    let listed: Vec<&str> = info["heaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["address"].as_str().unwrap())
        .collect();
    let want: Vec<String> = facts.heaps.iter().map(|h| hex(h.address)).collect();
    assert_eq!(listed, want);
    let notes = info["pebs"][0]["notes"].to_string();
    assert!(notes.contains("claims 4294967295 heaps"), "{notes}");
    assert!(notes.contains("are not heaps"), "{notes}");
}

#[test]
fn a_truncated_dump_lists_the_heaps_it_still_holds() {
    let f = fixtures::by_name("sample-win10-x64.dmp").unwrap();
    let (dump, facts) = (f.build)();
    let bytes = dump.to_bytes();
    // Cut at four fifths: the PEB (highest address, last in the file) is lost.
    let path = write_temp("truncated.dmp", &bytes[..bytes.len() * 4 / 5]);
    let info = run(&["info", path.to_str().unwrap(), "--json"]);
    let listed: Vec<&str> = info["heaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["address"].as_str().unwrap())
        .collect();
    assert!(!listed.is_empty(), "{info}");
    for h in &listed {
        assert!(facts.heaps.iter().any(|f| hex(f.address) == *h), "{h}");
    }
    assert!(
        info["problems"].to_string().contains("truncated dump"),
        "{}",
        info["problems"]
    );
    let heaps = run(&["heaps", path.to_str().unwrap(), "--json"]);
    assert_eq!(heaps.as_array().unwrap().len(), listed.len());
    assert!(heaps[0]["busy_blocks"].as_u64().unwrap() > 0);
}

#[cfg(unix)]
#[test]
fn files_that_are_not_regular_are_refused_at_once() {
    let dir = write_temp("not-regular-probe", b"")
        .parent()
        .unwrap()
        .to_path_buf();
    let fifo = dir.join("pipe.dmp");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipping: mkfifo is not available");
        return;
    }
    let zero = dir.join("zero.dmp");
    let _ = std::fs::remove_file(&zero);
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    for p in [&fifo, &zero] {
        let out = heapdiag()
            .args(["info", p.to_str().unwrap()])
            .timeout(Duration::from_secs(10))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{}", p.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is not a regular file"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[cfg(unix)]
#[test]
fn pdb_candidates_that_are_not_regular_files_are_refused_at_once() {
    // heap-future-x64.dmp's ntdll names testdata/pdb/ntdll.pdb (GUID 4122395C-…, age 1).
    let dump = write_temp(
        "future.dmp",
        &(fixtures::by_name("heap-future-x64.dmp").unwrap().build)()
            .0
            .to_bytes(),
    );
    let base = dump.parent().unwrap().join("pdb-candidates");
    let _ = std::fs::remove_dir_all(&base);
    // A flat folder whose ntdll.pdb is a FIFO; a store whose ntdll.pdb is /dev/zero.
    let flat = base.join("flat");
    std::fs::create_dir_all(&flat).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(flat.join("ntdll.pdb"))
        .status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipping: mkfifo is not available");
        return;
    }
    let store = base.join("store/ntdll.pdb/4122395C6AF17BC14C4C44205044422E1");
    std::fs::create_dir_all(&store).unwrap();
    std::os::unix::fs::symlink("/dev/zero", store.join("ntdll.pdb")).unwrap();
    for dir in [flat, base.join("store")] {
        let out = heapdiag()
            .args(["heaps", dump.to_str().unwrap(), "--json", "--offline"])
            .args(["--symbols", dir.to_str().unwrap()])
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            v[0]["notes"].to_string().contains("not a regular file"),
            "{}: {}",
            dir.display(),
            v[0]["notes"]
        );
    }
}
