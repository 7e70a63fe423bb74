//! Micro-benchmarks of the hot paths: address lookup, header decoding, block iteration.
//! Run with `cargo bench --bench hot_paths` (add `-- --quick` for a short run).

use criterion::{criterion_group, criterion_main, Criterion};
use heapdiag::dump::memory::{AddressSpace, MemoryIndex, MemoryRange};
use heapdiag::dump::Dump;
use heapdiag::heap::nt::entry::Decoder;
use heapdiag::process::Process;
use std::hint::black_box;
use std::path::Path;

fn address_lookup(c: &mut Criterion) {
    // 10,000 ranges of 64 KiB with 64 KiB gaps, over a 64 MiB file.
    let file = vec![0x5au8; 64 << 20];
    let raw: Vec<MemoryRange> = (0..10_000u64)
        .map(|i| MemoryRange {
            base: 0x1000_0000 + i * 0x2_0000,
            size: 0x1_0000,
            offset: (i * 0x1_0000) % (60 << 20),
        })
        .collect();
    let index = MemoryIndex::build(raw, file.len() as u64, &mut Vec::new());
    let mem = AddressSpace::new(&file, &index);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    c.bench_function(
        "address lookup: read_u64 at a random captured address (10k ranges)",
        |b| {
            b.iter(|| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let addr = 0x1000_0000 + (x % 10_000) * 0x2_0000 + (x >> 40) % 0xfff8;
                black_box(mem.read_u64(black_box(addr)))
            })
        },
    );
}

fn header_decode(c: &mut Criterion) {
    let d = Decoder {
        key: Some([0x13, 0x57, 0x9b, 0xdf, 0x24, 0x68, 0xac, 0xe0]),
        offset: 8,
    };
    let raw = [0x87, 0x73, 0xf5, 0x64, 0x5d, 0xb9, 0x00, 0x18];
    c.bench_function("header decode: XOR + checksum of one _HEAP_ENTRY", |b| {
        b.iter(|| {
            let e = d.decode(black_box(raw));
            black_box(e.checksum_ok())
        })
    });
}

fn block_iteration(c: &mut Criterion) {
    // The benchmark generator's process at its smallest: four heaps of one 16 MiB segment each.
    let spec = dumpwriter::bench::BenchSpec {
        total_bytes: 32 << 20,
        extra_allocations: 100,
        seed: 1,
        leak: 0,
        pdb: None,
        heap_divisor: 1,
    };
    let bytes = dumpwriter::bench::realistic(&spec).0.to_bytes();
    let dump = Dump::from_bytes(Path::new("bench.dmp"), bytes).expect("generated dump opens");
    let process = Process::load(&dump);
    let blocks: usize = heapdiag::heap::walk_all(&dump, &process)
        .iter()
        .map(|w| w.blocks.len())
        .sum();
    c.bench_function(
        &format!("block iteration: walk every heap of a generated dump ({blocks} blocks)"),
        |b| b.iter(|| black_box(heapdiag::heap::walk_all(&dump, &process))),
    );
}

criterion_group!(benches, address_lookup, header_decode, block_iteration);
criterion_main!(benches);
