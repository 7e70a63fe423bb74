//! What the text renderers share: one style for numbers (counts and byte totals in decimal with
//! human units, addresses in hex), the WinDbg/UMDH radix for `--windbg`, sentences wrapped to the
//! width, and stack frames one per line.

use super::Style;
use crate::analysis::top::By;
use crate::value::plural;
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

/// `( 125.974 TB)`: a size in binary units with three decimals, as `!address -summary` prints it
/// (eight characters of number, 1 kB = 1024 bytes; sizes under 1 kB in bytes).
pub fn windbg_size(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("({bytes:>8} B)");
    }
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("({v:8.3} {})", UNITS[unit])
}

pub use crate::value::size;

/// A change of bytes with its sign: `+126.6 kB`, `-2 kB`, `0 B`.
pub fn signed_size(v: i128) -> String {
    let magnitude = size(u64::try_from(v.unsigned_abs()).unwrap_or(u64::MAX));
    match v.signum() {
        1 => format!("+{magnitude}"),
        -1 => format!("-{magnitude}"),
        _ => magnitude,
    }
}

/// A change of a count with its sign: `+300`, `-4`, `0`.
pub fn signed_count(v: i128) -> String {
    if v > 0 {
        format!("+{v}")
    } else {
        v.to_string()
    }
}

/// A change of a number of blocks: `+300 blocks`, `-1 block`, `0 blocks`.
pub fn signed_blocks(v: i128) -> String {
    let noun = if v.abs() == 1 { "block" } else { "blocks" };
    format!("{} {noun}", signed_count(v))
}

/// The size of one block, exact: `422 B`, `528948 B` (what `blocks --size` takes).
pub fn exact(bytes: u64) -> String {
    format!("{bytes} B")
}

/// A size cell of a table: the number right-aligned and the unit in a column of its own, so that
/// the units line up (`  713.1 kB`, `    422 B `).
pub fn size_cell(text: &str, width: usize) -> String {
    let (number, unit) = text.rsplit_once(' ').unwrap_or((text, ""));
    format!("{number:>w$} {unit:<2}", w = width.saturating_sub(3))
}

/// `98.42%`.
pub fn percent(p: f64) -> String {
    format!("{p:.2}%")
}

/// `3 × 422 B`: a number of blocks of one size.
pub fn blocks_of(count: u64, size: u64) -> String {
    format!("{count} × {}", exact(size))
}

/// `26 blocks, 713.1 kB`.
pub fn blocks_and_bytes(count: u64, bytes: u64) -> String {
    format!("{}, {}", plural(count, "block"), size(bytes))
}

/// Write `text` wrapped to the style's width: the first line after `first`, the others indented
/// as wide as `first`. Words are never cut (a long path stays whole on its own line).
pub fn paragraph(out: &mut dyn Write, style: &Style, first: &str, text: &str) -> io::Result<()> {
    let indent = " ".repeat(textwrap::core::display_width(first));
    let options = textwrap::Options::new(style.width.max(40))
        .initial_indent(first)
        .subsequent_indent(&indent)
        .break_words(false)
        .word_splitter(textwrap::WordSplitter::NoHyphenation);
    for line in textwrap::wrap(&glue_units(text), options) {
        writeln!(out, "{}", line.replace(NO_BREAK, " "))?;
    }
    Ok(())
}

/// A no-break space: keeps a number and its unit on one line while wrapping.
const NO_BREAK: char = '\u{a0}';

/// `text` with the space between a number and its unit (`216 kB`) made a no-break space.
fn glue_units(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev = None;
    for (i, c) in text.char_indices() {
        let unit_follows = || {
            let rest = &text[i + 1..];
            let word = rest.split([' ', ',', ';', ')', ':']).next().unwrap_or("");
            matches!(word, "B" | "kB" | "MB" | "GB" | "TB")
        };
        if c == ' ' && prev.is_some_and(|p: char| p.is_ascii_digit()) && unit_follows() {
            out.push(NO_BREAK);
        } else {
            out.push(c);
        }
        prev = Some(c);
    }
    out
}

/// `Note: …` for each note, wrapped, after `indent`.
pub fn notes(out: &mut dyn Write, style: &Style, indent: &str, notes: &[String]) -> io::Result<()> {
    for n in notes {
        paragraph(out, style, &format!("{indent}Note: "), n)?;
    }
    Ok(())
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

/// What a ranking (`top`, `diff`) prints after its headline: its notes (`Note: …`), the line
/// saying what stands out, an empty line, then its entries: as `stacks` when ranked `by` stack,
/// else as a `table`.
pub fn ranked(
    out: &mut dyn Write,
    style: &Style,
    (notes_, stands_out): (&[String], Option<&str>),
    by: By,
    stacks: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    table: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    notes(out, style, "", notes_)?;
    if let Some(s) = stands_out {
        paragraph(out, style, "Stands out: ", s)?;
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

/// The title of a ranking's key column.
pub fn key_title(by: By) -> &'static str {
    match by {
        By::Module => "Module",
        By::Function => "Function",
        By::Stack => "Stack",
        By::Size => "Size",
        By::Heap => "Heap",
        By::Type => "Type",
    }
}

/// A ranking's table (`top`, `diff` by anything but stack): a header of the `columns`' titles and
/// the title of what it is keyed by, then per row its cells and its `key`.
pub fn ranking_table<R>(
    out: &mut dyn Write,
    columns: &[TableColumn<R>],
    by: By,
    rows: &[R],
    key: impl Fn(&R) -> String,
) -> io::Result<()> {
    let line = |out: &mut dyn Write, cell: &dyn Fn(&TableColumn<R>) -> String, key: &str| {
        for (i, c) in columns.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(out, "{sep}{:>w$}", cell(c), w = c.width)?;
        }
        writeln!(out, "  {key}")
    };
    line(out, &|c| c.title.to_string(), key_title(by))?;
    for r in rows {
        line(out, &|c| (c.cell)(r), &key(r))?;
    }
    Ok(())
}

/// The leak suspects a ranking ends with, each with its evidence, strongest first; `more` says
/// what else could be evidence (that `leaks` adds unreachable blocks).
pub fn suspects(
    out: &mut dyn Write,
    style: &Style,
    list: &[SuspectView],
    more: &str,
) -> io::Result<()> {
    writeln!(out, "\nLeak suspects (strongest evidence first{more})")?;
    if list.is_empty() {
        return writeln!(
            out,
            "  none: no stack has unreachable blocks, grew, holds many blocks of one size or a large share"
        );
    }
    for (i, s) in list.iter().enumerate() {
        let backtrace = s
            .backtrace
            .map(|b| format!(" (BackTrace {b})"))
            .unwrap_or_default();
        writeln!(out, "{:>3}. {}{backtrace}", i + 1, s.key)?;
        for e in evidence(s) {
            paragraph(out, style, "       - ", &e)?;
        }
    }
    Ok(())
}

/// A suspect's evidence in words, strongest first.
pub fn evidence(s: &SuspectView) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(u) = s.unreachable.filter(|u| u.count > 0) {
        out.push(format!(
            "{} unreachable: no chain of pointers from the roots leads to them",
            blocks_and_bytes(u.count, u.bytes)
        ));
    }
    if let Some(g) = s.growth.filter(|g| g.count != 0 || g.bytes != 0) {
        out.push(format!(
            "{}, {} since the baseline",
            signed_blocks(g.count),
            signed_size(g.bytes)
        ));
    }
    if let Some(x) = s.same_size {
        let from = if s.backtrace.is_some() {
            " from this stack"
        } else {
            ""
        };
        out.push(format!("{}{from}", blocks_of(x.count, x.size)));
    }
    out.push(format!(
        "{:.1}% of the outstanding bytes ({})",
        s.pct_busy,
        blocks_and_bytes(s.outstanding.count, s.outstanding.bytes)
    ));
    out
}

/// UMDH's `+ 5320 (f110 - 9df0)`: a change and the two values it is the difference of, in hex
/// without prefix, as UMDH prints them.
pub fn umdh_change(delta: i128, new: u64, old: u64) -> String {
    let sign = if delta < 0 { '-' } else { '+' };
    format!("{sign} {:x} ( {new:x} - {old:x})", delta.unsigned_abs())
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
        assert_eq!(windbg_size(0x3e8), "(    1000 B)");
        assert_eq!(percent(98.4249), "98.42%");
        assert_eq!(umdh_change(0x5320, 0xf110, 0x9df0), "+ 5320 ( f110 - 9df0)");
        assert_eq!(umdh_change(-0x2018, 0, 0x2018), "- 2018 ( 0 - 2018)");
    }

    #[test]
    fn one_style_for_sizes_and_counts() {
        assert_eq!(size(422), "422 B");
        assert_eq!(size(1024), "1 kB");
        assert_eq!(size(730_228), "713.1 kB");
        assert_eq!(size(1_468_006), "1.4 MB");
        assert_eq!(signed_size(126_600), "+123.6 kB");
        assert_eq!(signed_size(-2048), "-2 kB");
        assert_eq!(signed_size(0), "0 B");
        assert_eq!(signed_count(300), "+300");
        assert_eq!(signed_count(-4), "-4");
        assert_eq!(signed_blocks(-1), "-1 block");
        assert_eq!(signed_blocks(300), "+300 blocks");
        assert_eq!(exact(528_948), "528948 B");
        assert_eq!(blocks_of(300, 422), "300 × 422 B");
        assert_eq!(blocks_and_bytes(1, 16), "1 block, 16 B");
        assert_eq!(size_cell("713.1 kB", 10), "  713.1 kB");
        assert_eq!(size_cell("422 B", 10), "    422 B ");
    }

    #[test]
    fn paragraphs_wrap_at_words() {
        let mut out = Vec::new();
        let style = Style {
            width: 40,
            ..Style::default()
        };
        let text =
            "symbols missing for 2 modules: /a/very/long/path/that/is/not/cut/at/all.pdb and more";
        paragraph(&mut out, &style, "Note: ", text).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.lines().all(|l| l.len() <= 40 || !l.trim().contains(' ')),
            "{s}"
        );
        assert!(
            s.contains("/a/very/long/path/that/is/not/cut/at/all.pdb"),
            "{s}"
        );
        assert!(s.lines().skip(1).all(|l| l.starts_with("      ")), "{s}");
        // A number keeps its unit.
        let mut out = Vec::new();
        let text = "committed memory: 2.8 MB = native heaps 988 kB + images 216 kB + mapped 512 kB";
        paragraph(&mut out, &style, "x: ", text).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("216 kB") && s.contains("512 kB"), "{s}");
        assert_eq!(
            s.split_whitespace().collect::<Vec<_>>().join(" "),
            format!("x: {text}")
        );
    }
}
