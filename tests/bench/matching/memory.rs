//! Resident memory per in-memory session: N sessions of four detections (and, in a second
//! variant, their purchase with its attributions settled) made resident in the shard's own
//! `SessionStore`, measured as the growth of `VmRSS`.
//!
//! Each variant runs in a child process of its own (`sightline-bench matching-memory-child`):
//! memory a previous variant freed stays in the allocator and would be reused unseen, so in
//! one process the second figure would come out too small.

use super::events::{self, SessionEvents, Texts, resident_bytes};
use sightline::actors::matcher::SessionKey;
use sightline::actors::matcher::goal_cache::{ActiveGoal, TenantGoals};
use sightline::actors::matcher::round::{self, Piece};
use sightline::actors::matcher::store::{LoadedSession, SessionStore, StoreLimits};
use sightline::domain::TenantId;
use sightline::matching::session::Session;
use sightline::matching::{Conversion, Detection};
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DETECTIONS_PER_SESSION: u64 = 4;

/// What one variant measured.
pub struct Variant {
    pub with_conversion: bool,
    pub sessions: u64,
    pub rss_growth: u64,
    /// The store's own estimate (`SessionStore::bytes`, the sum of `approx_bytes`).
    pub approx_bytes: u64,
}

impl Variant {
    pub fn bytes_per_session(&self) -> f64 {
        self.rss_growth as f64 / self.sessions as f64
    }

    pub fn approx_per_session(&self) -> f64 {
        self.approx_bytes as f64 / self.sessions as f64
    }

    pub fn name(&self) -> &'static str {
        if self.with_conversion {
            "4 detections + 1 purchase (attributed)"
        } else {
            "4 detections"
        }
    }
}

/// The in-memory sizes that explain the figures.
pub struct Layout {
    pub session_key: usize,
    pub session: usize,
    pub detection: usize,
    pub conversion: usize,
}

pub fn layout() -> Layout {
    Layout {
        session_key: std::mem::size_of::<SessionKey>(),
        session: std::mem::size_of::<Session>(),
        detection: std::mem::size_of::<Detection>(),
        conversion: std::mem::size_of::<Conversion>(),
    }
}

/// Runs both variants, each in a child process.
pub fn measure(sessions: u64) -> Vec<Variant> {
    let exe = std::env::current_exe().expect("the bench binary's path");
    let mut variants = Vec::new();
    for with_conversion in [false, true] {
        let output = std::process::Command::new(&exe)
            .arg("matching-memory-child")
            .arg(if with_conversion { "1" } else { "0" })
            .arg(sessions.to_string())
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("run the memory child");
        assert!(output.status.success(), "the memory child failed");
        let text = String::from_utf8_lossy(&output.stdout);
        let numbers: Vec<u64> = text
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        let [before, after, approx] = numbers[..] else {
            panic!("unexpected memory child output: {text}");
        };
        variants.push(Variant {
            with_conversion,
            sessions,
            rss_growth: after.saturating_sub(before),
            approx_bytes: approx,
        });
    }
    variants
}

/// The child: makes the sessions resident and prints `rss_before rss_after approx_bytes`.
/// Exits without dropping them (freeing a million sessions is not what is measured).
pub fn child(args: &[String]) -> ! {
    let (Some(conversion), Some(count)) = (args.first(), args.get(1)) else {
        panic!("matching-memory-child 0|1 N");
    };
    let with_conversion = conversion == "1";
    let count: u64 = count.parse().expect("a session count");

    let mut texts = Texts;
    let (goal_id, goal) = events::goal(&mut texts);
    let tenant = TenantId::from_uuid(uuid::Uuid::from_u128(
        0x7e4a_0000_0000_4000_8000_0000_0000_0000,
    ));
    let goals: HashMap<TenantId, Arc<TenantGoals>> = HashMap::from([(
        tenant,
        Arc::new(TenantGoals {
            active: vec![ActiveGoal { id: goal_id, goal }],
            revisions: HashMap::new(),
            horizon: i64::MAX / 2,
            detections_kept: i64::MAX / 2,
            conversions_kept: i64::MAX / 2,
            fingerprint: 0,
        }),
    )]);

    let before = resident_bytes();
    let mut store = SessionStore::new(StoreLimits {
        memory_bytes: usize::MAX,
        idle: Duration::from_secs(3600),
    });
    let now = Instant::now();
    for number in 0..count {
        let mut builder = SessionEvents::new(&mut texts, number);
        let key = SessionKey {
            tenant,
            name: builder.key_name(),
            value: builder.token(),
        };
        let events = (0..DETECTIONS_PER_SESSION)
            .map(|index| builder.detection_event(index))
            .collect();
        let loaded = LoadedSession {
            events,
            credits: Vec::new(),
            version: None,
        };
        // Grown one session at a time, as a shard's map is.
        store.admit(key.clone(), loaded, now, 0);
        if with_conversion {
            let purchase = builder.conversion_event();
            // The changes would be written and dropped; what stays is the stored credits.
            let applied = round::apply(
                &mut store,
                [(&key, Piece::Event(&purchase))],
                &goals,
                now,
                purchase.event_time(),
            );
            drop(applied);
            store.refresh_size(&key);
        }
    }
    let after = resident_bytes();
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "{before} {after} {}", store.bytes());
    let _ = stdout.flush();
    std::hint::black_box(&store);
    std::process::exit(0);
}
