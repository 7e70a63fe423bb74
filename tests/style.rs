//! One style in every view: every view of every fixture and real dump rendered as text, with and
//! without symbols, and checked line by line:
//!
//! - no line ends in spaces or tabs;
//! - no `0x` number is a quantity: counts and byte totals are decimal, so a `0x…` number is never
//!   signed (`+0x12c`, but `module+0x12c` is an offset), never followed by a unit or a count word
//!   (`0xacc bytes`, `0x5 blocks`), a human size (`0xb2474 (713.113 kB)`) or a difference
//!   (`0x800 - 0x300`): a line never mixes a `0x` number with a decimal count of the same thing;
//! - the same frame reads the same everywhere: the text of `top --by stack`, `diff --by stack`
//!   and `block`, their JSON (`frames[].text`, `inlined[].text`) and CSV, and the `frames` of
//!   `blocks --json` give one text per return address.

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
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What the checks found wrong, one line each.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    fn add(&mut self, what: String) {
        if self.0.len() < 200 {
            self.0.push(what);
        }
    }
}

fn text_of<V: Render>(view: &V, style: &Style) -> String {
    let mut out = Vec::new();
    render(view, Format::Text, style, &mut out).unwrap();
    String::from_utf8(out).expect("UTF-8 text")
}

fn csv_of<V: Render>(view: &V) -> String {
    let mut out = Vec::new();
    render(view, Format::Csv, &Style::default(), &mut out).unwrap();
    String::from_utf8(out).expect("UTF-8 CSV")
}

fn json_of<V: Render>(view: &V) -> Value {
    let mut out = Vec::new();
    render(view, Format::Json, &Style::default(), &mut out).unwrap();
    serde_json::from_slice(&out).expect("JSON")
}

/// Words that make the number before them a count or a size.
const QUANTITY_WORDS: &[&str] = &[
    "B",
    "kB",
    "MB",
    "GB",
    "TB",
    "bytes",
    "byte",
    "blocks",
    "block",
    "allocs",
    "allocations",
    "chunks",
    "sizes",
    "regions",
];

/// Why the `0x` number at `at` in `line` is a quantity, if it is one.
fn hex_quantity(line: &str, at: usize) -> Option<&'static str> {
    let before = line[..at].chars().next_back();
    if matches!(before, Some('+') | Some('-')) {
        let offset = line[..at - 1]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || "_>)]".contains(c));
        if !offset {
            return Some("a signed hex change");
        }
    }
    let digits = line[at + 2..]
        .find(|c: char| !c.is_ascii_hexdigit())
        .unwrap_or(line.len() - at - 2);
    let rest = &line[at + 2 + digits..];
    if let Some(word) = rest.strip_prefix(' ') {
        let w = word.split([' ', ',', ';', ')', ':']).next().unwrap_or("");
        if QUANTITY_WORDS.contains(&w) {
            return Some("a hex number with a unit");
        }
        if word.starts_with("- 0x")
            || word.starts_with("- ") && word[2..].starts_with(|c: char| c.is_ascii_digit())
        {
            return Some("a difference of hex numbers");
        }
        if let Some(paren) = word.trim_start().strip_prefix('(') {
            let inside = paren.split(')').next().unwrap_or("").trim();
            let mut parts = inside.split(' ');
            let number = parts.next().unwrap_or("");
            let unit = parts.next().unwrap_or("");
            if !number.is_empty()
                && number.chars().all(|c| c.is_ascii_digit() || c == '.')
                && QUANTITY_WORDS.contains(&unit)
            {
                return Some("a hex number beside its human size");
            }
        }
    }
    None
}

/// The line checks, on every line of `text` (`what` names the view); the number style only in
/// heapdiag's `own_style`.
fn check_lines(what: &str, text: &str, own_style: bool, f: &mut Findings) {
    for (i, line) in text.lines().enumerate() {
        if line.ends_with([' ', '\t']) {
            f.add(format!(
                "{what}, line {}: trailing whitespace: {line:?}",
                i + 1
            ));
        }
        if !own_style {
            continue;
        }
        let mut from = 0;
        while let Some(p) = line[from..].find("0x") {
            let at = from + p;
            if let Some(why) = hex_quantity(line, at) {
                f.add(format!("{what}, line {}: {why}: {line}", i + 1));
            }
            from = at + 2;
        }
    }
}

/// The lines of a JSON frame as the text views print them: its inlined functions, then itself.
fn json_frame_lines(frame: &Value) -> Vec<String> {
    let mut lines: Vec<String> = frame["inlined"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["text"].as_str().unwrap().to_string())
        .collect();
    lines.push(frame["text"].as_str().unwrap().to_string());
    lines
}

/// Every frame text seen, by (return address): the same address must read the same everywhere.
struct FrameTexts<'a> {
    what: String,
    seen: BTreeMap<String, String>,
    f: &'a mut Findings,
}

impl FrameTexts<'_> {
    fn saw(&mut self, view: &str, address: &str, text: &str) {
        match self.seen.get(address) {
            Some(t) if t != text => self.f.add(format!(
                "{} {view}: frame {address} reads '{text}' here and '{t}' elsewhere",
                self.what
            )),
            Some(_) => {}
            None => {
                self.seen.insert(address.to_string(), text.to_string());
            }
        }
    }
}

/// `top --by stack` and `diff --by stack`: each entry's frame lines in text (under the entry's
/// heading, indented eight spaces), JSON and (top) CSV are the same.
fn check_stack_frames(
    what: &str,
    text: &str,
    json: &Value,
    csv: Option<&str>,
    texts: &mut FrameTexts<'_>,
) {
    let from_text: Vec<Vec<String>> = text
        .split("\nBackTrace ")
        .skip(1)
        .map(|block| {
            block
                .lines()
                .skip(1)
                .take_while(|l| !l.is_empty())
                .filter_map(|l| l.strip_prefix("        ").map(String::from))
                .collect()
        })
        .collect();
    let entries = json["entries"].as_array().unwrap();
    let from_json: Vec<Vec<String>> = entries
        .iter()
        .filter(|e| e["no_stack"] == false)
        .map(|e| {
            e["frames"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|fr| {
                    texts.saw(
                        what,
                        fr["address"].as_str().unwrap(),
                        fr["text"].as_str().unwrap(),
                    );
                    json_frame_lines(fr)
                })
                .collect()
        })
        .collect();
    if from_text != from_json {
        texts.f.add(format!(
            "{what}: text frames {from_text:?} differ from JSON frames {from_json:?}"
        ));
    }
    if let Some(csv) = csv {
        let mut reader = csv.lines();
        let header: Vec<&str> = reader.next().unwrap_or("").split(',').collect();
        let col = header.iter().position(|h| *h == "frames").unwrap();
        let from_csv: Vec<Vec<String>> = csv_rows(csv)
            .into_iter()
            .filter(|r| r.last().map(String::as_str) == Some("false"))
            .map(|r| {
                r[col]
                    .split(';')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .collect();
        if from_csv != from_json {
            texts.f.add(format!(
                "{what}: CSV frames {from_csv:?} differ from JSON frames {from_json:?}"
            ));
        }
    }
}

/// The rows of a CSV (quoted fields understood), without the header.
fn csv_rows(csv: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for line in csv.lines().skip(1) {
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    cur.push('"');
                    chars.next();
                }
                ('"', _) => quoted = !quoted,
                (',', false) => fields.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        fields.push(cur);
        rows.push(fields);
    }
    rows
}

/// Addresses to look up with `block`: inside a few busy blocks that carry a stack.
fn probes(blocks: &Value) -> Vec<u64> {
    let addr = |b: &str| u64::from_str_radix(b.trim_start_matches("0x"), 16).unwrap();
    let traced: Vec<&Value> = blocks
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["stack"].is_array())
        .collect();
    [0, traced.len() / 2, traced.len().saturating_sub(1)]
        .iter()
        .filter_map(|&i| traced.get(i))
        .map(|b| addr(b["address"].as_str().unwrap()) + 1)
        .collect()
}

/// Every view of `dump`, checked; `symbols` resolves frames (or an empty path).
fn check_dump(name: &str, dump: &Dump, symbols: &SymbolPath, f: &mut Findings) {
    let styles = [
        Style::default(),
        Style {
            windbg: true,
            ..Style::default()
        },
    ];
    // (what, text, whether in heapdiag's own number style; `--windbg` texts are in the tools'
    // radix and only checked for trailing whitespace).
    let mut views: Vec<(String, String, bool)> = Vec::new();
    let mut text =
        |what: &str, t: String, windbg: bool| views.push((format!("{name}: {what}"), t, !windbg));
    let info = commands::info(dump, true);
    let address = commands::address(dump, false, &RegionFilter::default());
    let regions = commands::address(dump, true, &RegionFilter::default());
    let sym_view = commands::symbols(dump, symbols);
    for s in &styles {
        text("info --modules", text_of(&info, s), s.windbg);
        text("address", text_of(&address, s), s.windbg);
        text("address --regions", text_of(&regions, s), s.windbg);
        text("symbols", text_of(&sym_view, s), s.windbg);
    }
    let mut seen = FrameTexts {
        what: name.to_string(),
        seen: BTreeMap::new(),
        f,
    };
    if let Ok(heaps) = commands::heaps(dump, symbols) {
        let stat = commands::heap_stat(dump, None, (20, Sort::Count), symbols).unwrap();
        let all = BlockFilter {
            internal: true,
            ..BlockFilter::default()
        };
        let blocks = commands::blocks(dump, all, symbols).unwrap();
        let blocks_json = json_of(&blocks);
        for b in blocks_json.as_array().unwrap() {
            if let (Some(stack), Some(frames)) = (b["stack"].as_array(), b["frames"].as_array()) {
                assert_eq!(stack.len(), frames.len(), "{name}: {b}");
                for (a, t) in stack.iter().zip(frames) {
                    seen.saw("blocks --json", a.as_str().unwrap(), t.as_str().unwrap());
                }
            }
        }
        for s in &styles {
            text("heaps", text_of(&heaps, s), s.windbg);
            text("heaps --stat", text_of(&stat, s), s.windbg);
            text("blocks", text_of(&blocks, s), s.windbg);
        }
        for a in probes(&blocks_json) {
            let block = commands::block(dump, a, symbols).unwrap();
            let j = json_of(&block);
            let frame_texts: Vec<String> = j["frames"]
                .as_array()
                .map(|v| v.iter().map(|t| t.as_str().unwrap().to_string()).collect())
                .unwrap_or_default();
            for (addr, t) in j["stack"]
                .as_array()
                .into_iter()
                .flatten()
                .zip(&frame_texts)
            {
                seen.saw("block --json", addr.as_str().unwrap(), t);
            }
            let body = text_of(&block, &Style::default());
            // `        0xADDR TEXT`: the text of each recorded address (inlined lines between).
            let from_text: Vec<String> = body
                .lines()
                .filter_map(|l| l.strip_prefix("        "))
                .filter_map(|l| l.split_once(' '))
                .filter(|(addr, rest)| !rest.ends_with("(inline)") && addr.starts_with("0x"))
                .map(|(_, t)| t.to_string())
                .collect();
            if from_text != frame_texts {
                seen.f.add(format!(
                    "{name}: block {a:#x}: text frames {from_text:?} differ from JSON {frame_texts:?}"
                ));
            }
            for s in &styles {
                text(&format!("block {a:#x}"), text_of(&block, s), s.windbg);
            }
        }
        for by in [
            By::Module,
            By::Function,
            By::Stack,
            By::Size,
            By::Heap,
            By::Type,
        ] {
            for sort in [Sort::Bytes, Sort::Count] {
                let r = Ranking {
                    by,
                    sort,
                    limit: 1000,
                    skip: Vec::new(),
                    symbols: symbols.clone(),
                    folded: true,
                };
                let top = commands::top(dump, &r, None).unwrap();
                let what = format!("top --by {} --sort {}", by.name(), sort.name());
                let t = text_of(&top, &Style::default());
                if top.by == By::Stack {
                    check_stack_frames(
                        &format!("{name}: {what}"),
                        &t,
                        &json_of(&top),
                        Some(&csv_of(&top)),
                        &mut seen,
                    );
                }
                text(&what, t, false);
                text(&format!("{what} --windbg"), text_of(&top, &styles[1]), true);
            }
        }
        let r = Ranking {
            by: By::Stack,
            sort: Sort::Count,
            limit: 1000,
            skip: Vec::new(),
            symbols: symbols.clone(),
            folded: false,
        };
        let diff = commands::diff(dump, dump, &r, true).unwrap();
        for s in &styles {
            text("diff itself", text_of(&diff, s), s.windbg);
        }
    }
    let r = Ranking {
        by: By::Stack,
        sort: Sort::Bytes,
        limit: 20,
        skip: Vec::new(),
        symbols: symbols.clone(),
        folded: true,
    };
    if let Ok(analyze) = commands::analyze(dump, None, &r) {
        text("analyze", text_of(&analyze, &styles[0]), false);
    }
    if let Ok(leaks) = commands::leaks::leaks(dump, &r, RootSet::Standard, Some(dump)) {
        text("leaks", text_of(&leaks, &styles[0]), false);
        if let Some(b) = leaks.blocks.as_deref().and_then(<[_]>::first) {
            let why = commands::leaks::why(dump, b.address.0, &r, RootSet::Standard).unwrap();
            text("leaks --why", text_of(&why, &styles[0]), false);
        }
    }
    for (what, t, own_style) in &views {
        check_lines(what, t, *own_style, seen.f);
    }
}

fn pdb_path() -> SymbolPath {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    SymbolPath::with_options(
        &[
            root.join("testdata/pdb").display().to_string(),
            root.join("../shared/testdata/real/pdb")
                .display()
                .to_string(),
        ],
        SymbolOptions {
            offline: true,
            ..SymbolOptions::default()
        },
    )
}

#[test]
fn every_view_of_every_dump_has_one_style() {
    let mut dumps: Vec<(String, Vec<u8>)> = fixtures::ALL
        .iter()
        .chain(fixtures::HEAPS)
        .chain(dumpwriter::symbol_fixtures::SYMBOLS)
        .map(|fx| (fx.name.to_string(), (fx.build)().0.to_bytes()))
        .collect();
    for p in all_real() {
        dumps.push((p.display().to_string(), std::fs::read(&p).unwrap()));
    }
    let mut f = Findings::default();
    let with_pdbs = pdb_path();
    for (name, bytes) in dumps {
        let dump = Dump::from_bytes(&PathBuf::from(&name), bytes).expect("a dump");
        check_dump(&name, &dump, &SymbolPath::default(), &mut f);
        check_dump(&format!("{name} (PDBs)"), &dump, &with_pdbs, &mut f);
    }
    assert!(
        f.0.is_empty(),
        "{} findings:\n{}",
        f.0.len(),
        f.0.join("\n")
    );
}

#[test]
fn the_leak_pair_diffs_in_one_style_with_the_same_frames() {
    let (a, b) = (fixture("leak-before.dmp"), fixture("leak-after.dmp"));
    let (a, b) = (Dump::open(&a).unwrap(), Dump::open(&b).unwrap());
    let mut f = Findings::default();
    let mut seen = FrameTexts {
        what: "leak pair".into(),
        seen: BTreeMap::new(),
        f: &mut f,
    };
    for sort in [Sort::Bytes, Sort::Count, Sort::Growth] {
        let r = Ranking {
            by: By::Stack,
            sort,
            limit: 100,
            skip: Vec::new(),
            symbols: SymbolPath::default(),
            folded: false,
        };
        let v = commands::diff(&a, &b, &r, false).unwrap();
        let t = text_of(&v, &Style::default());
        check_stack_frames("diff --by stack", &t, &json_of(&v), None, &mut seen);
        check_lines("diff", &t, true, seen.f);
        let windbg = Style {
            windbg: true,
            ..Style::default()
        };
        check_lines("diff --windbg", &text_of(&v, &windbg), false, seen.f);
    }
    assert!(f.0.is_empty(), "{}", f.0.join("\n"));
}

/// The checks can fail: today's old style is caught.
#[test]
fn the_checks_catch_the_old_style() {
    let mut f = Findings::default();
    for old in [
        "+0x12c (310 - 10)\tBackTrace 0x1190000",
        "    lfh: 0xacc bytes in 38 blocks",
        "       0xb2474 (713.113 kB)         26   100.0%  100.0%  leaky.exe",
        "+0x500 (0x800 - 0x300) 8 allocs",
        "Busy: 26 blocks ",
    ] {
        let before = f.0.len();
        check_lines("old", old, true, &mut f);
        assert!(f.0.len() > before, "not caught: {old}");
    }
    let caught = f.0.len();
    for fine in [
        "        crash!main+0x55 [c:\\src\\main.cpp @ 34]",
        "        pool!Pool::Alloc<int>+0x9",
        "PEB at 0x7fffffde000: NtGlobalFlag 0x1000 (+ust), NumberOfHeaps 3",
        "    heap 0x1210000 (64-bit), backend block",
        "BackTrace 0x1190000 (older dump)",
        "Process:     leaky.exe, pid 4660 (0x1234)",
    ] {
        check_lines("fine", fine, true, &mut f);
    }
    assert_eq!(f.0.len(), caught, "{}", f.0[caught..].join("\n"));
}
