//! Fixtures for symbol lookups: a process whose modules name the real `crash.pdb` and the
//! public-only stand-in `testdata/pdb/pool.pdb`, and one whose modules name their PDBs with hostile
//! names (traversals, drive letters, control characters, a 10 kB name).

use crate::fixtures::{rich_heap, Fixture};
use crate::minidump::MinidumpBuilder;
use crate::process::{Facts, Kind, ProcessBuilder, Windows};

/// The symbol fixtures.
pub const SYMBOLS: &[Fixture] = &[
    Fixture {
        name: "sym-pool-x86.dmp",
        imitates: "Windows 7 SP1 x86 with +ust: crash.exe names the real MSVC PDB crash.pdb (GUID \
                   3249D99D-0C40-4931-8610-F4E4FB0B6936, age 1: procedures, lines, inline frames) \
                   and pool.dll names testdata/pdb/pool.pdb (GUID 91B71BFD-7177-A29D-4C4C-44205044422E, \
                   age 1: public symbols only, decorated C++ and x86 C names); ntdll has no \
                   CodeView record, so every module that names a PDB names one of those two; every \
                   stack returns through pool.dll into crash.exe",
        build: pool_fixture,
    },
    Fixture {
        name: "sym-hostile-x86.dmp",
        imitates: "Windows 7 SP1 x86 with +ust whose modules evil0.dll… name their PDBs with the \
                   hostile names of HOSTILE_PDB_NAMES (a traversal, a drive letter, NUL and control \
                   characters, a 10 kB name, a device name), each with crash.pdb's GUID and age; \
                   every stack returns through all of them",
        build: hostile_fixture,
    },
];

/// GUID of `testdata/pdb/pool.pdb` (built by `scripts/make-pool-pdb.sh`), age 1.
pub const POOL_GUID: &str = "91B71BFD-7177-A29D-4C4C-44205044422E";
/// GUID of the real `crash.pdb`, age 1.
pub const CRASH_GUID: &str = "3249D99D-0C40-4931-8610-F4E4FB0B6936";
/// Base of pool.dll in `sym-pool-x86.dmp`.
pub const POOL_BASE: u64 = 0x1000_0000;

/// The stacks of `sym-pool-x86.dmp` as (module, RVA) return addresses, innermost first after
/// ntdll's frame: `pool_malloc` (public `_pool_malloc`, RVA 0x1040), `PoolAllocate`
/// (`_PoolAllocate@4`, 0x1020), `FastAlloc` (`@FastAlloc@4`, 0x1050), `Pool::Alloc`
/// (`?Alloc@Pool@@QAEPAXI@Z`, 0x1010), `app::Vec<int>::grow` (`?grow@?$Vec@H@app@@QAEXI@Z`,
/// 0x10a0), then frames in crash.exe (RVAs of [`crate::fixtures::CRASH_STACKS`]).
pub const POOL_STACKS: &[&[(Module, u64)]] = &[
    &[
        (Module::Pool, 0x1040 + 0x9),
        (Module::Crash, 0x2910 + 0x55),
        (Module::Crash, 0x2e15 + 0x5),
    ],
    &[
        (Module::Pool, 0x1020 + 0x11),
        (Module::Pool, 0x1050 + 0x8),
        (Module::Crash, 0x1c40 + 0x30),
    ],
    &[(Module::Pool, 0x1010 + 0x6), (Module::Crash, 0x1000 + 0x40)],
    &[(Module::Pool, 0x10a0 + 0x4), (Module::Crash, 0x1b90 + 0x10)],
];

/// The function each of [`POOL_STACKS`] is attributed to by `top --by function` with both PDBs.
pub const POOL_ALLOCATORS: &[&str] = &[
    "pool!pool_malloc",
    "pool!PoolAllocate",
    "pool!Pool::Alloc",
    "pool!app::Vec<int>::grow",
];

/// A module of [`POOL_STACKS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Module {
    /// crash.exe.
    Crash,
    /// pool.dll.
    Pool,
}

/// The PDB names of `sym-hostile-x86.dmp`'s modules `evil0.dll`, `evil1.dll`…, in order.
pub fn hostile_pdb_names() -> Vec<String> {
    vec![
        r"..\..\..\evil.pdb".into(),
        "../../../evil.pdb".into(),
        r"C:\Windows\Temp\evil.pdb".into(),
        "C:evil.pdb".into(),
        "..".into(),
        "evil.pdb/..".into(),
        "evil\0.pdb".into(),
        "evil\u{1b}[31m.pdb".into(),
        format!("{}.pdb", "A".repeat(10_000)),
        "CON.pdb".into(),
        "%2e%2e%2fevil.pdb".into(),
        "/etc/passwd".into(),
    ]
}

/// Base of `evilN.dll` in `sym-hostile-x86.dmp`.
pub fn hostile_base(n: usize) -> u64 {
    0x1000_0000 + n as u64 * 0x10_0000
}

/// See [`SYMBOLS`]: `sym-pool-x86.dmp`.
fn pool_fixture() -> (MinidumpBuilder, Facts) {
    let mut b = ProcessBuilder::new(Windows::Win7Sp1, Kind::Native32, r"C:\build\crash.exe");
    let exe = b.dump.modules[0].base;
    let ntdll = b.dump.modules[1].base;
    b.set_pdb(exe, CRASH_GUID, 1, r"C:\build\crash.pdb");
    let ver = [10, 0, 1, 0];
    b.add_image(r"C:\build\pool.dll", POOL_BASE, 0x4000, ver, false);
    b.set_pdb(POOL_BASE, POOL_GUID, 1, "pool.pdb");
    b.dump.modules[1].pdb = None;
    b.set_nt_global_flag(0x1000);
    b.add_thread();
    let stacks = POOL_STACKS
        .iter()
        .map(|s| {
            std::iter::once(ntdll + 0x1010)
                .chain(s.iter().map(|&(m, rva)| match m {
                    Module::Crash => exe + rva,
                    Module::Pool => POOL_BASE + rva,
                }))
                .collect()
        })
        .collect();
    b.add_nt_heap(&rich_heap(32, true, stacks));
    b.finish()
}

/// See [`SYMBOLS`]: `sym-hostile-x86.dmp`.
fn hostile_fixture() -> (MinidumpBuilder, Facts) {
    let mut b = ProcessBuilder::new(Windows::Win7Sp1, Kind::Native32, r"C:\app\app.exe");
    let ntdll = b.dump.modules[1].base;
    let names = hostile_pdb_names();
    for (n, pdb) in names.iter().enumerate() {
        let base = hostile_base(n);
        b.add_image(
            &format!(r"C:\app\evil{n}.dll"),
            base,
            0x4000,
            [1, 0, 0, 0],
            false,
        );
        b.set_pdb(base, CRASH_GUID, 1, pdb);
    }
    b.set_nt_global_flag(0x1000);
    b.add_thread();
    let stacks = (0..4u64)
        .map(|k| {
            std::iter::once(ntdll + 0x1010)
                .chain((0..names.len()).map(|n| hostile_base(n) + 0x2910 + 0x55 + k))
                .collect()
        })
        .collect();
    b.add_nt_heap(&rich_heap(32, true, stacks));
    b.finish()
}
