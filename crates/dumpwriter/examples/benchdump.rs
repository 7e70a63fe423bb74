//! Write a realistic large dump for the benchmark harness:
//! `cargo run --release -p dumpwriter --example benchdump -- OUT.dmp GIB [LEAK] [ALLOCATIONS]`.
//!
//! GIB is the dump size to aim for (fractions allowed, e.g. 0.25); LEAK (default 0) makes
//! the "later" dump of the same process, with that many extra 422-byte allocations from one stack;
//! ALLOCATIONS (default 20000) other private allocations, two regions each; PE (optional) an
//! image built with a PDB (scripts/make-big-pdb.sh): the dump's first application module then
//! names that PDB (GUID, age, name from the image's CodeView record). See `dumpwriter::bench` for
//! what the process holds.

use dumpwriter::bench::{realistic, BenchSpec};
use std::io::BufWriter;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: benchdump OUT.dmp GIB [LEAK] [ALLOCATIONS] [PE]");
        std::process::exit(2);
    }
    let gib: f64 = args[1].parse().expect("GIB is a number");
    let leak: u64 = args
        .get(2)
        .map_or(0, |a| a.parse().expect("LEAK is a number"));
    let extra: u64 = args
        .get(3)
        .map_or(20_000, |a| a.parse().expect("ALLOCATIONS is a number"));
    let pdb = args.get(4).map(|pe| {
        let image = std::fs::read(pe).expect("read the PE image");
        dumpwriter::pe::codeview(&image).expect("the image has a CodeView (RSDS) record")
    });
    let started = Instant::now();
    let spec = BenchSpec {
        total_bytes: (gib * (1u64 << 30) as f64) as u64,
        extra_allocations: extra,
        seed: 0x6865_6170_6469_6167,
        leak,
        pdb,
        heap_divisor: 1,
    };
    let (dump, facts) = realistic(&spec);
    let built = started.elapsed();
    let file = std::fs::File::create(&args[0]).expect("create the output file");
    let mut w = BufWriter::with_capacity(8 << 20, file);
    dump.write_to(&mut w).expect("write the dump");
    let file = w.into_inner().expect("flush");
    println!(
        "{}: {} bytes, {} busy blocks ({} in all, {} unreachable), {} stacks, {} regions; built in {:.1} s, written in {:.1} s",
        args[0],
        file.metadata().map(|m| m.len()).unwrap_or(0),
        facts.busy_blocks,
        facts.blocks,
        facts.unreachable.len(),
        facts.stacks,
        facts.regions,
        built.as_secs_f64(),
        (started.elapsed() - built).as_secs_f64()
    );
}
