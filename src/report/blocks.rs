//! `heapdiag blocks` (streamed: one line per block, as the rows come) and `heapdiag block ADDR`
//! (`!heap -p -a`) as text, JSON and CSV.

use super::csv::{self, col, hex, num, opt, Column};
use super::{json, Render};
use crate::heap::State;
use crate::view::blocks::{AllocationStack, BlockRow, BlockView, BlocksView, Found};
use std::io::{self, Write};

impl Render for BlocksView {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "{:>14} {:>18} {:>18} {:>10} {:>10} {:>5} {:<5} FrontEnd",
            "Heap", "HEAP_ENTRY", "UserPtr", "UserSize", "BlockSize", "Flags", "State"
        )?;
        let mut n = 0usize;
        for b in self.rows() {
            n += 1;
            writeln!(
                out,
                "{:>14} {:>18} {:>18} {:>10} {:>10}  [{:02x}] {:<5} {:<8} {}",
                b.heap.to_string(),
                b.entry.to_string(),
                b.address.to_string(),
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

    /// A JSON array written one block per line, as the rows come (no document in memory).
    fn json(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(b"[")?;
        for (i, row) in self.rows().enumerate() {
            out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
            json::compact(&row, out)?;
        }
        out.write_all(b"\n]\n")
    }

    fn csv(&self, out: &mut dyn Write) -> io::Result<()> {
        let columns: [Column<BlockRow>; 10] = [
            hex("heap", |b| b.heap.0),
            hex("entry", |b| b.entry.0),
            hex("address", |b| b.address.0),
            num("size", |b| b.size),
            num("block_size", |b| b.block_size),
            col("state", |b| b.state.name().into()),
            col("front_end", |b| b.front_end.name().into()),
            col("flags", |b| format!("{:#04x}", b.flags)),
            col("internal", |b| b.internal.to_string()),
            col("trace", |b| opt(&b.trace)),
        ];
        csv::header(out, &columns)?;
        let mut buf = String::new();
        for row in self.rows() {
            csv::row(out, &columns, &row, &mut buf)?;
        }
        Ok(())
    }
}

impl Render for BlockView {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let Some(f) = &self.found else {
            return writeln!(
                out,
                "address {} is not in any heap block this dump's heaps hold",
                self.asked
            );
        };
        writeln!(out, "address {} found in", self.asked)?;
        block_text(out, f, self.asked.0)?;
        match &f.stack {
            AllocationStack::Frames(frames) => {
                writeln!(out, "    Allocation stack:")?;
                for fr in frames {
                    for line in fr.lines() {
                        writeln!(out, "        {} {line}", fr.address)?;
                    }
                }
            }
            AllocationStack::Unreadable => {
                writeln!(out, "    Allocation stack: its record is not readable")?
            }
            AllocationStack::None(why) => writeln!(
                out,
                "    Allocation stack: none recorded{}",
                why.as_ref().map(|w| format!(": {w}")).unwrap_or_default()
            )?,
        }
        for w in &f.notes {
            writeln!(out, "    Note: {w}")?;
        }
        Ok(())
    }
}

/// The block's header fields, like `!heap -p -a`.
fn block_text(out: &mut dyn Write, f: &Found, asked: u64) -> io::Result<()> {
    let b = &f.block;
    let row = f.row();
    writeln!(
        out,
        "    heap {}{}, {} block{}",
        row.heap,
        f.bits.map(|b| format!(" ({b}-bit)")).unwrap_or_default(),
        b.front_end.name(),
        if b.internal { " (heap metadata)" } else { "" }
    )?;
    writeln!(out, "    HEAP_ENTRY  {}", row.entry)?;
    writeln!(out, "    UserPtr     {}", row.address)?;
    writeln!(
        out,
        "    UserSize    {:#x} ({} bytes, {})",
        b.size,
        b.size,
        if b.state == State::Busy {
            "requested"
        } else {
            "usable"
        }
    )?;
    writeln!(out, "    BlockSize   {:#x}", b.block_size)?;
    writeln!(out, "    Flags       [{:02x}]", b.flags)?;
    writeln!(out, "    State       {}", b.state.name())?;
    if asked >= b.address {
        writeln!(
            out,
            "    Offset      +{:#x} into the user data",
            asked - b.address
        )?;
    } else {
        writeln!(out, "    Offset      in the block header")?;
    }
    if let Some(t) = row.trace {
        writeln!(out, "    Stack record {t}")?;
    }
    Ok(())
}
