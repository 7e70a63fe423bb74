//! Finding a module's PDB: the symbol path (`--symbols` folders and the local caches of
//! `_NT_SYMBOL_PATH`), flat or symbol-store layout, and the GUID/age check that decides whether a
//! PDB is the one the module was built with.

use pdb_addr2line::pdb;
use std::path::{Path, PathBuf};

/// Where PDBs are looked for.
#[derive(Clone, Debug, Default)]
pub struct SymbolPath {
    dirs: Vec<PathBuf>,
}

impl SymbolPath {
    /// Folders given with `--symbols`, then the local folders of `_NT_SYMBOL_PATH`
    /// (`srv*CACHE*URL`, `cache*DIR`, plain folders; URLs are ignored: heapdiag is offline).
    pub fn new(folders: &[PathBuf], nt_symbol_path: Option<&str>) -> Self {
        let mut dirs: Vec<PathBuf> = folders.to_vec();
        if let Some(p) = nt_symbol_path {
            for part in p.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                let lower = part.to_ascii_lowercase();
                let pieces: Vec<&str> = part.split('*').collect();
                if lower.starts_with("srv*")
                    || lower.starts_with("symsrv*")
                    || lower.starts_with("cache*")
                {
                    for piece in &pieces[1..] {
                        if !piece.is_empty() && !piece.contains("://") {
                            dirs.push(PathBuf::from(piece));
                        }
                    }
                } else if !part.contains("://") {
                    dirs.push(PathBuf::from(part));
                }
            }
        }
        SymbolPath { dirs }
    }

    /// Whether any folder is set.
    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty()
    }

    /// Candidate files for a PDB: `DIR/name`, and the symbol-store `DIR/name/GUIDAGE/name`, matched
    /// case-insensitively.
    pub fn candidates(&self, name: &str, guid: &str, age: u32) -> Vec<PathBuf> {
        let key = format!("{}{:X}", guid.replace('-', ""), age);
        let mut out = Vec::new();
        for d in &self.dirs {
            if let Some(f) = child(d, name) {
                if f.is_file() {
                    out.push(f.clone());
                }
                if let Some(k) = child(&f, &key) {
                    if let Some(p) = child(&k, name) {
                        out.push(p);
                    }
                }
            }
        }
        out
    }
}

/// The entry of `dir` named `name`, compared case-insensitively.
fn child(dir: &Path, name: &str) -> Option<PathBuf> {
    let exact = dir.join(name);
    if exact.exists() {
        return Some(exact);
    }
    std::fs::read_dir(dir).ok()?.find_map(|e| {
        let e = e.ok()?;
        e.file_name()
            .to_str()?
            .eq_ignore_ascii_case(name)
            .then(|| e.path())
    })
}

/// Open a PDB and check that it is the one the module was built with.
pub fn open_matching(path: &Path, guid: &str, age: u32) -> Result<Vec<u8>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read it ({e})"))?;
    let (found_guid, found_age) = {
        let mut p = pdb::PDB::open(std::io::Cursor::new(&data[..]))
            .map_err(|e| format!("not a readable PDB ({e})"))?;
        let info = p
            .pdb_information()
            .map_err(|e| format!("no PDB information ({e})"))?;
        let dbi_age = p.debug_information().ok().and_then(|d| d.age());
        (info.guid.to_string(), dbi_age.unwrap_or(info.age))
    };
    if !found_guid.eq_ignore_ascii_case(guid) || found_age != age {
        return Err(format!(
            "its GUID/age {}/{} differ from the module's {}/{}",
            found_guid.to_uppercase(),
            found_age,
            guid,
            age
        ));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nt_symbol_path_local_parts() {
        let p = SymbolPath::new(
            &[PathBuf::from("/syms")],
            Some("srv*/cache*https://symbols.example/;cache*/c2;/plain;https://x"),
        );
        assert_eq!(
            p.dirs,
            vec![
                PathBuf::from("/syms"),
                PathBuf::from("/cache"),
                PathBuf::from("/c2"),
                PathBuf::from("/plain")
            ]
        );
    }
}
