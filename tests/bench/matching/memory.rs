//! Resident memory per in-memory session: N sessions of four detections (and, in a second
//! variant, their purchase with its attributions settled), held in a map keyed and valued
//! like the shard's, measured as the growth of `VmRSS`.
//!
//! Three ways of holding the events ([`Holding`]): every text allocated per event with all
//! its tracking keys (as the server's `session_event` builds them); repeated text interned;
//! and interned with only the session's own key pair, shared with the map key, and the map
//! value boxed (what the shard's session store does when events enter it).
//!
//! Each variant runs in a child process of its own (`sightline-bench matching-memory-child`):
//! memory a previous variant freed stays in the allocator and would be reused unseen, so in
//! one process the second figure would come out too small.

use super::events::{self, SessionEvents, Texts, resident_bytes};
use super::{Resident, SessionKey};
use sightline::matching::session::{Session, SessionEvent};
use sightline::matching::{Conversion, Detection, Text};
use std::collections::HashMap;
use std::io::Write;
use std::time::Instant;

const DETECTIONS_PER_SESSION: u64 = 4;

/// How the sessions hold their events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holding {
    PerEvent,
    Interned,
    Compact,
}

impl Holding {
    const ALL: [Holding; 3] = [Holding::PerEvent, Holding::Interned, Holding::Compact];

    fn arg(self) -> &'static str {
        match self {
            Holding::PerEvent => "per-event",
            Holding::Interned => "interned",
            Holding::Compact => "compact",
        }
    }

    fn from_arg(arg: &str) -> Option<Self> {
        Holding::ALL.into_iter().find(|h| h.arg() == arg)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Holding::PerEvent => "text per event, all keys",
            Holding::Interned => "interned text, all keys",
            Holding::Compact => "interned, own key pair only, boxed entry",
        }
    }
}

/// What one variant measured.
pub struct Variant {
    pub holding: Holding,
    pub with_conversion: bool,
    pub sessions: u64,
    pub rss_growth: u64,
    /// Sum of `Session::approx_bytes()` over the sessions.
    pub approx_bytes: u64,
}

impl Variant {
    pub fn bytes_per_session(&self) -> f64 {
        self.rss_growth as f64 / self.sessions as f64
    }

    pub fn approx_per_session(&self) -> f64 {
        self.approx_bytes as f64 / self.sessions as f64
    }

    pub fn name(&self) -> String {
        format!(
            "{}, {}",
            if self.with_conversion {
                "4 detections + 1 purchase (attributed)"
            } else {
                "4 detections"
            },
            self.holding.describe()
        )
    }
}

/// The in-memory sizes that explain the figures.
pub struct Layout {
    pub map_entry: usize,
    pub session: usize,
    pub detection: usize,
    pub conversion: usize,
}

pub fn layout() -> Layout {
    Layout {
        map_entry: std::mem::size_of::<(SessionKey, Resident)>(),
        session: std::mem::size_of::<Session>(),
        detection: std::mem::size_of::<Detection>(),
        conversion: std::mem::size_of::<Conversion>(),
    }
}

/// Runs every variant, each in a child process.
pub fn measure(sessions: u64) -> Vec<Variant> {
    let exe = std::env::current_exe().expect("the bench binary's path");
    let mut variants = Vec::new();
    for holding in Holding::ALL {
        for with_conversion in [false, true] {
            let output = std::process::Command::new(&exe)
                .arg("matching-memory-child")
                .arg(holding.arg())
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
                holding,
                with_conversion,
                sessions,
                rss_growth: after.saturating_sub(before),
                approx_bytes: approx,
            });
        }
    }
    variants
}

/// The child: builds the sessions and prints `rss_before rss_after approx_bytes`. Exits
/// without dropping them (freeing a million sessions is not what is measured).
pub fn child(args: &[String]) -> ! {
    let (Some(holding), Some(conversion), Some(count)) = (
        args.first().and_then(|a| Holding::from_arg(a)),
        args.get(1),
        args.get(2),
    ) else {
        panic!("matching-memory-child per-event|interned|compact 0|1 N");
    };
    let with_conversion = conversion == "1";
    let count: u64 = count.parse().expect("a session count");
    match holding {
        // The store boxes its entries, so the map's spare slots cost a pointer each.
        Holding::Compact => fill::<Box<Resident>>(holding, with_conversion, count),
        Holding::PerEvent | Holding::Interned => fill::<Resident>(holding, with_conversion, count),
    }
}

fn fill<Entry: From<Resident>>(holding: Holding, with_conversion: bool, count: u64) -> ! {
    let mut texts = match holding {
        Holding::PerEvent => Texts::PerEvent,
        Holding::Interned | Holding::Compact => Texts::interned(),
    };
    let (goal_id, goal) = events::goal(&mut texts);
    let tenant = uuid::Uuid::from_u128(0x7e4a_0000_0000_4000_8000_0000_0000_0000);

    let before = resident_bytes();
    // Grown one insert at a time, as the shard's map is.
    let mut sessions: HashMap<SessionKey, Entry> = HashMap::new();
    let mut approx = 0u64;
    for number in 0..count {
        let mut builder = SessionEvents::new(&mut texts, number);
        let mut session = Session::new();
        let first = builder.detection(0);
        // The shard's key shares its text with the first event that named the session.
        let own_key = first
            .keys
            .iter()
            .find(|(name, _)| &**name == "session_token")
            .cloned()
            .expect("detections carry the session token");
        let keep = |keys: &mut Vec<(Text, Text)>| {
            if holding == Holding::Compact {
                *keys = vec![own_key.clone()];
            }
        };
        let mut first = Some(first);
        for index in 0..DETECTIONS_PER_SESSION {
            let mut detection = first.take().unwrap_or_else(|| builder.detection(index));
            keep(&mut detection.keys);
            session.insert(SessionEvent::Detection(detection));
        }
        if with_conversion {
            let mut conversion = builder.conversion();
            keep(&mut conversion.keys);
            let event = SessionEvent::Conversion(conversion);
            session.insert(event.clone());
            for conversion in session.affected_by(&goal, &event) {
                // The change would be written and dropped; what stays is the stored credits.
                drop(session.settle(goal_id, Some(&goal), &conversion));
            }
        }
        let bytes = session.approx_bytes();
        approx += bytes as u64;
        let (name, value) = own_key;
        sessions.insert(
            SessionKey {
                tenant,
                name,
                value,
            },
            Entry::from(Resident {
                session,
                last_used: Instant::now(),
                fingerprint: 0,
                bytes,
            }),
        );
    }
    let after = resident_bytes();
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "{before} {after} {approx}");
    let _ = stdout.flush();
    std::hint::black_box(&sessions);
    std::process::exit(0);
}
