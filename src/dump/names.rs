//! Names of minidump stream types and `MINIDUMP_TYPE` flags, as `minidumpapiset.h` spells them.

/// The name of a stream type, or `None` for a type this table does not know.
pub fn stream_name(kind: u32) -> Option<&'static str> {
    Some(match kind {
        0 => "UnusedStream",
        3 => "ThreadListStream",
        4 => "ModuleListStream",
        5 => "MemoryListStream",
        6 => "ExceptionStream",
        7 => "SystemInfoStream",
        8 => "ThreadExListStream",
        9 => "Memory64ListStream",
        10 => "CommentStreamA",
        11 => "CommentStreamW",
        12 => "HandleDataStream",
        13 => "FunctionTableStream",
        14 => "UnloadedModuleListStream",
        15 => "MiscInfoStream",
        16 => "MemoryInfoListStream",
        17 => "ThreadInfoListStream",
        18 => "HandleOperationListStream",
        19 => "TokenStream",
        20 => "JavaScriptDataStream",
        21 => "SystemMemoryInfoStream",
        22 => "ProcessVmCountersStream",
        23 => "IptTraceStream",
        24 => "ThreadNamesStream",
        0x4767_0001 => "BreakpadRawInfo",
        0x4767_0003 => "BreakpadInfoStream",
        0x4767_0004 => "BreakpadAssertionInfoStream",
        0x4350_0001 => "CrashpadInfoStream",
        _ => return None,
    })
}

/// `MINIDUMP_TYPE` flag bits and names.
pub const DUMP_FLAGS: &[(u64, &str)] = &[
    (0x1, "MiniDumpWithDataSegs"),
    (0x2, "MiniDumpWithFullMemory"),
    (0x4, "MiniDumpWithHandleData"),
    (0x8, "MiniDumpFilterMemory"),
    (0x10, "MiniDumpScanMemory"),
    (0x20, "MiniDumpWithUnloadedModules"),
    (0x40, "MiniDumpWithIndirectlyReferencedMemory"),
    (0x80, "MiniDumpFilterModulePaths"),
    (0x100, "MiniDumpWithProcessThreadData"),
    (0x200, "MiniDumpWithPrivateReadWriteMemory"),
    (0x400, "MiniDumpWithoutOptionalData"),
    (0x800, "MiniDumpWithFullMemoryInfo"),
    (0x1000, "MiniDumpWithThreadInfo"),
    (0x2000, "MiniDumpWithCodeSegs"),
    (0x4000, "MiniDumpWithoutAuxiliaryState"),
    (0x8000, "MiniDumpWithFullAuxiliaryState"),
    (0x10000, "MiniDumpWithPrivateWriteCopyMemory"),
    (0x20000, "MiniDumpIgnoreInaccessibleMemory"),
    (0x40000, "MiniDumpWithTokenInformation"),
    (0x80000, "MiniDumpWithModuleHeaders"),
    (0x100000, "MiniDumpFilterTriage"),
    (0x200000, "MiniDumpWithAvxXStateContext"),
    (0x400000, "MiniDumpWithIptTrace"),
    (0x800000, "MiniDumpScanInaccessiblePartialPages"),
];

/// The names of the flags set in `flags` (the low 32 bits of the header's Flags field; the high
/// bits hold the dbghelp version on some writers and are not flags).
pub fn dump_flag_names(flags: u64) -> Vec<&'static str> {
    DUMP_FLAGS
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fizzbuzz_header_flags_decode() {
        assert_eq!(
            dump_flag_names(0x1826),
            vec![
                "MiniDumpWithFullMemory",
                "MiniDumpWithHandleData",
                "MiniDumpWithUnloadedModules",
                "MiniDumpWithFullMemoryInfo",
                "MiniDumpWithThreadInfo"
            ]
        );
        assert_eq!(stream_name(9), Some("Memory64ListStream"));
        assert_eq!(stream_name(0x4b6b_0001), None);
    }
}
