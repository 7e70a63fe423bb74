//! The JSON form of a view: the view serialized (`docs/json.md` is its contract), pretty-printed
//! and ended with a newline.

use serde::Serialize;
use std::io::{self, Write};

/// Write `view` as one pretty-printed JSON document.
pub fn pretty<T: Serialize + ?Sized>(view: &T, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, view).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

/// Write one value as compact JSON (a row of a streamed array).
pub fn compact<T: Serialize + ?Sized>(value: &T, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(io::Error::other)
}
