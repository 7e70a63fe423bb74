//! What a dump can and cannot answer, in plain words: the verdict `heapdiag info` prints.

use crate::analysis::top::TraceHealth;
use crate::dump::{Dump, MemorySource};
use crate::layout::{FLG_HEAP_PAGE_ALLOCS, FLG_USER_STACK_TRACE_DB};
use crate::process::{HeapKind, Process};

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

/// One question and its answer.
#[derive(Clone, Debug)]
pub struct Capability {
    /// Short key: `address_usage`, `heap_list`, `heap_contents`, `allocation_stacks`.
    pub key: &'static str,
    /// The question in words.
    pub question: &'static str,
    /// The answer.
    pub answer: Answer,
    /// One or two sentences: why, and what to do.
    pub reason: String,
}

/// Assess what `dump` can answer. `health`, when the heaps were walked, says how much of the busy
/// memory carries an allocation stack.
pub fn assess(dump: &Dump, process: &Process, health: Option<&TraceHealth>) -> Vec<Capability> {
    let image = process
        .main_module(&dump.modules)
        .map(|m| m.file_name().to_string())
        .unwrap_or_else(|| "app.exe".into());
    let mut out = Vec::new();

    let captured = dump.memory().captured_bytes();
    out.push(match (&dump.memory_info, captured) {
        (Some(info), _) => Capability {
            key: "address_usage",
            question: "address usage (heapdiag address)",
            answer: Answer::Yes,
            reason: format!("the MemoryInfoList stream describes {} regions of the whole address space", info.len()),
        },
        (None, 0) => Capability {
            key: "address_usage",
            question: "address usage (heapdiag address)",
            answer: Answer::No,
            reason: "the dump has neither a MemoryInfoList stream nor captured memory; take a dump with `procdump -ma`".into(),
        },
        (None, _) => Capability {
            key: "address_usage",
            question: "address usage (heapdiag address)",
            answer: Answer::Partial,
            reason: format!(
                "no MemoryInfoList stream: only the {captured} bytes of captured memory can be classified, and state, type and \
                 protection are unknown; `procdump -ma` writes the stream"
            ),
        },
    });

    let worlds_with_peb: Vec<_> = process.worlds.iter().filter(|w| w.peb.is_some()).collect();
    let heaps: Vec<_> = process.worlds.iter().flat_map(|w| w.heaps.iter()).collect();
    out.push(if worlds_with_peb.is_empty() {
        let why = process
            .worlds
            .iter()
            .flat_map(|w| w.notes.first())
            .next()
            .cloned()
            .unwrap_or_else(|| "no PEB was found".into());
        Capability {
            key: "heap_list",
            question: "which heaps exist",
            answer: Answer::No,
            reason: format!("{why}; take a dump with `procdump -ma`"),
        }
    } else {
        let listed: u64 = worlds_with_peb
            .iter()
            .map(|w| u64::from(w.peb.as_ref().map_or(0, |p| p.number_of_heaps)))
            .sum();
        let read = heaps.len() as u64;
        let (answer, reason) = if read == listed {
            (Answer::Yes, format!("the PEB lists {} and all are read", plural(listed, "heap")))
        } else if read == 0 {
            (
                Answer::No,
                format!(
                    "the PEB lists {}, but its ProcessHeaps array is not captured; take a dump with `procdump -ma`",
                    plural(listed, "heap")
                ),
            )
        } else {
            (
                Answer::Partial,
                format!(
                    "the PEB lists {} but only {read} could be read (the ProcessHeaps array is not fully captured)",
                    plural(listed, "heap")
                ),
            )
        };
        Capability {
            key: "heap_list",
            question: "which heaps exist",
            answer,
            reason,
        }
    });

    let captured_heaps = heaps
        .iter()
        .filter(|h| !matches!(h.kind, HeapKind::NotCaptured))
        .count();
    out.push(if heaps.is_empty() || captured_heaps == 0 {
        Capability {
            key: "heap_contents",
            question: "heap blocks and leaks (heaps, blocks, top)",
            answer: Answer::No,
            reason: if dump.memory_source == MemorySource::List64 {
                "heap memory is not captured in this dump; take one with `procdump -ma`".into()
            } else {
                "heap memory not captured: this is a minidump without full memory; take one with `procdump -ma`".into()
            },
        }
    } else if captured_heaps < heaps.len() {
        Capability {
            key: "heap_contents",
            question: "heap blocks and leaks (heaps, blocks, top)",
            answer: Answer::Partial,
            reason: format!(
                "{} of {} heaps are captured; the others are not in the dump (take one with `procdump -ma`)",
                captured_heaps,
                heaps.len()
            ),
        }
    } else {
        Capability {
            key: "heap_contents",
            question: "heap blocks and leaks (heaps, blocks, top)",
            answer: Answer::Yes,
            reason: format!(
                "every listed heap is captured ({})",
                plural(heaps.len() as u64, "heap")
            ),
        }
    });

    let app = process.app_world();
    out.push(match &app.peb {
        None => Capability {
            key: "allocation_stacks",
            question: "allocation call stacks (+ust)",
            answer: Answer::No,
            reason: format!(
                "the application's {}-bit PEB is not in the dump, so whether +ust was on cannot be told",
                app.bits
            ),
        },
        Some(p) if p.nt_global_flag & (FLG_USER_STACK_TRACE_DB | FLG_HEAP_PAGE_ALLOCS) != 0 => {
            let mut reason = if p.nt_global_flag & FLG_USER_STACK_TRACE_DB != 0 {
                format!(
                    "+ust was on (NtGlobalFlag {:#x}): heap blocks allocated after the process started record their stacks",
                    p.nt_global_flag
                )
            } else {
                format!(
                    "+hpa was on (NtGlobalFlag {:#x}): page-heap blocks record their allocation stacks; blocks of normal heaps do not (add +ust for those)",
                    p.nt_global_flag
                )
            };
            let mut answer = Answer::Yes;
            if let Some(h) = health.filter(|h| h.busy_blocks > 0) {
                let share = |a: u64, b: u64| a as f64 * 100.0 / b as f64;
                reason.push_str(&format!(
                    "; {} of {} busy blocks ({:.1}%, {:.1}% of busy bytes) carry one, {} distinct stacks",
                    h.traced_blocks,
                    h.busy_blocks,
                    share(h.traced_blocks, h.busy_blocks),
                    share(h.traced_bytes, h.busy_bytes),
                    h.stacks
                ));
                if h.untraced_on_traced_heaps > 0 {
                    reason.push_str(&format!(
                        "; {} busy blocks on traced heaps have none (allocated before tracing started or when the database was full)",
                        h.untraced_on_traced_heaps
                    ));
                }
                if h.traced_blocks == 0 {
                    answer = Answer::No;
                } else if h.traced_blocks < h.busy_blocks {
                    answer = Answer::Partial;
                }
                if h.looks_full(app.bits) {
                    reason.push_str("; the stack records nearly fill the database's default size: later allocations may be missing");
                }
            }
            Capability {
                key: "allocation_stacks",
                question: "allocation call stacks (+ust)",
                answer,
                reason,
            }
        }
        Some(p) => Capability {
            key: "allocation_stacks",
            question: "allocation call stacks (+ust)",
            answer: Answer::No,
            reason: format!(
                "no allocation stacks: +ust was off (NtGlobalFlag {:#x}); enable it with `gflags -i {image} +ust` and restart the process",
                p.nt_global_flag
            ),
        },
    });
    if let Some(p) = &app.peb {
        if p.nt_global_flag & FLG_HEAP_PAGE_ALLOCS != 0 {
            out.push(Capability {
                key: "page_heap",
                question: "full page heap (+hpa)",
                answer: Answer::Yes,
                reason: "+hpa was on: allocations went through the debug page heap".into(),
            });
        }
    }
    out
}

/// `1 heap`, `2 heaps`.
fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
