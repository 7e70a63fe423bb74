//! A large full-memory dump for measuring `heapdiag address`:
//! `cargo run --release -p dumpwriter --example bigdump -- OUT.dmp [GIB] [ALLOCATIONS]`.
//!
//! It imitates a 64-bit Windows 10 22H2 process (the sample's layout) with ALLOCATIONS private
//! allocations (default 25,000, two regions each: committed + reserved, so about 50,000 regions in
//! all) whose committed parts add up to GIB gibibytes (default 4) of captured memory. The captured
//! memory is zeros, written as holes, so the file is sparse on disk; `address` reads only the
//! streams and the PEB/TEB/heap headers, so its timing does not depend on the contents.

use dumpwriter::nt_heap::NtHeapSpec;
use dumpwriter::process::{Kind, ProcessBuilder, Windows};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: bigdump OUT.dmp [GIB] [ALLOCATIONS]");
        std::process::exit(2);
    };
    let gib: u64 = args
        .next()
        .map_or(4, |a| a.parse().expect("GIB is a number"));
    let allocations: u64 = args
        .next()
        .map_or(25_000, |a| a.parse().expect("ALLOCATIONS is a number"));
    let mut b = ProcessBuilder::new(Windows::Win10, Kind::Native64, r"C:\inetpub\w3wp.exe");
    for _ in 0..8 {
        b.add_thread();
    }
    b.add_nt_heap(&NtHeapSpec::simple(
        64,
        4,
        0x100_0000,
        0x40_0000,
        &[0x20_0000, 0x80_0000],
    ));
    b.add_segment_heap(64);
    let per = ((gib << 30) / allocations).div_ceil(0x1000) * 0x1000;
    let size = (per + 0x1000).div_ceil(0x1_0000) * 0x1_0000;
    for _ in 0..allocations {
        b.add_private_captured(size, per);
    }
    let (dump, facts) = b.finish();
    let mut f = std::fs::File::create(&out).expect("create the output file");
    dump.write_to(&mut f).expect("write the dump");
    println!(
        "{out}: {} regions, {} bytes captured, {} bytes",
        facts.regions.len(),
        per * allocations,
        f.metadata().map(|m| m.len()).unwrap_or(0)
    );
}
