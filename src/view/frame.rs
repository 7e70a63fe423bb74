//! A stack frame as every view shows it: resolved once, when the view is built, so that the same
//! frame reads the same (`module!function+0xoff [file @ line]`, with the functions inlined at the
//! call before it) in every view and format. The text comes from
//! [`Symbolizer::display`] and [`Symbolizer::lines`], the one place frame text is made.

use crate::stacks::symbols::{inline_text, Symbolizer};
use crate::value::Hex;
use serde::Serialize;

/// One resolved frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FrameView {
    /// The return address.
    pub address: Hex,
    /// The module's file name (`crash.exe`), `None` outside every module.
    pub module: Option<String>,
    /// Offset into the module (the address itself outside every module).
    pub offset: Hex,
    /// The function, when a PDB names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// The offset into the function.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_offset: Option<Hex>,
    /// The source file of the call, when the PDB has line information.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The source line of the call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The functions inlined at the call, innermost first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inlined: Vec<InlineView>,
    /// The frame's text, as every view and format prints it: `crash!main+0x55
    /// [c:\src\main.cpp @ 34]`, `crash+0x2965`, or `0x77001234` outside every module.
    pub text: String,
}

/// A function inlined at a frame's call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InlineView {
    /// Its name.
    pub function: String,
    /// Where in it the call is, when the PDB has line information.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Its text, as every view prints it: `crash!std::vector<…>::size [c:\…\vector @ 1775]
    /// (inline)`.
    pub text: String,
}

impl FrameView {
    /// Resolve the frame at `address` with `sym`.
    pub fn resolve(sym: &Symbolizer, address: u64) -> Self {
        let f = sym.frame(address);
        let short = f.module.map_or("", |m| sym.modules().get(m).short.as_str());
        FrameView {
            address: Hex(address),
            module: f.module.map(|m| sym.modules().get(m).name.clone()),
            offset: Hex(f.offset),
            function: f.function.map(|(n, _)| n.to_string()),
            function_offset: f.function.map(|(_, o)| Hex(o)),
            file: f.source.map(|s| s.file.clone()),
            line: f.source.map(|s| s.line),
            inlined: f
                .inlined
                .iter()
                .map(|i| InlineView {
                    function: i.function.clone(),
                    file: i.source.as_ref().map(|s| s.file.clone()),
                    line: i.source.as_ref().map(|s| s.line),
                    text: inline_text(short, i),
                })
                .collect(),
            text: sym.display(address),
        }
    }

    /// Resolve every frame of a stack, innermost first.
    pub fn resolve_all(sym: &Symbolizer, frames: &[u64]) -> Vec<Self> {
        frames.iter().map(|&a| Self::resolve(sym, a)).collect()
    }

    /// The frame's lines as WinDbg's `k` lists them: the inlined functions, innermost first, then
    /// the frame ([`Symbolizer::lines`]).
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.inlined
            .iter()
            .map(|i| i.text.as_str())
            .chain(std::iter::once(self.text.as_str()))
    }
}
