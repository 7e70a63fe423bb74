//! Typed values that every view holds and every renderer maps to text once: addresses, shares in
//! percent, timestamps, and the serializers that give them their JSON form (`docs/json.md`).
//!
//! A leaf module: the views (and the analysis results that serve as views) use these types, the
//! renderers format them; nothing here knows a dump.

use serde::{Serialize, Serializer};
use std::fmt;

/// An address (or any value shown in hex): `"0x…"` in JSON and CSV, `0x…` in text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hex(pub u64);

/// `0x…`, padded as the format asks (`{:>14}`).
impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.width().is_none() {
            write!(f, "{:#x}", self.0)
        } else {
            f.pad(&format!("{:#x}", self.0))
        }
    }
}

/// Written straight into the output: millions of block rows serialize several each.
impl Serialize for Hex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:#x}", self.0))
    }
}

/// `part` as a share of `whole`, in percent (0 when `whole` is 0).
pub fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// A percentage rounded to 1/10000 of a percent: enough for any comparison, stable across
/// platforms (the JSON form of shares).
pub fn round4(p: f64) -> f64 {
    (p * 10_000.0).round() / 10_000.0
}

/// Serialize a percentage as [`round4`] gives it.
pub fn percent4<S: Serializer>(p: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(round4(*p))
}

/// Serialize an optional percentage as [`round4`] gives it (`null` when absent).
pub fn percent4_opt<S: Serializer>(p: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    p.map(round4).serialize(s)
}

/// Serialize a percentage to two decimals.
pub fn percent2<S: Serializer>(p: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((p * 100.0).round() / 100.0)
}

/// Serialize a value as a `"0x…"` string.
pub fn hex<S: Serializer, T: Copy + Into<u64>>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    Hex((*v).into()).serialize(s)
}

/// Serialize an optional value as a `"0x…"` string, or `null`.
pub fn hex_opt<S: Serializer, T: Copy + Into<u64>>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    v.map(|v| Hex(v.into())).serialize(s)
}

/// A byte total in human units, one decimal, 1 kB = 1024 bytes as Windows counts: `422 B`,
/// `713.1 kB`, `1.4 MB` (humansize's Windows style), the one way sizes are written.
pub fn size(bytes: u64) -> String {
    humansize::format_size(bytes, humansize::WINDOWS.decimal_places(1))
}

/// `1 block`, `2 blocks`, `1 entry`, `3 entries`: a count with its noun, singular or plural.
pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        return format!("1 {noun}");
    }
    match noun.strip_suffix('y') {
        Some(stem) if !stem.ends_with(['a', 'e', 'o', 'u']) => format!("{n} {stem}ies"),
        _ => format!("{n} {noun}s"),
    }
}

/// Seconds since 1970 as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(secs: u32) -> String {
    let days = i64::from(secs / 86_400);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's public-domain algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_shares() {
        assert_eq!(Hex(0x7efd_f000).to_string(), "0x7efdf000");
        assert_eq!(
            format!("{:>6}|{:<6}|", Hex(0x10), Hex(0x20)),
            "  0x10|0x20  |"
        );
        assert_eq!(serde_json::to_string(&Hex(0)).unwrap(), "\"0x0\"");
        assert_eq!(pct(1, 3), 100.0 / 3.0);
        assert_eq!(pct(5, 0), 0.0);
        assert_eq!(round4(33.333_333), 33.3333);
    }

    #[test]
    fn plurals() {
        assert_eq!(plural(1, "free block"), "1 free block");
        assert_eq!(plural(0, "heap"), "0 heaps");
        assert_eq!(plural(3, "entry"), "3 entries");
        assert_eq!(plural(2, "key"), "2 keys");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_456_272_589), "2016-02-24 00:09:49 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
