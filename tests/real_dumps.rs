//! Real Windows dumps from `../shared/testdata/real` (see its README for provenance). Each test
//! prints why it skips when that folder is absent.

mod common;

use common::*;
use serde_json::Value;

fn row(v: &Value, table: &str, name: &str) -> Option<(u64, u64)> {
    v[table]
        .as_array()?
        .iter()
        .find(|r| r["name"] == name)
        .map(|r| (r["regions"].as_u64().unwrap(), r["bytes"].as_u64().unwrap()))
}

#[test]
fn every_real_dump_opens_and_every_view_renders() {
    let dumps = all_real();
    for d in &dumps {
        let p = d.to_str().unwrap();
        json(&["info", p, "--json"]);
        text(&["info", p, "--modules"]);
        let a = json(&["address", p, "--json"]);
        text(&["address", p]);
        text(&["address", p, "--regions", "--csv"]);
        // Region counts add up the same way in every table (WinDbg's consistency).
        let sum = |t: &str| -> u64 {
            a[t].as_array()
                .unwrap()
                .iter()
                .map(|r| r["regions"].as_u64().unwrap())
                .sum()
        };
        if a["source"] == "memory_info" {
            assert_eq!(sum("usage"), sum("state"), "{p}");
            let commit = row(&a, "state", "MEM_COMMIT").map_or(0, |r| r.0);
            assert_eq!(sum("protect"), commit, "{p}");
            let free = row(&a, "state", "MEM_FREE").map_or(0, |r| r.0);
            assert_eq!(sum("type"), sum("state") - free, "{p}");
        }
    }
}

#[test]
fn fizzbuzz_wow64_has_both_worlds_and_five_heaps() {
    let Some(d) = real("fizzbuzz_wow64.dmp") else {
        return;
    };
    let p = d.to_str().unwrap();
    let info = json(&["info", p, "--json"]);
    assert_eq!(info["arch"], "x64");
    assert_eq!(info["os_version"], "6.1.7601");
    assert_eq!(info["wow64"], true);
    assert_eq!(info["nt_global_flag"], 0);
    let pebs: Vec<(u64, &str)> = info["pebs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["bits"].as_u64().unwrap(), p["address"].as_str().unwrap()))
        .collect();
    assert_eq!(pebs, [(64, "0x7efdf000"), (32, "0x7efde000")]);
    let heaps: Vec<(&str, u64, &str)> = info["heaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["address"].as_str().unwrap(),
                h["bits"].as_u64().unwrap(),
                h["type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        heaps,
        [
            ("0x500000", 64, "nt"),
            ("0x10000", 64, "nt"),
            ("0x20000", 64, "nt"),
            ("0x700000", 32, "nt"),
            ("0x460000", 32, "nt")
        ]
    );
    for h in info["heaps"].as_array().unwrap() {
        assert_eq!(h["problems"].as_array().unwrap().len(), 0, "{h}");
    }
    assert_eq!(answer(&info, "heap_contents"), "yes");
    assert_eq!(answer(&info, "allocation_stacks"), "no");

    let a = json(&["address", p, "--json"]);
    // The region table covers the 2 GB below 0x7fff0000.
    assert_eq!(a["total_bytes"], 0x7fff_0000u64);
    assert_eq!(row(&a, "usage", "Free"), Some((28, 0x7e14_e000)));
    assert_eq!(row(&a, "usage", "Heap32"), Some((5, 0x1e_4000)));
    assert_eq!(row(&a, "usage", "Heap64"), Some((4, 0xa_0000)));
    assert_eq!(row(&a, "usage", "Stack32"), Some((3, 0x10_0000)));
    assert_eq!(row(&a, "usage", "Stack64"), Some((3, 0x4_0000)));
    // TEB64 and TEB32 share one committed run of pages; WinDbg splits them (8 kB + 4 kB).
    assert_eq!(row(&a, "usage", "TEB64"), Some((1, 0x2000)));
    assert_eq!(row(&a, "usage", "TEB32"), Some((1, 0x1000)));
    assert_eq!(row(&a, "usage", "PEB64"), Some((1, 0x1000)));
    assert_eq!(row(&a, "usage", "PEB32"), Some((1, 0x1000)));
    assert_eq!(row(&a, "usage", "Image"), Some((110, 0x82_0000)));
    // 109 committed regions in the table, one of them split into TEB64 + TEB32.
    assert_eq!(row(&a, "state", "MEM_COMMIT"), Some((110, 0x8d_a000)));
}

#[test]
fn windows_11_region_table_is_classified() {
    let Some(d) = real("tiny-exe-with-cet-xsave.dmp") else {
        return;
    };
    let a = json(&["address", d.to_str().unwrap(), "--json"]);
    // 0 .. 0x7fff`ffff0000: the 128 TB user address space of Windows 8.1+ x64.
    assert_eq!(a["total_bytes"], 0x7fff_ffff_0000u64);
    assert_eq!(row(&a, "usage", "Free"), Some((127, 0x7dfa_f9fb_3000)));
    // PEB and the TEB after it share one region in the table; they come out as 4 kB and 8 kB.
    assert_eq!(row(&a, "usage", "PEB"), Some((1, 0x1000)));
    assert_eq!(row(&a, "usage", "TEB"), Some((1, 0x2000)));
    assert_eq!(row(&a, "usage", "Stack"), Some((3, 0x10_0000)));
    assert_eq!(row(&a, "usage", "Image"), Some((151, 0x1e3_7000)));
    // The ProcessHeaps array is not captured, but PEB.ProcessHeap names the process heap.
    assert!(row(&a, "usage", "Heap").is_some());
    let info = json(&["info", d.to_str().unwrap(), "--json"]);
    assert_eq!(answer(&info, "heap_list"), "partly");
    assert_eq!(info["heaps"][0]["address"], "0x2a658530000");
}

#[test]
fn dumps_without_heap_memory_say_so() {
    for name in [
        "fizzbuzz_no_heap.dmp",
        "sigsegv.dmp",
        "tiny-exe-with-cet-xsave-x86.dmp",
        "minidump2.dmp",
        "electron-windows.dmp",
        "invalid-parameter.dmp",
        "use-after-free.dmp",
        "notepad-larger-64bit.dmp",
    ] {
        let Some(d) = real(name) else { return };
        let info = json(&["info", d.to_str().unwrap(), "--json"]);
        assert_eq!(answer(&info, "heap_contents"), "no", "{name}");
        let a = json(&["address", d.to_str().unwrap(), "--json"]);
        assert_eq!(a["source"], "captured_memory", "{name}");
    }
    let Some(d) = real("sigsegv.dmp") else { return };
    let info = json(&["info", d.to_str().unwrap(), "--json"]);
    assert_eq!(info["heaps"].as_array().unwrap().len(), 2);
    assert_eq!(info["heaps"][0]["type"], "not captured");
    assert_eq!(answer(&info, "heap_list"), "yes");
    let Some(d) = real("use-after-free.dmp") else {
        return;
    };
    let info = json(&["info", d.to_str().unwrap(), "--json"]);
    assert_eq!(info["pebs"][0]["number_of_heaps"], 15);
    assert_eq!(answer(&info, "heap_list"), "partly");
    let Some(d) = real("fizzbuzz_no_heap.dmp") else {
        return;
    };
    let txt = text(&["info", d.to_str().unwrap()]);
    assert!(txt.contains("no 32-bit TEB is captured in the dump, so the PEB cannot be found"));
}

#[test]
fn address_and_heaps_say_where_a_mapped_heap_counts_differently() {
    let Some(d) = real("fizzbuzz_wow64.dmp") else {
        return;
    };
    let p = d.to_str().unwrap();
    // The CSR-port heap 0x10000 is a 64 KB mapped view committed whole; the heap itself keeps
    // 60 KB of it as an uncommitted range. `heaps` shows the heap's 4 KB (as `!heap -s`),
    // `address` the view's 64 KB (as `!address`); both say so.
    let want = "heap 0x10000: the region table counts 65536 bytes committed in its segments, its own accounting 4096";
    let a = json(&["address", p, "--json"]);
    assert!(a["notes"].to_string().contains(want), "{}", a["notes"]);
    let h = json(&["heaps", p, "--json"]);
    let heap = h
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["address"] == "0x10000")
        .unwrap();
    assert_eq!(heap["committed"], 4096);
    assert!(
        heap["notes"].to_string().contains(want),
        "{}",
        heap["notes"]
    );
    assert!(text(&["address", p]).contains("mapped view, committed whole"));
}
