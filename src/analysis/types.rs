//! What a busy block holds, as far as its first bytes tell (`top --by type`, `leaks --by type`,
//! `block`; docs/leaks.md):
//!
//! - a C++ object: its first pointer-size word points into a non-writable section of a loaded
//!   image, at an address that the image's PDB names as a vtable (`??_7Class@@6B@`), or whose
//!   RTTI names a class: the word before the vtable points to a complete object locator
//!   (signature 0 with absolute pointers on x86, 1 with image-relative offsets and its own
//!   offset on x64) in the same image, whose type descriptor holds the decorated name
//!   (`.?AVClass@@`);
//! - text: a BSTR (a byte length, that many bytes of UTF-16, a NUL), a NUL-terminated ASCII or
//!   UTF-16 string that fills at least half of the block.
//!
//! Each distinct candidate vtable is named once; blocks are then labelled in parallel.

use crate::analysis::heaps::is_user_busy;
use crate::dump::memory::AddressSpace;
use crate::dump::Dump;
use crate::fasthash::{FastMap, FastSet};
use crate::heap::{Block, HeapWalk};
use crate::pdbfile::{open_matching, SymbolPath};
use crate::process::images::Image;
use crate::stacks::symbols::{self, ModuleMap};
use rayon::prelude::*;

/// The label of blocks whose content says nothing.
pub const UNKNOWN: &str = "(unknown)";
/// A BSTR.
pub const BSTR: &str = "BSTR";
/// A NUL-terminated UTF-16 string.
pub const UTF16: &str = "UTF-16 string";
/// A NUL-terminated ASCII string.
pub const ASCII: &str = "ASCII string";

/// Characters a string must have before its NUL to count as one.
const MIN_TEXT: usize = 4;
/// The longest RTTI name read.
const MAX_NAME: usize = 1024;
/// Bytes a BSTR's block may hold past its NUL (the allocator's rounding).
const BSTR_SLACK: u64 = 16;

/// A loaded image: where it is, its pointer width, its non-writable sections.
struct ImageSpan {
    base: u64,
    end: u64,
    bits: u32,
    read_only: Vec<(u64, u64)>,
}

/// Names the C++ classes of a dump's vtables (from PDBs and RTTI).
pub struct TypeNamer {
    images: Vec<ImageSpan>,
    /// Every candidate vtable seen: the class, or `None` when neither PDB nor RTTI names it.
    classes: FastMap<u64, Option<String>>,
    /// PDBs refused or unreadable, modules without symbols, one sentence each.
    pub notes: Vec<String>,
}

impl TypeNamer {
    /// Name the candidate vtables of the busy user blocks of `walks`: the PDBs of the images
    /// they lie in (from `symbols`) first, RTTI otherwise.
    pub fn new(dump: &Dump, walks: &[HeapWalk], symbols: &SymbolPath) -> TypeNamer {
        let mem = dump.memory();
        let images = images(dump);
        let candidates: FastSet<u64> = walks
            .par_iter()
            .flat_map(|w| w.blocks.par_chunks(CHUNK).map(move |c| (w.bits, c)))
            .map(|(bits, chunk)| {
                let mut hint = 0;
                chunk
                    .iter()
                    .filter(|b| is_user_busy(b))
                    .filter_map(|b| first_word(&mem, &mut hint, b.address, b.size, bits))
                    .filter(|&v| read_only(&images, v))
                    .collect::<FastSet<u64>>()
            })
            .reduce(FastSet::default, |mut a, b| {
                a.extend(b);
                a
            });
        Self::naming(dump, images, candidates, symbols)
    }

    /// Name the vtable (if any) of the one block at `address` of `size` bytes, of a heap of width
    /// `bits`.
    pub fn for_block(
        dump: &Dump,
        address: u64,
        size: u64,
        bits: u32,
        symbols: &SymbolPath,
    ) -> Self {
        let images = images(dump);
        let first = (size >= u64::from(bits / 8))
            .then(|| dump.memory().read_ptr(address, bits).ok())
            .flatten();
        let candidates = first
            .filter(|&v| read_only(&images, v))
            .into_iter()
            .collect();
        Self::naming(dump, images, candidates, symbols)
    }

    /// Name `candidates`.
    fn naming(
        dump: &Dump,
        images: Vec<ImageSpan>,
        candidates: FastSet<u64>,
        symbols: &SymbolPath,
    ) -> TypeNamer {
        let mut namer = TypeNamer {
            images,
            classes: FastMap::default(),
            notes: Vec::new(),
        };
        let mem = dump.memory();
        let pdb = namer.pdb_vtables(dump, &candidates, symbols);
        for v in candidates {
            let class = pdb.get(&v).cloned().or_else(|| namer.rtti_class(&mem, v));
            namer.classes.insert(v, class);
        }
        namer
    }

    /// The image holding `v`.
    fn image_of(&self, v: u64) -> Option<&ImageSpan> {
        image_of(&self.images, v)
    }

    /// The classes the PDBs of the images holding `candidates` name at those addresses.
    fn pdb_vtables(
        &mut self,
        dump: &Dump,
        candidates: &FastSet<u64>,
        path: &SymbolPath,
    ) -> FastMap<u64, String> {
        let mut out = FastMap::default();
        if path.is_empty() || candidates.is_empty() {
            return out;
        }
        let modules = ModuleMap::new(&dump.modules, &[]);
        let mut which: Vec<usize> = candidates
            .iter()
            .filter_map(|&v| modules.find(v).map(|(m, _)| m))
            .collect();
        which.sort_unstable();
        which.dedup();
        for l in symbols::look_up(&modules, &which, path) {
            let e = modules.get(l.module);
            let (Some((file, _)), Some((_, guid, age))) = (&l.lookup.found, &e.pdb) else {
                continue;
            };
            let publics = open_matching(file, guid, *age).and_then(|d| symbols::vtable_publics(&d));
            match publics {
                Ok(list) => out.extend(list.into_iter().filter_map(|(rva, name)| {
                    let at = e.base + u64::from(rva);
                    candidates.contains(&at).then_some(())?;
                    Some((at, symbols::vtable_class(&name)?))
                })),
                Err(why) => self.notes.push(format!(
                    "{}: vtable names of {} not read: {why}",
                    file.display(),
                    e.name
                )),
            }
        }
        out
    }

    /// The class RTTI gives the vtable at `v`.
    fn rtti_class(&self, mem: &AddressSpace<'_>, v: u64) -> Option<String> {
        let img = self.image_of(v)?;
        let ptr = u64::from(img.bits / 8);
        let col = mem.read_ptr(v.checked_sub(ptr)?, img.bits).ok()?;
        if !img.is_read_only(col) || mem.read_u32(col).ok()? != u32::from(img.bits == 64) {
            return None;
        }
        let descriptor = if img.bits == 64 {
            // Image-relative offsets, and the locator's own, which must agree.
            let own = mem.read_u32(col + 0x14).ok()?;
            if img.base + u64::from(own) != col {
                return None;
            }
            img.base + u64::from(mem.read_u32(col + 0xc).ok()?)
        } else {
            u64::from(mem.read_u32(col + 0xc).ok()?)
        };
        if self.image_of(descriptor).map(|i| i.base) != Some(img.base) {
            return None;
        }
        let name = read_c_string(mem, descriptor + 2 * ptr)?;
        symbols::rtti_class(&name)
    }

    /// What `b` (of a heap of width `bits`) holds, if its content says.
    pub fn label(&self, mem: &AddressSpace<'_>, b: &Block, bits: u32) -> Option<&str> {
        self.label_near(mem, &mut 0, b.address, b.size, bits)
    }

    /// What the busy block at `address` of `size` bytes (of a heap of width `bits`) holds, if
    /// its content says.
    pub fn label_at(
        &self,
        mem: &AddressSpace<'_>,
        address: u64,
        size: u64,
        bits: u32,
    ) -> Option<&str> {
        self.label_near(mem, &mut 0, address, size, bits)
    }

    /// [`TypeNamer::label_at`] for blocks read in address order: `hint` is
    /// [`AddressSpace::read_near`]'s.
    fn label_near(
        &self,
        mem: &AddressSpace<'_>,
        hint: &mut usize,
        address: u64,
        size: u64,
        bits: u32,
    ) -> Option<&str> {
        if let Some(first) = first_word(mem, hint, address, size, bits) {
            if let Some(Some(class)) = self.classes.get(&first) {
                return Some(class);
            }
        }
        text_label(mem, hint, address, size)
    }

    /// The label of every busy user block of `walks`, in their order. Labelled in parallel
    /// chunks of blocks, each numbering its few distinct labels; the numbers are then made
    /// global.
    pub fn labels(&self, mem: &AddressSpace<'_>, walks: &[HeapWalk]) -> TypeLabels {
        let chunks: Vec<Vec<ChunkLabels<'_>>> = walks
            .par_iter()
            .map(|w| {
                w.blocks
                    .par_chunks(CHUNK)
                    .map(|chunk| self.chunk_labels(mem, chunk, w.bits))
                    .collect()
            })
            .collect();
        let mut names: Vec<String> = Vec::new();
        let mut ids: FastMap<&str, u32> = FastMap::default();
        let per_walk = chunks
            .into_iter()
            .map(|chunks| {
                let mut out = Vec::with_capacity(chunks.iter().map(|c| c.ids.len()).sum());
                for c in chunks {
                    let mut to = Vec::with_capacity(c.names.len());
                    for l in c.names {
                        to.push(*ids.entry(l).or_insert_with(|| {
                            names.push(l.to_string());
                            names.len() as u32 - 1
                        }));
                    }
                    out.extend(c.ids.iter().map(|&i| to[i as usize]));
                }
                out
            })
            .collect();
        TypeLabels { names, per_walk }
    }

    /// The labels of one chunk of a walk's blocks (width `bits`), numbered in the chunk.
    fn chunk_labels<'n>(
        &'n self,
        mem: &AddressSpace<'_>,
        chunk: &[Block],
        bits: u32,
    ) -> ChunkLabels<'n> {
        let mut hint = 0;
        let mut local = ChunkLabels {
            ids: Vec::with_capacity(chunk.len()),
            names: Vec::new(),
        };
        let mut last: Option<(&str, u32)> = None;
        for b in chunk {
            let l = is_user_busy(b)
                .then(|| self.label_near(mem, &mut hint, b.address, b.size, bits))
                .flatten()
                .unwrap_or(UNKNOWN);
            let id = match last {
                Some((prev, id)) if std::ptr::eq(prev, l) => id,
                _ => {
                    let id = match local.names.iter().position(|&n| n == l) {
                        Some(i) => i as u32,
                        None => {
                            local.names.push(l);
                            local.names.len() as u32 - 1
                        }
                    };
                    last = Some((l, id));
                    id
                }
            };
            local.ids.push(id);
        }
        local
    }
}

/// Blocks labelled per parallel task.
const CHUNK: usize = 16 * 1024;

/// One chunk's labels: each block's number, and the label each number stands for.
struct ChunkLabels<'n> {
    ids: Vec<u32>,
    names: Vec<&'n str>,
}

/// The first pointer-size word of a block of `size` bytes at `address` (of a heap of width
/// `bits`), when it has one and it is captured; `hint` is [`AddressSpace::read_near`]'s.
fn first_word(
    mem: &AddressSpace<'_>,
    hint: &mut usize,
    address: u64,
    size: u64,
    bits: u32,
) -> Option<u64> {
    let width = usize::try_from(bits / 8).ok()?;
    if size < width as u64 {
        return None;
    }
    let b = mem.read_near(hint, address, width).ok()?;
    Some(match *b {
        [a0, a1, a2, a3, a4, a5, a6, a7] => u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]),
        [a0, a1, a2, a3] => u64::from(u32::from_le_bytes([a0, a1, a2, a3])),
        _ => return None,
    })
}

impl ImageSpan {
    fn is_read_only(&self, v: u64) -> bool {
        self.read_only.iter().any(|&(s, e)| s <= v && v < e)
    }
}

/// The loaded images of `dump` whose headers can be read, sorted by address.
fn images(dump: &Dump) -> Vec<ImageSpan> {
    let mem = dump.memory();
    let mut images: Vec<ImageSpan> = dump
        .modules
        .iter()
        .filter_map(|m| {
            let img = Image::read(&mem, m).ok()?;
            Some(ImageSpan {
                base: m.base,
                end: m.end(),
                bits: img.bits,
                read_only: img
                    .sections
                    .iter()
                    .filter(|s| !s.writable)
                    .map(|s| (s.start, s.end))
                    .collect(),
            })
        })
        .collect();
    images.sort_by_key(|i| i.base);
    images.dedup_by_key(|i| i.base);
    images
}

/// The image of `images` holding `v`.
fn image_of(images: &[ImageSpan], v: u64) -> Option<&ImageSpan> {
    let i = images.partition_point(|m| m.base <= v).checked_sub(1)?;
    let m = &images[i];
    (v < m.end).then_some(m)
}

/// Whether `v` lies in a non-writable section of one of `images`: where vtables are.
fn read_only(images: &[ImageSpan], v: u64) -> bool {
    image_of(images, v).is_some_and(|i| i.is_read_only(v))
}

/// The label of every block of a set of walks: ids into `names`, per walk, per block.
#[derive(Clone, Debug, Default)]
pub struct TypeLabels {
    /// The labels.
    pub names: Vec<String>,
    /// Per walk, per block (in the walk's order): its label's index in `names`.
    pub per_walk: Vec<Vec<u32>>,
}

impl TypeLabels {
    /// The label of block `k` of walk `w`.
    pub fn get(&self, w: usize, k: usize) -> Option<&str> {
        let id = *self.per_walk.get(w)?.get(k)?;
        self.names.get(id as usize).map(String::as_str)
    }
}

/// A NUL-terminated ASCII name at `at` (at most [`MAX_NAME`] bytes, printable).
fn read_c_string(mem: &AddressSpace<'_>, at: u64) -> Option<String> {
    let mut out = String::new();
    for k in 0..MAX_NAME as u64 {
        let c = *mem.read(at + k, 1).ok()?.first()?;
        match c {
            0 => return Some(out),
            0x21..=0x7e => out.push(c as char),
            _ => return None,
        }
    }
    None
}

/// A UTF-16 unit of text: printable ASCII, tab, line breaks, or a non-control character of the
/// basic plane (no surrogates).
fn text_unit(u: u16) -> bool {
    matches!(u, 0x09 | 0x0a | 0x0d | 0x20..=0x7e | 0xa0..=0xd7ff | 0xe000..=0xfffd)
}

/// A BSTR, UTF-16 or ASCII string at `address`, filling a block of `size` bytes.
fn text_label(
    mem: &AddressSpace<'_>,
    hint: &mut usize,
    address: u64,
    size: u64,
) -> Option<&'static str> {
    let head = mem
        .read_near(hint, address, size.min(0x1_0000) as usize)
        .ok()?;
    let unit = |b: &[u8], k: usize| {
        b.get(2 * k..2 * k + 2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
    };
    // A BSTR: its byte length, the text, a NUL, then at most the allocator's rounding.
    if let Some(len) = head
        .get(..4)
        .map(|b| u64::from(u32::from_le_bytes(b.try_into().expect("4"))))
    {
        let chars = (len / 2) as usize;
        if len >= 2 * MIN_TEXT as u64
            && len % 2 == 0
            && len + 6 <= size
            && size <= len + 6 + BSTR_SLACK
            && (0..chars).all(|k| unit(&head[4..], k).is_some_and(text_unit))
            && unit(&head[4..], chars) == Some(0)
        {
            return Some(BSTR);
        }
    }
    // ASCII first: two ASCII characters also make one UTF-16 unit of text.
    let ascii = head
        .iter()
        .take_while(|&&c| matches!(c, 0x09 | 0x0a | 0x0d | 0x20..=0x7e))
        .count();
    let ends = |n: usize, at: Option<u16>| at.is_none_or(|u| u == 0) && n >= MIN_TEXT;
    if ends(ascii, head.get(ascii).map(|&c| u16::from(c))) && 2 * (ascii as u64 + 1) >= size {
        return Some(ASCII);
    }
    let (mut text, mut latin) = (0, 0);
    while let Some(u) = unit(&head, text).filter(|&u| text_unit(u)) {
        latin += usize::from(u < 0x100);
        text += 1;
    }
    if ends(text, unit(&head, text)) && 2 * latin >= text && 2 * (2 * text as u64 + 2) >= size {
        return Some(UTF16);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::memory::{MemoryIndex, MemoryRange};

    fn label_of(bytes: &[u8], size: u64) -> Option<&'static str> {
        let mut file = bytes.to_vec();
        file.resize(0x100, 0);
        let range = MemoryRange {
            base: 0x1000,
            size: file.len() as u64,
            offset: 0,
        };
        let idx = MemoryIndex::build(vec![range], file.len() as u64, &mut Vec::new());
        text_label(&AddressSpace::new(&file, &idx), &mut 0, 0x1000, size)
    }

    fn wide(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    #[test]
    fn strings_are_recognized_and_other_bytes_are_not() {
        assert_eq!(label_of(b"GET /index\0", 11), Some(ASCII));
        assert_eq!(
            label_of(b"GET /index\0", 64),
            None,
            "too small a part of the block"
        );
        assert_eq!(label_of(b"abc\0", 4), None, "too short");
        assert_eq!(label_of(&wide("hello, world\0"), 26), Some(UTF16));
        assert_eq!(label_of(&wide("h\u{e9}llo w\u{f6}rld\0"), 26), Some(UTF16));
        let mut bstr = 20u32.to_le_bytes().to_vec();
        bstr.extend(wide("session-42\0"));
        assert_eq!(label_of(&bstr, 26), Some(BSTR));
        assert_eq!(
            label_of(&bstr, 26 + 17),
            None,
            "more slack than an allocator rounds"
        );
        assert_eq!(label_of(&[0u8; 32], 32), None);
        assert_eq!(label_of(&[0x90, 0x90, 0x01, 0xff, 0x12, 0x00], 6), None);
    }
}
