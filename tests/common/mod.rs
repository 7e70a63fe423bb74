//! Shared helpers for the integration tests: fixtures written by the project's dump writer, the
//! real dumps in `../shared/testdata/real` (skipped with a printed reason when absent), and running
//! the binary.
#![allow(dead_code)]

use assert_cmd::Command;
use dumpwriter::fixtures;
use dumpwriter::process::Facts;
use std::path::PathBuf;

/// Write the named fixture into the test scratch folder and return its path.
pub fn fixture(name: &str) -> PathBuf {
    let f = fixtures::by_name(name).unwrap_or_else(|| panic!("no fixture {name}"));
    let (dump, _) = (f.build)();
    write_temp(name, &dump.to_bytes())
}

/// The facts (what was built) of the named fixture.
pub fn facts(name: &str) -> Facts {
    let f = fixtures::by_name(name).unwrap_or_else(|| panic!("no fixture {name}"));
    (f.build)().1
}

/// Write bytes to a scratch file named `name` (unique per test binary and thread).
pub fn write_temp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write scratch file");
    path
}

/// A real dump from `../shared/testdata/real`, or `None` (with the reason printed) when the
/// shared folder is not there.
pub fn real(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/testdata/real")
        .join(name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "skipping: {} is absent (the shared test data folder is not here)",
            p.display()
        );
        None
    }
}

/// Every real dump present.
pub fn all_real() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/real");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        eprintln!(
            "skipping: {} is absent (the shared test data folder is not here)",
            dir.display()
        );
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "dmp"))
        .collect();
    v.sort();
    v
}

/// The heapdiag binary, with no symbol path and no proxy from the environment (tests that use a
/// symbol path set it; nothing leaves the machine).
pub fn heapdiag() -> Command {
    let mut c = Command::cargo_bin("heapdiag").expect("binary built");
    for v in [
        "_NT_SYMBOL_PATH",
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        c.env_remove(v);
    }
    c
}

/// Run heapdiag with `args`, expect success, parse stdout as JSON.
pub fn json(args: &[&str]) -> serde_json::Value {
    let out = heapdiag().args(args).output().expect("run heapdiag");
    assert!(
        out.status.success(),
        "heapdiag {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

/// Run heapdiag with `args`, expect success, return stdout.
pub fn text(args: &[&str]) -> String {
    let out = heapdiag().args(args).output().expect("run heapdiag");
    assert!(
        out.status.success(),
        "heapdiag {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// `"0x…"` as heapdiag prints addresses.
pub fn hex(v: u64) -> String {
    format!("{v:#x}")
}

/// The answer (`yes`, `partly`, `no`) of `info --json` to the capability `key`.
pub fn answer(v: &serde_json::Value, key: &str) -> String {
    v["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == key)
        .map(|c| c["answer"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The frame addresses (`"0x…"`) of a `top --json` entry, innermost first.
pub fn frame_addresses(entry: &serde_json::Value) -> Vec<String> {
    entry["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .map(|f| f["address"].as_str().expect("address").to_string())
        .collect()
}

/// xorshift64*: a small deterministic generator, so that a seeded test's failing case can be
/// replayed from its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}
