//! Folded stacks as text (Brendan Gregg's format, `docs/analyze.md`): `frame;frame;frame value`,
//! one stack per line, frames outermost first. `top --folded` gives outstanding bytes;
//! `diff --folded` gives the differential form `frames before after`, which flamegraph.pl and
//! inferno draw as a differential flamegraph.

use crate::analysis::folded::{clean, Folded};
use std::io::{self, Write};

fn stack(out: &mut dyn Write, frames: &[String]) -> io::Result<()> {
    let names: Vec<String> = frames.iter().map(|f| clean(f)).collect();
    out.write_all(names.join(";").as_bytes())
}

/// `frames bytes` lines.
pub fn write(out: &mut dyn Write, stacks: &[Folded]) -> io::Result<()> {
    for f in stacks {
        stack(out, &f.frames)?;
        writeln!(out, " {}", f.bytes)?;
    }
    Ok(())
}

/// `frames before after` lines.
pub fn write_differential(
    out: &mut dyn Write,
    stacks: &[(Vec<String>, u64, u64)],
) -> io::Result<()> {
    for (frames, before, after) in stacks {
        stack(out, frames)?;
        writeln!(out, " {before} {after}")?;
    }
    Ok(())
}
