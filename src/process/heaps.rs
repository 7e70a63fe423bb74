//! The heap list of a PEB and, per heap, its type and the address ranges it owns: NT heap
//! segments and VirtualAlloc'd blocks, segment-heap page segments and large allocations.
//!
//! This is what labels memory as Heap in `!address`; walking the blocks inside those ranges is the
//! heap walkers' job. Every list walk is bounded (by a hard cap and by a visited set), and a
//! structure that fails validation ends its list with a note instead of being guessed at.

use super::{OsVersion, Peb};
use crate::dump::memory::AddressSpace;
use crate::dump::streams::Module;
use crate::layout::nt_heap::{NtFamily, NtHeapLayout, SEGMENT_SIGNATURE};
use crate::layout::page_heap::{self, PageHeapLayout};
use crate::layout::segment_heap::{self, SegmentHeapLayout};
use crate::value::plural;
use std::collections::HashSet;

/// The most heaps a PEB may list before heapdiag calls the count absurd.
pub const MAX_HEAPS: u32 = 4096;
/// The most entries a heap list (segments, large blocks) may have before the walk stops.
const MAX_LIST: usize = 1 << 20;

/// An address range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
}

impl Range {
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.end - self.start
    }
}

/// What kind of heap a `ProcessHeaps` entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeapKind {
    /// NT heap (`_HEAP`, segment signature 0xFFEEFFEE).
    Nt,
    /// Segment heap (`_SEGMENT_HEAP`, signature 0xDDEEDDEE).
    Segment,
    /// Full page heap (`gflags +hpa`): the handle is a read-only page, the `_DPH_HEAP_ROOT`
    /// (signature 0xFFEEDDCC) follows it.
    PageHeap,
    /// The heap's memory is not in the dump.
    NotCaptured,
    /// Captured, but neither signature matches (the value read is kept).
    Unknown(u32),
}

impl HeapKind {
    /// `nt`, `segment`, `page heap`, `not captured`, `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            HeapKind::Nt => "nt",
            HeapKind::Segment => "segment",
            HeapKind::PageHeap => "page heap",
            HeapKind::NotCaptured => "not captured",
            HeapKind::Unknown(_) => "unknown",
        }
    }
}

/// A heap of a PEB's heap list.
#[derive(Clone, Debug)]
pub struct Heap {
    /// Heap address (the handle HeapCreate returned).
    pub address: u64,
    /// 32 or 64.
    pub bits: u32,
    /// Type.
    pub kind: HeapKind,
    /// NT heap segments (`BaseAddress .. + NumberOfPages × 4 KiB`), or segment-heap page segments
    /// plus the `_SEGMENT_HEAP` allocation itself.
    pub segments: Vec<Range>,
    /// VirtualAlloc'd (large) blocks: the allocation each occupies.
    pub large_blocks: Vec<Range>,
    /// The `_HEAP` layout family used (NT heaps).
    pub family: Option<NtFamily>,
    /// The `_SEGMENT_HEAP` layout used (segment heaps).
    pub segment_layout: Option<SegmentHeapLayout>,
    /// The build number of the ntdll that made the heap (10.0.x; 0 when unknown).
    pub build: u32,
    /// How the heap belongs with a page heap (`+hpa`), if it does.
    pub page: Option<PageHeapLink>,
    /// NT heaps: the committed bytes of its segments by its own accounting (NumberOfPages minus
    /// NumberOfUnCommittedPages), when every segment header is captured.
    pub own_committed: Option<u64>,
    /// Problems met while reading this heap, one sentence each.
    pub problems: Vec<String>,
}

/// A page heap and its normal heap (reference §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageHeapLink {
    /// This heap is a page heap (its `_DPH_HEAP_ROOT` one page after the handle).
    Root {
        /// Its normal heap (`_DPH_HEAP_ROOT.NormalHeap`), where light blocks and the allocations
        /// page heap does not take live.
        normal: Option<u64>,
        /// Light page heap (`ExtraFlags & 0x20000`): every block is in the normal heap.
        light: bool,
    },
    /// This NT heap is the normal heap of the page heap whose handle is given.
    Normal(u64),
}

/// Read the heap list of `peb` and describe each heap. Returns the heaps and notes about the list.
pub fn list(
    mem: &AddressSpace<'_>,
    peb: &Peb,
    bits: u32,
    ntdll: Option<&Module>,
    os: Option<OsVersion>,
) -> (Vec<Heap>, Vec<String>) {
    let mut notes = Vec::new();
    let mut addresses = process_heaps(mem, peb, bits, &mut notes);
    let (family, version) = family_of(ntdll, os);
    if version >= (10, 0, 26100) {
        merge_24h2_list(mem, peb, bits, ntdll, &mut addresses, &mut notes);
    }
    let page_heaps = page_heap_roots(mem, peb, bits, &mut notes);
    let addresses = with_page_heaps(addresses, &page_heaps);
    let mut heaps = describe_all(mem, &addresses, bits, (family, version), &mut notes);
    for h in &mut heaps {
        h.page = page_link(mem, h, &page_heaps);
    }
    (heaps, notes)
}

/// Heaps found without a heap list (the PEB or its ProcessHeaps array is not captured): the
/// allocations starting at `candidates` whose first bytes are an NT heap (a `_HEAP` whose
/// segment names itself as its heap) or a segment heap.
pub fn scan(
    mem: &AddressSpace<'_>,
    candidates: &[u64],
    bits: u32,
    ntdll: Option<&Module>,
    os: Option<OsVersion>,
) -> (Vec<Heap>, Vec<String>) {
    let mut notes = Vec::new();
    let found: Vec<u64> = candidates
        .iter()
        .copied()
        .filter(|&a| is_heap(mem, a, bits, false))
        .collect();
    if !found.is_empty() {
        notes.push(format!(
            "the heap list is not in the dump: {} found by {} signature{} in the captured memory (their ProcessHeaps order is unknown)",
            if found.len() == 1 { "1 heap was".to_string() } else { format!("{} heaps were", found.len()) },
            if found.len() == 1 { "its" } else { "their" },
            if found.len() == 1 { "" } else { "s" }
        ));
    }
    let heaps = describe_all(mem, &found, bits, family_of(ntdll, os), &mut notes);
    (heaps, notes)
}

/// Whether `a` starts a heap of a `bits`-bit world: an NT heap whose `_HEAP_SEGMENT.Heap` is
/// itself (an NT heap's other segments name their heap), a segment heap, or (`page`) a page heap
/// (its root one page further).
fn is_heap(mem: &AddressSpace<'_>, a: u64, bits: u32, page: bool) -> bool {
    let (sig_off, seg_heap) = if bits == 64 {
        (0x10, 0x28)
    } else {
        (0x08, 0x18)
    };
    match mem.read_u32(a.wrapping_add(sig_off)) {
        Ok(SEGMENT_SIGNATURE) => mem.read_ptr(a.wrapping_add(seg_heap), bits) == Ok(a),
        Ok(0xddee_ddee) => true,
        _ => {
            page && mem.read_u32(a.wrapping_add(page_heap::ROOT_OFFSET))
                == Ok(page_heap::ROOT_SIGNATURE)
        }
    }
}

/// The entries of `PEB.ProcessHeaps`. A count above `MaximumNumberOfHeaps` (or absurd) is capped;
/// entries that cannot be heaps (null, not page-aligned, or — when the count was absurd — without
/// a heap signature) are left out and counted in one note.
fn process_heaps(
    mem: &AddressSpace<'_>,
    peb: &Peb,
    bits: u32,
    notes: &mut Vec<String>,
) -> Vec<u64> {
    let mut count = peb.number_of_heaps;
    let absurd = count > MAX_HEAPS
        || (peb.maximum_number_of_heaps != 0 && count > peb.maximum_number_of_heaps);
    if absurd {
        let cap = MAX_HEAPS.min(peb.maximum_number_of_heaps.max(1)).min(count);
        notes.push(format!(
            "PEB at {:#x} claims {} heaps (maximum {}); reading at most {cap}",
            peb.address, count, peb.maximum_number_of_heaps
        ));
        count = cap;
    }
    let step = u64::from(bits / 8);
    let mut addresses = Vec::new();
    let mut rejected = 0u32;
    for i in 0..u64::from(count) {
        let at = peb.process_heaps.wrapping_add(i * step);
        match mem.read_ptr(at, bits) {
            Ok(a) if a == 0 || a % 0x1000 != 0 || (absurd && !is_heap(mem, a, bits, true)) => {
                rejected += 1;
            }
            Ok(a) => addresses.push(a),
            Err(_) => {
                notes.push(format!(
                    "the ProcessHeaps array at {:#x} is not captured, so {} of {} heaps are not listed",
                    peb.process_heaps,
                    count as u64 - i,
                    count
                ));
                // The PEB names the process heap itself: keep at least that one.
                if i == 0 && peb.process_heap != 0 {
                    addresses.push(peb.process_heap);
                    notes.push(format!(
                        "the process heap {:#x} is known from PEB.ProcessHeap",
                        peb.process_heap
                    ));
                }
                break;
            }
        }
    }
    if rejected > 0 {
        notes.push(format!(
            "{rejected} of the {count} ProcessHeaps entries at {:#x} are not heaps (null, not page-aligned{}) and are not listed",
            peb.process_heaps,
            if absurd { ", or without a heap signature" } else { "" }
        ));
    }
    addresses
}

/// Describe each heap; a note (also on each NT heap) when ntdll's version is outside the builds
/// whose layouts heapdiag knows.
fn describe_all(
    mem: &AddressSpace<'_>,
    addresses: &[u64],
    bits: u32,
    (family, version): (NtFamily, (u32, u32, u32)),
    notes: &mut Vec<String>,
) -> Vec<Heap> {
    let newest = (10, 0, 26100);
    let stale = (version > newest || version < (6, 1, 0)).then(|| {
        format!(
            "ntdll {}.{}.{} is {} the Windows builds whose heap layouts heapdiag knows (Windows 7 SP1 to \
             11 24H2); its heaps are read with the nearest known layout ({}): pass --symbols with its \
             ntdll.pdb for exact offsets",
            version.0,
            version.1,
            version.2,
            if version > newest { "newer than" } else { "older than" },
            family.name()
        )
    });
    let mut heaps: Vec<Heap> = addresses
        .iter()
        .map(|&a| describe(mem, a, bits, family, version.2))
        .collect();
    if let Some(n) = stale {
        for h in heaps.iter_mut().filter(|h| h.kind == HeapKind::Nt) {
            h.problems.push(n.clone());
        }
        notes.push(n);
    }
    heaps
}

/// How heap `h` belongs with a page heap of `page_heaps` (handle, normal heap, light).
fn page_link(
    mem: &AddressSpace<'_>,
    h: &Heap,
    page_heaps: &[(u64, Option<u64>, bool)],
) -> Option<PageHeapLink> {
    if let Some(&(_, normal, light)) = page_heaps.iter().find(|p| p.0 == h.address) {
        return Some(PageHeapLink::Root { normal, light });
    }
    if let Some(p) = page_heaps.iter().find(|p| p.1 == Some(h.address)) {
        return Some(PageHeapLink::Normal(p.0));
    }
    (h.kind == HeapKind::PageHeap).then(|| {
        let l = PageHeapLayout::new(h.bits);
        let root = h.address.wrapping_add(page_heap::ROOT_OFFSET);
        PageHeapLink::Root {
            normal: read_normal(mem, root, &l),
            light: read_light(mem, root, &l),
        }
    })
}

/// The page heaps of a world, as verifier links them (reference §4.1): `PEB.ProcessHeap` is the
/// process heap's page-heap handle when page heap is on (its root, one page further, signed
/// 0xFFEEDDCC), and every root is on the `NextHeap` list, whose head lies in verifier.dll's data
/// (the one link that is not a root). `PEB.ProcessHeaps` lists their normal heaps, not them.
/// Returns (handle, normal heap, light) in list order.
fn page_heap_roots(
    mem: &AddressSpace<'_>,
    peb: &Peb,
    bits: u32,
    notes: &mut Vec<String>,
) -> Vec<(u64, Option<u64>, bool)> {
    let l = PageHeapLayout::new(bits);
    let is_root = |r: u64| mem.read_u32(r) == Ok(page_heap::ROOT_SIGNATURE);
    let first = peb.process_heap.wrapping_add(page_heap::ROOT_OFFSET);
    if !is_root(first) {
        return Vec::new();
    }
    let link = first.wrapping_add(l.next_heap);
    let mut ring = walk_list(mem, link, bits).links;
    ring.push(link);
    let Some(head) = ring
        .iter()
        .copied()
        .find(|&k| !is_root(k.wrapping_sub(l.next_heap)))
    else {
        notes.push(format!(
            "the page heaps' NextHeap list from {link:#x} has no head; only the process heap's page heap is listed"
        ));
        return vec![(
            peb.process_heap,
            read_normal(mem, first, &l),
            read_light(mem, first, &l),
        )];
    };
    let walk = walk_list(mem, head, bits);
    if let Some(p) = walk.problem {
        notes.push(format!("page heap list: {p}"));
    }
    walk.links
        .iter()
        .map(|k| k.wrapping_sub(l.next_heap))
        .filter(|&r| is_root(r))
        .map(|r| {
            (
                r.wrapping_sub(page_heap::ROOT_OFFSET),
                read_normal(mem, r, &l),
                read_light(mem, r, &l),
            )
        })
        .collect()
}

fn read_normal(mem: &AddressSpace<'_>, root: u64, l: &PageHeapLayout) -> Option<u64> {
    mem.read_ptr(root.wrapping_add(l.normal_heap), l.bits)
        .ok()
        .filter(|&a| a != 0)
}

fn read_light(mem: &AddressSpace<'_>, root: u64, l: &PageHeapLayout) -> bool {
    mem.read_u32(root.wrapping_add(l.extra_flags))
        .is_ok_and(|f| f & page_heap::EXTRA_FLAGS_LIGHT != 0)
}

/// ProcessHeaps' heaps with each page heap placed just before its normal heap (page heaps whose
/// normal heap is not listed go last).
fn with_page_heaps(addresses: Vec<u64>, page_heaps: &[(u64, Option<u64>, bool)]) -> Vec<u64> {
    let mut out = Vec::new();
    for a in addresses {
        if let Some(p) = page_heaps.iter().find(|p| p.1 == Some(a)) {
            if !out.contains(&p.0) {
                out.push(p.0);
            }
        }
        if !out.contains(&a) {
            out.push(a);
        }
    }
    for p in page_heaps {
        if !out.contains(&p.0) {
            out.push(p.0);
        }
    }
    out
}

/// Windows 11 24H2 keeps only the first heap in `PEB.ProcessHeaps`; every heap has a record in a
/// list whose head is in ntdll's data (reference §11.2): record x64 `{LIST_ENTRY, Heap @+0x10}`,
/// x86 `{LIST_ENTRY, Heap @+8}`, and each heap points to its record (NT `_HEAP` +0x188 / +0xDC,
/// `_SEGMENT_HEAP` +0x38 / +0x24). From `PEB.ProcessHeap`'s record, the list gives every heap in
/// creation order; heaps of ProcessHeaps the list lacks are kept after them.
fn merge_24h2_list(
    mem: &AddressSpace<'_>,
    peb: &Peb,
    bits: u32,
    ntdll: Option<&Module>,
    addresses: &mut Vec<u64>,
    notes: &mut Vec<String>,
) {
    let heap_at = if bits == 64 { 0x10 } else { 8 };
    let record_of = |h: u64| heap_record(mem, bits, h);
    let Some(first) = record_of(peb.process_heap) else {
        notes.push(format!(
            "ntdll is Windows 11 24H2 or later, but the process heap {:#x} has no heap-list record: only the {} of ProcessHeaps {} listed",
            peb.process_heap,
            plural(addresses.len() as u64, "heap"),
            if addresses.len() == 1 { "is" } else { "are" }
        ));
        return;
    };
    // The head is the one link that is no heap's record: inside ntdll's image when it is known.
    let mut ring = walk_list(mem, first, bits).links;
    ring.push(first);
    let head = ring.iter().copied().find(|&r| match ntdll {
        Some(m) => (m.base..m.end()).contains(&r),
        None => mem
            .read_ptr(r.wrapping_add(heap_at), bits)
            .is_ok_and(|h| record_of(h) != Some(r)),
    });
    let Some(head) = head else {
        notes.push(format!(
            "the Windows 11 24H2 heap list from {first:#x} has no head in ntdll; only ProcessHeaps is used"
        ));
        return;
    };
    let walk = walk_list(mem, head, bits);
    if let Some(p) = walk.problem {
        notes.push(format!("24H2 heap list: {p}"));
    }
    let listed: Vec<u64> = walk
        .links
        .iter()
        .filter_map(|&r| mem.read_ptr(r.wrapping_add(heap_at), bits).ok())
        .collect();
    let extra = listed.iter().filter(|h| !addresses.contains(h)).count();
    if extra > 0 {
        notes.push(format!(
            "ProcessHeaps lists {}; the Windows 11 24H2 heap list in ntdll ({head:#x}) holds {}",
            plural(addresses.len() as u64, "heap"),
            listed.len()
        ));
    }
    let rest: Vec<u64> = addresses
        .iter()
        .copied()
        .filter(|a| !listed.contains(a))
        .collect();
    *addresses = listed;
    addresses.extend(rest);
}

/// 24H2: the heap-list record of the heap at `h` (NT or segment heap), when
/// the heap points to a record that points back.
fn heap_record(mem: &AddressSpace<'_>, bits: u32, h: u64) -> Option<u64> {
    let x64 = bits == 64;
    let (sig_off, heap_at) = if x64 { (0x10, 0x10) } else { (0x08, 8) };
    let back = match (mem.read_u32(h.wrapping_add(sig_off)).ok()?, x64) {
        (0xffee_ffee, true) => 0x188,
        (0xffee_ffee, false) => 0xdc,
        (0xddee_ddee, true) => 0x38,
        (0xddee_ddee, false) => 0x24,
        _ => return None,
    };
    let r = mem.read_ptr(h.wrapping_add(back), bits).ok()?;
    (mem.read_ptr(r.wrapping_add(heap_at), bits).ok()? == h).then_some(r)
}

/// The `_HEAP` family from ntdll's file version, else from the OS version, and that version.
fn family_of(ntdll: Option<&Module>, os: Option<OsVersion>) -> (NtFamily, (u32, u32, u32)) {
    let from_ntdll = ntdll.and_then(|m| {
        let v = m.version.as_deref()?;
        let mut it = v.split('.').map(|p| p.parse::<u32>().ok());
        Some((it.next()??, it.next()??, it.next()??))
    });
    let (major, minor, build) = from_ntdll
        .or(os.map(|o| (o.major, o.minor, o.build)))
        .unwrap_or((10, 0, 19041));
    (
        NtFamily::for_version(major, minor, build),
        (major, minor, build),
    )
}

/// One heap: its kind and where its memory is. `family` and `build` (ntdll's) say which layouts
/// to try first.
fn describe(mem: &AddressSpace<'_>, address: u64, bits: u32, family: NtFamily, build: u32) -> Heap {
    let mut heap = Heap {
        address,
        bits,
        kind: HeapKind::NotCaptured,
        segments: Vec::new(),
        large_blocks: Vec::new(),
        family: None,
        segment_layout: None,
        build,
        page: None,
        own_committed: None,
        problems: Vec::new(),
    };
    let sig_off = if bits == 64 { 0x10 } else { 0x08 };
    let Ok(sig) = mem.read_u32(address.wrapping_add(sig_off)) else {
        return heap;
    };
    match sig {
        0xffee_ffee => {
            heap.kind = HeapKind::Nt;
            nt_heap(mem, &mut heap, family);
        }
        0xddee_ddee => {
            heap.kind = HeapKind::Segment;
            segment_heap(mem, &mut heap, build);
        }
        _ if mem.read_u32(address.wrapping_add(page_heap::ROOT_OFFSET))
            == Ok(page_heap::ROOT_SIGNATURE) =>
        {
            heap.kind = HeapKind::PageHeap;
            page_heap_ranges(mem, &mut heap);
        }
        other => {
            heap.kind = HeapKind::Unknown(other);
            heap.problems.push(format!(
                "signature {other:#010x} at {:#x} is neither an NT heap (0xffeeffee) nor a segment heap (0xddeeddee)",
                address.wrapping_add(sig_off)
            ));
        }
    }
    heap
}

/// The outcome of following a `LIST_ENTRY` chain.
pub struct ListWalk {
    /// Entry addresses (the LIST_ENTRY addresses), head excluded.
    pub links: Vec<u64>,
    /// Why the walk stopped early, if it did.
    pub problem: Option<String>,
    /// The walk stopped because an entry is not in the dump (missing memory, not damage).
    pub not_captured: bool,
}

/// Follow Flink pointers from `head` until they return to it, bounded and loop-safe.
pub fn walk_list(mem: &AddressSpace<'_>, head: u64, bits: u32) -> ListWalk {
    let mut links = Vec::new();
    let mut seen = HashSet::new();
    let mut cur = head;
    loop {
        let next = match mem.read_ptr(cur, bits) {
            Ok(n) => n,
            Err(e) => {
                return ListWalk {
                    links,
                    problem: Some(format!("list entry at {cur:#x} is unreadable: {e}")),
                    not_captured: true,
                }
            }
        };
        let stop = |problem: Option<String>, links: Vec<u64>| ListWalk {
            links,
            problem,
            not_captured: false,
        };
        if next == head {
            return stop(None, links);
        }
        if next == 0 || !seen.insert(next) {
            return stop(
                Some(format!(
                    "list from {head:#x} is broken at {cur:#x} (next = {next:#x}: {})",
                    if next == 0 { "null" } else { "a loop" }
                )),
                links,
            );
        }
        if links.len() >= MAX_LIST {
            return stop(
                Some(format!(
                    "list from {head:#x} has over {MAX_LIST} entries; stopped"
                )),
                links,
            );
        }
        links.push(next);
        cur = next;
    }
}

/// Segments and large blocks of an NT heap. The family's layout is validated on the first segment
/// link (signature and back-pointer); if it fails, the families with other list offsets are tried.
fn nt_heap(mem: &AddressSpace<'_>, heap: &mut Heap, family: NtFamily) {
    let Some(f) = choose_family(mem, heap, family) else {
        heap.problems.push(format!(
            "the segment list of heap {:#x} does not validate with any known _HEAP layout",
            heap.address
        ));
        return;
    };
    if f != family {
        heap.problems.push(format!(
            "the {} _HEAP layout was expected from the ntdll version, but the {} layout validates; using it",
            family.name(),
            f.name()
        ));
    }
    heap.family = Some(f);
    let l = NtHeapLayout::new(f, heap.bits);
    nt_segments(mem, heap, &l);
    nt_large_blocks(mem, heap, &l);
}

/// The `_HEAP` layout family whose first segment validates: the expected
/// one first, then the others newest first.
fn choose_family(mem: &AddressSpace<'_>, heap: &Heap, family: NtFamily) -> Option<NtFamily> {
    let bits = heap.bits;
    let mut order = vec![family];
    order.extend(NtFamily::ALL.iter().rev().copied().filter(|f| *f != family));
    order.into_iter().find(|f| {
        let l = NtHeapLayout::new(*f, bits);
        let walk = walk_list(mem, heap.address.wrapping_add(l.segment_list), bits);
        walk.links.first().is_some_and(|&link| {
            segment_ok(
                mem,
                link.wrapping_sub(l.seg_list_entry),
                heap.address,
                &l,
                bits,
            )
        })
    })
}

/// Follows the segment list: segment ranges and the heap's own committed
/// bytes (unknown when any segment cannot be read).
fn nt_segments(mem: &AddressSpace<'_>, heap: &mut Heap, l: &NtHeapLayout) {
    let bits = heap.bits;
    let walk = walk_list(mem, heap.address.wrapping_add(l.segment_list), bits);
    if let Some(p) = walk.problem {
        heap.problems.push(format!("segment list: {p}"));
    }
    let mut own = Some(0u64);
    for link in walk.links {
        let seg = link.wrapping_sub(l.seg_list_entry);
        if !mem.is_captured(seg, l.seg_first_entry) {
            heap.problems.push(format!(
                "segment at {seg:#x} is not in the dump; the segment list is not followed further"
            ));
            own = None;
            break;
        }
        if !segment_ok(mem, seg, heap.address, l, bits) {
            heap.problems.push(format!(
                "segment at {seg:#x} has a bad signature or does not point back to its heap; the list is not followed further"
            ));
            own = None;
            break;
        }
        let base = mem
            .read_ptr(seg.wrapping_add(l.seg_base), bits)
            .unwrap_or(seg);
        let pages = mem.read_u32(seg.wrapping_add(l.seg_pages)).unwrap_or(0);
        let end = base.saturating_add(u64::from(pages) * 0x1000);
        heap.segments.push(Range { start: base, end });
        own = own
            .zip(
                mem.read_u32(seg.wrapping_add(l.seg_uncommitted_pages))
                    .ok()
                    .map(|u| u64::from(pages.saturating_sub(u)) * 0x1000),
            )
            .map(|(a, b)| a + b);
    }
    heap.own_committed = own;
}

/// Follows `VirtualAllocdBlocks`: one range per large block, sized by its
/// reserve (or its commit when the reserve is implausible).
fn nt_large_blocks(mem: &AddressSpace<'_>, heap: &mut Heap, l: &NtHeapLayout) {
    let bits = heap.bits;
    let walk = walk_list(
        mem,
        heap.address.wrapping_add(l.virtual_allocd_blocks),
        bits,
    );
    if let Some(p) = walk.problem {
        heap.problems.push(format!("large block list: {p}"));
    }
    for entry in walk.links {
        let commit = mem
            .read_ptr(entry.wrapping_add(l.vae_commit), bits)
            .unwrap_or(0);
        let reserve = mem
            .read_ptr(entry.wrapping_add(l.vae_reserve), bits)
            .unwrap_or(0);
        let size = if reserve >= commit && reserve < (1 << 44) {
            reserve
        } else {
            heap.problems.push(format!(
                "large block at {entry:#x}: reserve size {reserve:#x} is not plausible (commit {commit:#x}); using the commit size"
            ));
            commit
        };
        heap.large_blocks.push(Range {
            start: entry,
            end: entry.saturating_add(size),
        });
    }
}

fn segment_ok(mem: &AddressSpace<'_>, seg: u64, heap: u64, l: &NtHeapLayout, bits: u32) -> bool {
    mem.read_u32(seg.wrapping_add(l.seg_signature)).ok() == Some(SEGMENT_SIGNATURE)
        && mem.read_ptr(seg.wrapping_add(l.seg_heap), bits).ok() == Some(heap)
}

/// The address ranges of a page heap: its first two pages (handle page and root) and every
/// virtual storage range of the root's `pVirtualStorageListHead` chain, from which the page heap
/// carves its blocks.
fn page_heap_ranges(mem: &AddressSpace<'_>, heap: &mut Heap) {
    let l = PageHeapLayout::new(heap.bits);
    let root = heap.address.wrapping_add(page_heap::ROOT_OFFSET);
    heap.segments.push(Range {
        start: heap.address,
        end: root.saturating_add(0x1000),
    });
    let mut node = mem
        .read_ptr(root.wrapping_add(l.virtual_storage_head), l.bits)
        .unwrap_or(0);
    let mut seen = HashSet::new();
    while node != 0 {
        if !seen.insert(node) || seen.len() > MAX_LIST {
            heap.problems.push(format!(
                "the page heap's virtual storage list loops or is absurdly long at node {node:#x}"
            ));
            break;
        }
        let (Ok(va), Ok(size), Ok(next)) = (
            mem.read_ptr(node.wrapping_add(l.virtual_block), l.bits),
            mem.read_ptr(node.wrapping_add(l.virtual_size), l.bits),
            mem.read_ptr(node, l.bits),
        ) else {
            heap.problems.push(format!(
                "the page heap's virtual storage node {node:#x} is not in the dump"
            ));
            break;
        };
        match va.checked_add(size) {
            Some(end) if size > 0 => heap.segments.push(Range { start: va, end }),
            _ => heap.problems.push(format!(
                "virtual storage node {node:#x} describes an impossible range {va:#x} + {size:#x}"
            )),
        }
        node = next;
    }
}

/// The `_SEGMENT_HEAP` layout of the heap at `heap`, trying first the layout of ntdll build
/// `build` (see [`segment_heap::expected`]), then every other candidate: the first whose first
/// segment context points back to the heap and holds a plausible SegmentMask (a power-of-two
/// segment of 64 KiB or more) and UnitShift (12–20). The back-pointer alone is not enough: one
/// layout's second context can sit where another layout expects the first one's `Heap` field.
///
/// When no known layout fits (a build whose `_SEGMENT_HEAP` moved its contexts, such as a layout
/// heapdiag has no type dump for), the contexts are looked for by their shape (reference §6.2):
/// in the first 0x400 bytes, two consecutive contexts of a known context layout that both point
/// back to the heap and both hold a plausible mask and unit shift. `LargeAllocMetadata` is then
/// assumed where the builds of that context layout keep it (Windows 11 x64 moved its contexts
/// but not the fields before them), and its tree must prove itself (see [`large_nodes`]).
fn segment_heap_layout(
    mem: &AddressSpace<'_>,
    heap: u64,
    bits: u32,
    build: u32,
) -> Option<SegmentHeapLayout> {
    let fits = |l: &SegmentHeapLayout, i: u64| {
        let ctx = heap.wrapping_add(l.seg_contexts + i * l.ctx_size);
        let back = mem.read_ptr(ctx.wrapping_add(l.ctx_heap), bits).ok() == Some(heap);
        let mask = mem.read_ptr(ctx, bits).unwrap_or(0);
        let size = (!mask & segment_heap::pointer_mask(bits)).wrapping_add(1);
        let shift = mem
            .read(ctx.wrapping_add(l.ctx_unit_shift), 1)
            .map_or(0, |b| b[0]);
        back && mask != 0
            && size.is_power_of_two()
            && size >= 0x1_0000
            && (12..=20).contains(&shift)
    };
    let known = segment_heap::candidates(bits);
    let expected = segment_heap::expected(bits, build);
    if let Some(l) = expected.into_iter().chain(known).find(|l| fits(l, 0)) {
        return Some(*l);
    }
    let step = u64::from(bits / 8);
    known.iter().find_map(|shape| {
        (0x20..0x400).step_by(step as usize).find_map(|at| {
            // `first_build` 0 marks a layout found by its shape; `name` stays the shape's.
            let l = SegmentHeapLayout {
                first_build: 0,
                seg_contexts: at,
                ..*shape
            };
            (fits(&l, 0) && fits(&l, 1)).then_some(l)
        })
    })
}

/// Page segments and large allocations of a segment heap. The segment contexts are located by
/// trying the known layouts (ntdll build `build`'s first) and keeping the one whose context points
/// back to the heap.
fn segment_heap(mem: &AddressSpace<'_>, heap: &mut Heap, build: u32) {
    let bits = heap.bits;
    let Some(l) = segment_heap_layout(mem, heap.address, bits, build) else {
        heap.problems.push(format!(
            "no known _SEGMENT_HEAP layout has segment contexts that point back to heap {:#x}",
            heap.address
        ));
        return;
    };
    match segment_heap::expected(bits, build) {
        Some(e) if e.name != l.name && l.first_build != 0 => heap.problems.push(format!(
            "the Windows {} _SEGMENT_HEAP layout was expected from the ntdll version, but the Windows {} layout fits; using it",
            e.name, l.name
        )),
        _ => {}
    }
    if l.first_build == 0 {
        heap.problems.push(format!(
            "no known _SEGMENT_HEAP layout fits: its segment contexts were found by their shape at _SEGMENT_HEAP+{:#x}, and large allocations are looked for at _SEGMENT_HEAP+{:#x}, where Windows {} keeps them",
            l.seg_contexts, l.large_alloc_metadata, l.name
        ));
    }
    heap.segment_layout = Some(l);
    for i in 0..2 {
        let ctx = heap.address.wrapping_add(l.seg_contexts + i * l.ctx_size);
        let Ok(mask) = mem.read_ptr(ctx, bits) else {
            heap.problems
                .push(format!("segment context {i} at {ctx:#x} is not captured"));
            continue;
        };
        let seg_size = (!mask & segment_heap::pointer_mask(bits)).wrapping_add(1);
        if !seg_size.is_power_of_two() || !(0x1_0000..=1 << 32).contains(&seg_size) {
            heap.problems.push(format!(
                "segment context {i} at {ctx:#x} has an implausible segment mask {mask:#x}"
            ));
            continue;
        }
        let walk = walk_list(mem, ctx.wrapping_add(l.ctx_segment_list), bits);
        if let Some(p) = walk.problem {
            heap.problems.push(format!("page segment list {i}: {p}"));
        }
        for seg in walk.links {
            heap.segments.push(Range {
                start: seg,
                end: seg.saturating_add(seg_size),
            });
        }
    }
    large_allocations(mem, heap, &l);
}

/// One node of a segment heap's large-allocation tree (`_HEAP_LARGE_ALLOC_DATA`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LargeNode {
    /// `VirtualAddress` as stored: the allocation's base, its low 16 bits the unused byte count.
    pub va: u64,
    /// `AllocatedPages` in bytes.
    pub bytes: u64,
    /// `ExtraPresent`: the unused tail holds an `_SEGMENT_HEAP_EXTRA` (+ust).
    pub extra: bool,
}

/// Large allocations and why the walk stopped early.
pub type LargeNodes = (Vec<LargeNode>, Option<String>);

/// Put the large allocations of a segment heap on its list of large blocks.
fn large_allocations(mem: &AddressSpace<'_>, heap: &mut Heap, l: &SegmentHeapLayout) {
    match large_nodes(mem, heap.address, heap.bits, l) {
        Ok((nodes, problem)) => {
            for n in nodes {
                let start = n.va & !0xffff;
                heap.large_blocks.push(Range {
                    start,
                    end: start.saturating_add(n.bytes),
                });
            }
            heap.problems.extend(problem);
        }
        Err(why) => heap.problems.push(why),
    }
}

/// The large allocations of a segment heap, one [`LargeNode`] per node
/// of the `_RTL_RB_TREE` at `LargeAllocMetadata`, in order (bounded, loop-safe), and why the walk
/// stopped early if it did. Encoded trees are decoded (see the body).
pub fn large_nodes(
    mem: &AddressSpace<'_>,
    heap: u64,
    bits: u32,
    l: &SegmentHeapLayout,
) -> Result<LargeNodes, String> {
    let meta = l.large_alloc_metadata;
    let step = u64::from(bits / 8);
    let tree = heap.wrapping_add(meta);
    let (Ok(root), Ok(min)) = (
        mem.read_ptr(tree, bits),
        mem.read_ptr(tree.wrapping_add(step), bits),
    ) else {
        return Err(format!(
            "large allocation tree at {tree:#x} is not captured"
        ));
    };
    // `Encoded` (bit 0 of Min): the root is stored XORed with the tree's address and every
    // non-null child link with the address of the node holding it (the pattern of the kernel's
    // inline tree searches; reference §6.8 left it open).
    let encoded = min & 1 != 0;
    let link = |holder: u64, stored: u64| {
        if encoded && stored != 0 {
            (stored ^ holder) & segment_heap::pointer_mask(bits)
        } else {
            stored
        }
    };
    let mut out = Vec::new();
    let mut problem = None;
    let mut stack = Vec::new();
    let mut seen = HashSet::new();
    let mut node = link(tree, root);
    loop {
        while node != 0 && seen.insert(node) && seen.len() <= MAX_LIST {
            stack.push(node);
            node = link(node, mem.read_ptr(node, bits).unwrap_or(0));
        }
        let Some(n) = stack.pop() else { break };
        let va = mem.read_ptr(n.wrapping_add(l.large_virtual_address), bits);
        let word = mem.read_ptr(n.wrapping_add(l.large_pages_word), bits);
        match (va, word) {
            (Ok(va), Ok(word)) => {
                let pages = (word >> 12) & ((1u64 << l.large_pages_bits) - 1);
                out.push(LargeNode {
                    va,
                    bytes: pages * 0x1000,
                    extra: word & 1 != 0,
                });
            }
            _ => problem = Some(format!("large allocation node at {n:#x} is not captured")),
        }
        node = link(n, mem.read_ptr(n.wrapping_add(step), bits).unwrap_or(0));
    }
    if seen.len() > MAX_LIST {
        problem = Some("large allocation tree is too large or loops; stopped".into());
    }
    // Where the tree's place was assumed (contexts found by their shape), it must read whole and
    // every node must describe a real allocation: a 64 KiB-aligned base, pages, fewer unused bytes
    // than pages.
    let plausible = |n: &LargeNode| {
        n.va & !0xffff != 0 && n.bytes != 0 && (n.va & 0xffff) < n.bytes && n.bytes < 1 << 44
    };
    if l.first_build == 0 && (problem.is_some() || !out.iter().all(plausible)) {
        return Err(format!(
            "no plausible large-allocation tree at {tree:#x} (its place was assumed): large allocations are not listed"
        ));
    }
    Ok((out, problem))
}
