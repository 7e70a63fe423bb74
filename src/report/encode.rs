//! Row encoders for the outputs that write millions of rows (`blocks --json`, `--jsonl`, `--csv`):
//! numbers written straight into a reused byte buffer (hex digits from a table, decimals with
//! `itoa`), the frames of a stack record encoded once and copied into every row that points to it,
//! and the rows encoded in chunks on every core, written in order. The output is byte for byte what
//! serializing the rows with serde gives (the golden transcripts pin it).

use rayon::prelude::*;
use std::io::{self, Write};

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Append `0x…` (lower case, no padding) for `v`.
pub fn hex(buf: &mut Vec<u8>, v: u64) {
    let nibbles = ((64 - v.leading_zeros()).div_ceil(4)).max(1) as usize;
    buf.extend_from_slice(b"0x");
    let start = buf.len();
    buf.resize(start + nibbles, 0);
    let mut x = v;
    for d in buf[start..].iter_mut().rev() {
        *d = DIGITS[(x & 0xf) as usize];
        x >>= 4;
    }
}

/// Append `"0x…"` (a JSON string) for `v`.
pub fn hex_string(buf: &mut Vec<u8>, v: u64) {
    buf.push(b'"');
    hex(buf, v);
    buf.push(b'"');
}

/// Append the decimal digits of `v`.
pub fn dec(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// A JSON array of `"0x…"` strings: a stack's frames, encoded once per record.
pub fn hex_array(frames: &[u64]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(2 + frames.len() * 16);
    buf.push(b'[');
    for (i, &f) in frames.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        hex_string(&mut buf, f);
    }
    buf.push(b']');
    buf
}

/// Append a JSON array of strings (escaped as JSON asks): a stack's frame texts, encoded once per
/// record.
pub fn string_array(buf: &mut Vec<u8>, items: &[String]) {
    // Writing into a Vec cannot fail, and strings always serialize.
    serde_json::to_writer(&mut *buf, items).expect("strings serialize into a Vec");
}

/// Rows per chunk one thread encodes.
const CHUNK: usize = 16 * 1024;

/// Encode `rows` with `encode` (which appends one row, without separators) on every core and
/// write them to `out` in order, each preceded by `first` (the first row) or `between` (the
/// others). A window of a few chunks per core is encoded at a time, into buffers reused from
/// window to window: their memory is faulted in once, not once per chunk.
pub fn write_rows<T: Sync>(
    out: &mut dyn Write,
    rows: &[T],
    (first, between): (&[u8], &[u8]),
    encode: impl Fn(&mut Vec<u8>, &T) + Sync,
) -> io::Result<()> {
    let window = CHUNK * 4 * rayon::current_num_threads().max(1);
    let mut buffers: Vec<Vec<u8>> = Vec::new();
    for (w, batch) in rows.chunks(window).enumerate() {
        let n = batch.len().div_ceil(CHUNK);
        if buffers.len() < n {
            buffers.resize_with(n, Vec::new);
        }
        buffers[..n]
            .par_iter_mut()
            .zip(batch.par_chunks(CHUNK))
            .enumerate()
            .for_each(|(c, (buf, chunk))| {
                buf.clear();
                for (i, row) in chunk.iter().enumerate() {
                    let sep = if w == 0 && c == 0 && i == 0 {
                        first
                    } else {
                        between
                    };
                    buf.extend_from_slice(sep);
                    encode(buf, row);
                }
            });
        for b in &buffers[..n] {
            out.write_all(b)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_matches_the_formatter() {
        for v in [
            0u64,
            1,
            0xf,
            0x10,
            0xabc,
            0x7fff_ffff,
            u64::MAX,
            0x1f5a_0000_0000,
        ] {
            let mut b = Vec::new();
            hex(&mut b, v);
            assert_eq!(String::from_utf8(b).unwrap(), format!("{v:#x}"));
        }
        let mut b = Vec::new();
        dec(&mut b, 1234567);
        assert_eq!(b, b"1234567");
        assert_eq!(hex_array(&[1, 0x20]), br#"["0x1","0x20"]"#);
        assert_eq!(hex_array(&[]), b"[]");
        let mut b = Vec::new();
        string_array(&mut b, &["a\"b".into(), "ntdll+0x10".into()]);
        assert_eq!(b, br#"["a\"b","ntdll+0x10"]"#);
    }

    #[test]
    fn rows_keep_their_order_across_chunks() {
        let rows: Vec<u64> = (0..(CHUNK as u64 * 9 + 17)).collect();
        let mut out = Vec::new();
        write_rows(&mut out, &rows, (b"", b","), |b, r| dec(b, *r)).unwrap();
        let want: Vec<String> = rows.iter().map(u64::to_string).collect();
        assert_eq!(String::from_utf8(out).unwrap(), want.join(","));
    }
}
