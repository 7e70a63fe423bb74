//! What the text renderers share: WinDbg-style addresses and sizes, human sizes, percentages,
//! signed changes, and stack frames one per line.

use crate::analysis::top::By;
use crate::view::frame::FrameView;
use crate::view::suspects::SuspectView;
use std::io::{self, Write};

/// An address or size in hex as WinDbg prints it for the target: 64-bit targets split the high and
/// low 32 bits with a backtick (`7df9`74541000`, `0`00001000`), 32-bit targets print plain hex.
pub fn windbg_hex(v: u64, bits: u32) -> String {
    if bits == 64 {
        format!("{:x}`{:08x}", v >> 32, v & 0xffff_ffff)
    } else {
        format!("{v:x}")
    }
}

/// `( 125.974 TB)`: a size in binary units with three decimals, as `!address -summary` prints it.
pub fn windbg_size(bytes: u64) -> String {
    format!("({})", human(bytes))
}

/// ` 125.974 TB`: eight characters of number, then kB/MB/GB/TB (1 kB = 1024 bytes); sizes under
/// 1 kB print in bytes.
pub fn human(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("{bytes:>8} B");
    }
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:8.3} {}", UNITS[unit])
}

/// `98.42%`.
pub fn percent(p: f64) -> String {
    format!("{p:.2}%")
}

/// A stack's frames, one line per frame and per inlined function after `indent`, then an empty
/// line.
pub fn frame_lines(
    out: &mut dyn Write,
    frames: &Option<Vec<FrameView>>,
    indent: &str,
) -> io::Result<()> {
    for line in frames.iter().flatten().flat_map(FrameView::lines) {
        writeln!(out, "{indent}{line}")?;
    }
    writeln!(out)
}

/// What a ranking (`top`, `diff`) prints after its headline: its notes (`Note: …`), an empty
/// line, then its entries: as UMDH-style `stacks` when ranked `by` stack, else as a `table`.
pub fn ranked(
    out: &mut dyn Write,
    notes: &[String],
    by: By,
    stacks: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    table: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    for n in notes {
        writeln!(out, "Note: {n}")?;
    }
    writeln!(out)?;
    if by == By::Stack {
        stacks(out)
    } else {
        table(out)
    }
}

/// `... N more (--limit)` (`what` names them) when the limit left `n` entries out.
pub fn left_out(out: &mut dyn Write, n: usize, what: &str) -> io::Result<()> {
    if n > 0 {
        writeln!(out, "... {n} {what} (--limit)")?;
    }
    Ok(())
}

/// A column of a ranking's table: its title, its width (cells are right-aligned) and its cell.
pub struct TableColumn<R> {
    /// Title.
    pub title: &'static str,
    /// Width.
    pub width: usize,
    /// The cell of a row.
    pub cell: fn(&R) -> String,
}

/// A column `title` of `width` whose cell `cell` writes.
pub const fn column<R>(
    title: &'static str,
    width: usize,
    cell: fn(&R) -> String,
) -> TableColumn<R> {
    TableColumn { title, width, cell }
}

/// A ranking's table (`top`, `diff` by anything but stack): a header of the `columns`' titles and
/// the title of what it is keyed by, then per row its cells and its `key`.
pub fn ranking_table<R>(
    out: &mut dyn Write,
    columns: &[TableColumn<R>],
    by: By,
    rows: &[R],
    key: fn(&R) -> &str,
) -> io::Result<()> {
    let title = match by {
        By::Module => "Module",
        By::Function => "Function",
        By::Stack => "Stack",
        By::Size => "Size",
        By::Heap => "Heap",
        By::Type => "Type",
    };
    let line = |out: &mut dyn Write, cell: &dyn Fn(&TableColumn<R>) -> String, key: &str| {
        for (i, c) in columns.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(out, "{sep}{:>w$}", cell(c), w = c.width)?;
        }
        writeln!(out, "  {key}")
    };
    line(out, &|c| c.title.to_string(), title)?;
    for r in rows {
        line(out, &|c| (c.cell)(r), key(r))?;
    }
    Ok(())
}

/// The leak suspects a ranking ends with, each with its evidence; `more` says what else could
/// be evidence (e.g. that `leaks` adds unreachable blocks).
pub fn suspects(out: &mut dyn Write, list: &[SuspectView], more: &str) -> io::Result<()> {
    writeln!(out, "\nLeak suspects (strongest evidence first{more})")?;
    if list.is_empty() {
        return writeln!(out, "  none: no stack has unreachable blocks, grew, holds many blocks of one size or a large share");
    }
    for (i, s) in list.iter().enumerate() {
        let backtrace = s
            .backtrace_text()
            .map(|b| format!(" (BackTrace {b})"))
            .unwrap_or_default();
        writeln!(out, "{:>3}. {}{backtrace}", i + 1, s.key)?;
        for e in &s.evidence {
            writeln!(out, "       - {e}")?;
        }
    }
    Ok(())
}

/// `+0x100` / `-0x80`: a change in hex with its sign.
pub fn signed(v: i128) -> String {
    if v < 0 {
        format!("-{:#x}", -v)
    } else {
        format!("+{v:#x}")
    }
}

/// `+1.500 kB` / `-128 B`: a change in human units with its sign.
pub fn signed_human(v: i128) -> String {
    let h = human(v.unsigned_abs() as u64);
    format!("{}{}", if v < 0 { "-" } else { "+" }, h.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_windbg_samples() {
        assert_eq!(windbg_hex(0x7df9_7454_1000, 64), "7df9`74541000");
        assert_eq!(windbg_hex(0x1000, 64), "0`00001000");
        assert_eq!(windbg_hex(0xfd0000, 32), "fd0000");
        assert_eq!(windbg_size(0x7df9_7454_1000), "( 125.974 TB)");
        assert_eq!(windbg_size(0x4c000), "( 304.000 kB)");
        assert_eq!(windbg_size(0x6a01000), "( 106.004 MB)");
        assert_eq!(windbg_size(0xfd000), "(1012.000 kB)");
        assert_eq!(windbg_size(0x1_1b0b_9000), "(   4.423 GB)");
        assert_eq!(percent(98.4249), "98.42%");
    }
}
