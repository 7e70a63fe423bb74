//! Bad input: every kind of damaged or wrong file gets a one-line error naming the file and the
//! problem, with the README's exit code; a seeded mutation test proves that thousands of damaged
//! dumps never make any view panic.

mod common;

use common::*;
use dumpwriter::fixtures;
use heapdiag::analysis::blocks::BlockFilter;
use heapdiag::analysis::roots::RootSet;
use heapdiag::analysis::top::{By, Sort};
use heapdiag::commands::{self, Ranking};
use heapdiag::dump::Dump;
use heapdiag::pdbfile::SymbolPath;
use heapdiag::regions::filter::RegionFilter;
use heapdiag::report::{render, Format, Render, Style};
use heapdiag::symsrv::SymbolOptions;
use predicates::str::contains;
use std::path::Path;

fn fails(args: &[&str], code: i32, message: &str) {
    let out = heapdiag().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(code), "{args:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(message), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn missing_file_directory_and_non_dumps() {
    fails(
        &["info", "/no/such/file.dmp"],
        3,
        "/no/such/file.dmp: no such file",
    );
    let dir = env!("CARGO_TARGET_TMPDIR");
    fails(&["address", dir], 3, "is a directory");
    let empty = write_temp("empty.dmp", b"");
    fails(
        &["info", empty.to_str().unwrap()],
        4,
        "empty file (0 bytes)",
    );
    let text_file = write_temp("notes.txt", b"this is not a dump at all, just some text");
    fails(
        &["info", text_file.to_str().unwrap()],
        4,
        "not a minidump: signature is 74 68 69 73",
    );
    let short = write_temp("short.dmp", b"MDMP\x93\xa7\0\0\x05\0\0\0");
    fails(
        &["info", short.to_str().unwrap()],
        4,
        "shorter than a minidump header",
    );
}

#[test]
fn damaged_headers_are_rejected_with_the_reason() {
    let (dump, _) = (fixtures::by_name("win7-x86.dmp").unwrap().build)();
    let good = dump.to_bytes();
    // Stream directory pointing past the end of the file.
    let mut b = good.clone();
    b[12..16].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    let p = write_temp("dir-past-eof.dmp", &b);
    fails(&["info", p.to_str().unwrap()], 4, "stream directory");
    // An absurd stream count.
    let mut b = good.clone();
    b[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    let p = write_temp("absurd-count.dmp", &b);
    fails(
        &["address", p.to_str().unwrap()],
        4,
        "past the end of the file",
    );
    // Truncated in the directory.
    let p = write_temp("cut-dir.dmp", &good[..40]);
    fails(
        &["info", p.to_str().unwrap()],
        4,
        "truncated or damaged header",
    );
}

#[test]
fn truncated_memory_is_reported_not_read_as_zeros() {
    let (dump, _) = (fixtures::by_name("sample-win10-x64.dmp").unwrap().build)();
    let good = dump.to_bytes();
    let cut = &good[..good.len() - 0x2_0000];
    let p = write_temp("truncated.dmp", cut);
    let info = json(&["info", p.to_str().unwrap(), "--json"]);
    let problems = info["problems"].to_string();
    assert!(
        problems.contains("past the end of the file (truncated dump)"),
        "{problems}"
    );
    // Still a full answer for what is there.
    json(&["address", p.to_str().unwrap(), "--json"]);
}

#[test]
fn stream_past_the_end_is_ignored_with_a_warning() {
    let (dump, _) = (fixtures::by_name("win7-x86.dmp").unwrap().build)();
    let mut b = dump.to_bytes();
    // Directory entry 0 is SystemInfo; point its RVA past the end.
    let dir = u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize;
    b[dir + 8..dir + 12].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let p = write_temp("sysinfo-past-eof.dmp", &b);
    heapdiag()
        .args(["info", p.to_str().unwrap()])
        .assert()
        .success()
        .stdout(contains("System:      unknown"));
    let info = json(&["info", p.to_str().unwrap(), "--json"]);
    assert!(
        info["problems"]
            .to_string()
            .contains("runs past the end of the file; it is ignored"),
        "{}",
        info["problems"]
    );
}

const EXTREMES: [u32; 6] = [0, u32::MAX, 0x7fff_ffff, 0x8000_0000, 0x1000, 0x10];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    let meta = b.len().min(0x1_0000);
    match rng.below(6) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(meta);
                b[i] ^= 1 << rng.below(8);
            }
        }
        1 => {
            let at = rng.below(meta / 4) * 4;
            let v = EXTREMES[rng.below(EXTREMES.len())];
            if at + 4 <= b.len() {
                b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
        2 => b.truncate(rng.below(b.len())),
        3 => {
            for _ in 0..1 + rng.below(32) {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
        }
        4 => {
            // Pointer-sized damage anywhere: list links, heap headers, PEB fields.
            for _ in 0..1 + rng.below(16) {
                let at = rng.below(b.len() / 8) * 8;
                let v = match rng.below(5) {
                    0 => 0,
                    1 => u64::MAX,
                    2 => rng.next(),
                    3 => u64::MAX - rng.below(0x2000) as u64,
                    _ => u64::from_le_bytes(b[at..at + 8].try_into().unwrap()).wrapping_add(8),
                };
                if at + 8 <= b.len() {
                    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
                }
            }
        }
        _ => {
            // Swap two 16-byte blocks of the metadata (descriptors, directory entries).
            let x = rng.below(meta / 16) * 16;
            let y = rng.below(meta / 16) * 16;
            if x + 16 <= b.len() && y + 16 <= b.len() && x != y {
                let tmp: Vec<u8> = b[x..x + 16].to_vec();
                b.copy_within(y..y + 16, x);
                b[y..y + 16].copy_from_slice(&tmp);
            }
        }
    }
    b
}

fn run_every_view(name: &str, bytes: Vec<u8>) {
    let Ok(dump) = Dump::from_bytes(Path::new(name), bytes) else {
        return;
    };
    let none = RegionFilter::default();
    let heap = RegionFilter::parse(&["Heap,Stack", "MEM_COMMIT"]).unwrap();
    let all_blocks = BlockFilter {
        internal: true,
        ..BlockFilter::default()
    };
    let symbols = SymbolPath::default();
    let ranking = |by| Ranking {
        by,
        sort: Sort::Bytes,
        limit: 20,
        skip: Vec::new(),
        symbols: SymbolPath::default(),
        folded: true,
    };
    every_format(&commands::info(&dump, true));
    every_format(&commands::address(&dump, false, &none));
    every_format(&commands::address(&dump, true, &heap));
    if let Ok(v) = commands::heaps(&dump, &symbols) {
        every_format(&v);
    }
    if let Ok(v) = commands::block(&dump, 0x1234_5678, &symbols) {
        every_format(&v);
    }
    if let Ok(v) = commands::heap_stat(&dump, None, (20, Sort::Count), &symbols) {
        every_format(&v);
    }
    if let Ok(v) = commands::blocks(&dump, all_blocks, &symbols) {
        every_format(&v);
    }
    for by in [By::Module, By::Function, By::Stack, By::Type] {
        if let Ok(v) = commands::top(&dump, &ranking(by), Some(&dump)) {
            every_format(&v);
        }
    }
    if let Ok(v) = commands::diff(&dump, &dump, &ranking(By::Stack), true) {
        every_format(&v);
    }
    let set = RootSet::Standard;
    if let Ok(v) = commands::leaks::leaks(&dump, &ranking(By::Stack), set, None) {
        every_format(&v);
        let probe = v
            .blocks
            .as_deref()
            .and_then(<[_]>::first)
            .map_or(0x1234_5678, |b| b.address.0 + 1);
        if let Ok(w) = commands::leaks::why(&dump, probe, &ranking(By::Stack), set) {
            every_format(&w);
        }
    }
    if let Ok(v) = commands::analyze(&dump, Some(&dump), &ranking(By::Stack)) {
        every_format(&v);
        heapdiag::report::html::write(&v, &mut std::io::sink()).unwrap();
    }
    // Damaged CodeView names go through the name checks and a folder lookup (offline: a symbol
    // server is on the path but never asked; nothing is written).
    let folder = std::env::temp_dir().join("heapdiag-bad-input-no-such-folder");
    let offline = SymbolPath::with_options(
        &[
            folder.display().to_string(),
            format!("srv*{}*http://127.0.0.1:9", folder.display()),
        ],
        SymbolOptions {
            offline: true,
            ..SymbolOptions::default()
        },
    );
    every_format(&commands::symbols(&dump, &offline));
}

/// Render `view` in every format (into nothing), the text in both number styles.
fn every_format<V: Render>(view: &V) {
    let windbg = Style {
        windbg: true,
        ..Style::default()
    };
    for f in [Format::Text, Format::Json, Format::Csv] {
        render(view, f, &Style::default(), &mut std::io::sink()).unwrap();
    }
    render(view, Format::Text, &windbg, &mut std::io::sink()).unwrap();
}

#[test]
fn thousands_of_mutated_dumps_never_panic() {
    let mut inputs: Vec<(String, Vec<u8>)> = fixtures::ALL
        .iter()
        .chain(fixtures::HEAPS)
        .chain(dumpwriter::symbol_fixtures::SYMBOLS)
        .map(|f| (f.name.to_string(), (f.build)().0.to_bytes()))
        .collect();
    for p in all_real() {
        inputs.push((p.display().to_string(), std::fs::read(&p).unwrap()));
    }
    let per_input = 150;
    let mut total = 0;
    for (k, (name, bytes)) in inputs.iter().enumerate() {
        let seed = 0x5eed_0000 + k as u64;
        let mut rng = Rng(seed);
        let started = std::time::Instant::now();
        for i in 0..per_input {
            let m = mutate(&mut rng, bytes);
            let r = std::panic::catch_unwind(|| run_every_view(name, m));
            assert!(r.is_ok(), "panic on {name}, seed {seed:#x}, mutation {i}");
            total += 1;
        }
        eprintln!("{name}: {:?}", started.elapsed());
    }
    eprintln!("{total} mutated dumps, no panic");
    assert!(total >= 3000, "only {total} inputs were mutated");
}
