//! The kernel's writeback of dirty file pages, as `/proc/meminfo` shows it, to tell whether a
//! measured phase met a writeback burst.
//!
//! With Linux's defaults (`vm.dirty_background_ratio` 10%, `vm.dirty_expire_centisecs` 30 s)
//! the pages PostgreSQL writes (among them the zero pages that extend a growing table or
//! index) pile up in the page cache and are written back together once they are 30 s old:
//! on this machine about 100 MB at once after 30 s of ingest, which made every commit of
//! every tenant wait 40–150 ms (tests/bench/RESULTS.md, "Kernel writeback"). Such a stall is
//! the host's, not one tenant's doing, so the benchmark shows it beside each phase's latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// How often `Dirty:` is read; a burst drains in well under a second.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Samples the dirty page total on a thread of its own, for as long as it lives.
pub struct Watch {
    /// The largest fall of the dirty total between two samples since the last `take`, in
    /// kB: about how much the kernel wrote back at once.
    largest_burst_kb: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    sampler: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    pub fn start() -> Self {
        let largest_burst_kb = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = std::thread::spawn({
            let (largest_burst_kb, stop) = (Arc::clone(&largest_burst_kb), Arc::clone(&stop));
            move || {
                let mut previous = dirty_kb();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(SAMPLE_EVERY);
                    let now = dirty_kb();
                    if let (Some(before), Some(after)) = (previous, now) {
                        largest_burst_kb.fetch_max(before.saturating_sub(after), Ordering::Relaxed);
                    }
                    previous = now;
                }
            }
        });
        Self {
            largest_burst_kb,
            stop,
            sampler: Some(sampler),
        }
    }

    /// The largest burst since the last call, in MB; starts the next span.
    pub fn take_mb(&self) -> f64 {
        self.largest_burst_kb.swap(0, Ordering::Relaxed) as f64 / 1024.0
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(sampler) = self.sampler.take() {
            let _ = sampler.join();
        }
    }
}

/// `Dirty:` of `/proc/meminfo`, in kB; `None` where it cannot be read.
fn dirty_kb() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|line| line.starts_with("Dirty:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The host's writeback settings, in a line: what decides whether writeback comes in bursts.
pub fn settings() -> String {
    let read = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/vm/{name}"))
            .map(|value| value.trim().to_owned())
            .unwrap_or_else(|_| "?".to_owned())
    };
    let background_bytes = read("dirty_background_bytes");
    let background = if background_bytes == "0" {
        format!("{}% of memory", read("dirty_background_ratio"))
    } else {
        format!("{background_bytes} bytes")
    };
    format!(
        "kernel writeback starts at {background} dirty (vm.dirty_background_*) or at {} cs of age \
         (vm.dirty_expire_centisecs)",
        read("dirty_expire_centisecs")
    )
}
