//! The `heapdiag` command line: parses the arguments, calls a command, renders its view, exits
//! with the README's exit code.

use clap::{Args, Parser, Subcommand};
use heapdiag::analysis::blocks::BlockFilter;
use heapdiag::analysis::roots::RootSet;
use heapdiag::analysis::top::By;
use heapdiag::commands::{self, Ranking};
use heapdiag::dump::Dump;
use heapdiag::error::{Error, Exit};
use heapdiag::heap::{FrontEnd, State};
use heapdiag::pdbfile::SymbolPath;
use heapdiag::regions::filter::RegionFilter;
use heapdiag::report::{render, Format, Render};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Where did the memory go? Offline analysis of Windows user-mode dumps.
#[derive(Parser)]
#[command(name = "heapdiag", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    #[command(flatten)]
    symbols: SymbolArgs,
    #[command(flatten)]
    output: Output,
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
    output: Output,
}

/// `heapdiag top`.
#[derive(Args)]
struct TopArgs {
    /// The dump file (.dmp).
    dump: PathBuf,
    /// What to rank by.
    #[arg(long, value_enum, default_value = "module")]
    by: ByArg,
    #[command(flatten)]
    ranking: RankArgs,
    #[command(flatten)]
    output: Output,
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
}

#[derive(Args)]
struct SymbolArgs {
    /// Folders with PDBs, flat or in symbol-store layout (name.pdb/GUIDAGE/name.pdb); repeatable.
    /// The local cache folders of _NT_SYMBOL_PATH are searched too. ntdll.pdb gives the heap
    /// structure offsets of any Windows build; module PDBs give function names.
    #[arg(long = "symbols", value_name = "PATH")]
    paths: Vec<PathBuf>,
}

impl SymbolArgs {
    fn path(&self) -> SymbolPath {
        let env = std::env::var("_NT_SYMBOL_PATH").ok();
        SymbolPath::new(&self.paths, env.as_deref())
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
    /// Requested size within MIN..=MAX, like `!heap -flt r` (decimal, or hex with 0x).
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
}

impl RankArgs {
    fn ranking(self, by: ByArg) -> Ranking {
        Ranking {
            by: by.into(),
            limit: self.limit,
            symbols: self.symbols.path(),
            skip: self.skip,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ByArg {
    Module,
    Function,
    Stack,
    Size,
    Heap,
}

impl From<ByArg> for By {
    fn from(b: ByArg) -> By {
        match b {
            ByArg::Module => By::Module,
            ByArg::Function => By::Function,
            ByArg::Stack => By::Stack,
            ByArg::Size => By::Size,
            ByArg::Heap => By::Heap,
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
    let cli = Cli::parse();
    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let result = run(cli, &mut stdout);
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
fn show<V: Render>(view: &V, format: Format, out: &mut dyn Write) -> Result<Exit, Error> {
    let _ = render(view, format, out);
    Ok(Exit::Success)
}

/// Run a command and render its view to `out`; the result says how the run ends.
fn run(cli: Cli, out: &mut dyn Write) -> Result<Exit, Error> {
    match cli.command {
        Command::Info(a) => a.run(out),
        Command::Address(a) => a.run(out),
        Command::Heaps(a) => a.run(out),
        Command::Blocks(a) => a.run(out),
        Command::Top(a) => a.run(out),
        Command::Diff(a) => a.run(out),
        Command::Block(a) => a.run(out),
        Command::Leaks(a) => a.run(out),
    }
}

impl InfoArgs {
    fn run(self, out: &mut dyn Write) -> Result<Exit, Error> {
        let view = commands::info(&Dump::open(&self.dump)?, self.modules);
        show(&view, format(self.json, false), out)
    }
}

impl AddressArgs {
    fn run(self, out: &mut dyn Write) -> Result<Exit, Error> {
        let filter = RegionFilter::parse(&self.filter).map_err(|m| Error::new(Exit::Usage, m))?;
        let view = commands::address(&Dump::open(&self.dump)?, self.regions, &filter);
        show(&view, self.output.format(), out)
    }
}

impl HeapsArgs {
    fn run(self, out: &mut dyn Write) -> Result<Exit, Error> {
        let (dump, symbols) = (Dump::open(&self.dump)?, self.symbols.path());
        if self.stat {
            let view = commands::heap_stat(&dump, self.heap, self.limit, &symbols)?;
            show(&view, self.output.format(), out)
        } else {
            show(&commands::heaps(&dump, &symbols), self.output.format(), out)
        }
    }
}

impl BlocksArgs {
    fn run(self, out: &mut dyn Write) -> Result<Exit, Error> {
        let dump = Dump::open(&self.dump)?;
        let view = commands::blocks(&dump, self.filter.into(), &self.symbols.path())?;
        show(&view, self.output.format(), out)
    }
}

impl TopArgs {
    fn run(self, out: &mut dyn Write) -> Result<Exit, Error> {
        let view = commands::top(&Dump::open(&self.dump)?, &self.ranking.ranking(self.by));
        show(&view, self.output.format(), out)
    }
}

impl DiffArgs {
    fn run(self, out: &mut dyn Write) -> Result<Exit, Error> {
        let (old, new) = (Dump::open(&self.old)?, Dump::open(&self.new)?);
        let ranking = self.ranking.ranking(self.by);
        let view = commands::diff(&old, &new, &ranking, self.per_stack)?;
        show(&view, self.output.format(), out)?;
        commands::gate(&view, self.fail_over, self.per_stack).map(|()| Exit::Success)
    }
}

impl LeaksArgs {
    fn run(self, out: &mut dyn Write) -> Result<Exit, Error> {
        let dump = Dump::open(&self.dump)?;
        let set = match self.roots {
            RootsArg::Standard => RootSet::Standard,
            RootsArg::More => RootSet::More,
        };
        let format = self.output.format();
        let ranking = self.ranking.ranking(self.by);
        match self.why {
            Some(addr) => show(
                &commands::leaks::why(&dump, addr, &ranking, set)?,
                format,
                out,
            ),
            None => show(&commands::leaks::leaks(&dump, &ranking, set)?, format, out),
        }
    }
}

impl BlockArgs {
    fn run(self, out: &mut dyn Write) -> Result<Exit, Error> {
        let view = commands::block(&Dump::open(&self.dump)?, self.address, &self.symbols.path());
        show(&view, format(self.json, false), out)?;
        Ok(match view.found {
            Some(_) => Exit::Success,
            None => Exit::NotAnswerable,
        })
    }
}
