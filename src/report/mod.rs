//! Renderers: each view ([`crate::view`]) written as text, JSON or CSV to any writer. Nothing here
//! reads the dump or walks structures; every number a renderer prints is already in the view, and
//! each renderer only chooses its text (see `format`).
//!
//! A view implements [`Render`] in the file named after it: its text in a function per section,
//! its CSV as a list of columns ([`csv::Column`]); its JSON is the view itself, serialized
//! ([`json::pretty`]), so that the JSON field names are the view's field names.

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

/// A view that can be written in every format.
pub trait Render: Serialize {
    /// The text view.
    fn text(&self, out: &mut dyn Write) -> io::Result<()>;
    /// The JSON view (`docs/json.md`): the view serialized; views that stream their rows write
    /// them as they come.
    fn json(&self, out: &mut dyn Write) -> io::Result<()> {
        json::pretty(self, out)
    }
    /// The CSV view; views without one write their text.
    fn csv(&self, out: &mut dyn Write) -> io::Result<()> {
        self.text(out)
    }
}

/// Write `view` to `out` in `format`.
pub fn render<V: Render + ?Sized>(view: &V, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Text => view.text(out),
        Format::Json => view.json(out),
        Format::Csv => view.csv(out),
    }
}
