//! NMEA 0183 position sentences (RMC and GGA) from a radio dispatch gateway, one per UDP
//! datagram or per line of a TCP feed.
//!
//! # Framing (this server's choice)
//!
//! A bare NMEA sentence does not say which radio or vehicle it is from, so the gateway is
//! configured to put the device id in front, as ASCII:
//!
//! ```text
//! <device id>,<NMEA sentence>
//! 2001234,$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A
//! ```
//!
//! - Device id: 1 to [`MAX_DEVICE_LEN`] characters of `A-Z a-z 0-9 - _ .`, kept as sent
//!   ([`DeviceFix::device`]).
//! - The sentence: `$`, address field, data fields, `*` and the two hex digits of the
//!   checksum (XOR of every byte between `$` and `*`). The checksum is required and verified.
//!   At most 102 characters (the `nmea` crate's limit; the standard says 82 with CR LF).
//! - A datagram may hold several lines separated by `\n` (a trailing `\r` is ignored); each
//!   gives one result.
//!
//! # Sentences covered
//!
//! Talkers `GP` (GPS), `GN` (multi-GNSS), `GL` (GLONASS), `BD` and `GB` (BeiDou), `GA`
//! (Galileo); sentences:
//! - RMC (NMEA 2.x to 4.1 forms): time and date, status, latitude, longitude, speed over
//!   ground, course over ground, and the mode indicator when present.
//! - GGA: time, latitude, longitude, fix quality, altitude above mean sea level.
//!
//! A well-formed sentence of another type (GSA, GSV, VTG, GLL, ZDA, TXT, proprietary `$P...`)
//! or of another talker is refused as [`FrameErrorKind::Unsupported`].
//!
//! # Fixes and refusals
//!
//! - No fix ([`FrameErrorKind::NoFix`]): RMC status `V`, or mode indicator `N` (not valid),
//!   `E` (dead reckoning), `M` (manual input), `S` (simulator) or `U` (unsafe); GGA fix quality 0, 6
//!   (estimated), 7 (manual) or 8 (simulation); a sentence with empty latitude/longitude.
//! - Units: speed knots × 1.852 = km/h; course degrees true; altitude metres above mean sea
//!   level (GGA). No accuracy (HDOP is not a distance) and no battery.
//! - Latitude/longitude are checked field by field (`ddmm.mmm` / `dddmm.mmm`, minutes below
//!   60, within ±90 / ±180) before the `nmea` crate reads them, since its number parser also
//!   takes signs, exponents and `nan`.
//!
//! # Time
//!
//! - RMC: its own UTC time and date (two-digit years 83..99 are 19xx, else 20xx). A fix more
//!   than 1 day after `recv_ms` or more than 30 days before it is refused as `BadFrame` (a
//!   receiver whose clock or GPS week number is wrong).
//! - GGA has only the time of day: the date is that of `recv_ms` in UTC, or the day before or
//!   after, whichever puts the fix nearest to `recv_ms`; so a time more than 12 h ahead of
//!   the receive time is yesterday's (a fix from 23:59:58 received at 00:00:01), and one more
//!   than 12 h behind is tomorrow's (a receive clock slightly late at midnight).
//!
//! # The `nmea` crate
//!
//! Field parsing is done by the `nmea` crate (0.8, AeroRust, MIT/Apache-2.0), built with only
//! its `RMC` and `GGA` features and without `std`. Reviewed: it requires and verifies the
//! checksum, bounds the sentence length, rejects non-ASCII, checks time and date ranges, and
//! parses with `nom` on slices (no panicking index on input). Its quirks are handled here: it
//! accepts any two characters as talker and ignores what follows the checksum (this module
//! checks the envelope itself first), and its float parser accepts signs, exponents, `inf` and
//! `nan` in coordinates, speed and course (this module checks those fields first).

use chrono::{NaiveDate, NaiveTime, TimeDelta, Timelike};
use nmea::sentences::rmc::RmcStatusOfFix;
use nmea::sentences::{FaaMode, FixType};
use nmea::{ParseResult, parse_str};

use super::{DatagramProtocol, DeviceFix, FrameError, FrameErrorKind, each_line};

/// Longest device id.
pub const MAX_DEVICE_LEN: usize = 32;
/// Longest sentence, `$` to checksum (the `nmea` crate's limit).
const MAX_SENTENCE_LEN: usize = 102;
/// Talkers accepted.
const TALKERS: [&str; 6] = ["GP", "GN", "GL", "BD", "GB", "GA"];
/// Knots to km/h.
const KMH_PER_KNOT: f64 = 1.852;
/// How far an RMC fix may be after the receive time, ms.
const MAX_AHEAD_MS: i64 = 86_400_000;
/// How far an RMC fix may be before the receive time, ms.
const MAX_BEHIND_MS: i64 = 30 * 86_400_000;

/// The NMEA feed of a dispatch gateway: `<device id>,<sentence>` lines (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct NmeaFeed;

impl DatagramProtocol for NmeaFeed {
    const NAME: &'static str = "nmea";

    fn datagram(&self, bytes: &[u8], recv_ms: i64) -> Vec<Result<DeviceFix, FrameError>> {
        each_line(bytes, |line| decode_line(line, recv_ms))
    }
}

/// A [`FrameErrorKind::NoFix`] refusal.
fn no_fix(detail: impl Into<String>) -> FrameError {
    FrameError {
        kind: FrameErrorKind::NoFix,
        detail: detail.into(),
    }
}

/// An [`FrameErrorKind::Unsupported`] refusal.
fn unsupported(detail: impl Into<String>) -> FrameError {
    FrameError {
        kind: FrameErrorKind::Unsupported,
        detail: detail.into(),
    }
}

/// One `<device id>,<sentence>` line.
fn decode_line(line: &[u8], recv_ms: i64) -> Result<DeviceFix, FrameError> {
    if line.len() > MAX_DEVICE_LEN + 1 + MAX_SENTENCE_LEN {
        return Err(FrameError::bad(format!(
            "line of {} bytes is too long",
            line.len()
        )));
    }
    let text = std::str::from_utf8(line)
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or_else(|| FrameError::bad("line is not ASCII"))?
        .trim();
    let (device, sentence) = text
        .split_once(',')
        .ok_or_else(|| FrameError::bad("no comma after the device id"))?;
    let device_ok = !device.is_empty()
        && device.len() <= MAX_DEVICE_LEN
        && device
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !device_ok {
        return Err(FrameError::bad(format!(
            "device id {device:?} is not 1 to 32 of A-Za-z0-9-_."
        )));
    }
    let body = envelope(sentence)?;
    let fields: Vec<&str> = body.split(',').collect();
    let address = fields.first().copied().unwrap_or_default();
    let (talker, kind) = (
        address.get(..2).unwrap_or(address),
        address.get(2..).unwrap_or(""),
    );
    if address.starts_with('P') {
        return Err(unsupported(format!("proprietary sentence {address}")));
    }
    if !TALKERS.contains(&talker) || !matches!(kind, "RMC" | "GGA") {
        return Err(unsupported(format!("{address} sentence is not used")));
    }
    // Field positions of the time, latitude, longitude and (RMC) speed and course.
    let (lat_at, numbers): (usize, &[usize]) = if kind == "RMC" {
        (3, &[7, 8])
    } else {
        (2, &[])
    };
    check_time(fields.get(1).copied().unwrap_or_default())?;
    check_coordinate(
        fields.get(lat_at).copied().unwrap_or_default(),
        2,
        "latitude",
    )?;
    check_coordinate(
        fields.get(lat_at + 2).copied().unwrap_or_default(),
        3,
        "longitude",
    )?;
    for &i in numbers {
        let field = fields.get(i).copied().unwrap_or_default();
        if !field.is_empty() && !is_decimal(field) {
            return Err(FrameError::bad(format!(
                "field {i} {field:?} is not a decimal number"
            )));
        }
    }
    let parsed = parse_str(sentence).map_err(|e| FrameError::bad(format!("{address}: {e}")))?;
    match parsed {
        ParseResult::RMC(rmc) => {
            if rmc.status_of_fix == RmcStatusOfFix::Invalid {
                return Err(no_fix("RMC status V: no valid fix"));
            }
            check_mode(rmc.faa_mode)?;
            let (Some(lat), Some(lon)) = (rmc.lat, rmc.lon) else {
                return Err(no_fix("RMC without a position"));
            };
            let (Some(date), Some(time)) = (rmc.fix_date, rmc.fix_time) else {
                return Err(FrameError::bad("RMC without a date or time"));
            };
            let time_ms = date.and_time(time).and_utc().timestamp_millis();
            if time_ms > recv_ms.saturating_add(MAX_AHEAD_MS)
                || time_ms < recv_ms.saturating_sub(MAX_BEHIND_MS)
            {
                return Err(FrameError::bad(format!(
                    "RMC time {date} {time} is too far from the receive time"
                )));
            }
            let speed_kmh = rmc.speed_over_ground.map(|k| f64::from(k) * KMH_PER_KNOT);
            let course_deg = rmc.true_course.map(f64::from);
            if course_deg.is_some_and(|c| !(0.0..=360.0).contains(&c)) {
                return Err(FrameError::bad("course beyond 360 degrees"));
            }
            fix(device, time_ms, lat, lon, speed_kmh, course_deg, None)
        }
        ParseResult::GGA(gga) => {
            match gga.fix_type {
                Some(
                    FixType::Gps | FixType::DGps | FixType::Pps | FixType::Rtk | FixType::FloatRtk,
                ) => {}
                other => return Err(no_fix(format!("GGA fix quality {other:?}: no valid fix"))),
            }
            let (Some(lat), Some(lon)) = (gga.latitude, gga.longitude) else {
                return Err(no_fix("GGA without a position"));
            };
            let time = gga
                .fix_time
                .ok_or_else(|| FrameError::bad("GGA without a time"))?;
            let time_ms = nearest_day(recv_ms, time)?;
            let alt = gga.altitude.map(f64::from).filter(|a| a.is_finite());
            fix(device, time_ms, lat, lon, None, None, alt)
        }
        _ => Err(unsupported(format!("{address} sentence is not used"))),
    }
}

/// Checks the `$...*hh` envelope of `sentence` and returns what lies between `$` and `*`.
fn envelope(sentence: &str) -> Result<&str, FrameError> {
    if sentence.len() > MAX_SENTENCE_LEN {
        return Err(FrameError::bad(format!(
            "sentence of {} characters, more than {MAX_SENTENCE_LEN}",
            sentence.len()
        )));
    }
    let rest = sentence
        .strip_prefix('$')
        .ok_or_else(|| FrameError::bad("sentence does not start with $"))?;
    let (body, sum) = rest
        .rsplit_once('*')
        .ok_or_else(|| FrameError::bad("sentence has no checksum"))?;
    let given = (sum.len() == 2)
        .then(|| u8::from_str_radix(sum, 16).ok())
        .flatten()
        .ok_or_else(|| FrameError::bad(format!("checksum {sum:?} is not two hex digits")))?;
    let computed = body.bytes().fold(0u8, |acc, b| acc ^ b);
    if given != computed {
        return Err(FrameError::bad(format!(
            "checksum mismatch: sentence says {given:02X}, computed {computed:02X}"
        )));
    }
    if body.contains(['$', '*']) {
        return Err(FrameError::bad("$ or * inside the sentence"));
    }
    Ok(body)
}

/// Digits with at most one `.` and at least one digit.
fn is_decimal(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && s.bytes().filter(|&b| b == b'.').count() <= 1
}

/// A time field: empty, or `hhmmss` with an optional decimal fraction.
fn check_time(field: &str) -> Result<(), FrameError> {
    let ok = field.is_empty()
        || (field.len() >= 6
            && field
                .get(..6)
                .is_some_and(|hms| hms.bytes().all(|b| b.is_ascii_digit()))
            && field.get(6..).is_some_and(|frac| {
                frac.is_empty()
                    || frac
                        .strip_prefix('.')
                        .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()))
            }));
    if ok {
        Ok(())
    } else {
        Err(FrameError::bad(format!(
            "time field {field:?} is not hhmmss.ss"
        )))
    }
}

/// A coordinate field: empty, or `deg_digits` of degrees and minutes below 60.
fn check_coordinate(field: &str, deg_digits: usize, name: &str) -> Result<(), FrameError> {
    if field.is_empty() {
        return Ok(());
    }
    let bad = || FrameError::bad(format!("{name} field {field:?} is not (d)ddmm.mmm"));
    let minutes = field.get(deg_digits..).ok_or_else(bad)?;
    let degrees = field.get(..deg_digits).ok_or_else(bad)?;
    if !degrees.bytes().all(|b| b.is_ascii_digit())
        || !is_decimal(minutes)
        || minutes.split('.').next().map(str::len) != Some(2)
    {
        return Err(bad());
    }
    let (deg, min) = (
        degrees.parse::<u32>().map_err(|_| bad())?,
        minutes.parse::<f64>().map_err(|_| bad())?,
    );
    let limit = if deg_digits == 2 { 90 } else { 180 };
    if min >= 60.0 || deg > limit || (deg == limit && min > 0.0) {
        return Err(bad());
    }
    Ok(())
}

/// Refuses an RMC mode indicator that is not a fix.
fn check_mode(mode: Option<FaaMode>) -> Result<(), FrameError> {
    match mode {
        Some(
            m @ (FaaMode::DataNotValid
            | FaaMode::Estimated
            | FaaMode::Manual
            | FaaMode::Simulator
            | FaaMode::Unsafe),
        ) => Err(no_fix(format!("RMC mode {m:?}: no valid fix"))),
        _ => Ok(()),
    }
}

/// The instant with time of day `time` nearest to `recv_ms` (on its UTC day, the day before
/// or the day after).
fn nearest_day(recv_ms: i64, time: NaiveTime) -> Result<i64, FrameError> {
    let recv = chrono::DateTime::from_timestamp_millis(recv_ms)
        .ok_or_else(|| FrameError::bad("receive time out of range"))?;
    let day: NaiveDate = recv.date_naive();
    let time = time
        .with_nanosecond(time.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(time);
    [-1i64, 0, 1]
        .iter()
        .filter_map(|&d| day.checked_add_signed(TimeDelta::days(d)))
        .map(|d| d.and_time(time).and_utc().timestamp_millis())
        .min_by_key(|&t| (t - recv_ms).abs())
        .ok_or_else(|| FrameError::bad("receive date out of range"))
}

/// A fix, after a last range check of the position.
fn fix(
    device: &str,
    time_ms: i64,
    lat: f64,
    lon: f64,
    speed_kmh: Option<f64>,
    course_deg: Option<f64>,
    alt_m: Option<f64>,
) -> Result<DeviceFix, FrameError> {
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(FrameError::bad(format!(
            "position out of range: {lat} {lon}"
        )));
    }
    if speed_kmh.is_some_and(|s| !s.is_finite() || s < 0.0) {
        return Err(FrameError::bad("speed is not a finite positive number"));
    }
    Ok(DeviceFix {
        device: device.to_owned(),
        time_ms,
        lat,
        lon,
        speed_kmh,
        course_deg,
        alt_m,
        acc_m: None,
        batt_pct: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::device::nmea as radio;

    fn one(line: &str, recv_ms: i64) -> Result<DeviceFix, FrameError> {
        let mut out = NmeaFeed.datagram(line.as_bytes(), recv_ms);
        assert_eq!(out.len(), 1, "{line}");
        out.pop().unwrap_or_else(|| Err(FrameError::bad("none")))
    }

    fn kind(line: &str, recv_ms: i64) -> Option<FrameErrorKind> {
        one(line, recv_ms).err().map(|e| e.kind)
    }

    fn close(a: f64, b: f64, eps: f64) -> bool {
        (a - b).abs() < eps
    }

    // The classic RMC and GGA examples of the NMEA 0183 reference pages by Glenn Baddeley and
    // Dale DePriest (gpsinformation.org), quoted by gpsd's "NMEA Revealed"; checksums verified.
    const CLASSIC_RMC: &str =
        "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A";
    const CLASSIC_GGA: &str = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47";
    /// 1994-03-23T12:35:19Z.
    const CLASSIC_TIME: i64 = 764_426_119_000;
    // u-blox receiver description (u-blox 6/M8 protocol specification), RMC example.
    const UBLOX_RMC: &str =
        "$GPRMC,083559.00,A,4717.11437,N,00833.91522,E,0.004,77.52,091202,,,A*57";
    // gpsd, "NMEA Revealed" (gpsd.io/NMEA.html), RMC and GGA examples from a multi-GNSS
    // receiver (BSD-2-Clause project documentation).
    const GPSD_RMC: &str = "$GNRMC,001031.00,A,4404.13993,N,12118.86023,W,0.146,,100117,,,A*7B";
    const GPSD_GGA: &str =
        "$GNGGA,001043.00,4404.14036,N,12118.85961,W,1,12,0.98,1113.0,M,-21.3,M,,*47";
    // A GGA without fix, as receivers send before the first fix (checksum verified).
    const NO_FIX_GGA: &str = "$GPGGA,000049.799,,,,,0,00,,,M,,M,,*72";

    #[test]
    fn classic_rmc_decodes_exactly() {
        let f = one(&format!("2001234,{CLASSIC_RMC}"), CLASSIC_TIME + 2_000);
        let Ok(f) = f else { panic!("{f:?}") };
        assert_eq!(f.device, "2001234");
        assert_eq!(f.time_ms, CLASSIC_TIME);
        assert!(
            close(f.lat, 48.0 + 7.038 / 60.0, 1e-12) && close(f.lon, 11.0 + 31.0 / 60.0, 1e-12)
        );
        assert!(
            f.speed_kmh.is_some_and(|v| close(v, 22.4 * 1.852, 1e-4)),
            "{:?}",
            f.speed_kmh
        );
        assert!(f.course_deg.is_some_and(|c| close(c, 84.4, 1e-4)));
        assert_eq!((f.alt_m, f.acc_m, f.batt_pct), (None, None, None));
    }

    #[test]
    fn classic_gga_decodes_with_the_receive_date() {
        let f = one(&format!("unit-7,{CLASSIC_GGA}"), CLASSIC_TIME + 300_000);
        let Ok(f) = f else { panic!("{f:?}") };
        assert_eq!((f.device.as_str(), f.time_ms), ("unit-7", CLASSIC_TIME));
        assert!(close(f.lat, 48.1173, 1e-9) && close(f.lon, 11.516_666_666, 1e-8));
        assert!(f.alt_m.is_some_and(|a| close(a, 545.4, 1e-4)));
        assert_eq!((f.speed_kmh, f.course_deg), (None, None));
    }

    #[test]
    fn ublox_and_gpsd_examples() {
        let f = one(&format!("1,{UBLOX_RMC}"), 1_039_422_960_000);
        let Ok(f) = f else { panic!("{f:?}") };
        assert_eq!(f.time_ms, 1_039_422_959_000); // 2002-12-09T08:35:59Z
        assert!(
            close(f.lat, 47.0 + 17.11437 / 60.0, 1e-12)
                && close(f.lon, 8.0 + 33.91522 / 60.0, 1e-12)
        );
        assert!(f.course_deg.is_some_and(|c| close(c, 77.52, 1e-4)));

        let g = one(&format!("1,{GPSD_RMC}"), 1_484_007_040_000);
        let Ok(g) = g else { panic!("{g:?}") };
        assert_eq!(g.time_ms, 1_484_007_031_000); // 2017-01-10T00:10:31Z
        assert!(close(g.lat, 44.0 + 4.13993 / 60.0, 1e-12));
        assert!(close(g.lon, -(121.0 + 18.86023 / 60.0), 1e-12));
        assert!(g.speed_kmh.is_some_and(|v| close(v, 0.146 * 1.852, 1e-5)));
        assert_eq!(g.course_deg, None);
    }

    #[test]
    fn gga_time_takes_the_nearest_day() {
        // Fix at 00:10:43; receive clock late, still on 9 January at 23:59:50: next day's.
        let late_recv = 1_484_006_390_000; // 2017-01-09T23:59:50Z
        assert_eq!(
            one(&format!("1,{GPSD_GGA}"), late_recv).map(|f| f.time_ms),
            Ok(1_484_007_043_000)
        );
        // The same fix received at 00:11:00 on the 10th.
        assert_eq!(
            one(&format!("1,{GPSD_GGA}"), 1_484_007_060_000).map(|f| f.time_ms),
            Ok(1_484_007_043_000)
        );
        // A fix at 23:59:58 received at 00:00:01 the next day is yesterday's.
        let fix_ms = 1_772_323_198_000; // 2026-02-28T23:59:58Z
        let f = DeviceFix {
            time_ms: fix_ms,
            ..sample(48.2, 16.37)
        };
        assert_eq!(
            one(&radio::gga_line("1", &f), fix_ms + 3_000).map(|f| f.time_ms),
            Ok(fix_ms)
        );
    }

    #[test]
    fn no_fix_sentences() {
        let recv = 1_700_000_000_000;
        assert_eq!(
            kind(&format!("1,{NO_FIX_GGA}"), recv),
            Some(FrameErrorKind::NoFix)
        );
        let v = radio::sentence("GPRMC,123519,V,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W");
        assert_eq!(
            kind(&format!("1,{v}"), CLASSIC_TIME),
            Some(FrameErrorKind::NoFix)
        );
        let n = radio::sentence("GNRMC,001031.00,A,4404.13993,N,12118.86023,W,0.146,,100117,,,N");
        assert_eq!(
            kind(&format!("1,{n}"), 1_484_007_040_000),
            Some(FrameErrorKind::NoFix)
        );
        let e = radio::sentence(
            "GNGGA,001043.00,4404.14036,N,12118.85961,W,6,12,0.98,1113.0,M,-21.3,M,,",
        );
        assert_eq!(
            kind(&format!("1,{e}"), 1_484_007_040_000),
            Some(FrameErrorKind::NoFix)
        );
        let empty = radio::sentence("GPRMC,123519,A,,,,,022.4,084.4,230394,003.1,W");
        assert_eq!(
            kind(&format!("1,{empty}"), CLASSIC_TIME),
            Some(FrameErrorKind::NoFix)
        );
    }

    #[test]
    fn refusals() {
        use FrameErrorKind::{BadFrame, Unsupported};
        let recv = CLASSIC_TIME;
        let body = |s: &str| format!("1,{}", radio::sentence(s));
        for (line, want) in [
            (format!("1,{}", CLASSIC_RMC.replace("*6A", "*6B")), BadFrame),
            (format!("1,{}", CLASSIC_RMC.replace("*6A", "")), BadFrame),
            (format!("1,{}", CLASSIC_RMC.replace("*6A", "*6")), BadFrame),
            (
                format!("1,{}", CLASSIC_RMC.replace("4807.038", "4807.039")),
                BadFrame,
            ),
            (CLASSIC_RMC.to_owned(), BadFrame),
            (format!("1,{}", CLASSIC_RMC.replace('$', "")), BadFrame),
            (format!("bad id!,{CLASSIC_RMC}"), BadFrame),
            (format!("{},{CLASSIC_RMC}", "x".repeat(33)), BadFrame),
            (format!("1,{CLASSIC_RMC}{}", "0".repeat(40)), BadFrame),
            (format!("1,{}", &CLASSIC_RMC[..30]), BadFrame),
            (
                body("GPRMC,123519,A,4860.000,N,01131.000,E,022.4,084.4,230394,003.1,W"),
                BadFrame,
            ),
            (
                body("GPRMC,123519,A,9107.038,N,01131.000,E,022.4,084.4,230394,003.1,W"),
                BadFrame,
            ),
            (
                body("GPRMC,123519,A,48nan,N,01131.000,E,022.4,084.4,230394,003.1,W"),
                BadFrame,
            ),
            (
                body("GPRMC,123519,A,-807.038,N,01131.000,E,022.4,084.4,230394,003.1,W"),
                BadFrame,
            ),
            (
                body("GPRMC,123519,A,4807.038,N,01131.000,E,1e3,084.4,230394,003.1,W"),
                BadFrame,
            ),
            (
                body("GPRMC,123519,A,4807.038,N,01131.000,E,-2.0,084.4,230394,003.1,W"),
                BadFrame,
            ),
            (
                body("GPRMC,12nan9,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W"),
                BadFrame,
            ),
            (
                body("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,320394,003.1,W"),
                BadFrame,
            ),
            (
                body("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,400.0,230394,003.1,W"),
                BadFrame,
            ),
            (
                body("GPGSV,3,1,10,23,38,230,44,29,71,156,47,07,29,116,41,08,09,081,36"),
                Unsupported,
            ),
            (
                body("IIRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W"),
                Unsupported,
            ),
            (
                body("PUBX,00,081350.00,4717.113210,N,00833.915187,E"),
                Unsupported,
            ),
            ("1,$GPRMC\u{e9}*00".to_owned(), BadFrame),
        ] {
            assert_eq!(kind(&line, recv), Some(want), "{line}");
        }
        // A good RMC received 30 years later: its time is implausible.
        assert_eq!(
            kind(&format!("1,{CLASSIC_RMC}"), 1_700_000_000_000),
            Some(BadFrame)
        );
    }

    fn sample(lat: f64, lon: f64) -> DeviceFix {
        DeviceFix {
            device: "2001234".into(),
            time_ms: 1_772_323_190_250,
            lat,
            lon,
            speed_kmh: Some(63.5),
            course_deg: Some(271.3),
            alt_m: Some(-3.5),
            acc_m: None,
            batt_pct: None,
        }
    }

    #[test]
    fn round_trip_through_the_encoders() {
        for (lat, lon) in [
            (48.208_2, 16.373_8),
            (-33.868_8, 151.209_3),
            (64.1, -21.9),
            (-0.000_5, -179.999_99),
        ] {
            let f = sample(lat, lon);
            let got = one(&radio::rmc_line("2001234", &f), f.time_ms + 1_000);
            let Ok(got) = got else { panic!("{got:?}") };
            assert_eq!(got.time_ms, f.time_ms);
            assert!(
                close(got.lat, lat, 1e-6) && close(got.lon, lon, 1e-6),
                "{got:?}"
            );
            assert!(got.speed_kmh.is_some_and(|v| close(v, 63.5, 0.01)));
            assert!(got.course_deg.is_some_and(|c| close(c, 271.3, 1e-4)));
            let got = one(&radio::gga_line("2001234", &f), f.time_ms + 1_000);
            let Ok(got) = got else { panic!("{got:?}") };
            assert_eq!(got.time_ms, f.time_ms);
            assert!(close(got.lat, lat, 1e-6) && close(got.lon, lon, 1e-6));
            assert!(got.alt_m.is_some_and(|a| close(a, -3.5, 1e-4)));
        }
        assert_eq!(
            radio::checksum("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W"),
            0x6A
        );
    }

    #[test]
    fn datagram_lines() {
        let text = format!("a,{CLASSIC_RMC}\r\nb,{CLASSIC_GGA}\r\n");
        let out = NmeaFeed.datagram(text.as_bytes(), CLASSIC_TIME);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].as_ref().map(|f| f.device.as_str()), Ok("a"));
        assert_eq!(out[1].as_ref().map(|f| f.device.as_str()), Ok("b"));
        let empty = NmeaFeed.datagram(b"", CLASSIC_TIME);
        assert_eq!(empty.len(), 1);
        assert!(empty[0].is_err());
    }
}
