//! `heapdiag top` (and stacks in `block`/`blocks`) on +ust fixtures whose stacks are known by
//! construction, and symbol resolution through the real MSVC PDB `crash.pdb`.

mod common;

use common::*;
use dumpwriter::fixtures::{CRASH_ALLOCATORS, HEAPS};
use dumpwriter::process::Facts;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn entries(v: &Value) -> BTreeMap<String, (u64, u64)> {
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["key"].as_str().unwrap().to_string(),
                (e["count"].as_u64().unwrap(), e["bytes"].as_u64().unwrap()),
            )
        })
        .collect()
}

/// Busy user blocks per stack record: record → (count, bytes).
fn by_record(facts: &Facts) -> BTreeMap<u64, (u64, u64)> {
    let mut m = BTreeMap::new();
    for h in &facts.heaps {
        for b in h.blocks.iter().filter(|b| b.busy && !b.internal) {
            let e = m.entry(b.trace).or_insert((0, 0));
            e.0 += 1;
            e.1 += b.size;
        }
    }
    m
}

fn ust_fixtures() -> Vec<&'static str> {
    HEAPS
        .iter()
        .map(|f| f.name)
        .filter(|n| n.starts_with("ust-") && !n.contains("crash"))
        .collect()
}

#[test]
fn by_stack_totals_and_frames_match_construction() {
    for name in ust_fixtures() {
        let path = fixture(name);
        let facts = facts(name);
        let got = json(&[
            "top",
            path.to_str().unwrap(),
            "--by",
            "stack",
            "--limit",
            "1000",
            "--json",
        ]);
        let want: BTreeMap<String, (u64, u64)> = by_record(&facts)
            .into_iter()
            .map(|(r, v)| (hex(r), v))
            .collect();
        assert!(
            !want.contains_key("0x0"),
            "{name}: every busy block is traced"
        );
        assert_eq!(entries(&got), want, "{name}");
        let frames: BTreeMap<String, Vec<String>> = facts
            .heaps
            .iter()
            .flat_map(|h| h.stacks.iter())
            .map(|(r, f)| (hex(*r), f.iter().map(|a| hex(*a)).collect()))
            .collect();
        for e in got["entries"].as_array().unwrap() {
            let got_frames = frame_addresses(e);
            assert_eq!(&got_frames, &frames[e["key"].as_str().unwrap()], "{name}");
        }
        assert_eq!(got["traced_bytes"], got["total_busy_bytes"], "{name}");
    }
}

#[test]
fn by_module_and_function_attribute_past_allocator_frames() {
    for name in ust_fixtures() {
        let path = fixture(name);
        let p = path.to_str().unwrap();
        let facts = facts(name);
        let info = json(&["info", p, "--json"]);
        let modules: Vec<(u64, u64, String)> = info["modules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let base =
                    u64::from_str_radix(m["base"].as_str().unwrap().trim_start_matches("0x"), 16)
                        .unwrap();
                (
                    base,
                    base + m["size"].as_u64().unwrap(),
                    m["name"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let module_of = |a: u64| {
            modules
                .iter()
                .find(|(b, e, _)| *b <= a && a < *e)
                .map(|(b, _, n)| (*b, n.clone()))
                .unwrap()
        };
        // Expected: the first frame outside ntdll and the WoW64 layer (these stacks have no other
        // plumbing), else the last frame: the 64-bit side of a WoW64 process's allocations is
        // system frames alone, attributed to ntdll as in the 32-bit world.
        let system = |f: u64| {
            let n = module_of(f).1.to_ascii_lowercase();
            n == "ntdll.dll" || n.starts_with("wow64")
        };
        let mut want_module: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        let mut want_function: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        let records = by_record(&facts);
        for h in &facts.heaps {
            for (record, frames) in &h.stacks {
                let Some((count, bytes)) = records.get(record) else {
                    continue;
                };
                let a = *frames
                    .iter()
                    .find(|&&f| !system(f))
                    .or(frames.last())
                    .unwrap();
                let (base, module) = module_of(a);
                let short = module.rsplit_once('.').unwrap().0.to_string();
                for (map, key) in [
                    (&mut want_module, module.clone()),
                    (&mut want_function, format!("{short}+{:#x}", a - base)),
                ] {
                    let e = map.entry(key).or_insert((0, 0));
                    e.0 += count;
                    e.1 += bytes;
                }
            }
        }
        let got = json(&["top", p, "--by", "module", "--json"]);
        assert_eq!(entries(&got), want_module, "{name}");
        let got = json(&["top", p, "--by", "function", "--limit", "100", "--json"]);
        assert_eq!(entries(&got), want_function, "{name}");
    }
}

#[test]
fn by_size_and_heap_match_construction() {
    let name = "ust-win10-x64.dmp";
    let path = fixture(name);
    let facts = facts(name);
    let mut sizes: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut heaps: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for h in &facts.heaps {
        for b in h.blocks.iter().filter(|b| b.busy && !b.internal) {
            for (map, key) in [(&mut sizes, hex(b.size)), (&mut heaps, hex(h.address))] {
                let e = map.entry(key).or_insert((0, 0));
                e.0 += 1;
                e.1 += b.size;
            }
        }
    }
    let p = path.to_str().unwrap();
    assert_eq!(
        entries(&json(&[
            "top", p, "--by", "size", "--limit", "1000", "--json"
        ])),
        sizes
    );
    assert_eq!(entries(&json(&["top", p, "--by", "heap", "--json"])), heaps);
}

fn crash_pdb_dir() -> Option<PathBuf> {
    let pdb = real("pdb/crash.pdb")?;
    Some(pdb.parent().unwrap().to_path_buf())
}

#[test]
fn functions_resolve_through_the_matching_pdb() {
    let Some(dir) = crash_pdb_dir() else { return };
    let name = "ust-crash-x86.dmp";
    let path = fixture(name);
    let facts = facts(name);
    let records = by_record(&facts);
    let mut want: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (i, (record, _)) in facts.heaps[0].stacks.iter().enumerate() {
        let (count, bytes) = records[record];
        let e = want
            .entry(CRASH_ALLOCATORS[i].to_string())
            .or_insert((0, 0));
        e.0 += count;
        e.1 += bytes;
    }
    let got = json(&[
        "top",
        path.to_str().unwrap(),
        "--by",
        "function",
        "--symbols",
        dir.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(entries(&got), want);
    // One note: ntdll's PDB is not in the folder.
    let notes = got["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].as_str().unwrap().starts_with(
            "symbols missing for 1 module, whose frames read module+offset: ntdll.dll (not in "
        ),
        "{notes:?}"
    );
    // The stack view names every frame, with its source line and the functions inlined at it.
    let txt = text(&[
        "top",
        path.to_str().unwrap(),
        "--by",
        "stack",
        "--symbols",
        dir.to_str().unwrap(),
    ]);
    let main = [
        r"        crash!operator new+0x12 [f:\dd\vctools\crt\vcstartup\src\heap\new_scalar.cpp @ 39]",
        r"        crash!std::basic_string<wchar_t,std::char_traits<wchar_t>,std::allocator<wchar_t> >::_Tidy_init [c:\program files (x86)\microsoft visual studio\2017\community\vc\tools\msvc\14.13.26128\include\xstring @ 3892] (inline)",
        r"        crash!std::basic_string<wchar_t,std::char_traits<wchar_t>,std::allocator<wchar_t> >::{ctor} [c:\program files (x86)\microsoft visual studio\2017\community\vc\tools\msvc\14.13.26128\include\xstring @ 2161] (inline)",
        r"        crash!main+0x55 [c:\projects\breakpad-tools\windows\crash\main.cpp @ 34]",
        r"        crash!__scrt_common_main [f:\dd\vctools\crt\vcstartup\src\startup\exe_common.inl @ 323] (inline)",
        r"        crash!mainCRTStartup+0x5 [f:\dd\vctools\crt\vcstartup\src\startup\exe_main.cpp @ 16]",
    ]
    .join("\n");
    assert!(txt.contains(&main), "{txt}");
    assert!(txt.contains("        crash!malloc+0x4\n"), "{txt}");
    // A user pattern can declare a function plumbing too.
    let got = json(&[
        "top",
        path.to_str().unwrap(),
        "--by",
        "function",
        "--symbols",
        dir.to_str().unwrap(),
        "--skip",
        "crash!google_breakpad::*",
        "--json",
    ]);
    assert!(entries(&got).keys().all(|k| k == "crash!main"), "{got}");
}

#[test]
fn a_pdb_with_another_age_is_refused_with_a_warning() {
    let Some(dir) = crash_pdb_dir() else { return };
    let path = fixture("ust-crash-wrong-age-x86.dmp");
    let got = json(&[
        "top",
        path.to_str().unwrap(),
        "--by",
        "function",
        "--symbols",
        dir.to_str().unwrap(),
        "--json",
    ]);
    let notes = got["notes"].to_string();
    assert!(notes.contains("crash.exe (") && notes.contains("crash.pdb: its GUID/age 3249D99D-0C40-4931-8610-F4E4FB0B6936/1 differ from the module's 3249D99D-0C40-4931-8610-F4E4FB0B6936/2"),
        "{notes}"
    );
    assert!(
        entries(&got).keys().all(|k| k.starts_with("crash+0x")),
        "{got}"
    );
}

#[test]
fn symbol_store_layout_through_nt_symbol_path() {
    let Some(dir) = crash_pdb_dir() else { return };
    let store =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("store-{}", std::process::id()));
    let sub = store
        .join("crash.pdb")
        .join("3249D99D0C40493186 10F4E4FB0B69361".replace(' ', ""));
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::copy(dir.join("crash.pdb"), sub.join("crash.pdb")).unwrap();
    let path = fixture("ust-crash-x86.dmp");
    let out = heapdiag()
        .args([
            "top",
            path.to_str().unwrap(),
            "--by",
            "function",
            "--json",
            "--offline",
        ])
        .env(
            "_NT_SYMBOL_PATH",
            format!("srv*{}*https://symbols.example/", store.display()),
        )
        .output()
        .unwrap();
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(entries(&got).contains_key("crash!main"), "{got}");
    assert!(
        got["notes"]
            .to_string()
            .contains("https://symbols.example: not asked (--offline)"),
        "{}",
        got["notes"]
    );
}

#[test]
fn without_ust_top_says_why_and_ranks_by_size() {
    let path = fixture("heap-win10-x64.dmp");
    let p = path.to_str().unwrap();
    let sizes = json(&["top", p, "--by", "size", "--json"]);
    assert!(entries(&sizes).len() > 5);
    for by in ["module", "function", "stack"] {
        let got = json(&["top", p, "--by", by, "--json"]);
        assert_eq!(got["by"], "size", "{by}");
        assert_eq!(entries(&got), entries(&sizes), "{by}");
        let note = got["notes"][0].as_str().unwrap();
        assert!(
            note.starts_with(&format!("the ranking is by size, not by {by}: "))
                && note.contains("+ust was off"),
            "{note}"
        );
        assert_eq!(got["traced_bytes"], 0);
    }
}

#[test]
fn block_and_blocks_carry_the_stack() {
    let name = "ust-crash-x86.dmp";
    let path = fixture(name);
    let p = path.to_str().unwrap();
    let facts = facts(name);
    let blocks = json(&["blocks", p, "--busy", "--json"]);
    let frames: BTreeMap<String, Vec<String>> = facts.heaps[0]
        .stacks
        .iter()
        .map(|(r, f)| (hex(*r), f.iter().map(|a| hex(*a)).collect()))
        .collect();
    for b in blocks.as_array().unwrap() {
        let stack: Vec<String> = b["stack"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        assert_eq!(&stack, &frames[b["trace"].as_str().unwrap()]);
    }
    let Some(dir) = crash_pdb_dir() else { return };
    let first = &facts.heaps[0]
        .blocks
        .iter()
        .find(|b| b.busy && !b.internal && b.trace == facts.heaps[0].stacks[0].0)
        .unwrap();
    let txt = text(&[
        "block",
        p,
        &hex(first.address),
        "--symbols",
        dir.to_str().unwrap(),
    ]);
    assert!(txt.contains("Allocation stack:"), "{txt}");
    assert!(
        txt.contains(r" crash!main+0x55 [c:\projects\breakpad-tools\windows\crash\main.cpp @ 34]"),
        "{txt}"
    );
}

#[test]
fn blocks_jsonl_is_the_json_array_one_object_per_line() {
    for name in [
        "sample-win10-x64.dmp",
        "segheap-ust-win10-x86.dmp",
        "pageheap-win10-x64.dmp",
    ] {
        let path = fixture(name);
        let p = path.to_str().unwrap();
        let array = json(&["blocks", p, "--json"]);
        let lines = text(&["blocks", p, "--format", "jsonl"]);
        let objects: Vec<serde_json::Value> = lines
            .lines()
            .map(|l| serde_json::from_str(l).expect("one object per line"))
            .collect();
        assert_eq!(&objects, array.as_array().unwrap(), "{name}");
        assert!(lines.ends_with("}\n"), "{name}");
    }
}

#[test]
fn folded_stacks_add_up_to_the_busy_bytes() {
    for name in [
        "sample-win10-x64.dmp",
        "ust-win10-x64.dmp",
        "segheap-ust-win10-x86.dmp",
    ] {
        let path = fixture(name);
        let p = path.to_str().unwrap();
        let out = write_temp(&format!("{name}.folded"), b"");
        let top = json(&[
            "top",
            p,
            "--by",
            "module",
            "--json",
            "--folded",
            out.to_str().unwrap(),
        ]);
        let text = std::fs::read_to_string(&out).unwrap();
        let mut sum = 0u64;
        for line in text.lines() {
            let (stack, value) = line.rsplit_once(' ').expect("`stack value`");
            assert!(!stack.is_empty() && !stack.contains('\n'), "{line}");
            sum += value.parse::<u64>().expect("a decimal value");
        }
        assert_eq!(sum, top["total_busy_bytes"].as_u64().unwrap(), "{name}");
        // Outermost first: no line starts with an allocator frame of ntdll.
        assert!(!text.lines().any(|l| l.starts_with("ntdll")), "{text}");
    }
}
