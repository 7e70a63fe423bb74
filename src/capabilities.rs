//! What a dump can and cannot answer, in plain words: the verdict `heapdiag info` prints, and the
//! reasons the other commands attach when the dump cannot give what they need.
//!
//! Each [`Capability`] is judged by one function. A command declares the capabilities it needs
//! (`commands::needs`) and [`unmet`] gives, in the same words `info` uses, the reason for each one
//! the dump cannot answer.

use crate::analysis::top::TraceHealth;
use crate::dump::{Dump, MemorySource};
use crate::layout::{FLG_HEAP_PAGE_ALLOCS, FLG_USER_STACK_TRACE_DB};
use crate::process::{HeapKind, Process};
use crate::value::{pct, plural};
use serde::{Serialize, Serializer};

/// Why a busy block on a heap that records stacks has none.
pub const UNTRACED: &str = "allocated before tracing started or when the stack database was full";

/// A question a dump may or may not answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    /// The address-space tables (`heapdiag address`).
    AddressUsage,
    /// The list of heaps.
    HeapList,
    /// The heaps' blocks.
    HeapContents,
    /// The allocation call stacks (+ust, or +hpa for page-heap blocks).
    AllocationStacks,
    /// The full page heap (+hpa); only judged when it was on.
    PageHeap,
}

impl Capability {
    /// Every capability, in the order `info` lists them.
    pub const ALL: [Capability; 5] = [
        Capability::AddressUsage,
        Capability::HeapList,
        Capability::HeapContents,
        Capability::AllocationStacks,
        Capability::PageHeap,
    ];

    /// Short key: `address_usage`, `heap_list`, `heap_contents`, `allocation_stacks`, `page_heap`.
    pub fn key(self) -> &'static str {
        match self {
            Capability::AddressUsage => "address_usage",
            Capability::HeapList => "heap_list",
            Capability::HeapContents => "heap_contents",
            Capability::AllocationStacks => "allocation_stacks",
            Capability::PageHeap => "page_heap",
        }
    }

    /// The question in words.
    pub fn question(self) -> &'static str {
        match self {
            Capability::AddressUsage => "address usage (heapdiag address)",
            Capability::HeapList => "which heaps exist",
            Capability::HeapContents => "heap blocks and leaks (heaps, blocks, top, leaks)",
            Capability::AllocationStacks => "allocation call stacks (+ust)",
            Capability::PageHeap => "full page heap (+hpa)",
        }
    }
}

/// How well a question can be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Fully.
    Yes,
    /// In part; the reason says which part.
    Partial,
    /// Not at all; the reason says why and how to get a dump that can.
    No,
}

impl Answer {
    /// `yes`, `partly`, `no`.
    pub fn word(self) -> &'static str {
        match self {
            Answer::Yes => "yes",
            Answer::Partial => "partly",
            Answer::No => "no",
        }
    }
}

/// As its word.
impl Serialize for Answer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.word())
    }
}

/// One question and its answer.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// Which capability.
    #[serde(skip)]
    pub capability: Capability,
    /// Its key.
    pub key: &'static str,
    /// Its question.
    pub question: &'static str,
    /// The answer.
    pub answer: Answer,
    /// One or two sentences: why, and what to do.
    pub reason: String,
}

impl Verdict {
    fn new(capability: Capability, answer: Answer, reason: impl Into<String>) -> Self {
        Verdict {
            capability,
            key: capability.key(),
            question: capability.question(),
            answer,
            reason: reason.into(),
        }
    }
}

/// What the judgements look at. `health`, when the heaps were walked, says how much of the busy
/// memory carries an allocation stack.
#[derive(Clone, Copy)]
pub struct Facts<'a> {
    /// The dump.
    pub dump: &'a Dump,
    /// Its process model.
    pub process: &'a Process,
    /// The trace health of the walked heaps.
    pub health: Option<&'a TraceHealth>,
}

/// Judge one capability; `None` for a capability that does not apply (the page heap when +hpa
/// was off).
pub fn judge(c: Capability, f: Facts<'_>) -> Option<Verdict> {
    match c {
        Capability::AddressUsage => Some(address_usage(f.dump)),
        Capability::HeapList => Some(heap_list(f.dump, f.process)),
        Capability::HeapContents => Some(heap_contents(f.dump, f.process)),
        Capability::AllocationStacks => Some(allocation_stacks(f)),
        Capability::PageHeap => page_heap(f.process),
    }
}

/// Assess everything `dump` can answer, in [`Capability::ALL`] order.
pub fn assess(f: Facts<'_>) -> Vec<Verdict> {
    Capability::ALL
        .iter()
        .filter_map(|&c| judge(c, f))
        .collect()
}

/// The reasons, in `info`'s words, why the dump cannot answer what `needs` asks (the
/// capabilities answered "no").
pub fn unmet(needs: &[Capability], f: Facts<'_>) -> Vec<String> {
    needs
        .iter()
        .filter_map(|&c| judge(c, f))
        .filter(|v| v.answer == Answer::No)
        .map(|v| v.reason)
        .collect()
}

fn address_usage(dump: &Dump) -> Verdict {
    let c = Capability::AddressUsage;
    let captured = dump.memory().captured_bytes();
    match (&dump.memory_info, captured) {
        (Some(info), _) => Verdict::new(
            c,
            Answer::Yes,
            format!(
                "the MemoryInfoList stream describes {} regions of the whole address space",
                info.len()
            ),
        ),
        (None, 0) => Verdict::new(
            c,
            Answer::No,
            "the dump has neither a MemoryInfoList stream nor captured memory; take a dump with \
             `procdump -ma`",
        ),
        (None, _) => Verdict::new(
            c,
            Answer::Partial,
            format!(
                "no MemoryInfoList stream: only the {} of captured memory can be classified, and \
                 state, type and protection are unknown; `procdump -ma` writes the stream",
                plural(captured, "byte")
            ),
        ),
    }
}

/// What to do about memory missing from the dump: copy the file again when it is truncated, else
/// take a full dump.
fn remedy(dump: &Dump) -> String {
    match dump.truncated_bytes() {
        0 => "take a dump with `procdump -ma`".to_string(),
        n => format!(
            "the file is truncated ({} of captured memory lie past its end): copy the whole dump \
             again, or take a new one",
            plural(n, "byte")
        ),
    }
}

fn heap_list(dump: &Dump, process: &Process) -> Verdict {
    let c = Capability::HeapList;
    let with_peb: Vec<_> = process.worlds.iter().filter(|w| w.peb.is_some()).collect();
    if with_peb.is_empty() {
        let why = process
            .worlds
            .iter()
            .flat_map(|w| w.notes.first())
            .next()
            .cloned()
            .unwrap_or_else(|| "no PEB was found".into());
        return Verdict::new(c, Answer::No, format!("{why}; {}", remedy(dump)));
    }
    let listed: u64 = with_peb
        .iter()
        .map(|w| u64::from(w.peb.as_ref().map_or(0, |p| p.number_of_heaps)))
        .sum();
    let listed_text = plural(listed, "heap");
    let read: u64 = process.worlds.iter().map(|w| w.heaps.len() as u64).sum();
    if read == listed {
        Verdict::new(
            c,
            Answer::Yes,
            format!("the PEB lists {listed_text} and all are read"),
        )
    } else if read == 0 {
        Verdict::new(
            c,
            Answer::No,
            format!(
                "the PEB lists {listed_text}, but its ProcessHeaps array is not captured; {}",
                remedy(dump)
            ),
        )
    } else {
        Verdict::new(
            c,
            Answer::Partial,
            format!(
                "the PEB lists {listed_text} but only {read} could be read (the ProcessHeaps array \
                 is not fully captured)"
            ),
        )
    }
}

fn heap_contents(dump: &Dump, process: &Process) -> Verdict {
    let c = Capability::HeapContents;
    let heaps: Vec<_> = process.worlds.iter().flat_map(|w| w.heaps.iter()).collect();
    let captured = heaps
        .iter()
        .filter(|h| !matches!(h.kind, HeapKind::NotCaptured))
        .count();
    let truncated = dump.truncated_bytes() > 0;
    if captured == 0 {
        let reason = if truncated {
            format!("no heap is left in what the file holds; {}", remedy(dump))
        } else if dump.memory_source != MemorySource::List64 {
            "heap memory not captured: this is a minidump without full memory; take one with \
             `procdump -ma`"
                .to_string()
        } else if heaps.is_empty() {
            "no heap was found in the dump; take one with `procdump -ma`".to_string()
        } else {
            "heap memory is not captured in this dump; take one with `procdump -ma`".to_string()
        };
        Verdict::new(c, Answer::No, reason)
    } else if captured < heaps.len() {
        Verdict::new(
            c,
            Answer::Partial,
            format!(
                "{captured} of {} are captured; the others are not in the dump ({})",
                plural(heaps.len() as u64, "heap"),
                remedy(dump)
            ),
        )
    } else if truncated {
        Verdict::new(
            c,
            Answer::Partial,
            format!(
                "{} found in what the file holds {} read, but heaps and blocks in the part cut off \
                 are missing; {}",
                plural(heaps.len() as u64, "heap"),
                if heaps.len() == 1 { "is" } else { "are" },
                remedy(dump)
            ),
        )
    } else {
        Verdict::new(
            c,
            Answer::Yes,
            format!(
                "every listed heap is captured ({})",
                plural(heaps.len() as u64, "heap")
            ),
        )
    }
}

fn allocation_stacks(f: Facts<'_>) -> Verdict {
    let c = Capability::AllocationStacks;
    let app = f.process.app_world();
    let Some(p) = &app.peb else {
        return Verdict::new(
            c,
            Answer::No,
            format!(
                "the application's {}-bit PEB is not in the dump, so whether +ust was on cannot be \
                 told",
                app.bits
            ),
        );
    };
    let flag = p.nt_global_flag;
    if flag & (FLG_USER_STACK_TRACE_DB | FLG_HEAP_PAGE_ALLOCS) == 0 {
        let image = f
            .process
            .main_module(&f.dump.modules)
            .map_or("app.exe", |m| m.file_name());
        return Verdict::new(
            c,
            Answer::No,
            format!(
                "no allocation stacks: +ust was off (NtGlobalFlag {flag:#x}); enable it with \
                 `gflags -i {image} +ust` and restart the process"
            ),
        );
    }
    let mut reason = if flag & FLG_USER_STACK_TRACE_DB != 0 {
        format!(
            "+ust was on (NtGlobalFlag {flag:#x}): heap blocks allocated after the process started \
             record their stacks"
        )
    } else {
        format!(
            "+hpa was on (NtGlobalFlag {flag:#x}): page-heap blocks record their allocation \
             stacks; blocks of normal heaps do not (add +ust for those)"
        )
    };
    let Some(h) = f.health.filter(|h| h.busy_blocks > 0) else {
        return Verdict::new(c, Answer::Yes, reason);
    };
    reason.push_str(&trace_share(h, app.bits));
    let answer = if h.traced_blocks == 0 {
        Answer::No
    } else if h.traced_blocks < h.busy_blocks {
        Answer::Partial
    } else {
        Answer::Yes
    };
    Verdict::new(c, answer, reason)
}

/// `; N of M busy blocks (…) carry one, …`: how much of the busy memory has a stack.
fn trace_share(h: &TraceHealth, bits: u32) -> String {
    let mut s = format!(
        "; {} of {} ({:.1}%, {:.1}% of busy bytes) carry one, {}",
        h.traced_blocks,
        plural(h.busy_blocks, "busy block"),
        pct(h.traced_blocks, h.busy_blocks),
        pct(h.traced_bytes, h.busy_bytes),
        plural(h.stacks, "distinct stack")
    );
    if h.untraced_on_traced_heaps > 0 {
        s.push_str(&format!(
            "; {} on traced heaps {} none ({UNTRACED})",
            plural(h.untraced_on_traced_heaps, "busy block"),
            if h.untraced_on_traced_heaps == 1 {
                "has"
            } else {
                "have"
            }
        ));
    }
    let lost: u64 = h.bad.iter().map(|(_, n)| n).sum();
    if lost > 0 {
        s.push_str(&format!(
            "; {} {} to stack records that cannot be read",
            plural(lost, "busy block"),
            if lost == 1 { "points" } else { "point" }
        ));
    }
    if h.looks_full(bits) {
        s.push_str(
            "; the stack records nearly fill the database's default size: later allocations may \
             be missing",
        );
    }
    s
}

fn page_heap(process: &Process) -> Option<Verdict> {
    let p = process.app_world().peb.as_ref()?;
    (p.nt_global_flag & FLG_HEAP_PAGE_ALLOCS != 0).then(|| {
        Verdict::new(
            Capability::PageHeap,
            Answer::Yes,
            "+hpa was on: allocations went through the debug page heap",
        )
    })
}
