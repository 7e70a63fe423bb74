//! A module's PDB name and identity, made safe to use: the CodeView record comes from the dump, so
//! its name may be `..\..\x.pdb`, an absolute path, hold a drive letter, NUL or control characters,
//! or be 10 kB long. Only a plain file name is ever joined to a folder or put into a URL.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// The longest PDB file name accepted, in bytes (NTFS and ext4 allow 255 per path component).
pub const MAX_NAME: usize = 255;

/// A PDB file name that is a plain file name ending in `.pdb`: no directory, no `.`/`..`, no
/// drive letter or other character Windows forbids in file names, no control character, no
/// device name, at most [`MAX_NAME`] bytes. Safe to join to a folder and to put into a URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PdbName(String);

/// Characters kept as they are in a URL path segment (RFC 3986 unreserved); all others are
/// percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl PdbName {
    /// The file name of the CodeView name `raw` (what follows its last `\` or `/`, as WinDbg uses
    /// it), or why it is not a plain PDB file name.
    pub fn parse(raw: &str) -> Result<PdbName, String> {
        let file = raw.rsplit(['\\', '/']).next().unwrap_or(raw);
        let refuse = |why: &str| Err(format!("its PDB name {} {why}", shown(raw)));
        if file.is_empty() {
            return refuse("has no file name");
        }
        if file == "." || file == ".." {
            return refuse("ends in a relative folder, not a file name");
        }
        if file.len() > MAX_NAME {
            return refuse(&format!("is longer than {MAX_NAME} bytes"));
        }
        if file.chars().any(char::is_control) {
            return refuse("holds control characters");
        }
        if file.contains(['<', '>', ':', '"', '|', '?', '*']) {
            return refuse("holds a character Windows does not allow in file names");
        }
        if file.ends_with(['.', ' ']) {
            return refuse("ends with a dot or a space");
        }
        let stem = file.split('.').next().unwrap_or(file).trim_end();
        if is_device_name(stem) {
            return refuse("is a Windows device name");
        }
        let ext = file.len().checked_sub(4).and_then(|i| file.get(i..));
        if file.len() < 5 || !ext.is_some_and(|e| e.eq_ignore_ascii_case(".pdb")) {
            return refuse("is not a .pdb file");
        }
        Ok(PdbName(file.to_string()))
    }

    /// The name, e.g. `ntdll.pdb`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The compressed name a symbol store may hold instead: `ntdll.pd_`.
    pub fn compressed(&self) -> String {
        format!("{}_", &self.0[..self.0.len() - 1])
    }

    /// The name as one percent-encoded URL path segment.
    pub fn url_segment(name: &str) -> String {
        utf8_percent_encode(name, SEGMENT).to_string()
    }
}

impl std::fmt::Display for PdbName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A PDB's key in a symbol store: its GUID without dashes and its age, in upper-case hex
/// (`3249D99D0C40493186 10F4E4FB0B69361` without the space), or why the GUID is not one.
pub fn store_key(guid: &str, age: u32) -> Result<String, String> {
    let hex: String = guid.chars().filter(|&c| c != '-').collect();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("its PDB GUID {} is not a GUID", shown(guid)));
    }
    Ok(format!("{}{age:X}", hex.to_ascii_uppercase()))
}

/// A name from the dump as notes show it: control characters escaped, at most 60 characters.
pub fn shown(raw: &str) -> String {
    let mut s: String = raw.chars().take(60).flat_map(char::escape_debug).collect();
    let count = raw.chars().count();
    if count > 60 {
        s.push_str(&format!("… ({} bytes)", raw.len()));
    }
    format!("'{s}'")
}

/// Text from a dump or a PDB as a terminal may show it: control characters escaped (`\u{1b}`), the
/// rest unchanged.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().any(char::is_control) {
        std::borrow::Cow::Owned(
            s.chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_debug().collect()
                    } else {
                        c.to_string()
                    }
                })
                .collect(),
        )
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// `CON`, `PRN`, `AUX`, `NUL`, `COM1`–`COM9`, `LPT1`–`LPT9`: names Windows maps to devices in
/// every folder.
fn is_device_name(stem: &str) -> bool {
    let upper = stem.to_ascii_uppercase();
    matches!(upper.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((upper.starts_with("COM") || upper.starts_with("LPT"))
            && upper.len() == 4
            && matches!(upper.as_bytes()[3], b'1'..=b'9'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_and_paths_give_the_file_name() {
        for (raw, want) in [
            ("ntdll.pdb", "ntdll.pdb"),
            (r"C:\build\crash.pdb", "crash.pdb"),
            (r"..\..\..\evil.pdb", "evil.pdb"),
            ("/abs/dir/x.PDB", "x.PDB"),
            (r"\\server\share\wntdll.pdb", "wntdll.pdb"),
            ("my app.pdb", "my app.pdb"),
        ] {
            assert_eq!(PdbName::parse(raw).unwrap().as_str(), want, "{raw}");
        }
    }

    #[test]
    fn names_that_are_not_plain_file_names_are_refused() {
        let long = format!("{}.pdb", "a".repeat(10_000));
        for raw in [
            "",
            r"C:\x\",
            "..",
            r"a\..",
            "a/.",
            "C:evil.pdb",
            "evil\0.pdb",
            "evil\u{7}.pdb",
            "evil\n.pdb",
            long.as_str(),
            "x.pdb.",
            "x.pdb ",
            "CON.pdb",
            "com1.pdb",
            "passwd",
            "/etc/passwd",
            ".pdb",
            "a?.pdb",
            "é",
            "xé",
            "\u{1F600}.pd",
        ] {
            let e = PdbName::parse(raw).unwrap_err();
            assert!(e.starts_with("its PDB name '"), "{raw:?}: {e}");
            assert!(e.len() < 200, "{e}");
        }
        assert!(PdbName::parse("evil\0.pdb")
            .unwrap_err()
            .contains(r"'evil\0.pdb'"));
    }

    #[test]
    fn control_characters_are_escaped_for_display() {
        assert_eq!(printable("a\u{1b}[31mb\0"), r"a\u{1b}[31mb\0");
        assert_eq!(printable("std::vector<int>"), "std::vector<int>");
    }

    #[test]
    fn compressed_names_and_url_segments() {
        let n = PdbName::parse("ntdll.pdb").unwrap();
        assert_eq!(n.compressed(), "ntdll.pd_");
        assert_eq!(PdbName::url_segment("my app%.pdb"), "my%20app%25.pdb");
        assert_eq!(PdbName::url_segment("a~b-c_d.pdb"), "a~b-c_d.pdb");
    }

    #[test]
    fn store_keys() {
        assert_eq!(
            store_key("3249D99D-0C40-4931-8610-F4E4FB0B6936", 1).unwrap(),
            "3249D99D0C4049318610F4E4FB0B69361"
        );
        assert_eq!(
            store_key("4122395c-6af1-7bc1-4c4c-44205044422e", 0x1a).unwrap(),
            "4122395C6AF17BC14C4C44205044422E1A"
        );
        assert!(store_key("../../x", 1).is_err());
    }
}
