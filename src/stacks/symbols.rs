//! Frames to names: `module+offset` from the module list (loaded and unloaded modules) always, and
//! with the module's PDB `module!function+offset`, the source line, and the functions inlined at
//! the call. Every view prints frames through [`Symbolizer::display`] and [`Symbolizer::lines`],
//! so the text is the same everywhere.
//!
//! PDBs come from the symbol path ([`crate::symsrv`]): only for modules that appear in the frames
//! asked about, looked up (and downloaded) in parallel, used only when their GUID and age are the
//! module's. Names are undecorated: C++ names of public symbols with `msvc-demangler`, the
//! `_name`, `_name@N` and `@name@N` forms of x86 C publics by hand, and parameter lists dropped.

use crate::dump::streams::Module;
use crate::pdbfile::{open_matching, SymbolPath};
use crate::symsrv::name::printable;
use crate::symsrv::{Lookup, MissKind};
use pdb_addr2line::pdb::{self, FallibleIterator};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// A module an address can fall in.
#[derive(Clone, Debug)]
pub struct ModuleEntry {
    /// Base address.
    pub base: u64,
    /// One past the end.
    pub end: u64,
    /// File name, e.g. `crash.exe` (control characters escaped).
    pub name: String,
    /// WinDbg's module name: the file name without its extension, e.g. `crash`.
    pub short: String,
    /// Whether it was unloaded before the dump was written.
    pub unloaded: bool,
    /// CodeView: PDB file name, GUID, age.
    pub pdb: Option<(String, String, u32)>,
}

/// The modules of a dump, sorted by address; loaded modules win over unloaded ones.
#[derive(Clone, Debug, Default)]
pub struct ModuleMap {
    modules: Vec<ModuleEntry>,
}

impl ModuleMap {
    /// Build from the module lists.
    pub fn new(loaded: &[Module], unloaded: &[Module]) -> Self {
        let entry = |m: &Module, unloaded: bool| {
            // Names from the dump: control characters escaped, whatever view shows them.
            let name = printable(m.file_name()).into_owned();
            ModuleEntry {
                base: m.base,
                end: m.end(),
                short: name
                    .rsplit_once('.')
                    .map_or(name.as_str(), |(s, _)| s)
                    .to_string(),
                name,
                unloaded,
                pdb: match (&m.pdb_name, &m.pdb_guid, m.pdb_age) {
                    (Some(n), Some(g), Some(a)) => Some((n.clone(), g.clone(), a)),
                    _ => None,
                },
            }
        };
        let mut modules: Vec<ModuleEntry> = loaded
            .iter()
            .map(|m| entry(m, false))
            .chain(unloaded.iter().map(|m| entry(m, true)))
            .collect();
        // Stable: loaded modules stay ahead of unloaded ones at the same base.
        modules.sort_by_key(|m| m.base);
        ModuleMap { modules }
    }

    /// The module holding `addr` and the offset into it.
    pub fn find(&self, addr: u64) -> Option<(usize, u64)> {
        let i = self.modules.partition_point(|m| m.base <= addr);
        // Look back over a few neighbours: unloaded modules may overlap loaded ones.
        let mut best = None;
        for j in (i.saturating_sub(4)..i).rev() {
            let m = &self.modules[j];
            if addr < m.end && (best.is_none() || !m.unloaded) {
                best = Some((j, addr - m.base));
                if !m.unloaded {
                    break;
                }
            }
        }
        best
    }

    /// The module at index `i`.
    pub fn get(&self, i: usize) -> &ModuleEntry {
        &self.modules[i]
    }

    /// How many modules there are.
    pub fn len(&self) -> usize {
        self.modules.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }
}

/// A source position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLine {
    /// The file as the PDB names it.
    pub file: String,
    /// The line.
    pub line: u32,
}

/// A function inlined at a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InlineFrame {
    /// Its name, undecorated, without parameters.
    pub function: String,
    /// Where in it the call is, when the PDB has line information.
    pub source: Option<SourceLine>,
}

/// What a PDB says about one return address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The function holding it, undecorated, without parameters.
    pub function: String,
    /// The return address's offset into the function.
    pub offset: u64,
    /// The line of the call, when the PDB has line information.
    pub source: Option<SourceLine>,
    /// Functions inlined at the call, innermost first.
    pub inlined: Vec<InlineFrame>,
}

/// A frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The return address.
    pub address: u64,
    /// Index of its module in the [`ModuleMap`], if any.
    pub module: Option<usize>,
    /// Offset into the module (or the address itself without a module).
    pub offset: u64,
    /// The function and the offset into it, when a PDB resolved it.
    pub function: Option<(&'a str, u64)>,
    /// The line of the call, when the PDB has line information.
    pub source: Option<&'a SourceLine>,
    /// Functions inlined at the call, innermost first.
    pub inlined: &'a [InlineFrame],
}

/// How the symbols of one module were looked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleSymbols {
    /// Index of the module in the [`ModuleMap`].
    pub module: usize,
    /// The outcome: the PDB and where it came from, or every place it was not.
    pub lookup: Lookup,
}

impl ModuleSymbols {
    /// Whether its PDB was found.
    pub fn found(&self) -> bool {
        self.lookup.found.is_some()
    }

    /// Why not, in one line (`""` when found).
    pub fn why_missing(&self) -> String {
        self.lookup
            .misses
            .iter()
            .map(|m| m.text.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Look up the PDBs of the modules `which` (indices into `modules`) on `path`: all at once, in
/// parallel, each once.
pub fn look_up(modules: &ModuleMap, which: &[usize], path: &SymbolPath) -> Vec<ModuleSymbols> {
    let wanted: Vec<(String, String, u32)> = which
        .iter()
        .filter_map(|&m| modules.get(m).pdb.clone())
        .collect();
    path.prefetch(&wanted);
    which
        .iter()
        .map(|&m| {
            let e = modules.get(m);
            let lookup = match &e.pdb {
                Some(_) if path.is_empty() => Lookup::not_looked_up(
                    MissKind::NotFound,
                    "no symbol path (--symbols or _NT_SYMBOL_PATH)".into(),
                ),
                Some((name, guid, age)) => path.find(name, guid, *age),
                None if e.unloaded => Lookup::not_looked_up(
                    MissKind::NoRecord,
                    "unloaded: the dump keeps no PDB name for it".into(),
                ),
                None => Lookup::not_looked_up(
                    MissKind::NoRecord,
                    "the dump has no CodeView record (PDB name, GUID, age) for it".into(),
                ),
            };
            ModuleSymbols { module: m, lookup }
        })
        .collect()
}

/// The note of a run without a symbol path.
const NO_PATH: &str = "no symbol path, so frames read module+offset: give --symbols PATH or set \
                       _NT_SYMBOL_PATH (e.g. srv*CACHE*https://msdl.microsoft.com/download/symbols)";

/// Resolves frames; built once for all addresses of interest.
pub struct Symbolizer {
    modules: ModuleMap,
    resolved: HashMap<u64, Resolved>,
    /// Sentences about parts of the symbol path.
    path_notes: Vec<String>,
    /// Whether frames were asked for without a symbol path, and whether one was given (none of
    /// whose elements can be used).
    no_path: Option<bool>,
    /// Notes for the reports: at most one naming the modules whose symbols are missing and why,
    /// and one per part of the symbol path that is not understood.
    pub warnings: Vec<String>,
    /// PDBs loaded: (module, path).
    pub loaded: Vec<(String, PathBuf)>,
    /// The modules of the frames, with how their symbols were looked for.
    pub lookups: Vec<ModuleSymbols>,
}

impl Symbolizer {
    /// Resolve `addresses` with the PDBs found on `path` for the modules they fall in.
    pub fn new(
        modules: ModuleMap,
        path: &SymbolPath,
        addresses: impl IntoIterator<Item = u64>,
    ) -> Symbolizer {
        let mut by_module: HashMap<usize, Vec<u64>> = HashMap::new();
        for a in addresses {
            if let Some((m, _)) = modules.find(a) {
                by_module.entry(m).or_default().push(a);
            }
        }
        let mut which: Vec<usize> = by_module.keys().copied().collect();
        which.sort_unstable();
        let mut lookups = if path.is_empty() {
            Vec::new()
        } else {
            look_up(&modules, &which, path)
        };
        let results: Vec<Result<Vec<(u64, Resolved)>, String>> = lookups
            .par_iter()
            .map(|l| {
                let Some((file, _)) = &l.lookup.found else {
                    return Ok(Vec::new());
                };
                let e = modules.get(l.module);
                let (_, guid, age) = e.pdb.as_ref().expect("found PDBs have a record");
                let data = open_matching(file, guid, *age)
                    .map_err(|why| format!("{}: {why}", file.display()))?;
                let mut addrs = by_module.get(&l.module).cloned().unwrap_or_default();
                addrs.sort_unstable();
                addrs.dedup();
                resolve(&data, e.base, &addrs).map_err(|why| format!("{}: {why}", file.display()))
            })
            .collect();
        let mut resolved = HashMap::new();
        let mut loaded = Vec::new();
        for (l, r) in lookups.iter_mut().zip(results) {
            match r {
                Ok(list) => {
                    if let Some((file, _)) = &l.lookup.found {
                        loaded.push((modules.get(l.module).name.clone(), file.clone()));
                    }
                    resolved.extend(list);
                }
                Err(why) => {
                    // Found and checked, but unusable: report it like any other miss.
                    l.lookup.found = None;
                    l.lookup.misses.push(crate::symsrv::Miss {
                        kind: MissKind::Unreadable,
                        text: why,
                    });
                }
            }
        }
        let mut s = Symbolizer {
            modules,
            resolved,
            path_notes: path.notes().to_vec(),
            no_path: (path.is_empty() && !which.is_empty()).then(|| !path.texts().is_empty()),
            warnings: Vec::new(),
            loaded,
            lookups,
        };
        s.warnings = Symbolizer::notes_of(&[&s]);
        s
    }

    /// The notes of one or more symbolizers (the two dumps of a diff) as one set: the notes
    /// about the symbol path, the one saying there is none, and one note naming the modules
    /// whose symbols are missing in any of them, each module and reason once.
    pub fn notes_of(syms: &[&Symbolizer]) -> Vec<String> {
        let mut notes: Vec<String> = Vec::new();
        for n in syms.iter().flat_map(|s| &s.path_notes) {
            if !notes.contains(n) {
                notes.push(n.clone());
            }
        }
        match syms.iter().filter_map(|s| s.no_path).max() {
            Some(false) => notes.push(NO_PATH.into()),
            Some(true) => notes.push(
                "nothing on the symbol path can be used (see above), so frames read module+offset"
                    .into(),
            ),
            None => {}
        }
        let mut missing: Vec<(String, String)> = Vec::new();
        for s in syms {
            for l in s.lookups.iter().filter(|l| !l.found()) {
                let m = (s.modules.get(l.module).name.clone(), l.why_missing());
                if !missing.contains(&m) {
                    missing.push(m);
                }
            }
        }
        notes.extend(missing_note(&missing));
        notes
    }

    /// The frame at `address`.
    pub fn frame(&self, address: u64) -> Frame<'_> {
        let (module, offset) = match self.modules.find(address) {
            Some((m, off)) => (Some(m), off),
            None => (None, address),
        };
        let r = self.resolved.get(&address);
        Frame {
            address,
            module,
            offset,
            function: r.map(|r| (r.function.as_str(), r.offset)),
            source: r.and_then(|r| r.source.as_ref()),
            inlined: r.map_or(&[], |r| r.inlined.as_slice()),
        }
    }

    /// The module map.
    pub fn modules(&self) -> &ModuleMap {
        &self.modules
    }

    /// The frame in one line: `crash!main+0x55 [c:\src\main.cpp @ 34]` (the source line when
    /// the PDB has it, as WinDbg shows it), `crash!malloc+0x4`, `crash+0x2965`, or `0x77001234`
    /// outside every module. Inlined functions are not in it; see [`Symbolizer::lines`].
    pub fn display(&self, address: u64) -> String {
        let f = self.frame(address);
        let mut s = match (f.module, f.function) {
            (Some(m), Some((name, off))) => {
                format!("{}!{}+{:#x}", self.modules.get(m).short, name, off)
            }
            (Some(m), None) => format!("{}+{:#x}", self.modules.get(m).short, f.offset),
            (None, _) => format!("{address:#x}"),
        };
        if let Some(src) = f.source {
            s.push_str(&source_text(src));
        }
        printable(&s).into_owned()
    }

    /// The frame as WinDbg's `k` lists it: a line for each function inlined at the call,
    /// innermost first (`crash!std::vector<…>::size [c:\…\vector @ 1775] (inline)`), then
    /// [`Symbolizer::display`]'s line.
    pub fn lines(&self, address: u64) -> Vec<String> {
        let f = self.frame(address);
        let short = f.module.map_or("", |m| self.modules.get(m).short.as_str());
        f.inlined
            .iter()
            .map(|i| inline_text(short, i))
            .chain(std::iter::once(self.display(address)))
            .collect()
    }
}

/// The line of an inlined function: `crash!f [file @ line] (inline)`.
pub fn inline_text(module: &str, i: &InlineFrame) -> String {
    let src = i.source.as_ref().map(source_text).unwrap_or_default();
    printable(&format!("{module}!{}{src} (inline)", i.function)).into_owned()
}

/// ` [file @ line]`, WinDbg's form.
fn source_text(s: &SourceLine) -> String {
    format!(" [{} @ {}]", s.file, s.line)
}

/// The note naming the modules whose symbols are missing ((module, why)), grouped by why, if
/// any is.
fn missing_note(missing: &[(String, String)]) -> Option<String> {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for (name, why) in missing {
        match groups.iter_mut().find(|(w, _)| *w == why) {
            Some((_, names)) => names.push(name),
            None => groups.push((why, vec![name])),
        }
    }
    if groups.is_empty() {
        return None;
    }
    let count: usize = groups.iter().map(|(_, n)| n.len()).sum();
    // At most ten names per reason: `heapdiag symbols` lists them all.
    let parts: Vec<String> = groups
        .iter()
        .map(|(why, names)| {
            let shown = names.iter().take(10).copied().collect::<Vec<_>>();
            let more = match names.len().saturating_sub(10) {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            format!("{}{more} ({why})", shown.join(", "))
        })
        .collect();
    Some(format!(
        "symbols missing for {count} module{}, whose frames read module+offset: {} (heapdiag symbols DUMP lists every module)",
        if count == 1 { "" } else { "s" },
        parts.join("; ")
    ))
}

/// Resolve `addrs` (absolute return addresses) of a module at `base` with the PDB bytes `data`.
fn resolve(data: &[u8], base: u64, addrs: &[u64]) -> Result<Vec<(u64, Resolved)>, String> {
    let bad = |e: pdb::Error| format!("not a readable PDB ({e})");
    let mut p = pdb::PDB::open(std::io::Cursor::new(data)).map_err(bad)?;
    let x86 = p
        .debug_information()
        .ok()
        .and_then(|d| d.machine_type().ok())
        == Some(pdb::MachineType::X86);
    // x86 C publics are decorated (`_name`, `_name@N`, `@name@N`): know which names are publics.
    let publics = if x86 {
        public_functions(&mut p)
    } else {
        HashSet::new()
    };
    let ctx_data = pdb_addr2line::ContextPdbData::try_from_pdb(p).map_err(|e| e.to_string())?;
    let ctx = ctx_data.make_context().map_err(|e| e.to_string())?;
    Ok(addrs
        .iter()
        .filter_map(|&a| {
            let rva = u32::try_from(a.checked_sub(base)?).ok()?;
            // A return address follows its call: look up the call (as debuggers do for lines).
            let probe = rva.saturating_sub(1);
            let f = ctx.find_function(probe).ok()??;
            let raw = f.name.as_deref()?;
            let function = undecorate(raw, publics.contains(&(f.start_rva, raw.to_string())));
            let frames = ctx.find_frames(probe).ok().flatten();
            let frames = frames.as_ref().map_or(&[][..], |ff| ff.frames.as_slice());
            let source_of = |fr: &pdb_addr2line::Frame<'_>| {
                Some(SourceLine {
                    file: fr.file.as_deref()?.to_string(),
                    line: fr.line?,
                })
            };
            let (outer, inner) = frames
                .split_last()
                .map_or((None, &[][..]), |(o, i)| (Some(o), i));
            Some((
                a,
                Resolved {
                    function,
                    offset: u64::from(rva - f.start_rva),
                    source: outer.and_then(source_of),
                    inlined: inner
                        .iter()
                        .map(|fr| InlineFrame {
                            function: fr
                                .function
                                .as_deref()
                                .map_or_else(|| "?".to_string(), |n| undecorate(n, false)),
                            source: source_of(fr),
                        })
                        .collect(),
                },
            ))
        })
        .collect())
}

/// The functions of the public symbol table: (RVA, name).
fn public_functions<'s, S: pdb::Source<'s> + Send + 's>(
    p: &mut pdb::PDB<'s, S>,
) -> HashSet<(u32, String)> {
    let mut out = HashSet::new();
    let (Ok(map), Ok(globals)) = (p.address_map(), p.global_symbols()) else {
        return out;
    };
    let mut it = globals.iter();
    while let Ok(Some(sym)) = it.next() {
        if let Ok(pdb::SymbolData::Public(public)) = sym.parse() {
            if let (true, Some(rva)) = (public.function, public.offset.to_rva(&map)) {
                out.insert((rva.0, public.name.to_string().into_owned()));
            }
        }
    }
    out
}

/// The vtables a PDB's public symbols name: (RVA, decorated name `??_7Class@@6B@`).
pub fn vtable_publics(data: &[u8]) -> Result<Vec<(u32, String)>, String> {
    let bad = |e: pdb::Error| format!("not a readable PDB ({e})");
    let mut p = pdb::PDB::open(std::io::Cursor::new(data)).map_err(bad)?;
    let map = p.address_map().map_err(bad)?;
    let globals = p.global_symbols().map_err(bad)?;
    let mut out = Vec::new();
    let mut it = globals.iter();
    while let Some(sym) = it.next().map_err(bad)? {
        if let Ok(pdb::SymbolData::Public(public)) = sym.parse() {
            let name = public.name.to_string();
            if let (true, Some(rva)) = (name.starts_with("??_7"), public.offset.to_rva(&map)) {
                out.push((rva.0, name.into_owned()));
            }
        }
    }
    Ok(out)
}

/// The class a decorated vtable name belongs to: `??_7Widget@@6B@` → `Widget`,
/// `??_7?$Box@H@app@@6B@` → `app::Box<int>`, `??_7Derived@@6BBase1@@@` (the vtable of Derived's
/// Base1 part) → `Derived`; `None` when the name does not undecorate to a vtable.
pub fn vtable_class(decorated: &str) -> Option<String> {
    use msvc_demangler::DemangleFlags;
    let full = msvc_demangler::demangle(decorated, DemangleFlags::llvm()).ok()?;
    let class = full.strip_prefix("const ").unwrap_or(&full);
    let (class, _) = class.split_once("::`vftable'")?;
    (!class.is_empty()).then(|| printable(class).into_owned())
}

/// The class an RTTI type descriptor's name (`.?AVWidget@@`, `.?AU?$Box@H@app@@`) names.
pub fn rtti_class(name: &str) -> Option<String> {
    let rest = name
        .strip_prefix(".?AV")
        .or_else(|| name.strip_prefix(".?AU"))?;
    vtable_class(&format!("??_7{rest}6B@"))
}

/// A function name as the views show it: C++ decorated names (`?…`) undecorated to
/// `scope::name`, x86 C public decorations (`_name`, `_name@12`, `@name@8`) removed when
/// `x86_public`, and parameter lists dropped (`main(int, char**)` → `main`).
pub fn undecorate(raw: &str, x86_public: bool) -> String {
    use msvc_demangler::DemangleFlags;
    if raw.starts_with('?') {
        if let Ok(s) =
            msvc_demangler::demangle(raw, DemangleFlags::NAME_ONLY | DemangleFlags::NO_CLASS_TYPE)
        {
            return s;
        }
        return raw.to_string();
    }
    if x86_public {
        let stdcall = |s: &str| {
            s.rsplit_once('@')
                .filter(|(n, d)| {
                    !n.is_empty() && !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
                })
                .map(|(n, _)| n.to_string())
        };
        if let Some(rest) = raw.strip_prefix('@') {
            if let Some(n) = stdcall(rest) {
                return n;
            }
        } else if let Some(rest) = raw.strip_prefix('_') {
            return stdcall(rest).unwrap_or_else(|| rest.to_string());
        }
        return raw.to_string();
    }
    short_name(raw)
}

/// A function name without its parameter list and qualifiers: `main(int, char**)` → `main`,
/// `std::vector<int>::size() const` → `std::vector<int>::size`.
pub fn short_name(full: &str) -> String {
    let mut end = full.trim_end();
    loop {
        let before = end;
        for q in [" const", " volatile", " &&", " &"] {
            end = end.strip_suffix(q).unwrap_or(end).trim_end();
        }
        if end == before {
            break;
        }
    }
    if !end.ends_with(')') {
        return full.to_string();
    }
    let mut depth = 0i32;
    for (i, c) in end.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth -= 1;
                if depth == 0 {
                    return end[..i].to_string();
                }
            }
            _ => {}
        }
    }
    full.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_drop_parameters() {
        assert_eq!(short_name("main(int, char**)"), "main");
        assert_eq!(short_name("operator new(unsigned int)"), "operator new");
        assert_eq!(short_name("f(void (*)(int), int)"), "f");
        assert_eq!(short_name("malloc"), "malloc");
        assert_eq!(
            short_name("std::vector<int *,std::allocator<int *> >::size() const"),
            "std::vector<int *,std::allocator<int *> >::size"
        );
        assert_eq!(short_name("S::get() const &&"), "S::get");
    }

    #[test]
    fn vtable_and_rtti_names_give_their_class() {
        assert_eq!(vtable_class("??_7Widget@@6B@").as_deref(), Some("Widget"));
        assert_eq!(
            vtable_class("??_7Gadget@app@@6B@").as_deref(),
            Some("app::Gadget")
        );
        assert_eq!(
            vtable_class("??_7?$Box@H@app@@6B@").as_deref(),
            Some("app::Box<int>")
        );
        assert_eq!(
            vtable_class("??_7Derived@@6BBase1@@@").as_deref(),
            Some("Derived")
        );
        assert_eq!(vtable_class("?Alloc@Pool@@QAEPAXI@Z"), None);
        assert_eq!(vtable_class("??_7"), None);
        assert_eq!(rtti_class(".?AUWidget@@").as_deref(), Some("Widget"));
        assert_eq!(
            rtti_class(".?AV?$Box@H@app@@").as_deref(),
            Some("app::Box<int>")
        );
        assert_eq!(rtti_class(".?AW4Color@@"), None);
        assert_eq!(rtti_class("garbage"), None);
    }

    #[test]
    fn decorated_names_are_undecorated() {
        assert_eq!(undecorate("?Alloc@Pool@@QAEPAXI@Z", true), "Pool::Alloc");
        assert_eq!(undecorate("??2@YAPAXI@Z", false), "operator new");
        assert_eq!(
            undecorate(
                "??$emplace_back@PAVExceptionHandler@google_breakpad@@@?$vector@PAVExceptionHandler@google_breakpad@@V?$allocator@PAVExceptionHandler@google_breakpad@@@std@@@std@@QAEX$$QAPAVExceptionHandler@google_breakpad@@@Z",
                false
            ),
            "std::vector<google_breakpad::ExceptionHandler *,std::allocator<google_breakpad::ExceptionHandler *> >::emplace_back<google_breakpad::ExceptionHandler *>"
        );
        assert_eq!(undecorate("_RtlAllocateHeap@12", true), "RtlAllocateHeap");
        assert_eq!(undecorate("@FastAlloc@4", true), "FastAlloc");
        assert_eq!(undecorate("_malloc", true), "malloc");
        assert_eq!(undecorate("__callnewh", true), "_callnewh");
        // Not a public: the name is the function's own.
        assert_eq!(undecorate("_callnewh", false), "_callnewh");
        assert_eq!(undecorate("RtlAllocateHeap", true), "RtlAllocateHeap");
        // A malformed decorated name is kept as it is.
        assert_eq!(undecorate("?broken", false), "?broken");
    }

    #[test]
    fn the_missing_note_groups_modules_by_why() {
        let m = |i: u64| Module {
            path: format!(r"C:\m\m{i:02}.dll"),
            base: 0x1000_0000 * (i + 1),
            size: 0x1000,
            timestamp: 0,
            version: None,
            pdb_name: None,
            pdb_guid: None,
            pdb_age: None,
        };
        let mods: Vec<Module> = (0..13).map(m).collect();
        let map = ModuleMap::new(&mods, &[]);
        let missing: Vec<(String, String)> = (0..13)
            .map(|i| {
                let why = if i == 5 { "elsewhere" } else { "not in /s" };
                (map.get(i).name.clone(), why.to_string())
            })
            .collect();
        assert_eq!(
            missing_note(&missing).unwrap(),
            "symbols missing for 13 modules, whose frames read module+offset: m00.dll, m01.dll, \
             m02.dll, m03.dll, m04.dll, m06.dll, m07.dll, m08.dll, m09.dll, m10.dll and 2 more (not \
             in /s); m05.dll (elsewhere) (heapdiag symbols DUMP lists every module)"
        );
        assert_eq!(missing_note(&[]), None);
    }

    #[test]
    fn loaded_modules_win_over_unloaded_ones() {
        let m = |path: &str, base: u64| Module {
            path: path.into(),
            base,
            size: 0x1000,
            timestamp: 0,
            version: None,
            pdb_name: None,
            pdb_guid: None,
            pdb_age: None,
        };
        let map = ModuleMap::new(
            &[m("a.dll", 0x1000)],
            &[m("old.dll", 0x1000), m("b.dll", 0x3000)],
        );
        assert_eq!(map.get(map.find(0x1800).unwrap().0).name, "a.dll");
        assert_eq!(map.get(map.find(0x3800).unwrap().0).name, "b.dll");
        assert!(map.find(0x2800).is_none());
    }
}
