//! Realistic in-memory events for the benchmarks that run the matching core without a server:
//! sessions of a few detections and a conversion, with the shapes and sizes the server holds
//! (event ids like `d-000123456`, entity ids like `sku-42`, 32-character session tokens).
//!
//! Every text is allocated per event, as a parsed event holds it ([`Texts`]).

use sightline::matching::session::{GoalId, SessionEvent};
use sightline::matching::{Conversion, Detection, Goal, Id, Keys, Millis, Text};
use std::sync::Arc;
use support::reference::rng::Rng;

const LABELS: [&str; 4] = ["barcode", "product", "face_match", "defect"];
const MODEL_VERSIONS: [&str; 3] = ["v3", "v3.1", "v4"];
const CATEGORIES: [&str; 5] = ["beverages", "snacks", "dairy", "household", "produce"];
/// 2026-12-03T00:00:00Z: every session starts after it.
pub const BASE_MILLIS: Millis = 1_796_256_000_000;
/// How far apart sessions start, so that about two thousand overlap in time.
const SESSION_SPACING: Millis = 37;
const DETECTION_SPACING: Millis = 15_000;
const CONVERSION_AFTER: Millis = 70_000;

/// Where text comes from: a new `Arc<str>` every time, as a parsed event holds it (the
/// session store interns what repeats on the way in).
pub struct Texts;

impl Texts {
    pub fn get(&mut self, text: &str) -> Text {
        Text::from(text)
    }
}

/// The one goal the in-memory benchmarks settle: scans and product sightings to purchases on
/// the session token, one hour, confidence 0.5, a 30 s dedup gap.
pub fn goal(texts: &mut Texts) -> (GoalId, Goal) {
    let id = uuid::Uuid::from_u128(0x5ca0_0000_0000_4000_8000_0000_0000_0001);
    let goal = Goal {
        detection_labels: vec![texts.get("barcode"), texts.get("product")],
        conversion_name: texts.get("purchase"),
        key: texts.get("session_token"),
        window: 3_600_000,
        min_confidence: 0.5,
        dedup: 30_000,
        requires_consent: false,
    };
    (id, goal)
}

/// Builds the events of session number `session`, one event at a time, as the server would
/// hold them after parsing (each event its own copy of the non-interned text).
pub struct SessionEvents<'a> {
    texts: &'a mut Texts,
    /// Deterministic (splitmix64): the figures must not depend on a seed file.
    random: Rng,
    session: u64,
    token: String,
    start: Millis,
}

impl<'a> SessionEvents<'a> {
    pub fn new(texts: &'a mut Texts, session: u64) -> Self {
        let mut random = Rng::new(session ^ 0x5173_0000_0000_0000);
        // Session tokens are opaque 128-bit values in hex, as web and app SDKs mint them.
        let token = format!("{:016x}{:016x}", random.next_u64(), random.next_u64());
        Self {
            texts,
            random,
            session,
            token,
            start: BASE_MILLIS + i64::try_from(session).unwrap_or(0) * SESSION_SPACING,
        }
    }

    /// The session key's name.
    pub fn key_name(&mut self) -> Text {
        self.texts.get("session_token")
    }

    /// The session token as a session key value (its own allocation).
    pub fn token(&self) -> Text {
        Text::from(self.token.as_str())
    }

    /// When the session's `index`-th detection happened.
    pub fn detection_time(&self, index: u64) -> Millis {
        self.start + i64::try_from(index).unwrap_or(0) * DETECTION_SPACING
    }

    pub fn conversion_time(&self) -> Millis {
        self.start + CONVERSION_AFTER
    }

    /// The session's `index`-th detection (of at most 100): a sighting by one of fifty
    /// cameras, carrying the session token and the camera as tracking keys.
    pub fn detection(&mut self, index: u64) -> Detection {
        let label = self.texts.get(LABELS[self.random.below(4) as usize]);
        let model_version = self
            .texts
            .get(MODEL_VERSIONS[self.random.below(3) as usize]);
        let category = self.texts.get(CATEGORIES[self.random.below(5) as usize]);
        let keys: Keys = Arc::from([
            (
                self.texts.get("device_id"),
                Text::from(format!("cam-{}", self.random.below(50))),
            ),
            (self.texts.get("session_token"), self.token()),
        ]);
        Detection {
            event_id: Id::from(format!("d-{:09}", self.session * 100 + index)),
            event_time: self.detection_time(index),
            label,
            entity_id: Id::from(format!("sku-{}", self.random.below(500))),
            confidence: 0.4 + (self.random.below(600) as f64) / 1000.0,
            keys,
            consent_granted: true,
            filtered: false,
            is_test: false,
            model_version,
            category: Some(category),
        }
    }

    /// The session's purchase, after its detections.
    pub fn conversion(&mut self) -> Conversion {
        Conversion {
            event_id: Id::from(format!("c-{:09}", self.session)),
            event_time: self.conversion_time(),
            name: self.texts.get("purchase"),
            keys: Arc::from([(self.texts.get("session_token"), self.token())]),
            consent_granted: true,
            is_test: false,
            value: Some(5.0 + (self.random.below(5_000) as f64) / 100.0),
        }
    }

    /// The detection or the conversion, as a session receives it.
    pub fn detection_event(&mut self, index: u64) -> SessionEvent {
        SessionEvent::Detection(self.detection(index))
    }

    pub fn conversion_event(&mut self) -> SessionEvent {
        SessionEvent::Conversion(self.conversion())
    }
}

/// Resident memory of this process in bytes (`VmRSS` of `/proc/self/status`).
pub fn resident_bytes() -> u64 {
    crate::server::resident_bytes("self").expect("VmRSS in /proc/self/status")
}
