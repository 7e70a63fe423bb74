//! The NT heap walker: back-end segments (with uncommitted ranges), VirtualAlloc'd large blocks,
//! and the LFH's user blocks, for every layout family from Windows 7 to 11, x86 and x64.
//!
//! Every header is decoded and checked (checksum, size within its range, `PreviousSize` chain).
//! A bad header is reported as a [`Corruption`] and the walk resumes at the next place where two
//! consecutive headers validate; memory missing from the dump is counted as not captured.

pub mod entry;
mod lfh;
mod ust;

use super::block::{Block, Corruption, Coverage, FrontEnd, State};
use super::{HeapWalk, NtdllSymbols};
use crate::dump::memory::AddressSpace;
use crate::layout::nt_heap::{NtHeapLayout, ENTRY_BUSY, ENTRY_VIRTUAL_ALLOC, SEGMENT_SIGNATURE};
use crate::process::heaps::walk_list;
use crate::process::Heap;
use entry::{Decoder, Entry};

/// The most uncommitted ranges one segment may have before the list is called absurd.
const MAX_UCRS: usize = 1 << 16;

/// State shared by the parts of one heap's walk.
pub(crate) struct Walker<'a> {
    pub mem: AddressSpace<'a>,
    pub l: NtHeapLayout,
    pub dec: Decoder,
    pub heap: u64,
    pub index: u32,
    /// `_HEAP.Interceptor` is set: the heap records +ust stacks.
    pub traced: bool,
    pub out: HeapWalk,
}

/// Walk one NT heap. `heap.family` must be set (the heap list validated it); `syms`, when ntdll's
/// PDB was found, gives the exact structure offsets and the LFH key.
pub fn walk(
    mem: AddressSpace<'_>,
    heap: &Heap,
    index: u32,
    syms: Option<&NtdllSymbols>,
) -> HeapWalk {
    let mut out = HeapWalk::new(heap, index);
    let Some(family) = heap.family else {
        out.notes
            .push("the heap's layout could not be determined; it is not walked".into());
        return out;
    };
    out.walked = true;
    let l = match syms {
        Some(s) => {
            out.notes.push(format!(
                "structure offsets from {} ({} members)",
                s.path.display(),
                s.layout.members
            ));
            s.layout.layout
        }
        None => NtHeapLayout::new(family, heap.bits),
    };
    let at = |off: u64| heap.address.wrapping_add(off);
    out.flags = mem.read_u32(at(l.flags)).ok();
    let encoded = mem.read_u32(at(l.encode_flag_mask)).unwrap_or(0) != 0;
    let key = match mem.read(at(l.encoding), 8) {
        Ok(k) if encoded => {
            let mut a = [0u8; 8];
            a.copy_from_slice(&k);
            Some(a)
        }
        _ => None,
    };
    let dec = Decoder {
        key,
        offset: if heap.bits == 64 { 8 } else { 0 },
    };
    let mut w = Walker {
        mem,
        l,
        dec,
        heap: heap.address,
        index,
        traced: mem.read_u32(at(l.interceptor)).is_ok_and(|i| i != 0),
        out,
    };
    w.backend();
    w.free_lists();
    w.large_blocks();
    let front_end_type = mem.read(at(l.front_end_heap_type), 1).map(|b| b[0]).ok();
    if front_end_type == Some(2) {
        let feh = mem.read_ptr(at(l.front_end_heap), heap.bits).unwrap_or(0);
        w.out.lfh = Some(feh);
        lfh::expand(&mut w, feh, syms.and_then(|s| s.lfh_key));
    }
    w.out
}

impl Walker<'_> {
    fn read_entry(&self, header: u64) -> Option<Entry> {
        let b = self
            .mem
            .read(header.wrapping_add(self.dec.offset), 8)
            .ok()?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&b);
        Some(self.dec.decode(a))
    }

    /// A header that proves itself: checksum, non-zero size, ends within `limit`.
    fn valid_entry(&self, header: u64, limit: u64) -> Option<Entry> {
        let e = self.read_entry(header)?;
        let size = u64::from(e.size) * self.l.unit;
        (e.checksum_ok() && size > 0 && header.checked_add(size)? <= limit).then_some(e)
    }

    /// Walk every segment of the heap's SegmentList.
    fn backend(&mut self) {
        let l = self.l;
        let walk = walk_list(&self.mem, self.heap.wrapping_add(l.segment_list), l.bits);
        for link in walk.links {
            let seg = link.wrapping_sub(l.seg_list_entry);
            if self.mem.read_u32(seg.wrapping_add(l.seg_signature)).ok() != Some(SEGMENT_SIGNATURE)
            {
                break;
            }
            self.segment(seg);
        }
    }

    fn segment(&mut self, seg: u64) {
        let l = self.l;
        let ptr = |off: u64| self.mem.read_ptr(seg.wrapping_add(off), l.bits);
        let base = ptr(l.seg_base).unwrap_or(seg);
        let pages = self
            .mem
            .read_u32(seg.wrapping_add(l.seg_pages))
            .unwrap_or(0);
        let end = base.saturating_add(u64::from(pages) * 0x1000);
        let mut cov = Coverage {
            segment: base,
            reserved: end - base,
            ..Coverage::default()
        };
        let (Ok(first), Ok(last)) = (ptr(l.seg_first_entry), ptr(l.seg_last_valid)) else {
            self.corrupt(seg, seg, "segment header is not captured".into());
            self.out.coverage.push(cov);
            return;
        };
        if !(base <= first && first < last && last <= end) {
            self.corrupt(
                seg,
                seg,
                format!(
                    "FirstEntry {first:#x} / LastValidEntry {last:#x} lie outside the segment {base:#x}-{end:#x}"
                ),
            );
            self.out.coverage.push(cov);
            return;
        }
        cov.header = first - base;
        let (mut ucrs, mut descriptors) = self.uncommitted_ranges(seg, first, last);
        ucrs.sort_unstable();
        ucrs.dedup_by(|b, a| b.0 < a.0 + a.1);
        cov.ucr_count = ucrs.iter().filter(|u| u.1 > 0).count() as u64;
        let uncommitted: u64 = ucrs.iter().map(|u| u.1).sum();
        cov.committed = (end - base).saturating_sub(uncommitted + (end - last));
        // Committed runs: [first, ucr0), [ucr0 end, ucr1), …, [last ucr end, last).
        let walked_from = self.out.blocks.len();
        let mut start = first;
        // The first block's PreviousSize is the segment header block's size.
        let mut prev = u16::try_from((first - seg) / l.unit).ok();
        for (a, s) in ucrs.iter().copied().chain(std::iter::once((last, 0))) {
            if a > start {
                self.run(start, a, (seg, prev.take()), &mut cov);
            }
            start = start.max(a + s);
        }
        // The uncommitted-range descriptors live in small busy blocks at the end of each
        // committed run (a fully committed segment keeps one too): heap metadata.
        descriptors.sort_unstable();
        for b in &mut self.out.blocks[walked_from..] {
            let i = descriptors.partition_point(|&d| d < b.address);
            if descriptors
                .get(i)
                .is_some_and(|&d| d < b.entry + b.block_size)
            {
                b.internal = true;
            }
        }
        self.out.coverage.push(cov);
    }

    /// The segment's uncommitted ranges `(address, size)` that lie inside
    /// `[first, last)` (others are reported), and the addresses of their
    /// descriptors.
    fn uncommitted_ranges(
        &mut self,
        seg: u64,
        first: u64,
        last: u64,
    ) -> (Vec<(u64, u64)>, Vec<u64>) {
        let l = self.l;
        let mut ucrs: Vec<(u64, u64)> = Vec::new();
        let walk = walk_list(&self.mem, seg.wrapping_add(l.seg_ucr_list), l.bits);
        match walk.problem {
            Some(p) if walk.not_captured && !self.mem.is_complete() => self
                .out
                .notes
                .push(format!("segment {seg:#x}: uncommitted range list: {p}")),
            Some(p) => self.corrupt(seg, seg, format!("uncommitted range list: {p}")),
            None => {}
        }
        let mut descriptors = Vec::new();
        for link in walk.links.into_iter().take(MAX_UCRS) {
            let d = link.wrapping_sub(l.ucr_segment_entry);
            descriptors.push(d);
            let (Ok(a), Ok(s)) = (
                self.mem.read_ptr(d.wrapping_add(l.ucr_address), l.bits),
                self.mem.read_ptr(d.wrapping_add(l.ucr_size), l.bits),
            ) else {
                continue;
            };
            if a >= first && s <= last.saturating_sub(a) {
                ucrs.push((a, s));
            } else if s != 0 {
                self.corrupt(
                    d,
                    seg,
                    format!("uncommitted range {a:#x}+{s:#x} lies outside the segment"),
                );
            }
        }
        (ucrs, descriptors)
    }

    /// Walk the blocks of one committed run `[start, end)`.
    fn run(&mut self, start: u64, end: u64, (seg, prev): (u64, Option<u16>), cov: &mut Coverage) {
        let unit = self.l.unit;
        let mut p = start;
        let mut prev = prev;
        while p < end {
            if !self.mem.is_captured(p, unit) {
                // Missing memory: skip to where the dump has memory again, then resynchronize.
                let next = self.next_captured(p, end);
                cov.not_captured += next - p;
                p = next;
                prev = None;
                if p < end {
                    p = self.resync(p, end, seg, cov, false);
                }
                continue;
            }
            let Some(e) = self.valid_entry(p, end) else {
                p = self.resync(p, end, seg, cov, true);
                prev = None;
                continue;
            };
            if let Some(ps) = prev {
                if e.previous_size != ps {
                    self.corrupt(
                        p,
                        seg,
                        format!(
                            "PreviousSize is {:#x} units, but the block before is {:#x} units",
                            e.previous_size, ps
                        ),
                    );
                }
            }
            let size = u64::from(e.size) * unit;
            self.emit_backend(p, &e);
            cov.walked += size;
            prev = Some(e.size);
            p += size;
        }
    }

    /// The first captured address in `[p, end)`, or `end`.
    fn next_captured(&self, p: u64, end: u64) -> u64 {
        let ranges = self.mem.ranges();
        let i = ranges.partition_point(|r| r.end() <= p);
        match ranges.get(i) {
            Some(r) if r.base < end => r.base.max(p),
            _ => end,
        }
    }

    /// After a bad header at `p` (reported when `report`), find the next address from which two
    /// consecutive headers validate (or one header that ends exactly at `end`). Returns it, or
    /// `end`; the skipped bytes are counted as corrupt.
    fn resync(&mut self, p: u64, end: u64, seg: u64, cov: &mut Coverage, report: bool) -> u64 {
        let unit = self.l.unit;
        if report {
            let what = match self.read_entry(p) {
                Some(e) if !e.checksum_ok() => format!(
                    "header checksum fails (size {:#x} units, flags {:#04x}, tag {:#04x})",
                    e.size, e.flags, e.small_tag
                ),
                Some(e) => format!(
                    "block size {:#x} units runs past the committed range ending at {end:#x}",
                    e.size
                ),
                None => "header is not captured".into(),
            };
            self.corrupt(p, seg, what);
        }
        let mut q = p + if report { unit } else { 0 };
        while q < end {
            if !self.mem.is_captured(q.wrapping_add(self.dec.offset), 8) {
                // Nothing to find where the dump has no memory: jump to where it has some.
                let next = self.next_captured(q + 1, end);
                q = if next >= end {
                    end
                } else {
                    start_of_unit(next, p, unit)
                };
                continue;
            }
            if let Some(e) = self.valid_entry(q, end) {
                let next = q + u64::from(e.size) * unit;
                let chained = next == end
                    || self
                        .valid_entry(next, end)
                        .is_some_and(|n| n.previous_size == e.size);
                if chained {
                    break;
                }
            }
            q += unit;
        }
        if report {
            cov.corrupt += q - p;
        } else {
            cov.not_captured += q - p;
        }
        q
    }

    fn emit_backend(&mut self, p: u64, e: &Entry) {
        let unit = self.l.unit;
        let size = u64::from(e.size) * unit;
        let busy = e.flags & ENTRY_BUSY != 0;
        let mut b = Block {
            entry: p,
            address: p + unit,
            size: size - unit,
            block_size: size,
            trace: 0,
            heap: self.index,
            state: if busy { State::Busy } else { State::Free },
            front_end: FrontEnd::Backend,
            flags: e.flags,
            // The VIRTUAL_ALLOC flag on a segment block marks heap metadata (LFH user blocks and
            // zones; seen on Windows 7 too).
            internal: busy && e.flags & ENTRY_VIRTUAL_ALLOC != 0,
        };
        if busy {
            let (user, requested, trace) = ust::user_data(&self.mem, &self.l, p, size, e.unused);
            b.address = user;
            b.size = requested;
            b.trace = trace;
        }
        self.out.blocks.push(b);
    }

    /// Check `_HEAP.FreeLists` (bounded, loop-safe) against the segment walk: every entry must be
    /// the `FreeList` link of a free back-end block the walk found (`!heap -v` checks the same).
    fn free_lists(&mut self) {
        let head = self.heap.wrapping_add(self.l.free_lists);
        let free: std::collections::HashSet<u64> = self
            .out
            .blocks
            .iter()
            .filter(|b| b.state == State::Free && b.front_end == FrontEnd::Backend)
            .map(|b| b.entry)
            .collect();
        let walk = walk_list(&self.mem, head, self.l.bits);
        match walk.problem {
            Some(p) if walk.not_captured && !self.mem.is_complete() => self.out.notes.push(
                format!("free list: {p}; the rest of the list is not checked"),
            ),
            Some(p) => self.corrupt(head, self.heap, format!("free list: {p}")),
            None => {}
        }
        let mut strays = 0usize;
        for link in walk.links {
            let entry = link.wrapping_sub(self.l.unit);
            // An entry in memory a partial dump lacks cannot be checked.
            if free.contains(&entry)
                || (!self.mem.is_complete() && !self.mem.is_captured(entry, 2 * self.l.unit))
            {
                continue;
            }
            strays += 1;
            // One report per stray entry, at most a few: the rest are counted.
            if strays <= 8 {
                self.corrupt(
                    link,
                    self.heap,
                    format!(
                        "free list entry {link:#x} is not the link of a free block (none starts at {entry:#x})"
                    ),
                );
            }
        }
        if strays > 8 {
            self.corrupt(
                head,
                self.heap,
                format!("free list: {} more entries are not free blocks", strays - 8),
            );
        }
    }

    /// VirtualAlloc'd blocks of `_HEAP.VirtualAllocdBlocks`.
    fn large_blocks(&mut self) {
        let l = self.l;
        let walk = walk_list(
            &self.mem,
            self.heap.wrapping_add(l.virtual_allocd_blocks),
            l.bits,
        );
        for entry in walk.links {
            let commit = self
                .mem
                .read_ptr(entry.wrapping_add(l.vae_commit), l.bits)
                .unwrap_or(0);
            let reserve = self
                .mem
                .read_ptr(entry.wrapping_add(l.vae_reserve), l.bits)
                .unwrap_or(0);
            self.out.large_committed += commit;
            self.out.large_reserved += reserve.max(commit);
            let Some(e) = self.read_entry(entry.wrapping_add(l.vae_busy_block)) else {
                self.corrupt(entry, entry, "large block header is not captured".into());
                continue;
            };
            // In a large block's BusyBlock, Size holds the unused byte count.
            let unused = u64::from(e.size);
            if e.flags & ENTRY_BUSY == 0 || commit < l.vae_size || unused > commit {
                self.corrupt(
                    entry,
                    entry,
                    format!(
                        "large block header is not plausible (flags {:#04x}, commit {commit:#x}, unused {unused:#x})",
                        e.flags
                    ),
                );
                continue;
            }
            let (address, size, trace) =
                ust::large_user_data(&self.mem, &l, entry, commit, unused, e.unused, self.traced);
            self.out.blocks.push(Block {
                entry,
                address,
                size,
                block_size: commit,
                trace,
                heap: self.index,
                state: State::Busy,
                front_end: FrontEnd::Large,
                flags: e.flags,
                internal: false,
            });
        }
    }

    pub(crate) fn corrupt(&mut self, address: u64, segment: u64, what: String) {
        self.out.corruptions.push(Corruption {
            address,
            segment,
            what,
        });
    }
}

/// The first address at or after `a` that is a whole number of units from `origin`.
fn start_of_unit(a: u64, origin: u64, unit: u64) -> u64 {
    origin + (a - origin).div_ceil(unit) * unit
}
