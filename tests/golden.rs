//! Golden transcripts: every command, in every format it offers, on every synthetic fixture of
//! `crates/dumpwriter` and every real dump in `../shared/testdata/real` (skipped, with the reason
//! printed, when that folder is absent), plus the pairs `diff` compares and the command line's
//! errors and help. Each transcript is a file in `tests/golden/views/`: per run the command line,
//! its exit code, its standard output and its standard error.
//!
//! A change of output is either a regression or an intended fix. After checking the difference,
//! re-bless with
//!
//! ```sh
//! HEAPDIAG_BLESS=1 cargo test --test golden
//! ```
//!
//! which rewrites every transcript (and removes those of fixtures that no longer exist); commit
//! the rewritten files together with the change that explains them.
//!
//! Paths are written as `$FIXTURES/…` (the scratch folder the fixtures are written to), `$REAL/…`
//! (the shared real dumps), `$PDB` (`testdata/pdb`), `$REALPDB` (the shared `crash.pdb` folder)
//! and `$ROOT` (the project). Text outputs are kept whole up to 64 KiB; JSON and CSV outputs
//! (the same facts in another shape) whole up to 2 KiB: a longer one keeps its first and last
//! lines, its size and a digest of every byte, so that the committed transcripts stay small (about
//! 8 MB for 61 transcripts) while every byte is still checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// How much of an output a transcript keeps: whole up to `full` bytes, else the first `head` and
/// the last `tail` lines with the size and a digest of the whole.
struct Keep {
    full: usize,
    head: usize,
    tail: usize,
}

/// Text views are what a reviewer reads: kept whole unless huge.
const TEXT: Keep = Keep {
    full: 64 * 1024,
    head: 150,
    tail: 10,
};

/// JSON and CSV repeat the text views' facts in another shape: their start shows the shape, the
/// digest pins every byte.
const MACHINE: Keep = Keep {
    full: 2 * 1024,
    head: 30,
    tail: 5,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn views_dir() -> PathBuf {
    root().join("tests/golden/views")
}

fn real_dir() -> PathBuf {
    root().join("../shared/testdata/real")
}

fn blessing() -> bool {
    std::env::var_os("HEAPDIAG_BLESS").is_some_and(|v| v == "1")
}

/// Where the paths of this run are, for writing them as placeholders.
///
/// Every run starts in a stage folder holding one link per placeholder (`$FIXTURES` → the
/// scratch folder, `$PDB` → `testdata/pdb`, …) and is given the placeholder paths, so that what
/// heapdiag prints (and wraps at the terminal's width) is the same wherever the project is
/// checked out: a longer checkout path must not move a line break.
struct Places {
    fixtures: PathBuf,
    stage: PathBuf,
}

impl Places {
    /// The scratch folders of this process, and the stage's links to what they stand for.
    fn new() -> Self {
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let id = std::process::id();
        let places = Places {
            fixtures: tmp.join(format!("golden-{id}")),
            stage: tmp.join(format!("golden-stage-{id}")),
        };
        std::fs::create_dir_all(&places.fixtures).expect("scratch folder");
        std::fs::create_dir_all(&places.stage).expect("stage folder");
        #[cfg(unix)]
        for (target, name) in places.pairs() {
            let link = places.stage.join(name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(target, link).expect("stage link");
        }
        places
    }

    fn pdb(&self) -> String {
        root().join("testdata/pdb").display().to_string()
    }

    fn real_pdb(&self) -> String {
        real_dir().join("pdb").display().to_string()
    }

    /// Each absolute path and its placeholder, longest (innermost) first.
    fn pairs(&self) -> [(String, &'static str); 5] {
        [
            (self.real_pdb(), "$REALPDB"),
            (self.pdb(), "$PDB"),
            (real_dir().display().to_string(), "$REAL"),
            (self.fixtures.display().to_string(), "$FIXTURES"),
            (root().display().to_string(), "$ROOT"),
        ]
    }

    /// Replace the run's paths with placeholders.
    fn normalize(&self, s: &str) -> String {
        self.pairs()
            .iter()
            .fold(s.to_string(), |s, (path, name)| s.replace(path, name))
    }

    /// `args` as given to heapdiag: placeholder paths, which resolve from the stage (on systems
    /// without symbolic links, the absolute paths).
    fn staged(&self, args: &[String]) -> Vec<String> {
        if cfg!(unix) {
            args.iter().map(|a| self.normalize(a)).collect()
        } else {
            args.to_vec()
        }
    }

    /// Remove the scratch and stage folders.
    fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.fixtures);
        let _ = std::fs::remove_dir_all(&self.stage);
    }
}

/// 64-bit FNV-1a: a stable digest of an output too long to keep whole (the standard library's
/// hasher is not guaranteed stable across releases, and a cryptographic digest is not needed to
/// notice a changed byte).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// An output as the transcript keeps it.
fn keep(out: &str, k: &Keep) -> String {
    if out.len() <= k.full {
        return out.to_string();
    }
    let lines: Vec<&str> = out.lines().collect();
    let head = k.head.min(lines.len());
    let tail_from = lines.len().saturating_sub(k.tail).max(head);
    let mut s = String::new();
    for l in &lines[..head] {
        s.push_str(l);
        s.push('\n');
    }
    s.push_str(&format!(
        "[… {} lines, {} bytes in all, FNV-1a {:016x}; {} lines left out …]\n",
        lines.len(),
        out.len(),
        fnv1a(out.as_bytes()),
        tail_from - head
    ));
    for l in &lines[tail_from..] {
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// One finished run.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(places: &Places, args: &[String]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_heapdiag"))
        .args(places.staged(args))
        .current_dir(&places.stage)
        .env_remove("_NT_SYMBOL_PATH")
        .env_remove("HEAPDIAG_MEMSTATS")
        .env("COLUMNS", "100")
        .output()
        .expect("run heapdiag");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A transcript being written.
struct Transcript<'a> {
    places: &'a Places,
    text: String,
}

impl<'a> Transcript<'a> {
    fn new(places: &'a Places) -> Self {
        Transcript {
            places,
            text: String::new(),
        }
    }

    fn record(&mut self, args: &[String], r: &Run) {
        let p = self.places;
        let machine = args.iter().any(|a| a == "--json" || a == "--csv");
        let k = if machine { &MACHINE } else { &TEXT };
        self.text.push_str(&format!(
            "\n==== heapdiag {}\nexit {}\n",
            p.normalize(&args.join(" ")),
            r.code.map_or("signal".to_string(), |c| c.to_string())
        ));
        if !r.stdout.is_empty() {
            self.text.push_str("---- stdout\n");
            self.text.push_str(&keep(&p.normalize(&r.stdout), k));
            if !r.stdout.ends_with('\n') {
                self.text.push_str("\n[no newline at the end]\n");
            }
        }
        if !r.stderr.is_empty() {
            self.text.push_str("---- stderr\n");
            self.text.push_str(&keep(&p.normalize(&r.stderr), &TEXT));
        }
    }

    /// Run and record `args`.
    fn cmd(&mut self, args: &[&str]) -> Run {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let r = run(self.places, &args);
        self.record(&args, &r);
        r
    }

    /// Run `args` without and with `--symbols` (both PDB folders); the second run is written out
    /// only when its output differs.
    fn with_symbols(&mut self, args: &[&str]) {
        let plain = self.cmd(args);
        let mut sym: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (pdb, real_pdb) = (self.places.pdb(), self.places.real_pdb());
        sym.extend(["--symbols".into(), pdb, "--symbols".into(), real_pdb]);
        let r = run(self.places, &sym);
        if r.stdout == plain.stdout && r.stderr == plain.stderr && r.code == plain.code {
            self.text.push_str(&format!(
                "\n==== heapdiag {}\n(same as without --symbols)\n",
                self.places.normalize(&sym.join(" "))
            ));
        } else {
            self.record(&sym, &r);
        }
    }
}

/// Addresses from `blocks --internal --json` to look up with `block`: the first block's header,
/// inside a busy block in the middle, the last block's user address.
fn probe_addresses(blocks_json: &str) -> Vec<String> {
    let Ok(serde_json::Value::Array(v)) = serde_json::from_str(blocks_json) else {
        return Vec::new();
    };
    let get = |b: &serde_json::Value, k: &str| {
        b[k].as_str()
            .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
    };
    let mut out = Vec::new();
    if let Some(a) = v.first().and_then(|b| get(b, "entry")) {
        out.push(a);
    }
    let busy: Vec<&serde_json::Value> = v.iter().filter(|b| b["state"] == "busy").collect();
    if let Some(a) = busy.get(busy.len() / 2).and_then(|b| get(b, "address")) {
        out.push(a + 1);
    }
    if let Some(a) = v.last().and_then(|b| get(b, "address")) {
        out.push(a);
    }
    out.dedup();
    out.into_iter().map(|a| format!("{a:#x}")).collect()
}

/// The first walked heap of `heaps --json`.
fn first_heap(heaps_json: &str) -> Option<String> {
    let serde_json::Value::Array(v) = serde_json::from_str(heaps_json).ok()? else {
        return None;
    };
    v.iter()
        .find(|h| h["walked"] == true)
        .and_then(|h| h["address"].as_str().map(String::from))
}

/// The format options: text, JSON, CSV.
const FORMATS: [&[&str]; 3] = [&[], &["--json"], &["--csv"]];

/// `base` followed by `more`.
fn with<'a>(base: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(more).copied().collect()
}

/// Every single-dump command and format on `dump`.
fn dump_transcript(places: &Places, dump: &Path) -> String {
    let d = dump.to_str().expect("UTF-8 path");
    let mut t = Transcript::new(places);
    t.cmd(&["info", d]);
    t.cmd(&["info", d, "--modules"]);
    t.cmd(&["info", d, "--json"]);
    for regions in [&[][..], &["--regions"]] {
        for f in FORMATS {
            t.cmd(&with(&with(&["address", d], regions), f));
        }
    }
    t.cmd(&["address", d, "--windbg"]);
    let filter = ["-f", "Heap,Stack", "-f", "MEM_COMMIT"];
    t.cmd(&with(&["address", d, "--regions"], &filter));
    heap_commands(&mut t, d);
    block_commands(&mut t, d);
    for by in ["module", "function", "stack", "size", "heap"] {
        for f in FORMATS {
            t.with_symbols(&with(&["top", d, "--by", by], f));
        }
    }
    t.cmd(&["top", d, "--by", "stack", "--limit", "1"]);
    t.cmd(&["top", d, "--by", "size", "--sort", "count", "--limit", "5"]);
    t.cmd(&["top", d, "--by", "stack", "--sort", "count", "--limit", "3"]);
    t.cmd(&["top", d, "--by", "stack", "--windbg", "--limit", "3"]);
    let skip = ["--limit", "2", "--skip", "*!main"];
    t.with_symbols(&with(&["top", d, "--by", "function"], &skip));
    t.with_symbols(&["diff", d, d]);
    t.with_symbols(&["symbols", d]);
    t.with_symbols(&["symbols", d, "--json"]);
    leak_commands(&mut t, d);
    t.text
}

/// `leaks` in every format, by size and by type, with more roots, and `--why` on an unreachable
/// and a reachable block; `top --by type`.
fn leak_commands(t: &mut Transcript<'_>, d: &str) {
    for f in FORMATS {
        t.with_symbols(&with(&["leaks", d], f));
        t.with_symbols(&with(&["top", d, "--by", "type"], f));
    }
    t.cmd(&["leaks", d, "--by", "size", "--limit", "3"]);
    t.with_symbols(&["leaks", d, "--by", "type"]);
    let places = t.places;
    t.cmd(&["leaks", d, "--roots", "more", "--json"]);
    let json = |args: &[&str]| -> serde_json::Value {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        serde_json::from_str(&run(places, &args).stdout).unwrap_or(serde_json::Value::Null)
    };
    let unreachable: Vec<String> = json(&["leaks", d, "--json"])["blocks"]
        .as_array()
        .map(|b| {
            b.iter()
                .filter_map(|b| b["address"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let busy: Vec<String> = json(&["blocks", d, "--busy", "--json"])
        .as_array()
        .map(|b| {
            b.iter()
                .filter_map(|b| b["address"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let reachable = busy.iter().find(|a| !unreachable.contains(a));
    for a in unreachable.first().into_iter().chain(reachable) {
        t.with_symbols(&["leaks", d, "--why", a]);
        t.cmd(&["leaks", d, "--why", a, "--json"]);
    }
}

/// `heaps` and `heaps --stat` in every format, one heap's histogram.
fn heap_commands(t: &mut Transcript<'_>, d: &str) {
    for f in FORMATS {
        t.with_symbols(&with(&["heaps", d], f));
        t.with_symbols(&with(&["heaps", d, "--stat"], f));
    }
    t.cmd(&["heaps", d, "--stat", "--limit", "3"]);
    t.cmd(&["heaps", d, "--stat", "--sort", "count", "--limit", "5"]);
    t.cmd(&["heaps", d, "--stat", "--windbg", "--limit", "5"]);
    let heaps_json = run(t.places, &["heaps".into(), d.into(), "--json".into()]).stdout;
    if let Some(h) = first_heap(&heaps_json) {
        for f in FORMATS {
            t.cmd(&with(
                &["heaps", d, "--stat", "--heap", &h, "--limit", "5"],
                f,
            ));
        }
    }
}

/// `blocks` in every format and with filters, `block` on a few addresses.
fn block_commands(t: &mut Transcript<'_>, d: &str) {
    for f in FORMATS {
        t.with_symbols(&with(&["blocks", d], f));
    }
    t.cmd(&["blocks", d, "--internal"]);
    t.cmd(&["blocks", d, "--free", "--csv"]);
    t.cmd(&["blocks", d, "--format", "jsonl"]);
    let lfh = ["--front-end", "lfh", "--size-range", "0x10", "0x100"];
    t.cmd(&with(&["blocks", d, "--busy"], &lfh));
    let heaps_json = run(t.places, &["heaps".into(), d.into(), "--json".into()]).stdout;
    if let Some(h) = first_heap(&heaps_json) {
        t.cmd(&["blocks", d, "--heap", &h, "--size", "0x40", "--internal"]);
    }
    let all = run(
        t.places,
        &["blocks", d, "--internal", "--json"].map(String::from),
    );
    let probes = probe_addresses(&all.stdout);
    for a in probes.iter().map(String::as_str).chain(["0x10"]) {
        t.with_symbols(&["block", d, a]);
        t.with_symbols(&["block", d, a, "--json"]);
    }
    if let Some(a) = probes.get(1) {
        t.cmd(&["block", d, a, "--windbg"]);
    }
}

/// `diff` on pairs: the known-growth pair in every order, key and format, the CI gate, two runs
/// of one program, and dumps that cannot be compared.
fn diff_transcript(places: &Places, fixture: &(dyn Fn(&str) -> Option<String> + Sync)) -> String {
    let mut t = Transcript::new(places);
    let (Some(a), Some(b)) = (fixture("diff-before.dmp"), fixture("diff-after.dmp")) else {
        return t.text;
    };
    for by in ["stack", "module", "function", "size", "heap"] {
        for format in [&[][..], &["--json"], &["--csv"]] {
            let args: Vec<&str> = ["diff", &a, &b, "--by", by]
                .into_iter()
                .chain(format.iter().copied())
                .collect();
            t.with_symbols(&args);
        }
    }
    t.cmd(&["diff", &b, &a]);
    t.cmd(&["diff", &b, &a, "--json"]);
    t.cmd(&["analyze", &b, "--baseline", &a]);
    t.cmd(&["diff", &a, &b, "--limit", "1"]);
    t.cmd(&["diff", &a, &b, "--fail-over", "1"]);
    t.cmd(&["diff", &a, &b, "--fail-over", "0x100000"]);
    t.cmd(&["diff", &a, &b, "--fail-over", "1", "--per-stack", "--json"]);
    t.cmd(&["top", &b, "--baseline", &a]);
    t.cmd(&["leaks", &b, "--baseline", &a]);
    t.cmd(&["leaks", &b, "--baseline", &a, "--json"]);
    t.cmd(&["diff", &a, &b, "--fail-over", "0x100000", "--per-stack"]);
    t.cmd(&[
        "diff",
        &a,
        &b,
        "--by",
        "size",
        "--fail-over",
        "1",
        "--per-stack",
    ]);
    t.cmd(&["diff", &a, &b, "--windbg"]);
    if let (Some(x), Some(y)) = (fixture("leak-before.dmp"), fixture("leak-after.dmp")) {
        for sort in ["bytes", "count", "growth"] {
            t.cmd(&["diff", &x, &y, "--sort", sort]);
        }
        t.cmd(&["diff", &x, &y, "--sort", "count", "--json"]);
        t.cmd(&["diff", &x, &y, "--by", "size", "--sort", "count"]);
        t.cmd(&["diff", &x, &y, "--by", "module"]);
        t.cmd(&["diff", &x, &y, "--sort", "count", "--windbg"]);
    }
    let pairs = [
        ("ust-win10-x64.dmp", "ust-win11-x64.dmp"),
        ("heap-win10-x64.dmp", "ust-win10-x64.dmp"),
        ("ust-win10-x64.dmp", "heap-win10-x64.dmp"),
        ("heap-win7-x86.dmp", "heap-win10-x64.dmp"),
        ("sample-win10-x64.dmp", "diff-after.dmp"),
        ("ust-crash-x86.dmp", "ust-crash-wrong-age-x86.dmp"),
    ];
    for (x, y) in pairs {
        if let (Some(x), Some(y)) = (fixture(x), fixture(y)) {
            t.with_symbols(&["diff", &x, &y]);
            t.cmd(&["diff", &x, &y, "--by", "function", "--json"]);
        }
    }
    t.text
}

/// The command line itself: help texts, usage errors, files that cannot be read.
fn cli_transcript(places: &Places, fixture: &(dyn Fn(&str) -> Option<String> + Sync)) -> String {
    let mut t = Transcript::new(places);
    t.cmd(&["--help"]);
    for c in [
        "analyze", "info", "address", "heaps", "blocks", "block", "top", "diff", "symbols", "leaks",
    ] {
        t.cmd(&[c, "--help"]);
    }
    let Some(d) = fixture("sample-win10-x64.dmp") else {
        return t.text;
    };
    let d = d.as_str();
    let symbols = root().join("testdata/sample-symbols").display().to_string();
    t.cmd(&["analyze", d, "--symbols", &symbols, "--offline"]);
    let usage: &[&[&str]] = &[
        &["address", d, "-f", "Heap"],
        &["address", d, "--regions", "-f", "Nonsense"],
        &["address", d, "--json", "--csv"],
        &["heaps", d, "--heap", "0x1"],
        &["heaps", d, "--stat", "--heap", "0x1"],
        &["heaps", d, "--stat", "--heap", "zz"],
        &["blocks", d, "--busy", "--free"],
        &["blocks", d, "--heap", "0x1"],
        &["blocks", d, "--size", "twelve"],
        &["blocks", d, "--front-end", "nope"],
        &["blocks", d, "--size-range", "100", "10"],
        &["address", d, "--regions", "-f", ""],
        &["top", d, "--by", "color"],
        &["top", d, "--sort", "growth"],
        &["heaps", d, "--sort", "count"],
        &["top", d, "--limit", "-1"],
        &["top", d, "--symbol-timeout", "0"],
        &["diff", d, d, "--per-stack"],
        &["block", d],
        &["leaks", d, "--roots", "all"],
        &["leaks", d, "--why", "zz"],
        &["leaks", d, "--why", "0x10"],
        &["leaks", d, "--why", "0x10", "--baseline", d],
        &["info", d, "--csv"],
        &["info"],
        &["frobnicate"],
    ];
    for args in usage {
        t.cmd(args);
    }
    let missing = format!("{}/no-such-file.dmp", places.fixtures.display());
    let folder = places.fixtures.display().to_string();
    let not_dump = root().join("Cargo.toml").display().to_string();
    t.cmd(&["info", &missing]);
    t.cmd(&["address", &folder]);
    t.cmd(&["heaps", &not_dump]);
    t.cmd(&["diff", d, &missing]);
    // Questions the dump cannot answer: one line on standard error, exit code 5.
    if let Some(mini) = fixture("win11-x64-minidump.dmp") {
        t.cmd(&["heaps", &mini]);
        t.cmd(&["top", &mini, "--by", "stack"]);
        t.cmd(&["diff", &mini, &mini, "--fail-over", "1"]);
    }
    t.cmd(&["block", d, "0x10"]);
    // Symbol paths that cannot be used are named.
    t.cmd(&[
        "top",
        d,
        "--by",
        "stack",
        "--symbols",
        &missing,
        "--symbols",
        &not_dump,
    ]);
    t.text
}

/// Compare with (or, when blessing, write) the transcript `name`. Without the shared folder
/// (`../shared`: the real dumps and crash.pdb), the runs that name it cannot be reproduced: they
/// are left out of both sides.
fn check(name: &str, got: &str, failures: &Mutex<Vec<String>>) {
    let path = views_dir().join(name);
    let shared = real_dir().exists();
    if blessing() {
        assert!(
            shared,
            "bless the transcripts where ../shared is present: they hold runs with its crash.pdb"
        );
        std::fs::write(&path, got).expect("write golden transcript");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    let (want, got) = if shared {
        (want, got.to_string())
    } else {
        (without_shared(&want), without_shared(got))
    };
    if want != got {
        failures.lock().unwrap().push(describe(name, &want, &got));
    }
}

/// A transcript without the runs whose command names the shared folder.
fn without_shared(transcript: &str) -> String {
    let mut out = String::new();
    let mut keep = true;
    for line in transcript.split_inclusive('\n') {
        if let Some(command) = line.strip_prefix("==== ") {
            keep = !command.contains("$REALPDB") && !command.contains("$REAL/");
        }
        if keep {
            out.push_str(line);
        }
    }
    out
}

/// Where two transcripts first differ, with the command that printed it.
fn describe(name: &str, want: &str, got: &str) -> String {
    if want.is_empty() {
        return format!("{name}: no golden transcript yet");
    }
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let i = w.iter().zip(&g).take_while(|(a, b)| a == b).count();
    let command = g[..i.min(g.len())]
        .iter()
        .rev()
        .find(|l| l.starts_with("==== "))
        .copied()
        .unwrap_or("");
    format!(
        "{name}, line {}, in `{}`:\n  want: {}\n  got:  {}",
        i + 1,
        command.trim_start_matches("==== "),
        w.get(i).copied().unwrap_or("(end of file)"),
        g.get(i).copied().unwrap_or("(end of file)")
    )
}

/// Run `jobs` on the available cores.
fn parallel(jobs: Vec<Box<dyn Fn() + Send + Sync + '_>>) {
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                job();
            });
        }
    });
}

#[test]
fn every_view_of_every_dump_is_golden() {
    let places = Places::new();
    std::fs::create_dir_all(views_dir()).expect("golden folder");
    // The hostile PDB names too: every view shows names from the dump with control characters
    // escaped (tests/symbols.rs checks what is read and written).
    let fixtures: Vec<&dumpwriter::fixtures::Fixture> = dumpwriter::fixtures::ALL
        .iter()
        .chain(dumpwriter::fixtures::HEAPS)
        .chain(dumpwriter::symbol_fixtures::SYMBOLS)
        .collect();
    let mut paths: BTreeMap<String, PathBuf> = BTreeMap::new();
    for f in &fixtures {
        let p = places.fixtures.join(f.name);
        std::fs::write(&p, (f.build)().0.to_bytes()).expect("write fixture");
        paths.insert(f.name.to_string(), p);
    }
    let fixture = |n: &str| paths.get(n).map(|p| p.display().to_string());
    let mut expected: Vec<String> = Vec::new();
    let failures = Mutex::new(Vec::new());
    let mut jobs: Vec<Box<dyn Fn() + Send + Sync + '_>> = Vec::new();
    for (name, path) in &paths {
        let file = format!("{}.txt", name.trim_end_matches(".dmp"));
        expected.push(file.clone());
        let (places, failures) = (&places, &failures);
        jobs.push(Box::new(move || {
            check(&file, &dump_transcript(places, path), failures)
        }));
    }
    match std::fs::read_dir(real_dir()) {
        Ok(rd) => {
            let mut real: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "dmp"))
                .collect();
            real.sort();
            for path in real {
                let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
                let file = format!("real-{stem}.txt");
                expected.push(file.clone());
                let (places, failures) = (&places, &failures);
                jobs.push(Box::new(move || {
                    check(&file, &dump_transcript(places, &path), failures)
                }));
            }
        }
        Err(_) => eprintln!(
            "skipping the real dumps: {} is absent (the shared test data folder is not here)",
            real_dir().display()
        ),
    }
    expected.extend(["diff.txt".to_string(), "cli.txt".to_string()]);
    let (fixture, places_ref, failures_ref) = (&fixture, &places, &failures);
    jobs.push(Box::new(move || {
        check(
            "diff.txt",
            &diff_transcript(places_ref, fixture),
            failures_ref,
        )
    }));
    jobs.push(Box::new(move || {
        check(
            "cli.txt",
            &cli_transcript(places_ref, fixture),
            failures_ref,
        )
    }));
    parallel(jobs);
    // Transcripts of fixtures that no longer exist (real ones only when their folder is here).
    let real_here = real_dir().exists();
    for e in std::fs::read_dir(views_dir())
        .expect("golden folder")
        .flatten()
    {
        let n = e.file_name().to_string_lossy().into_owned();
        if expected.contains(&n) || (n.starts_with("real-") && !real_here) {
            continue;
        }
        if blessing() {
            std::fs::remove_file(e.path()).expect("remove a stale transcript");
        } else {
            failures.lock().unwrap().push(format!(
                "{n}: no fixture or dump has this transcript any more"
            ));
        }
    }
    places.remove();
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    assert!(
        failures.is_empty(),
        "{} golden transcripts differ (check the change, then re-bless with \
         `HEAPDIAG_BLESS=1 cargo test --test golden`):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
