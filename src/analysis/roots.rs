//! Where a conservative scan of the heaps starts (`heapdiag leaks`, docs/leaks.md): the live part
//! of each thread's stack (from its saved stack pointer to `TEB.StackBase`; a WoW64 thread has a
//! 64-bit and a 32-bit one), the threads' registers, the writable sections of loaded images, the
//! TEBs and PEBs, the NT heaps' own headers, and with [`RootSet::More`] the other private memory that is not heap.
//!
//! Each root is memory to read as pointers of its world's width, or (registers) values. What the
//! dump lacks is said in [`Roots::notes`], never guessed: a thread without a context record has
//! its whole committed stack scanned, a section not in the dump is left out and counted.

use crate::dump::Dump;
use crate::heap::HeapWalk;
use crate::process::images::Image;
use crate::process::{HeapKind, Process, Teb};
use crate::regions::{self, UsageKind};
use crate::value::plural;

/// Which memory besides stacks, registers, images, TEBs and PEBs counts as a root.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RootSet {
    /// Only the definition's roots (the default).
    #[default]
    Standard,
    /// Also committed private memory that is neither heap, stack, TEB nor PEB (VirtualAlloc'd
    /// buffers, other allocators' arenas): finds fewer leaks, since stale data there hides them.
    More,
}

/// What a root is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootKind {
    /// The live part of a thread's stack in one world.
    Stack {
        /// Thread id.
        thread: u32,
        /// 32 or 64.
        bits: u32,
    },
    /// A thread's register.
    Register {
        /// Thread id.
        thread: u32,
        /// Its name (`rax`, `esp`…).
        name: &'static str,
    },
    /// A writable section of a loaded image.
    Image {
        /// The module's file name.
        module: String,
        /// The section's name.
        section: String,
    },
    /// A thread's TEB in one world.
    Teb {
        /// Thread id.
        thread: u32,
        /// 32 or 64.
        bits: u32,
    },
    /// A PEB.
    Peb {
        /// 32 or 64.
        bits: u32,
    },
    /// An NT heap's own header (`_HEAP`, up to its first block).
    HeapHeader {
        /// The heap.
        heap: u64,
    },
    /// Other private memory (`--roots more`).
    Private,
}

impl RootKind {
    /// `stack of thread 0x1a2c (64-bit)`, `register rbx of thread 0x1a2c`, `app.exe .data`, …
    pub fn describe(&self) -> String {
        match self {
            RootKind::Stack { thread, bits } => format!("stack of thread {thread:#x} ({bits}-bit)"),
            RootKind::Register { thread, name } => format!("register {name} of thread {thread:#x}"),
            RootKind::Image { module, section } => format!("{module} {section}"),
            RootKind::Teb { thread, bits } => format!("TEB of thread {thread:#x} ({bits}-bit)"),
            RootKind::Peb { bits } => format!("PEB ({bits}-bit)"),
            RootKind::HeapHeader { heap } => format!("header of heap {heap:#x}"),
            RootKind::Private => "private memory".to_string(),
        }
    }
}

/// Memory whose pointer-size values are roots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootRange {
    /// What it is.
    pub kind: RootKind,
    /// First address.
    pub start: u64,
    /// One past the last.
    pub end: u64,
    /// Pointer width: 32 or 64.
    pub bits: u32,
}

/// Everything a scan starts from.
#[derive(Clone, Debug, Default)]
pub struct Roots {
    /// Memory to read.
    pub ranges: Vec<RootRange>,
    /// Register values: (the register, its value).
    pub registers: Vec<(RootKind, u64)>,
    /// What the dump lacks, one sentence each.
    pub notes: Vec<String>,
    /// How many roots the dump lacks: ranges not wholly in it, and modules whose writable
    /// sections cannot be found (pointers there are not seen, so blocks only they point to count
    /// as unreachable).
    pub missing: u64,
}

impl Roots {
    /// Bytes of memory the ranges span.
    pub fn bytes(&self) -> u64 {
        self.ranges.iter().map(|r| r.end - r.start).sum()
    }

    /// How many ranges are of a kind (`Stack`, `Image`…) that `pick` selects.
    pub fn count(&self, pick: impl Fn(&RootKind) -> bool) -> usize {
        self.ranges.iter().filter(|r| pick(&r.kind)).count()
    }
}

/// The roots of `process` in `dump`, whose heaps are `walks`.
pub fn collect(dump: &Dump, process: &Process, walks: &[HeapWalk], set: RootSet) -> Roots {
    let mut roots = Roots::default();
    for w in &process.worlds {
        for t in &w.tebs {
            thread(&mut roots, dump, t, w.bits);
        }
        if let Some(p) = &w.peb {
            roots.ranges.push(RootRange {
                kind: RootKind::Peb { bits: w.bits },
                start: p.address,
                end: p.address + 0x1000,
                bits: w.bits,
            });
        }
    }
    images(&mut roots, dump);
    heap_headers(&mut roots, walks);
    if set == RootSet::More {
        private(&mut roots, dump, process);
    }
    let mem = dump.memory();
    let missing: Vec<String> = roots
        .ranges
        .iter()
        .filter_map(|r| {
            let lacking = (r.end - r.start) - mem.captured_within(r.start, r.end);
            (lacking > 0)
                .then(|| format!("{} ({})", r.kind.describe(), crate::value::size(lacking)))
        })
        .collect();
    roots.missing += missing.len() as u64;
    if !missing.is_empty() {
        let n = missing.len() as u64;
        roots.notes.push(format!(
            "{} {} not (wholly) in the dump, so pointers there are not seen: {}",
            plural(n, "root"),
            if n == 1 { "is" } else { "are" },
            missing.join(", ")
        ));
    }
    roots
}

/// A thread's stack, registers and TEB in one world.
fn thread(roots: &mut Roots, dump: &Dump, t: &Teb, bits: u32) {
    let id = t.thread_id;
    let teb_size = if bits == 64 { 0x2000 } else { 0x1000 };
    roots.ranges.push(RootRange {
        kind: RootKind::Teb { thread: id, bits },
        start: t.address,
        end: t.address.saturating_add(teb_size),
        bits,
    });
    if let Some(c) = &t.context {
        roots.registers.extend(c.registers.iter().map(|&(name, v)| {
            let kind = RootKind::Register { thread: id, name };
            (kind, v)
        }));
    }
    // The stack: from the stack pointer to StackBase; without a usable stack pointer, the whole
    // committed part (from StackLimit), or the thread list's stack memory.
    let descriptor = dump
        .threads
        .iter()
        .find(|d| d.id == id && d.teb == t.address)
        .map(|d| (d.stack_start, d.stack_start.saturating_add(d.stack_size)));
    let (start, end) = match (t.stack_base, t.stack_limit, &t.context) {
        (Some(base), Some(limit), Some(c))
            if limit <= c.stack_pointer && c.stack_pointer <= base =>
        {
            (c.stack_pointer, base)
        }
        (Some(base), Some(limit), c) if limit < base => {
            roots.notes.push(match c {
                Some(c) => format!(
                    "thread {id:#x}: its {bits}-bit stack pointer {:#x} is outside its stack \
                     ({limit:#x}-{base:#x}); the whole committed stack is scanned",
                    c.stack_pointer
                ),
                None => format!(
                    "thread {id:#x}: no {bits}-bit register context in the dump; its whole \
                     committed {bits}-bit stack is scanned"
                ),
            });
            (limit, base)
        }
        _ => match descriptor {
            Some(d) if d.0 < d.1 => {
                roots.notes.push(format!(
                    "thread {id:#x}: its {bits}-bit TEB does not give its stack; the stack memory \
                     the thread list names is scanned"
                ));
                d
            }
            _ => {
                roots.notes.push(format!(
                    "thread {id:#x}: its {bits}-bit stack is not known; it is not scanned"
                ));
                return;
            }
        },
    };
    roots.ranges.push(RootRange {
        kind: RootKind::Stack { thread: id, bits },
        start,
        end,
        bits,
    });
}

/// The writable sections of every loaded image.
fn images(roots: &mut Roots, dump: &Dump) {
    let mem = dump.memory();
    let mut seen = Vec::new();
    let mut unreadable = Vec::new();
    for m in &dump.modules {
        if seen.contains(&m.base) {
            continue;
        }
        seen.push(m.base);
        match Image::read(&mem, m) {
            Ok(img) => roots.ranges.extend(
                img.sections
                    .iter()
                    .filter(|s| s.writable && s.start < s.end)
                    .map(|s| RootRange {
                        kind: RootKind::Image {
                            module: m.file_name().to_string(),
                            section: s.name.clone(),
                        },
                        start: s.start,
                        end: s.end,
                        bits: img.bits,
                    }),
            ),
            Err(why) => unreadable.push(why),
        }
    }
    roots.missing += unreadable.len() as u64;
    if !unreadable.is_empty() {
        roots.notes.push(format!(
            "the writable sections of {} cannot be found, so pointers there are not seen: {}",
            plural(unreadable.len() as u64, "module"),
            unreadable.join("; ")
        ));
    }
}

/// Each walked NT heap's header: the `_HEAP` structure and its first segment's header, up to the
/// first block. Windows allocates some of a heap's own bookkeeping (the free-list index
/// `BlocksIndex` of Windows 7 heaps, tag tables) as ordinary busy blocks that only the header
/// points to; they are not leaks.
fn heap_headers(roots: &mut Roots, walks: &[HeapWalk]) {
    for w in walks.iter().filter(|w| w.walked && w.kind == HeapKind::Nt) {
        if let Some(c) = w
            .coverage
            .iter()
            .find(|c| c.segment == w.heap && c.header > 0)
        {
            roots.ranges.push(RootRange {
                kind: RootKind::HeapHeader { heap: w.heap },
                start: w.heap,
                end: w.heap.saturating_add(c.header),
                bits: w.bits,
            });
        }
    }
}

/// Committed private memory that is neither heap, stack, TEB, PEB nor image (`--roots more`).
fn private(roots: &mut Roots, dump: &Dump, process: &Process) {
    let map = regions::classify(dump, process);
    let bits = process.app_world().bits;
    roots.ranges.extend(
        map.regions
            .iter()
            .filter(|r| r.usage.kind == UsageKind::Unknown)
            .filter(|r| r.state.is_none_or(|s| s == regions::MEM_COMMIT))
            .filter(|r| r.kind.is_none_or(|k| k == regions::MEM_PRIVATE))
            .map(|r| RootRange {
                kind: RootKind::Private,
                start: r.base,
                end: r.end(),
                bits,
            }),
    );
}
