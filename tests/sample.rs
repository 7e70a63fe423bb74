//! The bundled sample dump is exactly what the project's dump writer produces today, so it can be
//! regenerated (`cargo run -p dumpwriter --example fixtures -- testdata sample-win10-x64.dmp`) and
//! never drifts from the fixture the other tests use.

mod common;

use common::*;

#[test]
fn bundled_sample_is_the_generated_fixture() {
    let committed = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/sample-win10-x64.dmp"
    ))
    .expect("testdata/sample-win10-x64.dmp is bundled");
    let f = dumpwriter::fixtures::by_name("sample-win10-x64.dmp").unwrap();
    assert!(
        committed == (f.build)().0.to_bytes(),
        "regenerate testdata/sample-win10-x64.dmp"
    );
}

#[test]
fn the_readme_main_job_runs_on_the_sample() {
    let out = text(&[
        "top",
        concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sample-win10-x64.dmp"),
        "--by",
        "stack",
    ]);
    assert!(
        out.starts_with("Outstanding busy memory by stack, most bytes first\n"),
        "{out}"
    );
    assert!(out.contains("BackTrace"));
}

#[test]
fn the_readme_command_runs_on_the_sample() {
    let out = text(&[
        "info",
        concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sample-win10-x64.dmp"),
    ]);
    assert!(out.contains("Process:     leaky.exe"));
    assert!(out.contains("0x1210000  nt"));
}
