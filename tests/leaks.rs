//! `heapdiag leaks` on fixtures whose object graphs give the answer by construction
//! (`dumpwriter::leak_fixtures`), and on the real WoW64 dump.

mod common;

use common::{fixture, hex, json, real, text};
use dumpwriter::leak_fixtures::{Answer, WOW64_ANSWER, X64_ANSWER};
use serde_json::Value;
use std::collections::BTreeMap;

/// The object index of each address of a graph fixture.
fn objects(name: &str) -> BTreeMap<String, usize> {
    common::facts(name)
        .objects
        .iter()
        .enumerate()
        .map(|(i, &a)| (hex(a), i))
        .collect()
}

/// Check `leaks --json` of fixture `name` against `answer`.
fn check(name: &str, answer: &Answer) {
    let d = fixture(name);
    let v = json(&["leaks", d.to_str().unwrap(), "--json"]);
    let index = objects(name);
    let facts = common::facts(name);
    let blocks = v["blocks"].as_array().unwrap();
    let object = |b: &Value| index[b["address"].as_str().unwrap()];
    let unreachable: Vec<usize> = blocks.iter().map(object).collect();
    assert_eq!(
        unreachable, answer.unreachable,
        "{name}: unreachable objects"
    );
    assert_eq!(v["unreachable_blocks"], answer.unreachable.len());
    let size = |o: usize| {
        blocks
            .iter()
            .find(|b| object(b) == o)
            .map(|b| b["size"].as_u64().unwrap())
            .unwrap()
    };
    let bytes: u64 = answer.unreachable.iter().map(|&o| size(o)).sum();
    assert_eq!(v["unreachable_bytes"], bytes);
    // Roots of garbage: the first object of each, its cycle and retained bytes.
    let roots: Vec<(Vec<usize>, u64)> = blocks
        .iter()
        .filter(|b| b["garbage_root"] == true)
        .map(|b| {
            let mut members = vec![object(b)];
            if let Some(c) = b["cycle"].as_array() {
                members.extend(c.iter().map(|a| index[a.as_str().unwrap()]));
            }
            (members, b["retained_bytes"].as_u64().unwrap())
        })
        .collect();
    let want: Vec<(Vec<usize>, u64)> = answer.roots.iter().map(|(m, r)| (m.to_vec(), *r)).collect();
    assert_eq!(roots, want, "{name}: roots of garbage and retained bytes");
    assert_eq!(v["garbage_root_count"], answer.roots.len());
    for b in blocks {
        let o = object(b);
        let owner = b["retained_by"].as_str().map(|a| index[a]);
        if answer.shared.contains(&o) {
            assert_eq!(owner, None, "{name}: object {o} is shared");
            assert!(b.get("retained_bytes").is_none());
        } else {
            let root = answer
                .roots
                .iter()
                .find(|(m, _)| {
                    m.contains(&o)
                        || answer.roots.iter().all(|(n, _)| !n.contains(&o)) && owner == Some(m[0])
                })
                .map(|(m, _)| m[0]);
            assert_eq!(owner, root, "{name}: object {o}'s root of garbage");
        }
    }
    assert_eq!(facts.objects.len(), index.len());
}

#[test]
fn graph_x64_gives_the_constructed_reachability() {
    check("leaks-win10-x64.dmp", &X64_ANSWER);
}

#[test]
fn graph_wow64_gives_the_constructed_reachability() {
    check("leaks-wow64-win10.dmp", &WOW64_ANSWER);
}

#[test]
fn more_roots_reach_what_other_private_memory_points_to() {
    let d = fixture("leaks-win10-x64.dmp");
    let index = objects("leaks-win10-x64.dmp");
    let v = json(&["leaks", d.to_str().unwrap(), "--roots", "more", "--json"]);
    let got: Vec<usize> = v["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| index[b["address"].as_str().unwrap()])
        .collect();
    let want: Vec<usize> = X64_ANSWER
        .unreachable
        .iter()
        .copied()
        .filter(|&o| o != 24)
        .collect();
    assert_eq!(got, want);
    // The graph's region and the writer's region of +ust stack records.
    assert_eq!(v["roots"]["private_regions"], 2);
}

/// `leaks --why` on object `o`: the JSON.
fn why(name: &str, o: usize, offset: u64) -> Value {
    let d = fixture(name);
    let a = common::facts(name).objects[o] + offset;
    json(&["leaks", d.to_str().unwrap(), "--why", &hex(a), "--json"])
}

/// The chain's steps as text: `root:…` or the object index.
fn chain(name: &str, v: &Value) -> Vec<String> {
    let index = objects(name);
    v["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| match l["kind"].as_str().unwrap() {
            "root" => format!("root:{}", l["root"].as_str().unwrap()),
            _ => index[l["block"].as_str().unwrap()].to_string(),
        })
        .collect()
}

#[test]
fn why_gives_the_chain_from_a_root() {
    let x64 = "leaks-win10-x64.dmp";
    let v = why(x64, 2, 0x2f);
    assert_eq!(v["reachable"], true);
    assert_eq!(v["block"]["address"], hex(common::facts(x64).objects[2]));
    let stack = "root:stack of thread 0x1000 (64-bit)";
    assert_eq!(chain(x64, &v), [stack, "0", "1", "2"]);
    let facts = common::facts(x64);
    let sp = facts.threads[0].stack_pointer();
    assert_eq!(v["chain"][0]["at"], hex(sp + 0x28));
    assert_eq!(v["chain"][1]["at"], hex(facts.objects[0] + 8));
    assert_eq!(v["chain"][2]["value"], hex(facts.objects[2] + 0x20));
    assert_eq!(
        chain(x64, &why(x64, 4, 0)),
        ["root:leaky.exe .data", "3", "4"]
    );
    assert_eq!(
        chain(x64, &why(x64, 5, 0)),
        ["root:register rbx of thread 0x1004", "5"]
    );
    assert_eq!(
        chain(x64, &why(x64, 23, 0)),
        ["root:TEB of thread 0x1000 (64-bit)", "23"]
    );
    let wow = "leaks-wow64-win10.dmp";
    assert_eq!(
        chain(wow, &why(wow, 8, 0)),
        ["root:stack of thread 0x1000 (32-bit)", "0", "1", "8"]
    );
    assert_eq!(
        chain(wow, &why(wow, 5, 0)),
        ["root:stack of thread 0x1000 (64-bit)", "7", "5"]
    );
    assert_eq!(
        chain(wow, &why(wow, 3, 0)),
        ["root:register esi of thread 0x1000", "3"]
    );
}

#[test]
fn why_explains_unreachable_blocks() {
    let x64 = "leaks-win10-x64.dmp";
    let objects = common::facts(x64).objects;
    let v = why(x64, 9, 0x10);
    assert_eq!(v["reachable"], false);
    assert_eq!(chain(x64, &v), ["8", "9"]);
    assert_eq!(v["retained_by"], hex(objects[8]));
    assert_eq!(v["pointed_from"], serde_json::json!([hex(objects[8])]));
    let v = why(x64, 15, 0);
    assert_eq!(v["retained_by"], Value::Null);
    assert_eq!(
        v["pointed_from"],
        serde_json::json!([hex(objects[13]), hex(objects[14])])
    );
    let v = why(x64, 18, 0);
    assert_eq!(chain(x64, &v), ["16", "17", "18"]);
    assert_eq!(v["retained_by"], hex(objects[16]));
    let t = text(&[
        "leaks",
        fixture(x64).to_str().unwrap(),
        "--why",
        &hex(objects[12]),
    ]);
    assert!(t.contains("Unreachable: no chain of pointers"), "{t}");
    assert!(
        t.contains(&format!("alone keeps it: {}", hex(objects[10]))),
        "{t}"
    );
}

#[test]
fn why_outside_busy_blocks_and_without_heaps_exits_5() {
    let d = fixture("leaks-win10-x64.dmp");
    let out = common::heapdiag()
        .args(["leaks", d.to_str().unwrap(), "--why", "0x10"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("0x10 is not in any heap block"), "{err}");
    let m = fixture("win11-x64-minidump.dmp");
    let out = common::heapdiag()
        .args(["leaks", m.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("heap memory not captured"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn groups_are_by_stack_with_ust() {
    let d = fixture("leaks-win10-x64.dmp");
    let v = json(&["leaks", d.to_str().unwrap(), "--json"]);
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "every leaked object has stack 1");
    assert_eq!(groups[0]["count"], X64_ANSWER.unreachable.len());
    assert_eq!(groups[0]["bytes"], v["unreachable_bytes"]);
    let frames = common::frame_addresses(&groups[0]);
    assert_eq!(frames.len(), 3);
    let v = json(&["leaks", d.to_str().unwrap(), "--by", "size", "--json"]);
    let sizes: Vec<(String, u64)> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["key"].as_str().unwrap().into(),
                g["count"].as_u64().unwrap(),
            )
        })
        .collect();
    // S0, U1, F, H, P and M.
    assert_eq!(sizes[0], ("0x40".to_string(), 6));
}

/// The real WoW64 dump (Windows 7, no +ust): 335 of its 338 busy blocks are reachable once the
/// heaps' own headers count (they point to Windows 7's BlocksIndex blocks); nothing in the whole
/// dump points into the three others, except the dead part of the 32-bit stack and a free
/// block for 0x70e068.
#[test]
fn the_real_wow64_dump() {
    let Some(d) = real("fizzbuzz_wow64.dmp") else {
        return;
    };
    let v = json(&["leaks", d.to_str().unwrap(), "--json"]);
    assert_eq!(v["busy_blocks"], 338);
    let got: Vec<&str> = v["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["address"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["0x463cf0", "0x706ec0", "0x70e068"]);
    assert_eq!(v["unreachable_bytes"], 0x80 + 0x3c + 0x80);
    assert_eq!(v["roots"]["stacks"], 2);
    assert_eq!(v["roots"]["heap_headers"], 5);
    let why = json(&["leaks", d.to_str().unwrap(), "--why", "0x700590", "--json"]);
    assert_eq!(why["chain"][0]["root"], "header of heap 0x700000");
    assert_eq!(why["chain"][0]["at"], "0x7000bc");
}

#[test]
fn suspects_come_with_their_evidence() {
    let d = fixture("leaks-win10-x64.dmp");
    let v = json(&["leaks", d.to_str().unwrap(), "--json"]);
    let s = v["suspects"].as_array().unwrap();
    // Stack 1 allocated every leaked object; stack 0's kept ones are 21% of the bytes.
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!(s[0]["key"], "leaky+0x1700");
    assert_eq!(s[0]["unreachable"]["count"], X64_ANSWER.unreachable.len());
    assert_eq!(s[0]["unreachable"]["bytes"], v["unreachable_bytes"]);
    assert_eq!(s[1]["key"], "leaky+0x1100");
    assert_eq!(s[1]["unreachable"]["count"], 0);
    assert_eq!(s[1]["outstanding"]["bytes"], 0x158);
    assert_eq!(s[1]["pct_busy"], 21.0784);
    assert!(s[1].get("same_size").is_none() && s[1].get("growth").is_none());
    let t = text(&["leaks", d.to_str().unwrap()]);
    let list = t.split("Leak suspects").nth(1).expect("the suspects");
    assert!(
        list.contains("- 18 blocks, 1.3 kB unreachable: no chain of pointers"),
        "{list}"
    );
    assert!(
        list.contains("- 21.1% of the outstanding bytes (7 blocks, 344 B)"),
        "{list}"
    );
    // top has no reachability: the same stacks, by share.
    let t = json(&["top", d.to_str().unwrap(), "--json"]);
    let keys: Vec<&str> = t["suspects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["leaky+0x1700", "leaky+0x1100"]);
    assert!(t["suspects"][0].get("unreachable").is_none());
}

#[test]
fn suspects_grow_against_a_baseline() {
    let (a, b) = (fixture("diff-before.dmp"), fixture("diff-after.dmp"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    for command in ["top", "leaks"] {
        let v = json(&[command, b, "--baseline", a, "--json"]);
        let s = v["suspects"].as_array().unwrap();
        let growth: Vec<(&str, i64, i64)> = s
            .iter()
            .map(|s| {
                (
                    s["key"].as_str().unwrap(),
                    s["growth"]["count"].as_i64().unwrap(),
                    s["growth"]["bytes"].as_i64().unwrap(),
                )
            })
            .collect();
        // diff-after: 5 new blocks of 0x200 from plugin.dll, 5 more of 0x100 from the leaking
        // stack, 4 fewer of 0x80, 0x40 unchanged.
        assert!(
            growth.contains(&("plugin+0x1500", 5, 0x200 * 5)),
            "{command}: {growth:?}"
        );
        assert!(
            growth.contains(&("service+0x1100", 5, 0x100 * 5)),
            "{command}: {growth:?}"
        );
        // It shrank: a suspect only where its blocks are unreachable.
        let shrank = growth.contains(&("service+0x1300", -4, -0x80 * 4));
        assert_eq!(shrank, command == "leaks", "{command}: {growth:?}");
    }
    let out = common::heapdiag()
        .args([
            "top",
            b,
            "--baseline",
            &fixture("heap-win7-x86.dmp").display().to_string(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(6),
        "different programs cannot be compared"
    );
}

/// `analyze` runs the same scan on its one walk: its unreachable totals, groups and roots of
/// garbage are `leaks`', without the list of every block; its suspects are `leaks`'.
#[test]
fn analyze_reports_what_leaks_finds() {
    for (name, answer) in [
        ("leaks-win10-x64.dmp", &X64_ANSWER),
        ("leaks-wow64-win10.dmp", &WOW64_ANSWER),
    ] {
        let d = fixture(name);
        let d = d.to_str().unwrap();
        let leaks = json(&["leaks", d, "--json"]);
        let analyze = json(&["analyze", d, "--json"]);
        let u = &analyze["unreachable"];
        assert_eq!(u["unreachable_blocks"], answer.unreachable.len(), "{name}");
        assert_eq!(u["garbage_root_count"], answer.roots.len(), "{name}");
        for k in [
            "unreachable_bytes",
            "busy_blocks",
            "busy_bytes",
            "roots",
            "groups",
            "by",
        ] {
            assert_eq!(u[k], leaks[k], "{name}: {k}");
        }
        assert!(u.get("blocks").is_none(), "{name}: analyze lists no blocks");
        assert_eq!(analyze["suspects"], leaks["suspects"], "{name}: suspects");
        let summary = text(&["analyze", d]);
        let line = format!(
            "Unreachable: {} of {} busy blocks",
            answer.unreachable.len(),
            leaks["busy_blocks"]
        );
        assert!(summary.contains(&line), "{name}: {summary}");
        assert!(summary.contains("Leak suspects (strongest evidence first)"));
    }
}

/// Without the heaps' memory `analyze` still answers what it can, and has no leak sections.
#[test]
fn analyze_without_heap_memory_has_no_leak_sections() {
    let d = fixture("win11-x64-minidump.dmp");
    let v = json(&["analyze", d.to_str().unwrap(), "--json"]);
    assert!(v["unreachable"].is_null(), "{v}");
    assert_eq!(v["suspects"], serde_json::json!([]));
}
