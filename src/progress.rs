//! Which phase a long command is in, for a progress line. The library only names its phases
//! ([`phase`]); nothing here prints unless the binary starts a [`Ticker`], which writes one line
//! on standard error for any phase that lasts over a second, and only when standard error is a
//! terminal.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The current phase and when it began.
static PHASE: Mutex<Option<(&'static str, Instant)>> = Mutex::new(None);

/// Enter phase `name` (e.g. "walking the heaps").
pub fn phase(name: &'static str) {
    if let Ok(mut p) = PHASE.lock() {
        *p = Some((name, Instant::now()));
    }
}

/// A background thread that shows the phase of a long run on standard error.
pub struct Ticker {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    /// Start showing phases that last over a second, when standard error is a terminal.
    pub fn start() -> Ticker {
        let done = Arc::new(AtomicBool::new(false));
        let thread = std::io::stderr().is_terminal().then(|| {
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut shown = false;
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                    let current = PHASE.lock().ok().and_then(|p| *p);
                    if let Some((name, since)) = current {
                        let t = since.elapsed();
                        if t >= Duration::from_secs(1) {
                            eprint!("\r\x1b[2Kheapdiag: {name}… {:.0} s", t.as_secs_f64());
                            let _ = std::io::stderr().flush();
                            shown = true;
                        }
                    }
                }
                if shown {
                    eprint!("\r\x1b[2K");
                }
            })
        });
        Ticker { done, thread }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
