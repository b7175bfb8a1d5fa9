//! A radio's NMEA 0183 output as a dispatch gateway forwards it to the server:
//! `<device id>,<sentence>` lines (see `crate::gateway::nmea` for the framing), with RMC and
//! GGA sentences encoded from a [`DeviceFix`] and their checksum.

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::gateway::DeviceFix;

/// The checksum of a sentence body (the bytes between `$` and `*`): their XOR.
pub fn checksum(body: &str) -> u8 {
    body.bytes().fold(0, |acc, b| acc ^ b)
}

/// `body` framed as a sentence: `$body*hh`.
pub fn sentence(body: &str) -> String {
    format!("${body}*{:02X}", checksum(body))
}

/// `ddmm.mmmmm,N` (`deg_digits` 2) or `dddmm.mmmmm,E` (3).
fn coordinate(value: f64, deg_digits: usize, pos: char, neg: char) -> String {
    let hemisphere = if value < 0.0 { neg } else { pos };
    // Whole 1e-5 minutes, so that the minutes never round up to 60.
    let total = (value.abs() * 60.0 * 100_000.0).round() as u64;
    let (deg, min) = (total / 6_000_000, total % 6_000_000);
    format!(
        "{deg:0width$}{:02}.{:05},{hemisphere}",
        min / 100_000,
        min % 100_000,
        width = deg_digits
    )
}

/// The UTC time of a fix.
fn utc(fix: &DeviceFix) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(fix.time_ms).unwrap_or_default()
}

/// `hhmmss.ss` of a time.
fn hms(t: &DateTime<Utc>) -> String {
    format!(
        "{:02}{:02}{:02}.{:02}",
        t.hour(),
        t.minute(),
        t.second(),
        t.timestamp_subsec_millis() / 10
    )
}

/// An RMC sentence of `fix` (talker `GP`, status `A`, mode `A`): time, date, position, speed
/// in knots, course.
pub fn rmc_sentence(fix: &DeviceFix) -> String {
    let t = utc(fix);
    let speed = fix
        .speed_kmh
        .map(|v| format!("{:.2}", v / 1.852))
        .unwrap_or_default();
    let course = fix
        .course_deg
        .map(|c| format!("{c:.1}"))
        .unwrap_or_default();
    sentence(&format!(
        "GPRMC,{},A,{},{},{speed},{course},{:02}{:02}{:02},,,A",
        hms(&t),
        coordinate(fix.lat, 2, 'N', 'S'),
        coordinate(fix.lon, 3, 'E', 'W'),
        t.day(),
        t.month(),
        t.year().rem_euclid(100)
    ))
}

/// A GGA sentence of `fix` (talker `GN`, fix quality 1, 9 satellites, HDOP 1.0): time,
/// position, altitude.
pub fn gga_sentence(fix: &DeviceFix) -> String {
    let alt = fix.alt_m.map(|a| format!("{a:.1}")).unwrap_or_default();
    sentence(&format!(
        "GNGGA,{},{},{},1,09,1.0,{alt},M,,M,,",
        hms(&utc(fix)),
        coordinate(fix.lat, 2, 'N', 'S'),
        coordinate(fix.lon, 3, 'E', 'W')
    ))
}

/// The gateway line of an RMC sentence from `device`: `<device>,$GPRMC,...*hh`.
pub fn rmc_line(device: &str, fix: &DeviceFix) -> String {
    format!("{device},{}", rmc_sentence(fix))
}

/// The gateway line of a GGA sentence from `device`: `<device>,$GNGGA,...*hh`.
pub fn gga_line(device: &str, fix: &DeviceFix) -> String {
    format!("{device},{}", gga_sentence(fix))
}
