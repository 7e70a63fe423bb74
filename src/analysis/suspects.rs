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
use super::top::NO_STACK;
use crate::fasthash::{FastMap, FastSet};
use crate::heap::HeapWalk;
use crate::stacks::symbols::Symbolizer;
use crate::stacks::{Stack, StackTable};
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
    /// Their stacks.
    pub table: &'a StackTable,
    /// The symbolizer of those stacks.
    pub sym: &'a Symbolizer,
    /// Unreachable blocks, when the reachability was computed.
    pub unreachable: Option<&'a Unreachable>,
    /// The baseline's side of the same ranking (by stack, or by size without stacks), keyed as
    /// `diff` keys it.
    pub baseline: Option<&'a HashMap<String, SideEntry>>,
}

/// An outstanding amount and what it is of: a stack, blocks without one, or a size.
struct Candidate {
    key: String,
    stack: Option<Stack>,
    amount: Amount,
    /// Its key in [`Unreachable`].
    unreachable_key: (u32, u64),
    /// Its size and count when more than half of its blocks have one size.
    same_size: Option<(u64, u64)>,
}

/// The suspects of `inputs`, strongest evidence first, at most [`LIMIT`]: by stack when any
/// block has one, else by size.
pub fn find(inputs: &Inputs<'_>) -> Vec<Suspect> {
    let traced = inputs
        .walks
        .iter()
        .any(|w| w.blocks.iter().any(|b| b.trace != 0));
    let candidates = if traced {
        by_stack(inputs.walks, inputs.table)
    } else {
        by_size(inputs.walks)
    };
    let total: u64 = candidates.iter().map(|c| c.amount.bytes).sum();
    let mut out: Vec<Suspect> = candidates
        .into_iter()
        .map(|c| {
            let unreachable = inputs
                .unreachable
                .map(|u| u.get(&c.unreachable_key).copied().unwrap_or_default());
            let growth = inputs.baseline.map(|b| {
                let key = match &c.stack {
                    Some(s) => stack_key(inputs.sym, s),
                    None => c.key.clone(),
                };
                let before = b.get(&key).map_or((0, 0), |s| (s.count, s.bytes));
                (
                    i128::from(c.amount.count) - i128::from(before.0),
                    i128::from(c.amount.bytes) - i128::from(before.1),
                )
            });
            Suspect {
                share: pct(c.amount.bytes, total),
                key: c.key,
                stack: c.stack,
                outstanding: c.amount,
                unreachable,
                same_size: c.same_size.filter(|&(_, n)| n >= MANY),
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

/// Per stack: outstanding blocks and bytes; per stack and candidate size: blocks; blocks without
/// a stack record.
type Counts = (
    FastMap<(u32, u64), Amount>,
    FastMap<((u32, u64), u64), u64>,
    Amount,
);

/// Add blocks and bytes to an amount.
fn add(a: &mut Amount, count: u64, bytes: u64) {
    a.count += count;
    a.bytes += bytes;
}

/// Each heap's majority-vote candidate size per stack (Boyer–Moore): `(stack, size)`.
fn majority_candidates(walks: &[HeapWalk]) -> FastSet<((u32, u64), u64)> {
    walks
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
        .collect()
}

/// Outstanding blocks per stack record, and blocks without a (readable) stack, each with the
/// size more than half of its blocks have, if one does. A majority vote per heap (Boyer–Moore)
/// names at most one candidate size per stack and heap (a majority of all a stack's blocks is a
/// majority in some heap), a second pass counts the candidates and the totals: memory per stack
/// and heap, not per size.
fn by_stack(walks: &[HeapWalk], table: &StackTable) -> Vec<Candidate> {
    let candidates = majority_candidates(walks);
    let (totals, hits, untraced): Counts = walks
        .par_iter()
        .map(|w| {
            let mut c: Counts = Default::default();
            for b in w.blocks.iter().filter(|b| is_user_busy(b)) {
                if b.trace == 0 {
                    add(&mut c.2, 1, b.size);
                    continue;
                }
                let stack = (w.bits, b.trace);
                add(c.0.entry(stack).or_default(), 1, b.size);
                if candidates.contains(&(stack, b.size)) {
                    *c.1.entry((stack, b.size)).or_default() += 1;
                }
            }
            c
        })
        .reduce(Counts::default, |mut a, b| {
            for (k, v) in b.0 {
                add(a.0.entry(k).or_default(), v.count, v.bytes);
            }
            for (k, v) in b.1 {
                *a.1.entry(k).or_default() += v;
            }
            add(&mut a.2, b.2.count, b.2.bytes);
            a
        });
    let mut majority: FastMap<(u32, u64), (u64, u64)> = FastMap::default();
    for ((stack, size), n) in hits {
        if 2 * n > totals.get(&stack).map_or(0, |t| t.count) {
            majority.insert(stack, (size, n));
        }
    }
    let mut no_stack = untraced;
    let mut out: Vec<Candidate> = Vec::new();
    for ((bits, record), amount) in totals {
        match table.get(bits, record) {
            Some(s) => out.push(Candidate {
                key: format!("{record:#x}"),
                stack: Some(s.clone()),
                amount,
                unreachable_key: (bits, record),
                same_size: majority.get(&(bits, record)).copied(),
            }),
            // An unreadable record counts as no stack, as in `top`.
            None => add(&mut no_stack, amount.count, amount.bytes),
        }
    }
    if no_stack.count > 0 {
        out.push(Candidate {
            key: NO_STACK.to_string(),
            stack: None,
            amount: no_stack,
            unreachable_key: (0, 0),
            same_size: None,
        });
    }
    out
}

/// Outstanding blocks per requested size (`0x…`): for dumps without allocation stacks.
fn by_size(walks: &[HeapWalk]) -> Vec<Candidate> {
    let sizes: FastMap<u64, u64> = walks
        .par_iter()
        .map(|w| {
            let mut m: FastMap<u64, u64> = FastMap::default();
            for b in w.blocks.iter().filter(|b| is_user_busy(b)) {
                *m.entry(b.size).or_default() += 1;
            }
            m
        })
        .reduce(FastMap::default, |mut a, b| {
            for (k, v) in b {
                *a.entry(k).or_default() += v;
            }
            a
        });
    sizes
        .into_iter()
        .map(|(size, count)| Candidate {
            key: format!("{size:#x}"),
            stack: None,
            amount: Amount {
                count,
                bytes: count * size,
            },
            unreachable_key: (0, size),
            same_size: Some((size, count)),
        })
        .collect()
}
