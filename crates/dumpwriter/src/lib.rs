//! A deterministic writer of synthetic Windows user-mode minidumps.
//!
//! heapdiag's tests and benchmarks need dumps whose every byte is known. This crate writes them from
//! documented layouts: the minidump container (`MINIDUMP_HEADER`, the stream directory and the
//! streams heapdiag reads) in [`minidump`], and the memory of a Windows process (PEB, TEBs, heaps,
//! stacks, images) in [`memory`] and [`process`].
//!
//! The same inputs always produce the same bytes: nothing here reads the clock, the environment or a
//! random source.

pub mod bench;
pub mod damage;
pub mod fixtures;
pub mod graph;
pub mod leak_fixtures;
pub mod memory;
pub mod minidump;
pub mod nt_heap;
pub mod page_heap;
pub mod pe;
pub mod process;
pub mod segment_heap;
pub mod symbol_fixtures;

pub use memory::{ProcessMemory, Region};
pub use minidump::{Arch, HandleSpec, MemoryListKind, MinidumpBuilder, ModuleSpec, ThreadSpec};
