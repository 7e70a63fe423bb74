//! Renderers: each view ([`crate::view`]) written as text, JSON or CSV to any writer. Nothing here
//! reads the dump or walks structures; every number a renderer prints is already in the view, and
//! each renderer only chooses its text (see `format`).
//!
//! A view implements [`Render`] in the file named after it: its text in a function per section,
//! its CSV as a list of columns ([`csv::Column`]); its JSON is the view itself, serialized
//! ([`json::pretty`]), so that the JSON field names are the view's field names. Text goes through a
//! [`TextSink`]: no line ends in spaces, and no control character from a dump or a PDB reaches the
//! terminal; CSV cells escape control characters themselves ([`csv`]).

pub mod address;
pub mod analyze;
pub mod blocks;
pub mod csv;
pub mod diff;
pub mod encode;
pub mod folded;
pub mod format;
pub mod heaps;
pub mod html;
pub mod info;
pub mod json;
pub mod leaks;
pub mod symbols;
pub mod top;

use serde::Serialize;
use std::io::{self, Write};

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Human-readable text.
    Text,
    /// JSON (docs/json.md).
    Json,
    /// CSV.
    Csv,
}

/// How the text is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    /// Long sentences (notes, verdicts) are wrapped to this many columns.
    pub width: usize,
    /// `--windbg`: the lines that look like WinDbg's and UMDH's (`!heap -stat`, `!heap -flt`,
    /// `!address`, UMDH's compare) in those tools' own radix (hex), for diffing against old logs.
    pub windbg: bool,
}

/// 100 columns (what the text is wrapped to when it does not go to a terminal), heapdiag's own
/// number style.
impl Default for Style {
    fn default() -> Self {
        Style {
            width: 100,
            windbg: false,
        }
    }
}

/// A view that can be written in every format.
pub trait Render: Serialize {
    /// The text view.
    fn text(&self, out: &mut dyn Write, style: &Style) -> io::Result<()>;
    /// The JSON view (`docs/json.md`): the view serialized; views that stream their rows write
    /// them as they come.
    fn json(&self, out: &mut dyn Write) -> io::Result<()> {
        json::pretty(self, out)
    }
    /// The CSV view; views without one write their text.
    fn csv(&self, out: &mut dyn Write, style: &Style) -> io::Result<()> {
        self.text(out, style)
    }
}

/// Write `view` to `out` in `format` (text laid out as `style` says).
pub fn render<V: Render + ?Sized>(
    view: &V,
    format: Format,
    style: &Style,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Json => view.json(out),
        Format::Text => {
            let mut sink = TextSink::new(out);
            view.text(&mut sink, style)?;
            sink.flush()
        }
        Format::Csv => view.csv(out, style),
    }
}

/// A writer for text meant for a terminal: spaces and tabs at the end of a line are dropped, and
/// control characters other than line feeds
/// and tabs (ESC, CR, NUL, DEL, the C1 controls) are written escaped (`\u{1b}`), whatever the dump
/// or a PDB put into a name. Works on batches of lines: a line without such characters is copied
/// whole. Call `flush` at the end.
pub struct TextSink<'a> {
    out: &'a mut dyn Write,
    /// What was written and not yet passed on (complete lines go out in batches).
    pending: Vec<u8>,
    buf: Vec<u8>,
}

/// Whether a byte starts something [`TextSink`] escapes: a C0 control other than tab, DEL, or
/// 0xC2 (the first byte of a C1 control in UTF-8).
fn needs_escape(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f || b == 0xc2
}

impl<'a> TextSink<'a> {
    /// A sink writing to `out`.
    pub fn new(out: &'a mut dyn Write) -> Self {
        TextSink {
            out,
            pending: Vec::with_capacity(SINK_BATCH * 2),
            buf: Vec::with_capacity(SINK_BATCH * 2),
        }
    }

    /// Append one line (without its line feed) to `buf`, trimmed and escaped.
    fn line(buf: &mut Vec<u8>, line: &[u8]) {
        let end = line
            .iter()
            .rposition(|&b| b != b' ' && b != b'\t')
            .map_or(0, |i| i + 1);
        let line = &line[..end];
        if !line.iter().copied().any(needs_escape) {
            buf.extend_from_slice(line);
            return;
        }
        let mut i = 0;
        while i < line.len() {
            let b = line[i];
            let c1 = b == 0xc2 && line.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n));
            let code = if c1 {
                i += 1;
                Some(char::from(line[i]))
            } else if needs_escape(b) && b != 0xc2 {
                Some(char::from(b))
            } else {
                None
            };
            match code {
                Some(c) => {
                    for e in c.escape_debug() {
                        let mut tmp = [0u8; 4];
                        buf.extend_from_slice(e.encode_utf8(&mut tmp).as_bytes());
                    }
                }
                None => buf.push(b),
            }
            i += 1;
        }
    }

    /// Whether `batch` can be written as it is: no character to escape, no blank at the end of a
    /// line (or of the batch).
    fn clean(batch: &[u8]) -> bool {
        let blank = |b: &u8| matches!(b, b' ' | b'\t');
        !batch.iter().any(|&b| b != b'\n' && needs_escape(b))
            && !batch.windows(2).any(|w| w[1] == b'\n' && blank(&w[0]))
            && !batch.last().is_some_and(blank)
    }

    /// Write out the complete lines held (and, when `all`, the last one without a line feed).
    fn drain(&mut self, all: bool) -> io::Result<()> {
        let end = if all {
            self.pending.len()
        } else {
            match self.pending.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => return Ok(()),
            }
        };
        let batch = &self.pending[..end];
        // Most batches need nothing done: pass them on as they are.
        if Self::clean(batch) {
            self.out.write_all(batch)?;
            self.pending.drain(..end);
            return Ok(());
        }
        self.buf.clear();
        let mut rest = batch;
        while !rest.is_empty() {
            let (line, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                None => (rest, None),
            };
            Self::line(&mut self.buf, line);
            match next {
                Some(n) => {
                    self.buf.push(b'\n');
                    rest = n;
                }
                None => rest = &[],
            }
        }
        self.pending.drain(..end);
        self.out.write_all(&self.buf)
    }
}

/// Bytes held before complete lines are written out.
const SINK_BATCH: usize = 64 * 1024;

impl Write for TextSink<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(data);
        if self.pending.len() >= SINK_BATCH {
            self.drain(false)?;
        }
        Ok(data.len())
    }

    /// Writes everything held, the last line even when it has no line feed.
    fn flush(&mut self) -> io::Result<()> {
        self.drain(true)?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through_sink(pieces: &[&[u8]]) -> String {
        let mut out = Vec::new();
        let mut s = TextSink::new(&mut out);
        for p in pieces {
            s.write_all(p).unwrap();
        }
        s.flush().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn trailing_blanks_are_dropped_inner_ones_kept() {
        assert_eq!(
            through_sink(&[b"a  b  ", b" \t\n", b"\tc ", b"d\n  "]),
            "a  b\n\tc d\n"
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            through_sink(&[b"x\x1b[31my\r\0\n", "é\u{9b}z\n".as_bytes()]),
            "x\\u{1b}[31my\\r\\0\né\\u{9b}z\n"
        );
        // A C1 control split across two writes.
        assert_eq!(through_sink(&[b"a\xc2", b"\x85b\n"]), "a\\u{85}b\n");
        // A last line without a line feed is written too.
        assert_eq!(through_sink(&[b"a\nb  "]), "a\nb");
    }
}
