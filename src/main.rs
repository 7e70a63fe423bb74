//! The `heapdiag` command line: parses arguments, wires the layers together, prints.

use clap::{Args, Parser, Subcommand};
use heapdiag::analysis::blocks::BlockFilter;
use heapdiag::analysis::top::By;
use heapdiag::commands::{self, Format};
use heapdiag::dump::Dump;
use heapdiag::error::Error;
use heapdiag::heap::{FrontEnd, State};
use heapdiag::pdbfile::SymbolPath;
use heapdiag::regions::filter::RegionFilter;
use heapdiag::symsrv::{http::FetchOptions, SymbolOptions};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
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

#[derive(Subcommand)]
enum Command {
    /// Process facts and what this dump can and cannot answer.
    Info {
        /// The dump file (.dmp).
        dump: PathBuf,
        /// List every module.
        #[arg(long)]
        modules: bool,
        /// Machine-readable output (see docs/json.md).
        #[arg(long)]
        json: bool,
    },
    /// Address-space usage, like WinDbg's `!address -summary`.
    Address {
        /// The dump file (.dmp).
        dump: PathBuf,
        /// List every region instead of the summary.
        #[arg(long)]
        regions: bool,
        /// With --regions: keep regions matching these names, like `!address -f:` (comma-separated;
        /// e.g. Heap,Stack or MEM_COMMIT or PAGE_READWRITE; names of one kind OR, kinds AND).
        #[arg(short = 'f', long = "filter", value_name = "NAMES")]
        filter: Vec<String>,
        #[command(flatten)]
        output: Output,
    },
    /// Every heap with its totals, like `!heap -s`; with --stat the size histogram, like `!heap -stat -h`.
    Heaps {
        /// The dump file (.dmp).
        dump: PathBuf,
        /// Busy blocks by requested size (count, total, % of busy bytes), largest total first.
        #[arg(long)]
        stat: bool,
        /// With --stat: only this heap (address in hex, e.g. 0x700000 or 700000).
        #[arg(long, value_name = "ADDR", value_parser = parse_address)]
        heap: Option<u64>,
        /// With --stat: at most this many sizes per heap.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        symbols: SymbolArgs,
        #[command(flatten)]
        output: Output,
    },
    /// Heap blocks, with filters like `!heap -flt`.
    Blocks {
        /// The dump file (.dmp).
        dump: PathBuf,
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
        #[command(flatten)]
        symbols: SymbolArgs,
        #[command(flatten)]
        output: Output,
    },
    /// Outstanding (busy) memory ranked by allocating module, function, call stack, size or heap,
    /// from the +ust allocation stacks (like UMDH / DebugDiag leak analysis).
    Top {
        /// The dump file (.dmp).
        dump: PathBuf,
        /// What to rank by.
        #[arg(long, value_enum, default_value = "module")]
        by: ByArg,
        /// At most this many entries.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        symbols: SymbolArgs,
        /// Also treat frames matching this pattern as allocator plumbing (`module!function` or a
        /// function name, `*` wildcards; e.g. `mylib!PoolAlloc*`). Repeatable.
        #[arg(long, value_name = "PATTERN")]
        skip: Vec<String>,
        #[command(flatten)]
        output: Output,
    },
    /// What grew between two dumps of the same program, by call stack, module, function, size or
    /// heap, plus the address-usage tables (like UMDH/Dhcmp, offline).
    Diff {
        /// The older dump.
        old: PathBuf,
        /// The newer dump.
        new: PathBuf,
        /// What to compare by.
        #[arg(long, value_enum, default_value = "stack")]
        by: ByArg,
        /// At most this many changes.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        symbols: SymbolArgs,
        /// Also treat frames matching this pattern as allocator plumbing. Repeatable.
        #[arg(long, value_name = "PATTERN")]
        skip: Vec<String>,
        /// CI gate: exit with code 1 when busy heap memory grew by more than BYTES (decimal, or
        /// hex with 0x).
        #[arg(long, value_name = "BYTES", value_parser = parse_size)]
        fail_over: Option<u64>,
        /// With --fail-over: compare the growth of each call stack, not the total.
        #[arg(long, requires = "fail_over")]
        per_stack: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Every module with its PDB (name, GUID, age) and where it was found, or why not, like `lm`
    /// with `!sym noisy`; downloads from the symbol servers on the path.
    Symbols {
        /// The dump file (.dmp).
        dump: PathBuf,
        #[command(flatten)]
        symbols: SymbolArgs,
        /// Machine-readable JSON (see docs/json.md).
        #[arg(long)]
        json: bool,
    },
    /// The heap block that holds an address, like `!heap -p -a` (exit code 5 when none does).
    Block {
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
    },
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
    #[arg(long, value_name = "SECONDS", default_value_t = 20.0)]
    symbol_timeout: f64,
}

impl SymbolArgs {
    fn path(&self) -> Result<SymbolPath, Failure> {
        if !(self.symbol_timeout > 0.0 && self.symbol_timeout <= 3600.0) {
            return Err(Failure::Usage(
                "--symbol-timeout must be more than 0 and at most 3600 seconds".into(),
            ));
        }
        let mut texts = self.paths.clone();
        texts.extend(std::env::var("_NT_SYMBOL_PATH").ok());
        let options = SymbolOptions {
            offline: self.offline,
            fetch: FetchOptions {
                timeout: Duration::from_secs_f64(self.symbol_timeout),
                progress: Some(|line| eprintln!("heapdiag: {line}")),
                ..FetchOptions::default()
            },
        };
        Ok(SymbolPath::with_options(&texts, options))
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
    match result {
        Ok(text) => {
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
            ExitCode::SUCCESS
        }
        Err(Failure::Dump(e)) => {
            eprintln!("heapdiag: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
        Err(Failure::Usage(m)) => {
            eprintln!("heapdiag: {m}");
            ExitCode::from(2)
        }
        Err(Failure::NotFound(text)) => {
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            ExitCode::from(5)
        }
        Err(Failure::Incomparable(m)) => {
            eprintln!("heapdiag: {m}");
            ExitCode::from(6)
        }
        Err(Failure::Gate(text, m)) => {
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            eprintln!("heapdiag: {m}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    Dump(Error),
    Usage(String),
    /// The answer is "not there": printed, with exit code 5.
    NotFound(String),
    /// Two dumps that cannot be compared: exit code 6.
    Incomparable(String),
    /// The `--fail-over` gate tripped: the output, and why (exit code 1).
    Gate(String, String),
}

impl From<commands::NoSuchHeap> for Failure {
    fn from(e: commands::NoSuchHeap) -> Self {
        Failure::Usage(e.0)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Dump(e)
    }
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

/// Run a command: small views come back as text; large ones (`blocks`) are streamed to `out`.
fn run(cli: Cli, out: &mut dyn Write) -> Result<String, Failure> {
    match cli.command {
        Command::Info {
            dump,
            modules,
            json,
        } => {
            let dump = Dump::open(&dump)?;
            Ok(commands::info(&dump, format(json, false), modules))
        }
        Command::Address {
            dump,
            regions,
            filter,
            output,
        } => {
            let filter = RegionFilter::parse(&filter).map_err(Failure::Usage)?;
            if !filter.is_empty() && !regions {
                return Err(Failure::Usage("--filter applies to --regions".into()));
            }
            let dump = Dump::open(&dump)?;
            Ok(commands::address(
                &dump,
                format(output.json, output.csv),
                regions,
                &filter,
            ))
        }
        Command::Heaps {
            dump,
            stat,
            heap,
            limit,
            symbols,
            output,
        } => {
            if heap.is_some() && !stat {
                return Err(Failure::Usage("--heap applies to --stat".into()));
            }
            let dump = Dump::open(&dump)?;
            let f = format(output.json, output.csv);
            let symbols = symbols.path()?;
            if stat {
                Ok(commands::heap_stat(&dump, f, heap, limit, &symbols)?)
            } else {
                Ok(commands::heaps(&dump, f, &symbols))
            }
        }
        Command::Blocks {
            dump,
            heap,
            busy,
            free,
            front_end,
            size,
            size_range,
            internal,
            symbols,
            output,
        } => {
            let filter = BlockFilter {
                heap,
                state: if busy {
                    Some(State::Busy)
                } else if free {
                    Some(State::Free)
                } else {
                    None
                },
                front_end: front_end.map(|f| match f {
                    FrontEndArg::Backend => FrontEnd::Backend,
                    FrontEndArg::Lfh => FrontEnd::Lfh,
                    FrontEndArg::Large => FrontEnd::Large,
                    FrontEndArg::Vs => FrontEnd::Vs,
                    FrontEndArg::PageHeap => FrontEnd::PageHeap,
                }),
                size,
                size_range: size_range.map(|v| (v[0], v[1])),
                internal,
            };
            let dump = Dump::open(&dump)?;
            // Write errors (a closed pipe) end the output quietly.
            let _ = commands::blocks(
                &dump,
                format(output.json, output.csv),
                &filter,
                &symbols.path()?,
                out,
            )?;
            Ok(String::new())
        }
        Command::Top {
            dump,
            by,
            limit,
            symbols,
            skip,
            output,
        } => {
            let dump = Dump::open(&dump)?;
            Ok(commands::top(
                &dump,
                format(output.json, output.csv),
                by.into(),
                limit,
                &symbols.path()?,
                &skip,
            ))
        }
        Command::Diff {
            old,
            new,
            by,
            limit,
            symbols,
            skip,
            fail_over,
            per_stack,
            output,
        } => {
            let old = Dump::open(&old)?;
            let new = Dump::open(&new)?;
            let outcome = commands::diff(
                &old,
                &new,
                format(output.json, output.csv),
                by.into(),
                limit,
                &symbols.path()?,
                &skip,
                per_stack,
            )
            .map_err(|e| Failure::Incomparable(e.0))?;
            match fail_over {
                Some(limit) if per_stack && outcome.max_stack_growth > i128::from(limit) => {
                    Err(Failure::Gate(
                        outcome.text,
                        format!(
                            "a call stack grew by {} bytes, over --fail-over {limit}",
                            outcome.max_stack_growth
                        ),
                    ))
                }
                Some(limit) if !per_stack && outcome.growth > i128::from(limit) => {
                    Err(Failure::Gate(
                        outcome.text,
                        format!(
                            "busy heap memory grew by {} bytes, over --fail-over {limit}",
                            outcome.growth
                        ),
                    ))
                }
                _ => Ok(outcome.text),
            }
        }
        Command::Symbols {
            dump,
            symbols,
            json,
        } => {
            let symbols = symbols.path()?;
            let dump = Dump::open(&dump)?;
            Ok(commands::symbols(&dump, format(json, false), &symbols))
        }
        Command::Block {
            dump,
            address,
            symbols,
            json,
        } => {
            let dump = Dump::open(&dump)?;
            match commands::block(&dump, format(json, false), address, &symbols.path()?) {
                (text, true) => Ok(text),
                (text, false) => Err(Failure::NotFound(text)),
            }
        }
    }
}
