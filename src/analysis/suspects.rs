//! Leak suspects (`top` and `leaks` end with them; docs/leaks.md): the call stacks (or, without
//! allocation stacks, the sizes) whose outstanding blocks look most like a leak, each with the
//! evidence that says so, strongest first:
//!
//! 1. unreachable blocks: nothing the scan reaches points to them (`leaks` only);
//! 2. growth since a baseline dump (`--baseline`), matched by symbolic stack as `diff` matches;
//! 3. many blocks of one size from one stack, more than half of its blocks (the shape of a leak
//!    in a loop);
//! 4. a large share of the outstanding bytes.
//!
//! Suspects are ranked by how many kinds of evidence they have (independent signs agreeing are
//! worth more than one strong sign: a leak in a loop is typically unreachable, growing and of one
//! size), then by unreachable bytes, growth in bytes, blocks of one size, outstanding bytes. The
//! evidence, not a score, is what the views print.

use super::diff::{stack_key, SideEntry};
use super::heaps::is_user_busy;
use super::top::{By, Top, NO_STACK};
use crate::fasthash::{FastMap, FastSet};
use crate::heap::HeapWalk;
use crate::stacks::symbols::Symbolizer;
use crate::stacks::Stack;
use crate::value::pct;
use rayon::prelude::*;
use std::collections::HashMap;

/// At most this many suspects.
pub const LIMIT: usize = 5;
/// Blocks of one size from one stack that count as evidence.
pub const MANY: u64 = 100;
/// A share of the outstanding bytes (percent) that counts as evidence.
pub const LARGE_SHARE: f64 = 10.0;

/// A count and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Amount {
    /// Blocks.
    pub count: u64,
    /// Requested bytes.
    pub bytes: u64,
}

/// Unreachable blocks by stack record (`(bits, record)`; `(0, 0)` for blocks without one), or by
/// size (`(0, size)`) when the ranking is by size.
pub type Unreachable = FastMap<(u32, u64), Amount>;

/// One suspect and its evidence.
#[derive(Clone, Debug)]
pub struct Suspect {
    /// Its ranking key: the stack record (`0x…`), or the size (`0x…`) without stacks.
    pub key: String,
    /// The stack, when traced.
    pub stack: Option<Stack>,
    /// Its outstanding blocks and bytes.
    pub outstanding: Amount,
    /// Share of all outstanding bytes, percent.
    pub share: f64,
    /// Its unreachable blocks (`leaks` only).
    pub unreachable: Option<Amount>,
    /// The size more than half of its blocks have and how many do, when that is [`MANY`] or
    /// more.
    pub same_size: Option<(u64, u64)>,
    /// Change since the baseline (blocks, bytes), when one was given.
    pub growth: Option<(i128, i128)>,
}

/// What the suspects are drawn from.
pub struct Inputs<'a> {
    /// The walks (all busy blocks).
    pub walks: &'a [HeapWalk],
    /// Outstanding memory ranked by stack (or by size when nothing is traced).
    pub ranking: &'a Top,
    /// The symbolizer of the ranking's stacks.
    pub sym: &'a Symbolizer,
    /// Unreachable blocks, when the reachability was computed.
    pub unreachable: Option<&'a Unreachable>,
    /// The baseline's side of the same ranking, keyed as `diff` keys it.
    pub baseline: Option<&'a HashMap<String, SideEntry>>,
}

/// The suspects of `inputs`, strongest evidence first, at most [`LIMIT`].
pub fn find(inputs: &Inputs<'_>) -> Vec<Suspect> {
    let top = inputs.ranking;
    let by_stack = top.by == By::Stack;
    let total = top.health.busy_bytes;
    let sizes = if by_stack {
        dominant_sizes(inputs.walks)
    } else {
        FastMap::default()
    };
    let mut out: Vec<Suspect> = top
        .entries
        .iter()
        .map(|e| {
            let record = e.stack.as_ref().map(|s| (s.bits, s.record));
            let size_key = (!by_stack)
                .then(|| u64::from_str_radix(e.key.trim_start_matches("0x"), 16).ok())
                .flatten();
            let key = match (record, size_key) {
                (Some(r), _) => Some(r),
                (None, Some(s)) => Some((0, s)),
                (None, None) => (e.key == NO_STACK).then_some((0, 0)),
            };
            let unreachable = inputs
                .unreachable
                .map(|u| key.and_then(|k| u.get(&k).copied()).unwrap_or_default());
            let same_size = match (record, size_key) {
                (Some(r), _) => sizes.get(&r).copied(),
                (None, Some(s)) => Some((s, e.count)),
                _ => None,
            }
            .filter(|&(_, n)| n >= MANY);
            let growth = inputs.baseline.map(|b| {
                let key = match &e.stack {
                    Some(s) => stack_key(inputs.sym, s),
                    None => e.key.clone(),
                };
                let before = b.get(&key).map_or((0, 0), |s| (s.count, s.bytes));
                (
                    i128::from(e.count) - i128::from(before.0),
                    i128::from(e.bytes) - i128::from(before.1),
                )
            });
            Suspect {
                key: e.key.clone(),
                stack: e.stack.clone(),
                outstanding: Amount {
                    count: e.count,
                    bytes: e.bytes,
                },
                share: pct(e.bytes, total),
                unreachable,
                same_size,
                growth,
            }
        })
        .filter(|s| {
            s.unreachable.is_some_and(|u| u.count > 0)
                || s.growth.is_some_and(|g| g.1 > 0)
                || s.same_size.is_some()
                || s.share >= LARGE_SHARE
        })
        .collect();
    out.sort_by(|a, b| {
        let u = |s: &Suspect| s.unreachable.map_or(0, |u| u.bytes);
        let g = |s: &Suspect| s.growth.map_or(0, |g| g.1.max(0));
        let n = |s: &Suspect| s.same_size.map_or(0, |x| x.1);
        let kinds = |s: &Suspect| {
            usize::from(u(s) > 0)
                + usize::from(g(s) > 0)
                + usize::from(n(s) > 0)
                + usize::from(s.share >= LARGE_SHARE)
        };
        kinds(b)
            .cmp(&kinds(a))
            .then(u(b).cmp(&u(a)))
            .then(g(b).cmp(&g(a)))
            .then(n(b).cmp(&n(a)))
            .then(b.outstanding.bytes.cmp(&a.outstanding.bytes))
            .then(a.key.cmp(&b.key))
    });
    out.truncate(LIMIT);
    out
}

/// The traced busy user blocks of `w`: (its stack, its size).
fn traced(w: &HeapWalk) -> impl Iterator<Item = ((u32, u64), u64)> + '_ {
    w.blocks
        .iter()
        .filter(|b| is_user_busy(b) && b.trace != 0)
        .map(move |b| ((w.bits, b.trace), b.size))
}

/// Per stack record (`(bits, record)`): the requested size that more than half of its busy
/// blocks have, and how many do; stacks without such a size are left out. A majority vote per
/// heap (Boyer–Moore) names at most one candidate per stack and heap (a majority of all a
/// stack's blocks is a majority in some heap), a second pass counts the candidates: memory per
/// stack and heap, not per size.
fn dominant_sizes(walks: &[HeapWalk]) -> FastMap<(u32, u64), (u64, u64)> {
    let candidates: FastSet<((u32, u64), u64)> = walks
        .par_iter()
        .map(|w| {
            let mut vote: FastMap<(u32, u64), (u64, u64)> = FastMap::default();
            for (stack, size) in traced(w) {
                let e = vote.entry(stack).or_insert((size, 0));
                if e.1 == 0 {
                    *e = (size, 1);
                } else if e.0 == size {
                    e.1 += 1;
                } else {
                    e.1 -= 1;
                }
            }
            vote.into_iter()
                .filter(|(_, (_, n))| *n > 0)
                .map(|(stack, (size, _))| (stack, size))
                .collect::<Vec<_>>()
        })
        .flatten()
        .collect();
    type Counts = (FastMap<(u32, u64), u64>, FastMap<((u32, u64), u64), u64>);
    let (totals, hits): Counts = walks
        .par_iter()
        .map(|w| {
            let mut c: Counts = Default::default();
            for (stack, size) in traced(w) {
                *c.0.entry(stack).or_default() += 1;
                if candidates.contains(&(stack, size)) {
                    *c.1.entry((stack, size)).or_default() += 1;
                }
            }
            c
        })
        .reduce(Counts::default, |mut a, b| {
            for (k, v) in b.0 {
                *a.0.entry(k).or_default() += v;
            }
            for (k, v) in b.1 {
                *a.1.entry(k).or_default() += v;
            }
            a
        });
    let mut out: FastMap<(u32, u64), (u64, u64)> = FastMap::default();
    for ((stack, size), n) in hits {
        if 2 * n > totals.get(&stack).copied().unwrap_or(0) {
            out.insert(stack, (size, n));
        }
    }
    out
}
