//! OsmAnd / Traccar Client HTTP protocol: parsing only (the HTTP server is elsewhere).
//!
//! # Query or form ([`parse`])
//! `id=...&lat=...&lon=...&timestamp=...&speed=...&bearing=...&altitude=...&accuracy=...&batt=...`
//! from a GET query string or an `application/x-www-form-urlencoded` POST body (a leading
//! path up to `?` is ignored). Names and values are percent-decoded (`+` is a space). As
//! Traccar reads it:
//! - `id` or `deviceid`: the device id, as given (required: missing or empty is
//!   `NoIdentity`);
//! - `lat` and `lon` in degrees, or `location=lat,lon` (required; out of range is
//!   `BadFrame`; exactly 0,0 is `NoFix`, the app's "no position");
//! - `timestamp` (required; the pipeline has no "now" to invent): unix seconds, or unix
//!   milliseconds when the number is at least 2^31 - 1 (Traccar's rule), or RFC 3339 /
//!   ISO 8601 with a `T` (an offset is honoured, none means UTC), or `yyyy-MM-dd HH:mm:ss`
//!   taken as UTC;
//! - `speed` in knots (Traccar Client sends knots), converted to km/h (× 1.852);
//! - `bearing` or `heading` in degrees; `altitude` metres; `accuracy` metres; `batt` percent;
//! - `valid`: `true` or `1` is valid, any other value is `NoFix`.
//!
//! Negative or non-finite speed, course, accuracy and battery values are treated as absent
//! (apps send -1 for "unknown"), as are a course of 360 or more and a battery over 100.
//! A value that does not parse as a number is `BadFrame`. Other parameters (`hdop`, `cell`,
//! `wifi`, `driverUniqueId`, ...) are ignored. When a parameter repeats, the last wins.
//!
//! # JSON ([`parse_json`])
//! The body newer Traccar Client versions POST (the Transistorsoft background geolocation
//! shape): `{"device_id": "...", "location": {"timestamp": "2025-06-15T13:45:12.862Z",
//! "coords": {"latitude", "longitude", "accuracy", "speed" (m/s), "heading", "altitude"},
//! "battery": {"level": 0..1}, ...}}`. Speed is converted to km/h (× 3.6), battery level to
//! percent (× 100); -1 means unknown for speed, heading, battery. `device_id` may be a string
//! or a number; `timestamp` an RFC 3339 string or a unix number (seconds/ms as above). A
//! `location` array (batch sync) is `Unsupported`. Bodies over 64 KiB or nested over 32 deep
//! are refused.
//!
//! # Reply policy
//! Not here: the HTTP server answers 200 once the fix is durable, 400 for a refusal.

use super::{DeviceFix, FrameError, FrameErrorKind};

/// The protocol's name: metrics label and the rejects' topic prefix.
pub const NAME: &str = "osmand";

/// Largest JSON body accepted.
pub const MAX_JSON: usize = 64 * 1024;
const MAX_DEPTH: usize = 32;
const KNOT_KMH: f64 = 1.852;
const MPS_KMH: f64 = 3.6;

fn no_fix(detail: impl Into<String>) -> FrameError {
    FrameError {
        kind: FrameErrorKind::NoFix,
        detail: detail.into(),
    }
}

fn no_identity() -> FrameError {
    FrameError {
        kind: FrameErrorKind::NoIdentity,
        detail: "no device id".into(),
    }
}

/// Percent-decodes one name or value (`+` is a space); refuses bad escapes and non-UTF-8.
fn decode_component(s: &str) -> Result<String, FrameError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| FrameError::bad(format!("bad percent escape in {s:?}")))?;
                out.push(hex);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| FrameError::bad(format!("{s:?} is not UTF-8 once decoded")))
}

fn number(name: &str, value: &str) -> Result<f64, FrameError> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| FrameError::bad(format!("{name}={value:?} is not a number")))
}

/// Unix seconds or milliseconds (Traccar's rule: below 2^31 - 1 is seconds).
fn unix_ms(n: i64) -> Result<i64, FrameError> {
    if n < i64::from(i32::MAX) {
        n.checked_mul(1000)
            .ok_or_else(|| FrameError::bad("timestamp out of range"))
    } else {
        Ok(n)
    }
}

/// A timestamp parameter in any of the accepted forms, as unix milliseconds UTC.
fn timestamp_ms(value: &str) -> Result<i64, FrameError> {
    let v = value.trim();
    let bad = || FrameError::bad(format!("timestamp {value:?} not understood"));
    if let Ok(n) = v.parse::<i64>() {
        return unix_ms(n);
    }
    if v.contains('T') {
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
            return Ok(t.timestamp_millis());
        }
        return chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f")
            .map(|t| t.and_utc().timestamp_millis())
            .map_err(|_| bad());
    }
    chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S%.f")
        .map(|t| t.and_utc().timestamp_millis())
        .map_err(|_| bad())
}

/// A value kept only when it is finite, non-negative and below `max`.
fn bounded(v: Option<f64>, max: f64) -> Option<f64> {
    v.filter(|x| x.is_finite() && *x >= 0.0 && *x < max)
}

/// The checks and conversions both forms share.
struct Parts {
    device: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    time_ms: Option<i64>,
    speed_kmh: Option<f64>,
    course: Option<f64>,
    alt: Option<f64>,
    acc: Option<f64>,
    batt: Option<f64>,
    valid: bool,
}

impl Parts {
    fn fix(self) -> Result<DeviceFix, FrameError> {
        let device = self
            .device
            .filter(|d| !d.trim().is_empty())
            .ok_or_else(no_identity)?;
        let (Some(lat), Some(lon)) = (self.lat, self.lon) else {
            return Err(FrameError::bad("no latitude/longitude"));
        };
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return Err(FrameError::bad(format!(
                "coordinates out of range: {lat}, {lon}"
            )));
        }
        let time_ms = self
            .time_ms
            .ok_or_else(|| FrameError::bad("no timestamp"))?;
        if !self.valid {
            return Err(no_fix("valid flag false"));
        }
        if lat == 0.0 && lon == 0.0 {
            return Err(no_fix("position 0,0"));
        }
        Ok(DeviceFix {
            device,
            time_ms,
            lat,
            lon,
            speed_kmh: bounded(self.speed_kmh, f64::INFINITY),
            course_deg: bounded(self.course, 360.0),
            alt_m: self.alt.filter(|a| a.is_finite()),
            acc_m: bounded(self.acc, f64::INFINITY),
            batt_pct: bounded(self.batt, 100.000_001),
        })
    }
}

/// Parses a query string or form body into a fix.
///
/// # Errors
/// `NoIdentity` without a device id, `NoFix` for `valid=false` or 0,0, `BadFrame` for a
/// missing position or timestamp or a value that does not parse.
pub fn parse(query_or_form: &str) -> Result<DeviceFix, FrameError> {
    let query = query_or_form
        .split_once('?')
        .map_or(query_or_form, |(_, q)| q);
    let query = query.split('#').next().unwrap_or_default().trim();
    let mut p = Parts {
        device: None,
        lat: None,
        lon: None,
        time_ms: None,
        speed_kmh: None,
        course: None,
        alt: None,
        acc: None,
        batt: None,
        valid: true,
    };
    for pair in query.split('&').filter(|s| !s.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode_component(name)?;
        let value = decode_component(value)?;
        let v = value.as_str();
        match name.as_str() {
            "id" | "deviceid" => p.device = Some(value.trim().to_string()),
            "lat" => p.lat = Some(number("lat", v)?),
            "lon" => p.lon = Some(number("lon", v)?),
            "location" => {
                let (la, lo) = v
                    .split_once(',')
                    .ok_or_else(|| FrameError::bad(format!("location={v:?}")))?;
                p.lat = Some(number("location", la)?);
                p.lon = Some(number("location", lo)?);
            }
            "timestamp" => p.time_ms = Some(timestamp_ms(v)?),
            "speed" => p.speed_kmh = Some(number("speed", v)? * KNOT_KMH),
            "bearing" | "heading" => p.course = Some(number(&name, v)?),
            "altitude" => p.alt = Some(number("altitude", v)?),
            "accuracy" => p.acc = Some(number("accuracy", v)?),
            "batt" => p.batt = Some(number("batt", v)?),
            "valid" => p.valid = v.eq_ignore_ascii_case("true") || v == "1",
            _ => {}
        }
    }
    p.fix()
}

/// A parsed JSON value (numbers keep their text for ids).
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64, String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn num(&self) -> Option<f64> {
        match self {
            Json::Num(n, _) => Some(*n),
            _ => None,
        }
    }
}

/// A small strict JSON reader (RFC 8259), bounded in depth.
struct Reader<'a> {
    s: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn err(&self, what: &str) -> FrameError {
        FrameError::bad(format!("JSON: {what} at byte {}", self.at))
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> Result<(), FrameError> {
        if self.s.get(self.at..self.at + lit.len()) == Some(lit.as_bytes()) {
            self.at += lit.len();
            Ok(())
        } else {
            Err(self.err(&format!("expected {lit}")))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, FrameError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deep"));
        }
        self.ws();
        match self.peek() {
            Some(b'{') => {
                self.at += 1;
                let mut members = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.at += 1;
                    return Ok(Json::Obj(members));
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    self.ws();
                    self.eat(":")?;
                    let v = self.value(depth + 1)?;
                    members.push((key, v));
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b'}') => {
                            self.at += 1;
                            return Ok(Json::Obj(members));
                        }
                        _ => return Err(self.err("expected , or }")),
                    }
                }
            }
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.at += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b']') => {
                            self.at += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return Err(self.err("expected , or ]")),
                    }
                }
            }
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(b't') => self.eat("true").map(|()| Json::Bool(true)),
            Some(b'f') => self.eat("false").map(|()| Json::Bool(false)),
            Some(b'n') => self.eat("null").map(|()| Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.err("expected a value")),
        }
    }

    fn number(&mut self) -> Result<Json, FrameError> {
        let start = self.at;
        while matches!(
            self.peek(),
            Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
        ) {
            self.at += 1;
        }
        let text = std::str::from_utf8(self.s.get(start..self.at).unwrap_or_default())
            .map_err(|_| self.err("bad number"))?;
        let n = text
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| self.err("bad number"))?;
        Ok(Json::Num(n, text.to_string()))
    }

    fn hex4(&mut self) -> Result<u32, FrameError> {
        let h = self
            .s
            .get(self.at..self.at + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.err("bad \\u escape"))?;
        self.at += 4;
        Ok(h)
    }

    fn string(&mut self) -> Result<String, FrameError> {
        self.eat("\"")?;
        let mut out = String::new();
        loop {
            let start = self.at;
            while matches!(self.peek(), Some(b) if b != b'"' && b != b'\\' && b >= 0x20) {
                self.at += 1;
            }
            let run = self.s.get(start..self.at).unwrap_or_default();
            out.push_str(std::str::from_utf8(run).map_err(|_| self.err("not UTF-8"))?);
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    let c = self.peek().ok_or_else(|| self.err("unterminated escape"))?;
                    self.at += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let mut code = self.hex4()?;
                            if (0xd800..0xdc00).contains(&code) {
                                self.eat("\\u")?;
                                let low = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&low) {
                                    return Err(self.err("bad surrogate pair"));
                                }
                                code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                            }
                            out.push(
                                char::from_u32(code).ok_or_else(|| self.err("bad \\u escape"))?,
                            );
                        }
                        _ => return Err(self.err("bad escape")),
                    }
                }
                _ => return Err(self.err("unterminated string")),
            }
        }
    }
}

fn parse_json_value(body: &[u8]) -> Result<Json, FrameError> {
    if body.len() > MAX_JSON {
        return Err(FrameError::bad(format!(
            "JSON body of {} bytes, max {MAX_JSON}",
            body.len()
        )));
    }
    let mut r = Reader { s: body, at: 0 };
    let v = r.value(0)?;
    r.ws();
    if r.at != body.len() {
        return Err(r.err("trailing bytes"));
    }
    Ok(v)
}

/// Parses the JSON body of newer Traccar Client versions into a fix.
///
/// # Errors
/// As [`parse`]; `BadFrame` for JSON that is not well formed or lacks `location.coords`,
/// `Unsupported` for a batch (`location` array).
pub fn parse_json(body: &[u8]) -> Result<DeviceFix, FrameError> {
    let root = parse_json_value(body)?;
    let location = match root.get("location") {
        Some(l @ Json::Obj(_)) => l,
        Some(Json::Arr(_)) => {
            return Err(FrameError {
                kind: FrameErrorKind::Unsupported,
                detail: "batched location array".into(),
            });
        }
        _ => return Err(FrameError::bad("no location object")),
    };
    let coords = location
        .get("coords")
        .ok_or_else(|| FrameError::bad("no location.coords"))?;
    let device = match root.get("device_id") {
        Some(Json::Str(s)) => Some(s.trim().to_string()),
        Some(Json::Num(_, text)) => Some(text.clone()),
        _ => None,
    };
    let time_ms = match location.get("timestamp") {
        Some(Json::Str(s)) => Some(timestamp_ms(s)?),
        Some(Json::Num(n, text)) => {
            let whole = text
                .parse::<i64>()
                .map_err(|_| FrameError::bad(format!("timestamp {n}")))?;
            Some(unix_ms(whole)?)
        }
        _ => None,
    };
    let coord = |name: &str| -> Result<Option<f64>, FrameError> {
        match coords.get(name) {
            None | Some(Json::Null) => Ok(None),
            Some(v) => v
                .num()
                .map(Some)
                .ok_or_else(|| FrameError::bad(format!("coords.{name} not a number"))),
        }
    };
    let valid = !matches!(
        root.get("valid").or_else(|| location.get("valid")),
        Some(Json::Bool(false))
    );
    Parts {
        device,
        lat: coord("latitude")?,
        lon: coord("longitude")?,
        time_ms,
        speed_kmh: coord("speed")?.map(|s| s * MPS_KMH),
        course: coord("heading")?,
        alt: coord("altitude")?,
        acc: coord("accuracy")?,
        batt: location
            .get("battery")
            .and_then(|b| b.get("level"))
            .and_then(Json::num)
            .map(|l| l * 100.0),
        valid,
    }
    .fix()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::device::osmand as dev;
    use crate::gateway::testing::ms;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    fn kind(r: Result<DeviceFix, FrameError>) -> Option<FrameErrorKind> {
        r.err().map(|e| e.kind)
    }

    // Requests below are from traccar/traccar
    // src/test/java/org/traccar/protocol/OsmAndProtocolDecoderTest.java (Apache-2.0).

    #[test]
    fn traccar_iso_timestamp_percent_encoded() {
        let f = parse(
            "/?id=902064&lat=42.06288&lon=-88.23412&timestamp=2016-01-27T18%3A55%3A47Z&hdop=6.0&altitude=224.0&speed=0.0",
        );
        let f = f.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.device, "902064");
        assert_eq!(f.time_ms, ms("2016-01-27T18:55:47Z"));
        assert!(close(Some(f.lat), 42.06288) && close(Some(f.lon), -88.23412));
        assert_eq!(f.alt_m, Some(224.0));
        assert_eq!(f.speed_kmh, Some(0.0));
        assert_eq!((f.course_deg, f.acc_m, f.batt_pct), (None, None, None));
    }

    #[test]
    fn traccar_unix_ms_and_seconds() {
        let f = parse(
            "/?id=902064&lat=42.06288&lon=-88.23412&timestamp=1442068686579&hdop=6.0&altitude=224.0&speed=0.0",
        );
        assert_eq!(f.map(|f| f.time_ms), Ok(1_442_068_686_579));
        let f = parse(
            "/?id=123456&timestamp=1377177267&lat=60.0&lon=30.0&speed=0.0&bearing=0.0&altitude=0&hdop=0.0",
        );
        assert_eq!(
            f.map(|f| (f.time_ms, f.course_deg)),
            Ok((1_377_177_267_000, Some(0.0)))
        );
    }

    #[test]
    fn traccar_space_separated_timestamp_and_deviceid() {
        let f = parse(
            "/?lat=49.60688&lon=6.15788&timestamp=2014-06-04+09%3A10%3A11&altitude=384.7&speed=0.0&id=353861053849681",
        );
        assert_eq!(
            f.map(|f| (f.device, f.time_ms)),
            Ok(("353861053849681".into(), ms("2014-06-04T09:10:11Z")))
        );
        let f = parse(
            "id=123456789012345&timestamp=1504763810&lat=40.7232948571&lon=-74.0061408571&bearing=7.19889788244&speed=40&ignition=true&rpm=933&fuel=24",
        );
        let f = f.unwrap_or_else(|e| panic!("{e}"));
        assert!(close(f.speed_kmh, 40.0 * 1.852), "{:?}", f.speed_kmh);
        assert!(close(f.course_deg, 7.19889788244));
    }

    #[test]
    fn traccar_location_pair_and_batt() {
        let f = parse("/?id=123456&timestamp=1377177267&location=60.0,30.0")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((f.lat, f.lon), (60.0, 30.0));
        // No timestamp: refused, the pipeline has no clock to stamp it with.
        let r = parse(
            "/?id=861001000719969&lat=41.666667&lon=-0.883333&altitude=350.059479&speed=0.000000&batt=87",
        );
        assert_eq!(kind(r), Some(FrameErrorKind::BadFrame));
        let f = parse("id=8&lat=41.666667&lon=-0.883333&timestamp=1&batt=87&accuracy=12.5")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (f.batt_pct, f.acc_m, f.time_ms),
            (Some(87.0), Some(12.5), 1000)
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(
            kind(parse("/?timestamp=1377177267&lat=60.0&lon=30.0")),
            Some(FrameErrorKind::NoIdentity)
        );
        assert_eq!(
            kind(parse("id=&timestamp=1&lat=60.0&lon=30.0")),
            Some(FrameErrorKind::NoIdentity)
        );
        assert_eq!(
            kind(parse("id=1&timestamp=1&lat=60.0&lon=30.0&valid=false")),
            Some(FrameErrorKind::NoFix)
        );
        assert_eq!(
            kind(parse("id=1&timestamp=1&lat=60.0&lon=30.0&valid=0")),
            Some(FrameErrorKind::NoFix)
        );
        assert!(parse("id=1&timestamp=1&lat=60.0&lon=30.0&valid=1").is_ok());
        assert_eq!(
            kind(parse("id=1&timestamp=1&lat=0&lon=0")),
            Some(FrameErrorKind::NoFix)
        );
        assert_eq!(
            kind(parse("id=1&timestamp=1&lat=91&lon=0")),
            Some(FrameErrorKind::BadFrame)
        );
        assert_eq!(
            kind(parse("id=1&timestamp=1&lat=abc&lon=0")),
            Some(FrameErrorKind::BadFrame)
        );
        assert_eq!(
            kind(parse("id=1&timestamp=1&lat=NaN&lon=0")),
            Some(FrameErrorKind::BadFrame)
        );
        assert_eq!(
            kind(parse("id=1&timestamp=yesterday&lat=1&lon=1")),
            Some(FrameErrorKind::BadFrame)
        );
        assert_eq!(
            kind(parse("id=%zz&timestamp=1&lat=1&lon=1")),
            Some(FrameErrorKind::BadFrame)
        );
        assert_eq!(
            kind(parse("id=%ff&timestamp=1&lat=1&lon=1")),
            Some(FrameErrorKind::BadFrame)
        );
        assert_eq!(
            kind(parse("id=1&timestamp=1&lat=1")),
            Some(FrameErrorKind::BadFrame)
        );
        assert_eq!(kind(parse("")), Some(FrameErrorKind::NoIdentity));
    }

    #[test]
    fn unknown_values_dropped() {
        let f = parse("id=a%20b&timestamp=2024-01-01T01:00:00%2B02:00&lat=1&lon=1&speed=-1&bearing=360&accuracy=-1&batt=101")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.device, "a b");
        assert_eq!(f.time_ms, ms("2023-12-31T23:00:00Z"));
        assert_eq!(
            (f.speed_kmh, f.course_deg, f.acc_m, f.batt_pct),
            (None, None, None, None)
        );
    }

    /// JSON bodies from the same Traccar test file.
    const JSON_1: &str = r#"{"location":{"timestamp":"2025-06-15T13:45:12.862Z","coords":{"latitude":37.4219983,"longitude":-122.084,"accuracy":5,"speed":0,"heading":-1,"altitude":5},"is_moving":false,"odometer":0,"event":"motionchange","battery":{"level":1,"is_charging":false},"activity":{"type":"still"},"extras":{},"_":"&id=48241179&lat=37.4219983&lon=-122.084&timestamp=2025-06-15T13:45:12.862Z&"},"device_id":"48241179"}"#;
    const JSON_2: &str = r#"{"location":{"event":"motionchange","is_moving":false,"uuid":"0e9a2473-a9a7-4c00-997b-fb97d2154e75","timestamp":"2021-07-21T08:06:34.444Z","odometer":0,"coords":{"latitude":-6.1148096,"longitude":106.6837015,"accuracy":3.8,"speed":18.67,"speed_accuracy":0.26,"heading":63,"heading_accuracy":0.28,"altitude":35.7,"altitude_accuracy":3.8},"activity":{"type":"still","confidence":100},"battery":{"is_charging":false,"level":0.79},"extras":{}},"device_id":"8737767034"}"#;
    const JSON_3: &str = r#"{"location":{"extras":{},"mock":true,"coords":{"speed_accuracy":-1,"speed":-1,"longitude":-122.406417,"ellipsoidal_altitude":0,"floor":null,"heading_accuracy":-1,"latitude":37.785834000000001,"accuracy":5,"altitude_accuracy":-1,"altitude":0,"heading":-1},"is_moving":false,"age":188,"odometer":0,"uuid":"2FB04C65-99CF-42AB-8DD3-EBCB4B108BF8","event":"motionchange","battery":{"level":-1,"is_charging":false},"activity":{"type":"unknown","confidence":100},"timestamp":"2025-05-09T04:11:30.579Z"},"device_id":"658765"}"#;

    #[test]
    fn traccar_json() {
        let f = parse_json(JSON_1.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.device, "48241179");
        assert_eq!(f.time_ms, ms("2025-06-15T13:45:12.862Z"));
        assert_eq!((f.lat, f.lon), (37.4219983, -122.084));
        assert_eq!(
            (f.acc_m, f.speed_kmh, f.course_deg, f.alt_m, f.batt_pct),
            (Some(5.0), Some(0.0), None, Some(5.0), Some(100.0))
        );

        let f = parse_json(JSON_2.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.device, "8737767034");
        assert_eq!(f.time_ms, ms("2021-07-21T08:06:34.444Z"));
        assert_eq!((f.lat, f.lon), (-6.1148096, 106.6837015));
        assert!(close(f.speed_kmh, 18.67 * 3.6), "{:?}", f.speed_kmh);
        assert_eq!(
            (f.course_deg, f.alt_m, f.acc_m),
            (Some(63.0), Some(35.7), Some(3.8))
        );
        assert!(close(f.batt_pct, 79.0), "{:?}", f.batt_pct);

        let f = parse_json(JSON_3.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.device, "658765");
        assert_eq!(f.time_ms, ms("2025-05-09T04:11:30.579Z"));
        assert!(close(Some(f.lat), 37.785834));
        assert_eq!((f.speed_kmh, f.course_deg, f.batt_pct), (None, None, None));
    }

    #[test]
    fn json_refusals() {
        assert_eq!(kind(parse_json(b"{")), Some(FrameErrorKind::BadFrame));
        assert_eq!(kind(parse_json(b"{}")), Some(FrameErrorKind::BadFrame));
        assert_eq!(
            kind(parse_json(br#"{"location":[]}"#)),
            Some(FrameErrorKind::Unsupported)
        );
        let no_id = r#"{"location":{"timestamp":1,"coords":{"latitude":1,"longitude":1}}}"#;
        assert_eq!(
            kind(parse_json(no_id.as_bytes())),
            Some(FrameErrorKind::NoIdentity)
        );
        let num_id = r#"{"device_id":42,"location":{"timestamp":1700000000,"coords":{"latitude":1,"longitude":1}}}"#;
        assert_eq!(
            parse_json(num_id.as_bytes()).map(|f| (f.device, f.time_ms)),
            Ok(("42".into(), 1_700_000_000_000))
        );
        let str_lat = r#"{"device_id":"1","location":{"timestamp":1,"coords":{"latitude":"1","longitude":1}}}"#;
        assert_eq!(
            kind(parse_json(str_lat.as_bytes())),
            Some(FrameErrorKind::BadFrame)
        );
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert_eq!(
            kind(parse_json(deep.as_bytes())),
            Some(FrameErrorKind::BadFrame)
        );
        assert_eq!(
            kind(parse_json(&vec![b' '; MAX_JSON + 1])),
            Some(FrameErrorKind::BadFrame)
        );
        assert_eq!(
            kind(parse_json(format!("{JSON_1} x").as_bytes())),
            Some(FrameErrorKind::BadFrame)
        );
    }

    #[test]
    fn json_strings() {
        let v = parse_json_value(br#"{"a":"x\"\\\/\n\u00e9\ud83d\ude00"}"#);
        assert_eq!(
            v.ok().and_then(|v| v.get("a").cloned()),
            Some(Json::Str("x\"\\/\n\u{e9}\u{1f600}".into()))
        );
        assert!(parse_json_value(br#""\ud83d""#).is_err());
        assert!(parse_json_value(b"\"a\x01\"").is_err());
    }

    fn fix() -> DeviceFix {
        DeviceFix {
            device: "patrol 7/A&B".into(),
            time_ms: ms("2024-05-01T12:34:56Z"),
            lat: -33.868_82,
            lon: 151.209_296,
            speed_kmh: Some(55.56),
            course_deg: Some(270.5),
            alt_m: Some(-3.5),
            acc_m: Some(4.2),
            batt_pct: Some(64.0),
        }
    }

    #[test]
    fn encoder_round_trip() {
        let want = fix();
        let got = parse(&dev::query(&want)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.device, want.device);
        assert_eq!(
            (got.time_ms, got.lat, got.lon),
            (want.time_ms, want.lat, want.lon)
        );
        assert!(close(got.speed_kmh, 55.56), "{:?}", got.speed_kmh);
        assert_eq!(
            (got.course_deg, got.alt_m, got.acc_m, got.batt_pct),
            (want.course_deg, want.alt_m, want.acc_m, want.batt_pct)
        );

        let got = parse_json(dev::json(&want).as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.device, want.device);
        assert_eq!(
            (got.time_ms, got.lat, got.lon),
            (want.time_ms, want.lat, want.lon)
        );
        assert!(
            close(got.speed_kmh, 55.56) && close(got.batt_pct, 64.0),
            "{got:?}"
        );
        assert_eq!(
            (got.course_deg, got.alt_m, got.acc_m),
            (want.course_deg, want.alt_m, want.acc_m)
        );
    }

    #[test]
    fn mutated_inputs_never_panic() {
        let seeds = [
            dev::query(&fix()).into_bytes(),
            dev::json(&fix()).into_bytes(),
            JSON_2.as_bytes().to_vec(),
        ];
        let mut state = 11u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            usize::try_from(state >> 33).unwrap_or(0)
        };
        for _ in 0..5000 {
            let mut input = seeds[next() % seeds.len()].clone();
            for _ in 0..(next() % 5) {
                let at = next() % input.len().max(1);
                let byte = u8::try_from(next() % 256).unwrap_or(0);
                if at < input.len() {
                    input[at] = byte;
                }
            }
            for f in [
                parse_json(&input).ok(),
                std::str::from_utf8(&input).ok().and_then(|s| parse(s).ok()),
            ]
            .into_iter()
            .flatten()
            {
                assert!(f.lat.abs() <= 90.0 && f.lon.abs() <= 180.0);
            }
        }
    }
}
