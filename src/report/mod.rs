//! Renderers: text tables, JSON and CSV views of analysis results. Nothing here reads the dump
//! or walks structures.

pub mod address;
pub mod csv;
pub mod diff;
pub mod format;
pub mod heap_json;
pub mod heaps;
pub mod info;
pub mod json;
pub mod symbols;
pub mod top;
