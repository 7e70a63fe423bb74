//! `heapdiag blocks` (streamed: one line per block, as the rows come) and `heapdiag block ADDR`
//! (`!heap -p -a`) as text, JSON and CSV.

use super::{encode, Render};
use crate::heap::State;
use crate::view::blocks::{AllocationStack, BlockView, BlocksView, Found};
use rayon::prelude::*;
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

    /// A JSON array written one block per line (`docs/json.md`): the rows as [`BlockRow`]
    /// serializes them, encoded in parallel chunks (see [`encode`]).
    fn json(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(b"[")?;
        json_rows(self, out, (b"\n", b",\n"), b"")?;
        out.write_all(b"\n]\n")
    }

    fn csv(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(
            b"heap,entry,address,size,block_size,state,front_end,flags,internal,trace\n",
        )?;
        let rows = self.selected();
        encode::write_rows(out, &rows, (b"", b""), |buf, &(heap, b)| {
            for v in [heap, b.entry, b.address] {
                encode::hex(buf, v);
                buf.push(b',');
            }
            encode::dec(buf, b.size);
            buf.push(b',');
            encode::dec(buf, b.block_size);
            buf.push(b',');
            buf.extend_from_slice(b.state.name().as_bytes());
            buf.push(b',');
            buf.extend_from_slice(b.front_end.name().as_bytes());
            buf.extend_from_slice(b",0x");
            buf.push(HEX[usize::from(b.flags >> 4)]);
            buf.push(HEX[usize::from(b.flags & 0xf)]);
            buf.extend_from_slice(if b.internal { b",true," } else { b",false," });
            if b.trace != 0 {
                encode::hex(buf, b.trace);
            }
            buf.push(b'\n');
        })
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `blocks --format jsonl`: one JSON object per line (the objects of `blocks --json`), for
/// streaming consumers.
pub fn jsonl(v: &BlocksView, out: &mut dyn Write) -> io::Result<()> {
    json_rows(v, out, (b"", b""), b"\n")
}

/// The blocks of `v` as JSON objects, each preceded by `first` (the first) or `between` and
/// followed by `end`.
fn json_rows(
    v: &BlocksView,
    out: &mut dyn Write,
    seps: (&[u8], &[u8]),
    end: &[u8],
) -> io::Result<()> {
    let rows = v.selected();
    // Each stack record's frames, encoded once.
    let frames: Vec<Vec<u8>> = v
        .stacks()
        .stacks
        .par_iter()
        .map(|s| encode::hex_array(&s.frames))
        .collect();
    encode::write_rows(out, &rows, seps, |buf, &(heap, b)| {
        buf.extend_from_slice(b"{\"heap\":");
        encode::hex_string(buf, heap);
        buf.extend_from_slice(b",\"entry\":");
        encode::hex_string(buf, b.entry);
        buf.extend_from_slice(b",\"address\":");
        encode::hex_string(buf, b.address);
        buf.extend_from_slice(b",\"size\":");
        encode::dec(buf, b.size);
        buf.extend_from_slice(b",\"block_size\":");
        encode::dec(buf, b.block_size);
        buf.extend_from_slice(b",\"state\":\"");
        buf.extend_from_slice(b.state.name().as_bytes());
        buf.extend_from_slice(b"\",\"front_end\":\"");
        buf.extend_from_slice(b.front_end.name().as_bytes());
        buf.extend_from_slice(b"\",\"flags\":");
        encode::dec(buf, u64::from(b.flags));
        buf.extend_from_slice(if b.internal {
            b",\"internal\":true"
        } else {
            b",\"internal\":false"
        });
        if b.trace != 0 {
            buf.extend_from_slice(b",\"trace\":");
            encode::hex_string(buf, b.trace);
            if let Some(i) = v.stacks().index_of(v.bits_of(heap), b.trace) {
                buf.extend_from_slice(b",\"stack\":");
                buf.extend_from_slice(&frames[i]);
            }
        }
        buf.push(b'}');
        buf.extend_from_slice(end);
    })
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
    if let Some(t) = &f.type_name {
        writeln!(out, "    Type        {t}")?;
    }
    if let Some(t) = row.trace {
        writeln!(out, "    Stack record {t}")?;
    }
    Ok(())
}
