//! Realistic large dumps for the benchmark harness (`scripts/bench.sh`).
//!
//! A 64-bit Windows 10 22H2 process (the 1809+ `_HEAP` layout) with +ust: ~50 modules, 16 threads,
//! four NT heaps holding millions of blocks (LFH chunks of small sizes, back-end blocks of a few
//! kB, a few multi-MB large blocks, some free blocks), a few thousand distinct allocation stacks
//! over those modules with a skewed popularity, and tens of thousands of other private regions.
//! With `leak > 0` the same process (same seed) is written as it would look later: one stack has
//! allocated `leak` more 422-byte blocks, for diffing. Besides, 24 segment heaps (one page segment
//! each: 120 LFH subsegments of small blocks, VS chunks, a back-end range, a large allocation).

use crate::minidump::MinidumpBuilder;
use crate::nt_heap::{BlockSpec, NtHeapSpec, RunSpec, SegmentSpec, UserBlockSpec};
use crate::process::{Kind, ProcessBuilder, Windows};
use crate::segment_heap::SegmentHeapSpec;

/// What to generate.
#[derive(Clone, Debug)]
pub struct BenchSpec {
    /// Size of the dump to aim for: 60 % heaps, the rest other private memory.
    pub total_bytes: u64,
    /// Other private allocations (two regions each), sharing the other 40 %.
    pub extra_allocations: u64,
    /// Seed of the deterministic generator.
    pub seed: u64,
    /// Extra leaking allocations of the later dump (0 for the baseline).
    pub leak: u64,
    /// A CodeView record (GUID bytes, age, PDB name) for the first application module, so that
    /// its frames resolve through a real PDB.
    pub pdb: Option<([u8; 16], u32, String)>,
    /// Divide the NT heaps' share of the bytes by this (1 for a real benchmark dump): the
    /// generator's own tests build every dump size quickly with few blocks.
    pub heap_divisor: u64,
}

impl BenchSpec {
    /// A benchmark dump of `total_bytes` (the other fields: 20,000 other allocations, the
    /// harness's seed, no leak, no PDB, full-size heaps).
    pub fn sized(total_bytes: u64) -> Self {
        BenchSpec {
            total_bytes,
            extra_allocations: 20_000,
            seed: 0x6865_6170_6469_6167,
            leak: 0,
            pdb: None,
            heap_divisor: 1,
        }
    }
}

/// Counts of what was generated.
#[derive(Clone, Debug, Default)]
pub struct BenchFacts {
    /// Busy user allocations.
    pub busy_blocks: u64,
    /// All blocks (busy, free, metadata).
    pub blocks: u64,
    /// Regions of the region table.
    pub regions: u64,
    /// Distinct stacks.
    pub stacks: u64,
    /// Busy blocks no pointer chain from a root reaches (the leak's blocks among them), by user
    /// address, sorted.
    pub unreachable: Vec<u64>,
}

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A skewed index in `0..n`: small indexes are much more likely (a few hot call sites).
    fn skewed(&mut self, n: u64) -> u64 {
        let a = self.below(n);
        let b = self.below(n);
        let c = self.below(n);
        a.min(b).min(c)
    }
}

const MODULES: u64 = 50;
const STACKS: u64 = 3000;
const SEGMENT: u64 = 16 << 20;
const LEAK_SIZE: u64 = 422;
const LEAK_STACK: usize = 7;
/// Segment heaps of the process, and LFH subsegments (two pages each) in each one.
const SEGMENT_HEAPS: u64 = 24;
const LFH_SUBSEGMENTS: u64 = 120;

/// Generate the process and its dump.
pub fn realistic(spec: &BenchSpec) -> (MinidumpBuilder, BenchFacts) {
    let mut rng = Rng(spec.seed);
    let mut b = ProcessBuilder::new(
        Windows::Win10,
        Kind::Native64,
        r"C:\Windows\System32\inetsrv\w3wp.exe",
    );
    b.set_nt_global_flag(0x1000);
    // Private memory above 4 GB, as a 64-bit process has it: no small integer (a heap's flags,
    // a count) falls inside a block there.
    b.next_private = 0x2_0000_0000;
    let (major, minor, build) = b.windows().version();
    let ver = [major as u16, minor as u16, build as u16, 1];
    let mut module_bases = Vec::new();
    for i in 0..MODULES {
        let base = 0x7ff8_0000_0000 + i * 0x100_0000;
        b.add_image(
            &format!(r"C:\app\bin\component{i:02}.dll"),
            base,
            0x8_0000,
            ver,
            false,
        );
        module_bases.push(base);
    }
    if let Some(cv) = &spec.pdb {
        let m = b
            .dump
            .modules
            .iter_mut()
            .find(|m| m.base == module_bases[0])
            .expect("the first application module");
        m.pdb = Some(cv.clone());
    }
    for _ in 0..16 {
        b.add_thread();
    }
    // Stacks: 3..20 frames, the innermost in ntdll's allocation path, callers anywhere.
    let ntdll = b
        .dump
        .modules
        .iter()
        .find(|m| m.name.ends_with("ntdll.dll"))
        .map(|m| m.base)
        .expect("ntdll");
    let stacks: Vec<Vec<u64>> = (0..STACKS)
        .map(|_| {
            let depth = 3 + rng.below(18);
            (0..depth)
                .map(|d| {
                    if d == 0 {
                        ntdll + 0x1010 + 0x10 * rng.below(4)
                    } else {
                        module_bases[rng.below(MODULES) as usize]
                            + 0x1000
                            + rng.below(0x7_0000) / 2 * 2
                    }
                })
                .collect()
        })
        .collect();
    let mut facts = BenchFacts {
        stacks: STACKS,
        ..BenchFacts::default()
    };
    // Four heaps: 50 %, 20 %, 15 %, 15 % of 60 % of the bytes.
    let heap_bytes = spec.total_bytes / 10 * 6 / spec.heap_divisor.max(1);
    for (i, share) in [50u64, 20, 15, 15].into_iter().enumerate() {
        let bytes = heap_bytes * share / 100;
        let mut heap = heap_spec(&mut rng, bytes, stacks.clone(), &mut facts);
        if i == 0 && spec.leak > 0 {
            heap.segments.extend(leak_segments(spec.leak, &mut facts));
        }
        b.add_nt_heap(&heap);
    }
    // Segment heaps (as packaged apps and many services have): each one page segment of LFH
    // subsegments full of small blocks, a few VS chunks, a back-end range and a large allocation,
    // every busy allocation with room traced.
    for _ in 0..SEGMENT_HEAPS {
        let lfh = (0..LFH_SUBSEGMENTS)
            .map(|_| {
                let bsize = [0x20u64, 0x30, 0x40, 0x80, 0x100][rng.below(5) as usize];
                let count = (0x2000 - 0x80) / bsize;
                let blocks = (0..count)
                    .map(|_| (rng.below(5) != 0).then(|| bsize / 2 + rng.below(bsize / 2 + 1)))
                    .collect();
                (bsize, blocks)
            })
            .collect();
        let spec = SegmentHeapSpec {
            vs: (0..8)
                .map(|_| (rng.below(4) != 0).then(|| 0x100 + rng.below(0x300)))
                .collect(),
            lfh,
            backend: vec![0x4000 + rng.below(0x4000)],
            large: vec![0x20_0000 + rng.below(0x10_0000)],
            stacks: stacks.clone(),
            encoded_large_tree: false,
            remote_freed: 0,
        };
        b.add_rich_segment_heap(64, &spec);
        let made = &b.facts_heaps().last().expect("just added").blocks;
        facts.blocks += made.len() as u64;
        facts.busy_blocks += made.iter().filter(|x| x.busy).count() as u64;
    }
    link(&mut b, &mut rng, &mut facts);
    // Other private memory: committed parts averaging the remaining 40 %.
    let n = spec.extra_allocations.max(1);
    let each = (spec.total_bytes / 10 * 4 / n).max(0x1000);
    for _ in 0..spec.extra_allocations {
        let committed = (each / 2 + rng.below(each)).div_ceil(0x1000) * 0x1000;
        let size = (committed + 0x1000).div_ceil(0x1_0000) * 0x1_0000;
        b.add_private_captured(size, committed);
    }
    let (dump, f) = b.finish();
    facts.regions = f.regions.len() as u64;
    (dump, facts)
}

/// Busy blocks left out of the object graph, per mille: unreachable, a quarter of them the
/// heads of small garbage chains.
const GARBAGE_PER_MILLE: u64 = 20;
/// Pointers an object holds at most (at offsets 0, 8, …, within its requested size).
const FAN_OUT: u64 = 4;
/// One object in this many starts or continues the one long linked list.
const LIST_EVERY: u64 = 100;

/// Make the busy blocks an object graph, as a process's heaps are: the main image's `.data` and
/// the threads' live stacks point to a few hundred objects, every other object is pointed to by
/// one earlier object (in a random order, so pointers go anywhere in the heaps; each holds at
/// most [`FAN_OUT`]), one object in [`LIST_EVERY`] is on one long linked list, and
/// [`GARBAGE_PER_MILLE`] are left out: unreachable, some pointing to each other. The leak's blocks
/// (the later dump's) stay unreachable.
fn link(b: &mut ProcessBuilder, rng: &mut Rng, facts: &mut BenchFacts) {
    let leaked: std::collections::HashSet<u64> = b
        .facts_heaps()
        .iter()
        .flat_map(|h| h.blocks.iter())
        .filter(|x| x.busy && !x.internal && x.size == LEAK_SIZE && x.front_end == "lfh")
        .map(|x| x.address)
        .collect();
    let mut objects: Vec<(u64, u64)> = b
        .facts_heaps()
        .iter()
        .flat_map(|h| h.blocks.iter())
        .filter(|x| x.busy && !x.internal && !leaked.contains(&x.address))
        .map(|x| (x.address, x.size))
        .collect();
    // A random order (Fisher–Yates).
    for i in (1..objects.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        objects.swap(i, j);
    }
    let slots = |size: u64| (size / 8).min(FAN_OUT);
    let m = &mut b.dump.memory;
    // Which objects may hold children: not garbage, not on the list (its link is their first
    // word).
    let mut parent_ok = vec![false; objects.len()];
    let (mut garbage, mut roots) = (Vec::new(), Vec::new());
    let (mut parent, mut used) = (0usize, 0u64);
    let mut list_tail: Option<u64> = None;
    for k in 0..objects.len() {
        let addr = objects[k].0;
        if rng.below(1000) < GARBAGE_PER_MILLE {
            garbage.push(addr);
            continue;
        }
        if k % LIST_EVERY as usize == 0 && objects[k].1 >= 8 {
            match list_tail {
                Some(t) => m.write_u64(t, addr),
                None => roots.push(addr),
            }
            list_tail = Some(addr);
            continue;
        }
        parent_ok[k] = true;
        // The first earlier object with a free slot; none: a root.
        while parent < k && (!parent_ok[parent] || used >= slots(objects[parent].1)) {
            parent += 1;
            used = 0;
        }
        if parent == k || roots.len() < 256 {
            roots.push(addr);
            continue;
        }
        m.write_u64(objects[parent].0 + 8 * used, addr);
        used += 1;
    }
    assert!(roots.len() <= 512, "too many roots for their places");
    // Garbage: a quarter of it in chains of four.
    for chain in garbage.chunks(4).step_by(4) {
        for w in chain.windows(2) {
            m.write_u64(w[0], w[1]);
        }
    }
    facts.unreachable = garbage.iter().chain(&leaked).copied().collect();
    facts.unreachable.sort_unstable();
    // Roots: the main image's .data and the live part of each thread's stack.
    let exe = &b.dump.modules[0];
    let data = exe.base + u64::from(exe.size) - 0x2000;
    b.dump.memory.capture(data, 0x1000);
    let sps: Vec<u64> = b.threads().iter().map(|t| t.stack_pointer()).collect();
    for (i, &r) in roots.iter().enumerate() {
        let at = if i % 2 == 0 {
            data + 8 * (i as u64 / 2)
        } else {
            sps[i % sps.len()] + 8 * (i as u64 / 2)
        };
        b.dump.memory.write_u64(at, r);
    }
}

/// A requested size: mostly small (LFH), some back-end sized.
fn small_size(rng: &mut Rng) -> u64 {
    // Log-uniform-ish from 8 to 1024 bytes.
    let shift = 3 + rng.below(8);
    (1 << shift) + rng.below(1 << shift)
}

/// Segments holding `leak` 422-byte allocations from one stack, in LFH user blocks of 100.
fn leak_segments(leak: u64, facts: &mut BenchFacts) -> Vec<SegmentSpec> {
    let stride = (LEAK_SIZE + 16 + 32 - 8).div_ceil(16) * 16;
    let per_segment = (SEGMENT - 0x1_0000 - 0x4000) / (0x300 + 100 * stride) * 100;
    let mut left = leak;
    let mut out = Vec::new();
    while left > 0 {
        let here = left.min(per_segment);
        left -= here;
        let blocks = (0..here.div_ceil(100))
            .map(|k| {
                let n = (here - k * 100).min(100);
                facts.busy_blocks += n;
                facts.blocks += n + 1;
                BlockSpec::UserBlock(UserBlockSpec {
                    stride,
                    chunks: (0..n)
                        .map(|_| Some((LEAK_SIZE, Some(LEAK_STACK))))
                        .collect(),
                })
            })
            .collect();
        out.push(SegmentSpec {
            reserve: SEGMENT,
            runs: vec![RunSpec {
                gap_before: 0,
                commit: SEGMENT - 0x1_0000,
                blocks,
            }],
        });
    }
    out
}

fn heap_spec(
    rng: &mut Rng,
    bytes: u64,
    stacks: Vec<Vec<u64>>,
    facts: &mut BenchFacts,
) -> NtHeapSpec {
    let unit = 16;
    let prefix = 32;
    let segments = bytes.div_ceil(SEGMENT).max(1);
    let mut segs = Vec::new();
    for _ in 0..segments {
        // One committed run per segment, 64 KiB left uncommitted at its end.
        let commit = SEGMENT - 0x1_0000;
        // Room for the segment header, the filler block and the range-descriptor block.
        let budget = commit - 0x4000;
        let mut used = 0u64;
        let mut blocks = Vec::new();
        while used < budget {
            let roll = rng.below(100);
            let (spec, size, busy, all) = if roll < 60 {
                // An LFH user block of 16..256 chunks of one size class, 80 % busy.
                let size = small_size(rng);
                let stride = (size + unit + prefix - 8).div_ceil(unit) * unit;
                let count = 16 + rng.below(240);
                let chunks: Vec<_> = (0..count)
                    .map(|_| {
                        if rng.below(10) < 8 {
                            let capacity = stride - unit - prefix + 8;
                            let req = capacity.saturating_sub(rng.below(unit)).max(1);
                            Some((req, Some(rng.skewed(STACKS) as usize)))
                        } else {
                            None
                        }
                    })
                    .collect();
                let busy = chunks.iter().filter(|c| c.is_some()).count() as u64;
                (
                    BlockSpec::UserBlock(UserBlockSpec { stride, chunks }),
                    0x300 + count * stride,
                    busy,
                    count + 1,
                )
            } else if roll < 97 {
                let size = 1024 + rng.below(7 * 1024);
                (
                    BlockSpec::Busy {
                        size,
                        trace: Some(rng.skewed(STACKS) as usize),
                    },
                    size + 0x40,
                    1,
                    1,
                )
            } else {
                let size = (2 + rng.below(64)) * unit;
                (BlockSpec::Free { size }, size, 0, 1)
            };
            if used + size > budget {
                break;
            }
            used += size;
            facts.busy_blocks += busy;
            facts.blocks += all;
            blocks.push(spec);
        }
        segs.push(SegmentSpec {
            reserve: SEGMENT,
            runs: vec![RunSpec {
                gap_before: 0,
                commit,
                blocks,
            }],
        });
    }
    let large = (0..(bytes / (256 << 20)).max(1))
        .map(|_| {
            (
                (1 << 20) + rng.below(7 << 20),
                Some(rng.skewed(STACKS) as usize),
            )
        })
        .collect::<Vec<_>>();
    facts.busy_blocks += large.len() as u64;
    facts.blocks += large.len() as u64;
    NtHeapSpec {
        bits: 64,
        segments: segs,
        large,
        lfh: true,
        ust: true,
        stacks,
    }
}
