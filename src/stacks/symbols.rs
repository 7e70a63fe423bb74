//! Frames to names: `module+offset` from the module list (loaded and unloaded modules) always, and
//! `module!function+offset` from PDBs found on the symbol path.
//!
//! A PDB is used only when its GUID and age equal the module's CodeView record; a PDB that is found
//! but does not match is refused with a warning naming the module. PDBs are loaded lazily, once,
//! in parallel, and only for modules that appear in the frames asked about.

use crate::dump::streams::Module;
use crate::pdbfile::{open_matching, SymbolPath};
use pdb_addr2line::pdb;
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;

/// A module an address can fall in.
#[derive(Clone, Debug)]
pub struct ModuleEntry {
    /// Base address.
    pub base: u64,
    /// One past the end.
    pub end: u64,
    /// File name, e.g. `crash.exe`.
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
            let name = m.file_name().to_string();
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
}

/// A symbolized frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The return address.
    pub address: u64,
    /// Index of its module in the [`ModuleMap`], if any.
    pub module: Option<usize>,
    /// Offset into the module (or the address itself without a module).
    pub offset: u64,
    /// The function and the offset into it, when a PDB resolved it.
    pub function: Option<(String, u64)>,
}

/// Resolves frames; built once for all addresses of interest.
pub struct Symbolizer {
    modules: ModuleMap,
    functions: HashMap<u64, (String, u64)>,
    /// Warnings: PDBs refused or unreadable.
    pub warnings: Vec<String>,
    /// PDBs loaded: (module, path).
    pub loaded: Vec<(String, PathBuf)>,
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
        let mut warnings = Vec::new();
        let mut loaded = Vec::new();
        let mut jobs = Vec::new();
        if !path.is_empty() {
            for (m, mut addrs) in by_module {
                let e = modules.get(m);
                let Some((pdb_name, guid, age)) = &e.pdb else {
                    continue;
                };
                let file = pdb_name.rsplit(['\\', '/']).next().unwrap_or(pdb_name);
                addrs.sort_unstable();
                addrs.dedup();
                jobs.push((m, file.to_string(), guid.clone(), *age, addrs));
            }
        }
        jobs.sort_by_key(|j| j.0);
        let results: Vec<_> = jobs
            .par_iter()
            .map(|(m, file, guid, age, addrs)| {
                let e = modules.get(*m);
                let mut notes = Vec::new();
                for cand in path.candidates(file, guid, *age) {
                    match open_matching(&cand, guid, *age) {
                        Ok(data) => {
                            let resolved = resolve(&data, e.base, addrs);
                            return (Some(cand), resolved, notes);
                        }
                        Err(why) => notes.push(format!(
                            "{}: {} for module {} refused: {why}",
                            cand.display(),
                            file,
                            e.name
                        )),
                    }
                }
                (None, Vec::new(), notes)
            })
            .collect();
        let mut functions = HashMap::new();
        for ((m, ..), (found, resolved, notes)) in jobs.iter().zip(results) {
            warnings.extend(notes);
            if let Some(p) = found {
                loaded.push((modules.get(*m).name.clone(), p));
                functions.extend(resolved);
            }
        }
        Symbolizer {
            modules,
            functions,
            warnings,
            loaded,
        }
    }

    /// The frame at `address`.
    pub fn frame(&self, address: u64) -> Frame {
        let (module, offset) = match self.modules.find(address) {
            Some((m, off)) => (Some(m), off),
            None => (None, address),
        };
        Frame {
            address,
            module,
            offset,
            function: self.functions.get(&address).cloned(),
        }
    }

    /// The module map.
    pub fn modules(&self) -> &ModuleMap {
        &self.modules
    }

    /// `crash!main+0x55`, `crash+0x2965`, or `0x77001234` outside every module.
    pub fn display(&self, address: u64) -> String {
        let f = self.frame(address);
        match (f.module, &f.function) {
            (Some(m), Some((name, off))) => {
                format!("{}!{}+{:#x}", self.modules.get(m).short, name, off)
            }
            (Some(m), None) => format!("{}+{:#x}", self.modules.get(m).short, f.offset),
            (None, _) => format!("{address:#x}"),
        }
    }
}

/// Resolve `addrs` (absolute) of a module at `base` with the PDB bytes `data`.
fn resolve(data: &[u8], base: u64, addrs: &[u64]) -> Vec<(u64, (String, u64))> {
    let Ok(p) = pdb::PDB::open(std::io::Cursor::new(data)) else {
        return Vec::new();
    };
    let Ok(ctx_data) = pdb_addr2line::ContextPdbData::try_from_pdb(p) else {
        return Vec::new();
    };
    let Ok(ctx) = ctx_data.make_context() else {
        return Vec::new();
    };
    addrs
        .iter()
        .filter_map(|&a| {
            let rva = u32::try_from(a.checked_sub(base)?).ok()?;
            let f = ctx.find_function(rva).ok()??;
            let name = short_name(f.name.as_deref()?);
            Some((a, (name, u64::from(rva - f.start_rva))))
        })
        .collect()
}

/// A function name without its parameter list: `main(int, char**)` → `main`.
pub fn short_name(full: &str) -> String {
    if !full.ends_with(')') {
        return full.to_string();
    }
    let mut depth = 0i32;
    for (i, c) in full.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth -= 1;
                if depth == 0 {
                    return full[..i].to_string();
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
