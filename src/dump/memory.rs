//! The captured memory of the dumped process, as an address space over the mapped file.
//!
//! Ranges come from MemoryListStream or Memory64ListStream. They are sorted and made disjoint at
//! load time, and ranges that touch both in address and in the file are merged, so most reads are a
//! single slice of the mapped file. A read that is not fully captured answers [`NotCaptured`] with
//! the first missing address: memory that is not in the dump is never read as zeros.

use std::borrow::Cow;
use std::fmt;

/// One captured range: `size` bytes of process memory at `base`, stored at file `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRange {
    /// First virtual address.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
    /// Offset of the first byte in the dump file.
    pub offset: u64,
}

impl MemoryRange {
    /// One past the last address.
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }
}

/// The answer to a read that touches memory the dump does not hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotCaptured {
    /// The first address of the read that is not in the dump.
    pub address: u64,
}

impl fmt::Display for NotCaptured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "memory at {:#x} is not in the dump", self.address)
    }
}

/// Sorted, disjoint captured ranges plus the problems met while building them.
#[derive(Clone, Debug, Default)]
pub struct MemoryIndex {
    ranges: Vec<MemoryRange>,
    /// Bytes the streams claim that lie past the end of the file.
    truncated: u64,
    /// Every committed page of the process is captured (see [`MemoryIndex::set_complete`]).
    complete: bool,
}

impl MemoryIndex {
    /// Build the index from raw ranges of a stream, clipping each to the file and dropping
    /// overlaps. Problems found are appended to `problems`.
    pub fn build(mut raw: Vec<MemoryRange>, file_len: u64, problems: &mut Vec<String>) -> Self {
        let mut truncated = 0u64;
        for r in raw.iter_mut() {
            let available = file_len.saturating_sub(r.offset);
            if r.size > available {
                truncated += r.size - available;
                r.size = available;
            }
            // Ranges that wrap the address space are cut at its top.
            if r.base.checked_add(r.size).is_none() {
                r.size = u64::MAX - r.base;
            }
        }
        if truncated > 0 {
            problems.push(format!(
                "{truncated} bytes of captured memory lie past the end of the file (truncated dump); \
                 they are treated as not captured"
            ));
        }
        raw.retain(|r| r.size > 0);
        raw.sort_by_key(|r| (r.base, std::cmp::Reverse(r.size)));
        let mut ranges: Vec<MemoryRange> = Vec::with_capacity(raw.len());
        let mut overlaps = 0usize;
        for mut r in raw {
            if let Some(last) = ranges.last_mut() {
                if r.base < last.end() {
                    // Overlap: keep the earlier range, clip this one.
                    overlaps += 1;
                    let cut = last.end() - r.base;
                    if cut >= r.size {
                        continue;
                    }
                    r.base += cut;
                    r.offset += cut;
                    r.size -= cut;
                }
                if r.base == last.end() && r.offset == last.offset + last.size {
                    last.size += r.size;
                    continue;
                }
            }
            ranges.push(r);
        }
        if overlaps > 0 {
            problems.push(format!(
                "{overlaps} memory ranges overlap others; the first copy of each address is used"
            ));
        }
        Self {
            ranges,
            truncated,
            complete: false,
        }
    }

    /// Bytes of captured memory the streams claim but the file lacks (a truncated dump).
    pub fn truncated_bytes(&self) -> u64 {
        self.truncated
    }

    /// Say that every committed page of the process is captured (a full-memory dump that is not
    /// truncated): memory missing from it was not committed, so a heap structure that points
    /// there is damaged rather than uncaptured.
    pub fn set_complete(&mut self, complete: bool) {
        self.complete = complete;
    }

    /// The ranges, sorted by address, disjoint.
    pub fn ranges(&self) -> &[MemoryRange] {
        &self.ranges
    }
}

/// Read access to the captured memory of a dump.
#[derive(Clone, Copy)]
pub struct AddressSpace<'a> {
    file: &'a [u8],
    ranges: &'a [MemoryRange],
    complete: bool,
}

impl<'a> AddressSpace<'a> {
    /// An address space over `file` (the whole mapped dump) with `index`'s ranges.
    pub fn new(file: &'a [u8], index: &'a MemoryIndex) -> Self {
        Self {
            file,
            ranges: &index.ranges,
            complete: index.complete,
        }
    }

    /// Whether every committed page of the process is captured ([`MemoryIndex::set_complete`]).
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The captured ranges, sorted by address.
    pub fn ranges(&self) -> &'a [MemoryRange] {
        self.ranges
    }

    /// Total bytes captured.
    pub fn captured_bytes(&self) -> u64 {
        self.ranges.iter().map(|r| r.size).sum()
    }

    /// Index of the range containing `addr`, in O(log n).
    fn find(&self, addr: u64) -> Option<usize> {
        let i = self.ranges.partition_point(|r| r.base <= addr);
        let r = self.ranges.get(i.checked_sub(1)?)?;
        (addr < r.end()).then_some(i - 1)
    }

    fn slice(&self, r: &MemoryRange, from: u64, len: u64) -> &'a [u8] {
        let start = (r.offset + (from - r.base)) as usize;
        &self.file[start..start + len as usize]
    }

    /// Read `len` bytes at `addr`. Borrowed from the mapped file when one range holds them; stitched
    /// when they span adjacent ranges; [`NotCaptured`] when any byte is missing.
    pub fn read(&self, addr: u64, len: usize) -> Result<Cow<'a, [u8]>, NotCaptured> {
        let len64 = len as u64;
        let Some(mut i) = self.find(addr) else {
            return Err(NotCaptured { address: addr });
        };
        let end = addr
            .checked_add(len64)
            .ok_or(NotCaptured { address: u64::MAX })?;
        let first = &self.ranges[i];
        if end <= first.end() {
            return Ok(Cow::Borrowed(self.slice(first, addr, len64)));
        }
        let mut out = Vec::with_capacity(len);
        let mut cursor = addr;
        while cursor < end {
            let r = match self.ranges.get(i) {
                Some(r) if r.base == cursor || (r.base < cursor && cursor < r.end()) => r,
                _ => return Err(NotCaptured { address: cursor }),
            };
            let take = r.end().min(end) - cursor;
            out.extend_from_slice(self.slice(r, cursor, take));
            cursor += take;
            i += 1;
        }
        Ok(Cow::Owned(out))
    }

    /// [`AddressSpace::read`] for a caller reading addresses in increasing order: `hint` keeps
    /// the range of the last read, tried before any search.
    pub fn read_near(
        &self,
        hint: &mut usize,
        addr: u64,
        len: usize,
    ) -> Result<Cow<'a, [u8]>, NotCaptured> {
        if let Some(r) = self.ranges.get(*hint) {
            if r.base <= addr && addr.checked_add(len as u64).is_some_and(|e| e <= r.end()) {
                return Ok(Cow::Borrowed(self.slice(r, addr, len as u64)));
            }
        }
        if let Some(i) = self.find(addr) {
            *hint = i;
        }
        self.read(addr, len)
    }

    /// Whether all of `[addr, addr + len)` is captured.
    pub fn is_captured(&self, addr: u64, len: u64) -> bool {
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        let Some(mut i) = self.find(addr) else {
            return len == 0;
        };
        let mut cursor = addr;
        while cursor < end {
            match self.ranges.get(i) {
                Some(r) if r.base <= cursor && cursor < r.end() => cursor = r.end(),
                _ => return false,
            }
            i += 1;
        }
        true
    }

    /// Bytes of `[start, end)` that are captured.
    pub fn captured_within(&self, start: u64, end: u64) -> u64 {
        let first = self.ranges.partition_point(|r| r.end() <= start);
        self.ranges[first..]
            .iter()
            .take_while(|r| r.base < end)
            .map(|r| r.end().min(end) - r.base.max(start))
            .sum()
    }

    /// A little-endian u16 at `addr`.
    pub fn read_u16(&self, addr: u64) -> Result<u16, NotCaptured> {
        let b = self.read(addr, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    /// A little-endian u32 at `addr`.
    pub fn read_u32(&self, addr: u64) -> Result<u32, NotCaptured> {
        let b = self.read(addr, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A little-endian u64 at `addr`.
    pub fn read_u64(&self, addr: u64) -> Result<u64, NotCaptured> {
        let b = self.read(addr, 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&b);
        Ok(u64::from_le_bytes(a))
    }

    /// A pointer of `bits` (32 or 64) width at `addr`, zero-extended.
    pub fn read_ptr(&self, addr: u64, bits: u32) -> Result<u64, NotCaptured> {
        if bits == 64 {
            self.read_u64(addr)
        } else {
            self.read_u32(addr).map(u64::from)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(file: &[u8], raw: Vec<MemoryRange>) -> (MemoryIndex, Vec<String>) {
        let mut problems = Vec::new();
        let idx = MemoryIndex::build(raw, file.len() as u64, &mut problems);
        (idx, problems)
    }

    fn r(base: u64, size: u64, offset: u64) -> MemoryRange {
        MemoryRange { base, size, offset }
    }

    #[test]
    fn reads_within_one_range_borrow_the_file() {
        let file: Vec<u8> = (0..64u8).collect();
        let (idx, problems) = space(&file, vec![r(0x1000, 16, 8)]);
        assert!(problems.is_empty());
        let a = AddressSpace::new(&file, &idx);
        let got = a.read(0x1004, 4).unwrap();
        assert!(matches!(got, Cow::Borrowed(_)));
        assert_eq!(&*got, &[12, 13, 14, 15]);
        assert_eq!(
            a.read_u32(0x1000).unwrap(),
            u32::from_le_bytes([8, 9, 10, 11])
        );
    }

    #[test]
    fn file_contiguous_neighbours_merge_and_others_stitch() {
        let file: Vec<u8> = (0..64u8).collect();
        // 0x1000..0x1008 at 0, 0x1008..0x1010 at 8 (merges); 0x1010..0x1018 at 40 (stitches).
        let (idx, _) = space(
            &file,
            vec![r(0x1008, 8, 8), r(0x1000, 8, 0), r(0x1010, 8, 40)],
        );
        assert_eq!(idx.ranges().len(), 2);
        let a = AddressSpace::new(&file, &idx);
        let v = a.read(0x100e, 4).unwrap();
        assert!(matches!(v, Cow::Owned(_)));
        assert_eq!(&*v, &[14, 15, 40, 41]);
    }

    #[test]
    fn reads_near_the_last_one_use_its_range() {
        let file: Vec<u8> = (0..64u8).collect();
        let (idx, _) = space(&file, vec![r(0x1000, 16, 0), r(0x2000, 16, 32)]);
        let a = AddressSpace::new(&file, &idx);
        let mut hint = 0;
        assert_eq!(
            &*a.read_near(&mut hint, 0x2004, 4).unwrap(),
            &[36, 37, 38, 39]
        );
        assert_eq!(hint, 1);
        assert_eq!(
            &*a.read_near(&mut hint, 0x200c, 4).unwrap(),
            &[44, 45, 46, 47]
        );
        assert_eq!(&*a.read_near(&mut hint, 0x1000, 2).unwrap(), &[0, 1]);
        assert_eq!(hint, 0);
        assert!(a.read_near(&mut hint, 0x100e, 4).is_err());
        hint = 7;
        assert!(a.read_near(&mut hint, 0x3000, 1).is_err());
    }

    #[test]
    fn missing_memory_is_an_answer_not_zeros() {
        let file = vec![0u8; 64];
        let (idx, _) = space(&file, vec![r(0x1000, 8, 0), r(0x1010, 8, 8)]);
        let a = AddressSpace::new(&file, &idx);
        assert_eq!(a.read(0x1004, 8), Err(NotCaptured { address: 0x1008 }));
        assert_eq!(
            a.read_u8_missing(0x0fff),
            Err(NotCaptured { address: 0x0fff })
        );
        assert_eq!(
            a.read(u64::MAX - 1, 4),
            Err(NotCaptured {
                address: u64::MAX - 1
            })
        );
        assert!(a.is_captured(0x1000, 8));
        assert!(!a.is_captured(0x1000, 9));
        assert_eq!(a.captured_within(0x1004, 0x1014), 8);
    }

    #[test]
    fn ranges_at_the_top_of_the_address_space_never_overflow() {
        let file = vec![7u8; 64];
        let (idx, _) = space(&file, vec![r(u64::MAX - 0xf, 0x10, 0)]);
        let a = AddressSpace::new(&file, &idx);
        assert_eq!(a.read(u64::MAX - 0xf, 8).unwrap().len(), 8);
        assert!(a.read(u64::MAX - 4, 8).is_err());
        assert!(a.read_u64(u64::MAX).is_err());
        assert!(!a.is_captured(u64::MAX - 1, 4));
        assert_eq!(a.captured_within(0, u64::MAX), 0xf);
    }

    #[test]
    fn truncated_and_overlapping_ranges_are_clipped_and_reported() {
        let file = vec![0u8; 32];
        let (idx, problems) = space(
            &file,
            vec![r(0x1000, 16, 24), r(0x1004, 8, 0), r(0x2000, 8, 0)],
        );
        // The first range keeps 8 of its 16 bytes; the second keeps the 4 bytes past the first.
        assert_eq!(
            idx.ranges(),
            &[r(0x1000, 8, 24), r(0x1008, 4, 4), r(0x2000, 8, 0)]
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    impl AddressSpace<'_> {
        fn read_u8_missing(&self, addr: u64) -> Result<u8, NotCaptured> {
            self.read(addr, 1).map(|b| b[0])
        }
    }
}
