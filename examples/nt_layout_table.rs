//! Maintainer tool: write an NT heap layout table (the form of `src/layout/nt_heap/*.txt`) from an
//! ntdll PDB, for a Windows build whose offsets heapdiag does not know yet.
//!
//! ```sh
//! cargo run --example nt_layout_table -- ntdll.pdb win10-1809 10.0.26100 > src/layout/nt_heap/win11-24h2-x64.txt
//! ```
//!
//! FAMILY says what the walkers do with it (`win7`, `win8`, `win81`, `win10-1607`, `win10-1809`:
//! the LFH design and how user blocks store their offsets); SINCE is the first ntdll version the
//! table is for (a version takes the latest table not newer than itself). The bitness comes from
//! the PDB. Add the file to `TABLE_FILES` in `src/layout/nt_heap.rs`; rows the layout uses but
//! the PDB lacks are listed on standard error.

use heapdiag::layout::nt_heap::{self, NtTable};
use heapdiag::layout::pdb;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, family, since] = &args[..] else {
        eprintln!(
            "usage: nt_layout_table NTDLL.PDB FAMILY SINCE (e.g. ntdll.pdb win10-1809 10.0.26100)"
        );
        return ExitCode::from(2);
    };
    match table(path, family, since) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nt_layout_table: {path}: {e}");
            ExitCode::from(1)
        }
    }
}

fn table(path: &str, family: &str, since: &str) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let bits = pdb::pdb_bits(&bytes).ok_or("the PDB does not say whether it is x86 or x64")?;
    // Parse the header through the table reader, so that a bad family or version is refused the
    // same way a bad table file would be.
    let header = format!("family {family}\nbits {bits}\nsince {since}\n");
    let mut t = NtTable::parse(&header)?;
    t.rows = pdb::nt_rows(&bytes)?;
    for missing in nt_heap::missing(&t.rows) {
        eprintln!("nt_layout_table: the PDB has no {missing}; the table leaves it out");
    }
    let name = std::path::Path::new(path)
        .file_name()
        .map_or(path.to_string(), |n| n.to_string_lossy().into_owned());
    Ok(t.write(&[
        format!(
            "NT heap structure offsets for ntdll {since} and later ({}-bit).",
            bits
        ),
        format!("Written by `cargo run --example nt_layout_table` from {name}."),
    ]))
}
