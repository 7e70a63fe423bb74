//! Analyses: pure functions over walked heaps, with no I/O and no printing.

pub mod blocks;
pub mod commitment;
pub mod diff;
pub mod folded;
pub mod heaps;
pub mod leaks;
pub mod reach;
pub mod roots;
pub mod suspects;
pub mod top;
pub mod types;
