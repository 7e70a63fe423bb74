//! `heapdiag symbols` as text: like WinDbg's `lm` with `!sym noisy`, one row per module with where
//! its PDB is or why it is missing. No CSV: the text is written instead.

use super::format::{notes, paragraph};
use super::{Render, Style};
use crate::symsrv::name::{printable, shown};
use crate::value::plural;
use crate::view::symbols::SymbolsView;
use comfy_table::{presets::NOTHING, Table};
use std::io::{self, Write};

impl Render for SymbolsView {
    fn text(&self, out: &mut dyn Write, style: &Style) -> io::Result<()> {
        if self.symbol_path.is_empty() {
            writeln!(
                out,
                "Symbol path: none (give --symbols PATH or set _NT_SYMBOL_PATH)"
            )?;
        } else {
            paragraph(out, style, "Symbol path: ", &self.symbol_path.join(";"))?;
            if self.offline && self.has_servers {
                writeln!(out, "Offline: symbol servers were not asked")?;
            }
        }
        notes(out, style, "", &self.notes)?;
        writeln!(out)?;
        let mut t = Table::new();
        t.load_style(NOTHING);
        t.set_header(vec!["Base", "Module", "PDB", "GUID/age", "Symbols"]);
        for m in &self.modules {
            let id = match (&m.pdb_guid, m.pdb_age) {
                (Some(g), Some(a)) => format!("{g}/{a}"),
                _ => String::new(),
            };
            let status = match (&m.path, &m.downloaded_from) {
                (Some(p), Some(url)) => format!("{p} (downloaded from {url})"),
                (Some(p), None) => p.clone(),
                _ => format!(
                    "missing: {}",
                    m.misses
                        .iter()
                        .map(|x| x.text.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            };
            t.add_row(vec![
                m.base.to_string(),
                printable(&m.name).into_owned(),
                m.pdb.as_deref().map(pdb_file).unwrap_or_default(),
                id,
                printable(&status).into_owned(),
            ]);
        }
        writeln!(out, "{t}")?;
        writeln!(
            out,
            "\n{}: {} with symbols, {} without",
            plural(self.modules.len() as u64, "module"),
            self.with_symbols,
            self.without_symbols
        )
    }
}

/// The PDB file name a CodeView record names, as the text shows it: the last path component,
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
