//! The memory of a synthetic process: captured bytes and the `MEMORY_BASIC_INFORMATION`-style
//! region table that a full dump's MemoryInfoList carries.

use std::collections::BTreeMap;

/// `MEM_COMMIT`.
pub const MEM_COMMIT: u32 = 0x1000;
/// `MEM_RESERVE`.
pub const MEM_RESERVE: u32 = 0x2000;
/// `MEM_FREE`.
pub const MEM_FREE: u32 = 0x10000;
/// `MEM_PRIVATE`.
pub const MEM_PRIVATE: u32 = 0x20000;
/// `MEM_MAPPED`.
pub const MEM_MAPPED: u32 = 0x40000;
/// `MEM_IMAGE`.
pub const MEM_IMAGE: u32 = 0x100_0000;
/// `PAGE_NOACCESS`.
pub const PAGE_NOACCESS: u32 = 0x01;
/// `PAGE_READONLY`.
pub const PAGE_READONLY: u32 = 0x02;
/// `PAGE_READWRITE`.
pub const PAGE_READWRITE: u32 = 0x04;
/// `PAGE_WRITECOPY`.
pub const PAGE_WRITECOPY: u32 = 0x08;
/// `PAGE_EXECUTE_READ`.
pub const PAGE_EXECUTE_READ: u32 = 0x20;
/// `PAGE_GUARD` (a modifier).
pub const PAGE_GUARD: u32 = 0x100;

/// One entry of the region table (`MINIDUMP_MEMORY_INFO`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First address of the region.
    pub base: u64,
    /// `AllocationBase`: first address of the allocation the region belongs to (0 for free).
    pub allocation_base: u64,
    /// `AllocationProtect`.
    pub allocation_protect: u32,
    /// Size in bytes.
    pub size: u64,
    /// `MEM_COMMIT`, `MEM_RESERVE` or `MEM_FREE`.
    pub state: u32,
    /// Current protection (0 for reserved and free regions, as Windows reports it).
    pub protect: u32,
    /// `MEM_PRIVATE`, `MEM_MAPPED`, `MEM_IMAGE`, or 0 for free regions.
    pub kind: u32,
}

/// Captured memory (what goes into MemoryList/Memory64List) plus the region table.
///
/// Captured ranges never overlap; [`ProcessMemory::capture`] merges touching requests.
#[derive(Clone, Debug, Default)]
pub struct ProcessMemory {
    ranges: BTreeMap<u64, Vec<u8>>,
    /// Captured ranges that hold only zeros, kept as lengths (for multi-GB benchmark dumps).
    zeros: BTreeMap<u64, u64>,
    regions: Vec<Region>,
}

/// The content of one captured range.
#[derive(Clone, Copy, Debug)]
pub enum Content<'a> {
    /// Bytes as written.
    Bytes(&'a [u8]),
    /// This many zero bytes.
    Zeros(u64),
}

impl Content<'_> {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::Zeros(n) => *n,
        }
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ProcessMemory {
    /// An empty process.
    pub fn new() -> Self {
        Self::default()
    }

    /// Make `[base, base + size)` captured (zero-filled until written). Idempotent.
    ///
    /// Panics if the new range partly overlaps an existing one in a way that cannot be merged;
    /// this is a test-construction error, never input handling.
    pub fn capture(&mut self, base: u64, size: u64) {
        let end = base + size;
        // Merge with every range that overlaps or touches [base, end).
        let mut new_base = base;
        let mut new_end = end;
        let touching: Vec<u64> = self
            .ranges
            .range(..=end)
            .filter(|(b, d)| **b + d.len() as u64 >= base)
            .map(|(b, _)| *b)
            .collect();
        let mut pieces = Vec::new();
        for b in touching {
            let d = self.ranges.remove(&b).expect("range present");
            new_base = new_base.min(b);
            new_end = new_end.max(b + d.len() as u64);
            pieces.push((b, d));
        }
        let mut data = vec![0u8; (new_end - new_base) as usize];
        for (b, d) in pieces {
            let off = (b - new_base) as usize;
            data[off..off + d.len()].copy_from_slice(&d);
        }
        self.ranges.insert(new_base, data);
    }

    /// Make `[base, base + size)` captured as zeros that are never written (no memory is used for
    /// them). Must not touch any other captured range.
    pub fn capture_zeros(&mut self, base: u64, size: u64) {
        let end = base + size;
        let clash = self
            .ranges
            .range(..end)
            .any(|(b, d)| b + d.len() as u64 > base)
            || self.zeros.range(..end).any(|(b, n)| b + n > base);
        assert!(
            !clash,
            "zero range {base:#x}+{size:#x} overlaps captured memory"
        );
        self.zeros.insert(base, size);
    }

    /// Write bytes at `addr`; the range must be captured.
    pub fn write(&mut self, addr: u64, bytes: &[u8]) {
        let (base, data) = self
            .ranges
            .range_mut(..=addr)
            .next_back()
            .unwrap_or_else(|| panic!("write at {addr:#x}: not captured"));
        let off = (addr - *base) as usize;
        assert!(
            off + bytes.len() <= data.len(),
            "write at {addr:#x}+{:#x}: past the captured range",
            bytes.len()
        );
        data[off..off + bytes.len()].copy_from_slice(bytes);
    }

    /// Write a little-endian u16.
    pub fn write_u16(&mut self, addr: u64, v: u16) {
        self.write(addr, &v.to_le_bytes());
    }

    /// Write a little-endian u32.
    pub fn write_u32(&mut self, addr: u64, v: u32) {
        self.write(addr, &v.to_le_bytes());
    }

    /// Write a little-endian u64.
    pub fn write_u64(&mut self, addr: u64, v: u64) {
        self.write(addr, &v.to_le_bytes());
    }

    /// Write a pointer of `bits` (32 or 64) width.
    pub fn write_ptr(&mut self, bits: u32, addr: u64, v: u64) {
        if bits == 64 {
            self.write_u64(addr, v);
        } else {
            self.write_u32(addr, v as u32);
        }
    }

    /// Read back a captured u64 (for builders that patch lists).
    pub fn read_u64(&self, addr: u64) -> u64 {
        let (base, data) = self.ranges.range(..=addr).next_back().expect("captured");
        let off = (addr - *base) as usize;
        u64::from_le_bytes(data[off..off + 8].try_into().expect("8 bytes"))
    }

    /// Add a region-table entry.
    pub fn add_region(&mut self, region: Region) {
        self.regions.push(region);
    }

    /// Add a committed or reserved region of an allocation.
    #[allow(clippy::too_many_arguments)]
    pub fn region(
        &mut self,
        base: u64,
        size: u64,
        allocation_base: u64,
        allocation_protect: u32,
        state: u32,
        protect: u32,
        kind: u32,
    ) {
        self.add_region(Region {
            base,
            allocation_base,
            allocation_protect,
            size,
            state,
            protect,
            kind,
        });
    }

    /// Fill every gap of the region table between 0 and `top` with `MEM_FREE` regions, as
    /// `VirtualQuery` reports them, and sort the table by address.
    pub fn fill_free(&mut self, top: u64) {
        self.regions.sort_by_key(|r| r.base);
        let mut out = Vec::with_capacity(self.regions.len() * 2 + 1);
        let mut cursor = 0u64;
        for r in &self.regions {
            assert!(r.base >= cursor, "regions overlap at {:#x}", r.base);
            if r.base > cursor {
                out.push(free(cursor, r.base - cursor));
            }
            out.push(*r);
            cursor = r.base + r.size;
        }
        if top > cursor {
            out.push(free(cursor, top - cursor));
        }
        self.regions = out;
    }

    /// Make `[start, end)` not captured any more (splitting ranges as needed); the region table is
    /// kept. This turns a full-memory process into what a minidump would hold.
    pub fn uncapture(&mut self, start: u64, end: u64) {
        let touched: Vec<u64> = self
            .ranges
            .range(..end)
            .filter(|(b, d)| **b + d.len() as u64 > start)
            .map(|(b, _)| *b)
            .collect();
        for b in touched {
            let d = self.ranges.remove(&b).expect("range present");
            let e = b + d.len() as u64;
            if b < start {
                self.ranges.insert(b, d[..(start - b) as usize].to_vec());
            }
            if e > end {
                self.ranges.insert(end, d[(end - b) as usize..].to_vec());
            }
        }
    }

    /// The region table, in the order added (sorted after [`ProcessMemory::fill_free`]).
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// The captured ranges with bytes, sorted by address.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.ranges.iter().map(|(b, d)| (*b, d.as_slice()))
    }

    /// Every captured range (bytes and zeros), sorted by address.
    pub fn pieces(&self) -> Vec<(u64, Content<'_>)> {
        let mut v: Vec<(u64, Content<'_>)> = self
            .ranges
            .iter()
            .map(|(b, d)| (*b, Content::Bytes(d)))
            .chain(self.zeros.iter().map(|(b, n)| (*b, Content::Zeros(*n))))
            .collect();
        v.sort_by_key(|(b, _)| *b);
        v
    }
}

fn free(base: u64, size: u64) -> Region {
    Region {
        base,
        allocation_base: 0,
        allocation_protect: 0,
        size,
        state: MEM_FREE,
        protect: PAGE_NOACCESS,
        kind: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_merges_touching_ranges_and_keeps_data() {
        let mut m = ProcessMemory::new();
        m.capture(0x1000, 0x1000);
        m.write_u32(0x1ffc, 0xdead_beef);
        m.capture(0x2000, 0x1000);
        m.capture(0x800, 0x900);
        let ranges: Vec<(u64, usize)> = m.ranges().map(|(b, d)| (b, d.len())).collect();
        assert_eq!(ranges, vec![(0x800, 0x2800)]);
        assert_eq!(m.read_u64(0x1ffc) & 0xffff_ffff, 0xdead_beef);
        m.uncapture(0x1000, 0x2000);
        let ranges: Vec<(u64, usize)> = m.ranges().map(|(b, d)| (b, d.len())).collect();
        assert_eq!(ranges, vec![(0x800, 0x800), (0x2000, 0x1000)]);
    }

    #[test]
    fn fill_free_covers_the_gaps() {
        let mut m = ProcessMemory::new();
        m.region(0x10000, 0x1000, 0x10000, 4, MEM_COMMIT, 4, MEM_PRIVATE);
        m.fill_free(0x20000);
        let r = m.regions();
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].base, r[0].size, r[0].state), (0, 0x10000, MEM_FREE));
        assert_eq!((r[2].base, r[2].size), (0x11000, 0xf000));
    }
}
