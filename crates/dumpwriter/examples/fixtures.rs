//! Write the named synthetic dumps into a folder: `cargo run -p dumpwriter --example fixtures -- DIR [NAME…]`.
//! The bundled sample is `testdata/sample-win10-x64.dmp`, written by
//! `cargo run -p dumpwriter --example fixtures -- testdata sample-win10-x64.dmp`.

use dumpwriter::fixtures;
use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: fixtures DIR [NAME...]");
        std::process::exit(2);
    };
    let names: Vec<String> = args.collect();
    std::fs::create_dir_all(&dir).expect("create the output folder");
    for f in fixtures::ALL
        .iter()
        .chain(fixtures::HEAPS)
        .chain(dumpwriter::symbol_fixtures::SYMBOLS)
    {
        if !names.is_empty() && !names.iter().any(|n| n == f.name) {
            continue;
        }
        let (dump, _) = (f.build)();
        let bytes = dump.to_bytes();
        let path = dir.join(f.name);
        std::fs::write(&path, &bytes).expect("write the dump");
        println!("{} ({} bytes): {}", path.display(), bytes.len(), f.imitates);
    }
}
