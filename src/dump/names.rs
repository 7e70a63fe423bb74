//! Names of minidump stream types and `MINIDUMP_TYPE` flags, as `minidumpapiset.h` spells them.

use minidump::format::MINIDUMP_STREAM_TYPE as StreamType;

/// Stream types (numbered by the `minidump` crate) and their names: `minidumpapiset.h`'s for
/// Windows streams, Breakpad's and Crashpad's for theirs.
const STREAMS: &[(StreamType, &str)] = &[
    (StreamType::UnusedStream, "UnusedStream"),
    (StreamType::ThreadListStream, "ThreadListStream"),
    (StreamType::ModuleListStream, "ModuleListStream"),
    (StreamType::MemoryListStream, "MemoryListStream"),
    (StreamType::ExceptionStream, "ExceptionStream"),
    (StreamType::SystemInfoStream, "SystemInfoStream"),
    (StreamType::ThreadExListStream, "ThreadExListStream"),
    (StreamType::Memory64ListStream, "Memory64ListStream"),
    (StreamType::CommentStreamA, "CommentStreamA"),
    (StreamType::CommentStreamW, "CommentStreamW"),
    (StreamType::HandleDataStream, "HandleDataStream"),
    (StreamType::FunctionTable, "FunctionTableStream"),
    (
        StreamType::UnloadedModuleListStream,
        "UnloadedModuleListStream",
    ),
    (StreamType::MiscInfoStream, "MiscInfoStream"),
    (StreamType::MemoryInfoListStream, "MemoryInfoListStream"),
    (StreamType::ThreadInfoListStream, "ThreadInfoListStream"),
    (
        StreamType::HandleOperationListStream,
        "HandleOperationListStream",
    ),
    (StreamType::TokenStream, "TokenStream"),
    (StreamType::JavaScriptDataStream, "JavaScriptDataStream"),
    (StreamType::SystemMemoryInfoStream, "SystemMemoryInfoStream"),
    (
        StreamType::ProcessVmCountersStream,
        "ProcessVmCountersStream",
    ),
    (StreamType::IptTraceStream, "IptTraceStream"),
    (StreamType::ThreadNamesStream, "ThreadNamesStream"),
    (StreamType::BreakpadInfoStream, "BreakpadInfoStream"),
    (StreamType::AssertionInfoStream, "AssertionInfoStream"),
    (StreamType::LinuxCpuInfo, "LinuxCpuInfo"),
    (StreamType::LinuxProcStatus, "LinuxProcStatus"),
    (StreamType::CrashpadInfoStream, "CrashpadInfoStream"),
];

/// The name of a stream type, or `None` for a type this table does not know.
pub fn stream_name(kind: u32) -> Option<&'static str> {
    STREAMS
        .iter()
        .find(|(t, _)| *t as u32 == kind)
        .map(|(_, name)| *name)
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
        assert_eq!(stream_name(13), Some("FunctionTableStream"));
        assert_eq!(stream_name(0x4b6b_0001), None);
    }

    #[test]
    fn breakpad_streams_have_breakpads_names() {
        // MD_BREAKPAD_INFO_STREAM and MD_ASSERTION_INFO_STREAM (electron-windows.dmp has both);
        // this table used to call the first "BreakpadRawInfo" and leave the second unnamed.
        assert_eq!(stream_name(0x4767_0001), Some("BreakpadInfoStream"));
        assert_eq!(stream_name(0x4767_0002), Some("AssertionInfoStream"));
        assert_eq!(stream_name(0x4767_0003), Some("LinuxCpuInfo"));
        assert_eq!(stream_name(0x4350_0001), Some("CrashpadInfoStream"));
    }
}
