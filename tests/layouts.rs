//! The NT heap layout tables (`src/layout/nt_heap/*.txt`) against WinDbg's `dt` dumps in
//! `../shared/docs/layouts` (skipped, with the reason printed, when that folder is absent), and
//! the PDB path giving the same form.

use heapdiag::layout::nt_heap::{self, NtFamily, NtHeapLayout, NtTable, SIZEOF};
use heapdiag::layout::pdb;
use std::path::PathBuf;

/// The `dt` dumps there are, and the table each describes: `Win10x64_*` are of a Windows 10
/// 1607/1703 ntdll (`_HEAP` has StackTraceInitVar but no CommitLimitData; reference §1, source
/// RAD), `Win7x86_*` of Windows 7 SP1 x86.
const DUMPS: [(&str, NtFamily, u32); 2] = [
    ("Win10x64", NtFamily::Win10v1607, 64),
    ("Win7x86", NtFamily::Win7, 32),
];

fn layouts_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/docs/layouts");
    if dir.exists() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: {} is absent (the shared docs folder is not here)",
            dir.display()
        );
        None
    }
}

/// (offset, member) of every line of a `dt` dump (`   +0x018 SegmentListEntry : _LIST_ENTRY`).
fn dt_members(text: &str) -> Vec<(u64, String)> {
    text.lines()
        .filter_map(|l| {
            let (offset, rest) = l.trim().strip_prefix("+0x")?.split_once(' ')?;
            let member = rest.split(':').next()?.trim();
            Some((u64::from_str_radix(offset, 16).ok()?, member.to_string()))
        })
        .collect()
}

#[test]
fn tables_agree_with_the_dt_dumps() {
    let Some(dir) = layouts_dir() else { return };
    let (mut checked, mut no_dump) = (0, Vec::new());
    for (prefix, family, bits) in DUMPS {
        let table = nt_heap::tables()
            .iter()
            .find(|t| t.family == family && t.bits == bits)
            .expect("a built-in table");
        for r in table.rows.iter().filter(|r| r.member != SIZEOF) {
            let file = dir.join(format!(
                "{prefix}_{}.txt",
                r.structure.trim_start_matches('_')
            ));
            let Ok(text) = std::fs::read_to_string(&file) else {
                no_dump.push(format!("{prefix} {}.{}", r.structure, r.member));
                continue;
            };
            assert!(
                dt_members(&text).contains(&(r.offset, r.member.clone())),
                "{} {bits}-bit: {}.{} at {:#x} is not what {} says",
                family.key(),
                r.structure,
                r.member,
                r.offset,
                file.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} rows checked");
    let unchecked: Vec<String> = nt_heap::tables()
        .iter()
        .filter(|t| !DUMPS.iter().any(|d| d.1 == t.family && d.2 == t.bits))
        .map(|t| format!("{}-{}", t.family.key(), t.bits))
        .collect();
    eprintln!(
        "{checked} rows checked against dt dumps; no dt dump for the tables {} nor for the rows \
         {} (those are checked by the fixtures' walks only)",
        unchecked.join(", "),
        no_dump.join(", ")
    );
}

#[test]
fn every_table_gives_every_field_its_family_uses() {
    for t in nt_heap::tables() {
        let mut missing = nt_heap::missing(&t.rows);
        // The old LFH has no encoded offsets or busy bitmap; the new one keeps no first-chunk
        // offset (it is encoded in the user block).
        if t.family.old_lfh() {
            missing.retain(|m| !m.contains("EncodedOffsets") && !m.contains("BusyBitmap"));
        } else {
            missing.retain(|m| m != "_HEAP_USERDATA_HEADER.sizeof");
        }
        assert!(
            missing.is_empty(),
            "{}-{}: {missing:?}",
            t.family.key(),
            t.bits
        );
    }
}

#[test]
fn latest_table_not_newer_than_the_version() {
    for (v, want) in [
        ((5, 1, 2600), NtFamily::Win7),
        ((6, 1, 7601), NtFamily::Win7),
        ((6, 2, 9200), NtFamily::Win8),
        ((6, 3, 9600), NtFamily::Win81),
        ((10, 0, 10586), NtFamily::Win81),
        ((10, 0, 14393), NtFamily::Win10v1607),
        ((10, 0, 17134), NtFamily::Win10v1607),
        ((10, 0, 17763), NtFamily::Win10v1809),
        ((10, 0, 26100), NtFamily::Win10v1809),
    ] {
        assert_eq!(NtFamily::for_version(v.0, v.1, v.2), want, "{v:?}");
    }
}

#[test]
fn a_pdb_gives_a_table_in_the_same_form() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/pdb/ntdll.pdb"
    ))
    .expect("the stand-in ntdll.pdb is bundled");
    let base = NtHeapLayout::new(NtFamily::Win10v1809, 64);
    let from_pdb = pdb::nt_layout(&bytes, base).unwrap();
    // What the maintainer command writes, read back as a built-in table would be.
    let mut t = NtTable::parse("family win10-1809\nbits 64\nsince 10.0.26100\n").unwrap();
    t.rows = pdb::nt_rows(&bytes).unwrap();
    let read_back = NtTable::parse(&t.write(&["a comment".into()])).unwrap();
    assert_eq!(read_back.rows, t.rows);
    let mut l = base;
    l.apply(&read_back.rows);
    assert_eq!(format!("{l:?}"), format!("{:?}", from_pdb.layout));
    assert_eq!(pdb::pdb_bits(&bytes), Some(64));
    // The stand-in ntdll's _HEAP moved its front end (why the fixture needs its PDB).
    assert_eq!((l.front_end_heap, l.front_end_heap_type), (0x1a8, 0x1b2));
}

#[test]
fn bad_tables_are_refused_with_the_line() {
    let e = NtTable::parse("family win99\nbits 64\nsince 10.0.1\n").unwrap_err();
    assert!(e.contains("line 1"), "{e}");
    let e = NtTable::parse("family win7\nbits 64\nsince 6.1.0\n_HEAP Flags seventy\n").unwrap_err();
    assert!(e.contains("line 4"), "{e}");
    assert!(NtTable::parse("bits 64\nsince 6.1.0\n").is_err());
}
