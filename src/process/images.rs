//! Loaded images as their PE headers describe them in the dump's memory: pointer width and
//! sections (where each lies, whether it is writable, read-only data or code).
//!
//! Offsets are the PE format's (`IMAGE_DOS_HEADER.e_lfanew` +0x3C; `IMAGE_NT_HEADERS`: signature,
//! 20-byte `IMAGE_FILE_HEADER` with `NumberOfSections` +6 and `SizeOfOptionalHeader` +20, the
//! optional header's `Magic` 0x10B/0x20B; 40-byte `IMAGE_SECTION_HEADER`s with `VirtualSize` +8,
//! `VirtualAddress` +12, `SizeOfRawData` +16, `Characteristics` +36). Headers are untrusted:
//! every field is checked against the module's extent, and what cannot be read is an error.

use crate::dump::memory::AddressSpace;
use crate::dump::streams::Module;

/// `IMAGE_SCN_CNT_CODE`.
const SCN_CODE: u32 = 0x0000_0020;
/// `IMAGE_SCN_MEM_EXECUTE`.
const SCN_EXECUTE: u32 = 0x2000_0000;
/// `IMAGE_SCN_MEM_WRITE`.
const SCN_WRITE: u32 = 0x8000_0000;
/// More sections than any real image has (the loader's limit is 96).
const MAX_SECTIONS: u16 = 96;

/// One section of a loaded image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// Its name (`.data`, `.rdata`), up to 8 characters.
    pub name: String,
    /// First address.
    pub start: u64,
    /// One past the last address (clipped to the image).
    pub end: u64,
    /// `IMAGE_SCN_MEM_WRITE`.
    pub writable: bool,
    /// Code or executable.
    pub code: bool,
}

/// A loaded image's headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// 32 (PE32) or 64 (PE32+): the width of its pointers.
    pub bits: u32,
    /// Its sections, in header order.
    pub sections: Vec<Section>,
}

impl Image {
    /// Read the headers of `m` from the dump; the error says what could not be read.
    pub fn read(mem: &AddressSpace<'_>, m: &Module) -> Result<Image, String> {
        let missing = |what: &str| format!("{}: its {what} is not in the dump", m.file_name());
        let bad = |what: String| format!("{}: {what}", m.file_name());
        let dos = mem.read(m.base, 0x40).map_err(|_| missing("PE header"))?;
        if &dos[..2] != b"MZ" {
            return Err(bad("no MZ signature at its base".into()));
        }
        let lfanew = u64::from(u32::from_le_bytes(dos[0x3c..0x40].try_into().expect("4")));
        if lfanew >= m.size.min(0x1000) {
            return Err(bad(format!(
                "e_lfanew {lfanew:#x} lies outside its headers"
            )));
        }
        let nt = m.base + lfanew;
        let head = mem.read(nt, 26).map_err(|_| missing("PE header"))?;
        if &head[..4] != b"PE\0\0" {
            return Err(bad("no PE signature".into()));
        }
        let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        let count = u16_at(&head, 6);
        let optional = u64::from(u16_at(&head, 20));
        let bits = match u16_at(&head, 24) {
            0x10b => 32,
            0x20b => 64,
            magic => return Err(bad(format!("unknown optional header magic {magic:#x}"))),
        };
        if count > MAX_SECTIONS {
            return Err(bad(format!("{count} sections is not plausible")));
        }
        let table = mem
            .read(nt + 24 + optional, 40 * usize::from(count))
            .map_err(|_| missing("section table"))?;
        let sections = table
            .chunks_exact(40)
            .map(|h| {
                let u32_at = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().expect("4"));
                let (virtual_size, rva, raw) = (u32_at(8), u32_at(12), u32_at(16));
                let flags = u32_at(36);
                let len = if virtual_size == 0 { raw } else { virtual_size };
                let start = m.base + u64::from(rva).min(m.size);
                Section {
                    name: String::from_utf8_lossy(&h[..8])
                        .trim_end_matches('\0')
                        .to_string(),
                    start,
                    end: (start + u64::from(len)).min(m.end()),
                    writable: flags & SCN_WRITE != 0,
                    code: flags & (SCN_CODE | SCN_EXECUTE) != 0,
                }
            })
            .collect();
        Ok(Image { bits, sections })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::memory::{MemoryIndex, MemoryRange};

    /// A PE32+ header at 0x10000 with `.text` (code) and `.data` (writable) sections.
    fn image(magic: u16, sections: u16) -> Vec<u8> {
        let mut b = vec![0u8; 0x1000];
        b[..2].copy_from_slice(b"MZ");
        b[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        b[0x80..0x84].copy_from_slice(b"PE\0\0");
        b[0x86..0x88].copy_from_slice(&sections.to_le_bytes());
        b[0x94..0x96].copy_from_slice(&0xf0u16.to_le_bytes());
        b[0x98..0x9a].copy_from_slice(&magic.to_le_bytes());
        let table = 0x98 + 0xf0;
        for (i, (name, rva, size, flags)) in [
            (".text", 0x1000u32, 0x2000u32, 0x6000_0020u32),
            (".data", 0x3000, 0x80_0000, 0xc000_0040),
        ]
        .iter()
        .enumerate()
        {
            let h = table + 40 * i;
            b[h..h + name.len()].copy_from_slice(name.as_bytes());
            b[h + 8..h + 12].copy_from_slice(&size.to_le_bytes());
            b[h + 12..h + 16].copy_from_slice(&rva.to_le_bytes());
            b[h + 36..h + 40].copy_from_slice(&flags.to_le_bytes());
        }
        b
    }

    fn module() -> Module {
        Module {
            path: r"C:\a\app.exe".into(),
            base: 0x10000,
            size: 0x5000,
            timestamp: 0,
            version: None,
            pdb_name: None,
            pdb_guid: None,
            pdb_age: None,
        }
    }

    fn read(file: &[u8]) -> Result<Image, String> {
        let range = MemoryRange {
            base: 0x10000,
            size: file.len() as u64,
            offset: 0,
        };
        let idx = MemoryIndex::build(vec![range], file.len() as u64, &mut Vec::new());
        Image::read(&AddressSpace::new(file, &idx), &module())
    }

    #[test]
    fn sections_are_read_and_clipped_to_the_image() {
        let img = read(&image(0x20b, 2)).unwrap();
        assert_eq!(img.bits, 64);
        assert_eq!(img.sections.len(), 2);
        let d = &img.sections[1];
        assert_eq!(
            (d.name.as_str(), d.start, d.end),
            (".data", 0x13000, 0x15000)
        );
        assert!(d.writable && !d.code);
        assert!(img.sections[0].code && !img.sections[0].writable);
        assert_eq!(read(&image(0x10b, 2)).unwrap().bits, 32);
    }

    #[test]
    fn damaged_headers_are_errors() {
        assert!(read(&image(0x20c, 2)).unwrap_err().contains("magic"));
        assert!(read(&image(0x20b, 500)).unwrap_err().contains("plausible"));
        let mut b = image(0x20b, 2);
        b[0x3c..0x40].copy_from_slice(&0xfff0u32.to_le_bytes());
        assert!(read(&b).unwrap_err().contains("e_lfanew"));
        assert!(read(&b[..0x20]).unwrap_err().contains("not in the dump"));
        b[0] = b'X';
        assert!(read(&b).unwrap_err().contains("MZ"));
    }
}
