//! The `address` view: the `!address -summary` tables and, when asked, the regions that pass a
//! filter. Its JSON form is `address --json`'s contract.

use crate::regions::summary::AddressSummary;
use crate::regions::{protect_name, state_name, type_name, Region, RegionMap, MEM_COMMIT};
use crate::value::Hex;
use serde::Serialize;

/// Everything `address` prints.
#[derive(Clone, Debug, Serialize)]
pub struct AddressView {
    /// The five tables.
    #[serde(flatten)]
    pub summary: AddressSummary,
    /// The regions, when listing was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regions: Option<Vec<RegionView>>,
    /// Problems in the region table.
    pub problems: Vec<String>,
    /// Where heaps' own accounting of their committed memory differs from the region table's
    /// (see `analysis::commitment`).
    pub notes: Vec<String>,
    /// The dump's pointer width (WinDbg's hex style).
    #[serde(skip)]
    pub bits: u32,
}

impl AddressView {
    /// The view of `map`, listing the regions `listed` gives (when listing was asked for).
    pub fn new<'a>(
        map: &RegionMap,
        summary: AddressSummary,
        listed: Option<impl Iterator<Item = &'a Region>>,
    ) -> Self {
        AddressView {
            summary,
            regions: listed.map(|rs| rs.map(RegionView::new).collect()),
            problems: map.problems.clone(),
            notes: Vec::new(),
            bits: map.bits,
        }
    }
}

/// One region as `!address` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct RegionView {
    /// First address.
    pub base: Hex,
    /// Bytes.
    pub size: u64,
    /// `Heap32`, `<unknown>`, …
    pub usage: String,
    /// `MEM_COMMIT`, …; `None` without a region table.
    pub state: Option<String>,
    /// `MEM_PRIVATE`, …; `None` for free regions.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `PAGE_READWRITE`, …; `None` unless committed.
    pub protect: Option<String>,
    /// AllocationBase; `None` for free regions.
    pub allocation_base: Option<Hex>,
    /// The module, heap, thread or shared region it belongs to.
    pub detail: Option<String>,
    /// One past its last byte.
    #[serde(skip)]
    pub end: Hex,
}

impl RegionView {
    /// The view of one region.
    pub fn new(r: &Region) -> Self {
        RegionView {
            base: Hex(r.base),
            size: r.size,
            usage: r.usage.name(),
            state: r.state.map(state_name),
            kind: r.kind.filter(|_| r.is_busy()).map(type_name),
            protect: r
                .protect
                .filter(|_| r.state == Some(MEM_COMMIT))
                .map(protect_name),
            allocation_base: r.allocation_base.filter(|_| r.is_busy()).map(Hex),
            detail: r.detail.clone(),
            end: Hex(r.end()),
        }
    }
}
