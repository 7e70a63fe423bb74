//! Address regions classified as WinDbg's `!address` does (Usage, Type, State, Protect), and the
//! summaries `!address -summary` prints.
//!
//! The unit is the region of the dump's MemoryInfoList (a run of pages with identical attributes),
//! so region counts mean what `RgnCount` means. Without that stream the captured memory ranges are
//! the only regions there are, and only Usage can be told (see [`RegionSource`]).

pub mod classify;
pub mod filter;
pub mod summary;

pub use classify::classify;

/// `MEM_COMMIT`.
pub const MEM_COMMIT: u32 = 0x1000;
/// `MEM_RESERVE`.
pub const MEM_RESERVE: u32 = 0x2000;
/// `MEM_FREE`.
pub const MEM_FREE: u32 = 0x10000;
/// `MEM_PRIVATE`.
pub const MEM_PRIVATE: u32 = 0x20000;
/// `MEM_MAPPED`.
pub const MEM_MAPPED: u32 = 0x40000;
/// `MEM_IMAGE`.
pub const MEM_IMAGE: u32 = 0x100_0000;

/// What a region is used for, in `!address` terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UsageKind {
    /// `Free`: not allocated.
    Free,
    /// `Image`: a mapped executable image.
    Image,
    /// `Heap`: NT heap segments and large blocks, segment-heap segments and large allocations.
    Heap,
    /// `PageHeap`: the memory of a full page heap (`+hpa`): its root pages and virtual storage.
    PageHeap,
    /// `Stack`: a thread stack's whole reservation.
    Stack,
    /// `TEB`.
    Teb,
    /// `PEB`.
    Peb,
    /// `Other`: OS-owned shared regions (shared user data, CSR memory, NLS tables, ApiSetMap,
    /// activation contexts).
    Other,
    /// `<unknown>`: any other busy region (VirtualAlloc, GC heaps, unnamed mapped views).
    Unknown,
}

impl UsageKind {
    /// WinDbg's label without a 32/64 suffix.
    pub fn label(self) -> &'static str {
        match self {
            UsageKind::Free => "Free",
            UsageKind::Image => "Image",
            UsageKind::Heap => "Heap",
            UsageKind::PageHeap => "PageHeap",
            UsageKind::Stack => "Stack",
            UsageKind::Teb => "TEB",
            UsageKind::Peb => "PEB",
            UsageKind::Other => "Other",
            UsageKind::Unknown => "<unknown>",
        }
    }

    /// Whether WoW64 splits this usage by world (`Heap32`/`Heap64` …).
    pub fn per_world(self) -> bool {
        matches!(
            self,
            UsageKind::Heap | UsageKind::Stack | UsageKind::Teb | UsageKind::Peb
        )
    }

    /// All usages.
    pub const ALL: [UsageKind; 9] = [
        UsageKind::Free,
        UsageKind::Image,
        UsageKind::Heap,
        UsageKind::PageHeap,
        UsageKind::Stack,
        UsageKind::Teb,
        UsageKind::Peb,
        UsageKind::Other,
        UsageKind::Unknown,
    ];
}

/// A usage with the world it belongs to: `bits` is set only in WoW64 processes, for the usages
/// WinDbg splits (`Heap32`, `Stack64`, `TEB32`, `PEB64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Usage {
    /// The usage.
    pub kind: UsageKind,
    /// 32 or 64 on WoW64 for per-world usages; `None` otherwise.
    pub bits: Option<u32>,
}

impl Usage {
    /// The name WinDbg prints: `Heap`, `Heap32`, `<unknown>`, …
    pub fn name(&self) -> String {
        match self.bits {
            Some(b) => format!("{}{}", self.kind.label(), b),
            None => self.kind.label().to_string(),
        }
    }
}

/// One classified region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    /// First address.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
    /// AllocationBase (`None` without a region table).
    pub allocation_base: Option<u64>,
    /// AllocationProtect.
    pub allocation_protect: Option<u32>,
    /// State (`None` without a region table).
    pub state: Option<u32>,
    /// Protect.
    pub protect: Option<u32>,
    /// Type.
    pub kind: Option<u32>,
    /// Usage.
    pub usage: Usage,
    /// What heapdiag knows of it: module name, owning heap, thread, shared-region name.
    pub detail: Option<String>,
}

impl Region {
    /// One past the last address.
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// Not free.
    pub fn is_busy(&self) -> bool {
        self.usage.kind != UsageKind::Free
    }
}

/// Where the regions came from (`"memory_info"`, `"captured_memory"` in JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionSource {
    /// The MemoryInfoList stream: the whole address space, with state, type and protection.
    MemoryInfo,
    /// No MemoryInfoList: only the captured memory ranges, usage only.
    CapturedMemory,
}

/// The classified regions of a dump, sorted by address, disjoint.
#[derive(Clone, Debug)]
pub struct RegionMap {
    /// Regions.
    pub regions: Vec<Region>,
    /// Where they came from.
    pub source: RegionSource,
    /// Whether the process is WoW64 (usages carry 32/64 suffixes).
    pub wow64: bool,
    /// Pointer width of the dump (for address formatting).
    pub bits: u32,
    /// Problems in the region table, one sentence each.
    pub problems: Vec<String>,
}

/// `MEM_COMMIT` → "MEM_COMMIT"; unknown values print in hex.
pub fn state_name(state: u32) -> String {
    match state {
        MEM_COMMIT => "MEM_COMMIT".into(),
        MEM_RESERVE => "MEM_RESERVE".into(),
        MEM_FREE => "MEM_FREE".into(),
        s => format!("{s:#x}"),
    }
}

/// `MEM_PRIVATE` → "MEM_PRIVATE"; unknown values print in hex.
pub fn type_name(kind: u32) -> String {
    match kind {
        MEM_PRIVATE => "MEM_PRIVATE".into(),
        MEM_MAPPED => "MEM_MAPPED".into(),
        MEM_IMAGE => "MEM_IMAGE".into(),
        k => format!("{k:#x}"),
    }
}

/// Base protection values (the low byte) and their names.
pub const PROTECTIONS: &[(u32, &str)] = &[
    (0x01, "PAGE_NOACCESS"),
    (0x02, "PAGE_READONLY"),
    (0x04, "PAGE_READWRITE"),
    (0x08, "PAGE_WRITECOPY"),
    (0x10, "PAGE_EXECUTE"),
    (0x20, "PAGE_EXECUTE_READ"),
    (0x40, "PAGE_EXECUTE_READWRITE"),
    (0x80, "PAGE_EXECUTE_WRITECOPY"),
];

/// Protection modifiers and their names.
pub const PROTECTION_MODIFIERS: &[(u32, &str)] = &[
    (0x100, "PAGE_GUARD"),
    (0x200, "PAGE_NOCACHE"),
    (0x400, "PAGE_WRITECOMBINE"),
    (0x4000_0000, "PAGE_TARGETS_INVALID"),
];

/// `PAGE_READWRITE | PAGE_GUARD`, as modern WinDbg joins them; bits without a name print in hex.
pub fn protect_name(protect: u32) -> String {
    let mut parts = Vec::new();
    let base = protect & 0xff;
    match PROTECTIONS.iter().find(|(v, _)| *v == base) {
        Some((_, n)) => parts.push((*n).to_string()),
        None if base != 0 => parts.push(format!("{base:#x}")),
        None => {}
    }
    let mut rest = protect & !0xff;
    for (bit, n) in PROTECTION_MODIFIERS {
        if rest & bit != 0 {
            parts.push((*n).to_string());
            rest &= !bit;
        }
    }
    if rest != 0 {
        parts.push(format!("{rest:#x}"));
    }
    if parts.is_empty() {
        "0".into()
    } else {
        parts.join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_windbg() {
        assert_eq!(protect_name(0x104), "PAGE_READWRITE | PAGE_GUARD");
        assert_eq!(protect_name(0x20), "PAGE_EXECUTE_READ");
        assert_eq!(protect_name(0x1003), "0x3 | 0x1000");
        assert_eq!(state_name(0x2000), "MEM_RESERVE");
        assert_eq!(type_name(0x1000000), "MEM_IMAGE");
        let u = Usage {
            kind: UsageKind::Heap,
            bits: Some(32),
        };
        assert_eq!(u.name(), "Heap32");
        let u = Usage {
            kind: UsageKind::Unknown,
            bits: None,
        };
        assert_eq!(u.name(), "<unknown>");
    }
}
