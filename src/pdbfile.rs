//! A PDB's identity: the GUID/age check that decides whether a PDB is the one a module was built
//! with. Finding PDBs (folders, caches, symbol servers) is [`crate::symsrv`]'s job.

use pdb_addr2line::pdb;
use std::path::Path;

pub use crate::symsrv::SymbolPath;

/// The GUID (upper case, with dashes) and age a PDB says it has; the age is the DBI stream's when
/// it has one, as the debuggers use it.
fn identity<'s, S: pdb::Source<'s> + Send + 's>(source: S) -> Result<(String, u32), String> {
    let mut p = pdb::PDB::open(source).map_err(|e| format!("not a readable PDB ({e})"))?;
    let info = p
        .pdb_information()
        .map_err(|e| format!("no PDB information ({e})"))?;
    let dbi_age = p.debug_information().ok().and_then(|d| d.age());
    Ok((
        info.guid.to_string().to_uppercase(),
        dbi_age.unwrap_or(info.age),
    ))
}

/// Why a PDB that says it is `found` is not the module's `guid`/`age`, if it is not.
fn mismatch((found_guid, found_age): (String, u32), guid: &str, age: u32) -> Result<(), String> {
    if !found_guid.eq_ignore_ascii_case(guid) || found_age != age {
        return Err(format!(
            "its GUID/age {found_guid}/{found_age} differ from the module's {guid}/{age}"
        ));
    }
    Ok(())
}

/// The largest PDB heapdiag reads (the largest real ones are a few GB).
pub const MAX_PDB_BYTES: u64 = 4 << 30;

/// A PDB candidate must be a regular file (through symbolic links) of at most
/// [`MAX_PDB_BYTES`]: opening a FIFO would wait for a writer, a device can be endless.
fn regular(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it ({e})"))?;
    if !meta.is_file() {
        return Err("it is not a regular file (a FIFO, socket or device)".into());
    }
    if meta.len() > MAX_PDB_BYTES {
        return Err(format!(
            "it is {} bytes, more than the {MAX_PDB_BYTES} a PDB may have here",
            meta.len()
        ));
    }
    Ok(())
}

/// Check the PDB file at `path` against the module's GUID and age, reading only its headers.
pub fn check_file(path: &Path, guid: &str, age: u32) -> Result<(), String> {
    regular(path)?;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read it ({e})"))?;
    mismatch(identity(file)?, guid, age)
}

/// Open a PDB and check that it is the one the module was built with.
pub fn open_matching(path: &Path, guid: &str, age: u32) -> Result<Vec<u8>, String> {
    regular(path)?;
    let data = std::fs::read(path).map_err(|e| format!("cannot read it ({e})"))?;
    mismatch(identity(std::io::Cursor::new(&data[..]))?, guid, age)?;
    Ok(data)
}
