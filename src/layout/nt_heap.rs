//! NT heap structure offsets by layout family and bitness: `_HEAP`, `_HEAP_SEGMENT`,
//! `_HEAP_UCR_DESCRIPTOR`, `_HEAP_VIRTUAL_ALLOC_ENTRY`, and the LFH's `_LFH_HEAP`,
//! `_HEAP_SUBSEGMENT` and `_HEAP_USERDATA_HEADER`.
//!
//! The offsets are data: one table per family and bitness in `src/layout/nt_heap/*.txt`, rows of
//! (structure, member, offset) or (structure, `sizeof`, size), the same [`Row`]s that
//! [`super::pdb`] reads from an ntdll PDB, so that a built-in table and a PDB are two sources of
//! one format, applied by the same code ([`NtHeapLayout::apply`]). Each table says the first
//! ntdll version it is for; a version takes the latest table not newer than itself. A new
//! Windows build with new offsets is a new table (`cargo run --example nt_layout_table --
//! ntdll.pdb` writes one); `tests/layouts.rs` checks the tables against the WinDbg `dt` dumps in
//! `shared/docs/layouts`.
//!
//! Source of the tables: `shared/docs/windows-heap-reference.md` §2.1–§2.8 and §3.2–§3.3, checked
//! against the Windows 7 SP1 heaps of `fizzbuzz_wow64.dmp` (x86 and x64) where noted in
//! `docs/heaps.md`.

use std::sync::OnceLock;

/// The `_HEAP` layout families: what the walkers do differently (the LFH's design, how user
/// blocks store their offsets). Their offsets are in the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NtFamily {
    /// Windows 7 SP1 (ntdll 6.1): the pre-Windows 8 LFH.
    Win7,
    /// Windows 8 (ntdll 6.2): new LFH, first-chunk offset stored in clear.
    Win8,
    /// Windows 8.1 and Windows 10 1507/1511 (ntdll 6.3, 10.0 before build 14393): encoded offsets.
    Win81,
    /// Windows 10 1607 – 1803 (builds 14393 – 17134): `StackTraceInitVar` added.
    Win10v1607,
    /// Windows 10 1809 and later, Windows 11 (build 17763+): `CommitLimitData` added.
    Win10v1809,
}

impl NtFamily {
    /// The family of an ntdll (or OS) version: that of the latest table not newer than it (the
    /// oldest family for versions older than every table).
    pub fn for_version(major: u32, minor: u32, build: u32) -> Self {
        let v = (major, minor, build);
        let all = tables();
        all.iter()
            .filter(|t| t.since <= v)
            .max_by_key(|t| t.since)
            .or_else(|| all.iter().min_by_key(|t| t.since))
            .map_or(NtFamily::Win7, |t| t.family)
    }

    /// Every family, oldest first.
    pub const ALL: [NtFamily; 5] = [
        NtFamily::Win7,
        NtFamily::Win8,
        NtFamily::Win81,
        NtFamily::Win10v1607,
        NtFamily::Win10v1809,
    ];

    /// A human name.
    pub fn name(self) -> &'static str {
        match self {
            NtFamily::Win7 => "Windows 7",
            NtFamily::Win8 => "Windows 8",
            NtFamily::Win81 => "Windows 8.1 / 10 1507-1511",
            NtFamily::Win10v1607 => "Windows 10 1607-1803",
            NtFamily::Win10v1809 => "Windows 10 1809+ / 11",
        }
    }

    /// The key the tables name it by: `win7`, `win8`, `win81`, `win10-1607`, `win10-1809`.
    pub fn key(self) -> &'static str {
        match self {
            NtFamily::Win7 => "win7",
            NtFamily::Win8 => "win8",
            NtFamily::Win81 => "win81",
            NtFamily::Win10v1607 => "win10-1607",
            NtFamily::Win10v1809 => "win10-1809",
        }
    }

    /// Whether the LFH is the pre-Windows 8 design (zones of subsegments, no busy bitmap).
    pub fn old_lfh(self) -> bool {
        self == NtFamily::Win7
    }
}

/// The member name that stands for a structure's size in a [`Row`].
pub const SIZEOF: &str = "sizeof";

/// One fact about a structure: a member's offset, or (member [`SIZEOF`]) its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// `_HEAP`, `_HEAP_SEGMENT`, …
    pub structure: String,
    /// `SegmentList`, …, or [`SIZEOF`].
    pub member: String,
    /// The offset (or size) in bytes.
    pub offset: u64,
}

/// A table of rows for one family and bitness, for ntdll versions from `since` on.
#[derive(Clone, Debug)]
pub struct NtTable {
    /// The family (what the walkers do differently).
    pub family: NtFamily,
    /// 32 or 64.
    pub bits: u32,
    /// The first ntdll version (major, minor, build) it is for.
    pub since: (u32, u32, u32),
    /// The rows.
    pub rows: Vec<Row>,
}

/// The built-in tables, as written in `src/layout/nt_heap/`.
const TABLE_FILES: [(&str, &str); 10] = [
    ("win7-x86", include_str!("nt_heap/win7-x86.txt")),
    ("win7-x64", include_str!("nt_heap/win7-x64.txt")),
    ("win8-x86", include_str!("nt_heap/win8-x86.txt")),
    ("win8-x64", include_str!("nt_heap/win8-x64.txt")),
    ("win81-x86", include_str!("nt_heap/win81-x86.txt")),
    ("win81-x64", include_str!("nt_heap/win81-x64.txt")),
    ("win10-1607-x86", include_str!("nt_heap/win10-1607-x86.txt")),
    ("win10-1607-x64", include_str!("nt_heap/win10-1607-x64.txt")),
    ("win10-1809-x86", include_str!("nt_heap/win10-1809-x86.txt")),
    ("win10-1809-x64", include_str!("nt_heap/win10-1809-x64.txt")),
];

/// Every built-in table (parsed once).
pub fn tables() -> &'static [NtTable] {
    static TABLES: OnceLock<Vec<NtTable>> = OnceLock::new();
    TABLES.get_or_init(|| {
        TABLE_FILES
            .iter()
            .map(|(name, text)| {
                NtTable::parse(text).unwrap_or_else(|e| panic!("built-in table {name}: {e}"))
            })
            .collect()
    })
}

impl NtTable {
    /// Read a table: `family KEY`, `bits N`, `since A.B.C`, then `STRUCTURE MEMBER OFFSET` rows;
    /// `#` starts a comment.
    pub fn parse(text: &str) -> Result<NtTable, String> {
        let (mut family, mut bits, mut since) = (None, None, None);
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let words: Vec<&str> = line
                .split('#')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            let bad = || format!("line {}: cannot read `{line}`", i + 1);
            match words[..] {
                [] => {}
                ["family", key] => {
                    family = Some(
                        NtFamily::ALL
                            .into_iter()
                            .find(|f| f.key() == key)
                            .ok_or_else(bad)?,
                    )
                }
                ["bits", b] => bits = Some(b.parse::<u32>().map_err(|_| bad())?),
                ["since", v] => since = Some(version(v).ok_or_else(bad)?),
                [structure, member, offset] => rows.push(Row {
                    structure: structure.to_string(),
                    member: member.to_string(),
                    offset: hex(offset).ok_or_else(bad)?,
                }),
                _ => return Err(bad()),
            }
        }
        Ok(NtTable {
            family: family.ok_or("no `family` line")?,
            bits: bits.ok_or("no `bits` line")?,
            since: since.ok_or("no `since` line")?,
            rows,
        })
    }

    /// The table in the form [`NtTable::parse`] reads, after `comment` lines.
    pub fn write(&self, comment: &[String]) -> String {
        let mut out: String = comment.iter().map(|c| format!("# {c}\n")).collect();
        let (a, b, c) = self.since;
        out.push_str(&format!(
            "family {}\nbits {}\nsince {a}.{b}.{c}\n",
            self.family.key(),
            self.bits
        ));
        let width = self
            .rows
            .iter()
            .map(|r| r.structure.len() + 1 + r.member.len())
            .max()
            .unwrap_or(0);
        for r in &self.rows {
            let name = format!("{} {}", r.structure, r.member);
            out.push_str(&format!("{name:<width$} {:#x}\n", r.offset));
        }
        out
    }
}

/// `10.0.17763` → (10, 0, 17763).
fn version(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.split('.').map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next()??))
}

/// `0x1a2` → 0x1a2.
fn hex(v: &str) -> Option<u64> {
    u64::from_str_radix(v.strip_prefix("0x")?, 16).ok()
}

/// LFH offsets.
#[derive(Clone, Copy, Debug)]
pub struct LfhLayout {
    /// `_LFH_HEAP.SubSegmentZones` (LIST_ENTRY head of `_LFH_BLOCK_ZONE`s).
    pub sub_segment_zones: u64,
    /// `_HEAP_SUBSEGMENT.UserBlocks`.
    pub subseg_user_blocks: u64,
    /// `_HEAP_SUBSEGMENT.AggregateExchg.Depth` (u16: free chunks).
    pub subseg_depth: u64,
    /// `_HEAP_SUBSEGMENT.BlockSize` (u16, in heap units).
    pub subseg_block_size: u64,
    /// `_HEAP_SUBSEGMENT.BlockCount` (u16).
    pub subseg_block_count: u64,
    /// `_HEAP_USERDATA_HEADER.Signature` (0xF0E0D0C0).
    pub ub_signature: u64,
    /// Windows 7: offset of the first chunk from the user block header.
    pub ub_first_chunk: u64,
    /// Windows 8+: `_HEAP_USERDATA_HEADER.EncodedOffsets` {FirstAllocationOffset u16, BlockStride u16}.
    pub ub_encoded_offsets: u64,
    /// Windows 8+: `_HEAP_USERDATA_HEADER.BusyBitmap.SizeOfBitMap`.
    pub ub_bitmap_size: u64,
    /// Windows 8+: `_HEAP_USERDATA_HEADER.BusyBitmap.Buffer`.
    pub ub_bitmap_buffer: u64,
}

/// NT heap offsets of one family and bitness.
#[derive(Clone, Copy, Debug)]
pub struct NtHeapLayout {
    /// The family.
    pub family: NtFamily,
    /// 32 or 64.
    pub bits: u32,
    /// Heap granularity: sizeof(`_HEAP_ENTRY`), 16 (x64) or 8 (x86).
    pub unit: u64,
    /// `_HEAP.Flags`.
    pub flags: u64,
    /// `_HEAP.EncodeFlagMask`.
    pub encode_flag_mask: u64,
    /// The 8 encoded bytes of `_HEAP.Encoding` (x64: its second half).
    pub encoding: u64,
    /// `_HEAP.Interceptor` (u32).
    pub interceptor: u64,
    /// `_HEAP.VirtualAllocdBlocks`.
    pub virtual_allocd_blocks: u64,
    /// `_HEAP.SegmentList`.
    pub segment_list: u64,
    /// `_HEAP.FreeLists` (LIST_ENTRY through the free blocks' `_HEAP_FREE_ENTRY.FreeList`).
    pub free_lists: u64,
    /// `_HEAP.FrontEndHeap`.
    pub front_end_heap: u64,
    /// `_HEAP.FrontEndHeapType` (u8; 2 = LFH).
    pub front_end_heap_type: u64,
    /// `_HEAP_SEGMENT.SegmentSignature` (0xFFEEFFEE).
    pub seg_signature: u64,
    /// `_HEAP_SEGMENT.SegmentListEntry`.
    pub seg_list_entry: u64,
    /// `_HEAP_SEGMENT.Heap`.
    pub seg_heap: u64,
    /// `_HEAP_SEGMENT.BaseAddress`.
    pub seg_base: u64,
    /// `_HEAP_SEGMENT.NumberOfPages` (u32).
    pub seg_pages: u64,
    /// `_HEAP_SEGMENT.NumberOfUnCommittedPages` (u32).
    pub seg_uncommitted_pages: u64,
    /// `_HEAP_SEGMENT.FirstEntry`.
    pub seg_first_entry: u64,
    /// `_HEAP_SEGMENT.LastValidEntry`.
    pub seg_last_valid: u64,
    /// `_HEAP_SEGMENT.UCRSegmentList`.
    pub seg_ucr_list: u64,
    /// `_HEAP_UCR_DESCRIPTOR.SegmentEntry`.
    pub ucr_segment_entry: u64,
    /// `_HEAP_UCR_DESCRIPTOR.Address`.
    pub ucr_address: u64,
    /// `_HEAP_UCR_DESCRIPTOR.Size`.
    pub ucr_size: u64,
    /// `_HEAP_VIRTUAL_ALLOC_ENTRY.CommitSize`.
    pub vae_commit: u64,
    /// `_HEAP_VIRTUAL_ALLOC_ENTRY.ReserveSize`.
    pub vae_reserve: u64,
    /// `_HEAP_VIRTUAL_ALLOC_ENTRY.BusyBlock` (an encoded `_HEAP_ENTRY`).
    pub vae_busy_block: u64,
    /// `sizeof(_HEAP_VIRTUAL_ALLOC_ENTRY)`: where a large block's user data starts.
    pub vae_size: u64,
    /// LFH offsets.
    pub lfh: LfhLayout,
}

/// A layout field and the structure member that gives it.
struct Field {
    structure: &'static str,
    member: &'static str,
    set: fn(&mut NtHeapLayout, u64),
}

const fn field(
    structure: &'static str,
    member: &'static str,
    set: fn(&mut NtHeapLayout, u64),
) -> Field {
    Field {
        structure,
        member,
        set,
    }
}

/// Every layout field, with the structure member (or size) that gives it. Two fields point inside
/// a member: the 8 meaningful bytes of x64's 16-byte `Encoding`, and the `Buffer` pointer after
/// `BusyBitmap`'s pointer-sized `SizeOfBitMap`.
#[rustfmt::skip]
const FIELDS: &[Field] = &[
    field("_HEAP_ENTRY",               SIZEOF,                |l, v| l.unit = v),
    field("_HEAP",                     "Flags",               |l, v| l.flags = v),
    field("_HEAP",                     "EncodeFlagMask",      |l, v| l.encode_flag_mask = v),
    field("_HEAP",                     "Encoding",            |l, v| l.encoding = v + if l.bits == 64 { 8 } else { 0 }),
    field("_HEAP",                     "Interceptor",         |l, v| l.interceptor = v),
    field("_HEAP",                     "VirtualAllocdBlocks", |l, v| l.virtual_allocd_blocks = v),
    field("_HEAP",                     "SegmentList",         |l, v| l.segment_list = v),
    field("_HEAP",                     "FreeLists",           |l, v| l.free_lists = v),
    field("_HEAP",                     "FrontEndHeap",        |l, v| l.front_end_heap = v),
    field("_HEAP",                     "FrontEndHeapType",    |l, v| l.front_end_heap_type = v),
    field("_HEAP_SEGMENT",             "SegmentSignature",    |l, v| l.seg_signature = v),
    field("_HEAP_SEGMENT",             "SegmentListEntry",    |l, v| l.seg_list_entry = v),
    field("_HEAP_SEGMENT",             "Heap",                |l, v| l.seg_heap = v),
    field("_HEAP_SEGMENT",             "BaseAddress",         |l, v| l.seg_base = v),
    field("_HEAP_SEGMENT",             "NumberOfPages",       |l, v| l.seg_pages = v),
    field("_HEAP_SEGMENT",             "NumberOfUnCommittedPages", |l, v| l.seg_uncommitted_pages = v),
    field("_HEAP_SEGMENT",             "FirstEntry",          |l, v| l.seg_first_entry = v),
    field("_HEAP_SEGMENT",             "LastValidEntry",      |l, v| l.seg_last_valid = v),
    field("_HEAP_SEGMENT",             "UCRSegmentList",      |l, v| l.seg_ucr_list = v),
    field("_HEAP_UCR_DESCRIPTOR",      "SegmentEntry",        |l, v| l.ucr_segment_entry = v),
    field("_HEAP_UCR_DESCRIPTOR",      "Address",             |l, v| l.ucr_address = v),
    field("_HEAP_UCR_DESCRIPTOR",      "Size",                |l, v| l.ucr_size = v),
    field("_HEAP_VIRTUAL_ALLOC_ENTRY", SIZEOF,                |l, v| l.vae_size = v),
    field("_HEAP_VIRTUAL_ALLOC_ENTRY", "CommitSize",          |l, v| l.vae_commit = v),
    field("_HEAP_VIRTUAL_ALLOC_ENTRY", "ReserveSize",         |l, v| l.vae_reserve = v),
    field("_HEAP_VIRTUAL_ALLOC_ENTRY", "BusyBlock",           |l, v| l.vae_busy_block = v),
    field("_LFH_HEAP",                 "SubSegmentZones",     |l, v| l.lfh.sub_segment_zones = v),
    field("_HEAP_SUBSEGMENT",          "UserBlocks",          |l, v| l.lfh.subseg_user_blocks = v),
    field("_HEAP_SUBSEGMENT",          "AggregateExchg",      |l, v| l.lfh.subseg_depth = v),
    field("_HEAP_SUBSEGMENT",          "BlockSize",           |l, v| l.lfh.subseg_block_size = v),
    field("_HEAP_SUBSEGMENT",          "BlockCount",          |l, v| l.lfh.subseg_block_count = v),
    field("_HEAP_USERDATA_HEADER",     SIZEOF,                |l, v| l.lfh.ub_first_chunk = v),
    field("_HEAP_USERDATA_HEADER",     "Signature",           |l, v| l.lfh.ub_signature = v),
    field("_HEAP_USERDATA_HEADER",     "EncodedOffsets",      |l, v| l.lfh.ub_encoded_offsets = v),
    field("_HEAP_USERDATA_HEADER",     "BusyBitmap",          |l, v| l.lfh.ub_bitmap_size = v),
    field("_HEAP_USERDATA_HEADER",     "BusyBitmap",          |l, v| l.lfh.ub_bitmap_buffer = v + u64::from(l.bits / 8)),
];

/// The structures the layout reads members of.
pub fn structures() -> Vec<&'static str> {
    let mut v: Vec<&str> = FIELDS.iter().map(|f| f.structure).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The fields' (structure, member) pairs that `rows` do not give, as `STRUCTURE.MEMBER`.
pub fn missing(rows: &[Row]) -> Vec<String> {
    let mut v: Vec<String> = FIELDS
        .iter()
        .filter(|f| {
            !rows
                .iter()
                .any(|r| r.structure == f.structure && r.member == f.member)
        })
        .map(|f| format!("{}.{}", f.structure, f.member))
        .collect();
    v.dedup();
    v
}

/// Whether the layout uses `row`.
pub fn is_used(row: &Row) -> bool {
    FIELDS
        .iter()
        .any(|f| f.structure == row.structure && f.member == row.member)
}

impl NtHeapLayout {
    /// The layout of `family` for `bits` (32 or 64): its latest built-in table.
    pub fn new(family: NtFamily, bits: u32) -> Self {
        let table = tables()
            .iter()
            .filter(|t| t.family == family && t.bits == bits)
            .max_by_key(|t| t.since)
            .unwrap_or_else(|| panic!("no built-in {} table for {bits} bits", family.key()));
        let mut l = NtHeapLayout::empty(family, bits);
        l.apply(&table.rows);
        l
    }

    /// A layout with every offset 0, to be filled by [`NtHeapLayout::apply`].
    fn empty(family: NtFamily, bits: u32) -> Self {
        let lfh = LfhLayout {
            sub_segment_zones: 0,
            subseg_user_blocks: 0,
            subseg_depth: 0,
            subseg_block_size: 0,
            subseg_block_count: 0,
            ub_signature: 0,
            ub_first_chunk: 0,
            ub_encoded_offsets: 0,
            ub_bitmap_size: 0,
            ub_bitmap_buffer: 0,
        };
        NtHeapLayout {
            family,
            bits,
            unit: 0,
            flags: 0,
            encode_flag_mask: 0,
            encoding: 0,
            interceptor: 0,
            virtual_allocd_blocks: 0,
            segment_list: 0,
            free_lists: 0,
            front_end_heap: 0,
            front_end_heap_type: 0,
            seg_signature: 0,
            seg_list_entry: 0,
            seg_heap: 0,
            seg_base: 0,
            seg_pages: 0,
            seg_uncommitted_pages: 0,
            seg_first_entry: 0,
            seg_last_valid: 0,
            seg_ucr_list: 0,
            ucr_segment_entry: 0,
            ucr_address: 0,
            ucr_size: 0,
            vae_commit: 0,
            vae_reserve: 0,
            vae_busy_block: 0,
            vae_size: 0,
            lfh,
        }
    }

    /// Take every field `rows` give (from a built-in table or a PDB); the number of member
    /// fields set (sizes not counted).
    pub fn apply(&mut self, rows: &[Row]) -> usize {
        let mut n = 0;
        for r in rows {
            for f in FIELDS
                .iter()
                .filter(|f| f.structure == r.structure && f.member == r.member)
            {
                (f.set)(self, r.offset);
                n += usize::from(f.member != SIZEOF);
            }
        }
        n
    }

    /// Bytes of the +ust prefix between a block's header and its user data (trace pointer, heap
    /// pointer, x64 padding, pseudo header): 32 (x64) or 16 (x86).
    pub fn ust_prefix(&self) -> u64 {
        2 * self.unit
    }
}

/// `HEAP_ENTRY_BUSY`.
pub const ENTRY_BUSY: u8 = 0x01;
/// `HEAP_ENTRY_EXTRA_PRESENT`.
pub const ENTRY_EXTRA_PRESENT: u8 = 0x02;
/// `HEAP_ENTRY_VIRTUAL_ALLOC`: on a segment block (Windows 8+), a heap-internal allocation.
pub const ENTRY_VIRTUAL_ALLOC: u8 = 0x08;
/// `HEAP_ENTRY_LAST_ENTRY`.
pub const ENTRY_LAST_ENTRY: u8 = 0x10;
/// `_HEAP_USERDATA_HEADER.Signature`.
pub const USERDATA_SIGNATURE: u32 = 0xf0e0_d0c0;
/// `_HEAP_SEGMENT.SegmentSignature`.
pub const SEGMENT_SIGNATURE: u32 = 0xffee_ffee;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_follow_the_reference_tables() {
        assert_eq!(NtFamily::for_version(6, 1, 7601), NtFamily::Win7);
        assert_eq!(NtFamily::for_version(6, 2, 9200), NtFamily::Win8);
        assert_eq!(NtFamily::for_version(6, 3, 9600), NtFamily::Win81);
        assert_eq!(NtFamily::for_version(10, 0, 10586), NtFamily::Win81);
        assert_eq!(NtFamily::for_version(10, 0, 14393), NtFamily::Win10v1607);
        assert_eq!(NtFamily::for_version(10, 0, 19041), NtFamily::Win10v1809);
        assert_eq!(NtFamily::for_version(10, 0, 22631), NtFamily::Win10v1809);
        let l = NtHeapLayout::new(NtFamily::Win10v1809, 64);
        assert_eq!(
            (l.front_end_heap, l.front_end_heap_type, l.segment_list),
            (0x198, 0x1a2, 0x120)
        );
        let l = NtHeapLayout::new(NtFamily::Win7, 32);
        assert_eq!(
            (
                l.front_end_heap,
                l.virtual_allocd_blocks,
                l.lfh.sub_segment_zones
            ),
            (0xd4, 0xa0, 0x18)
        );
        let l = NtHeapLayout::new(NtFamily::Win81, 32);
        assert_eq!(
            (l.front_end_heap, l.segment_list, l.interceptor),
            (0xd0, 0xa4, 0x58)
        );
    }
}
