//! Honest answers: a command whose question the dump cannot answer says so in one line on
//! standard error naming the file and the reason, and exits with code 5, never an empty table
//! with exit code 0. One test per row of issue 15's list, with its exit code and message.

mod common;

use common::*;
use dumpwriter::fixtures;
use std::path::{Path, PathBuf};

/// Run heapdiag: (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = heapdiag().args(args).output().expect("run heapdiag");
    (
        out.status.code().expect("an exit code"),
        String::from_utf8(out.stdout).expect("UTF-8 stdout"),
        String::from_utf8(out.stderr).expect("UTF-8 stderr"),
    )
}

/// Expect exit code 5, nothing on stdout, and one line on stderr naming `file` and holding
/// `reason`.
fn refused(args: &[&str], file: &Path, reason: &str) {
    let (code, out, err) = run(args);
    assert_eq!(code, 5, "{args:?}: {err}");
    assert!(out.is_empty(), "{args:?} printed: {out}");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(
        err.starts_with(&format!("heapdiag: {}: ", file.display())),
        "{args:?}: {err}"
    );
    assert!(err.contains(reason), "{args:?}: {err}");
}

/// A full-memory fixture cut so that no heap is left in the file (its PEB is lost too).
fn heaps_cut_off() -> PathBuf {
    let bytes = (fixtures::by_name("sample-win10-x64.dmp").unwrap().build)()
        .0
        .to_bytes();
    write_temp("heaps-cut-off.dmp", &bytes[..bytes.len() / 32])
}

#[test]
fn a_minidump_without_heap_memory_is_refused_by_every_heap_command() {
    let mini = fixture("win11-x64-minidump.dmp");
    let m = mini.to_str().unwrap();
    let why = "heap memory not captured: this is a minidump without full memory; take one with \
               `procdump -ma`";
    for args in [
        &["heaps", m][..],
        &["heaps", m, "--json"],
        &["heaps", m, "--stat", "--csv"],
        &["blocks", m],
        &["blocks", m, "--json"],
        &["block", m, "0x10"],
        &["top", m, "--by", "stack"],
        &["top", m, "--by", "size"],
        &["diff", m, m],
        // The CI gate does not pass silently on dumps that cannot be compared.
        &["diff", m, m, "--fail-over", "1"],
    ] {
        refused(args, &mini, why);
    }
    // With a full dump on the other side, the message names the minidump.
    let full = fixture("sample-win10-x64.dmp");
    let other = fixture("win11-x64-minidump.dmp");
    let (code, _, err) = run(&["diff", full.to_str().unwrap(), other.to_str().unwrap()]);
    // Different programs: that is said first (exit code 6).
    assert_eq!(code, 6, "{err}");
}

#[test]
fn a_truncated_dump_whose_heaps_were_cut_off_says_so() {
    let cut = heaps_cut_off();
    let p = cut.to_str().unwrap();
    let why = "no heap is left in what the file holds; the file is truncated (";
    for args in [
        &["heaps", p][..],
        &["heaps", p, "--stat"],
        &["blocks", p],
        &["top", p],
        &["diff", p, p],
    ] {
        refused(args, &cut, why);
    }
    refused(&["heaps", p], &cut, "copy the whole dump again");
    // `info` tells the same story, and never asks for a full dump the file already is.
    let info = json(&["info", p, "--json"]);
    assert_eq!(answer(&info, "heap_contents"), "no");
    let reasons = info["capabilities"].to_string();
    assert!(reasons.contains("the file is truncated"), "{reasons}");
    assert!(!reasons.contains("procdump -ma"), "{reasons}");
}

#[test]
fn a_truncated_dump_with_heaps_left_answers_in_part() {
    let bytes = (fixtures::by_name("sample-win10-x64.dmp").unwrap().build)()
        .0
        .to_bytes();
    let cut = write_temp("heaps-left.dmp", &bytes[..bytes.len() / 2]);
    let p = cut.to_str().unwrap();
    let info = json(&["info", p, "--json"]);
    // Not "yes, every listed heap is captured": the heaps in the part cut off are missing.
    assert_eq!(answer(&info, "heap_contents"), "partly");
    let reasons = info["capabilities"].to_string();
    assert!(reasons.contains("the part cut off"), "{reasons}");
    assert!(!reasons.contains("procdump -ma"), "{reasons}");
    // What is left is still shown.
    let (code, out, _) = run(&["heaps", p]);
    assert_eq!(code, 0);
    assert!(out.contains("0x1210000"), "{out}");
}

#[test]
fn block_outside_every_block_says_where_the_address_is() {
    let path = fixture("sample-win10-x64.dmp");
    let p = path.to_str().unwrap();
    refused(
        &["block", p, "0x10"],
        &path,
        "address 0x10 is not in any heap block of this dump: it lies in Free memory",
    );
    // In a thread's stack: named.
    let facts = facts("sample-win10-x64.dmp");
    let stack = facts
        .regions
        .iter()
        .find(|r| r.usage == dumpwriter::process::Usage::Stack)
        .expect("a stack region");
    refused(
        &["block", p, &hex(stack.region.base)],
        &path,
        "it lies in Stack memory (thread 0x",
    );
    // JSON keeps its answer, null, and says why on standard error.
    let (code, out, err) = run(&["block", p, "0x10", "--json"]);
    assert_eq!(code, 5);
    assert_eq!(out, "null\n");
    assert!(err.contains("is not in any heap block"), "{err}");
}

#[test]
fn top_by_stack_without_ust_ranks_by_size_and_says_why() {
    let path = fixture("heap-win10-x64.dmp");
    let p = path.to_str().unwrap();
    let (code, out, err) = run(&["top", p, "--by", "stack"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("Outstanding busy memory by size, most bytes first\n"),
        "{out}"
    );
    let words = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains(
            "Note: the ranking is by size, not by stack: no allocation stacks: +ust was off \
             (NtGlobalFlag 0x0); enable it with `gflags -i"
        ),
        "{out}"
    );
    let v = json(&["top", p, "--by", "stack", "--json"]);
    assert_eq!(v["by"], "size");
}

#[test]
fn a_heap_that_cannot_be_walked_is_listed_with_the_reason() {
    let (mut dump, facts) = (fixtures::by_name("sample-win10-x64.dmp").unwrap().build)();
    let lost = &facts.heaps[1];
    for &(start, end) in &lost.segments {
        dump.memory.uncapture(start, end);
    }
    let path = write_temp("one-heap-lost.dmp", &dump.to_bytes());
    let p = path.to_str().unwrap();
    let (code, out, err) = run(&["heaps", p]);
    assert_eq!(code, 0, "{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with(&hex(lost.address)))
        .unwrap_or_else(|| panic!("heap {} dropped:\n{out}", hex(lost.address)));
    assert!(row.contains("not walked (see below)"), "{row}");
    let heaps = json(&["heaps", p, "--json"]);
    let h = heaps
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["address"] == hex(lost.address).as_str())
        .unwrap();
    assert_eq!(h["walked"], false);
    assert!(!h["notes"].as_array().unwrap().is_empty(), "{h}");
    let info = json(&["info", p, "--json"]);
    assert_eq!(answer(&info, "heap_contents"), "partly");
}

#[test]
fn a_damaged_stack_record_is_named_and_its_blocks_not_called_untraced() {
    let (mut dump, facts) = (fixtures::by_name("ust-win10-x64.dmp").unwrap().build)();
    let heap = &facts.heaps[0];
    let (record, _) = heap.stacks[0];
    // The record's Depth (after the 8-byte link and the 4-byte hash) made implausible.
    dump.memory.write_u32(record + 12, 0);
    let path = write_temp("damaged-record.dmp", &dump.to_bytes());
    let p = path.to_str().unwrap();
    let blocks: Vec<u64> = heap
        .blocks
        .iter()
        .filter(|b| b.busy && !b.internal && b.trace == record)
        .map(|b| b.address)
        .collect();
    assert!(!blocks.is_empty());
    let v = json(&["top", p, "--by", "stack", "--json"]);
    let notes = v["notes"].to_string();
    assert!(
        notes.contains(&format!(
            "{} to stack records that cannot be read (damaged, or not in the dump): {} ({})",
            if blocks.len() == 1 {
                "1 busy block points".to_string()
            } else {
                format!("{} busy blocks point", blocks.len())
            },
            hex(record),
            if blocks.len() == 1 {
                "1 block".to_string()
            } else {
                format!("{} blocks", blocks.len())
            }
        )),
        "{notes}"
    );
    assert!(
        !notes.contains("allocated before tracing started"),
        "{notes}"
    );
    let info = json(&["info", p, "--json"]);
    let reasons = info["capabilities"].to_string();
    assert!(
        !reasons.contains("allocated before tracing started"),
        "{reasons}"
    );
    assert!(
        reasons.contains("to stack records that cannot be read"),
        "{reasons}"
    );
    let txt = text(&["block", p, &hex(blocks[0])]);
    assert!(
        txt.contains(&format!(
            "Allocation stack: recorded, but its record cannot be read: stack record {}: depth 0 \
             is not plausible",
            hex(record)
        )),
        "{txt}"
    );
}
