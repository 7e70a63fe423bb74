//! Views of `heapdiag symbols`: every module with its PDB and where it was found or why not,
//! like WinDbg's `lm` with `!sym noisy`.

use super::format::addr;
use crate::stacks::symbols::{ModuleMap, ModuleSymbols};
use crate::symsrv::name::{printable, shown};
use crate::symsrv::{Source, SymbolPath};
use comfy_table::{presets::NOTHING, Table};
use serde::Serialize;
use std::fmt::Write;

/// The text view.
pub fn symbols_text(modules: &ModuleMap, lookups: &[ModuleSymbols], path: &SymbolPath) -> String {
    let mut out = String::new();
    if path.is_empty() {
        out.push_str("Symbol path: none (give --symbols PATH or set _NT_SYMBOL_PATH)\n");
    } else {
        let _ = writeln!(out, "Symbol path: {}", path.texts().join(";"));
        if path.offline() && path.has_servers() {
            out.push_str("Offline: symbol servers were not asked\n");
        }
    }
    for n in path.notes() {
        let _ = writeln!(out, "Note: {n}");
    }
    out.push('\n');
    let mut t = Table::new();
    t.load_style(NOTHING);
    t.set_header(vec!["Base", "Module", "PDB", "GUID/age", "Symbols"]);
    for l in lookups {
        let m = modules.get(l.module);
        let (pdb, id) = match &m.pdb {
            Some((n, g, a)) => (pdb_file(n), format!("{g}/{a}")),
            None => (String::new(), String::new()),
        };
        let status = match &l.lookup.found {
            Some((p, Source::Local)) => p.display().to_string(),
            Some((p, Source::Server(url))) => format!("{} (downloaded from {url})", p.display()),
            None => format!("missing: {}", l.why_missing()),
        };
        t.add_row(vec![
            addr(m.base),
            printable(&m.name).into_owned(),
            pdb,
            id,
            printable(&status).into_owned(),
        ]);
    }
    let _ = writeln!(out, "{t}");
    let found = lookups.iter().filter(|l| l.found()).count();
    let _ = writeln!(
        out,
        "\n{} modules: {found} with symbols, {} without",
        lookups.len(),
        lookups.len() - found
    );
    out
}

/// The PDB file name a CodeView record names, as the text view shows it: the last path component,
/// control characters escaped, long names cut.
fn pdb_file(raw: &str) -> String {
    let file = raw.rsplit(['\\', '/']).next().unwrap_or(raw);
    let s = shown(file);
    if s[1..s.len() - 1] == *file {
        file.to_string()
    } else {
        s
    }
}

/// `symbols --json`.
#[derive(Serialize)]
pub struct SymbolsJson {
    symbol_path: Vec<String>,
    offline: bool,
    notes: Vec<String>,
    modules: Vec<ModuleJson>,
    with_symbols: usize,
    without_symbols: usize,
}

#[derive(Serialize)]
struct ModuleJson {
    name: String,
    base: String,
    pdb: Option<String>,
    pdb_guid: Option<String>,
    pdb_age: Option<u32>,
    found: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    downloaded_from: Option<String>,
    misses: Vec<MissJson>,
}

#[derive(Serialize)]
struct MissJson {
    kind: &'static str,
    text: String,
}

impl SymbolsJson {
    /// Build the view.
    pub fn new(modules: &ModuleMap, lookups: &[ModuleSymbols], path: &SymbolPath) -> Self {
        let found = lookups.iter().filter(|l| l.found()).count();
        SymbolsJson {
            symbol_path: path.texts().to_vec(),
            offline: path.offline(),
            notes: path.notes().to_vec(),
            modules: lookups
                .iter()
                .map(|l| {
                    let m = modules.get(l.module);
                    ModuleJson {
                        name: m.name.clone(),
                        base: addr(m.base),
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
                            .map(|m| MissJson {
                                kind: m.kind.name(),
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
