//! Text views of `heapdiag heaps`, `heaps --stat`, `blocks` and `block`.

use super::format::{addr, human};
use crate::analysis::heaps::{Component, HeapSummary, SizeRow};
use crate::heap::Block;
use crate::process::HeapKind;
use std::fmt::Write;

fn k(bytes: u64) -> String {
    (bytes / 1024).to_string()
}

/// The `!heap -s` view: one row per heap, then per heap its fragmentation, coverage, corruption
/// and notes.
pub fn summary_text(heaps: &[HeapSummary]) -> String {
    let mut out = String::new();
    let keys: Vec<String> = heaps
        .iter()
        .filter_map(|h| {
            h.lfh_key
                .map(|k| format!("{k:#010x} ({}-bit heaps)", h.bits))
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if !keys.is_empty() {
        let _ = writeln!(
            out,
            "LFH Key (low 32 bits, recovered from the dump): {}",
            keys.join(", ")
        );
    }
    let w = heaps
        .iter()
        .map(|h| addr(h.address).len())
        .max()
        .unwrap_or(10)
        .max(10);
    let _ = writeln!(
        out,
        "{:<w$} {:<7} {:>8} {:>9} {:>9} {:>8} {:>8} {:>6} {:>4} {:>5} {:>4} {:>10} {:>9}",
        "Heap",
        "Type",
        "Flags",
        "Reserv(k)",
        "Commit(k)",
        "Virt(k)",
        "Free(k)",
        "List",
        "UCR",
        "Virt",
        "Fast",
        "Busy",
        "Busy(k)"
    );
    let _ = writeln!(
        out,
        "{:<w$} {:<7} {:>8} {:>9} {:>9} {:>8} {:>8} {:>6} {:>4} {:>5} {:>4} {:>10} {:>9}",
        "", "", "", "", "", "", "", "length", "", "blks", "heap", "blocks", ""
    );
    let _ = writeln!(out, "{}", "-".repeat(w + 104));
    for h in heaps {
        if !h.analyzed {
            let _ = writeln!(
                out,
                "{:<w$} {:<7} not walked (see below)",
                addr(h.address),
                h.kind.name().split(' ').next().unwrap_or("")
            );
            continue;
        }
        let _ = writeln!(
            out,
            "{:<w$} {:<7} {:>8} {:>9} {:>9} {:>8} {:>8} {:>6} {:>4} {:>5} {:>4} {:>10} {:>9}",
            addr(h.address),
            h.kind.name().split(' ').next().unwrap_or(""),
            h.flags.map(|f| format!("{f:08x}")).unwrap_or_default(),
            k(h.reserved),
            k(h.committed),
            k(h.virtual_bytes),
            k(h.free_bytes),
            h.free_blocks,
            h.ucr,
            h.large_blocks,
            if h.lfh { "LFH" } else { "" },
            h.busy_blocks,
            k(h.busy_bytes)
        );
    }
    let _ = writeln!(out, "{}", "-".repeat(w + 104));
    for h in heaps {
        let _ = writeln!(
            out,
            "\nHeap {} ({}-bit {})",
            addr(h.address),
            h.bits,
            h.kind.name()
        );
        if h.free_blocks > 0 {
            let _ = writeln!(
                out,
                "    External fragmentation  {:.0} % ({} free blocks, largest {})",
                h.external_fragmentation(),
                h.free_blocks,
                human(h.largest_free).trim()
            );
        }
        if h.lfh {
            let _ = writeln!(
                out,
                "    LFH: {} busy chunks, {} requested; {} free chunks",
                h.lfh_busy_blocks,
                human(h.lfh_busy_bytes).trim(),
                h.lfh_free_blocks
            );
        }
        if h.kind != HeapKind::Nt && !h.components.is_empty() {
            let _ = writeln!(out, "    Components:");
            for c in &h.components {
                let _ = writeln!(
                    out,
                    "      {:<9} {:>8} busy, {:>12} requested in {:>12}; {:>8} free, {:>12}",
                    c.front_end.name(),
                    c.busy_blocks,
                    human(c.busy_bytes).trim(),
                    human(c.busy_block_bytes).trim(),
                    c.free_blocks,
                    human(c.free_bytes).trim()
                );
            }
        }
        if h.traced_blocks > 0 {
            let _ = writeln!(
                out,
                "    Allocation stacks (+ust): {} of {} busy blocks ({:.1}%), {} of {}",
                h.traced_blocks,
                h.busy_blocks,
                h.traced_blocks as f64 * 100.0 / h.busy_blocks.max(1) as f64,
                human(h.traced_bytes).trim(),
                human(h.busy_bytes).trim()
            );
        }
        if h.segment_committed > 0 {
            let _ = writeln!(
                out,
                "    Coverage: {} committed in segments = {} segment headers + {} blocks + {} not captured + {} corrupt + {} unexplained",
                human(h.segment_committed).trim(),
                human(h.header).trim(),
                human(h.walked).trim(),
                human(h.not_captured).trim(),
                human(h.corrupt).trim(),
                human(h.unexplained).trim()
            );
        }
        if h.internal_blocks > 0 {
            let _ = writeln!(
                out,
                "    Heap metadata: {} (blocks: {}; LFH user blocks and zones, range markers, front end)",
                human(h.internal_bytes).trim(),
                h.internal_blocks
            );
        }
        if h.analyzed {
            let _ = writeln!(out, "    Corruptions: {}", h.corruptions.len());
        }
        for c in h.corruptions.iter().take(20) {
            let _ = writeln!(
                out,
                "      {} (segment {}): {}",
                addr(c.address),
                addr(c.segment),
                c.what
            );
        }
        if h.corruptions.len() > 20 {
            let _ = writeln!(
                out,
                "      … and {} more (see --json)",
                h.corruptions.len() - 20
            );
        }
        for n in &h.notes {
            let _ = writeln!(out, "    Note: {n}");
        }
    }
    out
}

/// The `!heap -stat -h` view of one heap (or of all heaps when `heap` is `None`); hex columns like
/// WinDbg's.
/// `components` (segment and page heaps) are listed after the sizes.
pub fn stat_text(
    heap: Option<u64>,
    busy: u64,
    rows: &[SizeRow],
    limit: usize,
    components: &[Component],
) -> String {
    let mut out = String::new();
    match heap {
        Some(h) => {
            let _ = writeln!(out, " heap @ {}", addr(h));
        }
        None => {
            let _ = writeln!(out, " all heaps");
        }
    }
    let _ = writeln!(out, "group-by: TOTSIZE max-display: {limit}");
    let _ = writeln!(
        out,
        "    size     #blocks     total     ( %) (percent of total busy bytes)"
    );
    for r in rows.iter().take(limit) {
        let _ = writeln!(
            out,
            "    {:x} {:x} - {:x}  ({:.2})",
            r.size, r.count, r.total, r.percent
        );
    }
    let _ = writeln!(out, "    busy: {busy:#x} bytes in {} sizes", rows.len());
    for c in components.iter().filter(|c| c.busy_blocks > 0) {
        let _ = writeln!(
            out,
            "    {}: {:#x} bytes in {:x} blocks",
            c.front_end.name(),
            c.busy_bytes,
            c.busy_blocks
        );
    }
    out
}

/// Blocks, one per line, streamed.
pub fn blocks_text<'a>(
    out: &mut dyn std::io::Write,
    blocks: impl Iterator<Item = (u64, &'a Block)>,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:>14} {:>18} {:>18} {:>10} {:>10} {:>5} {:<5} FrontEnd",
        "Heap", "HEAP_ENTRY", "UserPtr", "UserSize", "BlockSize", "Flags", "State"
    )?;
    let mut n = 0usize;
    for (heap, b) in blocks {
        n += 1;
        writeln!(
            out,
            "{:>14} {:>18} {:>18} {:>10} {:>10}  [{:02x}] {:<5} {:<8} {}",
            addr(heap),
            addr(b.entry),
            addr(b.address),
            format!("{:#x}", b.size),
            format!("{:#x}", b.block_size),
            b.flags,
            b.state.name(),
            b.front_end.name(),
            if b.internal { "internal" } else { "" }
        )?;
    }
    writeln!(out, "{n} blocks")
}

/// The block holding an address, like `!heap -p -a`.
pub fn block_text(addr_asked: u64, found: Option<(u64, &Block)>, bits: Option<u32>) -> String {
    let mut out = String::new();
    let Some((heap, b)) = found else {
        let _ = writeln!(
            out,
            "address {} is not in any heap block this dump's heaps hold",
            addr(addr_asked)
        );
        return out;
    };
    let _ = writeln!(out, "address {} found in", addr(addr_asked));
    let _ = writeln!(
        out,
        "    heap {}{}, {} block{}",
        addr(heap),
        bits.map(|b| format!(" ({b}-bit)")).unwrap_or_default(),
        b.front_end.name(),
        if b.internal { " (heap metadata)" } else { "" }
    );
    let _ = writeln!(out, "    HEAP_ENTRY  {}", addr(b.entry));
    let _ = writeln!(out, "    UserPtr     {}", addr(b.address));
    let _ = writeln!(
        out,
        "    UserSize    {:#x} ({} bytes, {})",
        b.size,
        b.size,
        if b.state == crate::heap::State::Busy {
            "requested"
        } else {
            "usable"
        }
    );
    let _ = writeln!(out, "    BlockSize   {:#x}", b.block_size);
    let _ = writeln!(out, "    Flags       [{:02x}]", b.flags);
    let _ = writeln!(out, "    State       {}", b.state.name());
    if addr_asked >= b.address {
        let _ = writeln!(
            out,
            "    Offset      +{:#x} into the user data",
            addr_asked - b.address
        );
    } else {
        let _ = writeln!(out, "    Offset      in the block header");
    }
    if b.trace != 0 {
        let _ = writeln!(out, "    Stack record {}", addr(b.trace));
    }
    out
}
