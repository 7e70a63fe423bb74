//! Real PE images (built by the project's scripts) mapped into a synthetic process as the loader
//! maps them: at their preferred base (so their absolute pointers need no relocation), the
//! headers read-only, each section committed with the protection its characteristics give, and
//! everything captured.

use crate::memory::{Region, MEM_COMMIT, MEM_IMAGE, PAGE_EXECUTE_READ, PAGE_READONLY};
use crate::memory::{PAGE_READWRITE, PAGE_WRITECOPY};
use crate::minidump::ModuleSpec;
use crate::process::{ProcessBuilder, Usage};

const PAGE: u64 = 0x1000;

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(b[o..o + 2].try_into().expect("2 bytes"))
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}

/// The first CodeView PDB 7.0 record of an image: GUID bytes as stored, age, PDB name.
pub fn codeview(image: &[u8]) -> Option<([u8; 16], u32, String)> {
    let at = image.windows(4).position(|w| w == b"RSDS")?;
    let rec = image.get(at + 4..)?;
    let guid: [u8; 16] = rec.get(..16)?.try_into().ok()?;
    let age = u32::from_le_bytes(rec.get(16..20)?.try_into().ok()?);
    let name_end = rec[20..].iter().position(|&b| b == 0)?;
    let name = String::from_utf8_lossy(&rec[20..20 + name_end]).to_string();
    Some((guid, age, name))
}

impl ProcessBuilder {
    /// Map the PE image `image` at its preferred base as the module `path`; returns the base.
    /// Panics on an image that is not a well-formed PE (a fixture error).
    pub fn add_pe_image(&mut self, path: &str, image: &[u8]) -> u64 {
        let nt = u32_at(image, 0x3c) as usize;
        assert_eq!(&image[nt..nt + 4], b"PE\0\0", "{path}: not a PE image");
        let sections = usize::from(u16_at(image, nt + 6));
        let opt = nt + 24;
        let base = match u16_at(image, opt) {
            0x20b => u64::from_le_bytes(image[opt + 24..opt + 32].try_into().expect("8 bytes")),
            _ => u64::from(u32_at(image, opt + 28)),
        };
        let size = u64::from(u32_at(image, opt + 56));
        let headers = u64::from(u32_at(image, opt + 60));
        let table = opt + usize::from(u16_at(image, nt + 20));
        let map = |b: &mut Self, rva: u64, len: u64, protect: u32, bytes: &[u8]| {
            let len = len.div_ceil(PAGE) * PAGE;
            b.labeled(
                Region {
                    base: base + rva,
                    allocation_base: base,
                    allocation_protect: 0x80, // PAGE_EXECUTE_WRITECOPY
                    size: len,
                    state: MEM_COMMIT,
                    protect,
                    kind: MEM_IMAGE,
                },
                Usage::Image,
                0,
            );
            b.dump.memory.capture(base + rva, len);
            b.dump.memory.write(base + rva, bytes);
        };
        map(self, 0, headers, PAGE_READONLY, &image[..headers as usize]);
        let mut end = headers.div_ceil(PAGE) * PAGE;
        for k in 0..sections {
            let h = table + 40 * k;
            let (vsize, rva) = (
                u64::from(u32_at(image, h + 8)),
                u64::from(u32_at(image, h + 12)),
            );
            let (raw_len, raw_at) = (
                u32_at(image, h + 16) as usize,
                u32_at(image, h + 20) as usize,
            );
            let flags = u32_at(image, h + 36);
            let protect = if flags & 0x2000_0000 != 0 {
                PAGE_EXECUTE_READ
            } else if flags & 0x8000_0000 != 0 {
                PAGE_READWRITE
            } else {
                PAGE_READONLY
            };
            let raw = &image[raw_at..raw_at + raw_len.min(vsize as usize)];
            map(self, rva, vsize.max(1), protect, raw);
            end = end.max(rva + vsize.div_ceil(PAGE) * PAGE);
        }
        // Pages of the image no section covers (alignment gaps) are copy-on-write, like the
        // loader leaves them.
        if end < size {
            map(self, end, size - end, PAGE_WRITECOPY, &[]);
        }
        let version = {
            let (major, minor, build) = self.windows().version();
            Some([major as u16, minor as u16, build as u16, 1])
        };
        self.dump.modules.push(ModuleSpec {
            name: path.to_string(),
            base,
            size: size as u32,
            timestamp: u32_at(image, nt + 8),
            version,
            pdb: codeview(image),
        });
        base
    }
}
