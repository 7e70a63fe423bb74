//! Symbols the way WinDbg users have them: symbol servers over HTTP with a local cache, lines,
//! inline frames, undecorated names, the `symbols` view, and PDB names from the dump that must not
//! steer a read, a download or a write.
//!
//! Every server here is a `tiny_http` server on 127.0.0.1 that the test starts and stops, serving
//! a symbol store made in the test from the real `crash.pdb` (`../shared/testdata/real/pdb`,
//! skipped with a printed reason when absent) and the project's stand-ins `testdata/pdb/ntdll.pdb`
//! and `testdata/pdb/pool.pdb`. Nothing leaves the machine.

mod common;

use common::*;
use dumpwriter::symbol_fixtures::{
    hostile_base, hostile_pdb_names, CRASH_GUID, POOL_ALLOCATORS, POOL_GUID,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CRASH_KEY: &str = "3249D99D0C4049318610F4E4FB0B69361";
const POOL_KEY: &str = "91B71BFD7177A29D4C4C44205044422E1";
const NTDLL_KEY: &str = "4122395C6AF17BC14C4C44205044422E1";

/// What the test server answers for one path.
#[derive(Clone)]
enum Reply {
    /// 200 with these bytes.
    Bytes(Vec<u8>),
    /// This status, empty body.
    Status(u16),
    /// 302 to this location.
    Redirect(String),
    /// Nothing for this long, then 200 with the bytes.
    Late(Duration, Vec<u8>),
    /// 200 at once, the body in ten pieces with a pause before each.
    Drip(Duration, Vec<u8>),
}

/// A symbol server on the loopback interface, logging every request path.
struct Server {
    url: String,
    log: Arc<Mutex<Vec<String>>>,
    most_at_once: Arc<AtomicUsize>,
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Serve `routes` (exact request paths); every other path is a 404.
    fn start(routes: Vec<(String, Reply)>) -> Server {
        Server::start_with(|_| routes)
    }

    /// Serve the routes `make` gives for the server's own URL.
    fn start_with(make: impl FnOnce(&str) -> Vec<(String, Reply)>) -> Server {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let port = server.server_addr().to_ip().expect("an IP address").port();
        let url = format!("http://127.0.0.1:{port}");
        let routes = make(&url);
        let log = Arc::new(Mutex::new(Vec::new()));
        let most_at_once = Arc::new(AtomicUsize::new(0));
        let now = Arc::new(AtomicUsize::new(0));
        let routes: Arc<BTreeMap<String, Reply>> = Arc::new(routes.into_iter().collect());
        let (s, l, m) = (server.clone(), log.clone(), most_at_once.clone());
        let thread = std::thread::spawn(move || {
            for request in s.incoming_requests() {
                let path = request.url().to_string();
                l.lock().unwrap().push(path.clone());
                let reply = routes.get(&path).cloned().unwrap_or(Reply::Status(404));
                let (now, most) = (now.clone(), m.clone());
                std::thread::spawn(move || {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    let _ = match reply {
                        Reply::Bytes(b) => request.respond(tiny_http::Response::from_data(b)),
                        Reply::Status(c) => request.respond(tiny_http::Response::empty(c)),
                        Reply::Redirect(to) => {
                            request.respond(tiny_http::Response::empty(302).with_header(
                                tiny_http::Header::from_bytes("Location", to.as_bytes()).unwrap(),
                            ))
                        }
                        Reply::Late(d, b) => {
                            std::thread::sleep(d);
                            request.respond(tiny_http::Response::from_data(b))
                        }
                        Reply::Drip(pause, b) => {
                            let len = b.len();
                            let body = Drip {
                                data: b,
                                at: 0,
                                pause,
                            };
                            // With a Content-Length (no chunks), as symbol servers send.
                            request.respond(
                                tiny_http::Response::new(200.into(), vec![], body, Some(len), None)
                                    .with_chunked_threshold(usize::MAX),
                            )
                        }
                    };
                    now.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Server {
            url,
            log,
            most_at_once,
            server,
            thread: Some(thread),
        }
    }

    /// The request paths so far.
    fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A body given in ten pieces, with a pause before each.
struct Drip {
    data: Vec<u8>,
    at: usize,
    pause: Duration,
}

impl Read for Drip {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let piece = self.data.len().div_ceil(10).max(1);
        if self.at >= self.data.len() {
            return Ok(0);
        }
        if self.at.is_multiple_of(piece) {
            std::thread::sleep(self.pause);
        }
        let n = buf
            .len()
            .min(piece - self.at % piece)
            .min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The real crash.pdb, or `None` (reason printed) when the shared folder is absent.
fn crash_pdb() -> Option<Vec<u8>> {
    real("pdb/crash.pdb").map(|p| std::fs::read(p).unwrap())
}

fn pool_pdb() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/pdb/pool.pdb"
    ))
    .unwrap()
}

fn ntdll_pdb() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/pdb/ntdll.pdb"
    ))
    .unwrap()
}

/// A cabinet (MSZIP, as `makecab` writes `.pd_` files) holding `data` as `name`.
fn cab_of(name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = cab::CabinetBuilder::new();
    b.add_folder(cab::CompressionType::MsZip).add_file(name);
    let mut w = b.build(std::io::Cursor::new(Vec::new())).unwrap();
    while let Some(mut f) = w.next_file().unwrap() {
        f.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A fresh scratch folder for one test.
fn scratch(name: &str) -> PathBuf {
    let d =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Every file under `dir`, relative, with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

/// Run heapdiag with `_NT_SYMBOL_PATH` set to `nt` and `args`: (exit status ok, stdout, stderr).
fn run(nt: Option<&str>, args: &[&str]) -> (bool, String, String) {
    let mut c = heapdiag();
    c.args(args);
    if let Some(nt) = nt {
        c.env("_NT_SYMBOL_PATH", nt);
    }
    let out = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn run_json(nt: Option<&str>, args: &[&str]) -> Value {
    let (ok, out, err) = run(nt, args);
    assert!(ok, "heapdiag {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// `top --json` entries: key → bytes.
fn entries(v: &Value) -> BTreeMap<String, u64> {
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["key"].as_str().unwrap().to_string(),
                e["bytes"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// A busy block of the fixture `name` whose stack is its `n`th.
fn block_with_stack(name: &str, n: usize) -> u64 {
    let f = facts(name);
    let h = &f.heaps[0];
    h.blocks
        .iter()
        .find(|b| b.busy && !b.internal && b.trace == h.stacks[n].0)
        .unwrap()
        .address
}

#[test]
fn a_symbol_server_fills_the_cache_and_a_second_run_asks_nothing() {
    let Some(crash) = crash_pdb() else { return };
    let dir = scratch("symsrv-fill");
    let cache = dir.join("cache");
    // crash.pdb plain, pool.pdb only compressed, ntdll.pdb through a file.ptr naming another URL.
    let server = Server::start_with(|url| {
        vec![
            (
                format!("/crash.pdb/{CRASH_KEY}/crash.pdb"),
                Reply::Bytes(crash.clone()),
            ),
            (
                format!("/pool.pdb/{POOL_KEY}/pool.pd_"),
                Reply::Bytes(cab_of("pool.pdb", &pool_pdb())),
            ),
            (
                format!("/ntdll.pdb/{NTDLL_KEY}/file.ptr"),
                Reply::Bytes(format!("PATH:{url}/elsewhere/ntdll.pdb\r\n").into_bytes()),
            ),
            ("/elsewhere/ntdll.pdb".into(), Reply::Bytes(ntdll_pdb())),
        ]
    });
    let nt = format!("srv*{}*{}", cache.display(), server.url);
    let pool = fixture("sym-pool-x86.dmp");
    let pool = pool.to_str().unwrap();
    let future = fixture("heap-future-x64.dmp");
    let future = future.to_str().unwrap();

    // Function names (undecorated publics of pool.pdb) in `top --by function`.
    let top = run_json(Some(&nt), &["top", pool, "--by", "function", "--json"]);
    assert_eq!(
        entries(&top).keys().cloned().collect::<BTreeSet<_>>(),
        POOL_ALLOCATORS.iter().map(|s| s.to_string()).collect(),
        "{top}"
    );
    // One note, for the one module that names no PDB.
    assert_eq!(
        top["notes"],
        serde_json::json!([
            "symbols missing for 1 module, whose frames read module+offset: ntdll.dll (the dump has \
             no CodeView record (PDB name, GUID, age) for it) (heapdiag symbols DUMP lists every module)"
        ])
    );
    // Lines and inline frames in `block`.
    let addr = hex(block_with_stack("sym-pool-x86.dmp", 0));
    let (ok, block, _) = run(Some(&nt), &["block", pool, &addr]);
    assert!(ok);
    for line in [
        " pool!pool_malloc+0x9\n",
        r" crash!std::basic_string<wchar_t,std::char_traits<wchar_t>,std::allocator<wchar_t> >::_Tidy_init [c:\program files (x86)\microsoft visual studio\2017\community\vc\tools\msvc\14.13.26128\include\xstring @ 3892] (inline)",
        r" crash!main+0x55 [c:\projects\breakpad-tools\windows\crash\main.cpp @ 34]",
    ] {
        assert!(block.contains(line), "{line} not in {block}");
    }
    // ntdll.pdb from the file.ptr gives the heap layout of the future build.
    let heaps = run_json(Some(&nt), &["heaps", future, "--json"]);
    assert_eq!(heaps[0]["lfh"], true, "{heaps}");

    // The cache holds each PDB in the standard layout, byte for byte, and nothing else.
    let want: BTreeMap<PathBuf, Vec<u8>> = [
        (format!("crash.pdb/{CRASH_KEY}/crash.pdb"), crash.clone()),
        (format!("pool.pdb/{POOL_KEY}/pool.pdb"), pool_pdb()),
        (format!("ntdll.pdb/{NTDLL_KEY}/ntdll.pdb"), ntdll_pdb()),
    ]
    .into_iter()
    .map(|(p, b)| (PathBuf::from(p), b))
    .collect();
    assert!(files(&cache) == want, "{:?}", files(&cache).keys());

    // A second run of each asks the server nothing and says the same.
    let asked = server.requests();
    assert_eq!(
        run_json(Some(&nt), &["top", pool, "--by", "function", "--json"]),
        top
    );
    assert_eq!(run(Some(&nt), &["block", pool, &addr]).1, block);
    assert_eq!(run_json(Some(&nt), &["heaps", future, "--json"]), heaps);
    assert_eq!(server.requests(), asked);
    // What was asked: the PDB, then the .pd_, then file.ptr, each once.
    let count = |p: &str| asked.iter().filter(|a| a.as_str() == p).count();
    assert_eq!(count(&format!("/crash.pdb/{CRASH_KEY}/crash.pdb")), 1);
    assert_eq!(count(&format!("/pool.pdb/{POOL_KEY}/pool.pdb")), 1);
    assert_eq!(count(&format!("/pool.pdb/{POOL_KEY}/pool.pd_")), 1);
    assert_eq!(count(&format!("/ntdll.pdb/{NTDLL_KEY}/file.ptr")), 1);
    assert_eq!(count("/elsewhere/ntdll.pdb"), 1);
}

#[test]
fn slow_downloads_print_a_progress_line_and_run_side_by_side() {
    let Some(crash) = crash_pdb() else { return };
    let dir = scratch("symsrv-progress");
    // Each file in ten pieces, 150 ms apart: 1.5 s each.
    let pause = Duration::from_millis(150);
    let server = Server::start(vec![
        (
            format!("/crash.pdb/{CRASH_KEY}/crash.pdb"),
            Reply::Drip(pause, crash),
        ),
        (
            format!("/pool.pdb/{POOL_KEY}/pool.pdb"),
            Reply::Drip(pause, pool_pdb()),
        ),
    ]);
    let nt = format!("srv*{}*{}", dir.join("cache").display(), server.url);
    let pool = fixture("sym-pool-x86.dmp");
    let (ok, out, err) = run(
        Some(&nt),
        &["top", pool.to_str().unwrap(), "--by", "function", "--json"],
    );
    assert!(ok, "{err}");
    let top: Value = serde_json::from_str(&out).unwrap();
    assert!(entries(&top).contains_key("pool!Pool::Alloc"), "{top}");
    assert!(
        err.contains(&format!(
            "heapdiag: downloading crash.pdb from {}/crash.pdb/{CRASH_KEY}/crash.pdb\n",
            server.url
        )),
        "{err}"
    );
    assert!(
        err.contains("heapdiag: crash.pdb: 1.0 MB of 1.0 MB in "),
        "{err}"
    );
    assert!(
        err.contains("heapdiag: pool.pdb: 61440 bytes of 61440 bytes in "),
        "{err}"
    );
    // The two modules are independent: their downloads overlapped.
    assert!(server.most_at_once.load(Ordering::SeqCst) >= 2);
}

#[test]
fn offline_unreachable_and_silent_servers_give_module_offsets_and_one_note() {
    let dir = scratch("symsrv-down");
    let cache = dir.join("cache");
    let pool = fixture("sym-pool-x86.dmp");
    let pool = pool.to_str().unwrap();
    let args = ["top", pool, "--by", "function", "--json"];
    let only_offsets = |top: &Value| {
        assert!(
            entries(top).keys().all(|k| k.starts_with("pool+0x")),
            "{top}"
        );
        let notes = top["notes"].as_array().unwrap();
        assert_eq!(notes.len(), 1, "{notes:?}");
        notes[0].as_str().unwrap().to_string()
    };

    // --offline: the server has the PDB but is never asked.
    let server = Server::start(vec![(
        format!("/pool.pdb/{POOL_KEY}/pool.pdb"),
        Reply::Bytes(pool_pdb()),
    )]);
    let nt = format!("srv*{}*{}", cache.display(), server.url);
    let mut offline = args.to_vec();
    offline.push("--offline");
    let note = only_offsets(&run_json(Some(&nt), &offline));
    assert!(
        note.contains(&format!(
            "crash.exe, pool.dll (not in {}; {}: not asked (--offline))",
            cache.display(),
            server.url
        )),
        "{note}"
    );
    assert!(server.requests().is_empty());

    // Nobody listens on the port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nt = format!("srv*{}*http://127.0.0.1:{port}", cache.display());
    let note = only_offsets(&run_json(Some(&nt), &args));
    assert!(
        note.contains(&format!(
            "http://127.0.0.1:{port}/pool.pdb/{POOL_KEY}/pool.pdb: "
        )),
        "{note}"
    );

    // A server that never answers in time: bounded by --symbol-timeout.
    let silent = Server::start(vec![(
        format!("/pool.pdb/{POOL_KEY}/pool.pdb"),
        Reply::Late(Duration::from_secs(30), pool_pdb()),
    )]);
    let nt = format!("srv*{}*{}", cache.display(), silent.url);
    let mut timed = args.to_vec();
    timed.extend(["--symbol-timeout", "1"]);
    let started = Instant::now();
    let note = only_offsets(&run_json(Some(&nt), &timed));
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        note.contains(&format!(
            "{}/pool.pdb/{POOL_KEY}/pool.pdb: timed out (no answer within 1 s)",
            silent.url
        )),
        "{note}"
    );
    assert!(files(&cache).is_empty(), "{:?}", files(&cache).keys());
}

/// `symbols --json` for sym-pool-x86.dmp against a server with `routes`: the entries of
/// crash.exe and pool.dll, and the files left in the cache.
fn symbols_with(
    name: &str,
    make: impl FnOnce(&str) -> Vec<(String, Reply)>,
) -> (Value, Value, BTreeMap<PathBuf, Vec<u8>>) {
    let cache = scratch(name).join("cache");
    let server = Server::start_with(make);
    let nt = format!("srv*{}*{}", cache.display(), server.url);
    let dump = fixture("sym-pool-x86.dmp");
    let v = run_json(Some(&nt), &["symbols", dump.to_str().unwrap(), "--json"]);
    let module = |n: &str| {
        v["modules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == n)
            .unwrap()
            .clone()
    };
    (module("crash.exe"), module("pool.dll"), files(&cache))
}

/// The kinds and texts of a `symbols --json` module's misses.
fn misses(m: &Value) -> Vec<(String, String)> {
    m["misses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["kind"].as_str().unwrap().to_string(),
                x["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_symbols_view_says_why_each_pdb_is_missing() {
    let Some(crash) = crash_pdb() else { return };

    // A corrupted PDB, and a PDB the server does not have (404 for .pdb, .pd_ and file.ptr).
    let mut broken = crash.clone();
    broken.truncate(8192);
    broken[100..200].fill(0xee);
    let (c, p, cache) = symbols_with("symsrv-why1", |_| {
        vec![(
            format!("/crash.pdb/{CRASH_KEY}/crash.pdb"),
            Reply::Bytes(broken),
        )]
    });
    assert_eq!(c["found"], false);
    let m = misses(&c);
    assert_eq!(m.last().unwrap().0, "unreadable", "{m:?}");
    let (_, text) = m.last().unwrap();
    assert!(
        text.contains(&format!("/crash.pdb/{CRASH_KEY}/crash.pdb: ")) && text.contains("PDB"),
        "{m:?}"
    );
    let m = misses(&p);
    assert_eq!(m.last().unwrap().0, "not_on_server", "{m:?}");
    assert!(
        m.last().unwrap().1.ends_with(": not on the server (404)"),
        "{m:?}"
    );
    assert!(cache.is_empty(), "{:?}", cache.keys());

    // Another PDB under crash's key (GUID/age mismatch), and a .pd_ that is not a cabinet.
    let (c, p, cache) = symbols_with("symsrv-why2", |_| {
        vec![
            (
                format!("/crash.pdb/{CRASH_KEY}/crash.pdb"),
                Reply::Bytes(pool_pdb()),
            ),
            (
                format!("/pool.pdb/{POOL_KEY}/pool.pd_"),
                Reply::Bytes(b"MSCF but not really a cabinet".to_vec()),
            ),
        ]
    });
    let m = misses(&c);
    assert_eq!(m.last().unwrap().0, "mismatch", "{m:?}");
    assert!(
        m.last().unwrap().1.ends_with(&format!(
            "its GUID/age {POOL_GUID}/1 differ from the module's {CRASH_GUID}/1"
        )),
        "{m:?}"
    );
    let m = misses(&p);
    assert_eq!(m.last().unwrap().0, "unreadable", "{m:?}");
    assert!(
        m.last().unwrap().1.contains("not a readable cabinet"),
        "{m:?}"
    );
    assert!(cache.is_empty(), "{:?}", cache.keys());

    // A server error, and a redirect to another scheme (a local file).
    let (c, p, cache) = symbols_with("symsrv-why3", |_| {
        vec![
            (
                format!("/crash.pdb/{CRASH_KEY}/crash.pdb"),
                Reply::Status(500),
            ),
            (
                format!("/pool.pdb/{POOL_KEY}/pool.pdb"),
                Reply::Redirect("file:///etc/passwd".into()),
            ),
        ]
    });
    let m = misses(&c);
    assert_eq!(m.last().unwrap().0, "download_failed", "{m:?}");
    assert!(
        m.last()
            .unwrap()
            .1
            .ends_with("crash.pdb: HTTP 500 Internal Server Error"),
        "{m:?}"
    );
    let m = misses(&p);
    assert_eq!(m.last().unwrap().0, "download_failed", "{m:?}");
    assert!(
        m.last()
            .unwrap()
            .1
            .ends_with("pool.pdb: redirected to file:///etc/passwd, another scheme; not followed"),
        "{m:?}"
    );
    assert!(cache.is_empty(), "{:?}", cache.keys());

    // A redirect within the server is followed; a file.ptr naming a local file is not, even when
    // that file is the right PDB.
    let local = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/pdb/pool.pdb");
    let (c, p, cache) = symbols_with("symsrv-why4", |u| {
        vec![
            (
                format!("/crash.pdb/{CRASH_KEY}/crash.pdb"),
                Reply::Redirect(format!("{u}/moved/crash.pdb")),
            ),
            ("/moved/crash.pdb".into(), Reply::Bytes(crash.clone())),
            (
                format!("/pool.pdb/{POOL_KEY}/file.ptr"),
                Reply::Bytes(format!("PATH:{local}").into_bytes()),
            ),
        ]
    });
    assert_eq!(c["found"], true, "{c}");
    assert!(c["downloaded_from"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    assert_eq!(p["found"], false);
    let m = misses(&p);
    assert!(
        m.last().unwrap().1.ends_with(&format!(
            "file.ptr: points to '{local}', not a URL of the same scheme; not followed"
        )),
        "{m:?}"
    );
    assert_eq!(
        cache.keys().collect::<Vec<_>>(),
        vec![&PathBuf::from(format!("crash.pdb/{CRASH_KEY}/crash.pdb"))]
    );
}

#[test]
fn files_over_the_size_cap_are_not_kept() {
    use heapdiag::symsrv::{http::FetchOptions, SymbolOptions, SymbolPath};
    let cache = scratch("symsrv-cap").join("cache");
    let options = SymbolOptions {
        offline: false,
        fetch: FetchOptions {
            max_bytes: 50_000,
            ..FetchOptions::default()
        },
    };
    // pool.pdb is 61440 bytes: as a PDB, and inside a small cabinet.
    for (file, body) in [
        ("pool.pdb", pool_pdb()),
        ("pool.pd_", cab_of("pool.pdb", &pool_pdb())),
    ] {
        let server = Server::start(vec![(
            format!("/pool.pdb/{POOL_KEY}/{file}"),
            Reply::Bytes(body),
        )]);
        let path = SymbolPath::with_options(
            &[format!("srv*{}*{}", cache.display(), server.url)],
            options.clone(),
        );
        let l = path.find("pool.pdb", POOL_GUID, 1);
        assert!(l.found.is_none(), "{l:?}");
        let last = &l.misses.last().unwrap().text;
        assert!(
            last.contains("larger than the 50000 bytes limit")
                || last.contains("its PDB is 61440 bytes, over the 50000-byte limit"),
            "{l:?}"
        );
        assert!(files(&cache).is_empty(), "{:?}", files(&cache).keys());
    }
}

#[test]
fn chained_stores_and_cache_folders_receive_what_later_ones_give() {
    let Some(crash) = crash_pdb() else { return };
    let dir = scratch("symsrv-chain");
    let [near, far, flat, share, c1] = ["near", "far", "flat", "share", "c1"].map(|d| dir.join(d));
    // srv*NEAR*FAR*URL: crash.pdb compressed in FAR, pool.pdb on the server.
    let crash_cab = cab_of("crash.pdb", &crash);
    let far_cab = far.join(format!("crash.pdb/{CRASH_KEY}/crash.pd_"));
    std::fs::create_dir_all(far_cab.parent().unwrap()).unwrap();
    std::fs::write(&far_cab, &crash_cab).unwrap();
    let server = Server::start(vec![(
        format!("/pool.pdb/{POOL_KEY}/pool.pdb"),
        Reply::Bytes(pool_pdb()),
    )]);
    let dump = fixture("sym-pool-x86.dmp");
    let dump = dump.to_str().unwrap();
    let nt = format!("srv*{}*{}*{}", near.display(), far.display(), server.url);
    let v = run_json(Some(&nt), &["symbols", dump, "--json"]);
    assert_eq!(v["with_symbols"], 2, "{v}");
    let layout = |entries: Vec<(&str, &str, Vec<u8>)>| -> BTreeMap<PathBuf, Vec<u8>> {
        entries
            .into_iter()
            .map(|(n, f, b)| {
                let key = if n == "crash.pdb" {
                    CRASH_KEY
                } else {
                    POOL_KEY
                };
                (PathBuf::from(format!("{n}/{key}/{f}")), b)
            })
            .collect()
    };
    assert!(
        files(&near)
            == layout(vec![
                ("crash.pdb", "crash.pdb", crash.clone()),
                ("pool.pdb", "pool.pdb", pool_pdb())
            ])
    );
    assert!(
        files(&far)
            == layout(vec![
                ("crash.pdb", "crash.pd_", crash_cab),
                ("pool.pdb", "pool.pdb", pool_pdb())
            ])
    );
    assert_eq!(server.requests().len(), 1);

    // cache*C1, then a plain folder holding pool.pdb flat, then a store whose file.ptr points to
    // crash.pdb elsewhere on disk: both copied into C1.
    std::fs::create_dir_all(&flat).unwrap();
    std::fs::write(flat.join("POOL.PDB"), pool_pdb()).unwrap();
    let elsewhere = dir.join("elsewhere.pdb");
    std::fs::write(&elsewhere, &crash).unwrap();
    let ptr = share.join(format!("crash.pdb/{CRASH_KEY}/file.ptr"));
    std::fs::create_dir_all(ptr.parent().unwrap()).unwrap();
    std::fs::write(&ptr, format!("PATH:{}", elsewhere.display())).unwrap();
    let nt = format!(
        "cache*{};{};srv*{}",
        c1.display(),
        flat.display(),
        share.display()
    );
    let v = run_json(Some(&nt), &["symbols", dump, "--json"]);
    assert_eq!(v["with_symbols"], 2, "{v}");
    assert!(
        files(&c1)
            == layout(vec![
                ("crash.pdb", "crash.pdb", crash.clone()),
                ("pool.pdb", "pool.pdb", pool_pdb())
            ])
    );
}

#[test]
fn hostile_pdb_names_read_and_write_nothing_outside_the_symbol_folders() {
    let Some(crash) = crash_pdb() else { return };
    let sandbox = scratch("symsrv-hostile");
    let deep = sandbox.join("a").join("b").join("c");
    let (syms, cache) = (deep.join("syms"), deep.join("cache"));
    std::fs::create_dir_all(&syms).unwrap();
    std::fs::create_dir_all(&cache).unwrap();
    // Baits: crash.pdb, whose GUID and age every hostile module names, where a name joined to a
    // symbol folder as it is would lead (`../../../evil.pdb`), and at an absolute path.
    let abs = sandbox.join("bait").join("abs.pdb");
    std::fs::create_dir_all(abs.parent().unwrap()).unwrap();
    for bait in [sandbox.join("a").join("evil.pdb"), abs.clone()] {
        std::fs::write(bait, &crash).unwrap();
    }
    let mut names = hostile_pdb_names();
    let last = names.len() - 1;
    names[last] = abs.display().to_string();
    let (mut b, _) = (dumpwriter::fixtures::by_name("sym-hostile-x86.dmp")
        .unwrap()
        .build)();
    let m = b
        .modules
        .iter_mut()
        .find(|m| m.base == hostile_base(last))
        .unwrap();
    m.pdb.as_mut().unwrap().2 = names[last].clone();
    let dump = write_temp("sym-hostile-abs-x86.dmp", &b.to_bytes());
    let dump = dump.to_str().unwrap();
    let before = files(&sandbox);

    // The server gives crash.pdb to whoever asks for evil.pdb under crash's key.
    let server = Server::start(vec![(
        format!("/evil.pdb/{CRASH_KEY}/evil.pdb"),
        Reply::Bytes(crash.clone()),
    )]);
    let nt = format!("srv*{}*{}", cache.display(), server.url);
    let syms_arg = syms.display().to_string();
    let mut outputs = Vec::new();
    for with_server in [false, true] {
        let nt = with_server.then_some(nt.as_str());
        let v = run_json(nt, &["symbols", dump, "--symbols", &syms_arg, "--json"]);
        let by_name: BTreeMap<String, Value> = v["modules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["name"].as_str().unwrap().to_string(), m.clone()))
            .collect();
        for (n, raw) in names.iter().enumerate() {
            let m = &by_name[&format!("evil{n}.dll")];
            let plain = matches!(n, 0..=2 | 10) || n == last;
            if plain {
                // Looked up by its file name alone, inside the folders: only the server has it.
                let found = with_server && n <= 2;
                assert_eq!(m["found"], found, "{raw:?}: {m}");
                if found {
                    assert_eq!(
                        m["path"],
                        cache
                            .join(format!("evil.pdb/{CRASH_KEY}/evil.pdb"))
                            .display()
                            .to_string()
                    );
                }
            } else {
                assert_eq!(m["found"], false, "{raw:?}: {m}");
                let kinds: Vec<String> = misses(m).into_iter().map(|(k, _)| k).collect();
                assert!(
                    kinds == ["name_refused"] || kinds == ["no_record"],
                    "{raw:?}: {m}"
                );
            }
        }
        for args in [
            vec!["info", dump, "--modules"],
            vec!["top", dump, "--by", "module", "--symbols", &syms_arg],
            vec!["top", dump, "--by", "function", "--symbols", &syms_arg],
            vec!["symbols", dump, "--symbols", &syms_arg],
            vec!["top", dump, "--by", "stack", "--symbols", &syms_arg],
        ] {
            let (ok, out, err) = run(nt, &args);
            assert!(ok, "{err}");
            // Names from the dump never reach the terminal raw.
            assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
            outputs.push(out);
        }
    }
    // The baits were never read: their frames stay module+offset.
    let top = outputs.last().unwrap();
    assert!(top.contains(&format!("evil{last}+0x2965")), "{top}");
    assert!(!top.contains(&format!("evil{last}!")), "{top}");
    assert!(top.contains("evil0!main+0x55"), "{top}");

    // Nothing was written but the one download, in the cache, in store layout.
    let after = files(&sandbox);
    for (p, bytes) in &before {
        assert!(after.get(p) == Some(bytes), "{} changed", p.display());
    }
    let new: Vec<&PathBuf> = after.keys().filter(|p| !before.contains_key(*p)).collect();
    assert_eq!(
        new,
        vec![&PathBuf::from(format!(
            "a/b/c/cache/evil.pdb/{CRASH_KEY}/evil.pdb"
        ))]
    );
    // And every request named a plain file, percent-encoded (app.exe and ntdll.dll ask for
    // their own PDBs).
    let asked: BTreeSet<String> = server
        .requests()
        .iter()
        .map(|r| {
            let parts: Vec<&str> = r.trim_start_matches('/').split('/').collect();
            assert_eq!(parts.len(), 3, "{r}");
            assert!(
                parts[0] == "app.pdb" || parts[0] == "ntdll.pdb" || parts[1] == CRASH_KEY,
                "{r}"
            );
            parts[0].to_string()
        })
        .collect();
    assert_eq!(
        asked,
        [
            "%252e%252e%252fevil.pdb",
            "abs.pdb",
            "app.pdb",
            "evil.pdb",
            "ntdll.pdb"
        ]
        .map(String::from)
        .into()
    );
}

#[test]
fn frames_read_the_same_in_text_json_and_csv() {
    let Some(crash_dir) = real("pdb") else { return };
    let pool = fixture("sym-pool-x86.dmp");
    let testdata = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/pdb");
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "top".to_string(),
            pool.display().to_string(),
            "--by".into(),
            "stack".into(),
            "--symbols".into(),
            crash_dir.display().to_string(),
            "--symbols".into(),
            testdata.into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let out = |extra: &[&'static str]| {
        let a = args(extra);
        let (ok, out, err) = run(None, &a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(ok, "{err}");
        out
    };
    // Text: the frame lines under each `BackTrace …` entry.
    let mut text: Vec<Vec<String>> = Vec::new();
    for l in out(&[]).lines() {
        if l.starts_with("BackTrace ") {
            text.push(Vec::new());
        } else if let (Some(t), Some(f)) = (text.last_mut(), l.strip_prefix("        ")) {
            t.push(f.to_string());
        }
    }
    // JSON: the same facts as fields; written out as the text views write them.
    let json: Value = serde_json::from_str(&out(&["--json"])).unwrap();
    let src = |f: &Value| match (f["file"].as_str(), f["line"].as_u64()) {
        (Some(file), Some(line)) => format!(" [{file} @ {line}]"),
        _ => String::new(),
    };
    let from_json: Vec<Vec<String>> = json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["frames"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|f| {
                    let module = f["module"].as_str().unwrap();
                    let short = module.rsplit_once('.').unwrap().0;
                    let inl = f["inlined"].as_array().cloned().unwrap_or_default();
                    let mut lines: Vec<String> = inl
                        .iter()
                        .map(|i| {
                            format!(
                                "{short}!{}{} (inline)",
                                i["function"].as_str().unwrap(),
                                src(i)
                            )
                        })
                        .collect();
                    lines.push(match f["function"].as_str() {
                        Some(func) => format!(
                            "{short}!{func}+{}{}",
                            f["function_offset"].as_str().unwrap(),
                            src(f)
                        ),
                        None => format!("{short}+{}", f["offset"].as_str().unwrap()),
                    });
                    lines
                })
                .collect()
        })
        .collect();
    // CSV: the last column, `;`-separated.
    let from_csv: Vec<Vec<String>> = out(&["--csv"])
        .lines()
        .skip(1)
        .map(|row| {
            // The frames column is followed by `no_stack`.
            let row = row.rsplit_once(',').unwrap().0;
            let frames = match row.find(",\"") {
                Some(i) => row[i + 2..row.len() - 1].replace("\"\"", "\""),
                None => row.rsplit(',').next().unwrap().to_string(),
            };
            frames.split(';').map(String::from).collect()
        })
        .collect();
    assert_eq!(text.len(), 4);
    assert_eq!(text, from_json);
    assert_eq!(text, from_csv);

    // The JSON fields behind the text.
    let frames: Vec<&Value> = json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["frames"].as_array().unwrap())
        .collect();
    let main = frames
        .iter()
        .find(|f| f["function"] == "main" && f["function_offset"] == "0x55")
        .unwrap();
    assert_eq!(
        main["file"],
        r"c:\projects\breakpad-tools\windows\crash\main.cpp"
    );
    assert_eq!(main["line"], 34);
    assert_eq!(
        main["inlined"][0]["function"],
        "std::basic_string<wchar_t,std::char_traits<wchar_t>,std::allocator<wchar_t> >::_Tidy_init"
    );
    assert_eq!(main["inlined"][0]["line"], 3892);
    let malloc = frames
        .iter()
        .find(|f| f["function"] == "pool_malloc")
        .unwrap();
    assert_eq!(malloc["function_offset"], "0x9");
    assert!(malloc.get("file").is_none() && malloc.get("inlined").is_none());
}

#[test]
fn the_symbols_view_lists_every_module_like_lm() {
    let Some(crash_dir) = real("pdb") else { return };
    let pool = fixture("sym-pool-x86.dmp");
    let testdata = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/pdb");
    let crash_dir = crash_dir.display().to_string();
    let (ok, out, err) = run(
        None,
        &[
            "symbols",
            pool.to_str().unwrap(),
            "--symbols",
            &crash_dir,
            "--symbols",
            testdata,
        ],
    );
    assert!(ok, "{err}");
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let want = [
        format!("Symbol path: {crash_dir};{testdata}"),
        String::new(),
        "Base Module PDB GUID/age Symbols".into(),
        format!("0x400000 crash.exe crash.pdb {CRASH_GUID}/1 {crash_dir}/crash.pdb"),
        format!("0x10000000 pool.dll pool.pdb {POOL_GUID}/1 {testdata}/pool.pdb"),
        "0x77000000 ntdll.dll missing: the dump has no CodeView record (PDB name, GUID, age) for it"
            .into(),
        String::new(),
        "3 modules: 2 with symbols, 1 without".into(),
    ];
    assert_eq!(lines, want, "{out}");
    // Without a symbol path it says so.
    let (_, out, _) = run(None, &["symbols", pool.to_str().unwrap()]);
    assert!(
        out.starts_with("Symbol path: none (give --symbols PATH or set _NT_SYMBOL_PATH)\n"),
        "{out}"
    );
    assert!(
        out.contains("missing: no symbol path (--symbols or _NT_SYMBOL_PATH)"),
        "{out}"
    );
}

/// A `--symbols` folder that does not exist, a PDB given where its folder is expected, and
/// `_NT_SYMBOL_PATH` elements that cannot be used get one note each, naming where they come
/// from; the views that print no frames carry no note about missing symbols.
#[test]
fn symbol_path_elements_that_cannot_be_used_are_named() {
    let dump = fixture("ust-crash-x86.dmp");
    let d = dump.to_str().unwrap();
    let missing = scratch("symbols-missing").join("no-such-folder");
    let pdb_arg = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/pdb/pool.pdb").to_string();
    let missing_arg = missing.display().to_string();
    let nt = format!("weird*x;{}", missing.join("env").display());
    let v = run_json(
        Some(&nt),
        &[
            "top",
            d,
            "--by",
            "stack",
            "--json",
            "--symbols",
            &missing_arg,
            "--symbols",
            &pdb_arg,
        ],
    );
    let notes: Vec<String> = v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    let has = |s: &str| notes.iter().filter(|n| n.contains(s)).count();
    assert_eq!(
        has(&format!(
            "--symbols: folder '{missing_arg}' does not exist; it is not used"
        )),
        1,
        "{notes:?}"
    );
    assert_eq!(
        has(&format!(
            "--symbols: '{pdb_arg}' is a file, not a folder: give the folder that holds the PDB"
        )),
        1,
        "{notes:?}"
    );
    assert_eq!(
        has("_NT_SYMBOL_PATH: symbol path element 'weird*x' is not a folder"),
        1,
        "{notes:?}"
    );
    assert_eq!(
        has(&format!(
            "_NT_SYMBOL_PATH: folder '{}' does not exist; it is not used",
            missing.join("env").display()
        )),
        1,
        "{notes:?}"
    );
    // Nothing is left to search: said once, instead of "no symbol path".
    assert_eq!(
        has("nothing on the symbol path can be used"),
        1,
        "{notes:?}"
    );
    assert_eq!(has("no symbol path"), 0, "{notes:?}");
    // The same notes in the symbols view; on standard error for heaps and blocks.
    let s = run_json(
        Some(&nt),
        &["symbols", d, "--json", "--symbols", &missing_arg],
    );
    assert!(s["notes"].to_string().contains("does not exist"), "{s}");
    let (ok, _, err) = run(Some(&nt), &["heaps", d, "--symbols", &missing_arg]);
    assert!(ok);
    assert!(
        err.contains(&format!(
            "heapdiag: note: --symbols: folder '{missing_arg}' does not exist"
        )),
        "{err}"
    );
    // No frames printed, no note about symbols missing or no symbol path.
    for by in ["size", "heap"] {
        let v = run_json(None, &["top", d, "--by", by, "--json"]);
        assert_eq!(v["notes"], serde_json::json!([]), "{by}: {}", v["notes"]);
    }
}
