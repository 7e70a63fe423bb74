//! Type labels (`top --by type`, `leaks --by type`, `block`) on fixtures with a real DLL's vtables,
//! RTTI and PDB (`dumpwriter::leak_fixtures::types_fixture`): exact counts per class.

mod common;

use common::{fixture, hex, json, text};
use dumpwriter::leak_fixtures::{TYPES_COUNTS, TYPES_COUNTS_PDB};
use std::path::PathBuf;

fn pdb_folder() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/pdb")
        .display()
        .to_string()
}

/// `(label, count)` of a ranking's entries, most blocks first, then by name.
fn counts(v: &serde_json::Value, list: &str) -> Vec<(String, u64)> {
    let mut c: Vec<(String, u64)> = v[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["key"].as_str().unwrap().to_string(),
                e["count"].as_u64().unwrap(),
            )
        })
        .collect();
    c.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    c
}

fn want(table: &[(&str, u64)]) -> Vec<(String, u64)> {
    let mut w: Vec<(String, u64)> = table.iter().map(|(k, n)| (k.to_string(), *n)).collect();
    w.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    w
}

#[test]
fn classes_are_counted_from_rtti_and_from_the_pdb() {
    for name in ["types-win10-x64.dmp", "types-win10-x86.dmp"] {
        let d = fixture(name);
        let d = d.to_str().unwrap();
        let pdb = pdb_folder();
        let top = json(&["top", d, "--by", "type", "--json"]);
        assert_eq!(top["by"], "type");
        assert_eq!(counts(&top, "entries"), want(TYPES_COUNTS), "{name}");
        let top = json(&["top", d, "--by", "type", "--symbols", &pdb, "--json"]);
        assert_eq!(counts(&top, "entries"), want(TYPES_COUNTS_PDB), "{name}");
        // Nothing points to any of them: leaks groups the same blocks.
        let leaks = json(&["leaks", d, "--by", "type", "--symbols", &pdb, "--json"]);
        assert_eq!(counts(&leaks, "groups"), want(TYPES_COUNTS_PDB), "{name}");
        let typed = leaks["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "Widget")
            .count();
        assert_eq!(typed, 5);
    }
}

#[test]
fn block_prints_the_label() {
    let name = "types-win10-x64.dmp";
    let objects = common::facts(name).objects;
    let d = fixture(name);
    let d = d.to_str().unwrap();
    // Object 5 is the first app::Gadget, 13 the first NoRtti, 15 a UTF-16 string.
    let t = text(&["block", d, &hex(objects[5] + 4)]);
    assert!(t.contains("    Type        app::Gadget"), "{t}");
    let v = json(&["block", d, &hex(objects[15]), "--json"]);
    assert_eq!(v["type"], "UTF-16 string");
    let v = json(&["block", d, &hex(objects[13]), "--json"]);
    assert!(v.get("type").is_none(), "{v}");
    let v = json(&[
        "block",
        d,
        &hex(objects[13]),
        "--symbols",
        &pdb_folder(),
        "--json",
    ]);
    assert_eq!(v["type"], "NoRtti");
    let why = json(&["leaks", d, "--why", &hex(objects[0]), "--json"]);
    assert_eq!(why["block"]["type"], "Widget");
}

/// `analyze` ranks by type as `top --by type` does.
#[test]
fn analyze_counts_the_classes() {
    let d = fixture("types-win10-x64.dmp");
    let d = d.to_str().unwrap();
    let pdb = pdb_folder();
    let v = json(&["analyze", d, "--symbols", &pdb, "--json"]);
    assert_eq!(counts(&v["types"], "entries"), want(TYPES_COUNTS_PDB));
    let summary = text(&["analyze", d, "--symbols", &pdb]);
    assert!(
        summary.contains("Top types (what the blocks hold):"),
        "{summary}"
    );
    assert!(summary.contains("Widget"), "{summary}");
}
