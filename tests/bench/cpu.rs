//! The machine's CPU time as `/proc/stat` counts it, to tell what a measured phase had: on a
//! shared virtual machine the hypervisor may give the cores to someone else for a while
//! (stolen time), which slows every process and shows in every latency.

/// Counters of all CPUs since boot, in clock ticks.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTimes {
    total: u64,
    idle: u64,
    steal: u64,
}

/// Shares of a span of time, in percent of all CPUs' time.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuShares {
    pub idle: f64,
    pub stolen: f64,
}

impl CpuTimes {
    /// Now; zeros where `/proc/stat` cannot be read (then every share is 0).
    pub fn now() -> Self {
        std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|stat| {
                let line = stat.lines().find(|line| line.starts_with("cpu "))?;
                parse(line)
            })
            .unwrap_or_default()
    }

    /// The shares between `self` and a later reading.
    pub fn until(&self, later: &CpuTimes) -> CpuShares {
        let total = later.total.saturating_sub(self.total);
        if total == 0 {
            return CpuShares::default();
        }
        let share = |part: u64| 100.0 * part as f64 / total as f64;
        CpuShares {
            idle: share(later.idle.saturating_sub(self.idle)),
            stolen: share(later.steal.saturating_sub(self.steal)),
        }
    }
}

impl CpuShares {
    /// The mean of several spans' shares, each weighing the same.
    pub fn mean(spans: &[CpuShares]) -> CpuShares {
        let n = spans.len().max(1) as f64;
        CpuShares {
            idle: spans.iter().map(|s| s.idle).sum::<f64>() / n,
            stolen: spans.iter().map(|s| s.stolen).sum::<f64>() / n,
        }
    }
}

/// `cpu  user nice system idle iowait irq softirq steal guest guest_nice`; guest time is
/// already counted in user time, so it is left out of the total.
fn parse(line: &str) -> Option<CpuTimes> {
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    let field = |index: usize| fields.get(index).copied().unwrap_or(0);
    Some(CpuTimes {
        total: (0..8).map(field).sum(),
        idle: field(3) + field(4),
        steal: field(7),
    })
}
