//! CSV: one header line, then one line per row, every field quoted as RFC 4180 asks. A view's CSV
//! is a list of [`Column`]s: a name and how to write the cell of one row (text, a number, or an
//! address in hex).

use crate::symsrv::name::printable;
use std::fmt::Write as _;
use std::io::{self, Write};

/// How a column writes its cell.
pub enum Cell<R: ?Sized> {
    /// Text (the empty string for a value the row does not have).
    Text(fn(&R) -> String),
    /// A number, in decimal.
    Number(fn(&R) -> u64),
    /// An address, `0x…`.
    Hex(fn(&R) -> u64),
}

/// One CSV column over rows of type `R`.
pub struct Column<R: ?Sized> {
    /// Its header.
    pub name: &'static str,
    /// Its cell.
    pub cell: Cell<R>,
}

/// A text column.
pub const fn col<R: ?Sized>(name: &'static str, cell: fn(&R) -> String) -> Column<R> {
    Column {
        name,
        cell: Cell::Text(cell),
    }
}

/// A number column.
pub const fn num<R: ?Sized>(name: &'static str, cell: fn(&R) -> u64) -> Column<R> {
    Column {
        name,
        cell: Cell::Number(cell),
    }
}

/// An address column.
pub const fn hex<R: ?Sized>(name: &'static str, cell: fn(&R) -> u64) -> Column<R> {
    Column {
        name,
        cell: Cell::Hex(cell),
    }
}

/// Write `s` as a field, quoted when it holds a separator, a quote or a line break; control
/// characters (from names in the dump) are written escaped (`\u{1b}`), as the text views do.
fn field(out: &mut dyn Write, s: &str) -> io::Result<()> {
    let s = printable(s);
    if s.contains([',', '"', '\n', '\r']) {
        write!(out, "\"{}\"", s.replace('"', "\"\""))
    } else {
        out.write_all(s.as_bytes())
    }
}

/// Write the header of `columns`.
pub fn header<R: ?Sized>(out: &mut dyn Write, columns: &[Column<R>]) -> io::Result<()> {
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        field(out, c.name)?;
    }
    out.write_all(b"\n")
}

/// Write one row; `buf` is scratch space reused from row to row.
pub fn row<R: ?Sized>(
    out: &mut dyn Write,
    columns: &[Column<R>],
    r: &R,
    buf: &mut String,
) -> io::Result<()> {
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        buf.clear();
        let _ = match &c.cell {
            Cell::Text(f) => write!(buf, "{}", f(r)),
            Cell::Number(f) => write!(buf, "{}", f(r)),
            Cell::Hex(f) => write!(buf, "{:#x}", f(r)),
        };
        field(out, buf)?;
    }
    out.write_all(b"\n")
}

/// Write the header and every row.
pub fn table<'a, R: 'a + ?Sized>(
    out: &mut dyn Write,
    columns: &[Column<R>],
    rows: impl IntoIterator<Item = &'a R>,
) -> io::Result<()> {
    header(out, columns)?;
    let mut buf = String::new();
    for r in rows {
        row(out, columns, r, &mut buf)?;
    }
    Ok(())
}

/// An optional value's cell: its text, or empty.
pub fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(T::to_string).unwrap_or_default()
}

/// A share in percent with four decimals.
pub fn pct4(p: f64) -> String {
    format!("{p:.4}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(s: &str) -> String {
        let mut out = Vec::new();
        field(&mut out, s).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn quoting() {
        assert_eq!(quoted("a,b"), "\"a,b\"");
        assert_eq!(quoted("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quoted("<unknown>"), "<unknown>");
        assert_eq!(quoted("evil\u{1b}[31m.pdb"), "evil\\u{1b}[31m.pdb");
    }

    #[test]
    fn columns_make_a_table() {
        let cols: [Column<(u64, &str)>; 3] = [
            num("n", |r| r.0),
            hex("at", |r| r.0),
            col("name", |r| r.1.to_string()),
        ];
        let mut out = Vec::new();
        table(&mut out, &cols, &[(1, "a"), (16, "b,c")]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "n,at,name\n1,0x1,a\n16,0x10,\"b,c\"\n"
        );
    }
}
