//! Outstanding bytes by call stack as Brendan Gregg's folded stacks: one line per stack, its frames
//! outermost first, joined by `;`, then the value. Flamegraph tools (inferno, flamegraph.pl,
//! speedscope) read this; `analyze` draws its flamegraphs from it.
//!
//! A frame is named by its function (`module!function`, without the offset, so that calls from
//! one function merge) or, without symbols, by its call site (`module+0xoff`); functions inlined
//! at a call follow it as frames of their own. The allocator frames at the innermost end (those
//! `top` skips) are left out, as `top` attributes past them; blocks without a stack are one frame,
//! `(no stack)`.

use super::top::{By, SkipList, Top, NO_STACK};
use crate::stacks::symbols::Symbolizer;
use std::collections::BTreeMap;

/// One folded stack: its frames outermost first, and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folded {
    /// Frame names, outermost first.
    pub frames: Vec<String>,
    /// Outstanding bytes (or, in a differential set, the older dump's).
    pub bytes: u64,
}

/// The folded stacks of a ranking by stack (`top.by` must be [`By::Stack`]), merged where the
/// frame names agree, sorted by their text.
pub fn folded(top: &Top, sym: &Symbolizer, skip: &SkipList) -> Vec<Folded> {
    debug_assert_eq!(top.by, By::Stack);
    let mut merged: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    for e in &top.entries {
        let frames = match &e.stack {
            Some(s) => names(&s.frames, sym, skip),
            None => vec![NO_STACK.to_string()],
        };
        *merged.entry(frames).or_default() += e.bytes;
    }
    merged
        .into_iter()
        .map(|(frames, bytes)| Folded { frames, bytes })
        .collect()
}

/// Frame names outermost first, from return addresses innermost first.
fn names(frames: &[u64], sym: &Symbolizer, skip: &SkipList) -> Vec<String> {
    let first = frames
        .iter()
        .position(|&a| !skip.skips(sym, a))
        .unwrap_or(frames.len().saturating_sub(1));
    let mut out = Vec::new();
    for &a in frames[first..].iter().rev() {
        let f = sym.frame(a);
        let module = f.module.map(|m| sym.modules().get(m).short.as_str());
        out.push(match (module, f.function) {
            (Some(m), Some((func, _))) => format!("{m}!{func}"),
            (Some(m), None) => format!("{m}+{:#x}", f.offset),
            (None, _) => format!("{a:#x}"),
        });
        // Inlined functions, innermost first in the record: outermost first here.
        for i in f.inlined.iter().rev() {
            out.push(match module {
                Some(m) => format!("{m}!{} (inline)", i.function),
                None => format!("{} (inline)", i.function),
            });
        }
    }
    if out.is_empty() {
        out.push(NO_STACK.to_string());
    }
    out
}

/// A folded line's frame: no `;` (the separator), no line breaks; the count follows the last
/// space, so spaces may stay.
pub fn clean(frame: &str) -> String {
    frame
        .chars()
        .map(|c| match c {
            ';' => ':',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// The differential set of two dumps: every stack of either with its bytes in each (0 where it
/// is absent), as `stack before after` lines pair them (flamegraph.pl's `difffolded` form).
pub fn differential(before: &[Folded], after: &[Folded]) -> Vec<(Vec<String>, u64, u64)> {
    let mut both: BTreeMap<&[String], (u64, u64)> = BTreeMap::new();
    for f in before {
        both.entry(&f.frames).or_default().0 += f.bytes;
    }
    for f in after {
        both.entry(&f.frames).or_default().1 += f.bytes;
    }
    both.into_iter()
        .map(|(frames, (b, a))| (frames.to_vec(), b, a))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_never_hold_the_separator() {
        assert_eq!(clean("a;b\nc"), "a:b c");
        assert_eq!(clean("mod!f [x.cpp @ 3]"), "mod!f [x.cpp @ 3]");
    }

    #[test]
    fn the_differential_set_pairs_both_sides() {
        let f = |s: &[&str], bytes| Folded {
            frames: s.iter().map(|x| x.to_string()).collect(),
            bytes,
        };
        let d = differential(
            &[f(&["a", "b"], 10)],
            &[f(&["a", "b"], 30), f(&["a", "c"], 5)],
        );
        assert_eq!(
            d,
            vec![
                (vec!["a".into(), "b".into()], 10, 30),
                (vec!["a".into(), "c".into()], 0, 5)
            ]
        );
    }
}
