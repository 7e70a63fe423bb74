//! What a view says when the dump cannot give what it needs: one explanation, in the words of
//! `info`'s verdict, in every view (`top`, `block`, `diff`), and no claim the dump does not
//! support. These pin the intended changes of the view-model refactor (issue 14); the golden
//! transcripts pin the rest.

mod common;

use common::*;

/// `info --json`'s reason for the capability `key`.
fn reason(dump: &str, key: &str) -> String {
    let v = json(&["info", dump, "--json"]);
    v["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == key)
        .and_then(|c| c["reason"].as_str())
        .unwrap()
        .to_string()
}

#[test]
fn block_without_stack_gives_infos_reason() {
    let name = "heap-win10-x64.dmp";
    let path = fixture(name);
    let p = path.to_str().unwrap();
    let busy = facts(name).heaps[0]
        .blocks
        .iter()
        .find(|b| b.busy && !b.internal)
        .map(|b| b.address)
        .unwrap();
    let why = reason(p, "allocation_stacks");
    assert!(
        why.starts_with("no allocation stacks: +ust was off"),
        "{why}"
    );
    let txt = text(&["block", p, &hex(busy)]);
    assert!(
        txt.contains(&format!("    Allocation stack: none recorded: {why}\n")),
        "{txt}"
    );
    // Before: a question instead of the answer the dump gives.
    assert!(!txt.contains("was +ust on when it was allocated?"), "{txt}");
}

#[test]
fn top_gives_infos_reason() {
    let path = fixture("heap-win10-x64.dmp");
    let p = path.to_str().unwrap();
    let why = reason(p, "allocation_stacks");
    let v = json(&["top", p, "--json"]);
    assert_eq!(v["by"], "size");
    assert_eq!(
        v["notes"][0],
        format!("the ranking is by size, not by module: {why}")
    );
}

#[test]
fn diff_falls_back_to_size_with_infos_reason() {
    let (old, new) = (fixture("heap-win10-x64.dmp"), fixture("ust-win10-x64.dmp"));
    let (old, new) = (old.to_str().unwrap(), new.to_str().unwrap());
    let v = json(&["diff", old, new, "--json"]);
    assert_eq!(v["by"], "size");
    let note = format!(
        "the diff is by size because of the older dump: {}",
        reason(old, "allocation_stacks")
    );
    assert!(
        v["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == note.as_str()),
        "{}",
        v["notes"]
    );
}

#[test]
fn diff_does_not_claim_ust_was_off_when_it_was_on() {
    // +ust was on in this process, but none of its busy blocks carries a stack.
    let path = fixture("win7-x86.dmp");
    let p = path.to_str().unwrap();
    let v = json(&["diff", p, p, "--json"]);
    let notes = v["notes"].to_string();
    assert!(!notes.contains("+ust was off"), "{notes}");
    assert!(
        notes.contains("+ust was on (NtGlobalFlag 0x1000)"),
        "{notes}"
    );
    assert!(notes.contains("0 of 2 busy blocks"), "{notes}");
}

#[test]
fn untraced_blocks_are_explained_in_the_same_words() {
    let path = fixture("segheap-ust-win10-x64.dmp");
    let p = path.to_str().unwrap();
    let phrase = "allocated before tracing started or when the stack database was full";
    assert!(reason(p, "allocation_stacks").contains(phrase));
    let top = json(&["top", p, "--json"]);
    assert!(
        top["notes"].to_string().contains(phrase),
        "{}",
        top["notes"]
    );
}

#[test]
fn cross_argument_rules_are_the_command_lines() {
    let path = fixture("win11-x64-minidump.dmp");
    let p = path.to_str().unwrap();
    for args in [
        &["address", p, "-f", "Heap"][..],
        &["heaps", p, "--heap", "0x1"],
        &["diff", p, p, "--per-stack"],
        &["blocks", p, "--busy", "--free"],
    ] {
        let out = heapdiag().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
    }
}
