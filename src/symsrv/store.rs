//! Local symbol folders and stores: finding a PDB (flat, `name.pdb/KEY/name.pdb`, compressed
//! `name.pd_`, `file.ptr`) case-insensitively, extracting `.pd_` cabinets, and placing files into a
//! store through a temporary file renamed into place.

use super::name::PdbName;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The largest `file.ptr` read.
pub const MAX_POINTER: u64 = 4096;

/// A file a folder holds for a PDB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Candidate {
    /// The PDB itself.
    Pdb(PathBuf),
    /// A cabinet holding it (`name.pd_`).
    Compressed(PathBuf),
    /// A `file.ptr` naming where it is.
    Pointer(PathBuf),
}

/// What `dir` holds for the PDB `name` with store key `key`: with `flat`, `dir/name` first; then
/// `dir/name/key/name`, `dir/name/key/name.pd_`, `dir/name/key/file.ptr`. Names are matched
/// case-insensitively; only existing entries that are not directories are returned (cabinets and
/// pointers only when they are regular files).
pub fn candidates(dir: &Path, name: &PdbName, key: &str, flat: bool) -> Vec<Candidate> {
    let mut out = Vec::new();
    let Some(top) = child(dir, name.as_str()) else {
        return out;
    };
    // A PDB candidate that is not a directory is tried even when it is not a regular file: the
    // PDB check refuses FIFOs and devices with a reason (`pdbfile`), which the lookup reports.
    if flat && top.exists() && !top.is_dir() {
        out.push(Candidate::Pdb(top.clone()));
    }
    let Some(k) = child(&top, key) else {
        return out;
    };
    if let Some(p) = child(&k, name.as_str()).filter(|p| !p.is_dir()) {
        out.push(Candidate::Pdb(p));
    }
    if let Some(p) = child(&k, &name.compressed()).filter(|p| p.is_file()) {
        out.push(Candidate::Compressed(p));
    }
    if let Some(p) = child(&k, "file.ptr").filter(|p| p.is_file()) {
        out.push(Candidate::Pointer(p));
    }
    out
}

/// The entry of `dir` named `name`, compared case-insensitively (`name` is a plain file name).
pub fn child(dir: &Path, name: &str) -> Option<PathBuf> {
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

/// What a `file.ptr` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pointer {
    /// `PATH:…`: where the file is.
    Path(String),
    /// `MSG:…`: why the store does not give it.
    Message(String),
}

/// Parse a `file.ptr`.
pub fn parse_pointer(bytes: &[u8]) -> Result<Pointer, String> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_start_matches('\u{feff}').trim();
    let (tag, value) = text
        .split_once(':')
        .ok_or_else(|| "file.ptr holds neither PATH: nor MSG:".to_string())?;
    let value = value.trim();
    if value.chars().any(char::is_control) {
        return Err("file.ptr holds control characters".into());
    }
    match tag.trim().to_ascii_uppercase().as_str() {
        "PATH" if !value.is_empty() => Ok(Pointer::Path(value.to_string())),
        "MSG" => Ok(Pointer::Message(value.to_string())),
        _ => Err("file.ptr holds neither PATH: nor MSG:".into()),
    }
}

/// A new, unique temporary file name in the root of `store`, for a file that is renamed into
/// place once checked (see [`create_new`]).
pub fn temp_file(store: &Path, name: &PdbName) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    store.join(format!(
        ".heapdiag-{}-{}-{n}.tmp",
        name.as_str(),
        std::process::id()
    ))
}

/// Create the new file `path`, and its folder if needed (a cache folder is made when the first
/// file arrives, not before).
pub fn create_new(path: &Path) -> Result<std::fs::File, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {} ({e})", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| format!("cannot create {} ({e})", path.display()))
}

/// Rename the checked file `tmp` into `store/name/key/name` (folders created, or reused when they
/// exist in another case). On failure `tmp` is removed.
pub fn install(tmp: &Path, store: &Path, name: &PdbName, key: &str) -> Result<PathBuf, String> {
    let result = (|| {
        let top = child(store, name.as_str()).unwrap_or_else(|| store.join(name.as_str()));
        let dir = child(&top, key).unwrap_or_else(|| top.join(key));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {} ({e})", dir.display()))?;
        let dest = child(&dir, name.as_str()).unwrap_or_else(|| dir.join(name.as_str()));
        std::fs::rename(tmp, &dest)
            .map_err(|e| format!("cannot move the file into {} ({e})", dest.display()))?;
        Ok(dest)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

/// Copy the checked PDB `src` into `store` in store layout (through a temporary file), unless it
/// is there already.
pub fn copy_into(src: &Path, store: &Path, name: &PdbName, key: &str) -> Result<PathBuf, String> {
    if let Some(Candidate::Pdb(p)) = candidates(store, name, key, false).into_iter().next() {
        return Ok(p);
    }
    let tmp = temp_file(store, name);
    let copied = create_new(&tmp).and_then(|mut out| {
        std::fs::File::open(src)
            .and_then(|mut f| std::io::copy(&mut f, &mut out))
            .map_err(|e| format!("cannot copy {} ({e})", src.display()))
    });
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    install(&tmp, store, name, key)
}

/// Extract the PDB from the cabinet `cab` (a `.pd_`) into the new file `dest`, refusing more than
/// `max_bytes`. On failure `dest` may hold part of it; the caller removes it.
pub fn extract(cab: &Path, dest: &Path, name: &PdbName, max_bytes: u64) -> Result<(), String> {
    let file = std::fs::File::open(cab).map_err(|e| format!("cannot read it ({e})"))?;
    let bad = |e: std::io::Error| format!("not a readable cabinet ({e})");
    let mut cabinet = cab::Cabinet::new(file).map_err(bad)?;
    let entry = {
        let files: Vec<(String, u32)> = cabinet
            .folder_entries()
            .flat_map(|f| f.file_entries())
            .map(|f| (f.name().to_string(), f.uncompressed_size()))
            .collect();
        files
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_str()))
            .or(files.first())
            .cloned()
    };
    let Some((inner, size)) = entry else {
        return Err("the cabinet is empty".into());
    };
    if u64::from(size) > max_bytes {
        return Err(format!(
            "its PDB is {size} bytes, over the {max_bytes}-byte limit"
        ));
    }
    let mut out = create_new(dest)?;
    let reader = cabinet.read_file(&inner).map_err(bad)?;
    let copied = std::io::copy(&mut reader.take(max_bytes + 1), &mut out).map_err(bad)?;
    if copied > max_bytes {
        return Err(format!("its PDB is over the {max_bytes}-byte limit"));
    }
    Ok(())
}

/// Read a small file (a `file.ptr`).
pub fn read_small(path: &Path) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_POINTER + 1).read_to_end(&mut out))
        .map_err(|e| format!("cannot read {} ({e})", path.display()))?;
    if out.len() as u64 > MAX_POINTER {
        return Err(format!(
            "{}: longer than {MAX_POINTER} bytes",
            path.display()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers() {
        assert_eq!(
            parse_pointer(b"PATH:\\\\server\\share\\a.pdb\r\n").unwrap(),
            Pointer::Path(r"\\server\share\a.pdb".into())
        );
        assert_eq!(
            parse_pointer(b"\xef\xbb\xbfMSG: withheld").unwrap(),
            Pointer::Message("withheld".into())
        );
        assert!(parse_pointer(b"garbage").is_err());
        assert!(parse_pointer(b"PATH:").is_err());
        assert!(parse_pointer(b"PATH:a\x07b").is_err());
    }
}
