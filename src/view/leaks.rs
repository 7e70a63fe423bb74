//! The `leaks` view (unreachable blocks, their groups, the roots of garbage with what they keep
//! alive) and the `leaks --why ADDR` view (the chain that keeps a block alive, or why nothing
//! does). Serialized, `leaks --json` and `leaks --why ADDR --json` (docs/json.md).

use crate::analysis::folded::Folded;
use crate::analysis::top::By;
use crate::value::{self, Hex};
use crate::view::frame::FrameView;
use crate::view::suspects::SuspectView;
use serde::Serialize;

/// Everything `leaks` prints.
#[derive(Clone, Debug, Serialize)]
pub struct LeaksView {
    /// What the groups are keyed by.
    pub by: By,
    /// Unreachable busy blocks.
    pub unreachable_blocks: u64,
    /// Their requested bytes.
    pub unreachable_bytes: u64,
    /// All busy user blocks.
    pub busy_blocks: u64,
    /// Their requested bytes.
    pub busy_bytes: u64,
    /// What the scan started from.
    pub roots: RootsSummary,
    /// Every unreachable block, in address order (`leaks`; absent from `analyze`, which shows
    /// the groups and the roots of garbage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocks: Option<Vec<LeakBlock>>,
    /// The unreachable blocks grouped by `by`, most bytes first, at most the limit.
    pub groups: Vec<LeakGroup>,
    /// The roots of garbage, most retained bytes first, at most the limit (the text's list; in
    /// JSON each is the block with `garbage_root` true).
    #[serde(skip)]
    pub garbage_roots: Vec<GarbageRootRow>,
    /// How many roots of garbage there are.
    pub garbage_root_count: u64,
    /// Leak suspects, strongest evidence first.
    pub suspects: Vec<SuspectView>,
    /// What the dump lacks, why keys fell back, PDBs refused.
    pub notes: Vec<String>,
    /// Groups left out by the limit.
    #[serde(skip)]
    pub more_groups: usize,
    /// Roots of garbage left out by the limit.
    #[serde(skip)]
    pub more_roots: usize,
    /// The unreachable bytes by call stack as folded stacks, when asked for (`--folded`).
    #[serde(skip)]
    pub folded: Option<Vec<Folded>>,
}

/// What the scan started from.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RootsSummary {
    /// Thread stacks (a WoW64 thread has two), and the bytes of their live parts.
    pub stacks: u64,
    /// Bytes of the stacks scanned.
    pub stack_bytes: u64,
    /// Register values.
    pub registers: u64,
    /// Writable image sections.
    pub image_sections: u64,
    /// Their bytes.
    pub image_bytes: u64,
    /// TEBs and PEBs.
    pub tebs_and_pebs: u64,
    /// NT heaps' own headers.
    pub heap_headers: u64,
    /// Other private regions (`--roots more`).
    pub private_regions: u64,
    /// Their bytes.
    pub private_bytes: u64,
    /// Roots the dump lacks (ranges not wholly in it, modules whose writable sections cannot be
    /// found): pointers there are not seen, so a block only they point to counts as
    /// unreachable.
    pub missing: u64,
}

/// One unreachable block.
#[derive(Clone, Debug, Serialize)]
pub struct LeakBlock {
    /// Its heap.
    pub heap: Hex,
    /// Its user address.
    pub address: Hex,
    /// Requested size.
    pub size: u64,
    /// Its allocation stack's return addresses, innermost first, as recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<Vec<Hex>>,
    /// What it holds: a C++ class from its vtable, or recognized content.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    /// Whether it is a root of garbage (for a cycle: its first block).
    pub garbage_root: bool,
    /// A root of garbage's retained bytes: its own and those of the blocks it alone keeps alive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retained_bytes: Option<u64>,
    /// A root of garbage that is a cycle: its other blocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycle: Option<Vec<Hex>>,
    /// The root of garbage (its first block) that alone keeps this block, `null` when several
    /// do.
    #[serde(serialize_with = "value::hex_opt")]
    pub retained_by: Option<u64>,
}

/// One group of unreachable blocks.
#[derive(Clone, Debug, Serialize)]
pub struct LeakGroup {
    /// Stack record, module, `module!function`, size or heap (as `top` keys them).
    pub key: String,
    /// Unreachable blocks.
    pub count: u64,
    /// Their requested bytes.
    pub bytes: u64,
    /// The frame the stack is attributed to (`--by stack`; allocator plumbing skipped), as
    /// `top` names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocated_by: Option<String>,
    /// The stack's frames (`--by stack`), innermost first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<Vec<FrameView>>,
}

/// A root of garbage as the text lists it.
#[derive(Clone, Debug)]
pub struct GarbageRootRow {
    /// Its first block's user address.
    pub address: u64,
    /// That block's requested size.
    pub size: u64,
    /// Blocks in the root (more than 1 for a cycle).
    pub members: u64,
    /// Bytes it alone keeps alive, its own included.
    pub retained_bytes: u64,
    /// Blocks it alone keeps alive, its own included.
    pub retained_blocks: u64,
    /// Its first block's type, when known.
    pub type_name: Option<String>,
    /// The frame that allocated its first block (allocator plumbing skipped), when traced.
    pub allocated_by: Option<String>,
}

/// Everything `leaks --why ADDR` prints.
#[derive(Clone, Debug, Serialize)]
pub struct WhyView {
    /// The address asked about.
    pub address: Hex,
    /// The busy block holding it.
    pub block: WhyBlock,
    /// Whether a chain of pointers from a root reaches it.
    pub reachable: bool,
    /// Reachable: the root and the blocks that lead to it, the block itself last. Unreachable:
    /// its root of garbage and the unreachable blocks that lead to it.
    pub chain: Vec<LinkView>,
    /// Unreachable: the unreachable blocks that point into it.
    pub pointed_from: Vec<Hex>,
    /// Unreachable: the root of garbage that alone keeps it, `null` when several do (or when
    /// it is reachable).
    #[serde(serialize_with = "value::hex_opt")]
    pub retained_by: Option<u64>,
    /// What the dump lacks.
    pub notes: Vec<String>,
}

/// The block `--why` is about.
#[derive(Clone, Debug, Serialize)]
pub struct WhyBlock {
    /// Its heap.
    pub heap: Hex,
    /// Its user address.
    pub address: Hex,
    /// Requested size.
    pub size: u64,
    /// What it holds, when known.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    /// Its allocation stack, resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<Vec<FrameView>>,
}

/// One step of a chain.
#[derive(Clone, Debug, Serialize)]
pub struct LinkView {
    /// `"root"` or `"block"`.
    pub kind: &'static str,
    /// The root in words (`stack of thread 0x1000 (64-bit)`, `register rbx of thread 0x1000`,
    /// `app.exe .data`), for a root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// The block's user address, for a block.
    #[serde(
        serialize_with = "value::hex_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub block: Option<u64>,
    /// The block's requested size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The block's type, when known.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    /// Where the pointer to the next step is (absent for registers and the last block).
    #[serde(
        serialize_with = "value::hex_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub at: Option<u64>,
    /// The pointer's value.
    #[serde(
        serialize_with = "value::hex_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub value: Option<u64>,
}
