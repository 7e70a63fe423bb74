//! The `blocks` view (every block that passes a filter, streamed: millions of rows are produced
//! while they are written) and the `block` view (the block holding one address, with its
//! allocation stack). A [`BlockRow`] serialized is one element of `blocks --json`.

use crate::analysis::blocks::{self, BlockFilter};
use crate::heap::{Block, FrontEnd, HeapWalk, State};
use crate::stacks::symbols::Symbolizer;
use crate::stacks::StackTable;
use crate::value::Hex;
use crate::view::frame::FrameView;
use serde::{Serialize, Serializer};
use std::collections::HashMap;

/// One block as every format shows it.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct BlockRow<'a> {
    /// The heap it belongs to.
    pub heap: Hex,
    /// Its header (`HEAP_ENTRY`, `_HEAP_VIRTUAL_ALLOC_ENTRY`, or the page-heap virtual block).
    pub entry: Hex,
    /// The user address.
    pub address: Hex,
    /// Requested size (free blocks: usable bytes).
    pub size: u64,
    /// The whole block.
    pub block_size: u64,
    /// Busy or free.
    pub state: State,
    /// Which part of the heap manager holds it.
    pub front_end: FrontEnd,
    /// The header's flags byte.
    pub flags: u8,
    /// Heap metadata.
    pub internal: bool,
    /// Its +ust stack record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<Hex>,
    /// Its stack's raw return addresses, innermost first, as recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<Frames<'a>>,
    /// Its stack's frames as every view reads them (`module!function+0xoff [file @ line]`), one
    /// per return address of `stack`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<&'a [String]>,
}

impl<'a> BlockRow<'a> {
    /// The row of `b` of heap `heap`, with its recorded stack and the stack's frame texts.
    pub fn new(heap: u64, b: &Block, stack: Option<(&'a [u64], &'a [String])>) -> Self {
        BlockRow {
            heap: Hex(heap),
            entry: Hex(b.entry),
            address: Hex(b.address),
            size: b.size,
            block_size: b.block_size,
            state: b.state,
            front_end: b.front_end,
            flags: b.flags,
            internal: b.internal,
            trace: (b.trace != 0).then_some(Hex(b.trace)),
            stack: stack.map(|(s, _)| Frames(s)),
            frames: stack.map(|(_, f)| f),
        }
    }
}

/// Return addresses, serialized as `"0x…"` strings.
#[derive(Clone, Copy, Debug)]
pub struct Frames<'a>(pub &'a [u64]);

impl Serialize for Frames<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|&a| Hex(a)))
    }
}

/// Everything `blocks` prints: the blocks of the walked heaps that pass the filter. Serialized,
/// the array of their rows.
pub struct BlocksView {
    walks: Vec<HeapWalk>,
    filter: BlockFilter,
    stacks: StackTable,
    /// Each stack's frame texts, index for index with `stacks.stacks`.
    texts: Vec<Vec<String>>,
    bits: HashMap<u64, u32>,
}

impl BlocksView {
    /// The blocks of `walks` that pass `filter`, with the stacks of `stacks`, their frames read
    /// with `sym`.
    pub fn new(
        walks: Vec<HeapWalk>,
        filter: BlockFilter,
        stacks: StackTable,
        sym: &Symbolizer,
    ) -> Self {
        let bits = walks.iter().map(|w| (w.heap, w.bits)).collect();
        let texts = stacks
            .stacks
            .iter()
            .map(|s| s.frames.iter().map(|&a| sym.display(a)).collect())
            .collect();
        BlocksView {
            walks,
            filter,
            stacks,
            texts,
            bits,
        }
    }

    /// The frame texts of the stack at `index` in [`BlocksView::stacks`].
    pub fn frame_texts(&self, index: usize) -> &[String] {
        &self.texts[index]
    }

    /// The selected blocks with their heaps, in heap then address order.
    pub fn selected(&self) -> Vec<(u64, &Block)> {
        blocks::select(&self.walks, &self.filter)
    }

    /// The pointer width of heap `heap`'s world.
    pub fn bits_of(&self, heap: u64) -> u32 {
        self.bits.get(&heap).copied().unwrap_or(64)
    }

    /// The stacks the blocks point to.
    pub fn stacks(&self) -> &StackTable {
        &self.stacks
    }

    /// The rows, in heap then address order (selected as they are asked for).
    pub fn rows(&self) -> impl Iterator<Item = BlockRow<'_>> {
        blocks::select(&self.walks, &self.filter)
            .into_iter()
            .map(|(heap, b)| {
                let i = self.stacks.index_of(self.bits_of(heap), b.trace);
                let stack = i.map(|i| (self.stacks.stacks[i].frames.as_slice(), &*self.texts[i]));
                BlockRow::new(heap, b, stack)
            })
    }
}

impl Serialize for BlocksView {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.rows())
    }
}

/// Everything `block ADDR` prints.
#[derive(Clone, Debug)]
pub struct BlockView {
    /// The address asked about.
    pub asked: Hex,
    /// The block holding it, when one does.
    pub found: Option<Found>,
    /// When no block does: why, in one sentence (where the address is instead).
    pub outside: Option<String>,
}

/// The block holding the address.
#[derive(Clone, Debug)]
pub struct Found {
    /// Its heap.
    pub heap: u64,
    /// The heap's width.
    pub bits: Option<u32>,
    /// The block.
    pub block: Block,
    /// Its allocation stack.
    pub stack: AllocationStack,
    /// What it holds, when its content says (a C++ class from its vtable, text).
    pub type_name: Option<String>,
    /// Symbol warnings (PDBs refused).
    pub notes: Vec<String>,
}

/// A block's allocation stack, or why there is none.
#[derive(Clone, Debug)]
pub enum AllocationStack {
    /// The recorded frames, resolved.
    Frames(Vec<FrameView>),
    /// The block points to a record that cannot be read, and why.
    Unreadable(String),
    /// No stack was recorded, and why, when that can be told.
    None(Option<String>),
}

impl Found {
    /// The row `blocks --json` would print for it, without its stack.
    pub fn row(&self) -> BlockRow<'static> {
        BlockRow::new(self.heap, &self.block, None)
    }

    /// The recorded return addresses and their frames' texts.
    pub fn recorded(&self) -> Option<(Vec<u64>, Vec<String>)> {
        match &self.stack {
            AllocationStack::Frames(f) => Some((
                f.iter().map(|f| f.address.0).collect(),
                f.iter().map(|f| f.text.clone()).collect(),
            )),
            _ => None,
        }
    }
}

/// The block's row (with its raw stack, its frames and its type), or `null`.
impl Serialize for BlockView {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        /// A row and the type of its block.
        #[derive(Serialize)]
        struct Typed<'a> {
            #[serde(flatten)]
            row: BlockRow<'a>,
            #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
            type_name: Option<&'a str>,
        }
        let recorded = self.found.as_ref().and_then(Found::recorded);
        self.found
            .as_ref()
            .map(|f| Typed {
                row: BlockRow {
                    stack: recorded.as_ref().map(|(a, _)| Frames(a)),
                    frames: recorded.as_ref().map(|(_, t)| t.as_slice()),
                    ..f.row()
                },
                type_name: f.type_name.as_deref(),
            })
            .serialize(s)
    }
}
