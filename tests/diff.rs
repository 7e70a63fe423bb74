//! `heapdiag diff` on a synthetic pair whose changes are known by construction (see the fixtures
//! `diff-before.dmp` and `diff-after.dmp`): a leaking stack, a shrinking stack, an unchanged
//! stack, a new module, and VirtualAlloc'd memory growing outside the heaps.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;

fn pair() -> (String, String) {
    (
        fixture("diff-before.dmp").display().to_string(),
        fixture("diff-after.dmp").display().to_string(),
    )
}

/// key → (delta count, delta bytes), in output order.
fn deltas(v: &Value) -> Vec<(String, i64, i64)> {
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["key"].as_str().unwrap().to_string(),
                e["delta"]["count"].as_i64().unwrap(),
                e["delta"]["bytes"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn by_stack_growth_first_then_shrink_and_unchanged_left_out() {
    let (a, b) = pair();
    let v = json(&["diff", &a, &b, "--json"]);
    assert_eq!(v["by"], "stack");
    assert_eq!(v["totals"]["before"], 3 * 0x100 + 6 * 0x80 + 4 * 0x40);
    assert_eq!(
        v["totals"]["after"],
        8 * 0x100 + 2 * 0x80 + 4 * 0x40 + 5 * 0x200
    );
    assert_eq!(v["totals"]["delta"], 0xd00);
    let d: Vec<(i64, i64)> = deltas(&v).iter().map(|x| (x.1, x.2)).collect();
    assert_eq!(d, [(5, 0xa00), (5, 0x500), (-4, -0x200)]);
    let e = &v["entries"][0];
    assert_eq!(e["before"]["count"], 0);
    assert_eq!(e["after"]["bytes"], 0xa00);
    let frames: Vec<&str> = e["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["module"].as_str().unwrap())
        .collect();
    assert_eq!(frames, ["ntdll.dll", "plugin.dll", "service.exe"]);
    assert_eq!(e["frames"][1]["offset"], "0x1500");
    // A vanished stack would take its frames from the older dump: the shrinking one keeps them.
    assert_eq!(v["entries"][2]["frames"][1]["offset"], "0x1300");
    let notes = v["notes"].to_string();
    assert!(
        notes.contains("two runs (process ids 4660 and 22136)"),
        "{notes}"
    );
    let txt = text(&["diff", &a, &b]);
    assert!(
        txt.contains(
            "    +5 blocks, +1.2 kB (before 3 blocks, 768 B; now 8 blocks, 2 kB: 8 × 256 B)\n"
        ),
        "{txt}"
    );
    assert!(txt.contains("Total increase: +3.2 kB (+6 blocks)"), "{txt}");
    // UMDH's own lines, in its radix, behind one switch.
    let umdh = text(&["diff", &a, &b, "--windbg"]);
    assert!(
        umdh.contains("+ 500 ( 800 - 300) 8 allocs\tBackTrace"),
        "{umdh}"
    );
    assert!(umdh.contains("- 4 ( 2 - 6)\tBackTrace"), "{umdh}");
    assert!(umdh.contains("Total increase == d00"), "{umdh}");
    assert_eq!(text(&["diff", &a, &b, "--umdh"]), umdh);
}

#[test]
fn by_module_function_size_and_heap() {
    let (a, b) = pair();
    let m = |by: &str| deltas(&json(&["diff", &a, &b, "--by", by, "--json"]));
    assert_eq!(
        m("module"),
        [
            ("plugin.dll".into(), 5, 0xa00),
            ("service.exe".into(), 1, 0x300)
        ]
    );
    assert_eq!(
        m("function"),
        [
            ("plugin+0x1500".into(), 5, 0xa00),
            ("service+0x1100".into(), 5, 0x500),
            ("service+0x1300".into(), -4, -0x200)
        ]
    );
    assert_eq!(
        m("size"),
        [
            ("0x200".into(), 5, 0xa00),
            ("0x100".into(), 5, 0x500),
            ("0x80".into(), -4, -0x200)
        ]
    );
    // Heaps are matched by their place in the heap lists and named by their address.
    let h = json(&["diff", &a, &b, "--by", "heap", "--json"]);
    let heap = hex(facts("diff-after.dmp").heaps[0].address);
    assert_eq!(m("heap"), [(heap.clone(), 6, 0xd00)]);
    assert_eq!(h["entries"][0]["heaps"]["before"], heap);
    assert_eq!(h["entries"][0]["heaps"]["after"], heap);
    let f = json(&["diff", &a, &b, "--by", "function", "--json"]);
    assert_eq!(f["entries"][0]["module"], "plugin.dll");
}

#[test]
fn address_usage_shows_growth_outside_the_heaps() {
    let (a, b) = pair();
    let v = json(&["diff", &a, &b, "--json"]);
    let committed: BTreeMap<String, i64> = v["address"]["committed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["delta"]["bytes"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        committed["<unknown>"], 0x6_0000,
        "VirtualAlloc'd commit grew"
    );
    assert_eq!(committed["Image"], 0x8000, "plugin.dll");
    assert_eq!(committed["Heap"], 0);
    let image = v["address"]["usage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Image")
        .unwrap();
    assert_eq!(image["delta"]["count"], 4);
}

#[test]
fn fail_over_gates_total_and_per_stack_growth() {
    let (a, b) = pair();
    let code = |args: &[&str]| heapdiag().args(args).output().unwrap().status.code();
    assert_eq!(code(&["diff", &a, &b, "--fail-over", "0xc00"]), Some(1));
    assert_eq!(code(&["diff", &a, &b, "--fail-over", "0xd00"]), Some(0));
    assert_eq!(
        code(&[
            "diff",
            &a,
            &b,
            "--fail-over",
            "0x9ff",
            "--per-stack",
            "--by",
            "size"
        ]),
        Some(1)
    );
    assert_eq!(
        code(&["diff", &a, &b, "--fail-over", "0xa00", "--per-stack"]),
        Some(0)
    );
    let out = heapdiag()
        .args(["diff", &a, &b, "--fail-over", "100"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("grew by 3328 bytes, over --fail-over 100")
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Total increase"));
}

#[test]
fn different_programs_or_architectures_are_refused() {
    let (a, _) = pair();
    let x86 = fixture("heap-win7-x86.dmp");
    let out = heapdiag()
        .args(["diff", &a, x86.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr).contains("different architectures (x64 and x86)"));
    let other = fixture("heap-win10-x64.dmp");
    let out = heapdiag()
        .args(["diff", &a, other.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("different programs (service.exe and heapy.exe)"));
}

#[test]
fn without_ust_the_diff_is_by_size_and_says_why() {
    let a = fixture("heap-win10-x64.dmp");
    let b = fixture("heap-win11-x64.dmp");
    let v = json(&["diff", a.to_str().unwrap(), b.to_str().unwrap(), "--json"]);
    assert_eq!(v["by"], "size");
    assert!(v["notes"].to_string().contains(
        "the diff is by size because of the older dump: no allocation stacks: +ust was off"
    ));
    assert_eq!(v["totals"]["delta"], 0);
}

/// The rsaenh case of the DebugDiag playbook (fixtures `leak-before.dmp`, `leak-after.dmp`): a
/// process leaking 422-byte blocks from one stack among noise whose sizes hold more bytes. Ranked
/// by bytes the leak hides; ranked by count it comes first, and "Stands out" names it either way.
#[test]
fn the_rsaenh_leak_comes_first_by_count() {
    let (before, after) = (fixture("leak-before.dmp"), fixture("leak-after.dmp"));
    let (a, b) = (before.to_str().unwrap(), after.to_str().unwrap());
    let leak = dumpwriter::fixtures::LEAK_SIZE;
    let first_key = |v: &Value| v["entries"][0]["key"].as_str().unwrap().to_string();

    // top --by size: 422 is not first by bytes, first by count.
    let by_bytes = json(&["top", b, "--by", "size", "--json"]);
    assert_ne!(first_key(&by_bytes), hex(leak));
    let by_count = json(&["top", b, "--by", "size", "--sort", "count", "--json"]);
    assert_eq!(first_key(&by_count), hex(leak));
    assert_eq!(by_count["entries"][0]["size"], leak);
    assert_eq!(by_count["entries"][0]["count"], 400);
    assert_eq!(by_count["stands_out"]["most_blocks"]["key"], hex(leak));

    // heaps --stat: the same.
    let stat = |sort: &str| {
        let v = json(&["heaps", b, "--stat", "--sort", sort, "--json"]);
        v[0]["sizes"][0]["size"].as_u64().unwrap()
    };
    assert_ne!(stat("bytes"), leak);
    assert_eq!(stat("count"), leak);

    // diff: by bytes (UMDH's order) the 64 KiB buffers grew more; by count the leaking stack,
    // through rsaenh.dll, is first.
    let is_leak = |e: &Value| {
        e["key"].as_str().unwrap().contains("rsaenh+0x2a10")
            && e["sizes"][0]["size"] == leak
            && e["delta"]["count"] == 300
    };
    let bytes = json(&["diff", a, b, "--json"]);
    assert_eq!(bytes["sort"], "bytes");
    assert!(!is_leak(&bytes["entries"][0]), "{}", bytes["entries"][0]);
    let count = json(&["diff", a, b, "--sort", "count", "--json"]);
    assert!(is_leak(&count["entries"][0]), "{}", count["entries"][0]);
    assert_eq!(
        count["entries"][0]["allocator"], "rsaenh+0x2a10",
        "the allocator frame past ntdll"
    );
    // Whatever the order, what stands out: the leak by blocks, the buffers by bytes.
    for v in [&bytes, &count] {
        let s = &v["stands_out"];
        assert!(
            s["most_blocks"]["key"].as_str().unwrap().contains("rsaenh"),
            "{s}"
        );
        assert_eq!(s["most_blocks"]["count"], 300);
        assert_eq!(s["most_bytes"]["bytes"], 2 * 0x1_0000);
    }
    let txt = text(&["diff", a, b]);
    let words = txt.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains(
            "Stands out: BackTrace 0x1350000 (rsaenh+0x2a10) grew the most in blocks (+300 blocks, \
             +123.6 kB)"
        ),
        "{txt}"
    );
    assert!(
        txt.contains("now 400 blocks, 164.8 kB: 400 × 422 B)\n"),
        "{txt}"
    );
    // By module, rsaenh.dll leads.
    let m = json(&["diff", a, b, "--by", "module", "--sort", "count", "--json"]);
    assert_eq!(first_key(&m), "rsaenh.dll");
}

#[test]
fn diff_folded_pairs_each_stack_before_and_after() {
    let (a, b) = (fixture("diff-before.dmp"), fixture("diff-after.dmp"));
    let out = write_temp("diff.folded", b"");
    let d = json(&[
        "diff",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--json",
        "--folded",
        out.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&out).unwrap();
    let (mut before, mut after) = (0u64, 0u64);
    for line in text.lines() {
        let mut parts = line.rsplitn(3, ' ');
        after += parts.next().unwrap().parse::<u64>().unwrap();
        before += parts.next().unwrap().parse::<u64>().unwrap();
        assert!(!parts.next().unwrap().is_empty());
    }
    assert_eq!(before, d["totals"]["before"].as_u64().unwrap());
    assert_eq!(after, d["totals"]["after"].as_u64().unwrap());
}
