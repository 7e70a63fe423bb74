//! Structure offsets of the Windows structures heapdiag reads, as data: the process-level ones here
//! (TEB, PEB, NtGlobalFlag), the NT heap's in [`nt_heap`], the segment heap's in [`segment_heap`].
//!
//! Sources: `shared/docs/windows-heap-reference.md` §1.1–§1.3 (TEB, PEB, WoW64) and the WinDbg `dt`
//! dumps in `shared/docs/layouts/` (Win10 x64, Win7 x86). The PEB and TEB offsets used here are
//! identical from Windows 7 to 11.

pub mod nt_heap;
pub mod page_heap;
pub mod pdb;
pub mod segment_heap;

/// TEB offsets for one bitness.
#[derive(Clone, Copy, Debug)]
pub struct TebLayout {
    /// `NtTib.StackBase`.
    pub stack_base: u64,
    /// `NtTib.StackLimit`.
    pub stack_limit: u64,
    /// `NtTib.Self`.
    pub self_ptr: u64,
    /// `ProcessEnvironmentBlock`.
    pub peb: u64,
    /// `DeallocationStack`: the allocation base of the stack reservation.
    pub deallocation_stack: u64,
    /// Bytes of the TEB page(s) `!address` labels TEB (x64 0x2000, x86 0x1000).
    pub region_size: u64,
}

/// TEB of a 64-bit process (and the TEB64 of a WoW64 process).
pub const TEB64: TebLayout = TebLayout {
    stack_base: 0x08,
    stack_limit: 0x10,
    self_ptr: 0x30,
    peb: 0x60,
    deallocation_stack: 0x1478,
    region_size: 0x2000,
};

/// TEB of a 32-bit process (and the TEB32 of a WoW64 process).
pub const TEB32: TebLayout = TebLayout {
    stack_base: 0x04,
    stack_limit: 0x08,
    self_ptr: 0x18,
    peb: 0x30,
    deallocation_stack: 0xe0c,
    region_size: 0x1000,
};

/// `TEB64.WowTebOffset` (Windows 10+): signed distance from TEB64 to TEB32.
pub const TEB64_WOW_TEB_OFFSET: u64 = 0x180c;

/// `TEB64.TlsSlots` (64 pointers).
pub const TEB64_TLS_SLOTS: u64 = 0x1480;
/// The TLS slot of a WoW64 thread's TEB64 that points to the CPU simulator's reserved area
/// (`WOW64_TLS_CPURESERVED`).
pub const WOW64_TLS_CPURESERVED: u64 = 1;
/// Where the `WOW64_CONTEXT` is in that area (after `USHORT Flags, Machine`).
pub const WOW64_CONTEXT_OFFSET: u64 = 4;

/// PEB offsets for one bitness.
#[derive(Clone, Copy, Debug)]
pub struct PebLayout {
    /// `ImageBaseAddress`.
    pub image_base: u64,
    /// `ProcessHeap`.
    pub process_heap: u64,
    /// `NtGlobalFlag` (u32).
    pub nt_global_flag: u64,
    /// `NumberOfHeaps` (u32).
    pub number_of_heaps: u64,
    /// `MaximumNumberOfHeaps` (u32).
    pub maximum_number_of_heaps: u64,
    /// `ProcessHeaps` (pointer to the heap pointer array).
    pub process_heaps: u64,
    /// `OSMajorVersion` (u32); `OSMinorVersion` follows it.
    pub os_major: u64,
    /// `OSBuildNumber` (u16).
    pub os_build: u64,
    /// Pointers to OS-owned shared regions that `!address` labels Other, with their labels.
    pub shared: &'static [(u64, &'static str)],
}

/// PEB of a 64-bit process.
pub const PEB64: PebLayout = PebLayout {
    image_base: 0x10,
    process_heap: 0x30,
    nt_global_flag: 0xbc,
    number_of_heaps: 0xe8,
    maximum_number_of_heaps: 0xec,
    process_heaps: 0xf0,
    os_major: 0x118,
    os_build: 0x120,
    shared: &[
        (0x68, "ApiSetMap"),
        (0x88, "CSR shared memory"),
        (0xa0, "NLS tables (ANSI code page)"),
        (0xa8, "NLS tables (OEM code page)"),
        (0xb0, "NLS tables (Unicode case table)"),
        (0xf8, "GDI shared handle table"),
        (0x2f8, "Activation context data"),
        (0x308, "System default activation context data"),
    ],
};

/// PEB of a 32-bit process (and the PEB32 of a WoW64 process).
pub const PEB32: PebLayout = PebLayout {
    image_base: 0x08,
    process_heap: 0x18,
    nt_global_flag: 0x68,
    number_of_heaps: 0x88,
    maximum_number_of_heaps: 0x8c,
    process_heaps: 0x90,
    os_major: 0xa4,
    os_build: 0xac,
    shared: &[
        (0x38, "ApiSetMap"),
        (0x4c, "CSR shared memory"),
        (0x58, "NLS tables (ANSI code page)"),
        (0x5c, "NLS tables (OEM code page)"),
        (0x60, "NLS tables (Unicode case table)"),
        (0x94, "GDI shared handle table"),
        (0x1f8, "Activation context data"),
        (0x200, "System default activation context data"),
    ],
};

/// NtGlobalFlag `FLG_USER_STACK_TRACE_DB` (+ust).
pub const FLG_USER_STACK_TRACE_DB: u32 = 0x0000_1000;
/// NtGlobalFlag `FLG_HEAP_PAGE_ALLOCS` (+hpa, full page heap).
pub const FLG_HEAP_PAGE_ALLOCS: u32 = 0x0200_0000;

/// NtGlobalFlag bits with their gflags abbreviations.
pub const GLOBAL_FLAGS: &[(u32, &str)] = &[
    (0x0000_0001, "soe"),
    (0x0000_0002, "sls"),
    (0x0000_0004, "dic"),
    (0x0000_0010, "htc"),
    (0x0000_0020, "hfc"),
    (0x0000_0040, "hpc"),
    (0x0000_0080, "hvc"),
    (0x0000_0100, "vrf"),
    (0x0000_0800, "htg"),
    (0x0000_1000, "ust"),
    (0x0000_4000, "otl"),
    (0x0000_8000, "htd"),
    (0x0002_0000, "dse"),
    (0x0010_0000, "scb"),
    (0x0040_0000, "dhc"),
    (0x0080_0000, "ece"),
    (0x0200_0000, "hpa"),
    (0x2000_0000, "dpd"),
];

/// `+ust +hpa …` for a NtGlobalFlag value; bits without a known abbreviation print as hex.
pub fn global_flag_names(flag: u32) -> Vec<String> {
    let mut rest = flag;
    let mut out = Vec::new();
    for (bit, name) in GLOBAL_FLAGS {
        if flag & bit != 0 {
            out.push(format!("+{name}"));
            rest &= !bit;
        }
    }
    if rest != 0 {
        out.push(format!("{rest:#x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_flags_decode() {
        assert_eq!(global_flag_names(0x0200_1000), vec!["+ust", "+hpa"]);
        assert_eq!(global_flag_names(0x1000_0000), vec!["0x10000000"]);
        assert!(global_flag_names(0).is_empty());
    }
}
