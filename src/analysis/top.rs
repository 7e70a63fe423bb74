//! Ranking outstanding memory by module, function, call stack, size or heap (`heapdiag top`),
//! and the health of the +ust traces behind it.
//!
//! A block's allocator is the first frame of its stack that is not allocator plumbing: ntdll's heap
//! internals, the CRT's `malloc`/`operator new`/`calloc`/`realloc`, `HeapAlloc`, `LocalAlloc`,
//! `GlobalAlloc`, `SysAllocString*`, `CoTaskMemAlloc`, … (by function name when symbols are loaded;
//! without symbols, leading frames in ntdll, kernel32, kernelbase and the CRT DLLs). The list is
//! built in ([`DEFAULT_SKIP`]) and extendable with patterns.

use crate::analysis::heaps::is_user_busy;
use crate::analysis::types::{TypeLabels, UNKNOWN};
use crate::fasthash::{FastMap, FastSet};
use crate::heap::HeapWalk;
use crate::stacks::symbols::Symbolizer;
use crate::stacks::{Stack, StackTable};
use crate::symsrv::name::printable;
use rayon::prelude::*;
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

/// Modules whose frames are always allocator plumbing: ntdll, and the WoW64 layer that carries a
/// 32-bit process's calls into the 64-bit ntdll (so that a stack of system frames alone is
/// attributed to ntdll in both worlds).
pub const SYSTEM_MODULES: &[&str] = &["ntdll", "wow64", "wow64cpu", "wow64win"];

/// Modules whose leading frames are allocator plumbing when no symbols name them.
pub const DEFAULT_SKIP_MODULES: &[&str] = &[
    "ntdll",
    "wow64",
    "wow64cpu",
    "wow64win",
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
            (Some(func), Some(m)) => {
                self.functions.iter().any(|p| glob(p, func)) || SYSTEM_MODULES.contains(&m.as_str())
            }
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
    /// What the block holds: its C++ class (vtable) or text ([`crate::analysis::types`]).
    Type,
}

impl By {
    /// `module`, `function`, `stack`, `size`, `heap`, `type`.
    pub fn name(self) -> &'static str {
        match self {
            By::Module => "module",
            By::Function => "function",
            By::Stack => "stack",
            By::Size => "size",
            By::Heap => "heap",
            By::Type => "type",
        }
    }
}

/// How a ranking is ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    /// Most bytes first (`top`, `heaps --stat`), or most growth in bytes first (`diff`, UMDH's
    /// order).
    Bytes,
    /// Most blocks first, or most growth in blocks first (`diff`).
    Count,
    /// `diff` only: the largest relative growth of bytes first (keys new in the newer dump first).
    Growth,
}

impl Sort {
    /// `bytes`, `count`, `growth`.
    pub fn name(self) -> &'static str {
        match self {
            Sort::Bytes => "bytes",
            Sort::Count => "count",
            Sort::Growth => "growth",
        }
    }
}

/// As its name.
impl serde::Serialize for Sort {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// As its name.
impl serde::Serialize for By {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
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
    /// The requested size (for `--by size`).
    pub size: Option<u64>,
    /// The stack's blocks by size (for `--by stack`): (size, count), most blocks first.
    pub sizes: Vec<(u64, u64)>,
    /// The stack's allocator frame (for `--by stack`): its first frame that is not plumbing.
    pub allocator: Option<u64>,
}

/// The order of a ranking: most bytes (or blocks) first, then most blocks (or bytes), then by key.
pub fn order(sort: Sort) -> impl Fn(&Entry, &Entry) -> std::cmp::Ordering {
    move |a, b| {
        let (x, y) = if sort == Sort::Count {
            (b.count.cmp(&a.count), b.bytes.cmp(&a.bytes))
        } else {
            (b.bytes.cmp(&a.bytes), b.count.cmp(&a.count))
        };
        x.then(y).then(a.key.cmp(&b.key))
    }
}

/// Sizes with their counts, most blocks first (then the larger size).
pub fn by_count(sizes: impl IntoIterator<Item = (u64, u64)>) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = sizes.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
    v
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
    /// The unreadable records busy blocks point to, with how many blocks point to each, by
    /// address.
    pub bad: Vec<(u64, u64)>,
}

impl TraceHealth {
    /// Measure from the per-heap aggregation of busy user blocks.
    fn measure(agg: &[HeapAgg], table: &StackTable) -> TraceHealth {
        let mut h = TraceHealth {
            stacks: table.stacks.len() as u64,
            record_bytes: table.record_bytes(),
            bad_records: table.bad.len() as u64,
            ..TraceHealth::default()
        };
        let mut bad: FastMap<u64, u64> = FastMap::default();
        for a in agg {
            for (&record, &(count, bytes)) in &a.by_trace {
                h.busy_blocks += count;
                h.busy_bytes += bytes;
                if record != 0 && table.get(a.bits, record).is_some() {
                    h.traced_blocks += count;
                    h.traced_bytes += bytes;
                } else if record != 0 {
                    // Recorded, but the record is damaged or missing: not "untraced".
                    *bad.entry(record).or_default() += count;
                } else if a.traced_heap {
                    h.untraced_on_traced_heaps += count;
                }
            }
        }
        h.bad = bad.into_iter().collect();
        h.bad.sort_unstable();
        h
    }

    /// Measure the busy user blocks of `walks` against the stacks of `table`.
    pub fn of(walks: &[HeapWalk], table: &StackTable) -> TraceHealth {
        let agg: Vec<HeapAgg> = walks.par_iter().map(|w| aggregate(w, None)).collect();
        TraceHealth::measure(&agg, table)
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
    /// How the entries are ordered.
    pub sort: Sort,
    /// Entries, in `sort` order.
    pub entries: Vec<Entry>,
}

/// `module!function` when symbols name the frame, else the call site `module+offset` (the
/// frame's text); control characters escaped.
fn function_key(sym: &Symbolizer, a: u64) -> String {
    let f = sym.frame(a);
    match (f.module, &f.function) {
        (Some(m), Some((name, _))) => {
            printable(&format!("{}!{}", sym.modules().get(m).short, name)).into_owned()
        }
        _ => sym.display(a),
    }
}

/// Busy user blocks of one heap, aggregated by stack record (0 for none) and by size (count,
/// bytes).
struct HeapAgg {
    heap: u64,
    bits: u32,
    traced_heap: bool,
    by_trace: FastMap<u64, (u64, u64)>,
    by_size: FastMap<u64, (u64, u64)>,
    by_label: FastMap<u32, (u64, u64)>,
}

/// Aggregate the busy user blocks of `w`; `labels` are their type labels (ids, in the walk's
/// block order), when ranking by type.
fn aggregate(w: &HeapWalk, labels: Option<&[u32]>) -> HeapAgg {
    let mut a = HeapAgg {
        heap: w.heap,
        bits: w.bits,
        traced_heap: w.blocks.iter().any(|b| b.trace != 0),
        by_trace: FastMap::default(),
        by_size: FastMap::default(),
        by_label: FastMap::default(),
    };
    for (k, b) in w.blocks.iter().enumerate().filter(|(_, b)| is_user_busy(b)) {
        let e = a.by_trace.entry(b.trace).or_default();
        e.0 += 1;
        e.1 += b.size;
        let e = a.by_size.entry(b.size).or_default();
        e.0 += 1;
        e.1 += b.size;
        if let Some(&id) = labels.and_then(|l| l.get(k)) {
            let e = a.by_label.entry(id).or_default();
            e.0 += 1;
            e.1 += b.size;
        }
    }
    a
}

/// The blocks of the stacks `wanted` ((bits, record)) by size: (bits, record) → size → count. A
/// second pass over the blocks, for the few stacks a view shows (a map of every stack's sizes
/// would be nearly as large as the blocks).
pub fn stack_sizes(
    walks: &[HeapWalk],
    wanted: &FastSet<(u32, u64)>,
) -> FastMap<(u32, u64), FastMap<u64, u64>> {
    walks
        .par_iter()
        .map(|w| {
            let mut m: FastMap<(u32, u64), FastMap<u64, u64>> = FastMap::default();
            for b in w.blocks.iter().filter(|b| b.trace != 0 && is_user_busy(b)) {
                if wanted.contains(&(w.bits, b.trace)) {
                    *m.entry((w.bits, b.trace))
                        .or_default()
                        .entry(b.size)
                        .or_default() += 1;
                }
            }
            m
        })
        .reduce(FastMap::default, |mut a, b| {
            for (k, sizes) in b {
                let e = a.entry(k).or_default();
                for (size, n) in sizes {
                    *e.entry(size).or_default() += n;
                }
            }
            a
        })
}

/// A walk's blocks by type label: `(label, count, bytes)`, blocks without a label (none were
/// given for this walk) as unknown.
fn type_rows(a: &HeapAgg, labels: Option<&TypeLabels>) -> Vec<(String, u64, u64)> {
    let mut rows = Vec::new();
    let (mut count, mut bytes) = (0, 0);
    for (&id, &(c, b)) in &a.by_label {
        let name = labels.and_then(|l| l.names.get(id as usize));
        rows.push((name.map_or(UNKNOWN.into(), Clone::clone), c, b));
        count += c;
        bytes += b;
    }
    let all = a
        .by_trace
        .values()
        .fold((0, 0), |acc, v| (acc.0 + v.0, acc.1 + v.1));
    if all.0 > count {
        rows.push((UNKNOWN.into(), all.0 - count, all.1 - bytes));
    }
    rows
}

/// The key of stack `s` when ranking by stack, module or function.
fn stack_key(by: By, s: &Stack, (sym, skip): (&Symbolizer, &SkipList)) -> String {
    match by {
        By::Stack => format!("{:#x}", s.record),
        _ => match skip.allocator(sym, s) {
            None => NO_STACK.to_string(),
            Some(f) if by == By::Module => sym
                .frame(f)
                .module
                .map(|m| sym.modules().get(m).name.clone())
                .unwrap_or_else(|| "(no module)".into()),
            Some(f) => function_key(sym, f),
        },
    }
}

/// Rank the busy user blocks of `walks` by `by`, in `sort` order. Ranked by stack, the first
/// `sizes_for` entries get their blocks by size. Ranking [`By::Type`] needs `labels`, the
/// blocks' type labels (blocks of a walk without labels count as unknown).
pub fn rank(
    walks: &[HeapWalk],
    table: &StackTable,
    (sym, skip): (&Symbolizer, &SkipList),
    (by, sort): (By, Sort),
    sizes_for: usize,
    labels: Option<&TypeLabels>,
) -> Top {
    let labels = labels.filter(|_| by == By::Type);
    let agg: Vec<HeapAgg> = walks
        .par_iter()
        .enumerate()
        .map(|(k, w)| aggregate(w, labels.and_then(|l| l.per_walk.get(k)).map(Vec::as_slice)))
        .collect();
    let health = TraceHealth::measure(&agg, table);
    let mut acc: HashMap<String, Entry> = HashMap::new();
    let mut add = |key: String, count: u64, bytes: u64, stack: Option<&Stack>, traced: bool| {
        let e = acc.entry(key.clone()).or_insert_with(|| Entry {
            key,
            count: 0,
            bytes: 0,
            stack: stack.cloned(),
            traced,
            size: None,
            sizes: Vec::new(),
            allocator: None,
        });
        e.count += count;
        e.bytes += bytes;
    };
    for a in &agg {
        match by {
            By::Size => {
                for (&size, &(count, bytes)) in &a.by_size {
                    add(format!("{size:#x}"), count, bytes, None, false);
                }
            }
            By::Heap => {
                let (count, bytes) = a
                    .by_trace
                    .values()
                    .fold((0, 0), |acc, v| (acc.0 + v.0, acc.1 + v.1));
                add(format!("{:#x}", a.heap), count, bytes, None, false);
            }
            By::Type => {
                for (key, count, bytes) in type_rows(a, labels) {
                    add(key, count, bytes, None, false);
                }
            }
            By::Stack | By::Module | By::Function => {
                for (&record, &(count, bytes)) in &a.by_trace {
                    let Some(s) = (record != 0).then(|| table.get(a.bits, record)).flatten() else {
                        add(NO_STACK.to_string(), count, bytes, None, false);
                        continue;
                    };
                    let key = stack_key(by, s, (sym, skip));
                    add(key, count, bytes, (by == By::Stack).then_some(s), true);
                }
            }
        }
    }
    let mut entries = finish(acc, by, sym, skip);
    entries.sort_by(order(sort));
    if by == By::Stack && sizes_for > 0 {
        let shown = sizes_for.min(entries.len());
        attach_sizes(walks, &mut entries[..shown]);
    }
    Top {
        by,
        health,
        sort,
        entries,
    }
}

/// The entries of `acc` with what their key implies filled in: the block size
/// (by size) or the attributed frame (by stack).
fn finish(acc: HashMap<String, Entry>, by: By, sym: &Symbolizer, skip: &SkipList) -> Vec<Entry> {
    let mut entries: Vec<Entry> = acc.into_values().collect();
    for e in &mut entries {
        match by {
            By::Size => e.size = u64::from_str_radix(e.key.trim_start_matches("0x"), 16).ok(),
            By::Stack => e.allocator = e.stack.as_ref().and_then(|s| skip.allocator(sym, s)),
            _ => {}
        }
    }
    entries
}

/// Gives each of `entries` (ranked by stack) its blocks by size.
fn attach_sizes(walks: &[HeapWalk], entries: &mut [Entry]) {
    let wanted: FastSet<(u32, u64)> = entries
        .iter()
        .filter_map(|e| e.stack.as_ref().map(|s| (s.bits, s.record)))
        .collect();
    let mut sizes = stack_sizes(walks, &wanted);
    for e in entries.iter_mut() {
        if let Some(m) = e
            .stack
            .as_ref()
            .and_then(|s| sizes.remove(&(s.bits, s.record)))
        {
            e.sizes = by_count(m);
        }
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
