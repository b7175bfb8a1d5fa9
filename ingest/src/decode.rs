//! Decoding of OwnTracks MQTT messages: topic and payload bytes in, a [`Message`] out.
//!
//! Pure: no IO, no clock. The receive time is attached later, by `validate` and by
//! [`DecodeError::to_rejection`].
//!
//! # Wire format
//! - Topic `<prefix>/<station>/<unit>`: exactly three levels, each 1 to
//!   [`MAX_LEVEL_BYTES`] bytes of ASCII letters, digits, `-`, `_` and `.`; anything else is a
//!   [`DecodeError::BadTopic`]. Whatever the subscription lets through (a filter such as
//!   `owntracks/#` also brings OwnTracks' own `<topic>/event` and `<topic>/info`, and topics
//!   of any depth) is checked here, so a refused topic is kept as a `bad_topic` reject rather
//!   than dropped unseen. The character set keeps wildcards, spaces, control characters and
//!   look-alike letters out of the stored unit and station ids. The prefix's value (usually
//!   `owntracks`) is not checked, so other prefixes and brokers that rewrite it keep working.
//! - Payload: a JSON object with a string `_type`.
//!   - `"location"`: `lat`, `lon` (degrees) and `tst` (unix seconds) are required; `acc` (m),
//!     `vel` (km/h), `cog` (deg), `alt` (m), `batt` (%) and `tid` are optional. Other fields,
//!     `created_at` included, are ignored.
//!   - `"lwt"`: the unit went offline; `tst` is required.
//!   - Any other type (`transition`, `waypoint`, `card`, ...) becomes [`Message::Ignored`].
//! - Numbers must be JSON numbers, integer or float. Numeric strings such as `"40.1"` are not
//!   accepted: a required field holding one is a [`DecodeError::Field`] error, and an optional
//!   field of the wrong type is dropped to `None` (the fix itself is still good, and
//!   [`Ping::new`](crate::ping::Ping::new) drops nonsensical extras the same way).
//! - `tst` must be a whole number of seconds (`1.7e9` is fine, `1.5` is not).
//! - Numbers beyond `f64` (such as `1e400`) make the JSON parser fail: [`DecodeError::MalformedJson`].

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::ping::{EpochMillis, RejectReason, Rejection};

/// Largest `|tst|` accepted, in seconds, so that `tst * 1000` always fits an [`EpochMillis`].
const MAX_ABS_TST: f64 = 9.0e15;

/// Longest topic level accepted, in bytes: the unit id limit of [`Ping`](crate::ping::Ping).
pub const MAX_LEVEL_BYTES: usize = 64;

/// Settings for [`decode`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecodeConfig {
    /// Payloads longer than this many bytes are refused before parsing.
    #[serde(default = "default_max_payload_bytes")]
    pub max_payload_bytes: usize,
}

const fn default_max_payload_bytes() -> usize {
    4096
}

impl Default for DecodeConfig {
    /// A 4096-byte payload limit; an OwnTracks location is about 250 bytes.
    fn default() -> Self {
        DecodeConfig {
            max_payload_bytes: default_max_payload_bytes(),
        }
    }
}

/// A location as sent by a device, before validation. Coordinates and times are unchecked.
#[derive(Debug, Clone, PartialEq)]
pub struct RawPing {
    /// Station id, the middle topic level.
    pub station: String,
    /// Unit id, the last topic level.
    pub unit: String,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// Fix time in unix seconds.
    pub tst: i64,
    /// Accuracy radius in metres.
    pub acc: Option<f64>,
    /// Speed in km/h.
    pub vel: Option<f64>,
    /// Course over ground in degrees.
    pub cog: Option<f64>,
    /// Altitude in metres.
    pub alt: Option<f64>,
    /// Battery level in percent.
    pub batt: Option<f64>,
    /// OwnTracks tracker id, a short display label.
    pub tid: Option<String>,
}

/// One decoded MQTT message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A position fix, to be validated.
    Location(RawPing),
    /// The broker published the unit's last will: the device went offline.
    Offline {
        /// Station id from the topic.
        station: String,
        /// Unit id from the topic.
        unit: String,
        /// The message's `tst`, unix seconds.
        tst: i64,
    },
    /// A well-formed message of a type the pipeline does not use; kept as a record, not an error.
    Ignored {
        /// Station id from the topic.
        station: String,
        /// Unit id from the topic.
        unit: String,
        /// The `_type` value, for example `transition`.
        kind: String,
    },
}

/// What is wrong with a required field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldProblem {
    /// The field is absent or `null`.
    Missing,
    /// The field has another JSON type than expected.
    WrongType {
        /// The type the field must have.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// `tst` is not a whole number of seconds, or is absurdly large.
    NotWholeSeconds,
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldProblem::Missing => f.write_str("is missing"),
            FieldProblem::WrongType { expected, found } => {
                write!(f, "is a {found}, expected a {expected}")
            }
            FieldProblem::NotWholeSeconds => {
                f.write_str("is not a whole number of unix seconds in range")
            }
        }
    }
}

/// What is wrong with a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicProblem {
    /// The topic does not have exactly three levels.
    Levels,
    /// The named level is empty.
    Empty(&'static str),
    /// The named level is longer than [`MAX_LEVEL_BYTES`].
    TooLong(&'static str),
    /// The named level has a character other than ASCII letters, digits, `-`, `_` and `.`.
    BadCharacter(&'static str),
}

impl fmt::Display for TopicProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicProblem::Levels => f.write_str("expected exactly 3 levels"),
            TopicProblem::Empty(level) => write!(f, "empty {level} level"),
            TopicProblem::TooLong(level) => {
                write!(f, "{level} level is over {MAX_LEVEL_BYTES} bytes")
            }
            TopicProblem::BadCharacter(level) => write!(
                f,
                "{level} level has a character other than A-Z, a-z, 0-9, '-', '_' and '.'"
            ),
        }
    }
}

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The payload is longer than [`DecodeConfig::max_payload_bytes`].
    #[error("payload of {size} bytes is over the {max}-byte limit")]
    Oversize {
        /// Payload length in bytes.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// The topic is not `<prefix>/<station>/<unit>` with well-formed levels.
    #[error("topic is not <prefix>/<station>/<unit>: {0}")]
    BadTopic(TopicProblem),
    /// The payload is not a JSON object; holds the parser's message.
    #[error("{0}")]
    MalformedJson(String),
    /// A required field is missing or unusable.
    #[error("field `{field}` {problem}")]
    Field {
        /// The JSON field name.
        field: &'static str,
        /// What is wrong with it.
        problem: FieldProblem,
    },
}

impl DecodeError {
    /// The reason recorded in the `rejects` table.
    pub fn reason(&self) -> RejectReason {
        match self {
            DecodeError::Oversize { .. } => RejectReason::Oversize,
            DecodeError::BadTopic(_) => RejectReason::BadTopic,
            DecodeError::MalformedJson(_) => RejectReason::MalformedJson,
            DecodeError::Field { .. } => RejectReason::MissingField,
        }
    }

    /// Builds the rejection record for a message that failed to decode.
    ///
    /// The payload is kept as received, except that an oversize payload is cut to the limit
    /// (its full size is in the detail), so a flood of huge messages cannot bloat the store.
    pub fn to_rejection(&self, topic: &str, payload: &[u8], recv_time: EpochMillis) -> Rejection {
        let kept = match self {
            DecodeError::Oversize { max, .. } => &payload[..payload.len().min(*max)],
            _ => payload,
        };
        Rejection {
            recv_time,
            topic: topic.to_owned(),
            reason: self.reason(),
            detail: self.to_string(),
            payload: kept.to_vec(),
        }
    }
}

/// Decodes one OwnTracks MQTT message.
///
/// Checks, in order: payload size, topic shape, JSON, `_type`, then the fields the type needs.
///
/// # Errors
/// [`DecodeError`]: oversize payload, bad topic, malformed JSON, or a required field missing
/// or of the wrong type. See the module docs for the exact rules.
///
/// # Example
/// ```
/// use ingest::decode::{decode, DecodeConfig, Message};
/// let payload = br#"{"_type":"location","lat":40.1,"lon":-88.9,"tst":1793000000,"acc":8}"#;
/// let msg = decode("owntracks/central/B12", payload, &DecodeConfig::default()).unwrap();
/// let Message::Location(raw) = msg else { panic!("not a location") };
/// assert_eq!((raw.station.as_str(), raw.unit.as_str(), raw.acc), ("central", "B12", Some(8.0)));
/// ```
pub fn decode(topic: &str, payload: &[u8], cfg: &DecodeConfig) -> Result<Message, DecodeError> {
    if payload.len() > cfg.max_payload_bytes {
        return Err(DecodeError::Oversize {
            size: payload.len(),
            max: cfg.max_payload_bytes,
        });
    }
    let (station, unit) = split_topic(topic)?;
    // serde also reads a struct from an array of its fields; only objects are messages.
    let first = payload
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first.is_some_and(|b| *b != b'{') {
        return Err(DecodeError::MalformedJson(
            "payload is not a JSON object".into(),
        ));
    }
    let wire: Wire<'_> =
        serde_json::from_slice(payload).map_err(|e| DecodeError::MalformedJson(e.to_string()))?;
    let kind = match wire.ty {
        Some(Scalar::Str(s)) => s,
        other => return Err(field_error("_type", "string", other)),
    };
    match kind.as_ref() {
        "location" => Ok(Message::Location(RawPing {
            station: station.to_owned(),
            unit: unit.to_owned(),
            lat: required_num("lat", wire.lat)?,
            lon: required_num("lon", wire.lon)?,
            tst: tst(wire.tst)?,
            acc: optional_num(wire.acc),
            vel: optional_num(wire.vel),
            cog: optional_num(wire.cog),
            alt: optional_num(wire.alt),
            batt: optional_num(wire.batt),
            tid: match wire.tid {
                Some(Scalar::Str(s)) => Some(s.into_owned()),
                _ => None,
            },
        })),
        "lwt" => Ok(Message::Offline {
            station: station.to_owned(),
            unit: unit.to_owned(),
            tst: tst(wire.tst)?,
        }),
        _ => Ok(Message::Ignored {
            station: station.to_owned(),
            unit: unit.to_owned(),
            kind: kind.into_owned(),
        }),
    }
}

/// Splits `<prefix>/<station>/<unit>` into station and unit, checking every level.
fn split_topic(topic: &str) -> Result<(&str, &str), DecodeError> {
    let mut levels = topic.split('/');
    let (Some(prefix), Some(station), Some(unit), None) =
        (levels.next(), levels.next(), levels.next(), levels.next())
    else {
        return Err(DecodeError::BadTopic(TopicProblem::Levels));
    };
    for (name, level) in [("prefix", prefix), ("station", station), ("unit", unit)] {
        let problem = if level.is_empty() {
            TopicProblem::Empty(name)
        } else if level.len() > MAX_LEVEL_BYTES {
            TopicProblem::TooLong(name)
        } else if !level
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            TopicProblem::BadCharacter(name)
        } else {
            continue;
        };
        return Err(DecodeError::BadTopic(problem));
    }
    Ok((station, unit))
}

fn field_error(field: &'static str, expected: &'static str, v: Option<Scalar<'_>>) -> DecodeError {
    let problem = match v {
        None => FieldProblem::Missing,
        Some(s) => FieldProblem::WrongType {
            expected,
            found: s.type_name(),
        },
    };
    DecodeError::Field { field, problem }
}

fn required_num(field: &'static str, v: Option<Scalar<'_>>) -> Result<f64, DecodeError> {
    match v {
        Some(Scalar::Num(n)) => Ok(n),
        other => Err(field_error(field, "number", other)),
    }
}

fn optional_num(v: Option<Scalar<'_>>) -> Option<f64> {
    match v {
        Some(Scalar::Num(n)) => Some(n),
        _ => None,
    }
}

fn tst(v: Option<Scalar<'_>>) -> Result<i64, DecodeError> {
    let t = required_num("tst", v)?;
    if t.fract() != 0.0 || t.abs() > MAX_ABS_TST {
        return Err(DecodeError::Field {
            field: "tst",
            problem: FieldProblem::NotWholeSeconds,
        });
    }
    // Whole and within ±9e15, so the cast is exact.
    Ok(t as i64)
}

/// The fields the pipeline reads, borrowed from the payload. Every field accepts any JSON
/// value, so a wrong type is reported against its field rather than as a parser error.
#[derive(serde::Deserialize)]
struct Wire<'a> {
    #[serde(rename = "_type", borrow)]
    ty: Option<Scalar<'a>>,
    lat: Option<Scalar<'a>>,
    lon: Option<Scalar<'a>>,
    tst: Option<Scalar<'a>>,
    acc: Option<Scalar<'a>>,
    vel: Option<Scalar<'a>>,
    cog: Option<Scalar<'a>>,
    alt: Option<Scalar<'a>>,
    batt: Option<Scalar<'a>>,
    #[serde(borrow)]
    tid: Option<Scalar<'a>>,
}

/// Any JSON value, kept only as far as decoding needs it.
enum Scalar<'a> {
    Num(f64),
    /// Borrowed unless the string had escapes.
    Str(Cow<'a, str>),
    /// Anything else, by JSON type name.
    Other(&'static str),
}

impl Scalar<'_> {
    fn type_name(&self) -> &'static str {
        match self {
            Scalar::Num(_) => "number",
            Scalar::Str(_) => "string",
            Scalar::Other(name) => name,
        }
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Other("boolean"))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Num(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Num(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Num(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Other("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other("array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other("object"))
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
