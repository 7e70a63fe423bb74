//! A stack frame as every view shows it: resolved once, when the view is built, so that the same
//! frame reads the same (`module!function+0xoff`) in every view and format.

use crate::stacks::symbols::Symbolizer;
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
    /// The frame's text: `crash!main+0x55`, `crash+0x2965`, or `0x77001234` outside every module.
    #[serde(skip)]
    pub text: String,
}

impl FrameView {
    /// Resolve the frame at `address` with `sym`.
    pub fn resolve(sym: &Symbolizer, address: u64) -> Self {
        let f = sym.frame(address);
        FrameView {
            address: Hex(address),
            module: f.module.map(|m| sym.modules().get(m).name.clone()),
            offset: Hex(f.offset),
            function: f.function.as_ref().map(|(n, _)| n.clone()),
            function_offset: f.function.as_ref().map(|(_, o)| Hex(*o)),
            text: sym.display(address),
        }
    }

    /// Resolve every frame of a stack, innermost first.
    pub fn resolve_all(sym: &Symbolizer, frames: &[u64]) -> Vec<Self> {
        frames.iter().map(|&a| Self::resolve(sym, a)).collect()
    }
}
