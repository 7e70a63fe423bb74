//! Leak suspects as `top` and `leaks` show them: each with its evidence in words, computed once.

use crate::analysis::suspects::{Amount, Suspect};
use crate::analysis::top::SkipList;
use crate::stacks::symbols::Symbolizer;
use crate::value::{self, Hex};
use crate::view::frame::FrameView;
use serde::Serialize;

/// One suspect.
#[derive(Clone, Debug, Serialize)]
pub struct SuspectView {
    /// What allocated it: the allocating frame (`module!function+0xoff`, allocator plumbing
    /// skipped) or, without allocation stacks, `blocks of 0x… bytes`.
    pub key: String,
    /// Its stack's record (`BackTrace`), when traced.
    pub backtrace: Option<Hex>,
    /// The stack's frames, innermost first, when traced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<Vec<FrameView>>,
    /// Outstanding blocks and requested bytes.
    pub outstanding: Amount,
    /// Their share of all outstanding bytes, percent.
    #[serde(serialize_with = "value::percent4")]
    pub pct_busy: f64,
    /// Unreachable blocks and bytes (`leaks`; absent from `top`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<Amount>,
    /// The most common size and how many blocks have it, when that is many.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub same_size: Option<SameSize>,
    /// Change since the baseline (`--baseline`): blocks and bytes, signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub growth: Option<Growth>,
}

/// Many blocks of one size.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SameSize {
    /// The requested size.
    pub size: u64,
    /// How many blocks.
    pub count: u64,
}

/// A signed change.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Growth {
    /// Blocks.
    pub count: i128,
    /// Bytes.
    pub bytes: i128,
}

impl SuspectView {
    /// The view of `s`, its frames resolved with `sym`, its allocating frame found with `skip`.
    pub fn new(s: &Suspect, sym: &Symbolizer, skip: &SkipList) -> Self {
        let key = match &s.stack {
            Some(stack) => skip
                .allocator(sym, stack)
                .map_or_else(|| s.key.clone(), |f| sym.display(f)),
            None => match u64::from_str_radix(s.key.trim_start_matches("0x"), 16) {
                Ok(size) if s.key.starts_with("0x") => format!("blocks of {size} B"),
                _ => s.key.clone(),
            },
        };
        SuspectView {
            key,
            backtrace: s.stack.as_ref().map(|st| Hex(st.record)),
            frames: s
                .stack
                .as_ref()
                .map(|st| FrameView::resolve_all(sym, &st.frames)),
            outstanding: s.outstanding,
            pct_busy: s.share,
            unreachable: s.unreachable,
            same_size: s.same_size.map(|(size, count)| SameSize { size, count }),
            growth: s.growth.map(|(count, bytes)| Growth { count, bytes }),
        }
    }
}
