//! The `analyze` view: every analysis of one dump from one walk — the process's facts and what
//! the dump can answer, where the committed memory is, the heaps, outstanding memory by module,
//! function, call stack, size and type, the unreachable blocks, the leak suspects, the growth
//! against a baseline dump, and what to do next — for the terminal summary, `analyze --json` and
//! the HTML report.

use crate::analysis::folded::Folded;
use crate::capabilities::Answer;
use crate::regions::summary::{AddressSummary, Headline};
use crate::view::diff::DiffView;
use crate::view::heaps::HeapsView;
use crate::view::info::InfoView;
use crate::view::leaks::LeaksView;
use crate::view::suspects::SuspectView;
use crate::view::top::TopView;
use serde::Serialize;

/// Everything `analyze` shows.
#[derive(Clone, Debug, Serialize)]
pub struct AnalyzeView {
    /// The dump's facts and what it can answer.
    pub info: InfoView,
    /// Committed memory by part.
    pub headline: Headline,
    /// The `!address -summary` tables.
    pub address: AddressSummary,
    /// The heaps.
    pub heaps: HeapsView,
    /// Outstanding memory by allocating module.
    pub modules: TopView,
    /// By allocating function.
    pub functions: TopView,
    /// By call stack.
    pub stacks: TopView,
    /// By requested size.
    pub sizes: TopView,
    /// By what the blocks hold (C++ class from a vtable, strings).
    pub types: TopView,
    /// The unreachable blocks by call stack and the roots of garbage (`leaks`' view without its
    /// list of every block), when the heaps could be walked.
    pub unreachable: Option<LeaksView>,
    /// Leak suspects, strongest evidence first: unreachable bytes, growth against the
    /// baseline, many blocks of one size, a large share.
    pub suspects: Vec<SuspectView>,
    /// The baseline dump, when one was given.
    pub baseline: Option<String>,
    /// Growth by call stack against the baseline.
    pub diff: Option<DiffView>,
    /// What would let the dump answer more, one sentence each.
    pub next_steps: Vec<String>,
    /// Outstanding bytes by call stack, folded (the flamegraph's input).
    #[serde(skip)]
    pub folded: Vec<Folded>,
    /// Each call stack's bytes in the baseline and now (the differential flamegraph's input).
    #[serde(skip)]
    pub differential: Option<Vec<(Vec<String>, u64, u64)>>,
}

impl AnalyzeView {
    /// The next steps: the reason of every question the dump cannot fully answer, and the notes
    /// of the rankings (missing symbols, stacks that are missing), each once.
    pub fn collect_next_steps(&mut self) {
        let mut steps: Vec<String> = self
            .info
            .capabilities
            .iter()
            .filter(|c| c.answer != Answer::Yes)
            .map(|c| format!("{}: {}", c.question, c.reason))
            .collect();
        for n in self
            .modules
            .notes
            .iter()
            .chain(&self.stacks.notes)
            .chain(&self.types.notes)
            .chain(self.unreachable.iter().flat_map(|u| &u.notes))
            .chain(self.diff.iter().flat_map(|d| &d.notes))
        {
            if !steps.contains(n) {
                steps.push(n.clone());
            }
        }
        self.next_steps = steps;
    }
}
