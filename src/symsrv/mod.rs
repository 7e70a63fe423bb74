//! Finding a module's PDB the way WinDbg does: the symbol path (`--symbols` and
//! `_NT_SYMBOL_PATH`: folders, `cache*DIR`, `srv*DIR*URL` chains, `symsrv*symsrv.dll*…`), local
//! folders flat or in symbol-store layout, and HTTP(S) symbol servers whose files are downloaded
//! into the cache (`name.pdb/GUIDAGE/name.pdb`), compressed `.pd_` and `file.ptr` included.
//!
//! A PDB is used only when its GUID and age are the module's. The name comes from the dump and is
//! untrusted: only its plain file name is ever joined to a folder or put into a URL
//! ([`name::PdbName`]), downloads go to a temporary file in the cache and are renamed into place
//! only after the GUID/age check passes, and redirects never change the scheme. Each PDB is looked
//! up once per run (concurrent askers wait for the first), so a slow server costs one timeout.

pub mod http;
pub mod name;
pub mod path;
pub mod store;

use crate::pdbfile::check_file;
use http::{FetchOptions, Http};
use name::{store_key, PdbName};
use path::{Element, Store};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use store::{Candidate, Pointer};

/// How the symbol path is used.
#[derive(Clone, Debug, Default)]
pub struct SymbolOptions {
    /// Never touch the network: symbol servers are skipped, local stores still searched.
    pub offline: bool,
    /// Timeouts, size cap, progress line.
    pub fetch: FetchOptions,
}

/// Where a PDB was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// In a folder or local store of the symbol path.
    Local,
    /// Downloaded from this server during this run.
    Server(String),
}

/// Why a PDB is not where it was looked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissKind {
    /// Not in a folder or local store.
    NotFound,
    /// The server does not have it (404 or 410, for the PDB, its `.pd_` and its `file.ptr`).
    NotOnServer,
    /// A file that is not the module's PDB (another GUID or age).
    Mismatch,
    /// A file that cannot be read as a PDB or a cabinet, or a `file.ptr` that cannot be used.
    Unreadable,
    /// The download failed: timeout, connection, HTTP error, size cap, a refused redirect.
    DownloadFailed,
    /// A server that was not asked because of `--offline`.
    Offline,
    /// The PDB name from the dump is not a plain file name.
    NameRefused,
    /// The dump has no CodeView record (PDB name, GUID, age) for the module.
    NoRecord,
}

impl MissKind {
    /// The kind's name in JSON.
    pub fn name(self) -> &'static str {
        match self {
            MissKind::NotFound => "not_found",
            MissKind::NotOnServer => "not_on_server",
            MissKind::Mismatch => "mismatch",
            MissKind::Unreadable => "unreadable",
            MissKind::DownloadFailed => "download_failed",
            MissKind::Offline => "offline",
            MissKind::NameRefused => "name_refused",
            MissKind::NoRecord => "no_record",
        }
    }
}

/// One place a PDB was not found, in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Miss {
    /// What kind of miss.
    pub kind: MissKind,
    /// The sentence, naming the place.
    pub text: String,
}

/// The outcome of looking a PDB up on the symbol path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lookup {
    /// The module's PDB and where it came from.
    pub found: Option<(PathBuf, Source)>,
    /// Files found that are not the module's PDB.
    pub rejected: Vec<PathBuf>,
    /// Every place it was not found, in the order searched.
    pub misses: Vec<Miss>,
}

impl Lookup {
    /// A lookup that did not happen, and why.
    pub fn not_looked_up(kind: MissKind, text: String) -> Lookup {
        Lookup {
            misses: vec![Miss { kind, text }],
            ..Lookup::default()
        }
    }

    fn miss(&mut self, kind: MissKind, text: String) {
        self.misses.push(Miss { kind, text });
    }
}

/// Why a folder of the symbol path cannot be searched: it does not exist, or it is a file (a PDB
/// given where its folder is expected).
fn unusable_folder(dir: &Path) -> Option<String> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => None,
        Ok(_) => Some(format!(
            "'{}' is a file, not a folder: give the folder that holds the PDB",
            dir.display()
        )),
        Err(_) => Some(format!("folder '{}' does not exist", dir.display())),
    }
}

/// A PDB asked for: (name, store key).
type Key = (String, String);

/// Where PDBs are looked for, and what was found during this run.
#[derive(Clone, Default)]
pub struct SymbolPath {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The symbol path as given.
    texts: Vec<String>,
    elements: Vec<Element>,
    /// Sentences about elements not understood.
    notes: Vec<String>,
    offline: bool,
    fetch: FetchOptions,
    http: OnceLock<Http>,
    memo: Mutex<HashMap<Key, Arc<OnceLock<Lookup>>>>,
}

impl std::fmt::Debug for SymbolPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SymbolPath")
            .field("elements", &self.inner.elements)
            .field("offline", &self.inner.offline)
            .finish()
    }
}

impl SymbolPath {
    /// `--symbols` values (each a folder or a whole symbol path), then `_NT_SYMBOL_PATH`; online,
    /// default timeouts, no progress line.
    pub fn new(folders: &[PathBuf], nt_symbol_path: Option<&str>) -> Self {
        let mut texts: Vec<String> = folders
            .iter()
            .map(|f| f.to_string_lossy().into_owned())
            .collect();
        texts.extend(nt_symbol_path.map(String::from));
        SymbolPath::with_options(&texts, SymbolOptions::default())
    }

    /// The symbol path made of `texts`, in order, with `options`.
    pub fn with_options(texts: &[String], options: SymbolOptions) -> Self {
        let labeled: Vec<(Option<&str>, &str)> = texts.iter().map(|t| (None, t.as_str())).collect();
        SymbolPath::build(&labeled, options)
    }

    /// The symbol path of the command line: the `--symbols` values, then `_NT_SYMBOL_PATH`. The
    /// notes name where each element that cannot be used comes from: a folder that does not
    /// exist or is a file, an element not understood.
    pub fn from_command_line(
        args: &[String],
        nt_symbol_path: Option<&str>,
        options: SymbolOptions,
    ) -> Self {
        let labeled: Vec<(Option<&str>, &str)> = args
            .iter()
            .map(|a| (Some("--symbols"), a.as_str()))
            .chain(nt_symbol_path.map(|e| (Some("_NT_SYMBOL_PATH"), e)))
            .collect();
        SymbolPath::build(&labeled, options)
    }

    /// The path of `texts`, each labeled with where it comes from (for the notes).
    fn build(texts: &[(Option<&str>, &str)], options: SymbolOptions) -> Self {
        let default = path::default_store();
        let mut elements = Vec::new();
        let mut notes = Vec::new();
        for &(label, t) in texts {
            let (e, n) = path::parse(t, &default);
            let from = label.map(|l| format!("{l}: ")).unwrap_or_default();
            notes.extend(n.into_iter().map(|n| format!("{from}{n}")));
            for el in e {
                if let Element::Folder(dir) = &el {
                    if let Some(why) = unusable_folder(dir) {
                        notes.push(format!("{from}{why}; it is not used"));
                        continue;
                    }
                }
                elements.push(el);
            }
        }
        SymbolPath {
            inner: Arc::new(Inner {
                texts: texts
                    .iter()
                    .map(|(_, t)| t.to_string())
                    .filter(|t| !t.trim().is_empty())
                    .collect(),
                elements,
                notes,
                offline: options.offline,
                fetch: options.fetch,
                http: OnceLock::new(),
                memo: Mutex::default(),
            }),
        }
    }

    /// Whether nothing is on the path.
    pub fn is_empty(&self) -> bool {
        self.inner.elements.is_empty()
    }

    /// The symbol path as given (`--symbols` values, then `_NT_SYMBOL_PATH`).
    pub fn texts(&self) -> &[String] {
        &self.inner.texts
    }

    /// Sentences about parts of the path that are not understood.
    pub fn notes(&self) -> &[String] {
        &self.inner.notes
    }

    /// Whether servers are skipped (`--offline`).
    pub fn offline(&self) -> bool {
        self.inner.offline
    }

    /// Whether any element is a symbol server.
    pub fn has_servers(&self) -> bool {
        self.inner.elements.iter().any(|e| match e {
            Element::Server(s) => s.iter().any(|s| matches!(s, Store::Http(_))),
            _ => false,
        })
    }

    /// PDB files for a module whose CodeView record names `name` with `guid` and `age`: files
    /// found that are not its PDB (so that the caller can say why they were refused), then its
    /// PDB, fetched from a server if needed.
    pub fn candidates(&self, name: &str, guid: &str, age: u32) -> Vec<PathBuf> {
        let l = self.find(name, guid, age);
        l.rejected
            .into_iter()
            .chain(l.found.map(|(p, _)| p))
            .collect()
    }

    /// Look up the PDB a module's CodeView record names (`raw_name` as stored in the dump, `guid`,
    /// `age`); once per PDB and run.
    pub fn find(&self, raw_name: &str, guid: &str, age: u32) -> Lookup {
        let name = match PdbName::parse(raw_name) {
            Ok(n) => n,
            Err(why) => return refused(why),
        };
        let key = match store_key(guid, age) {
            Ok(k) => k,
            Err(why) => return refused(why),
        };
        if self.is_empty() {
            return Lookup::default();
        }
        let cell = {
            let mut memo = self.inner.memo.lock().unwrap_or_else(|e| e.into_inner());
            memo.entry((name.as_str().to_ascii_lowercase(), key.clone()))
                .or_default()
                .clone()
        };
        cell.get_or_init(|| self.lookup(&name, &key, guid, age))
            .clone()
    }

    /// Look up several PDBs at once, up to eight at a time (downloads are independent); the
    /// outcomes are kept for [`SymbolPath::find`].
    pub fn prefetch(&self, wanted: &[(String, String, u32)]) {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let workers = wanted.len().min(8);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((n, g, a)) = wanted.get(i) else {
                        break;
                    };
                    self.find(n, g, *a);
                });
            }
        });
    }

    fn http(&self) -> &Http {
        self.inner
            .http
            .get_or_init(|| Http::new(self.inner.fetch.clone()))
    }

    /// Walk the symbol path for one PDB.
    fn lookup(&self, name: &PdbName, key: &str, guid: &str, age: u32) -> Lookup {
        let mut l = Lookup::default();
        let id = Id {
            name,
            key,
            guid,
            age,
        };
        // `cache*` folders met so far: what later elements find is copied into them.
        let mut caches: Vec<PathBuf> = Vec::new();
        for element in &self.inner.elements {
            match element {
                Element::Folder(dir) => {
                    if let Some(p) = self.search_local(dir, &id, true, &caches, &mut l) {
                        self.copy_to(&p, &caches, &id, &mut l);
                        l.found = Some((p, Source::Local));
                        return l;
                    }
                }
                Element::Cache(dir) => {
                    if let Some(p) = self.search_local(dir, &id, false, &caches, &mut l) {
                        self.copy_to(&p, &caches, &id, &mut l);
                        l.found = Some((p, Source::Local));
                        return l;
                    }
                    caches.push(dir.clone());
                }
                Element::Server(stores) => {
                    // Local stores of this element met so far (the downstream ones), nearest first.
                    let mut downstream: Vec<PathBuf> = Vec::new();
                    for s in stores {
                        let targets: Vec<PathBuf> =
                            downstream.iter().chain(&caches).cloned().collect();
                        match s {
                            Store::Local(dir) => {
                                if let Some(p) =
                                    self.search_local(dir, &id, false, &targets, &mut l)
                                {
                                    let p = self.copy_to(&p, &targets, &id, &mut l).unwrap_or(p);
                                    l.found = Some((p, Source::Local));
                                    return l;
                                }
                                downstream.push(dir.clone());
                            }
                            Store::Http(url) if self.inner.offline => {
                                l.miss(MissKind::Offline, format!("{url}: not asked (--offline)"))
                            }
                            Store::Http(url) => {
                                let Some(first) = targets.first() else {
                                    continue;
                                };
                                if let Some(p) = self.download(url, first, &id, &mut l) {
                                    self.copy_to(&p, &targets[1..], &id, &mut l);
                                    l.found = Some((p, Source::Server(url.clone())));
                                    return l;
                                }
                            }
                        }
                    }
                }
            }
        }
        l
    }

    /// Copy a found PDB into `stores`; the first copy made (or already there).
    fn copy_to(&self, src: &Path, stores: &[PathBuf], id: &Id, l: &mut Lookup) -> Option<PathBuf> {
        let mut first = None;
        for s in stores {
            match store::copy_into(src, s, id.name, id.key) {
                Ok(p) => {
                    first.get_or_insert(p);
                }
                Err(why) => l.miss(MissKind::Unreadable, format!("not cached: {why}")),
            }
        }
        first
    }

    /// Search one local folder (flat too when `flat`); a compressed PDB is extracted into the
    /// first of `targets` (or the default store).
    fn search_local(
        &self,
        dir: &Path,
        id: &Id,
        flat: bool,
        targets: &[PathBuf],
        l: &mut Lookup,
    ) -> Option<PathBuf> {
        let found = store::candidates(dir, id.name, id.key, flat);
        if found.is_empty() {
            l.miss(MissKind::NotFound, format!("not in {}", dir.display()));
            return None;
        }
        let extract_to = targets.first().cloned().unwrap_or_else(path::default_store);
        for c in found {
            match c {
                Candidate::Pdb(p) => {
                    if self.accept_local(&p, id, l) {
                        return Some(p);
                    }
                }
                Candidate::Compressed(p) => {
                    let label = p.display().to_string();
                    if let Some(out) = self.unpack(&p, &label, &extract_to, id, l) {
                        return Some(out);
                    }
                }
                Candidate::Pointer(p) => match store::read_small(&p)
                    .and_then(|b| store::parse_pointer(&b))
                {
                    Ok(Pointer::Path(target)) => {
                        let t = PathBuf::from(&target);
                        let compressed = target.ends_with('_');
                        if !t.is_file() {
                            l.miss(
                                MissKind::NotFound,
                                format!("{}: points to {target}, which is not there", p.display()),
                            );
                        } else if compressed {
                            if let Some(out) = self.unpack(&t, &target, &extract_to, id, l) {
                                return Some(out);
                            }
                        } else if self.accept_local(&t, id, l) {
                            return Some(t);
                        }
                    }
                    Ok(Pointer::Message(m)) => {
                        l.miss(MissKind::NotFound, format!("{}: says \"{m}\"", p.display()))
                    }
                    Err(why) => l.miss(MissKind::Unreadable, format!("{}: {why}", p.display())),
                },
            }
        }
        None
    }

    /// Whether the local file `p` is the module's PDB (recording why not).
    fn accept_local(&self, p: &Path, id: &Id, l: &mut Lookup) -> bool {
        match check_file(p, id.guid, id.age) {
            Ok(()) => true,
            Err(why) => {
                let kind = if why.starts_with("its GUID/age") {
                    MissKind::Mismatch
                } else {
                    MissKind::Unreadable
                };
                l.rejected.push(p.to_path_buf());
                l.miss(kind, format!("{}: {why}", p.display()));
                false
            }
        }
    }

    /// Extract the cabinet `cab` (called `label` in notes) into `store`: checked, then renamed
    /// into place.
    fn unpack(
        &self,
        cab: &Path,
        label: &str,
        store: &Path,
        id: &Id,
        l: &mut Lookup,
    ) -> Option<PathBuf> {
        let tmp = store::temp_file(store, id.name);
        let result = store::extract(cab, &tmp, id.name, self.inner.fetch.max_bytes)
            .map_err(|why| (MissKind::Unreadable, format!("{label}: {why}")))
            .and_then(|()| {
                check_file(&tmp, id.guid, id.age)
                    .map_err(|why| (mismatch_kind(&why), format!("{label}: {why}")))
            })
            .and_then(|()| {
                store::install(&tmp, store, id.name, id.key)
                    .map_err(|why| (MissKind::Unreadable, why))
            });
        match result {
            Ok(p) => Some(p),
            Err((kind, why)) => {
                let _ = std::fs::remove_file(&tmp);
                l.miss(kind, why);
                None
            }
        }
    }

    /// Fetch the PDB from the server `url` into `store`: `name.pdb`, else `name.pd_`, else what
    /// `file.ptr` points to (another URL of the same scheme only).
    fn download(&self, url: &str, store: &Path, id: &Id, l: &mut Lookup) -> Option<PathBuf> {
        let seg = |n: &str| PdbName::url_segment(n);
        let base = format!("{url}/{}/{}", seg(id.name.as_str()), id.key);
        let plain = format!("{base}/{}", seg(id.name.as_str()));
        let packed = format!("{base}/{}", seg(&id.name.compressed()));
        match self.fetch_one(&plain, false, store, id, l) {
            Fetch::Got(p) => return Some(p),
            Fetch::Failed => return None,
            Fetch::Absent => {}
        }
        match self.fetch_one(&packed, true, store, id, l) {
            Fetch::Got(p) => return Some(p),
            Fetch::Failed => return None,
            Fetch::Absent => {}
        }
        let ptr = format!("{base}/file.ptr");
        match self.http().fetch_small(&ptr, store::MAX_POINTER) {
            Ok(None) => {
                l.miss(
                    MissKind::NotOnServer,
                    format!("{url}: not on the server (404)"),
                );
                None
            }
            Err(why) => {
                l.miss(MissKind::DownloadFailed, why);
                None
            }
            Ok(Some(bytes)) => match store::parse_pointer(&bytes) {
                Ok(Pointer::Path(target)) => {
                    let same_scheme = http::follow(&ptr, &target)
                        .ok()
                        .filter(|_| target.contains("://"));
                    match same_scheme {
                        Some(t) => match self.fetch_one(&t, t.ends_with('_'), store, id, l) {
                            Fetch::Got(p) => Some(p),
                            Fetch::Failed => None,
                            Fetch::Absent => {
                                l.miss(
                                    MissKind::NotOnServer,
                                    format!("{ptr}: points to {t}, which is not there (404)"),
                                );
                                None
                            }
                        },
                        None => {
                            l.miss(
                                MissKind::Unreadable,
                                format!(
                                    "{ptr}: points to {}, not a URL of the same scheme; not followed",
                                    name::shown(&target)
                                ),
                            );
                            None
                        }
                    }
                }
                Ok(Pointer::Message(m)) => {
                    l.miss(MissKind::NotOnServer, format!("{ptr}: says \"{m}\""));
                    None
                }
                Err(why) => {
                    l.miss(MissKind::Unreadable, format!("{ptr}: {why}"));
                    None
                }
            },
        }
    }

    /// Download one file (a PDB, or a cabinet when `compressed`) into a temporary file in
    /// `store`, check it, and rename it into place.
    fn fetch_one(
        &self,
        url: &str,
        compressed: bool,
        store: &Path,
        id: &Id,
        l: &mut Lookup,
    ) -> Fetch {
        let tmp = store::temp_file(store, id.name);
        let got = self.http().fetch_to_file(url, &tmp, id.name.as_str());
        let outcome = match got {
            Ok(None) => {
                let _ = std::fs::remove_file(&tmp);
                return Fetch::Absent;
            }
            Err(why) => Err((MissKind::DownloadFailed, why)),
            Ok(Some(_)) if compressed => self
                .unpack(&tmp, url, store, id, l)
                .ok_or((MissKind::Unreadable, String::new())),
            Ok(Some(_)) => check_file(&tmp, id.guid, id.age)
                .map_err(|why| (mismatch_kind(&why), format!("{url}: {why}")))
                .and_then(|()| {
                    store::install(&tmp, store, id.name, id.key)
                        .map_err(|why| (MissKind::DownloadFailed, why))
                }),
        };
        let _ = std::fs::remove_file(&tmp);
        match outcome {
            Ok(p) => Fetch::Got(p),
            Err((kind, why)) => {
                if !why.is_empty() {
                    l.miss(kind, why);
                }
                Fetch::Failed
            }
        }
    }
}

/// What one download gave.
enum Fetch {
    Got(PathBuf),
    /// 404/410.
    Absent,
    /// Failed, with the reason recorded.
    Failed,
}

/// The PDB looked for.
struct Id<'a> {
    name: &'a PdbName,
    key: &'a str,
    guid: &'a str,
    age: u32,
}

/// A GUID/age mismatch, or a file that is not a readable PDB.
fn mismatch_kind(why: &str) -> MissKind {
    if why.contains("its GUID/age") {
        MissKind::Mismatch
    } else {
        MissKind::Unreadable
    }
}

/// The outcome for a name or GUID that is refused.
fn refused(why: String) -> Lookup {
    Lookup::not_looked_up(MissKind::NameRefused, format!("{why}; not looked up"))
}
