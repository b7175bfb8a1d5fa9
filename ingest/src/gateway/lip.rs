//! TETRA Location Information Protocol (LIP), ETSI TS 100 392-18-1: location reports that a
//! TETRA radio sends as SDS user data (protocol identifier `0x0A`), forwarded by a radio
//! dispatch gateway.
//!
//! # Radio systems
//!
//! Covers TETRA networks (any vendor: Motorola Dimetra, Airbus/Hytera/Sepura terminals, ...)
//! whose switching and management infrastructure or dispatch gateway forwards the LIP SDS of
//! its radios to this server. Not covered: DMR location (ETSI DMR LRRP, Motorola MOTOTRBO
//! LRRP, Hytera LP), APCO P25 (Tier 2 location / LRRP), TETRAPOL, and the older TETRA
//! "simple location system" (protocol identifier `0x03`) or NMEA-in-SDS; an NMEA feed goes
//! to [`super::nmea`].
//!
//! # Framing (this server's choice)
//!
//! There is no standard transport from a dispatch gateway to an AVL server, so the gateway is
//! configured to send one report per UDP datagram or per line of a TCP feed, as ASCII:
//!
//! ```text
//! <source ISSI>,<SDS user data as hex>
//! 2001234,0A00B8C31A53EB496D6200
//! ```
//!
//! - The ISSI: 1 to 8 decimal digits, 1..=16 777 214 (`0xFFFFFE`; `0xFFFFFF` is the all-call
//!   address). It becomes [`DeviceFix::device`] as decimal digits without leading zeros.
//! - The hex (either case, even length): the LIP PDU, with or without the protocol identifier
//!   octet `0x0A` in front. A short location report is exactly 10 octets (76 bits and 4 fill
//!   bits), so 10 octets are read as a PDU alone and any other length starting with `0x0A` as
//!   identifier + PDU (a PDU alone can start with `0x0A` only as a short report).
//! - A datagram may hold several such lines separated by `\n` (a trailing `\r` is ignored);
//!   each gives one result. A line longer than [`MAX_LINE_LEN`] bytes is refused unread.
//!
//! # PDUs covered
//!
//! - Short location report (PDU type `00`): time elapsed, longitude (25 bits, two's
//!   complement, × 360/2²⁵ degrees), latitude (24 bits, × 180/2²⁴ degrees), position error,
//!   horizontal velocity, direction of travel (4 bits, 22.5° steps), type of additional data
//!   and reason for sending / user data (read and not used).
//! - Long location report (PDU type `01`, extension `0011`): time data (none, time elapsed, or
//!   time of position: day, hour, minute, second UTC), location shape and the longitude and
//!   latitude that every shape with a position starts with. Position error is read for the
//!   shape "point and position error"; velocity is read after the shapes "point", "point with
//!   uncertain circle" and "point and position error" only: horizontal velocity for every
//!   velocity type, direction of travel for type `101` (horizontal velocity with direction of
//!   travel extended, 8 bits, × 360/256 degrees). For the other shapes (ellipses, altitude,
//!   arc) the fix has no speed or course. Altitude is not read. Optional trailing elements
//!   (acknowledgement request, reason for sending, references) are not used.
//! - Every other LIP PDU (requests, responses, acknowledgements, trigger and backlog PDUs) is
//!   refused as [`FrameErrorKind::Unsupported`]; reserved PDU types as `BadFrame`.
//!
//! # Units
//!
//! Speed: the horizontal velocity code `n` is `n` km/h for `n` ≤ 28 and
//! `16 × 1.038^(n − 13)` km/h for 29..=125; 126 (more than 1043 km/h) and 127 (unknown) give
//! no speed. Course: degrees clockwise from north; no course when the speed is 0 or unknown
//! (the direction of a stationary radio means nothing). Accuracy: the upper bound of the
//! position error (2 m, 20 m, 200 m, 2 km, 20 km, 200 km); code 6 (more than 200 km) refuses
//! the report as `NoFix`; code 7 (unknown) gives no accuracy.
//!
//! # Time policy
//!
//! A short report carries only how long ago the position was taken:
//! - "< 5 s": fix time = `recv_ms`.
//! - "< 5 min": fix time = `recv_ms` − 5 min, the earliest the position can be, so it is never
//!   taken as newer than it is.
//! - "< 30 min" and "not known": refused as [`FrameErrorKind::NoFix`] (a position whose age is
//!   unknown or up to half an hour is not a current fix; the reject keeps it).
//!
//! The long report's time elapsed follows the same rules; a long report with no time data is
//! refused the same way. Its time of position (day of month, hour, minute, second, UTC) is
//! placed in the month of `recv_ms` or the one before: the latest such instant not more than
//! 5 minutes after `recv_ms` (radio clocks drift); a day that exists in neither month is
//! refused as `BadFrame`.
//!
//! # Other refusals
//!
//! Latitude and longitude both exactly 0 (a radio with no position yet): `NoFix`.

use chrono::{Datelike, TimeZone, Utc};

use super::{DatagramProtocol, DeviceFix, FrameError, FrameErrorKind, each_line};

/// Longest line (ISSI, comma and hex) read, in bytes.
pub const MAX_LINE_LEN: usize = 256;

/// The LIP protocol identifier in front of the PDU in SDS type 4 user data.
const PROTOCOL_ID: u8 = 0x0A;
/// Octets of a short location report (76 bits and 4 fill bits).
const SHORT_REPORT_OCTETS: usize = 10;
/// The largest ISSI of a radio (`0xFFFFFF` is the all-call address).
const MAX_ISSI: u32 = 0x00FF_FFFE;
/// How far a time of position may be after the receive time (radio clock drift), ms.
const MAX_AHEAD_MS: i64 = 5 * 60 * 1000;
/// Five minutes, ms.
const FIVE_MIN_MS: i64 = 5 * 60 * 1000;

/// The LIP feed of a dispatch gateway: `<ISSI>,<hex>` lines (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct LipFeed;

impl DatagramProtocol for LipFeed {
    const NAME: &'static str = "lip";

    fn datagram(&self, bytes: &[u8], recv_ms: i64) -> Vec<Result<DeviceFix, FrameError>> {
        each_line(bytes, |line| decode_line(line, recv_ms))
    }
}

/// One `<ISSI>,<hex>` line.
fn decode_line(line: &[u8], recv_ms: i64) -> Result<DeviceFix, FrameError> {
    if line.len() > MAX_LINE_LEN {
        return Err(FrameError::bad(format!(
            "line of {} bytes, more than {MAX_LINE_LEN}",
            line.len()
        )));
    }
    let text = std::str::from_utf8(line)
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or_else(|| FrameError::bad("line is not ASCII"))?;
    let (issi, hex) = text
        .trim()
        .split_once(',')
        .ok_or_else(|| FrameError::bad("no comma between ISSI and hex"))?;
    let issi = parse_issi(issi.trim())?;
    let mut data = parse_hex(hex.trim())?;
    if data.first() == Some(&PROTOCOL_ID) && data.len() != SHORT_REPORT_OCTETS {
        data.remove(0);
    }
    let report = decode_pdu(&data)?;
    report.into_fix(issi.to_string(), recv_ms)
}

/// The ISSI: 1 to 8 digits, 1..=`MAX_ISSI`.
fn parse_issi(s: &str) -> Result<u32, FrameError> {
    if s.is_empty() || s.len() > 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FrameError::bad(format!("ISSI {s:?} is not 1 to 8 digits")));
    }
    s.parse::<u32>()
        .ok()
        .filter(|&i| (1..=MAX_ISSI).contains(&i))
        .ok_or_else(|| FrameError::bad(format!("ISSI {s} out of range 1..={MAX_ISSI}")))
}

/// Hex digits to octets.
fn parse_hex(s: &str) -> Result<Vec<u8>, FrameError> {
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return Err(FrameError::bad("hex is empty or of odd length"));
    }
    s.as_bytes()
        .chunks_exact(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| FrameError::bad("hex has a non-hex digit"))
        })
        .collect()
}

/// Reads bit fields, most significant bit first.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    /// The next `width` (at most 32) bits, or an error naming `field` if the PDU ends first.
    fn take(&mut self, width: usize, field: &str) -> Result<u32, FrameError> {
        let mut value: u32 = 0;
        for _ in 0..width {
            let byte = self
                .data
                .get(self.pos / 8)
                .ok_or_else(|| FrameError::bad(format!("PDU ends in its {field}")))?;
            let bit = (byte >> (7 - self.pos % 8)) & 1;
            value = (value << 1) | u32::from(bit);
            self.pos += 1;
        }
        Ok(value)
    }
}

/// A `width`-bit two's complement value.
fn signed(value: u32, width: u32) -> i64 {
    let v = i64::from(value);
    if value >> (width - 1) & 1 == 1 {
        v - (1i64 << width)
    } else {
        v
    }
}

/// When the position was taken, as the report tells it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum When {
    /// Time elapsed code (0: < 5 s, 1: < 5 min, 2: < 30 min, 3: not known).
    Elapsed(u32),
    /// Time of position, UTC: day of month, hour, minute, second.
    At {
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
    },
    /// No time data (long report).
    None,
}

/// A decoded location report.
#[derive(Debug, Clone, PartialEq)]
struct Report {
    when: When,
    lat: f64,
    lon: f64,
    /// Position error code, if the report has one.
    position_error: Option<u32>,
    /// Horizontal velocity code, if the report has one.
    velocity: Option<u32>,
    /// Direction of travel, degrees, if the report has one.
    direction: Option<f64>,
}

/// Decodes a LIP PDU (without the protocol identifier).
fn decode_pdu(data: &[u8]) -> Result<Report, FrameError> {
    let mut bits = Bits { data, pos: 0 };
    match bits.take(2, "PDU type")? {
        0 => short_report(data, &mut bits),
        1 => match bits.take(4, "PDU type extension")? {
            0b0011 => long_report(&mut bits),
            other => Err(FrameError {
                kind: FrameErrorKind::Unsupported,
                detail: format!("LIP PDU type extension {other:#06b} is not a location report"),
            }),
        },
        other => Err(FrameError::bad(format!(
            "reserved LIP PDU type {other:#04b}"
        ))),
    }
}

/// The rest of a short location report (after its PDU type).
fn short_report(data: &[u8], bits: &mut Bits<'_>) -> Result<Report, FrameError> {
    if data.len() != SHORT_REPORT_OCTETS {
        return Err(FrameError::bad(format!(
            "short location report of {} octets, not {SHORT_REPORT_OCTETS}",
            data.len()
        )));
    }
    let elapsed = bits.take(2, "time elapsed")?;
    let (lon, lat) = position(bits)?;
    let position_error = bits.take(3, "position error")?;
    let velocity = bits.take(7, "horizontal velocity")?;
    let direction = bits.take(4, "direction of travel")?;
    // Type of additional data and reason for sending / user defined data: not used.
    bits.take(9, "additional data")?;
    Ok(Report {
        when: When::Elapsed(elapsed),
        lat,
        lon,
        position_error: Some(position_error),
        velocity: Some(velocity),
        direction: Some(f64::from(direction) * 22.5),
    })
}

/// Longitude (25 bits) and latitude (24 bits), degrees.
fn position(bits: &mut Bits<'_>) -> Result<(f64, f64), FrameError> {
    let lon = signed(bits.take(25, "longitude")?, 25) as f64 * 360.0 / f64::from(1u32 << 25);
    let lat = signed(bits.take(24, "latitude")?, 24) as f64 * 180.0 / f64::from(1u32 << 24);
    Ok((lon, lat))
}

/// The rest of a long location report (after its PDU type and extension).
fn long_report(bits: &mut Bits<'_>) -> Result<Report, FrameError> {
    let when = match bits.take(2, "time type")? {
        0 => When::None,
        1 => When::Elapsed(bits.take(2, "time elapsed")?),
        2 => When::At {
            day: bits.take(5, "time of position")?,
            hour: bits.take(5, "time of position")?,
            minute: bits.take(6, "time of position")?,
            second: bits.take(6, "time of position")?,
        },
        _ => return Err(FrameError::bad("reserved time type")),
    };
    let shape = bits.take(4, "location shape")?;
    if shape == 0 {
        return Err(FrameError {
            kind: FrameErrorKind::NoFix,
            detail: "long location report with no location shape (no position)".into(),
        });
    }
    if shape > 0b1010 {
        return Err(FrameError::bad(format!(
            "reserved location shape {shape:#06b}"
        )));
    }
    let (lon, lat) = position(bits)?;
    let mut report = Report {
        when,
        lat,
        lon,
        position_error: None,
        velocity: None,
        direction: None,
    };
    // The shapes whose length is known here: point, point with uncertain circle (6-bit
    // horizontal position uncertainty, not used), point and position error.
    let velocity_follows = match shape {
        0b0001 => true,
        0b0010 => {
            bits.take(6, "horizontal position uncertainty")?;
            true
        }
        0b1010 => {
            report.position_error = Some(bits.take(3, "position error")?);
            true
        }
        _ => false,
    };
    if velocity_follows {
        let velocity_type = bits.take(3, "velocity type")?;
        if velocity_type != 0 {
            report.velocity = Some(bits.take(7, "horizontal velocity")?);
        }
        if velocity_type == 0b101 {
            let direction = bits.take(8, "direction of travel extended")?;
            report.direction = Some(f64::from(direction) * 360.0 / 256.0);
        }
    }
    Ok(report)
}

/// Km/h of a horizontal velocity code; `None` for 126 (> 1043 km/h) and 127 (unknown).
fn velocity_kmh(code: u32) -> Option<f64> {
    match code {
        0..=28 => Some(f64::from(code)),
        29..=125 => Some(16.0 * 1.038_f64.powf(f64::from(code) - 13.0)),
        _ => None,
    }
}

/// Metres of a position error code (its upper bound); `None` for 6 and 7.
fn position_error_m(code: u32) -> Option<f64> {
    match code {
        0 => Some(2.0),
        1 => Some(20.0),
        2 => Some(200.0),
        3 => Some(2_000.0),
        4 => Some(20_000.0),
        5 => Some(200_000.0),
        _ => None,
    }
}

/// The instant of a time of position, in the month of `recv_ms` or the one before.
fn time_of_position(
    recv_ms: i64,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
) -> Result<i64, FrameError> {
    let bad = || {
        FrameError::bad(format!(
            "time of position day {day} {hour:02}:{minute:02}:{second:02} is not a recent UTC time"
        ))
    };
    let recv = Utc.timestamp_millis_opt(recv_ms).single().ok_or_else(bad)?;
    let (mut year, mut month) = (recv.year(), recv.month());
    for _ in 0..2 {
        if let Some(t) = Utc
            .with_ymd_and_hms(year, month, day, hour, minute, second)
            .single()
        {
            let ms = t.timestamp_millis();
            if ms <= recv_ms.saturating_add(MAX_AHEAD_MS) {
                return Ok(ms);
            }
        }
        (year, month) = if month == 1 {
            (year - 1, 12)
        } else {
            (year, month - 1)
        };
    }
    Err(bad())
}

impl Report {
    /// The fix of radio `device`, received at `recv_ms`, or why it is refused.
    fn into_fix(self, device: String, recv_ms: i64) -> Result<DeviceFix, FrameError> {
        let no_fix = |detail: String| FrameError {
            kind: FrameErrorKind::NoFix,
            detail,
        };
        if self.lat == 0.0 && self.lon == 0.0 {
            return Err(no_fix("latitude and longitude 0: no position".into()));
        }
        let time_ms = match self.when {
            When::Elapsed(0) => recv_ms,
            When::Elapsed(1) => recv_ms.saturating_sub(FIVE_MIN_MS),
            When::Elapsed(2) => return Err(no_fix("position up to 30 min old".into())),
            When::Elapsed(_) | When::None => {
                return Err(no_fix("position of unknown age".into()));
            }
            When::At {
                day,
                hour,
                minute,
                second,
            } => time_of_position(recv_ms, day, hour, minute, second)?,
        };
        if self.position_error == Some(6) {
            return Err(no_fix("position error more than 200 km".into()));
        }
        let speed_kmh = self.velocity.and_then(velocity_kmh);
        let moving = speed_kmh.is_some_and(|v| v > 0.0);
        Ok(DeviceFix {
            device,
            time_ms,
            lat: self.lat,
            lon: self.lon,
            speed_kmh,
            course_deg: self.direction.filter(|_| moving),
            alt_m: None,
            acc_m: self.position_error.and_then(position_error_m),
            batt_pct: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::device::lip as radio;

    /// 2026-03-01T00:02:00Z.
    const RECV: i64 = 1_772_323_320_000;

    fn one(line: &str) -> Result<DeviceFix, FrameError> {
        let mut out = LipFeed.datagram(line.as_bytes(), RECV);
        assert_eq!(out.len(), 1, "{line}");
        out.pop().unwrap_or_else(|| Err(FrameError::bad("none")))
    }

    fn kind(line: &str) -> Option<FrameErrorKind> {
        one(line).err().map(|e| e.kind)
    }

    fn fix(time_ms: i64, lat: f64, lon: f64) -> DeviceFix {
        DeviceFix {
            device: "2001234".into(),
            time_ms,
            lat,
            lon,
            speed_kmh: Some(50.0),
            course_deg: Some(90.0),
            alt_m: None,
            acc_m: Some(15.0),
            batt_pct: None,
        }
    }

    /// A real short location report from a Sepura radio, with the protocol identifier, posted
    /// in the RadioReference forum thread "Sepura SDS LIP" (forums.radioreference.com, thread
    /// 345360, 2016); the poster's AVL log shows 52.37570 16.23886 (Poznań).
    const SEPURA: &str = "0A00B8C31A53EB496D6200";

    #[test]
    fn real_short_report_decodes_exactly() {
        let f = one(&format!("2001234,{SEPURA}"));
        let Ok(f) = f else { panic!("{f:?}") };
        assert_eq!(f.device, "2001234");
        assert_eq!(f.time_ms, RECV); // time elapsed "< 5 s"
        assert_eq!(f.lat, 52.375_699_281_692_505);
        assert_eq!(f.lon, 16.238_855_123_519_897);
        assert_eq!(f.acc_m, Some(20.0)); // position error code 1: < 20 m
        let speed = f.speed_kmh.unwrap_or_default(); // velocity code 54
        assert!((speed - 73.826_363).abs() < 1e-5, "{speed}");
        assert_eq!(f.course_deg, Some(247.5)); // direction 11: WSW
        assert_eq!((f.alt_m, f.batt_pct), (None, None));
        // The same PDU without the protocol identifier, lower case hex, leading zeros.
        let g = one(&format!(
            "02001234,{}",
            SEPURA.get(2..).unwrap_or_default().to_lowercase()
        ));
        assert_eq!(g, Ok(f));
    }

    /// The latitude and longitude worked examples in tetra-kit's LIP decoder comments
    /// (github.com/Sphinx111/Tetra-Build-1, decoder/cmce_sds_lip.cc): latitude `0xCA1959` is
    /// -37.899131, longitude `0x0CE6C98` is 145.142012; packed here in a short report with
    /// position error 2 (< 200 m) and velocity 0.
    #[test]
    fn worked_example_coordinates_in_the_southern_hemisphere() {
        let f = one("9,067364C650CACA000000");
        let Ok(f) = f else { panic!("{f:?}") };
        assert!((f.lat - -37.899_131).abs() < 1e-6, "{}", f.lat);
        assert!((f.lon - 145.142_012).abs() < 1e-6, "{}", f.lon);
        assert_eq!(
            (f.speed_kmh, f.course_deg, f.acc_m),
            (Some(0.0), None, Some(200.0))
        );
        assert_eq!(f.device, "9");
    }

    #[test]
    fn time_elapsed_policy() {
        let f = fix(RECV, 48.2, 16.37);
        assert_eq!(
            one(&radio::short_report(7, &f, 0)).map(|f| f.time_ms),
            Ok(RECV)
        );
        assert_eq!(
            one(&radio::short_report(7, &f, 1)).map(|f| f.time_ms),
            Ok(RECV - 300_000)
        );
        assert_eq!(
            kind(&radio::short_report(7, &f, 2)),
            Some(FrameErrorKind::NoFix)
        );
        assert_eq!(
            kind(&radio::short_report(7, &f, 3)),
            Some(FrameErrorKind::NoFix)
        );
    }

    #[test]
    fn velocity_encoding_is_non_linear() {
        assert_eq!(velocity_kmh(0), Some(0.0));
        assert_eq!(velocity_kmh(28), Some(28.0));
        assert!(velocity_kmh(29).is_some_and(|v| (v - 29.06).abs() < 0.01));
        assert!(velocity_kmh(125).is_some_and(|v| (v - 1042.85).abs() < 0.01));
        assert_eq!(velocity_kmh(126), None);
        assert_eq!(velocity_kmh(127), None);
    }

    #[test]
    fn short_report_round_trip() {
        for (lat, lon, speed, course) in [
            (48.2082, 16.3738, 50.0, 90.0),
            (-33.8688, 151.2093, 12.0, 337.5),
            (64.1, -21.9, 120.0, 180.0),
        ] {
            let mut f = fix(RECV, lat, lon);
            f.speed_kmh = Some(speed);
            f.course_deg = Some(course);
            let got = one(&radio::short_report(2_001_234, &f, 0));
            let Ok(got) = got else { panic!("{got:?}") };
            assert!((got.lat - lat).abs() < 180.0 / f64::from(1u32 << 24));
            assert!((got.lon - lon).abs() < 360.0 / f64::from(1u32 << 25));
            assert!(
                got.speed_kmh
                    .is_some_and(|v| (v - speed).abs() <= speed * 0.02 + 0.5)
            );
            assert_eq!(got.course_deg, Some(course));
            assert_eq!(got.acc_m, Some(20.0));
            assert_eq!(got.device, "2001234");
        }
    }

    #[test]
    fn long_report_round_trip_across_a_month_boundary() {
        // 2026-02-28T23:59:50Z, received two minutes later on 1 March.
        let f = fix(1_772_323_190_000, 51.5007, -0.1246);
        let got = one(&radio::long_report(2_001_234, &f));
        let Ok(got) = got else { panic!("{got:?}") };
        assert_eq!(got.time_ms, 1_772_323_190_000);
        assert!((got.lat - 51.5007).abs() < 1e-5 && (got.lon - -0.1246).abs() < 1e-5);
        assert_eq!(got.acc_m, Some(20.0));
        assert!(got.speed_kmh.is_some_and(|v| (v - 50.0).abs() < 1.5));
        assert_eq!(got.course_deg, Some(90.0));
        // A time of position 10 minutes after the receive time is last month's.
        let ahead = fix(RECV + 600_000, 51.5, -0.12);
        let got = one(&radio::long_report(1, &ahead)).map(|f| f.time_ms);
        assert_eq!(got, Ok(RECV + 600_000 - 28 * 86_400_000)); // February has 28 days
    }

    #[test]
    fn long_report_day_that_exists_in_neither_month_is_refused() {
        // Day 30 received on 1 March: no 30 February, 30 March is ahead.
        let f = fix(1_772_323_190_000 + 86_400_000 * 30, 51.5, -0.12); // a 30th of March
        assert_eq!(
            kind(&radio::long_report(1, &f)),
            Some(FrameErrorKind::BadFrame)
        );
    }

    #[test]
    fn refusals() {
        use FrameErrorKind::{BadFrame, NoFix, Unsupported};
        let f = fix(RECV, 48.2, 16.37);
        let good = radio::short_report(5, &f, 0);
        let hex = good
            .split_once(',')
            .map(|(_, h)| h.to_owned())
            .unwrap_or_default();
        for (line, want) in [
            (format!("0,{hex}"), BadFrame),
            (format!("16777215,{hex}"), BadFrame),
            (format!("123456789,{hex}"), BadFrame),
            (format!("12a,{hex}"), BadFrame),
            (hex.clone(), BadFrame),
            (
                format!("5,{}", hex.get(..hex.len() - 1).unwrap_or_default()),
                BadFrame,
            ),
            (format!("5,{}", hex.replace('0', "G")), BadFrame),
            (
                format!("5,{}", hex.get(..hex.len() - 4).unwrap_or_default()),
                BadFrame,
            ),
            (format!("5,{hex}00"), BadFrame),
            ("5,0A80000000000000000000".into(), BadFrame), // reserved PDU type 10
            ("5,0A5000".into(), Unsupported),              // location report acknowledgement
            ("5,0A4C".into(), BadFrame),                   // long report cut short
            ("5,0A4D00".into(), NoFix),                    // long report, no shape
            (format!("5,{}", "0".repeat(300)), BadFrame),
            ("5,0A00000000000000000000".into(), NoFix), // lat/lon 0
        ] {
            assert_eq!(kind(&line), Some(want), "{line}");
        }
        let mut far = f.clone();
        far.acc_m = Some(300_000.0);
        assert_eq!(kind(&radio::short_report(5, &far, 0)), Some(NoFix));
        assert_eq!(kind("5,\u{e9}"), Some(BadFrame));
    }

    #[test]
    fn ten_octets_starting_with_0a_are_a_pdu_alone() {
        // Time elapsed 0, longitude bits 1010 0... : -135 degrees, latitude 0x400000: 45.
        let f = one("5,0A000002000007000000");
        assert_eq!(f.map(|f| (f.lon, f.lat)), Ok((-135.0, 45.0)));
    }

    #[test]
    fn datagram_lines() {
        let f = fix(RECV, 48.2, 16.37);
        let text = format!(
            "{}\r\n{}\n\n",
            radio::short_report(1, &f, 0),
            radio::short_report(2, &f, 3)
        );
        let out = LipFeed.datagram(text.as_bytes(), RECV);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].as_ref().map(|f| f.device.as_str()), Ok("1"));
        assert_eq!(
            out[1].as_ref().err().map(|e| e.kind),
            Some(FrameErrorKind::NoFix)
        );
        let empty = LipFeed.datagram(b"\r\n", RECV);
        assert_eq!(empty.len(), 1);
        assert!(empty[0].is_err());
    }
}
