//! `heapdiag info` on synthetic fixtures: process facts, PEBs and heaps exactly as constructed,
//! and the verdict of what each dump can answer.

mod common;

use common::*;
use dumpwriter::fixtures;
use serde_json::Value;

/// (address, type, bits, segments, large blocks), ranges as (base, size).
type HeapRow = (String, String, u64, Vec<(String, u64)>, Vec<(String, u64)>);

fn heaps_of(v: &Value) -> Vec<HeapRow> {
    let ranges = |r: &Value| -> Vec<(String, u64)> {
        r.as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["base"].as_str().unwrap().to_string(),
                    x["size"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    v["heaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["address"].as_str().unwrap().to_string(),
                h["type"].as_str().unwrap().to_string(),
                h["bits"].as_u64().unwrap(),
                ranges(&h["segments"]),
                ranges(&h["large_blocks"]),
            )
        })
        .collect()
}

#[test]
fn heaps_and_pebs_are_exactly_the_constructed_ones() {
    for name in [
        "sample-win10-x64.dmp",
        "win7-x86.dmp",
        "wow64-win7.dmp",
        "wow64-win10.dmp",
    ] {
        let path = fixture(name);
        let facts = facts(name);
        let got = json(&["info", path.to_str().unwrap(), "--json"]);
        let want: Vec<_> = facts
            .heaps
            .iter()
            .map(|h| {
                (
                    hex(h.address),
                    if h.segment_heap { "segment" } else { "nt" }.to_string(),
                    u64::from(h.bits),
                    h.segments
                        .iter()
                        .map(|(s, e)| (hex(*s), e - s))
                        .collect::<Vec<_>>(),
                    h.large_blocks
                        .iter()
                        .map(|(s, n)| (hex(*s), *n))
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        assert_eq!(heaps_of(&got), want, "{name}");
        let pebs: Vec<(u64, String)> = got["pebs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["bits"].as_u64().unwrap(),
                    p["address"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let want: Vec<(u64, String)> = facts
            .pebs
            .iter()
            .map(|(b, a)| (u64::from(*b), hex(*a)))
            .collect();
        assert_eq!(pebs, want, "{name}");
        assert_eq!(got["wow64"], name.starts_with("wow64"), "{name}");
        assert_eq!(answer(&got, "heap_list"), "yes", "{name}");
        assert_eq!(answer(&got, "heap_contents"), "yes", "{name}");
        assert_eq!(answer(&got, "address_usage"), "yes", "{name}");
    }
}

#[test]
fn process_facts_and_flags() {
    let path = fixture("win7-x86.dmp");
    let got = json(&["info", path.to_str().unwrap(), "--json"]);
    assert_eq!(got["arch"], "x86");
    assert_eq!(got["os_version"], "6.1.7601");
    assert_eq!(got["os_build"], 7601);
    assert_eq!(got["csd_version"], "Service Pack 1");
    assert_eq!(got["process_id"], 0x1234);
    assert_eq!(got["nt_global_flag"], 0x1000);
    assert_eq!(got["nt_global_flag_names"], serde_json::json!(["+ust"]));
    // +ust is set, but this fixture's heaps record no stacks (as heaps made before the database).
    assert_eq!(answer(&got, "allocation_stacks"), "no");
    let reason = got["capabilities"][3]["reason"].as_str().unwrap();
    assert!(reason.contains("0 of 2 busy blocks"), "{reason}");
    assert_eq!(got["threads"].as_array().unwrap().len(), 2);
    assert_eq!(got["modules"].as_array().unwrap().len(), 3);
    assert_eq!(got["modules"][0]["name"], "service.exe");
    assert_eq!(got["modules"][0]["version"], "6.1.7601.1");
    assert_eq!(got["modules"][0]["pdb"], "service.pdb");
    assert_eq!(got["modules"][0]["pdb_age"], 1);
    assert_eq!(got["handles"], 2);
    assert_eq!(got["memory"]["source"], "memory64_list");
    let streams: Vec<&str> = got["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(streams.contains(&"MemoryInfoListStream") && streams.contains(&"Memory64ListStream"));
    assert_eq!(got["dump_flag_names"][0], "MiniDumpWithFullMemory");
}

#[test]
fn verdicts_say_what_is_missing_and_how_to_get_it() {
    let sample = json(&[
        "info",
        fixture("sample-win10-x64.dmp").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(answer(&sample, "allocation_stacks"), "yes");
    let plain = json(&[
        "info",
        fixture("wow64-win7.dmp").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(answer(&plain, "allocation_stacks"), "no");
    let reason = plain["capabilities"][3]["reason"].as_str().unwrap();
    assert!(reason.contains("gflags -i fizz32.exe +ust"), "{reason}");

    let mini = json(&[
        "info",
        fixture("win11-x64-minidump.dmp").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(answer(&mini, "address_usage"), "partly");
    assert_eq!(answer(&mini, "heap_list"), "yes");
    assert_eq!(answer(&mini, "heap_contents"), "no");
    assert_eq!(mini["heaps"][0]["type"], "not captured");
    let txt = text(&["info", fixture("win11-x64-minidump.dmp").to_str().unwrap()]);
    // Long verdicts are wrapped: compare the words.
    let words = txt.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("heap memory not captured: this is a minidump without full memory; take one with `procdump -ma`"), "{txt}");

    let hpa = json(&[
        "info",
        fixture("wow64-win10.dmp").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(answer(&hpa, "page_heap"), "yes");
}

#[test]
fn trace_health_is_part_of_the_verdict() {
    let got = json(&[
        "info",
        fixture("ust-win10-x64.dmp").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(answer(&got, "allocation_stacks"), "yes");
    let reason = got["capabilities"][3]["reason"].as_str().unwrap();
    assert!(
        reason.contains(
            "26 of 26 busy blocks (100.0%, 100.0% of busy bytes) carry one, 4 distinct stacks"
        ),
        "{reason}"
    );
}

#[test]
fn a_looping_segment_list_is_reported_and_the_walk_ends() {
    // The second heap of the Win7 x86 fixture has three segments; make the last one's Flink
    // point back at the second, a loop the walker must notice.
    let (mut dump, facts) = (fixtures::by_name("win7-x86.dmp").unwrap().build)();
    let heap = &facts.heaps[0];
    let seg2 = heap.segments[1].0;
    let seg3 = heap.segments[2].0;
    // _HEAP_SEGMENT.SegmentListEntry is at +0x10 on x86.
    dump.memory.write_u32(seg3 + 0x10, (seg2 + 0x10) as u32);
    let path = write_temp("loop.dmp", &dump.to_bytes());
    let got = json(&["info", path.to_str().unwrap(), "--json"]);
    let h = &got["heaps"][0];
    assert_eq!(h["segments"].as_array().unwrap().len(), 3);
    let problems = h["problems"].to_string();
    assert!(problems.contains("a loop"), "{problems}");
    // address still classifies everything.
    json(&["address", path.to_str().unwrap(), "--json"]);
}

#[test]
fn a_heap_with_a_foreign_signature_is_reported() {
    let (mut dump, facts) = (fixtures::by_name("sample-win10-x64.dmp").unwrap().build)();
    dump.memory
        .write_u32(facts.heaps[1].address + 0x10, 0x1234_5678);
    let path = write_temp("badsig.dmp", &dump.to_bytes());
    let got = json(&["info", path.to_str().unwrap(), "--json"]);
    assert_eq!(got["heaps"][1]["type"], "unknown");
    assert!(got["heaps"][1]["problems"][0]
        .as_str()
        .unwrap()
        .contains("0x12345678"));
}

#[test]
fn module_listing() {
    let txt = text(&[
        "info",
        fixture("sample-win10-x64.dmp").to_str().unwrap(),
        "--modules",
    ]);
    assert!(txt.contains("KERNELBASE.dll"));
    assert!(txt.contains("ntdll.pdb"));
}
