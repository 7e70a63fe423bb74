//! heapdiag: offline analysis of Windows user-mode dumps.
//!
//! Data flows one way: [`dump`] (bytes, streams, address space) → [`process`] (TEBs, PEBs,
//! heap lists) → [`regions`] (`!address` classification and summaries), [`heap`] (walks) and
//! [`capabilities`] (what the dump can answer) → [`stacks`] → [`analysis`] → [`view`] (one value
//! per command, built by [`commands`]) → [`report`] (text, JSON, CSV). Lower layers never print
//! and never know about higher ones.

pub mod analysis;
pub mod capabilities;
pub mod commands;
pub mod dump;
pub mod error;
pub mod fasthash;
pub mod heap;
pub mod layout;
pub mod pdbfile;
pub mod process;
pub mod progress;
pub mod regions;
pub mod report;
pub mod stacks;
pub mod symsrv;
pub mod value;
pub mod view;
