//! The NT heap walker on synthetic fixtures of every layout family (the answer is known by
//! construction: every block the writer laid out) and on the real Windows 7 WoW64 dump.

mod common;

use common::*;
use dumpwriter::fixtures::HEAPS;
use dumpwriter::nt_heap::ExpectedBlock;
use serde_json::Value;
use std::collections::BTreeSet;

/// (heap, entry, address, size, block_size, state, front_end, internal, trace)
type Row = (
    String,
    String,
    String,
    u64,
    u64,
    String,
    String,
    bool,
    String,
);

fn expected_rows(name: &str, keep: impl Fn(&ExpectedBlock) -> bool) -> BTreeSet<Row> {
    facts(name)
        .heaps
        .iter()
        .flat_map(|h| h.blocks.iter().map(move |b| (h.address, *b)))
        .filter(|(_, b)| keep(b))
        .map(|(h, b)| {
            (
                hex(h),
                hex(b.entry),
                hex(b.address),
                b.size,
                b.block_size,
                if b.busy { "busy" } else { "free" }.to_string(),
                b.front_end.to_string(),
                b.internal,
                if b.trace != 0 {
                    hex(b.trace)
                } else {
                    String::new()
                },
            )
        })
        .collect()
}

fn walked_rows(v: &Value) -> BTreeSet<Row> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["heap"].as_str().unwrap().to_string(),
                b["entry"].as_str().unwrap().to_string(),
                b["address"].as_str().unwrap().to_string(),
                b["size"].as_u64().unwrap(),
                b["block_size"].as_u64().unwrap(),
                b["state"].as_str().unwrap().to_string(),
                b["front_end"].as_str().unwrap().to_string(),
                b["internal"].as_bool().unwrap(),
                b["trace"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn every_family_walks_to_exactly_the_constructed_blocks() {
    // (heap-future-x64.dmp needs its PDB: see the test below.)
    for f in HEAPS
        .iter()
        .filter(|f| !f.name.contains("corrupt") && !f.name.contains("future"))
    {
        let path = fixture(f.name);
        let got = json(&["blocks", path.to_str().unwrap(), "--internal", "--json"]);
        let want = expected_rows(f.name, |_| true);
        let got = walked_rows(&got);
        assert_eq!(
            got.difference(&want).collect::<Vec<_>>(),
            Vec::<&Row>::new(),
            "{}: walked but not constructed",
            f.name
        );
        assert_eq!(
            want.difference(&got).collect::<Vec<_>>(),
            Vec::<&Row>::new(),
            "{}: constructed but not walked",
            f.name
        );
    }
}

#[test]
fn heap_totals_and_coverage_match_construction() {
    // The fixtures built on `rich_heap` (two large blocks, the LFH, three uncommitted ranges).
    let rich = |n: &str| {
        (n.starts_with("heap-") || n.starts_with("ust-"))
            && !n.contains("corrupt")
            && !n.contains("future")
    };
    for f in HEAPS.iter().filter(|f| rich(f.name)) {
        let path = fixture(f.name);
        let facts = facts(f.name);
        let got = json(&["heaps", path.to_str().unwrap(), "--json"]);
        for (h, want) in got.as_array().unwrap().iter().zip(&facts.heaps) {
            let user = |busy: bool, fe: Option<&'static str>| {
                want.blocks.iter().filter(move |b| {
                    b.busy == busy && !b.internal && fe.is_none_or(|x| x == b.front_end)
                })
            };
            assert_eq!(h["address"], hex(want.address), "{}", f.name);
            assert_eq!(
                h["busy_blocks"].as_u64().unwrap(),
                user(true, None).count() as u64,
                "{}",
                f.name
            );
            assert_eq!(
                h["busy_bytes"].as_u64().unwrap(),
                user(true, None).map(|b| b.size).sum::<u64>(),
                "{}",
                f.name
            );
            assert_eq!(
                h["lfh_busy_blocks"].as_u64().unwrap(),
                user(true, Some("lfh")).count() as u64
            );
            assert_eq!(
                h["free_blocks"].as_u64().unwrap(),
                user(false, Some("backend")).count() as u64
            );
            assert_eq!(
                h["free_bytes"].as_u64().unwrap(),
                user(false, Some("backend"))
                    .map(|b| b.block_size)
                    .sum::<u64>()
            );
            assert_eq!(
                h["large_blocks"], 3,
                "{}: two user large blocks and the LFH front end",
                f.name
            );
            assert_eq!(h["lfh"], true);
            assert_eq!(h["ucr"], 3, "{}", f.name);
            assert_eq!(
                h["lfh_key"].as_str().map(String::from),
                want.lfh_key.map(|k| format!("{k:#x}")),
                "{}: the LFH key recovered without symbols",
                f.name
            );
            assert_eq!(h["coverage"]["unexplained"], 0, "{}", f.name);
            assert_eq!(h["coverage"]["corrupt"], 0, "{}", f.name);
            assert_eq!(
                h["corruptions"].as_array().unwrap().len(),
                0,
                "{}: {}",
                f.name,
                h["corruptions"]
            );
            let walked = h["coverage"]["header"].as_u64().unwrap()
                + h["coverage"]["walked"].as_u64().unwrap();
            assert_eq!(
                walked,
                h["coverage"]["committed"].as_u64().unwrap(),
                "{}",
                f.name
            );
        }
    }
}

#[test]
fn corrupted_headers_are_reported_and_the_walk_goes_on() {
    let name = "heap-corrupt-win10-x64.dmp";
    let path = fixture(name);
    let facts = facts(name);
    let heap = &facts.heaps[0];
    let damaged = heap
        .blocks
        .iter()
        .filter(|e| e.busy && e.front_end == "backend" && !e.internal)
        .nth(2)
        .unwrap();
    let chunk1 = heap
        .blocks
        .iter()
        .filter(|e| e.front_end == "lfh")
        .nth(1)
        .unwrap();
    let h = &json(&["heaps", path.to_str().unwrap(), "--json"])[0];
    let corruptions = h["corruptions"].as_array().unwrap();
    assert_eq!(corruptions.len(), 2, "{corruptions:?}");
    assert_eq!(corruptions[0]["address"], hex(damaged.entry));
    assert!(corruptions[0]["what"]
        .as_str()
        .unwrap()
        .contains("checksum"));
    assert_eq!(corruptions[1]["address"], hex(chunk1.entry));
    assert_eq!(h["coverage"]["corrupt"].as_u64(), Some(damaged.block_size));
    assert_eq!(h["coverage"]["unexplained"], 0);
    // Every other block is still found, exactly.
    let got = walked_rows(&json(&[
        "blocks",
        path.to_str().unwrap(),
        "--internal",
        "--json",
    ]));
    let want = expected_rows(name, |b| {
        b.entry != damaged.entry && b.entry != chunk1.entry
    });
    let got: BTreeSet<Row> = got
        .into_iter()
        .filter(|r| r.1 != hex(chunk1.entry))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn stat_histogram_matches_construction() {
    let name = "heap-win10-x64.dmp";
    let path = fixture(name);
    let facts = facts(name);
    let heap = &facts.heaps[0];
    let got = json(&[
        "heaps",
        path.to_str().unwrap(),
        "--stat",
        "--heap",
        &hex(heap.address),
        "--limit",
        "100",
        "--json",
    ]);
    let mut want: std::collections::BTreeMap<u64, u64> = Default::default();
    for b in heap.blocks.iter().filter(|b| b.busy && !b.internal) {
        *want.entry(b.size).or_default() += 1;
    }
    let sizes = got[0]["sizes"].as_array().unwrap();
    let got_map: std::collections::BTreeMap<u64, u64> = sizes
        .iter()
        .map(|s| (s["size"].as_u64().unwrap(), s["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(got_map, want);
    let totals: Vec<u64> = sizes.iter().map(|s| s["total"].as_u64().unwrap()).collect();
    assert!(totals.windows(2).all(|w| w[0] >= w[1]), "sorted by total");
    let pct: f64 = sizes.iter().map(|s| s["percent"].as_f64().unwrap()).sum();
    assert!((pct - 100.0).abs() < 0.01);
    let stat = |more: &[&str]| {
        let mut args = vec!["heaps", path.to_str().unwrap(), "--stat", "--heap"];
        let h = hex(heap.address);
        args.push(&h);
        args.extend(more);
        text(&args)
    };
    let windbg = stat(&["--windbg"]);
    assert!(windbg.starts_with(&format!(
        " heap @ {}\ngroup-by: TOTSIZE max-display: 20\n",
        hex(heap.address)
    )));
    assert!(stat(&["--windbg", "--sort", "count"]).contains("group-by: BLOCKCOUNT"));
    // heapdiag's own style: sizes exact in bytes, totals in human units, decimal counts.
    let top = &sizes[0];
    let row = format!(
        "{:>12} {:>9}",
        format!("{} B", top["size"]),
        top["count"].as_u64().unwrap()
    );
    assert!(stat(&[]).contains(&row), "{row}");
    // Most blocks first.
    let by_count = json(&[
        "heaps",
        path.to_str().unwrap(),
        "--stat",
        "--sort",
        "count",
        "--json",
    ]);
    let counts: Vec<u64> = by_count[0]["sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["count"].as_u64().unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
}

#[test]
fn block_filters_select_like_heap_flt() {
    let name = "heap-win7-x86.dmp";
    let path = fixture(name);
    let p = path.to_str().unwrap();
    let facts = facts(name);
    let user: Vec<&ExpectedBlock> = facts.heaps[0]
        .blocks
        .iter()
        .filter(|b| !b.internal)
        .collect();
    let count = |v: Value| v.as_array().unwrap().len();
    assert_eq!(count(json(&["blocks", p, "--json"])), user.len());
    assert_eq!(
        count(json(&["blocks", p, "--busy", "--json"])),
        user.iter().filter(|b| b.busy).count()
    );
    assert_eq!(
        count(json(&["blocks", p, "--free", "--json"])),
        user.iter().filter(|b| !b.busy).count()
    );
    assert_eq!(
        count(json(&["blocks", p, "--front-end", "lfh", "--json"])),
        user.iter().filter(|b| b.front_end == "lfh").count()
    );
    assert_eq!(
        count(json(&["blocks", p, "--size", "0x3e8", "--json"])),
        user.iter().filter(|b| b.size == 0x3e8).count()
    );
    assert_eq!(
        count(json(&[
            "blocks",
            p,
            "--size-range",
            "16",
            "0x28",
            "--busy",
            "--json"
        ])),
        user.iter()
            .filter(|b| b.busy && (0x10..=0x28).contains(&b.size))
            .count()
    );
    let csv = text(&["blocks", p, "--csv"]);
    assert_eq!(csv.lines().count(), user.len() + 1);
    heapdiag()
        .args(["blocks", p, "--heap", "0x1234"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no heap at 0x1234"));
}

#[test]
fn block_finds_the_chunk_holding_an_address() {
    let name = "heap-win10-x64.dmp";
    let path = fixture(name);
    let p = path.to_str().unwrap();
    let facts = facts(name);
    let chunk = facts.heaps[0]
        .blocks
        .iter()
        .find(|b| b.front_end == "lfh" && b.busy)
        .unwrap();
    let inside = chunk.address + 3;
    let got = json(&["block", p, &format!("{inside:x}"), "--json"]);
    assert_eq!(got["entry"], hex(chunk.entry));
    assert_eq!(got["front_end"], "lfh");
    assert_eq!(got["size"], chunk.size);
    let txt = text(&["block", p, &hex(inside)]);
    assert!(
        txt.contains("Offset      3 bytes into the user data"),
        "{txt}"
    );
    let txt = text(&["block", p, &hex(inside), "--windbg"]);
    assert!(txt.contains("Offset      +0x3 into the user data"), "{txt}");
}

#[test]
fn fizzbuzz_wow64_heaps_are_fully_walked() {
    let Some(d) = real("fizzbuzz_wow64.dmp") else {
        return;
    };
    let got = json(&["heaps", d.to_str().unwrap(), "--json"]);
    let heaps = got.as_array().unwrap();
    assert_eq!(heaps.len(), 5);
    // (address, busy blocks, LFH busy chunks, free blocks, internal blocks)
    let want = [
        ("0x500000", 24, 0, 3, 1),
        ("0x10000", 0, 0, 1, 1),
        ("0x20000", 0, 0, 1, 1),
        ("0x700000", 306, 152, 4, 8),
        ("0x460000", 8, 0, 2, 1),
    ];
    for (h, (addr, busy, lfh, free, internal)) in heaps.iter().zip(want) {
        assert_eq!(h["address"], addr);
        assert_eq!(h["busy_blocks"], busy, "{addr}");
        assert_eq!(h["lfh_busy_blocks"], lfh, "{addr}");
        assert_eq!(h["free_blocks"], free, "{addr}");
        assert_eq!(h["internal_blocks"], internal, "{addr}");
        assert_eq!(h["corruptions"].as_array().unwrap().len(), 0, "{addr}");
        // Every committed byte of every segment is covered by decoded blocks.
        assert_eq!(h["coverage"]["unexplained"], 0, "{addr}");
        assert_eq!(h["coverage"]["not_captured"], 0, "{addr}");
        let explained =
            h["coverage"]["header"].as_u64().unwrap() + h["coverage"]["walked"].as_u64().unwrap();
        assert_eq!(
            explained,
            h["coverage"]["committed"].as_u64().unwrap(),
            "{addr}"
        );
    }
    assert_eq!(heaps[3]["lfh"], true);
    assert_eq!(heaps[3]["lfh_free_blocks"], 102);
}

#[test]
fn an_absurd_segment_size_does_not_stall_the_walk() {
    // Claim that the first segment spans a terabyte: the walk must skip the missing memory in
    // jumps, not in heap units.
    let (mut dump, facts) = (dumpwriter::fixtures::by_name("heap-win10-x64.dmp")
        .unwrap()
        .build)();
    let seg = facts.heaps[0].address;
    dump.memory.write_u32(seg + 0x38, 0x0fff_ffff); // NumberOfPages
    dump.memory.write_u64(seg + 0x48, seg + 0xff_ffff_f000); // LastValidEntry
    let path = write_temp("huge-segment.dmp", &dump.to_bytes());
    let out = heapdiag()
        .args(["heaps", path.to_str().unwrap(), "--json"])
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v[0]["coverage"]["not_captured"].as_u64().unwrap() > 0xff_0000_0000);
}

#[test]
fn heaps_text_is_golden() {
    let path = fixture("heap-win10-x64.dmp");
    let got = text(&["heaps", path.to_str().unwrap()]);
    assert_eq!(
        got,
        include_str!("golden/heap-win10-x64-heaps.txt"),
        "re-check the rendering, then update tests/golden/heap-win10-x64-heaps.txt"
    );
}

#[test]
fn an_unknown_build_says_so_and_its_pdb_gives_the_layout_and_the_key() {
    let name = "heap-future-x64.dmp";
    let path = fixture(name);
    let p = path.to_str().unwrap();
    let facts = facts(name);
    let pdb_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/pdb");
    // Without symbols: the nearest known layout misses the LFH, and the output says why.
    let h = &json(&["heaps", p, "--json"])[0];
    assert_eq!(h["lfh"], false);
    assert!(
        h["notes"]
            .to_string()
            .contains("ntdll 10.0.29000 is newer than"),
        "{}",
        h["notes"]
    );
    // With ntdll.pdb: every block exactly, and the key from ntdll's data.
    let got = walked_rows(&json(&[
        "blocks",
        p,
        "--internal",
        "--json",
        "--symbols",
        pdb_dir,
    ]));
    assert_eq!(got, expected_rows(name, |_| true));
    let h = &json(&["heaps", p, "--json", "--symbols", pdb_dir])[0];
    assert_eq!(h["lfh"], true);
    assert_eq!(
        h["lfh_key"],
        format!("{:#x}", facts.heaps[0].lfh_key.unwrap())
    );
    assert!(
        h["notes"].to_string().contains("structure offsets from"),
        "{}",
        h["notes"]
    );
    assert_eq!(h["corruptions"].as_array().unwrap().len(), 0);
}

#[test]
fn segment_heap_components_and_a_corrupted_vs_header() {
    for name in ["segheap-mixed-win10-x64.dmp", "segheap-win10-x86.dmp"] {
        segment_heap_case(name);
    }
}

fn segment_heap_case(name: &str) {
    let facts = facts(name);
    let seg = &facts.heaps[1];
    assert!(seg.segment_heap);
    let h = &json(&["heaps", fixture(name).to_str().unwrap(), "--json"])[1];
    assert_eq!(h["type"], "segment");
    assert_eq!(h["walked"], true);
    let busy = seg.blocks.iter().filter(|b| b.busy).count() as u64;
    assert_eq!(h["busy_blocks"].as_u64(), Some(busy));
    // The per-component breakdown, in heaps --json and heaps --stat --json.
    let stat = &json(&[
        "heaps",
        fixture(name).to_str().unwrap(),
        "--stat",
        "--heap",
        &hex(seg.address),
        "--json",
    ])[0];
    for (i, fe) in ["backend", "lfh", "vs", "large"].into_iter().enumerate() {
        let of = |busy: bool| {
            seg.blocks
                .iter()
                .filter(move |b| b.front_end == fe && b.busy == busy)
        };
        assert!(of(true).count() > 0, "{fe}");
        for c in [&h["components"][i], &stat["components"][i]] {
            assert_eq!(c["front_end"], fe);
            assert_eq!(
                c["busy_blocks"].as_u64(),
                Some(of(true).count() as u64),
                "{fe}"
            );
            assert_eq!(
                c["busy_bytes"].as_u64(),
                Some(of(true).map(|b| b.size).sum::<u64>()),
                "{fe}"
            );
            assert_eq!(
                c["busy_block_bytes"].as_u64(),
                Some(of(true).map(|b| b.block_size).sum::<u64>()),
                "{fe}"
            );
            assert_eq!(
                c["free_blocks"].as_u64(),
                Some(of(false).count() as u64),
                "{fe}"
            );
        }
    }
    // Damage the second VS chunk's encoded size: it is reported at its own header, and only that
    // chunk is lost: the walk resumes at the next chunk that chains to the subsegment's end.
    let (mut dump, _) = (dumpwriter::fixtures::by_name(name).unwrap().build)();
    let second = seg
        .blocks
        .iter()
        .filter(|b| b.front_end == "vs")
        .nth(1)
        .unwrap();
    let raw = dump.memory.read_u64(second.entry);
    // The encoded UnsafeSize: bits 16–31 of the x64 header, bits 1–15 of the x86 one.
    let size_bits = if seg.bits == 64 {
        0x0fff_0000
    } else {
        0x0000_7ffe
    };
    dump.memory.write_u64(second.entry, raw ^ size_bits);
    let path = write_temp(&format!("vs-corrupt-{name}"), &dump.to_bytes());
    let h = &json(&["heaps", path.to_str().unwrap(), "--json"])[1];
    let c = &h["corruptions"][0];
    assert_eq!(c["address"], hex(second.entry), "{}", h["corruptions"]);
    assert!(c["what"].as_str().unwrap().contains("VS chunk header"));
    let blocks = json(&[
        "blocks",
        path.to_str().unwrap(),
        "--heap",
        &hex(seg.address),
        "--front-end",
        "vs",
        "--json",
    ]);
    let got: Vec<&str> = blocks
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["entry"].as_str().unwrap())
        .collect();
    let want: Vec<String> = seg
        .blocks
        .iter()
        .filter(|b| b.front_end == "vs" && b.entry != second.entry)
        .map(|b| hex(b.entry))
        .collect();
    assert_eq!(got, want, "every VS chunk but the damaged one");
}

#[test]
fn page_heaps_are_walked_with_their_stacks_and_damage_is_reported() {
    for name in [
        "pageheap-win10-x64.dmp",
        "pageheap-win10-x86.dmp",
        "pageheap-win7-x86.dmp",
    ] {
        let path = fixture(name);
        let p = path.to_str().unwrap();
        let facts = facts(name);
        // Page heap A (full) and its normal heap, page heap B (light) and its normal heap.
        let page = &facts.heaps[0];
        let h = &json(&["heaps", p, "--json"])[0];
        assert_eq!(h["type"], "page heap", "{name}");
        assert_eq!(h["walked"], true, "{name}");
        assert_eq!(h["busy_blocks"].as_u64(), Some(5), "{name}");
        assert_eq!(
            h["busy_bytes"].as_u64(),
            Some(0x10 + 0x123 + 0x1000 + 0x2fc8 + 0x7),
            "{name}"
        );
        assert_eq!(h["corruptions"].as_array().unwrap().len(), 0, "{name}");
        // Every traced busy block's stack: the classic entries' frames, exactly.
        let got = json(&["top", p, "--by", "stack", "--limit", "100", "--json"]);
        let entries = got["entries"].as_array().unwrap();
        for (record, frames) in &page.stacks {
            let want: Vec<String> = frames.iter().map(|a| hex(*a)).collect();
            // Full page heap blocks and light ones in the normal heap share the records.
            let bytes: u64 = facts
                .heaps
                .iter()
                .flat_map(|h| h.blocks.iter())
                .filter(|b| b.busy && b.trace == *record)
                .map(|b| b.size)
                .sum();
            if bytes == 0 {
                continue;
            }
            let e = entries
                .iter()
                .find(|e| e["key"] == hex(*record))
                .unwrap_or_else(|| panic!("{name}: no stack {record:#x}"));
            let got_frames = frame_addresses(e);
            assert_eq!(got_frames, want, "{name}");
            assert_eq!(e["bytes"].as_u64(), Some(bytes), "{name}");
        }
        // !address labels the page heap's reservation PageHeap, whole.
        let a = json(&["address", p, "--json"]);
        let ph = a["usage"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == "PageHeap")
            .unwrap_or_else(|| panic!("{name}: no PageHeap usage"));
        assert_eq!(ph["regions"].as_u64(), Some(2), "{name}");
        assert_eq!(
            ph["bytes"].as_u64(),
            Some(
                [&facts.heaps[0], &facts.heaps[2]]
                    .iter()
                    .map(|h| h.segments[0].1 - h.segments[0].0)
                    .sum()
            )
        );
        let info = json(&["info", p, "--json"]);
        assert_eq!(answer(&info, "allocation_stacks"), "yes", "{name}");
        assert_eq!(answer(&info, "page_heap"), "yes", "{name}");

        // Damage: a busy block's start stamp, and a free list that loops back on itself.
        let (mut dump, _) = (dumpwriter::fixtures::by_name(name).unwrap().build)();
        let bits = page.bits;
        let info_size = if bits == 64 { 0x40 } else { 0x20 };
        let third = page.blocks.iter().filter(|b| b.busy).nth(2).unwrap();
        dump.memory
            .write_u32(third.address - info_size, 0x1234_5678);
        let root = page.address + 0x1000;
        let free_head = root + if bits == 64 { 0xb8 } else { 0x64 };
        let first_free = if bits == 64 {
            dump.memory.read_u64(free_head)
        } else {
            dump.memory.read_u64(free_head) & 0xffff_ffff
        };
        // The second free node's pNextAlloc points back to the first.
        let second_free = if bits == 64 {
            dump.memory.read_u64(first_free)
        } else {
            dump.memory.read_u64(first_free) & 0xffff_ffff
        };
        dump.memory.write_ptr(bits, second_free, first_free);
        let bad = write_temp(&format!("damaged-{name}"), &dump.to_bytes());
        let b = bad.to_str().unwrap();
        let h = &json(&["heaps", b, "--json"])[0];
        let whats: Vec<&str> = h["corruptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["what"].as_str().unwrap())
            .collect();
        assert_eq!(whats.len(), 2, "{name}: {whats:?}");
        assert!(whats.iter().any(|w| w.contains("start stamp 0x12345678")));
        assert!(whats
            .iter()
            .any(|w| w.contains("free-allocation list loops")));
        assert_eq!(
            h["busy_blocks"].as_u64(),
            Some(5),
            "{name}: the damaged block is kept"
        );
        assert_eq!(h["free_blocks"].as_u64(), Some(2), "{name}");

        // A light page-heap block whose information claims more than its block holds.
        let light = facts.heaps[3]
            .blocks
            .iter()
            .find(|b| b.front_end == "pageheap" && b.busy)
            .expect("a light page-heap block");
        let info_at = light.address - info_size;
        let (mut dump, _) = (dumpwriter::fixtures::by_name(name).unwrap().build)();
        dump.memory
            .write_ptr(bits, info_at + 2 * u64::from(bits / 8), 0x7fff_0000);
        let bad = write_temp(&format!("light-{name}"), &dump.to_bytes());
        let h = &json(&["heaps", bad.to_str().unwrap(), "--json"])[3];
        let c = &h["corruptions"][0];
        assert_eq!(c["address"], hex(info_at), "{name}: {}", h["corruptions"]);
        assert!(c["what"].as_str().unwrap().contains("light page heap"));

        // A busy tree whose root points at the top of the address space: no blocks, a note.
        let (mut dump, _) = (dumpwriter::fixtures::by_name(name).unwrap().build)();
        let table_root = root + if bits == 64 { 0x38 + 0x10 } else { 0x20 + 0x8 };
        let top = if bits == 64 {
            u64::MAX - 7
        } else {
            0xffff_fffc
        };
        dump.memory.write_ptr(bits, table_root, top);
        let bad = write_temp(&format!("wild-root-{name}"), &dump.to_bytes());
        let h = &json(&["heaps", bad.to_str().unwrap(), "--json"])[0];
        assert_eq!(h["busy_blocks"].as_u64(), Some(0), "{name}");
        assert!(
            h["notes"].to_string().contains("is not in the dump"),
            "{name}: {}",
            h["notes"]
        );
    }
}

#[test]
fn a_24h2_segment_heap_above_4gb_is_decoded_with_the_24h2_schemes() {
    // Exact blocks are checked by every_family_walks_to_exactly_the_constructed_blocks; this
    // checks that the walk says which signature scheme it used and decoded the LFH subsegment.
    let name = "segheap-win11-24h2-x64.dmp";
    let facts = facts(name);
    let seg = &facts.heaps[1];
    assert!(seg.segment_heap && seg.address > u64::from(u32::MAX));
    let h = &json(&["heaps", fixture(name).to_str().unwrap(), "--json"])[1];
    assert!(
        h["notes"].to_string().contains("24H2 (no constant)"),
        "{}",
        h["notes"]
    );
    assert_eq!(h["corruptions"].as_array().unwrap().len(), 0);
    let lfh = h["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["front_end"] == "lfh")
        .expect("LFH decoded");
    assert_eq!(
        lfh["busy_blocks"].as_u64(),
        Some(
            seg.blocks
                .iter()
                .filter(|b| b.front_end == "lfh" && b.busy)
                .count() as u64
        )
    );
}

#[test]
fn segment_heap_keys_come_from_ntdll_pdb_when_given() {
    let name = "segheap-future-x64.dmp";
    let path = fixture(name);
    let p = path.to_str().unwrap();
    let facts = facts(name);
    let seg = &facts.heaps[1];
    let pdb_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/pdb");
    // Without symbols the keys are found by searching ntdll's data.
    let h = &json(&["heaps", p, "--json"])[1];
    assert!(
        !h["notes"].to_string().contains("RtlpHpHeapGlobals"),
        "{}",
        h["notes"]
    );
    assert_eq!(h["corruptions"].as_array().unwrap().len(), 0);
    // With ntdll.pdb: the keys from RtlpHpHeapGlobals, every block exactly.
    let h = &json(&["heaps", p, "--json", "--symbols", pdb_dir])[1];
    assert!(
        h["notes"]
            .to_string()
            .contains("heap keys read from RtlpHpHeapGlobals"),
        "{}",
        h["notes"]
    );
    let got = walked_rows(&json(&[
        "blocks",
        p,
        "--heap",
        &hex(seg.address),
        "--json",
        "--symbols",
        pdb_dir,
    ]));
    assert_eq!(
        got,
        expected_rows(name, |b| !b.internal && seg.blocks.contains(b))
    );
    // A PDB address whose HeapKey disagrees with the segments is not trusted.
    let (mut dump, _) = (dumpwriter::fixtures::by_name(name).unwrap().build)();
    let ntdll = dump.modules[1].base;
    dump.memory.write_u64(
        ntdll + dumpwriter::fixtures::FUTURE_HP_GLOBALS_RVA,
        0x1234_5678,
    );
    let bad = write_temp("segheap-future-bad-key.dmp", &dump.to_bytes());
    let h = &json(&[
        "heaps",
        bad.to_str().unwrap(),
        "--json",
        "--symbols",
        pdb_dir,
    ])[1];
    assert!(
        h["notes"]
            .to_string()
            .contains("does not match the page segments"),
        "{}",
        h["notes"]
    );
}

#[test]
fn segment_heap_allocations_carry_their_ust_stacks() {
    for name in ["segheap-ust-win10-x64.dmp", "segheap-ust-win10-x86.dmp"] {
        let path = fixture(name);
        let p = path.to_str().unwrap();
        let facts = facts(name);
        let seg = &facts.heaps[1];
        // The fixture traces every component (so the walk test above compares real stacks).
        for fe in ["vs", "lfh", "backend", "large"] {
            assert!(
                seg.blocks
                    .iter()
                    .any(|b| b.front_end == fe && b.busy && b.trace != 0),
                "{name}: no traced {fe} block"
            );
        }
        // Each stack's bytes across both heaps, and its frames exactly.
        let got = json(&["top", p, "--by", "stack", "--limit", "100", "--json"]);
        let entries = got["entries"].as_array().unwrap();
        for (record, frames) in &seg.stacks {
            let bytes: u64 = facts
                .heaps
                .iter()
                .flat_map(|h| h.blocks.iter())
                .filter(|b| b.busy && !b.internal && b.trace == *record)
                .map(|b| b.size)
                .sum();
            let e = entries
                .iter()
                .find(|e| e["key"] == hex(*record))
                .unwrap_or_else(|| panic!("{name}: no stack {record:#x}"));
            let want: Vec<String> = frames.iter().map(|a| hex(*a)).collect();
            assert_eq!(frame_addresses(e), want, "{name}");
            assert_eq!(e["bytes"].as_u64(), Some(bytes), "{name}");
        }

        // A VS block whose extra names another interceptor keeps its size and loses its stack;
        // nothing else changes.
        let bits = seg.bits;
        let ptr = u64::from(bits / 8);
        let vs = seg
            .blocks
            .iter()
            .find(|b| b.front_end == "vs" && b.trace != 0)
            .unwrap();
        let (mut dump, _) = (dumpwriter::fixtures::by_name(name).unwrap().build)();
        let extra = vs.address + vs.size.div_ceil(ptr) * ptr;
        dump.memory.write(extra + 2, &[2]);
        let bad = write_temp(&format!("extra-{name}"), &dump.to_bytes());
        let b = bad.to_str().unwrap();
        let rows = json(&["blocks", b, "--json"]);
        let row = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["address"] == hex(vs.address))
            .unwrap();
        assert_eq!(row["size"].as_u64(), Some(vs.size), "{name}");
        assert!(row["trace"].is_null(), "{name}: {row}");
        let traced = |v: &Value| {
            v.as_array()
                .unwrap()
                .iter()
                .filter(|r| !r["trace"].is_null())
                .count()
        };
        let whole = json(&["blocks", p, "--json"]);
        assert_eq!(traced(&rows) + 1, traced(&whole), "{name}");
    }
}

#[test]
fn the_segment_heap_layout_follows_ntdll_and_says_when_the_heap_disagrees() {
    for (name, bits) in [
        ("segheap-win10-1803-x64.dmp", 64u32),
        ("segheap-win10-1803-x86.dmp", 32),
    ] {
        let want = expected_rows(name, |_| true);
        // ntdll says 1709, the heap is in 1803's layout: it is still walked exactly, with a note.
        let (mut dump, _) = (dumpwriter::fixtures::by_name(name).unwrap().build)();
        let ntdll = dump
            .modules
            .iter_mut()
            .find(|m| m.name.ends_with("ntdll.dll"))
            .unwrap();
        ntdll.version = Some([10, 0, 16299, 1]);
        let path = write_temp(&format!("misdated-{name}"), &dump.to_bytes());
        let p = path.to_str().unwrap();
        let got = walked_rows(&json(&["blocks", p, "--internal", "--json"]));
        assert_eq!(got, want, "{name}");
        let h = &json(&["heaps", p, "--json"])[1];
        let notes: Vec<&str> = h["notes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert!(
            notes.contains(
                &"the Windows 10 1709 _SEGMENT_HEAP layout was expected from the ntdll version, but the Windows 10 1803 layout fits; using it"
            ),
            "{name} ({bits}-bit): {notes:?}"
        );
        // With the right version there is nothing to say.
        let h = &json(&["heaps", fixture(name).to_str().unwrap(), "--json"])[1];
        assert!(
            h["notes"].as_array().unwrap().iter().all(|n| !n
                .as_str()
                .unwrap()
                .contains("_SEGMENT_HEAP layout was expected")),
            "{name}"
        );
    }
}

#[test]
fn contexts_found_by_shape_say_so_and_an_implausible_assumed_tree_is_not_listed() {
    let name = "segheap-moved-wow64-win11.dmp";
    let facts = facts(name);
    let seg = facts.heaps.iter().find(|h| h.segment_heap).unwrap();
    assert_eq!(
        seg.blocks.iter().filter(|b| b.front_end == "large").count(),
        2
    );
    let path = fixture(name);
    let heaps = json(&["heaps", path.to_str().unwrap(), "--json"]);
    let h = heaps
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["address"] == hex(seg.address))
        .unwrap();
    assert_eq!(h["notes"][0], "no known _SEGMENT_HEAP layout fits: its segment contexts were found by their shape at _SEGMENT_HEAP+0x180, and large allocations are looked for at _SEGMENT_HEAP+0x44, where Windows 10 1809 – 22H2 keeps them");
    // The tree's root replaced by a pointer to the heap's first bytes: nodes that describe no
    // allocation. The large allocations are dropped with a note; everything else is walked.
    let (mut dump, _) = (dumpwriter::fixtures::by_name(name).unwrap().build)();
    dump.memory.write_ptr(32, seg.address + 0x44, seg.address);
    let bad = write_temp(&format!("tree-{name}"), &dump.to_bytes());
    let b = bad.to_str().unwrap();
    let dropped: Vec<u64> = seg
        .blocks
        .iter()
        .filter(|b| b.front_end == "large")
        .map(|b| b.address)
        .collect();
    let want = expected_rows(name, |b| !dropped.contains(&b.address));
    let got = walked_rows(&json(&["blocks", b, "--internal", "--json"]));
    assert_eq!(got, want);
    let heaps = json(&["heaps", b, "--json"]);
    let h = heaps
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["address"] == hex(seg.address))
        .unwrap();
    let notes: Vec<&str> = h["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes.contains(&format!(
            "no plausible large-allocation tree at {:#x} (its place was assumed): large allocations are not listed",
            seg.address + 0x44
        ).as_str()),
        "{notes:?}"
    );
}

#[test]
fn healthy_fixture_heaps_walk_clean_and_segment_heaps_commit_what_the_region_table_says() {
    for f in HEAPS
        .iter()
        .filter(|f| !f.name.contains("corrupt") && !f.name.contains("future"))
    {
        let path = fixture(f.name);
        let facts = facts(f.name);
        let got = json(&["heaps", path.to_str().unwrap(), "--json"]);
        for (h, want) in got.as_array().unwrap().iter().zip(&facts.heaps) {
            let at = format!("{} heap {}", f.name, h["address"]);
            assert_eq!(h["corruptions"], serde_json::json!([]), "{at}");
            assert_eq!(h["coverage"]["unexplained"], 0, "{at}");
            assert_eq!(h["coverage"]["corrupt"], 0, "{at}");
            if !want.segment_heap {
                continue;
            }
            // The heap's own accounting (descriptors' committed pages, large allocations) is the
            // region table's view of its page segments and large allocations.
            let committed: u64 = facts
                .regions
                .iter()
                .filter(|r| r.region.state == dumpwriter::memory::MEM_COMMIT)
                .filter(|r| {
                    let base = r.region.base;
                    want.segments.iter().any(|&(s, e)| s <= base && base < e)
                        || want
                            .large_blocks
                            .iter()
                            .any(|&(s, n)| s <= base && base < s + n)
                })
                .map(|r| r.region.size)
                .sum();
            assert_eq!(h["committed"].as_u64(), Some(committed), "{at}");
            assert_eq!(h["coverage"]["not_captured"], 0, "{at}");
            assert_eq!(h["flags"], 0, "{at}");
        }
    }
}

#[test]
fn windows_11_24h2_heaps_are_found_through_ntdlls_heap_list() {
    let name = "segheap-win11-24h2-x64.dmp";
    let path = fixture(name);
    let facts = facts(name);
    let info = json(&["info", path.to_str().unwrap(), "--json"]);
    // ProcessHeaps holds the first heap only; the list in ntdll has them all, in creation order.
    assert_eq!(info["pebs"][0]["number_of_heaps"], 1);
    let listed: Vec<&str> = info["heaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["address"].as_str().unwrap())
        .collect();
    let want: Vec<String> = facts.heaps.iter().map(|h| hex(h.address)).collect();
    assert_eq!(listed, want);
    assert!(
        info["pebs"][0]["notes"]
            .to_string()
            .contains("24H2 heap list"),
        "{}",
        info["pebs"][0]["notes"]
    );
}

#[test]
fn page_heaps_are_found_through_their_own_list_and_own_their_normal_heaps() {
    for name in [
        "pageheap-win10-x64.dmp",
        "pageheap-win10-x86.dmp",
        "pageheap-win7-x86.dmp",
    ] {
        let path = fixture(name);
        let facts = facts(name);
        let info = json(&["info", path.to_str().unwrap(), "--json"]);
        // ProcessHeaps holds the two normal heaps; the page heaps come from PEB.ProcessHeap's
        // root and the NextHeap list, each listed just before its normal heap.
        assert_eq!(info["pebs"][0]["number_of_heaps"], 2, "{name}");
        assert_eq!(info["pebs"][0]["process_heap"], hex(facts.heaps[0].address));
        let heaps = info["heaps"].as_array().unwrap();
        let listed: Vec<&str> = heaps
            .iter()
            .map(|h| h["address"].as_str().unwrap())
            .collect();
        let want: Vec<String> = facts.heaps.iter().map(|h| hex(h.address)).collect();
        assert_eq!(listed, want, "{name}");
        let kinds: Vec<&str> = heaps.iter().map(|h| h["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["page heap", "nt", "page heap", "nt"], "{name}");
        assert_eq!(heaps[0]["page_heap_mode"], "full", "{name}");
        assert_eq!(heaps[2]["page_heap_mode"], "light", "{name}");
        assert_eq!(heaps[0]["normal_heap"], listed[1], "{name}");
        assert_eq!(heaps[1]["normal_heap_of"], listed[0], "{name}");
        assert_eq!(heaps[3]["normal_heap_of"], listed[2], "{name}");
        let text = text(&["info", path.to_str().unwrap()]);
        assert!(
            text.contains(&format!("normal heap of page heap {}", listed[2])),
            "{text}"
        );
    }
}
