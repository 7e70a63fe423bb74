//! NT heap structure offsets, `RtlpLFHKey` and `RtlpHpHeapGlobals` read from ntdll's PDB, when the
//! user has it.
//!
//! The built-in tables ([`super::nt_heap`]) cover the Windows builds whose layouts are documented;
//! a PDB that matches the dump's ntdll (GUID and age) gives the exact offsets of any build, and the
//! address of `RtlpLFHKey`. Members are looked up by their names in the real ntdll.pdb.

use super::nt_heap::NtHeapLayout;
use pdb_addr2line::pdb::{self, FallibleIterator, TypeData};
use std::collections::HashMap;

/// What a PDB gave.
#[derive(Clone, Debug)]
pub struct PdbLayout {
    /// The layout, with every member the PDB names taken from it.
    pub layout: NtHeapLayout,
    /// How many members came from the PDB.
    pub members: usize,
    /// RVA of `RtlpLFHKey` in ntdll.
    pub lfh_key_rva: Option<u32>,
    /// RVA of `RtlpHpHeapGlobals` (segment heaps' HeapKey, then LfhKey) in ntdll.
    pub hp_globals_rva: Option<u32>,
}

type Members = HashMap<String, HashMap<String, u64>>;

/// A layout field and the structure member that gives it.
type Member = (
    fn(&mut NtHeapLayout) -> &mut u64,
    &'static str,
    &'static str,
);

/// Every layout field a PDB can give, with its structure and member name.
const MEMBERS: &[Member] = &[
    (|l| &mut l.flags, "_HEAP", "Flags"),
    (|l| &mut l.encode_flag_mask, "_HEAP", "EncodeFlagMask"),
    (|l| &mut l.encoding, "_HEAP", "Encoding"),
    (|l| &mut l.interceptor, "_HEAP", "Interceptor"),
    (
        |l| &mut l.virtual_allocd_blocks,
        "_HEAP",
        "VirtualAllocdBlocks",
    ),
    (|l| &mut l.segment_list, "_HEAP", "SegmentList"),
    (|l| &mut l.free_lists, "_HEAP", "FreeLists"),
    (|l| &mut l.front_end_heap, "_HEAP", "FrontEndHeap"),
    (|l| &mut l.front_end_heap_type, "_HEAP", "FrontEndHeapType"),
    (
        |l| &mut l.seg_signature,
        "_HEAP_SEGMENT",
        "SegmentSignature",
    ),
    (
        |l| &mut l.seg_list_entry,
        "_HEAP_SEGMENT",
        "SegmentListEntry",
    ),
    (|l| &mut l.seg_heap, "_HEAP_SEGMENT", "Heap"),
    (|l| &mut l.seg_base, "_HEAP_SEGMENT", "BaseAddress"),
    (|l| &mut l.seg_pages, "_HEAP_SEGMENT", "NumberOfPages"),
    (|l| &mut l.seg_first_entry, "_HEAP_SEGMENT", "FirstEntry"),
    (|l| &mut l.seg_last_valid, "_HEAP_SEGMENT", "LastValidEntry"),
    (|l| &mut l.seg_ucr_list, "_HEAP_SEGMENT", "UCRSegmentList"),
    (
        |l| &mut l.ucr_segment_entry,
        "_HEAP_UCR_DESCRIPTOR",
        "SegmentEntry",
    ),
    (|l| &mut l.ucr_address, "_HEAP_UCR_DESCRIPTOR", "Address"),
    (|l| &mut l.ucr_size, "_HEAP_UCR_DESCRIPTOR", "Size"),
    (
        |l| &mut l.vae_commit,
        "_HEAP_VIRTUAL_ALLOC_ENTRY",
        "CommitSize",
    ),
    (
        |l| &mut l.vae_reserve,
        "_HEAP_VIRTUAL_ALLOC_ENTRY",
        "ReserveSize",
    ),
    (
        |l| &mut l.vae_busy_block,
        "_HEAP_VIRTUAL_ALLOC_ENTRY",
        "BusyBlock",
    ),
    (
        |l| &mut l.lfh.sub_segment_zones,
        "_LFH_HEAP",
        "SubSegmentZones",
    ),
    (
        |l| &mut l.lfh.subseg_user_blocks,
        "_HEAP_SUBSEGMENT",
        "UserBlocks",
    ),
    (
        |l| &mut l.lfh.subseg_depth,
        "_HEAP_SUBSEGMENT",
        "AggregateExchg",
    ),
    (
        |l| &mut l.lfh.subseg_block_size,
        "_HEAP_SUBSEGMENT",
        "BlockSize",
    ),
    (
        |l| &mut l.lfh.subseg_block_count,
        "_HEAP_SUBSEGMENT",
        "BlockCount",
    ),
    (
        |l| &mut l.lfh.ub_signature,
        "_HEAP_USERDATA_HEADER",
        "Signature",
    ),
    (
        |l| &mut l.lfh.ub_encoded_offsets,
        "_HEAP_USERDATA_HEADER",
        "EncodedOffsets",
    ),
    (
        |l| &mut l.lfh.ub_bitmap_size,
        "_HEAP_USERDATA_HEADER",
        "BusyBitmap",
    ),
];

/// Read the members of the structures heapdiag uses and apply them over `base`.
pub fn nt_layout(bytes: &[u8], base: NtHeapLayout) -> Result<PdbLayout, String> {
    let mut p = pdb::PDB::open(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let wanted = [
        "_HEAP",
        "_HEAP_SEGMENT",
        "_HEAP_UCR_DESCRIPTOR",
        "_HEAP_VIRTUAL_ALLOC_ENTRY",
        "_LFH_HEAP",
        "_HEAP_SUBSEGMENT",
        "_HEAP_USERDATA_HEADER",
    ];
    let (members, sizes) = struct_members(&mut p, &wanted)?;
    let mut l = base;
    let mut n = 0usize;
    let ptr = u64::from(l.bits / 8);
    for (field, s, m) in MEMBERS {
        if let Some(off) = members.get(*s).and_then(|x| x.get(*m)) {
            *field(&mut l) = *off;
            n += 1;
        }
    }
    // Two offsets point inside a member: the 8 meaningful bytes of x64's 16-byte Encoding, and the
    // Buffer pointer after BusyBitmap's pointer-sized SizeOfBitMap.
    if l.bits == 64
        && members
            .get("_HEAP")
            .is_some_and(|x| x.contains_key("Encoding"))
    {
        l.encoding += 8;
    }
    if let Some(off) = members
        .get("_HEAP_USERDATA_HEADER")
        .and_then(|x| x.get("BusyBitmap"))
    {
        l.lfh.ub_bitmap_buffer = off + ptr;
        n += 1;
    }
    if let Some(size) = sizes.get("_HEAP_VIRTUAL_ALLOC_ENTRY") {
        l.vae_size = *size;
    }
    Ok(PdbLayout {
        layout: l,
        members: n,
        lfh_key_rva: global_rva(&mut p, "RtlpLFHKey"),
        hp_globals_rva: global_rva(&mut p, "RtlpHpHeapGlobals"),
    })
}

/// Members (name → offset) and sizes of the named structures.
fn struct_members<'s>(
    p: &mut pdb::PDB<'s, std::io::Cursor<&'s [u8]>>,
    wanted: &[&str],
) -> Result<(Members, HashMap<String, u64>), String> {
    let tpi = p.type_information().map_err(|e| e.to_string())?;
    let mut finder = tpi.finder();
    let mut iter = tpi.iter();
    let mut found: Vec<(String, pdb::TypeIndex, u64)> = Vec::new();
    while let Some(t) = iter.next().map_err(|e| e.to_string())? {
        finder.update(&iter);
        if let Ok(TypeData::Class(c)) = t.parse() {
            let name = c.name.to_string().into_owned();
            if !c.properties.forward_reference() && wanted.contains(&name.as_str()) {
                if let Some(f) = c.fields {
                    found.push((name, f, c.size));
                }
            }
        }
    }
    let mut members = Members::new();
    let mut sizes = HashMap::new();
    for (name, fields, size) in found {
        let mut m = HashMap::new();
        let mut next = Some(fields);
        let mut guard = 0;
        while let (Some(i), true) = (next, guard < 64) {
            guard += 1;
            let Ok(TypeData::FieldList(list)) = finder.find(i).and_then(|t| t.parse()) else {
                break;
            };
            for f in list.fields {
                if let TypeData::Member(mem) = f {
                    m.entry(mem.name.to_string().into_owned())
                        .or_insert(mem.offset);
                }
            }
            next = list.continuation;
        }
        members.insert(name.clone(), m);
        sizes.insert(name, size);
    }
    Ok((members, sizes))
}

/// The RVA of a global variable, from the global symbol table (public or data symbols; x86
/// public names carry a leading underscore).
fn global_rva<'s>(p: &mut pdb::PDB<'s, std::io::Cursor<&'s [u8]>>, name: &str) -> Option<u32> {
    let map = p.address_map().ok()?;
    let symbols = p.global_symbols().ok()?;
    let mut it = symbols.iter();
    let underscored = format!("_{name}");
    while let Ok(Some(s)) = it.next() {
        let (n, off) = match s.parse() {
            Ok(pdb::SymbolData::Data(d)) => (d.name, d.offset),
            Ok(pdb::SymbolData::Public(p)) => (p.name, p.offset),
            _ => continue,
        };
        let n = n.to_string();
        if n == name || n == underscored {
            return off.to_rva(&map).map(|r| r.0);
        }
    }
    None
}
