//! Views: one value per command, holding everything any format prints — frames already resolved,
//! percentages and notes computed once, missing values typed (`Option`, never an empty string).
//! Built from the analyses by [`crate::commands`]; written by [`crate::report`] (text, JSON, CSV).
//!
//! A view's JSON is the view serialized, so its field names are the contract of `docs/json.md`;
//! fields only the text shows are `#[serde(skip)]`. Some analysis results serve as views as they
//! are ([`crate::analysis::heaps::HeapSummary`], [`crate::regions::summary::AddressSummary`],
//! [`crate::analysis::diff::AddressDelta`]).

pub mod address;
pub mod analyze;
pub mod blocks;
pub mod diff;
pub mod frame;
pub mod heaps;
pub mod info;
pub mod leaks;
pub mod ranking;
pub mod suspects;
pub mod symbols;
pub mod top;
