//! GT06 / Concox device side: the packets a tracker sends, and a reader for the server's
//! response packets.
//!
//! Times are written in UTC, coordinates as degrees × 1 800 000 with the north/west bits in
//! the course/status word, speed in whole km/h.

use crate::gateway::DeviceFix;
use crate::gateway::gt06::crc_x25;

/// A `0x78 0x78` packet: length, protocol, content, serial, CRC, stop bytes (content up to
/// 250 bytes).
pub fn packet(protocol: u8, content: &[u8], serial: u16) -> Vec<u8> {
    let len = u8::try_from(content.len() + 5).unwrap_or(u8::MAX);
    let mut out = vec![0x78, 0x78, len, protocol];
    finish(out_with(&mut out, content, serial))
}

/// A `0x79 0x79` extended packet with a 2-byte length.
pub fn packet_extended(protocol: u8, content: &[u8], serial: u16) -> Vec<u8> {
    let len = u16::try_from(content.len() + 5)
        .unwrap_or(u16::MAX)
        .to_be_bytes();
    let mut out = vec![0x79, 0x79, len[0], len[1], protocol];
    finish(out_with(&mut out, content, serial))
}

fn out_with<'a>(out: &'a mut Vec<u8>, content: &[u8], serial: u16) -> &'a mut Vec<u8> {
    out.extend_from_slice(content);
    out.extend_from_slice(&serial.to_be_bytes());
    out
}

fn finish(out: &mut Vec<u8>) -> Vec<u8> {
    let crc = crc_x25(out.get(2..).unwrap_or_default());
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&[0x0d, 0x0a]);
    std::mem::take(out)
}

fn imei_bcd(imei: &str) -> Vec<u8> {
    let mut digits: Vec<u8> = imei
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|d| d - b'0')
        .collect();
    while digits.len() < 16 {
        digits.insert(0, 0);
    }
    digits
        .get(digits.len() - 16..)
        .unwrap_or_default()
        .chunks(2)
        .map(|p| (p.first().copied().unwrap_or(0) << 4) | p.get(1).copied().unwrap_or(0))
        .collect()
}

/// Login (0x01) with the 15-digit IMEI.
pub fn login(imei: &str, serial: u16) -> Vec<u8> {
    packet(0x01, &imei_bcd(imei), serial)
}

/// Login (0x01) with type identification 0 and the time zone word (bits 15..4: hours × 100
/// + minutes; bit 3: west).
pub fn login_with_time_zone(imei: &str, serial: u16, zone: u16) -> Vec<u8> {
    let mut content = imei_bcd(imei);
    content.extend_from_slice(&[0, 0]);
    content.extend_from_slice(&zone.to_be_bytes());
    packet(0x01, &content, serial)
}

/// Status / heartbeat (0x13): terminal info, voltage level 6, GSM signal 4, language 2.
pub fn heartbeat(serial: u16) -> Vec<u8> {
    packet(0x13, &[0x46, 0x06, 0x04, 0x00, 0x02], serial)
}

/// The content of a 0x22 location packet (GPS block, empty LBS block, ACC, upload mode,
/// real-time flag).
pub fn location_content(fix: &DeviceFix, positioned: bool) -> Vec<u8> {
    use chrono::{Datelike, Timelike};
    let t = chrono::DateTime::from_timestamp_millis(fix.time_ms).unwrap_or_default();
    let byte = |v: u32| u8::try_from(v % 256).unwrap_or(0);
    let mut c = vec![
        byte(u32::try_from(t.year() - 2000).unwrap_or(0)),
        byte(t.month()),
        byte(t.day()),
        byte(t.hour()),
        byte(t.minute()),
        byte(t.second()),
        0xc9, // GPS info length 12, 9 satellites
    ];
    let raw = |d: f64| {
        (d.abs() * 1_800_000.0)
            .round()
            .clamp(0.0, f64::from(u32::MAX)) as u32
    };
    c.extend_from_slice(&raw(fix.lat).to_be_bytes());
    c.extend_from_slice(&raw(fix.lon).to_be_bytes());
    c.push(fix.speed_kmh.unwrap_or(0.0).round().clamp(0.0, 255.0) as u8);
    let mut flags = fix.course_deg.unwrap_or(0.0).round().clamp(0.0, 359.0) as u16;
    if positioned {
        flags |= 0x1000;
    }
    if fix.lat >= 0.0 {
        flags |= 0x0400;
    }
    if fix.lon < 0.0 {
        flags |= 0x0800;
    }
    c.extend_from_slice(&flags.to_be_bytes());
    c.extend_from_slice(&[0; 8]); // MCC, MNC, LAC, cell id
    c.extend_from_slice(&[1, 0, 1]); // ACC on, upload mode, real time
    c
}

/// Location packet (0x22) of a positioned fix.
pub fn location(serial: u16, fix: &DeviceFix) -> Vec<u8> {
    packet(0x22, &location_content(fix, true), serial)
}

/// Location packet (0x22) with the "positioned" bit clear.
pub fn location_unpositioned(serial: u16, fix: &DeviceFix) -> Vec<u8> {
    packet(0x22, &location_content(fix, false), serial)
}

/// Reads a server response packet: (protocol number, serial answered).
///
/// # Errors
/// Text saying what is wrong when it is not a well-formed `0x78 0x78` response.
pub fn parse_reply(bytes: &[u8]) -> Result<(u8, u16), String> {
    match bytes {
        [0x78, 0x78, 0x05, protocol, s0, s1, c0, c1, 0x0d, 0x0a] => {
            let want = crc_x25(&[0x05, *protocol, *s0, *s1]);
            if u16::from_be_bytes([*c0, *c1]) == want {
                Ok((*protocol, u16::from_be_bytes([*s0, *s1])))
            } else {
                Err("bad CRC".into())
            }
        }
        _ => Err(format!("not a response packet: {bytes:02x?}")),
    }
}
