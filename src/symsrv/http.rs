//! Downloads from HTTP(S) symbol servers: a blocking `ureq` agent with timeouts, a size cap,
//! redirects followed only within the same scheme, and progress lines (handed to the caller, who
//! prints them) when a download takes more than a second.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// At most this many redirects are followed for one file.
const MAX_REDIRECTS: usize = 5;

/// How downloads behave.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// The longest wait for a connection, for the answer, or between two pieces of a file; a
    /// whole file gets at most 15 times this.
    pub timeout: Duration,
    /// Files larger than this are not downloaded.
    pub max_bytes: u64,
    /// Called with progress lines for downloads that take more than a second (the command line
    /// prints them on standard error).
    pub progress: Option<fn(&str)>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            timeout: Duration::from_secs(20),
            max_bytes: 4 << 30,
            progress: None,
        }
    }
}

/// A symbol-server client.
pub struct Http {
    agent: ureq::Agent,
    options: FetchOptions,
}

impl Http {
    /// A client with `options`; proxies come from the usual environment variables.
    pub fn new(options: FetchOptions) -> Http {
        let t = Some(options.timeout);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(t)
            .timeout_resolve(t)
            .timeout_send_request(t)
            .timeout_recv_response(t)
            .timeout_per_read(t)
            .timeout_global(Some(options.timeout * 15))
            .max_redirects(0)
            .http_status_as_error(false)
            .user_agent(concat!("heapdiag/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Http { agent, options }
    }

    /// Download `url` into the new file `dest`: `Ok(None)` when the server does not have it (404
    /// or 410), `Ok(Some(bytes))` when written, or why it failed (the file may then hold part of
    /// the download; the caller removes it).
    pub fn fetch_to_file(
        &self,
        url: &str,
        dest: &Path,
        label: &str,
    ) -> Result<Option<u64>, String> {
        let watch = self
            .options
            .progress
            .map(|report| Watch::start(report, label, url));
        let result = self.download(url, dest, watch.as_ref().map(|w| &w.progress));
        if let Some(w) = watch {
            w.finish(match &result {
                Ok(Some(_)) => None,
                Ok(None) => Some("not on the server".into()),
                Err(why) => Some(why.clone()),
            });
        }
        result
    }

    /// [`Http::fetch_to_file`] without the progress line, counting bytes into `progress`.
    fn download(
        &self,
        url: &str,
        dest: &Path,
        progress: Option<&Arc<Progress>>,
    ) -> Result<Option<u64>, String> {
        let Some((final_url, mut response)) = self.open(url)? else {
            return Ok(None);
        };
        let max = self.options.max_bytes;
        let total = response.body().content_length();
        if let Some(n) = total.filter(|&n| n > max) {
            return Err(format!(
                "{final_url}: {} is larger than the {} limit",
                mb(n),
                mb(max)
            ));
        }
        if let (Some(p), Some(t)) = (progress, total) {
            p.total.store(t, Ordering::Relaxed);
        }
        let mut file = super::store::create_new(dest)?;
        let mut reader = response.body_mut().as_reader();
        let mut buf = vec![0u8; 1 << 16];
        let mut count = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(Some(count)),
                Ok(n) => n,
                Err(e) => return Err(format!("{final_url}: {}", self.io_reason(&e))),
            };
            count += n as u64;
            if count > max {
                return Err(format!("{final_url}: larger than the {} limit", mb(max)));
            }
            file.write_all(&buf[..n])
                .map_err(|e| format!("cannot write {} ({e})", dest.display()))?;
            if let Some(p) = progress {
                p.bytes.store(count, Ordering::Relaxed);
            }
        }
    }

    /// A small file (`file.ptr`): `Ok(None)` when the server does not have it.
    pub fn fetch_small(&self, url: &str, limit: u64) -> Result<Option<Vec<u8>>, String> {
        let Some((final_url, mut response)) = self.open(url)? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        response
            .body_mut()
            .as_reader()
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("{final_url}: {}", self.io_reason(&e)))?;
        if out.len() as u64 > limit {
            return Err(format!("{final_url}: longer than {limit} bytes"));
        }
        Ok(Some(out))
    }

    /// GET `url`, following redirects that keep the scheme: the final URL and its 2xx response,
    /// `None` for 404/410, or why not.
    fn open(
        &self,
        url: &str,
    ) -> Result<Option<(String, ureq::http::Response<ureq::Body>)>, String> {
        let mut url = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let response = self
                .agent
                .get(&url)
                .call()
                .map_err(|e| format!("{url}: {}", self.reason(&e)))?;
            let status = response.status();
            if status.is_success() {
                return Ok(Some((url, response)));
            }
            if status == 404 || status == 410 {
                return Ok(None);
            }
            if status.is_redirection() {
                let Some(location) = response
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                else {
                    return Err(format!("{url}: HTTP {status} without a Location"));
                };
                url = follow(&url, location)?;
                continue;
            }
            return Err(format!("{url}: HTTP {status}"));
        }
        Err(format!("{url}: more than {MAX_REDIRECTS} redirects"))
    }

    /// A request error in words.
    fn reason(&self, e: &ureq::Error) -> String {
        match e {
            ureq::Error::Timeout(_) => self.timed_out(),
            ureq::Error::HostNotFound => "host not found".into(),
            ureq::Error::ConnectionFailed => "connection failed".into(),
            ureq::Error::Io(io) => self.io_reason(io),
            e => e.to_string(),
        }
    }

    /// A read error in words.
    fn io_reason(&self, e: &std::io::Error) -> String {
        if e.kind() == std::io::ErrorKind::TimedOut || e.to_string().contains("timeout") {
            self.timed_out()
        } else {
            e.to_string()
        }
    }

    fn timed_out(&self) -> String {
        format!(
            "timed out (no answer within {} s)",
            self.options.timeout.as_secs_f64()
        )
    }
}

/// The URL a redirect from `from` to `location` leads to, if it keeps the scheme: never to another
/// scheme (`https:` to `http:`, `file:`…) or a local file.
pub fn follow(from: &str, location: &str) -> Result<String, String> {
    let (scheme, rest) = from.split_once("://").unwrap_or(("http", from));
    let origin_end = rest.find('/').unwrap_or(rest.len());
    let origin = format!("{scheme}://{}", &rest[..origin_end]);
    let has_scheme = location.split_once(':').is_some_and(|(s, _)| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    });
    let to = if let Some(l) = location.strip_prefix("//") {
        format!("{scheme}://{l}")
    } else if has_scheme {
        location.to_string()
    } else if location.starts_with('/') {
        format!("{origin}{location}")
    } else {
        let base = from.rsplit_once('/').map_or(from, |(b, _)| b);
        format!("{base}/{location}")
    };
    let to_scheme = to.split_once(':').map(|(s, _)| s).unwrap_or("");
    if !to_scheme.eq_ignore_ascii_case(scheme) {
        return Err(format!(
            "{from}: redirected to {to}, another scheme; not followed"
        ));
    }
    Ok(to)
}

/// `12.3 MB`, or `61440 bytes` under a megabyte.
fn mb(bytes: u64) -> String {
    if bytes < 1_000_000 {
        format!("{bytes} bytes")
    } else {
        format!("{:.1} MB", bytes as f64 / 1e6)
    }
}

/// Bytes of one download so far, and its size when the server said.
#[derive(Default)]
struct Progress {
    bytes: AtomicU64,
    total: AtomicU64,
}

/// The progress lines of one download: nothing for the first second, then a line saying what is
/// downloaded, one every ten seconds with the bytes so far, and one when it ends.
struct Watch {
    progress: Arc<Progress>,
    done: mpsc::Sender<Option<String>>,
    thread: std::thread::JoinHandle<()>,
}

impl Watch {
    fn start(report: fn(&str), label: &str, url: &str) -> Watch {
        let progress = Arc::new(Progress::default());
        let (done, rx) = mpsc::channel::<Option<String>>();
        let (label, url, seen) = (label.to_string(), url.to_string(), progress.clone());
        let so_far = move || {
            let (n, t) = (
                seen.bytes.load(Ordering::Relaxed),
                seen.total.load(Ordering::Relaxed),
            );
            if t > 0 {
                format!("{} of {}", mb(n), mb(t))
            } else {
                mb(n)
            }
        };
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            if rx.recv_timeout(Duration::from_secs(1)).is_ok() {
                return;
            }
            report(&format!("downloading {label} from {url}"));
            let end = loop {
                match rx.recv_timeout(Duration::from_secs(10)) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        report(&format!("{label}: {}", so_far()));
                    }
                    Ok(end) => break end,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break None,
                }
            };
            match end {
                None => report(&format!(
                    "{label}: {} in {:.1} s",
                    so_far(),
                    started.elapsed().as_secs_f64()
                )),
                Some(why) => report(&format!("{label}: failed: {why}")),
            }
        });
        Watch {
            progress,
            done,
            thread,
        }
    }

    /// The download ended (with the reason when it failed).
    fn finish(self, failure: Option<String>) {
        let _ = self.done.send(failure);
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_keep_the_scheme() {
        let from = "https://sym.example/dir/a.pdb/KEY/a.pdb";
        assert_eq!(
            follow(from, "https://blob.example/x?sig=1").unwrap(),
            "https://blob.example/x?sig=1"
        );
        assert_eq!(
            follow(from, "//cdn.example/y").unwrap(),
            "https://cdn.example/y"
        );
        assert_eq!(
            follow(from, "/other/a.pdb").unwrap(),
            "https://sym.example/other/a.pdb"
        );
        assert_eq!(
            follow(from, "b.pdb").unwrap(),
            "https://sym.example/dir/a.pdb/KEY/b.pdb"
        );
        for bad in [
            "http://sym.example/a.pdb",
            "file:///etc/passwd",
            "FILE:C:/x.pdb",
            "ftp://x/a.pdb",
        ] {
            let e = follow(from, bad).unwrap_err();
            assert!(e.contains("another scheme"), "{bad}: {e}");
        }
        assert!(follow("http://a/x", "https://a/x").is_err());
    }
}
