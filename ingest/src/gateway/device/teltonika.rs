//! A Teltonika tracker's side of the TCP protocol (Codec 8 and Codec 8 Extended): the IMEI
//! packet, AVL data packets with their CRC-16/IBM, and the server's replies read back.
//!
//! Written independently of the server's decoder (which uses `nom-teltonika`), so that round
//! trips test one against the other. Each record carries IO element 113 (battery level,
//! percent) when the fix has a battery level, and nothing else.

use crate::gateway::DeviceFix;

/// Which AVL codec a packet is encoded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Codec 8 (`0x08`): 1-byte IO ids and counts.
    Codec8,
    /// Codec 8 Extended (`0x8E`): 2-byte IO ids and counts, and a variable-length IO group.
    Codec8Extended,
}

/// The IMEI packet that opens a connection: 2-byte big-endian length, then the ASCII IMEI.
pub fn imei_packet(imei: &str) -> Vec<u8> {
    let len = u16::try_from(imei.len()).unwrap_or(u16::MAX);
    let mut out = len.to_be_bytes().to_vec();
    out.extend(imei.bytes().take(usize::from(len)));
    out
}

/// CRC-16/IBM (ARC): polynomial `0xA001` reflected, initial value 0, as Teltonika uses.
pub fn crc16_ibm(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// A Codec 8 AVL packet of `fixes` (at most 255), each with 9 satellites.
pub fn avl_packet_codec8(fixes: &[DeviceFix]) -> Vec<u8> {
    avl_packet(Codec::Codec8, fixes, 9)
}

/// A Codec 8 Extended AVL packet of `fixes` (at most 255), each with 9 satellites.
pub fn avl_packet_codec8e(fixes: &[DeviceFix]) -> Vec<u8> {
    avl_packet(Codec::Codec8Extended, fixes, 9)
}

/// Converts degrees to Teltonika's 1e-7 degree integer.
fn coord(deg: f64) -> i32 {
    // Saturating float-to-int cast; the simulator only sends valid coordinates.
    (deg * 1e7).round() as i32
}

/// An AVL packet of `fixes` (the first 255) with `satellites` in every GPS element (0 makes
/// "no fix" records, as a device without a fix sends them).
///
/// A record takes 33 bytes in Codec 8 and 41 in Codec 8 Extended (36 / 44 with a battery
/// level); like a device, keep a packet within 1280 bytes (about 25 records), which is the
/// most the server waits for.
pub fn avl_packet(codec: Codec, fixes: &[DeviceFix], satellites: u8) -> Vec<u8> {
    let fixes = fixes.get(..fixes.len().min(255)).unwrap_or_default();
    let count = u8::try_from(fixes.len()).unwrap_or(u8::MAX);
    let mut data = vec![
        match codec {
            Codec::Codec8 => 0x08,
            Codec::Codec8Extended => 0x8E,
        },
        count,
    ];
    // Codec 8 writes IO ids and counts in 1 byte, Codec 8 Extended in 2.
    let put: fn(&mut Vec<u8>, u16) = match codec {
        Codec::Codec8 => push_u8_of,
        Codec::Codec8Extended => push_u16,
    };
    for fix in fixes {
        data.extend_from_slice(&fix.time_ms.max(0).to_be_bytes());
        data.push(0); // priority: low
        data.extend_from_slice(&coord(fix.lon).to_be_bytes());
        data.extend_from_slice(&coord(fix.lat).to_be_bytes());
        let alt = fix.alt_m.unwrap_or(0.0).round() as i16;
        data.extend_from_slice(&alt.to_be_bytes());
        let angle = fix.course_deg.unwrap_or(0.0).round() as u16;
        data.extend_from_slice(&angle.to_be_bytes());
        data.push(satellites);
        let speed = fix.speed_kmh.unwrap_or(0.0).round() as u16;
        data.extend_from_slice(&speed.to_be_bytes());
        // IO element: event id 0, then N total, N1 (with battery), N2, N4, N8 (, NX).
        let batt = fix.batt_pct.map(|p| p.round().clamp(0.0, 100.0) as u8);
        let total = u16::from(batt.is_some());
        put(&mut data, 0);
        put(&mut data, total);
        put(&mut data, total);
        if let Some(b) = batt {
            put(&mut data, 113);
            data.push(b);
        }
        put(&mut data, 0);
        put(&mut data, 0);
        put(&mut data, 0);
        if codec == Codec::Codec8Extended {
            put(&mut data, 0);
        }
    }
    data.push(count);
    let mut out = vec![0, 0, 0, 0];
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&data);
    out.extend_from_slice(&u32::from(crc16_ibm(&data)).to_be_bytes());
    out
}

/// Appends the low byte of `v` (Codec 8's 1-byte ids and counts).
fn push_u8_of(out: &mut Vec<u8>, v: u16) {
    out.push(v.to_be_bytes()[1]);
}

/// Appends `v` big-endian (Codec 8 Extended's 2-byte ids and counts).
fn push_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// The server's answer to the IMEI packet: `Some(true)` for `01`, `Some(false)` for `00`.
pub fn parse_login_reply(reply: &[u8]) -> Option<bool> {
    match reply {
        [0x01] => Some(true),
        [0x00] => Some(false),
        _ => None,
    }
}

/// The server's acknowledgement of an AVL packet: the 4-byte big-endian count of records
/// accepted, or `None` if `reply` is not exactly 4 bytes.
pub fn parse_ack(reply: &[u8]) -> Option<u32> {
    reply
        .first_chunk::<4>()
        .filter(|_| reply.len() == 4)
        .map(|b| u32::from_be_bytes(*b))
}
