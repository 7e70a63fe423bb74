//! `heapdiag blocks` (streamed: one line per block, as the rows come) and `heapdiag block ADDR`
//! (`!heap -p -a`) as text, JSON and CSV.

use super::format::{exact, notes};
use super::{encode, Render, Style};
use crate::heap::State;
use crate::value::plural;
use crate::view::blocks::{AllocationStack, BlockView, BlocksView, Found};
use rayon::prelude::*;
use std::io::{self, Write};

impl Render for BlocksView {
    /// One line per block: addresses in hex, sizes in bytes (with `--windbg`, in hex as
    /// `!heap -flt` prints them).
    fn text(&self, out: &mut dyn Write, style: &Style) -> io::Result<()> {
        writeln!(
            out,
            "{:>14} {:>18} {:>18} {:>10} {:>10} {:>5} {:<5} FrontEnd",
            "Heap", "HEAP_ENTRY", "UserPtr", "UserSize", "BlockSize", "Flags", "State"
        )?;
        // One reused line, written at once: millions of rows.
        let mut line = String::with_capacity(128);
        let rows = self.selected();
        for &(heap, b) in &rows {
            use std::fmt::Write as _;
            line.clear();
            let _ = write!(line, "{heap:>#14x} {:>#18x} {:>#18x} ", b.entry, b.address);
            let _ = if style.windbg {
                write!(line, "{:>#10x} {:>#10x}", b.size, b.block_size)
            } else {
                write!(line, "{:>10} {:>10}", b.size, b.block_size)
            };
            let _ = writeln!(
                line,
                "  [{:02x}] {:<5} {:<8} {}",
                b.flags,
                b.state.name(),
                b.front_end.name(),
                if b.internal { "internal" } else { "" }
            );
            out.write_all(line.as_bytes())?;
        }
        let n = rows.len() as u64;
        writeln!(out, "{}", plural(n, "block"))
    }

    /// A JSON array written one block per line (`docs/json.md`): the rows as [`BlockRow`]
    /// serializes them, encoded in parallel chunks (see [`encode`]).
    fn json(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(b"[")?;
        json_rows(self, out, (b"\n", b",\n"), b"")?;
        out.write_all(b"\n]\n")
    }

    fn csv(&self, out: &mut dyn Write, _style: &Style) -> io::Result<()> {
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
    // Each stack record's raw frames and frame texts, encoded once.
    let frames: Vec<Vec<u8>> = v
        .stacks()
        .stacks
        .par_iter()
        .enumerate()
        .map(|(i, s)| {
            let mut b = b",\"stack\":".to_vec();
            b.extend_from_slice(&encode::hex_array(&s.frames));
            b.extend_from_slice(b",\"frames\":");
            encode::string_array(&mut b, v.frame_texts(i));
            b
        })
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
                buf.extend_from_slice(&frames[i]);
            }
        }
        buf.push(b'}');
        buf.extend_from_slice(end);
    })
}

impl Render for BlockView {
    fn text(&self, out: &mut dyn Write, style: &Style) -> io::Result<()> {
        let Some(f) = &self.found else {
            // The command line says why on standard error (exit code 5).
            return Ok(());
        };
        writeln!(out, "address {} found in", self.asked)?;
        block_text(out, f, self.asked.0, style)?;
        match &f.stack {
            AllocationStack::Frames(frames) => {
                writeln!(out, "    Allocation stack:")?;
                for fr in frames {
                    for line in fr.lines() {
                        writeln!(out, "        {} {line}", fr.address)?;
                    }
                }
            }
            AllocationStack::Unreadable(why) => writeln!(
                out,
                "    Allocation stack: recorded, but its record cannot be read: {why}"
            )?,
            AllocationStack::None(why) => writeln!(
                out,
                "    Allocation stack: none recorded{}",
                why.as_ref().map(|w| format!(": {w}")).unwrap_or_default()
            )?,
        }
        notes(out, style, "    ", &f.notes)
    }
}

/// The block's header fields, like `!heap -p -a`; sizes in bytes (with `--windbg` in hex).
fn block_text(out: &mut dyn Write, f: &Found, asked: u64, style: &Style) -> io::Result<()> {
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
    let what = if b.state == State::Busy {
        "requested"
    } else {
        "usable"
    };
    if style.windbg {
        writeln!(out, "    UserSize    {:#x} ({what})", b.size)?;
        writeln!(out, "    BlockSize   {:#x}", b.block_size)?;
    } else {
        writeln!(out, "    UserSize    {} ({what})", exact(b.size))?;
        writeln!(out, "    BlockSize   {}", exact(b.block_size))?;
    }
    writeln!(out, "    Flags       [{:02x}]", b.flags)?;
    writeln!(out, "    State       {}", b.state.name())?;
    match asked.checked_sub(b.address) {
        Some(off) if style.windbg => writeln!(out, "    Offset      +{off:#x} into the user data")?,
        Some(off) => writeln!(
            out,
            "    Offset      {} into the user data",
            plural(off, "byte")
        )?,
        None => writeln!(out, "    Offset      in the block header")?,
    }
    if let Some(t) = &f.type_name {
        writeln!(out, "    Type        {t}")?;
    }
    if let Some(t) = row.trace {
        writeln!(out, "    Stack record {t}")?;
    }
    Ok(())
}
