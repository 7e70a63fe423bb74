//! The benchmark generator writes dumps that heapdiag walks completely: every busy block it made
//! is found (NT and segment heaps), with no corruption, and the leak variant adds exactly the
//! leaked blocks.

use dumpwriter::bench::{realistic, BenchSpec};
use heapdiag::analysis::heaps::summarize;
use heapdiag::dump::Dump;
use heapdiag::heap::walk_all;
use heapdiag::process::Process;
use std::path::Path;

fn busy(leak: u64) -> (u64, u64) {
    let spec = BenchSpec {
        total_bytes: 32 << 20,
        extra_allocations: 200,
        seed: 7,
        leak,
        pdb: None,
    };
    let (dump, facts) = realistic(&spec);
    let dump = Dump::from_bytes(Path::new("bench.dmp"), dump.to_bytes()).unwrap();
    let process = Process::load(&dump);
    let walks = walk_all(&dump, &process);
    let mut found = 0;
    for w in &walks {
        let s = summarize(w);
        assert!(s.corruptions.is_empty(), "{:?}", s.corruptions.first());
        assert_eq!(s.coverage.unexplained, 0);
        found += s.busy_blocks;
    }
    // Four NT heaps and 24 segment heaps.
    assert_eq!(walks.len(), 28);
    assert!(walks.iter().all(|w| w.walked));
    (found, facts.busy_blocks)
}

#[test]
fn generated_dumps_walk_completely_and_the_leak_adds_its_blocks() {
    let (found, made) = busy(0);
    assert_eq!(found, made);
    let (found_later, made_later) = busy(1234);
    assert_eq!(found_later, made_later);
    assert_eq!(found_later - found, 1234);
}
