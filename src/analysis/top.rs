//! Ranking outstanding memory by module, function, call stack, size or heap (`heapdiag top`),
//! and the health of the +ust traces behind it.
//!
//! A block's allocator is the first frame of its stack that is not allocator plumbing: ntdll's heap
//! internals, the CRT's `malloc`/`operator new`/`calloc`/`realloc`, `HeapAlloc`, `LocalAlloc`,
//! `GlobalAlloc`, `SysAllocString*`, `CoTaskMemAlloc`, … (by function name when symbols are loaded;
//! without symbols, leading frames in ntdll, kernel32, kernelbase and the CRT DLLs). The list is
//! built in ([`DEFAULT_SKIP`]) and extendable with patterns.

use crate::analysis::heaps::is_user_busy;
use crate::heap::HeapWalk;
use crate::stacks::symbols::Symbolizer;
use crate::stacks::{Stack, StackTable};
use std::collections::HashMap;

/// Function-name patterns (`*` wildcards, case-insensitive) of allocator frames.
pub const DEFAULT_SKIP: &[&str] = &[
    "Rtl*AllocateHeap*",
    "Rtl*ReAllocateHeap*",
    "RtlpCallInterceptRoutine",
    "RtlpLowFragHeap*",
    "RtlpHp*",
    "RtlpStackTraceDatabaseLogPrefix",
    "RtlCaptureStackBackTrace",
    "RtlWalkFrameChain",
    "HeapAlloc",
    "HeapReAlloc",
    "LocalAlloc",
    "LocalReAlloc",
    "GlobalAlloc",
    "GlobalReAlloc",
    "malloc",
    "_malloc_*",
    "calloc",
    "_calloc_*",
    "realloc",
    "_realloc_*",
    "_recalloc*",
    "_aligned_*malloc*",
    "_heap_alloc*",
    "_nh_malloc*",
    "operator new",
    "operator new[]",
    "SysAllocString*",
    "SysReAllocString*",
    "CoTaskMemAlloc",
    "CoTaskMemRealloc",
];

/// Modules whose leading frames are allocator plumbing when no symbols name them.
pub const DEFAULT_SKIP_MODULES: &[&str] = &[
    "ntdll",
    "kernel32",
    "kernelbase",
    "ucrtbase",
    "ucrtbased",
    "msvcrt",
    "msvcr*",
    "vcruntime*",
];

/// Which frames are allocator plumbing.
#[derive(Clone, Debug)]
pub struct SkipList {
    functions: Vec<String>,
    modules: Vec<String>,
    user: Vec<String>,
}

impl SkipList {
    /// The built-in list plus `extra` patterns, matched against `module!function` (or `module` for
    /// frames without symbols) and against the function name alone.
    pub fn new(extra: &[String]) -> Self {
        SkipList {
            functions: DEFAULT_SKIP
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect(),
            modules: DEFAULT_SKIP_MODULES
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect(),
            user: extra.iter().map(|s| s.to_ascii_lowercase()).collect(),
        }
    }

    /// Whether the frame at `address` is allocator plumbing.
    pub fn skips(&self, sym: &Symbolizer, address: u64) -> bool {
        let f = sym.frame(address);
        let module = f
            .module
            .map(|m| sym.modules().get(m).short.to_ascii_lowercase());
        let function = f.function.as_ref().map(|(n, _)| n.to_ascii_lowercase());
        let full = match (&module, &function) {
            (Some(m), Some(func)) => format!("{m}!{func}"),
            (Some(m), None) => m.clone(),
            (None, _) => format!("{address:#x}"),
        };
        if self
            .user
            .iter()
            .any(|p| glob(p, &full) || function.as_ref().is_some_and(|f| glob(p, f)))
        {
            return true;
        }
        match (&function, &module) {
            (Some(func), Some(m)) => self.functions.iter().any(|p| glob(p, func)) || m == "ntdll",
            (None, Some(m)) => self.modules.iter().any(|p| glob(p, m)),
            _ => false,
        }
    }

    /// The allocator frame of a stack: the first frame that is not plumbing (the last frame if
    /// all are).
    pub fn allocator(&self, sym: &Symbolizer, stack: &Stack) -> Option<u64> {
        stack
            .frames
            .iter()
            .copied()
            .find(|&a| !self.skips(sym, a))
            .or(stack.frames.last().copied())
    }
}

/// `*` matches any run of characters; both sides lower-case.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    true
}

/// What to rank by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    /// The allocator frame's module.
    Module,
    /// The allocator frame's function (`module!function`; without symbols the call site
    /// `module+offset`).
    Function,
    /// The whole call stack.
    Stack,
    /// Requested size.
    Size,
    /// Heap.
    Heap,
}

impl By {
    /// `module`, `function`, `stack`, `size`, `heap`.
    pub fn name(self) -> &'static str {
        match self {
            By::Module => "module",
            By::Function => "function",
            By::Stack => "stack",
            By::Size => "size",
            By::Heap => "heap",
        }
    }
}

/// The key of blocks without a recorded stack.
pub const NO_STACK: &str = "(no stack)";

/// One ranked entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Module name, `module!function`, stack id (`0x…` record address), size or heap address.
    pub key: String,
    /// Busy blocks.
    pub count: u64,
    /// Their requested bytes.
    pub bytes: u64,
    /// The stack (for `--by stack`).
    pub stack: Option<Stack>,
    /// Whether the entry holds traced blocks (false for [`NO_STACK`]).
    pub traced: bool,
}

/// Trace health: how much of the busy memory has a stack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceHealth {
    /// Busy user blocks.
    pub busy_blocks: u64,
    /// Their bytes.
    pub busy_bytes: u64,
    /// Busy blocks with a readable stack.
    pub traced_blocks: u64,
    /// Their bytes.
    pub traced_bytes: u64,
    /// Busy blocks without a stack on heaps that record stacks (allocated before tracing started,
    /// or when the database was full).
    pub untraced_on_traced_heaps: u64,
    /// Distinct stacks.
    pub stacks: u64,
    /// Bytes of the distinct stack records.
    pub record_bytes: u64,
    /// Stack pointers that did not lead to a readable record.
    pub bad_records: u64,
}

impl TraceHealth {
    /// Measure.
    pub fn measure(walks: &[HeapWalk], table: &StackTable) -> TraceHealth {
        let mut h = TraceHealth {
            stacks: table.stacks.len() as u64,
            record_bytes: table.record_bytes(),
            bad_records: table.bad.len() as u64,
            ..TraceHealth::default()
        };
        for w in walks {
            let traced_heap = w.blocks.iter().any(|b| b.trace != 0);
            for b in w.blocks.iter().filter(|b| is_user_busy(b)) {
                h.busy_blocks += 1;
                h.busy_bytes += b.size;
                if b.trace != 0 && table.get(w.bits, b.trace).is_some() {
                    h.traced_blocks += 1;
                    h.traced_bytes += b.size;
                } else if traced_heap {
                    h.untraced_on_traced_heaps += 1;
                }
            }
        }
        h
    }

    /// Whether the records come close to the stack trace database's default reservation (16 MB on
    /// x86, 24 MB on x64 per the reference's observations), so that later allocations may have
    /// gone unrecorded.
    pub fn looks_full(&self, bits: u32) -> bool {
        let reserve: u64 = if bits == 64 { 24 << 20 } else { 16 << 20 };
        self.record_bytes * 10 >= reserve * 9
    }
}

/// The ranking.
#[derive(Clone, Debug)]
pub struct Top {
    /// What it is ranked by.
    pub by: By,
    /// Trace health.
    pub health: TraceHealth,
    /// Entries, most bytes first.
    pub entries: Vec<Entry>,
}

/// `module!function` when symbols name the frame, else the call site `module+offset`.
fn function_key(sym: &Symbolizer, a: u64) -> String {
    let f = sym.frame(a);
    match (f.module, &f.function) {
        (Some(m), Some((name, _))) => format!("{}!{}", sym.modules().get(m).short, name),
        _ => sym.display(a),
    }
}

/// Rank the busy user blocks of `walks`.
pub fn rank(
    walks: &[HeapWalk],
    table: &StackTable,
    sym: &Symbolizer,
    skip: &SkipList,
    by: By,
) -> Top {
    let health = TraceHealth::measure(walks, table);
    let mut acc: HashMap<String, Entry> = HashMap::new();
    // The allocator frame of each distinct stack, computed once.
    let mut allocator: HashMap<(u32, u64), Option<u64>> = HashMap::new();
    for w in walks {
        for b in w.blocks.iter().filter(|b| is_user_busy(b)) {
            let stack = (b.trace != 0).then(|| table.get(w.bits, b.trace)).flatten();
            let (key, traced) = match (by, stack) {
                (By::Size, _) => (format!("{:#x}", b.size), stack.is_some()),
                (By::Heap, _) => (format!("{:#x}", w.heap), stack.is_some()),
                (_, None) => (NO_STACK.to_string(), false),
                (By::Stack, Some(s)) => (format!("{:#x}", s.record), true),
                (By::Module | By::Function, Some(s)) => {
                    let a = *allocator
                        .entry((s.bits, s.record))
                        .or_insert_with(|| skip.allocator(sym, s));
                    let key = match a {
                        None => NO_STACK.to_string(),
                        Some(a) if by == By::Module => {
                            let f = sym.frame(a);
                            f.module
                                .map(|m| sym.modules().get(m).name.clone())
                                .unwrap_or_else(|| "(no module)".into())
                        }
                        Some(a) => function_key(sym, a),
                    };
                    (key, true)
                }
            };
            let e = acc.entry(key.clone()).or_insert_with(|| Entry {
                key,
                count: 0,
                bytes: 0,
                stack: (by == By::Stack).then(|| stack.cloned()).flatten(),
                traced,
            });
            e.count += 1;
            e.bytes += b.size;
        }
    }
    let mut entries: Vec<Entry> = acc.into_values().collect();
    entries.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then(b.count.cmp(&a.count))
            .then(a.key.cmp(&b.key))
    });
    Top {
        by,
        health,
        entries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("rtl*allocateheap*", "rtlpallocateheapinternal"));
        assert!(glob("malloc", "malloc"));
        assert!(!glob("malloc", "malloc_base"));
        assert!(glob("_malloc_*", "_malloc_base"));
        assert!(glob("*!operator new", "crash!operator new"));
        assert!(glob("msvcr*", "msvcr120"));
        assert!(!glob("msvcr*", "msvcp140"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
    }
}
