//! The `heapdiag` command line: parses the arguments, calls a command, renders its view, exits
//! with the README's exit code.

use clap::{Args, Parser, Subcommand, ValueEnum};
use heapdiag::analysis::blocks::BlockFilter;
use heapdiag::analysis::roots::RootSet;
use heapdiag::analysis::top::{By, Sort};
use heapdiag::commands::{self, Ranking};
use heapdiag::dump::Dump;
use heapdiag::error::{Error, Exit};
use heapdiag::heap::{FrontEnd, State};
use heapdiag::pdbfile::SymbolPath;
use heapdiag::regions::filter::RegionFilter;
use heapdiag::report::{render, Format, Render, Style};
use heapdiag::symsrv::{http::FetchOptions, SymbolOptions};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Where did the memory go? Offline analysis of Windows user-mode dumps.
#[derive(Parser)]
#[command(name = "heapdiag", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The switch for the lines that look like WinDbg's and UMDH's.
#[derive(Args)]
struct Look {
    /// Print the lines that look like WinDbg's and UMDH's (`!address`, `!heap -stat`,
    /// `!heap -flt`, `!heap -p -a`, UMDH's logs) in those tools' own radix (hex), to compare
    /// with old logs.
    #[arg(long, visible_alias = "umdh")]
    windbg: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Every analysis of one dump in one run: a short summary here, and with --html a
    /// self-contained report with flamegraphs (like DebugDiag's memory analysis, offline).
    Analyze(AnalyzeArgs),
    /// Process facts and what this dump can and cannot answer.
    Info(InfoArgs),
    /// Address-space usage, like WinDbg's `!address -summary`.
    Address(AddressArgs),
    /// Every heap with its totals, like `!heap -s`; with --stat the size histogram, like `!heap -stat -h`.
    Heaps(HeapsArgs),
    /// Heap blocks, with filters like `!heap -flt`.
    Blocks(BlocksArgs),
    /// Outstanding (busy) memory ranked by allocating module, function, call stack, size or heap,
    /// from the +ust allocation stacks (like UMDH / DebugDiag leak analysis).
    Top(TopArgs),
    /// What grew between two dumps of the same program, by call stack, module, function, size or
    /// heap, plus the address-usage tables (like UMDH/Dhcmp, offline).
    Diff(DiffArgs),
    /// The heap block that holds an address, like `!heap -p -a` (exit code 5 when none does).
    Block(BlockArgs),
    /// Leak evidence: busy blocks no chain of pointers reaches from the thread stacks, registers
    /// and images' writable data (like `!heap -l`), grouped by stack, module, function or size,
    /// and the roots of garbage with the bytes each keeps alive; with --why ADDR, what keeps one
    /// block alive (exit code 5 when the dump has no heap memory or ADDR no busy block).
    Leaks(LeaksArgs),
    /// Every module with its PDB (name, GUID, age) and where it was found, or why not, like `lm`
    /// with `!sym noisy`; downloads from the symbol servers on the path.
    Symbols(SymbolsArgs),
}

/// `heapdiag analyze`.
#[derive(Args)]
struct AnalyzeArgs {
    /// The dump file (.dmp).
    dump: PathBuf,
    /// An earlier dump of the same process: the report adds the growth by call stack and a
    /// differential flamegraph.
    #[arg(long, value_name = "OLD_DUMP")]
    baseline: Option<PathBuf>,
    /// Write the HTML report to FILE (one file, everything inline: no network needed to view it).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    #[command(flatten)]
    ranking: RankArgs,
    /// Machine-readable output: every analysis as one JSON document.
    #[arg(long)]
    json: bool,
}

/// `heapdiag info`.
#[derive(Args)]
struct InfoArgs {
    /// The dump file (.dmp).
    dump: PathBuf,
    /// List every module.
    #[arg(long)]
    modules: bool,
    /// Machine-readable output (see docs/json.md).
    #[arg(long)]
    json: bool,
}

/// `heapdiag address`.
#[derive(Args)]
struct AddressArgs {
    /// The dump file (.dmp).
    dump: PathBuf,
    /// List every region instead of the summary.
    #[arg(long)]
    regions: bool,
    /// With --regions: keep regions matching these names, like `!address -f:` (comma-separated;
    /// e.g. Heap,Stack or MEM_COMMIT or PAGE_READWRITE; names of one kind OR, kinds AND).
    #[arg(
        short = 'f',
        long = "filter",
        value_name = "NAMES",
        requires = "regions"
    )]
    filter: Vec<String>,
    #[command(flatten)]
    output: Output,
    #[command(flatten)]
    look: Look,
}

/// `heapdiag heaps`.
#[derive(Args)]
struct HeapsArgs {
    /// The dump file (.dmp).
    dump: PathBuf,
    /// Busy blocks by requested size (count, total, % of busy bytes), largest total first.
    #[arg(long)]
    stat: bool,
    /// With --stat: only this heap (address in hex, e.g. 0x700000 or 700000).
    #[arg(long, value_name = "ADDR", value_parser = parse_address, requires = "stat")]
    heap: Option<u64>,
    /// With --stat: at most this many sizes per heap.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// With --stat: largest total first (`bytes`, like `!heap -stat -grp A`) or most blocks
    /// first (`count`, like `-grp B`).
    #[arg(long, value_enum, default_value = "bytes", requires = "stat")]
    sort: SortArg,
    #[command(flatten)]
    symbols: SymbolArgs,
    #[command(flatten)]
    output: Output,
    #[command(flatten)]
    look: Look,
}

/// `heapdiag blocks`.
#[derive(Args)]
struct BlocksArgs {
    /// The dump file (.dmp).
    dump: PathBuf,
    #[command(flatten)]
    filter: BlockFilterArgs,
    #[command(flatten)]
    symbols: SymbolArgs,
    #[command(flatten)]
    output: BlocksOutput,
    #[command(flatten)]
    look: Look,
}

/// How `blocks` writes its rows.
#[derive(Args)]
#[group(multiple = false)]
struct BlocksOutput {
    /// Machine-readable JSON (see docs/json.md).
    #[arg(long)]
    json: bool,
    /// CSV.
    #[arg(long)]
    csv: bool,
    /// The output format; `jsonl` writes one JSON object per line, for streaming consumers.
    #[arg(long, value_enum)]
    format: Option<BlocksFormat>,
}

/// `blocks --format`.
#[derive(Clone, Copy, ValueEnum)]
enum BlocksFormat {
    Text,
    Json,
    Jsonl,
    Csv,
}

/// `heapdiag top`.
#[derive(Args)]
struct TopArgs {
    /// The dump file (.dmp).
    dump: PathBuf,
    /// What to rank by.
    #[arg(long, value_enum, default_value = "module")]
    by: ByArg,
    /// Most bytes first, or most blocks first (a leak of many small blocks stands out).
    #[arg(long, value_enum, default_value = "bytes")]
    sort: SortArg,
    /// An earlier dump of the same process: the leak suspects add their growth since then.
    #[arg(long, value_name = "OLD_DUMP")]
    baseline: Option<PathBuf>,
    #[command(flatten)]
    ranking: RankArgs,
    #[command(flatten)]
    output: Output,
    #[command(flatten)]
    look: Look,
}

/// `heapdiag diff`.
#[derive(Args)]
struct DiffArgs {
    /// The older dump.
    old: PathBuf,
    /// The newer dump.
    new: PathBuf,
    /// What to compare by.
    #[arg(long, value_enum, default_value = "stack")]
    by: ByArg,
    /// Most growth in bytes first (UMDH's order), most growth in blocks first, or the largest
    /// relative growth first (keys new in the newer dump first).
    #[arg(long, value_enum, default_value = "bytes")]
    sort: DiffSortArg,
    #[command(flatten)]
    ranking: RankArgs,
    /// CI gate: exit with code 1 when busy heap memory grew by more than BYTES (decimal, or
    /// hex with 0x).
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    fail_over: Option<u64>,
    /// With --fail-over: compare the growth of each call stack, not the total.
    #[arg(long, requires = "fail_over")]
    per_stack: bool,
    #[command(flatten)]
    output: Output,
    #[command(flatten)]
    look: Look,
}

/// `heapdiag leaks`.
#[derive(Args)]
struct LeaksArgs {
    /// The dump file (.dmp).
    dump: PathBuf,
    /// What to group the unreachable blocks by.
    #[arg(long, value_enum, default_value = "stack")]
    by: ByArg,
    /// Which memory counts as roots besides stacks, registers, images' writable sections, TEBs
    /// and PEBs: `more` adds other private memory that is not heap (fewer leaks found: stale
    /// data there hides them).
    #[arg(long, value_enum, default_value = "standard")]
    roots: RootsArg,
    /// Show the chain of pointers that keeps the busy block holding ADDR alive (hex), or, when
    /// none does, its root of garbage and the blocks that point into it.
    #[arg(long, value_name = "ADDR", value_parser = parse_address)]
    why: Option<u64>,
    /// An earlier dump of the same process: the leak suspects add their growth since then.
    #[arg(long, value_name = "OLD_DUMP", conflicts_with = "why")]
    baseline: Option<PathBuf>,
    #[command(flatten)]
    ranking: RankArgs,
    #[command(flatten)]
    output: Output,
}

/// `--roots`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum RootsArg {
    Standard,
    More,
}

/// `heapdiag block`.
#[derive(Args)]
struct BlockArgs {
    /// The dump file (.dmp).
    dump: PathBuf,
    /// Any address inside the block (hex, e.g. 0x70bce5, 70bce5 or 0000015d`85bb0000).
    #[arg(value_parser = parse_address)]
    address: u64,
    #[command(flatten)]
    symbols: SymbolArgs,
    /// Machine-readable JSON: the block, or null.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    look: Look,
}

/// `heapdiag symbols`.
#[derive(Args)]
struct SymbolsArgs {
    /// The dump file (.dmp).
    dump: PathBuf,
    #[command(flatten)]
    symbols: SymbolArgs,
    /// Machine-readable JSON (see docs/json.md).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SymbolArgs {
    /// Where PDBs are: a folder (flat or in symbol-store layout, name.pdb/GUIDAGE/name.pdb) or a
    /// symbol path like _NT_SYMBOL_PATH (cache*DIR, srv*CACHE*https://server); repeatable, searched
    /// before _NT_SYMBOL_PATH. ntdll.pdb gives the heap structure offsets of any Windows build;
    /// module PDBs give function names and lines.
    #[arg(long = "symbols", value_name = "PATH")]
    paths: Vec<String>,
    /// Never download from symbol servers; only folders and caches are searched.
    #[arg(long)]
    offline: bool,
    /// The longest wait for a symbol server (connection, answer, or between two pieces of a
    /// download); a whole file gets at most 15 times this.
    #[arg(long, value_name = "SECONDS", default_value = "20", value_parser = parse_timeout)]
    symbol_timeout: Duration,
}

impl SymbolArgs {
    fn path(&self) -> SymbolPath {
        let env = std::env::var("_NT_SYMBOL_PATH").ok();
        let options = SymbolOptions {
            offline: self.offline,
            fetch: FetchOptions {
                timeout: self.symbol_timeout,
                progress: Some(|line| eprintln!("heapdiag: {line}")),
                ..FetchOptions::default()
            },
        };
        SymbolPath::from_command_line(&self.paths, env.as_deref(), options)
    }
}

/// Seconds, more than 0 and at most an hour.
fn parse_timeout(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<f64>() {
        Ok(t) if t > 0.0 && t <= 3600.0 => Ok(Duration::from_secs_f64(t)),
        _ => Err(format!(
            "'{s}' is not a number of seconds (more than 0, at most 3600)"
        )),
    }
}

/// `blocks`' filters, like `!heap -flt`.
#[derive(Args)]
struct BlockFilterArgs {
    /// Only blocks of this heap (address in hex).
    #[arg(long, value_name = "ADDR", value_parser = parse_address)]
    heap: Option<u64>,
    /// Only busy blocks.
    #[arg(long, conflicts_with = "free")]
    busy: bool,
    /// Only free blocks.
    #[arg(long)]
    free: bool,
    /// Only blocks of this front end.
    #[arg(long, value_enum)]
    front_end: Option<FrontEndArg>,
    /// Requested size exactly, like `!heap -flt s` (decimal, or hex with 0x).
    #[arg(long, value_parser = parse_size)]
    size: Option<u64>,
    /// Requested size within MIN..=MAX, like `!heap -flt r` (decimal, or hex with 0x; MIN ≤ MAX).
    #[arg(long, num_args = 2, value_names = ["MIN", "MAX"], value_parser = parse_size)]
    size_range: Option<Vec<u64>>,
    /// Include heap metadata (LFH user blocks and zones, range markers, the LFH front end).
    #[arg(long)]
    internal: bool,
}

impl From<BlockFilterArgs> for BlockFilter {
    fn from(a: BlockFilterArgs) -> BlockFilter {
        BlockFilter {
            heap: a.heap,
            state: match (a.busy, a.free) {
                (true, _) => Some(State::Busy),
                (_, true) => Some(State::Free),
                _ => None,
            },
            front_end: a.front_end.map(FrontEnd::from),
            size: a.size,
            size_range: a.size_range.map(|v| (v[0], v[1])),
            internal: a.internal,
        }
    }
}

/// The options `top` and `diff` share (each has its own `--by`, whose defaults differ).
#[derive(Args)]
struct RankArgs {
    /// At most this many entries.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    #[command(flatten)]
    symbols: SymbolArgs,
    /// Also treat frames matching this pattern as allocator plumbing (`module!function` or a
    /// function name, `*` wildcards; e.g. `mylib!PoolAlloc*`). Repeatable.
    #[arg(long, value_name = "PATTERN")]
    skip: Vec<String>,
    /// Also write the outstanding bytes by call stack to FILE as folded stacks (Brendan Gregg's
    /// format: `frame;frame;… bytes`, outermost first; diff: `… before after`), for inferno,
    /// flamegraph.pl or speedscope.
    #[arg(long, value_name = "FILE")]
    folded: Option<PathBuf>,
}

impl RankArgs {
    fn ranking(&self, by: ByArg, sort: Sort) -> Ranking {
        Ranking {
            by: by.into(),
            sort,
            limit: self.limit,
            symbols: self.symbols.path(),
            skip: self.skip.clone(),
            folded: self.folded.is_some(),
        }
    }
}

/// `--sort` of `top` and `heaps --stat`.
#[derive(Clone, Copy, ValueEnum)]
enum SortArg {
    Bytes,
    Count,
}

impl From<SortArg> for Sort {
    fn from(s: SortArg) -> Sort {
        match s {
            SortArg::Bytes => Sort::Bytes,
            SortArg::Count => Sort::Count,
        }
    }
}

/// `--sort` of `diff`.
#[derive(Clone, Copy, ValueEnum)]
enum DiffSortArg {
    Bytes,
    Count,
    Growth,
}

impl From<DiffSortArg> for Sort {
    fn from(s: DiffSortArg) -> Sort {
        match s {
            DiffSortArg::Bytes => Sort::Bytes,
            DiffSortArg::Count => Sort::Count,
            DiffSortArg::Growth => Sort::Growth,
        }
    }
}

/// Write folded stacks to `path` (made by `write`); an error names the file.
fn write_folded(
    path: &std::path::Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), Error> {
    write_file(path, "the folded stacks", write)
}

/// Write `what` to `path` (made by `write`); an error names the file.
fn write_file(
    path: &std::path::Path,
    what: &str,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), Error> {
    let fail = |e: std::io::Error| {
        Error::new(
            Exit::Open,
            format!("{}: cannot write {what} ({e})", path.display()),
        )
    };
    let file = std::fs::File::create(path).map_err(fail)?;
    let mut w = std::io::BufWriter::new(file);
    write(&mut w).and_then(|()| w.flush()).map_err(fail)
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ByArg {
    Module,
    Function,
    Stack,
    Size,
    Heap,
    Type,
}

impl From<ByArg> for By {
    fn from(b: ByArg) -> By {
        match b {
            ByArg::Module => By::Module,
            ByArg::Function => By::Function,
            ByArg::Stack => By::Stack,
            ByArg::Size => By::Size,
            ByArg::Heap => By::Heap,
            ByArg::Type => By::Type,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum FrontEndArg {
    Backend,
    Lfh,
    Large,
    Vs,
    #[value(name = "pageheap")]
    PageHeap,
}

impl From<FrontEndArg> for FrontEnd {
    fn from(f: FrontEndArg) -> FrontEnd {
        match f {
            FrontEndArg::Backend => FrontEnd::Backend,
            FrontEndArg::Lfh => FrontEnd::Lfh,
            FrontEndArg::Large => FrontEnd::Large,
            FrontEndArg::Vs => FrontEnd::Vs,
            FrontEndArg::PageHeap => FrontEnd::PageHeap,
        }
    }
}

/// An address: hex, with or without `0x`, WinDbg's backtick allowed.
fn parse_address(s: &str) -> Result<u64, String> {
    let t = s
        .trim()
        .trim_start_matches("0x")
        .trim_start_matches("0X")
        .replace('`', "");
    u64::from_str_radix(&t, 16).map_err(|_| format!("'{s}' is not a hex address"))
}

/// A size: decimal, or hex with `0x`.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse(),
    }
    .map_err(|_| format!("'{s}' is not a size (decimal, or hex with 0x)"))
}

#[derive(Args)]
#[group(multiple = false)]
struct Output {
    /// Machine-readable JSON (see docs/json.md).
    #[arg(long)]
    json: bool,
    /// CSV.
    #[arg(long)]
    csv: bool,
}

impl Output {
    fn format(&self) -> Format {
        format(self.json, self.csv)
    }
}

/// The system allocator, counting live and peak bytes so that `HEAPDIAG_MEMSTATS=1` can report
/// the peak heap use of a run (the benchmark's memory figure; the mapped dump's page cache, which
/// the OS can drop at any time, is not part of it).
struct CountingAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            let now = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn main() -> ExitCode {
    let code = real_main();
    if std::env::var_os("HEAPDIAG_MEMSTATS").is_some() {
        eprintln!(
            "heapdiag: peak heap memory {} bytes",
            PEAK.load(Ordering::Relaxed)
        );
    }
    code
}

fn real_main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let windbg = match &cli.command {
        Command::Address(a) => a.look.windbg,
        Command::Heaps(a) => a.look.windbg,
        Command::Blocks(a) => a.look.windbg,
        Command::Top(a) => a.look.windbg,
        Command::Diff(a) => a.look.windbg,
        Command::Block(a) => a.look.windbg,
        Command::Info(_) | Command::Symbols(_) | Command::Analyze(_) | Command::Leaks(_) => false,
    };
    let style = Style {
        width: if std::io::stdout().is_terminal() {
            textwrap::termwidth()
        } else {
            Style::default().width
        },
        windbg,
    };
    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let ticker = heapdiag::progress::Ticker::start();
    let result = run(cli, &style, &mut stdout);
    drop(ticker);
    // A closed pipe (`| head`) is not an error worth reporting.
    let _ = stdout.flush();
    let exit = match result {
        Ok(exit) => exit,
        Err(e) => {
            eprintln!("heapdiag: {e}");
            e.exit
        }
    };
    ExitCode::from(exit.code())
}

/// A command line clap refuses, in one line on standard error with the usage (exit code 2);
/// help and version texts as clap prints them.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(if e.use_stderr() {
            Exit::Usage.code()
        } else {
            0
        });
    }
    let text = e.render().to_string();
    let mut message = String::new();
    let mut usage = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(u) = line.strip_prefix("Usage: ") {
            usage = Some(u.to_string());
        } else if let Some(tip) = line.strip_prefix("tip: ") {
            message.push_str(&format!("; {tip}"));
        } else if !line.starts_with("For more information") {
            if !message.is_empty() {
                message.push(' ');
            }
            message.push_str(line.trim_start_matches("error: "));
        }
    }
    let usage = usage.map(|u| format!(" (usage: {u})")).unwrap_or_default();
    eprintln!("heapdiag: {message}{usage}; see --help");
    ExitCode::from(Exit::Usage.code())
}

fn format(json: bool, csv: bool) -> Format {
    if json {
        Format::Json
    } else if csv {
        Format::Csv
    } else {
        Format::Text
    }
}

/// Write `view`; write errors (a closed pipe) end the output quietly.
fn show<V: Render>(
    view: &V,
    format: Format,
    style: &Style,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let _ = render(view, format, style, out);
    Ok(Exit::Success)
}

/// The notes about the symbol path, on standard error, for the views that have no notes of their
/// own (`heaps`, `blocks`).
fn path_notes(symbols: &SymbolPath) {
    for n in symbols.notes() {
        eprintln!("heapdiag: note: {n}");
    }
}

/// Run a command and render its view to `out`; the result says how the run ends.
fn run(cli: Cli, style: &Style, out: &mut dyn Write) -> Result<Exit, Error> {
    match cli.command {
        Command::Info(a) => a.run(style, out),
        Command::Address(a) => a.run(style, out),
        Command::Heaps(a) => a.run(style, out),
        Command::Blocks(a) => a.run(style, out),
        Command::Top(a) => a.run(style, out),
        Command::Diff(a) => a.run(style, out),
        Command::Block(a) => a.run(style, out),
        Command::Leaks(a) => a.run(style, out),
        Command::Symbols(a) => a.run(style, out),
        Command::Analyze(a) => a.run(style, out),
    }
}

impl InfoArgs {
    fn run(self, style: &Style, out: &mut dyn Write) -> Result<Exit, Error> {
        let view = commands::info(&Dump::open(&self.dump)?, self.modules);
        show(&view, format(self.json, false), style, out)
    }
}

impl AddressArgs {
    fn run(self, style: &Style, out: &mut dyn Write) -> Result<Exit, Error> {
        let filter = RegionFilter::parse(&self.filter).map_err(|m| Error::new(Exit::Usage, m))?;
        let view = commands::address(&Dump::open(&self.dump)?, self.regions, &filter);
        show(&view, self.output.format(), style, out)
    }
}

impl HeapsArgs {
    fn run(self, style: &Style, out: &mut dyn Write) -> Result<Exit, Error> {
        let (dump, symbols) = (Dump::open(&self.dump)?, self.symbols.path());
        path_notes(&symbols);
        if self.stat {
            let how = (self.limit, self.sort.into());
            let view = commands::heap_stat(&dump, self.heap, how, &symbols)?;
            show(&view, self.output.format(), style, out)
        } else {
            let view = commands::heaps(&dump, &symbols)?;
            show(&view, self.output.format(), style, out)
        }
    }
}

impl BlocksArgs {
    fn run(self, style: &Style, out: &mut dyn Write) -> Result<Exit, Error> {
        if let Some([min, max]) = self.filter.size_range.as_deref() {
            if min > max {
                return Err(Error::new(
                    Exit::Usage,
                    format!("--size-range {min} {max}: MIN is larger than MAX"),
                ));
            }
        }
        let (dump, symbols) = (Dump::open(&self.dump)?, self.symbols.path());
        path_notes(&symbols);
        let view = commands::blocks(&dump, self.filter.into(), &symbols)?;
        let o = &self.output;
        let format = match o.format {
            Some(BlocksFormat::Jsonl) => {
                let _ = heapdiag::report::blocks::jsonl(&view, out);
                return Ok(Exit::Success);
            }
            Some(BlocksFormat::Json) => Format::Json,
            Some(BlocksFormat::Csv) => Format::Csv,
            Some(BlocksFormat::Text) => Format::Text,
            None => format(o.json, o.csv),
        };
        show(&view, format, style, out)
    }
}

impl TopArgs {
    fn run(self, style: &Style, out: &mut dyn Write) -> Result<Exit, Error> {
        let ranking = self.ranking.ranking(self.by, self.sort.into());
        let dump = Dump::open(&self.dump)?;
        let baseline = self.baseline.as_deref().map(Dump::open).transpose()?;
        let view = commands::top(&dump, &ranking, baseline.as_ref())?;
        if let (Some(path), Some(stacks)) = (&self.ranking.folded, &view.folded) {
            write_folded(path, |w| heapdiag::report::folded::write(w, stacks))?;
        }
        show(&view, self.output.format(), style, out)
    }
}

impl DiffArgs {
    fn run(self, style: &Style, out: &mut dyn Write) -> Result<Exit, Error> {
        let (old, new) = (Dump::open(&self.old)?, Dump::open(&self.new)?);
        let ranking = self.ranking.ranking(self.by, self.sort.into());
        let view = commands::diff(&old, &new, &ranking, self.per_stack)?;
        if let Some(path) = &self.ranking.folded {
            match &view.folded {
                Some(stacks) => write_folded(path, |w| {
                    heapdiag::report::folded::write_differential(w, stacks)
                })?,
                None => eprintln!(
                    "heapdiag: {}: not written: both dumps need allocation stacks (+ust) for folded stacks",
                    path.display()
                ),
            }
        }
        show(&view, self.output.format(), style, out)?;
        commands::gate(&view, self.fail_over, self.per_stack).map(|()| Exit::Success)
    }
}

impl LeaksArgs {
    fn run(self, style: &Style, out: &mut dyn Write) -> Result<Exit, Error> {
        let dump = Dump::open(&self.dump)?;
        let set = match self.roots {
            RootsArg::Standard => RootSet::Standard,
            RootsArg::More => RootSet::More,
        };
        let format = self.output.format();
        let ranking = self.ranking.ranking(self.by, Sort::Bytes);
        match self.why {
            Some(addr) => show(
                &commands::leaks::why(&dump, addr, &ranking, set)?,
                format,
                style,
                out,
            ),
            None => {
                let baseline = self.baseline.as_deref().map(Dump::open).transpose()?;
                let view = commands::leaks::leaks(&dump, &ranking, set, baseline.as_ref())?;
                if let Some(path) = &self.ranking.folded {
                    match &view.folded {
                        Some(stacks) => {
                            write_folded(path, |w| heapdiag::report::folded::write(w, stacks))?
                        }
                        None => eprintln!(
                            "heapdiag: {}: not written: no unreachable block carries an allocation stack (+ust)",
                            path.display()
                        ),
                    }
                }
                show(&view, format, style, out)
            }
        }
    }
}

impl BlockArgs {
    fn run(self, style: &Style, out: &mut dyn Write) -> Result<Exit, Error> {
        let dump = Dump::open(&self.dump)?;
        let view = commands::block(&dump, self.address, &self.symbols.path())?;
        let format = format(self.json, false);
        match &view.outside {
            None => show(&view, format, style, out),
            Some(why) => {
                // JSON keeps its answer (`null`); the reason goes to standard error.
                if format == Format::Json {
                    let _ = render(&view, format, style, out);
                }
                Err(Error::file(Exit::NotAnswerable, dump.path(), why))
            }
        }
    }
}

impl AnalyzeArgs {
    fn run(self, style: &Style, out: &mut dyn Write) -> Result<Exit, Error> {
        let dump = Dump::open(&self.dump)?;
        let baseline = self.baseline.as_deref().map(Dump::open).transpose()?;
        let ranking = Ranking {
            folded: true,
            ..self.ranking.ranking(ByArg::Stack, Sort::Bytes)
        };
        let view = commands::analyze(&dump, baseline.as_ref(), &ranking)?;
        if let Some(path) = &self.ranking.folded {
            write_folded(path, |w| heapdiag::report::folded::write(w, &view.folded))?;
        }
        if let Some(path) = &self.html {
            heapdiag::progress::phase("writing the HTML report");
            write_file(path, "the HTML report", |w| {
                heapdiag::report::html::write(&view, w)
            })?;
        }
        show(&view, format(self.json, false), style, out)?;
        if let Some(path) = self.html.as_ref().filter(|_| !self.json) {
            let _ = writeln!(out, "\nReport: {}", path.display());
        }
        Ok(Exit::Success)
    }
}

impl SymbolsArgs {
    fn run(self, style: &Style, out: &mut dyn Write) -> Result<Exit, Error> {
        let view = commands::symbols(&Dump::open(&self.dump)?, &self.symbols.path());
        show(&view, format(self.json, false), style, out)
    }
}
