//! A TETRA radio's location reports as a dispatch gateway forwards them to the server:
//! `<ISSI>,<SDS user data as hex>` lines (see `crate::gateway::lip` for the framing), with
//! LIP short and long location reports (ETSI TS 100 392-18-1) encoded from a [`DeviceFix`].

use chrono::{Datelike, TimeZone, Timelike, Utc};

use crate::gateway::DeviceFix;

/// Writes bit fields, most significant bit first.
#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    len: usize,
}

impl BitWriter {
    /// Appends the low `width` bits of `value`.
    fn put(&mut self, width: usize, value: u32) {
        for i in (0..width).rev() {
            if self.len.is_multiple_of(8) {
                self.bytes.push(0);
            }
            let bit = u8::from((value >> i) & 1 == 1);
            if let Some(last) = self.bytes.last_mut() {
                *last |= bit << (7 - self.len % 8);
            }
            self.len += 1;
        }
    }
}

/// Longitude as 25-bit and latitude as 24-bit two's complement.
fn put_position(w: &mut BitWriter, fix: &DeviceFix) {
    let lon = (fix.lon * f64::from(1u32 << 25) / 360.0).round() as i64;
    let lat = (fix.lat * f64::from(1u32 << 24) / 180.0).round() as i64;
    // Masking keeps the two's complement bits of the field.
    w.put(25, (lon & 0x01FF_FFFF) as u32);
    w.put(24, (lat & 0x00FF_FFFF) as u32);
}

/// The horizontal velocity code of a speed (127: unknown).
fn velocity_code(speed_kmh: Option<f64>) -> u32 {
    match speed_kmh {
        None => 127,
        Some(v) if v < 28.5 => v.max(0.0).round() as u32,
        Some(v) if v > 1043.0 => 126,
        Some(v) => ((v / 16.0).ln() / 1.038_f64.ln() + 13.0)
            .round()
            .clamp(29.0, 125.0) as u32,
    }
}

/// The position error code of an accuracy radius (7: unknown).
fn position_error_code(acc_m: Option<f64>) -> u32 {
    let Some(acc) = acc_m else { return 7 };
    [2.0, 20.0, 200.0, 2_000.0, 20_000.0, 200_000.0]
        .iter()
        .position(|&bound| acc <= bound)
        .map_or(6, |i| i as u32)
}

/// A short location report PDU (10 octets, without the protocol identifier).
///
/// `time_elapsed` is the 2-bit code: 0 "< 5 s", 1 "< 5 min", 2 "< 30 min", 3 "not known".
/// The direction of travel is the course rounded to 22.5°; reason for sending 0.
pub fn short_report_pdu(fix: &DeviceFix, time_elapsed: u8) -> Vec<u8> {
    let mut w = BitWriter::default();
    w.put(2, 0); // PDU type: short location report
    w.put(2, u32::from(time_elapsed));
    put_position(&mut w, fix);
    w.put(3, position_error_code(fix.acc_m));
    w.put(7, velocity_code(fix.speed_kmh));
    let direction = (fix.course_deg.unwrap_or(0.0) / 22.5).round() as i64;
    w.put(4, direction.rem_euclid(16) as u32);
    w.put(1, 0); // type of additional data: reason for sending
    w.put(8, 0);
    w.bytes
}

/// A long location report PDU: time of position from `fix.time_ms` (UTC), shape "point and
/// position error", velocity type "horizontal velocity with direction of travel extended",
/// no acknowledgement request, reason for sending 0.
pub fn long_report_pdu(fix: &DeviceFix) -> Vec<u8> {
    let mut w = BitWriter::default();
    w.put(2, 1); // PDU with extension
    w.put(4, 0b0011); // long location report
    w.put(2, 0b10); // time of position
    let t = Utc
        .timestamp_millis_opt(fix.time_ms)
        .single()
        .unwrap_or_default();
    w.put(5, t.day());
    w.put(5, t.hour());
    w.put(6, t.minute());
    w.put(6, t.second());
    w.put(4, 0b1010); // point and position error
    put_position(&mut w, fix);
    w.put(3, position_error_code(fix.acc_m));
    w.put(3, 0b101);
    w.put(7, velocity_code(fix.speed_kmh));
    let direction = (fix.course_deg.unwrap_or(0.0) * 256.0 / 360.0).round() as i64;
    w.put(8, direction.rem_euclid(256) as u32);
    w.put(1, 0); // acknowledgement request
    w.put(1, 0); // type of additional data: reason for sending
    w.put(8, 0);
    w.bytes
}

/// Upper-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The gateway line of a short location report from radio `issi`, with the protocol
/// identifier `0A` in front of the PDU (see [`short_report_pdu`] for `time_elapsed`).
pub fn short_report(issi: u32, fix: &DeviceFix, time_elapsed: u8) -> String {
    format!("{issi},0A{}", hex(&short_report_pdu(fix, time_elapsed)))
}

/// The gateway line of a long location report from radio `issi`, with the protocol
/// identifier `0A` (see [`long_report_pdu`]).
pub fn long_report(issi: u32, fix: &DeviceFix) -> String {
    format!("{issi},0A{}", hex(&long_report_pdu(fix)))
}
