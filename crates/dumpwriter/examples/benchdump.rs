//! Write a realistic large dump for the benchmark harness:
//! `cargo run --release -p dumpwriter --example benchdump -- OUT.dmp GIB [LEAK] [ALLOCATIONS]`.
//!
//! GIB is the dump size to aim for (fractions allowed, e.g. 0.25); LEAK (default 0) makes
//! the "later" dump of the same process, with that many extra 422-byte allocations from one stack;
//! ALLOCATIONS (default 20000) other private allocations, two regions each. See
//! `dumpwriter::bench` for what the process holds.

use dumpwriter::bench::{realistic, BenchSpec};
use std::io::BufWriter;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: benchdump OUT.dmp GIB [LEAK] [ALLOCATIONS]");
        std::process::exit(2);
    }
    let gib: f64 = args[1].parse().expect("GIB is a number");
    let leak: u64 = args
        .get(2)
        .map_or(0, |a| a.parse().expect("LEAK is a number"));
    let extra: u64 = args
        .get(3)
        .map_or(20_000, |a| a.parse().expect("ALLOCATIONS is a number"));
    let started = Instant::now();
    let spec = BenchSpec {
        total_bytes: (gib * (1u64 << 30) as f64) as u64,
        extra_allocations: extra,
        seed: 0x6865_6170_6469_6167,
        leak,
    };
    let (dump, facts) = realistic(&spec);
    let built = started.elapsed();
    let file = std::fs::File::create(&args[0]).expect("create the output file");
    let mut w = BufWriter::with_capacity(8 << 20, file);
    dump.write_to(&mut w).expect("write the dump");
    let file = w.into_inner().expect("flush");
    println!(
        "{}: {} bytes, {} busy blocks ({} in all), {} stacks, {} regions; built in {:.1} s, written in {:.1} s",
        args[0],
        file.metadata().map(|m| m.len()).unwrap_or(0),
        facts.busy_blocks,
        facts.blocks,
        facts.stacks,
        facts.regions,
        built.as_secs_f64(),
        (started.elapsed() - built).as_secs_f64()
    );
}
