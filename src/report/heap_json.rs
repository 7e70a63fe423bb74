//! JSON views of the heap commands (`docs/json.md`).

use super::format::addr;
use crate::analysis::heaps::{Component, HeapSummary, SizeRow};
use crate::heap::Block;
use serde::Serialize;
use std::io::{self, Write};

/// One heap of `heaps --json`.
#[derive(Serialize)]
pub struct HeapJson {
    address: String,
    #[serde(rename = "type")]
    kind: &'static str,
    bits: u32,
    walked: bool,
    flags: Option<u32>,
    reserved: u64,
    committed: u64,
    virtual_bytes: u64,
    large_blocks: u64,
    ucr: u64,
    busy_blocks: u64,
    busy_bytes: u64,
    traced_blocks: u64,
    traced_bytes: u64,
    free_blocks: u64,
    free_bytes: u64,
    largest_free: u64,
    external_fragmentation: f64,
    lfh: bool,
    lfh_busy_blocks: u64,
    lfh_busy_bytes: u64,
    lfh_free_blocks: u64,
    lfh_key: Option<String>,
    internal_blocks: u64,
    internal_bytes: u64,
    components: Vec<ComponentJson>,
    coverage: CoverageJson,
    corruptions: Vec<CorruptionJson>,
    notes: Vec<String>,
}

#[derive(Serialize)]
struct ComponentJson {
    front_end: &'static str,
    busy_blocks: u64,
    busy_bytes: u64,
    busy_block_bytes: u64,
    free_blocks: u64,
    free_bytes: u64,
}

impl ComponentJson {
    fn new(c: &Component) -> Self {
        ComponentJson {
            front_end: c.front_end.name(),
            busy_blocks: c.busy_blocks,
            busy_bytes: c.busy_bytes,
            busy_block_bytes: c.busy_block_bytes,
            free_blocks: c.free_blocks,
            free_bytes: c.free_bytes,
        }
    }
}

#[derive(Serialize)]
struct CoverageJson {
    committed: u64,
    header: u64,
    walked: u64,
    not_captured: u64,
    corrupt: u64,
    unexplained: u64,
}

#[derive(Serialize)]
struct CorruptionJson {
    address: String,
    segment: String,
    what: String,
}

impl HeapJson {
    /// Build the view of one heap.
    pub fn new(h: &HeapSummary) -> Self {
        HeapJson {
            address: addr(h.address),
            kind: h.kind.name(),
            bits: h.bits,
            walked: h.analyzed,
            flags: h.flags,
            reserved: h.reserved,
            committed: h.committed,
            virtual_bytes: h.virtual_bytes,
            large_blocks: h.large_blocks,
            ucr: h.ucr,
            busy_blocks: h.busy_blocks,
            busy_bytes: h.busy_bytes,
            traced_blocks: h.traced_blocks,
            traced_bytes: h.traced_bytes,
            free_blocks: h.free_blocks,
            free_bytes: h.free_bytes,
            largest_free: h.largest_free,
            external_fragmentation: (h.external_fragmentation() * 100.0).round() / 100.0,
            lfh: h.lfh,
            lfh_busy_blocks: h.lfh_busy_blocks,
            lfh_busy_bytes: h.lfh_busy_bytes,
            lfh_free_blocks: h.lfh_free_blocks,
            lfh_key: h.lfh_key.map(|k| format!("{k:#x}")),
            internal_blocks: h.internal_blocks,
            internal_bytes: h.internal_bytes,
            components: h.components.iter().map(ComponentJson::new).collect(),
            coverage: CoverageJson {
                committed: h.segment_committed,
                header: h.header,
                walked: h.walked,
                not_captured: h.not_captured,
                corrupt: h.corrupt,
                unexplained: h.unexplained,
            },
            corruptions: h
                .corruptions
                .iter()
                .map(|c| CorruptionJson {
                    address: addr(c.address),
                    segment: addr(c.segment),
                    what: c.what.clone(),
                })
                .collect(),
            notes: h.notes.clone(),
        }
    }
}

/// An address serialized as a `"0x…"` string without an intermediate `String`.
#[derive(Clone, Copy)]
struct Hex(u64);

impl Serialize for Hex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:#x}", self.0))
    }
}

/// Frames serialized as an array of `"0x…"` strings, borrowed.
struct Frames<'a>(&'a [u64]);

impl Serialize for Frames<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|&a| Hex(a)))
    }
}

/// One block of `blocks --json` (and `block --json`).
#[derive(Serialize)]
pub struct BlockJson<'a> {
    heap: Hex,
    entry: Hex,
    address: Hex,
    size: u64,
    block_size: u64,
    state: &'static str,
    front_end: &'static str,
    flags: u8,
    internal: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: Option<Hex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stack: Option<Frames<'a>>,
}

impl<'a> BlockJson<'a> {
    /// Build the view of one block of heap `heap`.
    pub fn new(heap: u64, b: &Block) -> Self {
        BlockJson {
            heap: Hex(heap),
            entry: Hex(b.entry),
            address: Hex(b.address),
            size: b.size,
            block_size: b.block_size,
            state: b.state.name(),
            front_end: b.front_end.name(),
            flags: b.flags,
            internal: b.internal,
            trace: (b.trace != 0).then_some(Hex(b.trace)),
            stack: None,
        }
    }

    /// Add the block's allocation stack: raw return addresses, innermost first.
    pub fn with_stack(mut self, frames: Option<&'a [u64]>) -> Self {
        self.stack = frames.map(Frames);
        self
    }
}

/// `heaps --stat --json`.
#[derive(Serialize)]
pub struct StatJson {
    heap: Option<String>,
    busy_bytes: u64,
    sizes: Vec<SizeJson>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    components: Vec<ComponentJson>,
}

#[derive(Serialize)]
struct SizeJson {
    size: u64,
    count: u64,
    total: u64,
    percent: f64,
}

impl StatJson {
    /// Build the view.
    pub fn new(
        heap: Option<u64>,
        busy: u64,
        rows: &[SizeRow],
        limit: usize,
        components: &[Component],
    ) -> Self {
        StatJson {
            heap: heap.map(addr),
            busy_bytes: busy,
            components: components.iter().map(ComponentJson::new).collect(),
            sizes: rows
                .iter()
                .take(limit)
                .map(|r| SizeJson {
                    size: r.size,
                    count: r.count,
                    total: r.total,
                    percent: (r.percent * 10_000.0).round() / 10_000.0,
                })
                .collect(),
        }
    }
}

/// Stream blocks as a JSON array, one block per line (no document is built in memory); `stack`
/// gives a block's recorded frames.
pub fn write_blocks<'a, 's>(
    out: &mut dyn Write,
    blocks: impl Iterator<Item = (u64, &'a Block)>,
    stack: impl Fn(u64, &Block) -> Option<&'s [u64]>,
) -> io::Result<()> {
    out.write_all(b"[")?;
    for (i, (heap, b)) in blocks.enumerate() {
        out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        let v = BlockJson::new(heap, b).with_stack(stack(heap, b));
        serde_json::to_writer(&mut *out, &v).map_err(io::Error::other)?;
    }
    out.write_all(b"\n]\n")
}
