//! NT heap structure offsets, `RtlpLFHKey` and `RtlpHpHeapGlobals` read from ntdll's PDB, when the
//! user has it.
//!
//! The built-in tables ([`super::nt_heap`]) cover the Windows builds whose layouts are documented;
//! a PDB that matches the dump's ntdll (GUID and age) gives the exact offsets of any build, and the
//! address of `RtlpLFHKey`. Members are looked up by their names in the real ntdll.pdb and come
//! out as the same [`Row`]s the built-in tables hold.

use super::nt_heap::{self, NtHeapLayout, Row, SIZEOF};
use pdb_addr2line::pdb::{self, FallibleIterator, TypeData};
use std::collections::HashSet;

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

/// Read the members of the structures the NT heap layout uses and apply them over `base`.
pub fn nt_layout(bytes: &[u8], base: NtHeapLayout) -> Result<PdbLayout, String> {
    let mut p = pdb::PDB::open(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let rows = struct_rows(&mut p, &nt_heap::structures())?;
    let mut layout = base;
    let members = layout.apply(&rows);
    Ok(PdbLayout {
        layout,
        members,
        lfh_key_rva: global_rva(&mut p, "RtlpLFHKey"),
        hp_globals_rva: global_rva(&mut p, "RtlpHpHeapGlobals"),
    })
}

/// The rows of an ntdll PDB that the NT heap layout uses, in the form of the built-in tables.
pub fn nt_rows(bytes: &[u8]) -> Result<Vec<Row>, String> {
    let mut p = pdb::PDB::open(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let mut rows = struct_rows(&mut p, &nt_heap::structures())?;
    rows.retain(nt_heap::is_used);
    Ok(rows)
}

/// The bitness of the code a PDB describes (its machine type), when it says.
pub fn pdb_bits(bytes: &[u8]) -> Option<u32> {
    let mut p = pdb::PDB::open(std::io::Cursor::new(bytes)).ok()?;
    match p.debug_information().ok()?.machine_type().ok()? {
        pdb::MachineType::Amd64 | pdb::MachineType::Arm64 => Some(64),
        pdb::MachineType::X86 => Some(32),
        _ => None,
    }
}

/// The size and every member (the first of each name) of the named structures, as rows.
fn struct_rows<'s>(
    p: &mut pdb::PDB<'s, std::io::Cursor<&'s [u8]>>,
    wanted: &[&str],
) -> Result<Vec<Row>, String> {
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
    let mut rows = Vec::new();
    for (structure, fields, size) in found {
        let row = |member: String, offset: u64| Row {
            structure: structure.clone(),
            member,
            offset,
        };
        rows.push(row(SIZEOF.to_string(), size));
        let mut seen = HashSet::new();
        let mut next = Some(fields);
        let mut guard = 0;
        while let (Some(i), true) = (next, guard < 64) {
            guard += 1;
            let Ok(TypeData::FieldList(list)) = finder.find(i).and_then(|t| t.parse()) else {
                break;
            };
            for f in list.fields {
                if let TypeData::Member(mem) = f {
                    let name = mem.name.to_string().into_owned();
                    if seen.insert(name.clone()) {
                        rows.push(row(name, mem.offset));
                    }
                }
            }
            next = list.continuation;
        }
    }
    Ok(rows)
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
