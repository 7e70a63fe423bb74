//! Renderers: each view ([`crate::view`]) written as text, JSON or CSV to any writer. Nothing here
//! reads the dump or walks structures; every number a renderer prints is already in the view, and
//! each renderer only chooses its text (see `format`).
//!
//! A view implements [`Render`] in the file named after it: its text in a function per section,
//! its CSV as a list of columns ([`csv::Column`]); its JSON is the view itself, serialized
//! ([`json::pretty`]), so that the JSON field names are the view's field names. Text and CSV go
//! through a [`TextSink`]: no line ends in spaces, and no control character from a dump or a PDB
//! reaches the terminal.

pub mod address;
pub mod blocks;
pub mod csv;
pub mod diff;
pub mod encode;
pub mod format;
pub mod heaps;
pub mod info;
pub mod json;
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
        Format::Csv => {
            let mut sink = TextSink::new(out);
            view.csv(&mut sink, style)?;
            sink.flush()
        }
    }
}

/// A writer for text meant for a terminal: spaces and tabs at the end of a line are dropped, and
/// control characters other than line feeds and tabs (ESC, CR, NUL, DEL, the C1 controls) are
/// written escaped (`\u{1b}`), whatever the dump or a PDB put into a name.
pub struct TextSink<'a> {
    out: &'a mut dyn Write,
    /// Spaces and tabs not yet written: dropped if the line ends.
    blanks: Vec<u8>,
    /// A 0xC2 byte waiting for the next one (a C1 control is 0xC2 0x80..=0x9F in UTF-8).
    c2: bool,
    buf: Vec<u8>,
}

impl<'a> TextSink<'a> {
    /// A sink writing to `out`.
    pub fn new(out: &'a mut dyn Write) -> Self {
        TextSink {
            out,
            blanks: Vec::new(),
            c2: false,
            buf: Vec::new(),
        }
    }

    fn text_byte(&mut self, b: u8) {
        self.buf.append(&mut self.blanks);
        self.buf.push(b);
    }

    fn escaped(&mut self, c: char) {
        self.buf.append(&mut self.blanks);
        for e in c.escape_debug() {
            let mut tmp = [0u8; 4];
            self.buf
                .extend_from_slice(e.encode_utf8(&mut tmp).as_bytes());
        }
    }
}

impl Write for TextSink<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.clear();
        for &b in data {
            if std::mem::take(&mut self.c2) {
                if (0x80..=0x9f).contains(&b) {
                    self.escaped(char::from(b));
                    continue;
                }
                self.text_byte(0xc2);
            }
            match b {
                b' ' | b'\t' => self.blanks.push(b),
                b'\n' => {
                    self.blanks.clear();
                    self.buf.push(b'\n');
                }
                0..=0x1f | 0x7f => self.escaped(char::from(b)),
                0xc2 => {
                    self.buf.append(&mut self.blanks);
                    self.c2 = true;
                }
                _ => self.text_byte(b),
            }
        }
        self.out.write_all(&self.buf)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.c2) {
            self.out.write_all(&[0xc2])?;
        }
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
    }
}
