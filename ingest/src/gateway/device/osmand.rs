//! OsmAnd / Traccar Client device side: the query string and the JSON body a phone sends.
//!
//! The server's answer is a bare HTTP status (200 stored, 400 refused): nothing to parse.

use crate::gateway::DeviceFix;
use std::fmt::Write as _;

/// Percent-encodes a query value (everything but unreserved characters).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The timestamp as Traccar Client sends it: unix seconds (milliseconds when the fix time
/// has a fraction of a second).
fn timestamp(fix: &DeviceFix) -> i64 {
    if fix.time_ms % 1000 == 0 {
        fix.time_ms / 1000
    } else {
        fix.time_ms
    }
}

/// The query string (without `?`) Traccar Client sends for `fix`: speed in knots.
pub fn query(fix: &DeviceFix) -> String {
    let mut q = format!(
        "id={}&timestamp={}&lat={}&lon={}",
        encode(&fix.device),
        timestamp(fix),
        fix.lat,
        fix.lon
    );
    let optional = [
        ("speed", fix.speed_kmh.map(|s| s / 1.852)),
        ("bearing", fix.course_deg),
        ("altitude", fix.alt_m),
        ("accuracy", fix.acc_m),
        ("batt", fix.batt_pct),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            let _ = write!(q, "&{name}={v}");
        }
    }
    q
}

/// Escapes a JSON string's content.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// The JSON body newer Traccar Client versions POST for `fix`: speed in m/s, battery level
/// 0..1, -1 for unknown speed, heading and battery.
pub fn json(fix: &DeviceFix) -> String {
    let time = chrono::DateTime::from_timestamp_millis(fix.time_ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default();
    format!(
        concat!(
            r#"{{"location":{{"timestamp":"{}","coords":{{"latitude":{},"longitude":{},"#,
            r#""accuracy":{},"speed":{},"heading":{},"altitude":{}}},"#,
            r#""is_moving":true,"battery":{{"level":{},"is_charging":false}}}},"device_id":"{}"}}"#
        ),
        time,
        fix.lat,
        fix.lon,
        fix.acc_m.unwrap_or(-1.0),
        fix.speed_kmh.map_or(-1.0, |s| s / 3.6),
        fix.course_deg.unwrap_or(-1.0),
        fix.alt_m.unwrap_or(0.0),
        fix.batt_pct.map_or(-1.0, |b| b / 100.0),
        json_str(&fix.device),
    )
}
