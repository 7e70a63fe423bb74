//! Number formats shared by the text renderers: WinDbg-style addresses and sizes, percentages,
//! and UTC timestamps.

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

/// `0x7efdf000`.
pub fn addr(v: u64) -> String {
    format!("{v:#x}")
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

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_456_272_589), "2016-02-24 00:09:49 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
