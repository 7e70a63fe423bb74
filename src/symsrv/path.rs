//! The symbol path syntax of `_NT_SYMBOL_PATH`, WinDbg's `.sympath` and `--symbols`:
//! `;`-separated elements, each a plain folder, `cache*DIR`, `srv*[DIR*]…URL` or
//! `symsrv*symsrv.dll*[DIR*]…URL`.

use std::path::{Path, PathBuf};

/// One element of a symbol path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Element {
    /// A plain folder: `DIR/name.pdb`, and the store layout `DIR/name.pdb/KEY/name.pdb`.
    Folder(PathBuf),
    /// `cache*DIR`: searched in store layout, and what any later element finds is copied into it.
    Cache(PathBuf),
    /// `srv*…`: stores tried left to right; what a store gives is copied into the local stores on
    /// its left (the downstream stores), so the leftmost one is the cache.
    Server(Vec<Store>),
}

/// One store of a `srv*` element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Store {
    /// A folder (or share) in symbol-store layout.
    Local(PathBuf),
    /// An HTTP or HTTPS symbol server.
    Http(String),
}

/// Parse `text`; empty pieces (`srv*URL`, `srv**URL`, `cache*`) stand for `default_store`.
/// Returns the elements and a sentence for each piece that is not understood.
pub fn parse(text: &str, default_store: &Path) -> (Vec<Element>, Vec<String>) {
    let mut elements = Vec::new();
    let mut notes = Vec::new();
    for part in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let pieces: Vec<&str> = part.split('*').map(str::trim).collect();
        let kind = pieces[0].to_ascii_lowercase();
        if pieces.len() == 1 {
            if is_url(part) {
                elements.push(Element::Server(vec![
                    Store::Local(default_store.to_path_buf()),
                    Store::Http(part.to_string()),
                ]));
            } else {
                elements.push(Element::Folder(PathBuf::from(part)));
            }
            continue;
        }
        let stores = match kind.as_str() {
            "cache" => {
                let dir = pieces[1..].iter().find(|p| !p.is_empty());
                elements.push(Element::Cache(
                    dir.map_or_else(|| default_store.to_path_buf(), PathBuf::from),
                ));
                continue;
            }
            "srv" => &pieces[1..],
            "symsrv" if pieces.len() > 2 => &pieces[2..],
            _ => {
                notes.push(format!(
                    "symbol path element '{part}' is not a folder, cache*, srv* or symsrv*; ignored"
                ));
                continue;
            }
        };
        let mut list: Vec<Store> = stores
            .iter()
            .map(|p| {
                if p.is_empty() {
                    Store::Local(default_store.to_path_buf())
                } else if is_url(p) {
                    Store::Http(p.trim_end_matches('/').to_string())
                } else {
                    Store::Local(PathBuf::from(p))
                }
            })
            .collect();
        // `srv*URL`: downloads go to the default downstream store, as in WinDbg.
        if matches!(list.first(), Some(Store::Http(_))) {
            list.insert(0, Store::Local(default_store.to_path_buf()));
        }
        elements.push(Element::Server(list));
    }
    (elements, notes)
}

/// Whether a piece names an HTTP(S) server.
fn is_url(p: &str) -> bool {
    let l = p.to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://")
}

/// Where `srv*URL` stores what it downloads: WinDbg's `%ProgramData%\dbg\sym` on Windows,
/// `$XDG_CACHE_HOME/heapdiag/sym` (or `~/.cache/heapdiag/sym`) elsewhere.
pub fn default_store() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if cfg!(windows) {
        if let Some(p) = var("ProgramData") {
            return p.join("dbg").join("sym");
        }
    }
    if let Some(p) = var("XDG_CACHE_HOME") {
        return p.join("heapdiag").join("sym");
    }
    if let Some(p) = var("HOME") {
        return p.join(".cache").join("heapdiag").join("sym");
    }
    std::env::temp_dir().join("heapdiag-sym")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn every_form() {
        let (e, notes) = parse(
            " /plain ; cache*/c1;SRV*/cache*https://msdl.microsoft.com/download/symbols/;\
             srv*/near*/share*http://a.example*https://b.example;\
             symsrv*symsrv.dll*/s*https://c.example;srv*https://d.example;cache*;\
             srv**http://e.example;weird*x;;https://f.example",
            Path::new("/default"),
        );
        use Element::*;
        use Store::*;
        assert_eq!(
            e,
            vec![
                Folder(p("/plain")),
                Cache(p("/c1")),
                Server(vec![
                    Local(p("/cache")),
                    Http("https://msdl.microsoft.com/download/symbols".into())
                ]),
                Server(vec![
                    Local(p("/near")),
                    Local(p("/share")),
                    Http("http://a.example".into()),
                    Http("https://b.example".into())
                ]),
                Server(vec![Local(p("/s")), Http("https://c.example".into())]),
                Server(vec![Local(p("/default")), Http("https://d.example".into())]),
                Cache(p("/default")),
                Server(vec![Local(p("/default")), Http("http://e.example".into())]),
                Server(vec![Local(p("/default")), Http("https://f.example".into())]),
            ]
        );
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("'weird*x'"), "{notes:?}");
    }
}
