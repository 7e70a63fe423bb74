//! The `heapdiag` command line: parses arguments, wires the layers together, prints.

use clap::{Args, Parser, Subcommand};
use heapdiag::commands::{self, Format};
use heapdiag::dump::Dump;
use heapdiag::error::Error;
use heapdiag::regions::filter::RegionFilter;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(text) => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth reporting.
            let _ = stdout.write_all(text.as_bytes());
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
    }
}

enum Failure {
    Dump(Error),
    Usage(String),
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

fn run(cli: Cli) -> Result<String, Failure> {
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
    }
}
