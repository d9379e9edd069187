//! Detections and conversions, parsed from JSON into types that cannot hold an invalid event.
//!
//! [`parse_event`] checks one event against every rule of API.md "Events" and reports every
//! problem it finds, each with a field and a code, rather than stopping at the first.

use super::{FieldProblem, Timestamp};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

/// How far in the future an event time may be (clock skew between devices).
pub const MAX_FUTURE: Duration = Duration::minutes(5);
/// Most tracking keys one event may carry.
pub const MAX_KEYS: usize = 32;
/// Largest `properties` object, serialised.
pub const MAX_PROPERTIES_BYTES: usize = 8 * 1024;

/// The two kinds of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    Detection,
    Conversion,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Detection => "detection",
            EventKind::Conversion => "conversion",
        }
    }

    /// A small code for the kind, used where a query returns both kinds together.
    pub fn code(self) -> i16 {
        match self {
            EventKind::Detection => 1,
            EventKind::Conversion => 2,
        }
    }
}

/// Text that has passed a length rule: 1 to `MAX` characters, never empty.
macro_rules! bounded_text {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn parse(field: &str, value: &str) -> Result<Self, FieldProblem> {
                check_length(field, value, Self::MAX_CHARS).map(|()| Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

bounded_text!(
    /// What a detection saw: `barcode`, `defect`, `face_match`, `product`.
    Label, 128
);
bounded_text!(
    /// The model release that made a detection.
    ModelVersion, 64
);
bounded_text!(
    /// What was detected: a product id, a defect id, a barcode value.
    EntityId, 256
);
bounded_text!(
    /// A short descriptive string: model name, category, camera, site, device.
    ShortText, 128
);
bounded_text!(
    /// The business action of a conversion: `purchase`, `lead_submit`, ...
    ConversionName, 64
);
bounded_text!(
    /// The value of a tracking key.
    KeyValue, 256
);

/// A client's id for an event: 1 to 128 printable ASCII characters, compared byte-wise.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(String);

impl EventId {
    pub const MAX_CHARS: usize = 128;

    pub fn parse(field: &str, value: &str) -> Result<Self, FieldProblem> {
        check_length(field, value, Self::MAX_CHARS)?;
        if value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            Ok(Self(value.to_owned()))
        } else {
            Err(FieldProblem::new(
                field,
                "invalid_format",
                "must be printable ASCII characters",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name of a tracking key: `^[a-z][a-z0-9_]{0,31}$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyName(String);

impl KeyName {
    pub fn parse(name: &str) -> Option<Self> {
        let bytes = name.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.len() <= 32
            && bytes[0].is_ascii_lowercase()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_');
        valid.then(|| Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An event's tracking keys: at least one, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingKeys(Vec<(KeyName, KeyValue)>);

impl TrackingKeys {
    pub fn iter(&self) -> impl Iterator<Item = &(KeyName, KeyValue)> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        Value::String(value.as_str().to_owned()),
                    )
                })
                .collect(),
        )
    }
}

/// Whether the person behind an event agreed to be tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    Granted,
    Denied,
}

impl Consent {
    pub fn as_str(self) -> &'static str {
        match self {
            Consent::Granted => "granted",
            Consent::Denied => "denied",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "granted" => Some(Consent::Granted),
            "denied" => Some(Consent::Denied),
            _ => None,
        }
    }
}

/// A confidence score in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Confidence(f64);

impl Confidence {
    /// `-0.0` is stored as `0.0`: the same score, one representation.
    pub fn new(value: f64) -> Option<Self> {
        (0.0..=1.0).contains(&value).then_some(Self(value + 0.0))
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

/// Where a detection was made.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Source {
    pub camera_id: Option<ShortText>,
    pub site_id: Option<ShortText>,
    pub device: Option<ShortText>,
}

impl Source {
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        for (name, value) in [
            ("camera_id", &self.camera_id),
            ("site_id", &self.site_id),
            ("device", &self.device),
        ] {
            if let Some(value) = value {
                map.insert(name.to_owned(), Value::String(value.as_str().to_owned()));
            }
        }
        Value::Object(map)
    }
}

/// A detection's own fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub label: Label,
    pub confidence: Confidence,
    pub model_version: ModelVersion,
    pub entity_id: EntityId,
    pub model: Option<ShortText>,
    pub category: Option<ShortText>,
    pub source: Option<Source>,
    /// `[x, y, w, h]`.
    pub bbox: Option<[f64; 4]>,
    /// The edge dropped it by its own threshold: stored, never matched.
    pub filtered: bool,
}

/// A conversion's own fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    pub name: ConversionName,
    /// Finite and not negative.
    pub value: Option<f64>,
    /// Three upper-case letters; only with a value.
    pub currency: Option<String>,
}

/// What kind of event, with its own fields.
#[derive(Debug, Clone, PartialEq)]
pub enum EventBody {
    Detection(Detection),
    Conversion(Conversion),
}

/// A valid event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: EventId,
    pub event_time: Timestamp,
    pub keys: TrackingKeys,
    /// As sent; `None` means the tenant's policy default.
    pub consent: Option<Consent>,
    pub test: bool,
    pub properties: Option<Map<String, Value>>,
    pub body: EventBody,
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self.body {
            EventBody::Detection(_) => EventKind::Detection,
            EventBody::Conversion(_) => EventKind::Conversion,
        }
    }
}

/// Why an event was refused, and its identity when that much could be read (a refused event
/// whose `(type, event_id)` was already accepted is a duplicate, not a rejection).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub identity: Option<(EventKind, EventId)>,
    pub errors: Vec<FieldProblem>,
}

/// What validation depends on besides the event: the time now and the tenant's age limit.
#[derive(Debug, Clone, Copy)]
pub struct ParseContext {
    pub now: DateTime<Utc>,
    pub max_event_age: Duration,
}

const COMMON_FIELDS: &[&str] = &[
    "type",
    "event_id",
    "event_time",
    "keys",
    "consent",
    "test",
    "properties",
];
const DETECTION_FIELDS: &[&str] = &[
    "label",
    "confidence",
    "model_version",
    "entity_id",
    "model",
    "category",
    "source",
    "bbox",
    "filtered",
];
const CONVERSION_FIELDS: &[&str] = &["name", "value", "currency"];

/// Parses one event, collecting every problem.
pub fn parse_event(value: &Value, context: &ParseContext) -> Result<Event, Rejection> {
    let Some(object) = value.as_object() else {
        return Err(Rejection {
            identity: None,
            errors: vec![FieldProblem::new(
                "",
                "invalid_type",
                "each event must be a JSON object",
            )],
        });
    };
    let mut fields = Fields {
        object,
        problems: Vec::new(),
    };

    let kind = fields.required("type").and_then(|v| match v.as_str() {
        None => fields.problem("type", "invalid_type", "must be a string"),
        Some("detection") => Some(EventKind::Detection),
        Some("conversion") => Some(EventKind::Conversion),
        Some(_) => fields.problem(
            "type",
            "invalid_format",
            "must be \"detection\" or \"conversion\"",
        ),
    });
    let event_id = fields
        .text("event_id", true)
        .and_then(|v| fields.keep(EventId::parse("event_id", v)));
    let event_time = fields
        .text("event_time", true)
        .and_then(|v| fields.event_time(v, context));
    let keys = fields.keys();
    let consent = fields
        .text("consent", false)
        .and_then(|v| match Consent::parse(v) {
            Some(consent) => Some(consent),
            None => fields.problem(
                "consent",
                "invalid_format",
                "must be \"granted\" or \"denied\"",
            ),
        });
    let test = fields.boolean("test");
    let properties = fields.properties();

    let body = match kind {
        Some(EventKind::Detection) => fields.detection().map(EventBody::Detection),
        Some(EventKind::Conversion) => fields.conversion().map(EventBody::Conversion),
        None => None,
    };
    fields.unknown_fields(kind);

    let Fields { problems, .. } = fields;
    match (event_id, event_time, keys, body) {
        (Some(event_id), Some(event_time), Some(keys), Some(body)) if problems.is_empty() => {
            Ok(Event {
                event_id,
                event_time,
                keys,
                consent,
                test: test.unwrap_or(false),
                properties,
                body,
            })
        }
        (event_id, ..) => Err(Rejection {
            identity: kind.zip(event_id),
            errors: problems,
        }),
    }
}

/// One event's fields and the problems found so far.
struct Fields<'a> {
    object: &'a Map<String, Value>,
    problems: Vec<FieldProblem>,
}

impl<'a> Fields<'a> {
    /// Records a problem; always `None`, so it can end a parse chain.
    fn problem<T>(&mut self, field: &str, code: &'static str, message: &str) -> Option<T> {
        self.problems.push(FieldProblem::new(field, code, message));
        None
    }

    fn keep<T>(&mut self, parsed: Result<T, FieldProblem>) -> Option<T> {
        parsed.map_err(|problem| self.problems.push(problem)).ok()
    }

    /// A field that may be absent; `null` counts as absent.
    fn optional(&self, field: &str) -> Option<&'a Value> {
        self.object.get(field).filter(|v| !v.is_null())
    }

    fn required(&mut self, field: &str) -> Option<&'a Value> {
        let value = self.optional(field);
        if value.is_none() {
            self.problems.push(FieldProblem::new(
                field,
                "missing_field",
                format!("`{field}` is required"),
            ));
        }
        value
    }

    /// A string field (presence checked per `required`).
    fn text(&mut self, field: &str, required: bool) -> Option<&'a str> {
        let value = if required {
            self.required(field)?
        } else {
            self.optional(field)?
        };
        match value.as_str() {
            Some(text) => Some(text),
            None => self.problem(field, "invalid_type", "must be a string"),
        }
    }

    /// A bounded string field parsed into its type.
    fn parsed<T>(
        &mut self,
        field: &str,
        required: bool,
        parse: fn(&str, &str) -> Result<T, FieldProblem>,
    ) -> Option<T> {
        let text = self.text(field, required)?;
        self.keep(parse(field, text))
    }

    fn boolean(&mut self, field: &str) -> Option<bool> {
        match self.optional(field)? {
            Value::Bool(flag) => Some(*flag),
            _ => self.problem(field, "invalid_type", "must be true or false"),
        }
    }

    fn number(&mut self, field: &str, required: bool) -> Option<f64> {
        let value = if required {
            self.required(field)?
        } else {
            self.optional(field)?
        };
        match value.as_f64() {
            Some(number) => Some(number),
            None => self.problem(field, "invalid_type", "must be a number"),
        }
    }

    fn event_time(&mut self, text: &str, context: &ParseContext) -> Option<Timestamp> {
        let Ok(parsed) = DateTime::parse_from_rfc3339(text) else {
            return self.problem(
                "event_time",
                "invalid_format",
                "must be an RFC 3339 timestamp with an offset, such as 2026-12-03T18:00:00.250Z",
            );
        };
        let time = parsed.with_timezone(&Utc);
        if time > context.now + MAX_FUTURE {
            return self.problem(
                "event_time",
                "in_future",
                "must not be more than 5 minutes in the future",
            );
        }
        if time < context.now - context.max_event_age {
            let message = format!(
                "must not be older than the tenant's maximum event age ({} days)",
                context.max_event_age.num_days()
            );
            return self.problem("event_time", "too_old", &message);
        }
        Some(Timestamp::from(time))
    }

    fn keys(&mut self) -> Option<TrackingKeys> {
        let value = self.required("keys")?;
        let Some(object) = value.as_object() else {
            return self.problem(
                "keys",
                "invalid_type",
                "must be an object of key names to values",
            );
        };
        if object.is_empty() {
            return self.problem("keys", "no_keys", "must carry at least one tracking key");
        }
        if object.len() > MAX_KEYS {
            let message = format!("must carry at most {MAX_KEYS} tracking keys");
            return self.problem("keys", "too_long", &message);
        }
        let mut keys = Vec::with_capacity(object.len());
        let mut valid = true;
        for (name, value) in object {
            let field = format!("keys.{}", truncate_for_message(name));
            let Some(key_name) = KeyName::parse(name) else {
                valid = false;
                self.problems.push(FieldProblem::new(
                    field,
                    "invalid_format",
                    "key names are 1 to 32 lower-case letters, digits or _, starting with a letter",
                ));
                continue;
            };
            let Some(text) = value.as_str() else {
                valid = false;
                self.problems
                    .push(FieldProblem::new(field, "invalid_type", "must be a string"));
                continue;
            };
            match KeyValue::parse(&field, text) {
                Ok(key_value) => keys.push((key_name, key_value)),
                Err(problem) => {
                    valid = false;
                    self.problems.push(problem);
                }
            }
        }
        // serde_json's map is ordered by key, so `keys` is already sorted by name.
        valid.then_some(TrackingKeys(keys))
    }

    fn properties(&mut self) -> Option<Map<String, Value>> {
        match self.optional("properties")? {
            Value::Object(map) => {
                let size = serde_json::to_vec(map).map_or(usize::MAX, |bytes| bytes.len());
                if size > MAX_PROPERTIES_BYTES {
                    let message =
                        format!("must be at most {MAX_PROPERTIES_BYTES} bytes when serialised");
                    return self.problem("properties", "too_long", &message);
                }
                Some(map.clone())
            }
            _ => self.problem("properties", "invalid_type", "must be an object"),
        }
    }

    fn detection(&mut self) -> Option<Detection> {
        let label = self.parsed("label", true, Label::parse);
        let confidence = self
            .number("confidence", true)
            .and_then(|n| match Confidence::new(n) {
                Some(confidence) => Some(confidence),
                None => self.problem(
                    "confidence",
                    "out_of_range",
                    "confidence must be between 0 and 1",
                ),
            });
        let model_version = self.parsed("model_version", true, ModelVersion::parse);
        let entity_id = self.parsed("entity_id", true, EntityId::parse);
        let model = self.parsed("model", false, ShortText::parse);
        let category = self.parsed("category", false, ShortText::parse);
        let source = self.source();
        let bbox = self.bbox();
        let filtered = self.boolean("filtered");
        // Every field is checked above before any `?` below, so all problems are recorded.
        // An optional field that was present but invalid is `None` here with its problem
        // recorded, and `parse_event` refuses the event for it.
        Some(Detection {
            label: label?,
            confidence: confidence?,
            model_version: model_version?,
            entity_id: entity_id?,
            model,
            category,
            source,
            bbox,
            filtered: filtered.unwrap_or(false),
        })
    }

    fn source(&mut self) -> Option<Source> {
        let value = self.optional("source")?;
        let Some(object) = value.as_object() else {
            return self.problem(
                "source",
                "invalid_type",
                "must be an object with camera_id, site_id, device",
            );
        };
        let mut source = Source::default();
        for (name, value) in object {
            let field = format!("source.{}", truncate_for_message(name));
            let slot = match name.as_str() {
                "camera_id" => &mut source.camera_id,
                "site_id" => &mut source.site_id,
                "device" => &mut source.device,
                _ => {
                    self.problems.push(FieldProblem::new(
                        field,
                        "unknown_field",
                        "source has camera_id, site_id and device only",
                    ));
                    continue;
                }
            };
            if value.is_null() {
                continue;
            }
            match value.as_str() {
                Some(text) => match ShortText::parse(&field, text) {
                    Ok(parsed) => *slot = Some(parsed),
                    Err(problem) => self.problems.push(problem),
                },
                None => {
                    self.problems
                        .push(FieldProblem::new(field, "invalid_type", "must be a string"))
                }
            }
        }
        Some(source)
    }

    fn bbox(&mut self) -> Option<[f64; 4]> {
        let value = self.optional("bbox")?;
        let Some(items) = value.as_array() else {
            return self.problem("bbox", "invalid_type", "must be an array [x, y, w, h]");
        };
        let numbers: Vec<f64> = items.iter().filter_map(Value::as_f64).collect();
        if numbers.len() != items.len() {
            return self.problem("bbox", "invalid_type", "must hold numbers only");
        }
        match <[f64; 4]>::try_from(numbers) {
            Ok(bbox) => Some(bbox),
            Err(_) => self.problem(
                "bbox",
                "invalid_format",
                "must be exactly four numbers [x, y, w, h]",
            ),
        }
    }

    fn conversion(&mut self) -> Option<Conversion> {
        let name = self.parsed("name", true, ConversionName::parse);
        let value = self.number("value", false).and_then(|n| {
            if n >= 0.0 {
                Some(n)
            } else {
                self.problem("value", "out_of_range", "value must be 0 or more")
            }
        });
        let currency = self.text("currency", false).and_then(|c| {
            if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) {
                Some(c.to_owned())
            } else {
                self.problem(
                    "currency",
                    "invalid_format",
                    "must be three upper-case letters, such as EUR",
                )
            }
        });
        if self.optional("currency").is_some() && self.optional("value").is_none() {
            self.problems.push(FieldProblem::new(
                "value",
                "missing_field",
                "`value` is required when `currency` is given",
            ));
        }
        Some(Conversion {
            name: name?,
            value,
            currency,
        })
    }

    /// Fields outside the event's type (or outside both types, when the type is unknown).
    fn unknown_fields(&mut self, kind: Option<EventKind>) {
        for name in self.object.keys() {
            let known = COMMON_FIELDS.contains(&name.as_str())
                || match kind {
                    Some(EventKind::Detection) => DETECTION_FIELDS.contains(&name.as_str()),
                    Some(EventKind::Conversion) => CONVERSION_FIELDS.contains(&name.as_str()),
                    None => {
                        DETECTION_FIELDS.contains(&name.as_str())
                            || CONVERSION_FIELDS.contains(&name.as_str())
                    }
                };
            if !known {
                let message = match kind {
                    Some(kind) => format!("is not a field of a {}", kind.as_str()),
                    None => "is not a field of an event".to_owned(),
                };
                self.problems.push(FieldProblem::new(
                    truncate_for_message(name),
                    "unknown_field",
                    message,
                ));
            }
        }
    }
}

/// 1 to `max` characters: empty is `invalid_format`, longer is `too_long`.
fn check_length(field: &str, value: &str, max: usize) -> Result<(), FieldProblem> {
    if value.is_empty() {
        Err(FieldProblem::new(
            field,
            "invalid_format",
            "must not be empty",
        ))
    } else if value.len() > max && value.chars().count() > max {
        Err(FieldProblem::new(
            field,
            "too_long",
            format!("must be at most {max} characters"),
        ))
    } else {
        Ok(())
    }
}

/// Field names come from the client: keep the ones echoed back in errors short.
fn truncate_for_message(name: &str) -> String {
    const MAX: usize = 64;
    if name.chars().count() <= MAX {
        name.to_owned()
    } else {
        let mut short: String = name.chars().take(MAX).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context() -> ParseContext {
        ParseContext {
            now: DateTime::parse_from_rfc3339("2026-12-03T18:00:00Z")
                .expect("valid")
                .with_timezone(&Utc),
            max_event_age: Duration::days(7),
        }
    }

    fn detection() -> Value {
        json!({"type": "detection", "event_id": "d-1", "event_time": "2026-12-03T17:59:00.123456+00:00",
               "keys": {"user_id": "u", "session_token": "s"}, "label": "barcode", "confidence": 0.5,
               "model_version": "v1", "entity_id": "sku-1"})
    }

    fn codes(value: &Value) -> Vec<(String, &'static str)> {
        match parse_event(value, &context()) {
            Ok(_) => Vec::new(),
            Err(rejection) => rejection
                .errors
                .into_iter()
                .map(|e| (e.field, e.code))
                .collect(),
        }
    }

    #[test]
    fn a_valid_detection_parses_into_typed_fields() {
        let event = parse_event(&detection(), &context()).expect("valid");
        assert_eq!(event.kind(), EventKind::Detection);
        assert_eq!(event.event_id.as_str(), "d-1");
        let names: Vec<&str> = event.keys.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["session_token", "user_id"]);
        assert_eq!(
            serde_json::to_value(event.event_time).expect("serialisable"),
            json!("2026-12-03T17:59:00.123Z")
        );
        let EventBody::Detection(body) = event.body else {
            panic!("a detection");
        };
        assert_eq!(body.confidence.get(), 0.5);
        assert!(!body.filtered);
    }

    #[test]
    fn confidence_bounds_are_inclusive() {
        for confidence in [0.0, 1.0] {
            let mut event = detection();
            event["confidence"] = json!(confidence);
            assert!(codes(&event).is_empty(), "{confidence}");
        }
    }

    #[test]
    fn a_negative_zero_confidence_is_stored_as_zero() {
        let zero = Confidence::new(-0.0).expect("in range");
        assert!(zero.get().is_sign_positive());
    }

    #[test]
    fn event_time_limits_are_inclusive() {
        let mut event = detection();
        event["event_time"] = json!("2026-12-03T18:05:00Z");
        assert!(codes(&event).is_empty());
        event["event_time"] = json!("2026-12-03T18:05:00.001Z");
        assert_eq!(codes(&event), [("event_time".to_owned(), "in_future")]);
        event["event_time"] = json!("2026-11-26T18:00:00Z");
        assert!(codes(&event).is_empty());
        event["event_time"] = json!("2026-11-26T17:59:59.999Z");
        assert_eq!(codes(&event), [("event_time".to_owned(), "too_old")]);
    }

    #[test]
    fn an_invalid_event_keeps_its_identity_when_type_and_id_are_valid() {
        let mut event = detection();
        event["confidence"] = json!("high");
        let rejection = parse_event(&event, &context()).expect_err("invalid");
        let (kind, id) = rejection.identity.expect("an identity");
        assert_eq!((kind, id.as_str()), (EventKind::Detection, "d-1"));

        event["type"] = json!("click");
        let rejection = parse_event(&event, &context()).expect_err("invalid");
        assert!(rejection.identity.is_none());
    }

    #[test]
    fn with_an_unknown_type_only_fields_of_no_type_are_unknown() {
        let event = json!({"type": "click", "event_id": "x", "event_time": "2026-12-03T17:00:00Z",
                           "keys": {"k": "v"}, "label": "a", "name": "b", "colour": "red"});
        assert_eq!(
            codes(&event),
            [
                ("type".to_owned(), "invalid_format"),
                ("colour".to_owned(), "unknown_field")
            ]
        );
    }

    #[test]
    fn a_currency_needs_a_value() {
        let event = json!({"type": "conversion", "event_id": "c", "event_time": "2026-12-03T17:00:00Z",
                           "keys": {"k": "v"}, "name": "purchase", "currency": "EUR"});
        assert_eq!(codes(&event), [("value".to_owned(), "missing_field")]);
    }

    #[test]
    fn null_optional_fields_count_as_absent() {
        let mut event = detection();
        event["consent"] = Value::Null;
        event["bbox"] = Value::Null;
        assert!(codes(&event).is_empty());
    }

    #[test]
    fn too_many_keys_are_refused() {
        let mut event = detection();
        let keys: Map<String, Value> = (0..=MAX_KEYS)
            .map(|i| (format!("k{i}"), json!("v")))
            .collect();
        event["keys"] = Value::Object(keys);
        assert_eq!(codes(&event), [("keys".to_owned(), "too_long")]);
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let mut event = detection();
        event["label"] = json!("é".repeat(128));
        assert!(codes(&event).is_empty());
        event["label"] = json!("é".repeat(129));
        assert_eq!(codes(&event), [("label".to_owned(), "too_long")]);
    }
}
