//! `heapdiag analyze`: the terminal summary and the HTML report name the constructed leak first
//! (with its stack, function names, bytes and growth), and the report works in a real browser:
//! headless Chromium renders it, its tables sort and filter, its flamegraphs are drawn, and it logs
//! nothing to the console. `.ci/run` installs Debian's chromium when it is missing; without it the
//! browser test is skipped with the reason printed.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sample-win10-x64.dmp");
const SAMPLE_SYMBOLS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sample-symbols");

/// Run `analyze` with `args` plus `--html FILE`; the summary and the page.
fn analyze(name: &str, args: &[&str]) -> (String, String, PathBuf) {
    let html = write_temp(&format!("{name}.html"), b"");
    let mut all: Vec<&str> = vec!["analyze"];
    all.extend_from_slice(args);
    all.extend(["--html", html.to_str().unwrap(), "--offline"]);
    let summary = text(&all);
    let page = std::fs::read_to_string(&html).expect("the report is written");
    (summary, page, html)
}

#[test]
fn the_sample_tells_its_leak_first() {
    let (summary, page, _) = analyze("sample", &[SAMPLE, "--symbols", SAMPLE_SYMBOLS]);
    // The leak: RequestLog::Append keeps every entry (testdata/sample-symbols/leaky.cpp).
    let first_function = summary
        .lines()
        .skip_while(|l| !l.starts_with("Top functions"))
        .nth(1)
        .unwrap_or_default();
    assert!(
        first_function.contains("leaky!RequestLog::Append") && first_function.contains("517.7 kB"),
        "{summary}"
    );
    assert!(summary.contains("leaky!RequestLog::Append+0x10 [C:\\src\\leaky\\leaky.cpp @ 17]"));
    assert!(page.contains("The largest allocating function is leaky!RequestLog::Append"));
    assert!(page.contains("leaky!Session::Log+0xc [C:\\src\\leaky\\leaky.cpp @ 26]"));
    // The first leak suspect is the same function, with its evidence.
    let first_suspect = summary
        .lines()
        .skip_while(|l| !l.starts_with("Leak suspects"))
        .nth(1)
        .unwrap_or_default();
    assert!(
        first_suspect.starts_with("  1. leaky!RequestLog::Append+0x10"),
        "{summary}"
    );
    assert!(page.contains("The first leak suspect is leaky!RequestLog::Append+0x10"));
    assert!(page.contains("72.6% of the outstanding bytes (7 blocks, 517.7 kB)"));
    // Self-contained: no scripts, styles, fonts or frames from elsewhere.
    for needle in ["src=\"http", "href=\"http", "<link", "@import", "url(http"] {
        assert!(!page.contains(needle), "the report loads {needle}");
    }
}

#[test]
fn a_leak_pair_leads_with_the_stack_that_grew() {
    let (before, after) = (fixture("diff-before.dmp"), fixture("diff-after.dmp"));
    let (summary, page, _) = analyze(
        "pair",
        &[
            after.to_str().unwrap(),
            "--baseline",
            before.to_str().unwrap(),
        ],
    );
    // diff-after.dmp adds 5 blocks of 0x200 bytes from plugin.dll+0x1500 (the constructed leak).
    let first_growth = summary
        .lines()
        .skip_while(|l| !l.starts_with("Growth since"))
        .nth(1)
        .unwrap_or_default();
    assert!(
        first_growth.contains("+2.5 kB") && first_growth.contains("plugin+0x1500"),
        "{summary}"
    );
    assert!(page.contains("Differential flamegraph"));
    assert!(page.contains("the most growth is stack"));
    // The stack that grew is the first suspect, its growth part of the evidence.
    assert!(
        page.contains("The first leak suspect is plugin+0x1500"),
        "{summary}"
    );
    assert!(page.contains("+5 blocks, +2.5 kB since the baseline"));
}

/// Debian's chromium, or the reason it is not used.
fn chromium() -> Result<PathBuf, String> {
    let candidates = [
        std::env::var("CHROMIUM").ok(),
        Some("/usr/bin/chromium".into()),
        Some("/usr/bin/chromium-browser".into()),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| "no chromium here (.ci/run installs Debian's chromium)".to_string())
}

/// Load `page#selftest` in headless Chromium: the DOM after its scripts ran, and the console
/// lines Chromium logged.
fn render(chromium: &Path, page: &Path) -> (String, Vec<String>) {
    let profile = page.with_extension("chromium-profile");
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}#selftest", page.display()))
        .output()
        .expect("run chromium");
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("CONSOLE"))
        .map(String::from)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

fn attribute<'a>(dom: &'a str, name: &str) -> Option<&'a str> {
    let at = dom.find(&format!("{name}=\""))? + name.len() + 2;
    dom[at..].split('"').next()
}

#[test]
fn the_report_works_in_a_real_browser() {
    let browser = match chromium() {
        Ok(b) => b,
        Err(why) => {
            eprintln!("skipping: {why}");
            return;
        }
    };
    let (before, after) = (fixture("diff-before.dmp"), fixture("diff-after.dmp"));
    let pages = [
        analyze("browser-sample", &[SAMPLE, "--symbols", SAMPLE_SYMBOLS]).2,
        analyze(
            "browser-pair",
            &[
                after.to_str().unwrap(),
                "--baseline",
                before.to_str().unwrap(),
            ],
        )
        .2,
    ];
    for page in &pages {
        let started = std::time::Instant::now();
        let (dom, console) = render(&browser, page);
        assert!(started.elapsed() < Duration::from_secs(60));
        assert_eq!(
            attribute(&dom, "data-selftest"),
            Some("ok"),
            "{}",
            page.display()
        );
        let rects: usize = attribute(&dom, "data-flame-rects")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(rects > 0, "{}: no flamegraph frames drawn", page.display());
        assert!(
            attribute(&dom, "data-load-ms").is_some_and(|ms| ms.parse::<u64>().is_ok()),
            "{}: the page records when it finished loading",
            page.display()
        );
        for id in [
            "summary",
            "answers",
            "address",
            "heaps",
            "modules",
            "stacks",
            "suspects",
            "unreachable",
        ] {
            assert!(
                dom.contains(&format!("id=\"{id}\"")),
                "{id} in {}",
                page.display()
            );
        }
        assert!(console.is_empty(), "console: {console:?}");
    }
}
