//! The `symbols` view: every module with its PDB and where it was found or why not, like WinDbg's
//! `lm` with `!sym noisy`. Serialized, `symbols --json`.

use crate::stacks::symbols::{ModuleMap, ModuleSymbols};
use crate::symsrv::{MissKind, Source, SymbolPath};
use crate::value::Hex;
use serde::{Serialize, Serializer};

/// Everything `symbols` prints.
#[derive(Clone, Debug, Serialize)]
pub struct SymbolsView {
    /// The symbol path as given: `--symbols` values, then `_NT_SYMBOL_PATH`.
    pub symbol_path: Vec<String>,
    /// Whether symbol servers were skipped (`--offline`).
    pub offline: bool,
    /// Whether the path names any symbol server.
    #[serde(skip)]
    pub has_servers: bool,
    /// Parts of the path that are not understood.
    pub notes: Vec<String>,
    /// Every loaded module, by address.
    pub modules: Vec<ModuleSymbolsView>,
    /// Modules whose PDB was found.
    pub with_symbols: usize,
    /// Modules whose PDB was not.
    pub without_symbols: usize,
}

/// One module.
#[derive(Clone, Debug, Serialize)]
pub struct ModuleSymbolsView {
    /// File name, e.g. `crash.exe`.
    pub name: String,
    /// Base address.
    pub base: Hex,
    /// The CodeView PDB name exactly as in the dump (`None` without a record).
    pub pdb: Option<String>,
    /// The CodeView GUID.
    pub pdb_guid: Option<String>,
    /// The CodeView age.
    pub pdb_age: Option<u32>,
    /// Whether its PDB was found.
    pub found: bool,
    /// The PDB used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The server it was downloaded from during this run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downloaded_from: Option<String>,
    /// Every place it was not found, in search order.
    pub misses: Vec<MissView>,
}

/// One place a PDB was not found.
#[derive(Clone, Debug, Serialize)]
pub struct MissView {
    /// What kind of miss.
    #[serde(serialize_with = "kind_name")]
    pub kind: MissKind,
    /// The sentence, naming the place.
    pub text: String,
}

fn kind_name<S: Serializer>(k: &MissKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.name())
}

impl SymbolsView {
    /// The view of `lookups`, the modules of `modules` looked up on `path`.
    pub fn new(modules: &ModuleMap, lookups: &[ModuleSymbols], path: &SymbolPath) -> Self {
        let found = lookups.iter().filter(|l| l.found()).count();
        SymbolsView {
            symbol_path: path.texts().to_vec(),
            offline: path.offline(),
            has_servers: path.has_servers(),
            notes: path.notes().to_vec(),
            modules: lookups
                .iter()
                .map(|l| {
                    let m = modules.get(l.module);
                    ModuleSymbolsView {
                        name: m.name.clone(),
                        base: Hex(m.base),
                        pdb: m.pdb.as_ref().map(|p| p.0.clone()),
                        pdb_guid: m.pdb.as_ref().map(|p| p.1.clone()),
                        pdb_age: m.pdb.as_ref().map(|p| p.2),
                        found: l.found(),
                        path: l
                            .lookup
                            .found
                            .as_ref()
                            .map(|(p, _)| p.display().to_string()),
                        downloaded_from: match &l.lookup.found {
                            Some((_, Source::Server(url))) => Some(url.clone()),
                            _ => None,
                        },
                        misses: l
                            .lookup
                            .misses
                            .iter()
                            .map(|m| MissView {
                                kind: m.kind,
                                text: m.text.clone(),
                            })
                            .collect(),
                    }
                })
                .collect(),
            with_symbols: found,
            without_symbols: lookups.len() - found,
        }
    }
}
