//! The random scenario: goals and events in "visits", aimed at the edges of API.md's rules.

use super::rng::Rng;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

pub const KEY_NAMES: [&str; 3] = ["session_token", "user_id", "device_id"];
const LABELS: [&str; 5] = ["barcode", "product", "defect", "face_match", "logo"];
/// Few entities, so the same (label, entity) recurs within a session and dedup chains form.
const ENTITIES: [&str; 4] = ["sku-1", "sku-2", "sku-3", "sku-4"];
/// Includes every goal threshold exactly, so `>=` versus `>` shows.
const CONFIDENCES: [f64; 8] = [0.0, 0.25, 0.5, 0.6, 0.75, 0.8, 0.9, 1.0];
const THRESHOLDS: [f64; 5] = [0.0, 0.5, 0.6, 0.75, 0.8];
const CONVERSION_NAMES: [&str; 3] = ["purchase", "add_to_cart", "lead_submit"];
const MODEL_VERSIONS: [&str; 3] = ["v1", "v2", "v3"];
/// Event id prefixes whose byte order differs from a case-insensitive or locale order
/// (`Z` < `_` < `a` < `~` byte-wise), and numbers whose byte order differs from their
/// numeric order, so a tie broken by the wrong comparison shows.
const ID_PREFIXES: [&str; 10] = ["D", "d", "d_", "D-", "Z", "a", "_", "~", "0", "zz"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    Granted,
    Denied,
    /// Not sent: the tenant's default, `granted` for a new tenant.
    Absent,
}

impl Consent {
    pub fn effective_granted(self) -> bool {
        matches!(self, Self::Granted | Self::Absent)
    }
}

#[derive(Debug, Clone)]
pub struct Goal {
    pub name: String,
    pub labels: Vec<&'static str>,
    pub conversion_name: &'static str,
    pub key: &'static str,
    pub window_seconds: i64,
    pub min_confidence: f64,
    pub dedup_seconds: i64,
    pub requires_consent: bool,
}

impl Goal {
    pub fn json(&self) -> Value {
        json!({"name": self.name, "detection_labels": self.labels,
               "conversion_name": self.conversion_name, "key": self.key,
               "window_seconds": self.window_seconds, "min_confidence": self.min_confidence,
               "dedup_seconds": self.dedup_seconds, "requires_consent": self.requires_consent,
               "active": true})
    }
}

/// What detections and conversions share.
#[derive(Debug, Clone)]
pub struct Head {
    pub event_id: String,
    /// Milliseconds since the epoch: the precision the server keeps.
    pub time: i64,
    pub keys: BTreeMap<&'static str, String>,
    pub consent: Consent,
    pub test: bool,
    /// How `event_time` is written: 0 `...000Z`, 1 without fraction when whole, 2 `+05:30`,
    /// 3 `-05:00`. The instant is the same; only the text varies.
    pub time_style: u8,
    /// Sends `"test": false` (and `"filtered": false`) instead of leaving them out.
    pub explicit_false: bool,
}

impl Head {
    pub fn fields(&self, kind: &str) -> Map<String, Value> {
        let mut fields = Map::new();
        fields.insert("type".into(), json!(kind));
        fields.insert("event_id".into(), json!(self.event_id));
        fields.insert(
            "event_time".into(),
            json!(time_text(self.time, self.time_style)),
        );
        fields.insert("keys".into(), json!(self.keys));
        let consent = match self.consent {
            Consent::Granted => Some("granted"),
            Consent::Denied => Some("denied"),
            Consent::Absent => None,
        };
        if let Some(consent) = consent {
            fields.insert("consent".into(), json!(consent));
        }
        if self.test || self.explicit_false {
            fields.insert("test".into(), json!(self.test));
        }
        fields
    }
}

#[derive(Debug, Clone)]
pub struct Detection {
    pub head: Head,
    pub label: &'static str,
    pub confidence: f64,
    pub entity_id: &'static str,
    pub model_version: &'static str,
    pub filtered: bool,
}

impl Detection {
    pub fn json(&self) -> Value {
        let mut fields = self.head.fields("detection");
        fields.insert("label".into(), json!(self.label));
        fields.insert("confidence".into(), json!(self.confidence));
        fields.insert("entity_id".into(), json!(self.entity_id));
        fields.insert("model_version".into(), json!(self.model_version));
        if self.filtered || self.head.explicit_false {
            fields.insert("filtered".into(), json!(self.filtered));
        }
        Value::Object(fields)
    }
}

#[derive(Debug, Clone)]
pub struct Conversion {
    pub head: Head,
    pub name: &'static str,
    pub value: Option<f64>,
}

impl Conversion {
    pub fn json(&self) -> Value {
        let mut fields = self.head.fields("conversion");
        fields.insert("name".into(), json!(self.name));
        if let Some(value) = self.value {
            fields.insert("value".into(), json!(value));
            fields.insert("currency".into(), json!("EUR"));
        }
        Value::Object(fields)
    }
}

#[derive(Debug)]
pub struct Scenario {
    pub seed: u64,
    pub goals: Vec<Goal>,
    pub detections: Vec<Detection>,
    pub conversions: Vec<Conversion>,
}

impl Scenario {
    pub fn events(&self) -> Vec<Value> {
        let detections = self.detections.iter().map(Detection::json);
        detections
            .chain(self.conversions.iter().map(Conversion::json))
            .collect()
    }
}

/// `ms` as RFC 3339 in the given style (see [`Head::time_style`]).
pub fn time_text(ms: i64, style: u8) -> String {
    use chrono::SecondsFormat;
    let utc = chrono::DateTime::from_timestamp_millis(ms).expect("a time in range");
    let zone = |minutes: i32| chrono::FixedOffset::east_opt(minutes * 60).unwrap();
    match style {
        1 if ms % 1000 == 0 => utc.to_rfc3339_opts(SecondsFormat::Secs, true),
        2 => utc
            .with_timezone(&zone(5 * 60 + 30))
            .to_rfc3339_opts(SecondsFormat::Millis, true),
        3 => utc
            .with_timezone(&zone(-5 * 60))
            .to_rfc3339_opts(SecondsFormat::Millis, true),
        _ => utc.to_rfc3339_opts(SecondsFormat::Millis, true),
    }
}

/// What the server answers for `ms`: UTC, milliseconds, `Z`.
pub fn utc_text(ms: i64) -> String {
    time_text(ms, 0)
}

fn random_goal(rng: &mut Rng, index: usize) -> Goal {
    let mut labels: Vec<&'static str> =
        LABELS.iter().copied().filter(|_| rng.chance(0.5)).collect();
    if labels.is_empty() {
        labels.push(rng.pick(&LABELS));
    }
    // The first two goals always dedup, over a window with room for a chain, and one of
    // them requires consent, the other not: every seed exercises rules 5 and 6.
    let (window_seconds, dedup_seconds) = if index < 2 {
        let window = rng.range(1800, 7200);
        let any = rng.range(30, 600);
        (window, rng.pick(&[30, 60, 600, any]))
    } else {
        let window = if rng.chance(0.5) {
            rng.pick(&[60, 300, 900, 3600, 7200])
        } else {
            rng.range(60, 7200)
        };
        let dedup = if rng.chance(0.5) {
            rng.pick(&[0, 0, 30, 60, 600])
        } else {
            rng.range(0, 600)
        };
        (window, dedup)
    };
    Goal {
        name: format!("differential goal {index}"),
        labels,
        conversion_name: rng.pick(&CONVERSION_NAMES),
        // Each key name has a goal; further goals repeat one.
        key: KEY_NAMES
            .get(index)
            .copied()
            .unwrap_or_else(|| rng.pick(&KEY_NAMES)),
        window_seconds,
        min_confidence: rng.pick(&THRESHOLDS),
        dedup_seconds,
        requires_consent: match index {
            0 => true,
            1 => false,
            _ => rng.chance(0.5),
        },
    }
}

/// A pool value for a key name; small pools, so unrelated visits share values.
pub fn pool_value(rng: &mut Rng, key: &str) -> String {
    match key {
        "session_token" => format!("s-{:03}", rng.range(0, 119)),
        "user_id" => format!("u-{:02}", rng.range(0, 39)),
        _ => format!("cam-{:02}", rng.range(0, 14)),
    }
}

fn random_consent(rng: &mut Rng) -> Consent {
    match rng.range(0, 19) {
        0..=3 => Consent::Granted,
        4..=6 => Consent::Denied,
        _ => Consent::Absent,
    }
}

/// Something within ±1 ms of an edge, mostly on it.
fn near_edge(rng: &mut Rng) -> i64 {
    rng.pick(&[-1, 0, 0, 1])
}

/// Goals, then about `target_events` events in "visits": bursts of events that share a
/// session (and maybe a user and a device) around one moment. Visits draw their key values
/// from small pools, so they collide; some events carry only some of the visit's keys, or a
/// foreign value, so they link through one key and not another. Some events are placed
/// exactly on (or 1 ms beside) a window edge, a dedup gap or another event's time.
pub fn scenario(rng: &mut Rng, seed: u64, target_events: usize) -> Scenario {
    let goals: Vec<Goal> = (0..rng.range(3, 5))
        .map(|i| random_goal(rng, usize::try_from(i).unwrap()))
        .collect();
    // A whole minute, so the 10-second grid below lies the same way relative to it on every
    // run and a seed replays the same ties. Every event is at least 5 s old, so none is in
    // the future, and at most 4 h old, far from the 7-day horizon.
    let now = chrono::Utc::now().timestamp() / 60 * 60_000;
    let (newest, oldest) = (now - 5_000, now - 4 * 3_600_000);
    let mut detections: Vec<Detection> = Vec::new();
    let mut conversions: Vec<Conversion> = Vec::new();
    let mut serial = 0_u64;
    let mut new_id = |rng: &mut Rng| {
        serial += 1;
        format!("{}{serial}", rng.pick(&ID_PREFIXES))
    };
    let mut reused_detection_ids = BTreeSet::new();

    while detections.len() + conversions.len() < target_events {
        let mut visit_keys = vec![("session_token", pool_value(rng, "session_token"))];
        if rng.chance(0.6) {
            visit_keys.push(("user_id", pool_value(rng, "user_id")));
        }
        if rng.chance(0.5) {
            visit_keys.push(("device_id", pool_value(rng, "device_id")));
        }
        // A QA visit: mostly test events, so test events meet test events.
        let qa = rng.chance(0.05);
        let spread = rng.pick(&[20, 60, 120, 600, 1_800, 3_600]) * 1000;
        let base = rng.range(now - 3 * 3_600_000, newest) / 1000 * 1000;
        let mut visit_detections: Vec<usize> = Vec::new();
        let mut visit_conversions: Vec<usize> = Vec::new();

        for _ in 0..rng.range(1, 25) {
            let mut keys = BTreeMap::new();
            for (name, value) in &visit_keys {
                if rng.chance(0.7) {
                    keys.insert(*name, value.clone());
                }
            }
            if keys.is_empty() {
                let (name, value) = rng.pick_ref(&visit_keys);
                keys.insert(*name, value.clone());
            }
            if rng.chance(0.1) {
                // A foreign value: this event links to another visit through this key only.
                let name = rng.pick(&KEY_NAMES);
                keys.insert(name, pool_value(rng, name));
            }
            if rng.chance(0.03) {
                // A key no goal uses.
                keys.insert("order_id", format!("o-{}", rng.range(0, 999)));
            }
            let offset = rng.range(0, spread);
            let mut time = match rng.range(0, 9) {
                // On a 10-second grid: many exact ties.
                0..=3 => (base - offset) / 10_000 * 10_000,
                4..=6 => (base - offset) / 1000 * 1000,
                _ => base - offset,
            };
            if rng.chance(0.05) {
                let earlier: Vec<i64> = visit_detections
                    .iter()
                    .map(|&i| detections[i].head.time)
                    .chain(visit_conversions.iter().map(|&i| conversions[i].head.time))
                    .collect();
                if !earlier.is_empty() {
                    time = rng.pick(&earlier);
                }
            }
            let head = Head {
                event_id: String::new(),
                time,
                keys,
                consent: random_consent(rng),
                test: if qa {
                    rng.chance(0.7)
                } else {
                    rng.chance(0.01)
                },
                time_style: rng.pick(&[0, 0, 0, 0, 0, 1, 2, 3]),
                explicit_false: rng.chance(0.1),
            };

            if rng.chance(0.25) {
                let mut conversion = Conversion {
                    head,
                    // Mostly a name some goal waits for.
                    name: if rng.chance(0.6) {
                        rng.pick_ref(&goals).conversion_name
                    } else {
                        rng.pick(&CONVERSION_NAMES)
                    },
                    value: rng.chance(0.7).then(|| rng.range(0, 50_000) as f64 / 100.0),
                };
                if !visit_detections.is_empty() && rng.chance(0.15) {
                    // Just inside or outside some goal's window of an earlier detection, or
                    // at the same instant as it.
                    let detection = &detections[rng.pick(&visit_detections)];
                    let goal = rng.pick_ref(&goals);
                    conversion.head.time = if rng.chance(0.7) {
                        detection.head.time + goal.window_seconds * 1000 + near_edge(rng)
                    } else {
                        detection.head.time
                    };
                    conversion.name = goal.conversion_name;
                    if let Some(value) = detection.head.keys.get(goal.key) {
                        conversion.head.keys.insert(goal.key, value.clone());
                    }
                }
                conversion.head.event_id = if rng.chance(0.08) && !detections.is_empty() {
                    // The same id as a detection: ids are unique per type only.
                    let index = rng.index(detections.len());
                    if reused_detection_ids.insert(index) {
                        detections[index].head.event_id.clone()
                    } else {
                        new_id(rng)
                    }
                } else {
                    new_id(rng)
                };
                conversion.head.time = conversion.head.time.clamp(oldest, newest);
                visit_conversions.push(conversions.len());
                conversions.push(conversion);
            } else {
                let mut detection = Detection {
                    head,
                    // Mostly a label some goal counts.
                    label: if rng.chance(0.5) {
                        let goal = rng.pick_ref(&goals);
                        rng.pick(&goal.labels)
                    } else {
                        rng.pick(&LABELS)
                    },
                    confidence: rng.pick(&CONFIDENCES),
                    entity_id: rng.pick(&ENTITIES),
                    model_version: rng.pick(&MODEL_VERSIONS),
                    filtered: rng.chance(0.08),
                };
                let goal = rng.pick_ref(&goals);
                if !visit_conversions.is_empty() && rng.chance(0.2) {
                    // On (or 1 ms beside) the lower or the upper edge of a goal's window
                    // before an earlier conversion.
                    let conversion = &conversions[rng.pick(&visit_conversions)];
                    detection.head.time = if rng.chance(0.7) {
                        conversion.head.time - goal.window_seconds * 1000 + near_edge(rng)
                    } else {
                        conversion.head.time + rng.pick(&[0, 0, 1])
                    };
                    detection.label = rng.pick(&goal.labels);
                    if let Some(value) = conversion.head.keys.get(goal.key) {
                        detection.head.keys.insert(goal.key, value.clone());
                    }
                } else if !visit_detections.is_empty() && rng.chance(0.1) {
                    // Another thing seen at the same instant with the same confidence: only
                    // the event id can break the tie for the direct attribution.
                    let earlier = &detections[rng.pick(&visit_detections)];
                    detection.head.time = earlier.head.time;
                    detection.head.keys = earlier.head.keys.clone();
                    detection.confidence = earlier.confidence;
                    detection.label = rng.pick(&goal.labels);
                } else if !visit_detections.is_empty() && rng.chance(0.15) {
                    // The same thing seen again, exactly a goal's dedup gap (or ±1 ms) after
                    // an earlier sighting: a dedup chain decided on its edge.
                    let earlier = &detections[rng.pick(&visit_detections)];
                    detection.label = earlier.label;
                    detection.entity_id = earlier.entity_id;
                    detection.head.keys = earlier.head.keys.clone();
                    detection.head.time = earlier.head.time
                        + if goal.dedup_seconds > 0 {
                            goal.dedup_seconds * 1000 + near_edge(rng)
                        } else {
                            0
                        };
                }
                detection.head.event_id = new_id(rng);
                detection.head.time = detection.head.time.clamp(oldest, newest);
                visit_detections.push(detections.len());
                detections.push(detection);
            }
        }
    }
    Scenario {
        seed,
        goals,
        detections,
        conversions,
    }
}
