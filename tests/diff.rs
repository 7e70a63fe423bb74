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
        txt.contains("+0x500 (0x800 - 0x300) 8 allocs\tBackTrace "),
        "{txt}"
    );
    assert!(txt.contains("-0x4 (2 - 6)\tBackTrace "), "{txt}");
    assert!(txt.contains("Total increase == +0xd00"), "{txt}");
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
    assert_eq!(m("heap"), [("heap #0".into(), 6, 0xd00)]);
    let f = json(&["diff", &a, &b, "--by", "function", "--json"]);
    assert_eq!(f["entries"][0]["module"], "plugin");
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
