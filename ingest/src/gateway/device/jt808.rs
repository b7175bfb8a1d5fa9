//! JT/T 808 terminal side: the frames a terminal sends (2013 header unless told otherwise),
//! and a reader for the server's 0x8001 / 0x8100 replies.
//!
//! Phone numbers are given as decimal digits (at most 12 for the 2013 header, 20 for 2019),
//! left-padded with zeros into the BCD field. Times are written in GMT+8 as the standard
//! wants; coordinates in 1e-6 degrees with the south/west status bits.

use crate::gateway::DeviceFix;

/// Status bit 1: positioned.
pub const STATUS_POSITIONED: u32 = 0x02;
const STATUS_SOUTH: u32 = 0x04;
const STATUS_WEST: u32 = 0x08;

/// A server reply as a terminal reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerReply {
    /// 0x8001 platform general response.
    General {
        /// Serial number of the terminal message answered.
        answered_serial: u16,
        /// Id of the terminal message answered.
        answered_id: u16,
        /// 0 success, 1 failure, 2 message error, 3 not supported.
        result: u8,
    },
    /// 0x8100 registration response.
    Register {
        /// Serial number of the registration answered.
        answered_serial: u16,
        /// 0 success, 1 vehicle registered, 2 no vehicle, 3 terminal registered, 4 no terminal.
        result: u8,
        /// Authentication code (only with result 0).
        auth_code: Vec<u8>,
    },
}

fn bcd_phone(phone: &str, len: usize) -> Vec<u8> {
    let digits: Vec<u8> = phone
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|d| d - b'0')
        .collect();
    let mut padded = vec![0u8; (len * 2).saturating_sub(digits.len())];
    padded.extend(digits.iter().rev().take(len * 2).rev());
    padded
        .chunks(2)
        .map(|p| (p.first().copied().unwrap_or(0) << 4) | p.get(1).copied().unwrap_or(0))
        .collect()
}

/// A whole frame: header (2019 form when `version` is given), body, check code, escaping
/// and delimiters.
pub fn encode(id: u16, phone: &str, serial: u16, body: &[u8], version: Option<u8>) -> Vec<u8> {
    let mut raw = Vec::with_capacity(body.len() + 24);
    raw.extend_from_slice(&id.to_be_bytes());
    let mut props = u16::try_from(body.len().min(0x3ff)).unwrap_or(0);
    if version.is_some() {
        props |= 0x4000;
    }
    raw.extend_from_slice(&props.to_be_bytes());
    match version {
        Some(v) => {
            raw.push(v);
            raw.extend(bcd_phone(phone, 10));
        }
        None => raw.extend(bcd_phone(phone, 6)),
    }
    raw.extend_from_slice(&serial.to_be_bytes());
    raw.extend_from_slice(body);
    let check = raw.iter().fold(0u8, |a, b| a ^ b);
    raw.push(check);
    let mut out = vec![0x7e];
    for b in raw {
        match b {
            0x7e => out.extend_from_slice(&[0x7d, 0x02]),
            0x7d => out.extend_from_slice(&[0x7d, 0x01]),
            _ => out.push(b),
        }
    }
    out.push(0x7e);
    out
}

/// Terminal registration (0x0100) with placeholder province, maker, model, id and plate.
pub fn register(phone: &str, serial: u16) -> Vec<u8> {
    let mut body = vec![0x00, 0x2c, 0x01, 0x2f]; // province 44, city 303
    body.extend_from_slice(b"SIM01"); // manufacturer
    let mut model = b"PATROL-SIM".to_vec();
    model.resize(20, 0);
    body.extend(model);
    body.extend_from_slice(b"0000001"); // terminal id
    body.push(1); // plate colour
    body.extend_from_slice(b"TEST01");
    encode(0x0100, phone, serial, &body, None)
}

/// Terminal authentication (0x0102, 2013 body: the code alone).
pub fn authenticate(phone: &str, serial: u16, code: &[u8]) -> Vec<u8> {
    encode(0x0102, phone, serial, code, None)
}

/// Heartbeat (0x0002).
pub fn heartbeat(phone: &str, serial: u16) -> Vec<u8> {
    encode(0x0002, phone, serial, &[], None)
}

/// Terminal logout (0x0003).
pub fn logout(phone: &str, serial: u16) -> Vec<u8> {
    encode(0x0003, phone, serial, &[], None)
}

fn bcd2(v: u32) -> u8 {
    let v = u8::try_from(v % 100).unwrap_or(0);
    ((v / 10) << 4) | (v % 10)
}

/// A location report body with the given status word (set [`STATUS_POSITIONED`] for a fix;
/// the south/west bits are added from the signs).
pub fn location_body_with_status(fix: &DeviceFix, status: u32) -> Vec<u8> {
    use chrono::{Datelike, Timelike};
    let mut status = status;
    if fix.lat < 0.0 {
        status |= STATUS_SOUTH;
    }
    if fix.lon < 0.0 {
        status |= STATUS_WEST;
    }
    let micro = |d: f64| (d.abs() * 1e6).round().clamp(0.0, f64::from(u32::MAX)) as u32;
    let word = |v: Option<f64>, scale: f64| {
        v.map_or(0.0, |x| (x * scale).round()).clamp(0.0, 65535.0) as u16
    };
    let mut body = Vec::with_capacity(28);
    body.extend_from_slice(&0u32.to_be_bytes()); // alarm flags
    body.extend_from_slice(&status.to_be_bytes());
    body.extend_from_slice(&micro(fix.lat).to_be_bytes());
    body.extend_from_slice(&micro(fix.lon).to_be_bytes());
    body.extend_from_slice(&word(fix.alt_m, 1.0).to_be_bytes());
    body.extend_from_slice(&word(fix.speed_kmh, 10.0).to_be_bytes());
    body.extend_from_slice(&word(fix.course_deg, 1.0).to_be_bytes());
    let cst =
        chrono::DateTime::from_timestamp_millis(fix.time_ms + 8 * 3600 * 1000).unwrap_or_default();
    for v in [
        u32::try_from(cst.year()).unwrap_or(0),
        cst.month(),
        cst.day(),
        cst.hour(),
        cst.minute(),
        cst.second(),
    ] {
        body.push(bcd2(v));
    }
    body
}

/// A location report body (positioned).
pub fn location_body(fix: &DeviceFix) -> Vec<u8> {
    location_body_with_status(fix, STATUS_POSITIONED)
}

/// Location report (0x0200), 2013 header.
pub fn location(phone: &str, serial: u16, fix: &DeviceFix) -> Vec<u8> {
    encode(0x0200, phone, serial, &location_body(fix), None)
}

/// Location report (0x0200), 2019 header (protocol version 1).
pub fn location_2019(phone: &str, serial: u16, fix: &DeviceFix) -> Vec<u8> {
    encode(0x0200, phone, serial, &location_body(fix), Some(1))
}

/// Location report (0x0200) with an explicit status word (0 = not positioned).
pub fn location_with_status(phone: &str, serial: u16, fix: &DeviceFix, status: u32) -> Vec<u8> {
    encode(
        0x0200,
        phone,
        serial,
        &location_body_with_status(fix, status),
        None,
    )
}

/// Batch location upload (0x0704, type 0) of the given record bodies.
pub fn batch_bodies(phone: &str, serial: u16, records: &[Vec<u8>]) -> Vec<u8> {
    let mut body = u16::try_from(records.len())
        .unwrap_or(u16::MAX)
        .to_be_bytes()
        .to_vec();
    body.push(0);
    for r in records {
        body.extend_from_slice(&u16::try_from(r.len()).unwrap_or(u16::MAX).to_be_bytes());
        body.extend_from_slice(r);
    }
    encode(0x0704, phone, serial, &body, None)
}

/// Batch location upload (0x0704) of positioned fixes (at most 32 fit one frame).
pub fn batch(phone: &str, serial: u16, fixes: &[DeviceFix]) -> Vec<u8> {
    let records: Vec<Vec<u8>> = fixes.iter().map(location_body).collect();
    batch_bodies(phone, serial, &records)
}

/// Unescapes a server frame and checks it: (header, body) bytes.
fn unframe(frame: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let inner = match frame {
        [0x7e, inner @ .., 0x7e] => inner,
        _ => return Err("not a 0x7e-delimited frame".into()),
    };
    let mut raw = Vec::with_capacity(inner.len());
    let mut it = inner.iter();
    while let Some(&b) = it.next() {
        raw.push(match (b, b == 0x7d) {
            (_, true) => match it.next() {
                Some(1) => 0x7d,
                Some(2) => 0x7e,
                _ => return Err("bad escape".into()),
            },
            (b, false) => b,
        });
    }
    let check = raw.pop().ok_or("empty frame")?;
    if raw.iter().fold(0u8, |a, b| a ^ b) != check {
        return Err("bad check code".into());
    }
    let props = u16::from_be_bytes([*raw.get(2).ok_or("short")?, *raw.get(3).ok_or("short")?]);
    let header_len = if props & 0x4000 != 0 { 17 } else { 12 };
    if raw.len() < header_len || raw.len() - header_len != usize::from(props & 0x3ff) {
        return Err("bad length".into());
    }
    let body = raw.split_off(header_len);
    Ok((raw, body))
}

/// Reads a server reply frame.
///
/// # Errors
/// Text saying what is wrong when it is not a well-formed 0x8001 or 0x8100 frame.
pub fn parse_reply(frame: &[u8]) -> Result<ServerReply, String> {
    let (header, body) = unframe(frame)?;
    let u16_at = |b: &[u8], i: usize| -> Result<u16, String> {
        Ok(u16::from_be_bytes([
            *b.get(i).ok_or("short body")?,
            *b.get(i + 1).ok_or("short body")?,
        ]))
    };
    match u16_at(&header, 0)? {
        0x8001 if body.len() == 5 => Ok(ServerReply::General {
            answered_serial: u16_at(&body, 0)?,
            answered_id: u16_at(&body, 2)?,
            result: body.get(4).copied().unwrap_or(0),
        }),
        0x8100 if body.len() >= 3 => Ok(ServerReply::Register {
            answered_serial: u16_at(&body, 0)?,
            result: body.get(2).copied().unwrap_or(0),
            auth_code: body.get(3..).unwrap_or_default().to_vec(),
        }),
        id => Err(format!(
            "unexpected reply 0x{id:04x} with {} body bytes",
            body.len()
        )),
    }
}

/// The server's own serial number in a reply frame.
///
/// # Errors
/// As [`parse_reply`].
pub fn reply_serial(frame: &[u8]) -> Result<u16, String> {
    let (header, _) = unframe(frame)?;
    match header.as_slice() {
        [.., hi, lo] => Ok(u16::from_be_bytes([*hi, *lo])),
        _ => Err("short header".into()),
    }
}

/// The phone number a reply frame is addressed to, leading zeros stripped.
///
/// # Errors
/// As [`parse_reply`].
pub fn reply_phone(frame: &[u8]) -> Result<String, String> {
    let (header, _) = unframe(frame)?;
    let bcd = if header.len() == 17 {
        header.get(5..15)
    } else {
        header.get(4..10)
    };
    let bcd = bcd.ok_or("short header")?;
    let digits: String = bcd.iter().map(|b| format!("{b:02x}")).collect();
    let t = digits.trim_start_matches('0');
    Ok(if t.is_empty() { "0".into() } else { t.into() })
}
