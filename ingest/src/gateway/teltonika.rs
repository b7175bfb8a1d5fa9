//! Teltonika Codec 8 and Codec 8 Extended over TCP (FMB/FMC/FMM/FMT trackers).
//!
//! # Covered
//!
//! - The IMEI packet that opens a connection: a 2-byte big-endian length, then the IMEI as
//!   ASCII digits (1 to [`MAX_IMEI_DIGITS`] digits; Teltonika devices send 15). It becomes a
//!   [`Login`] whose `accept` is `01` and whose `refuse` is `00`.
//! - AVL data packets of Codec 8 (`0x08`) and Codec 8 Extended (`0x8E`): four zero bytes,
//!   the 4-byte data field length, codec id, record count, the records, the record count
//!   again, and the CRC-16/IBM (poly `0xA001` reflected, initial 0) of codec id..second count
//!   sent as 4 bytes. Each record gives one [`DeviceFix`] or one refusal.
//!
//! # Not covered
//!
//! Codec 16 (`0x10`) AVL packets are refused as [`FrameErrorKind::Unsupported`] (and
//! acknowledged, see the reply policy). Codec 12/13/14 GPRS command messages (a device's
//! answer to a server command; this server sends none) are refused as `Unsupported` without
//! a reply. UDP transport (the `CAFE` datagram header) is not covered: TCP only.
//!
//! # Decoding: the `nom-teltonika` crate
//!
//! Frames are validated and read with `nom-teltonika` 0.3.0 (MIT), after a review of its
//! source: it checks the preamble, the declared length against Teltonika's 1280-byte limit
//! before waiting for the bytes, the CRC-16 before the content, every count and length
//! against the frame's end (slices with checked splits, no panicking index on input), the two
//! record counts, the priority byte, "N of Total IO" against the groups, and both codecs
//! including the 8E variable-length group. It has wiki-example tests, error tests,
//! property tests and is maintained (0.3.0 released 2026-10). It is used without default
//! features: its `no_std` core, no dependencies of its own. This module adds the framing
//! (`cut`), the IMEI packet, the session, the fix policy and the reply policy.
//!
//! # Framing and bounds
//!
//! [`StreamProtocol::cut`] reads the header only: a packet is at most [`MAX_PACKET_LEN`]
//! (1280) bytes from preamble to CRC, the "Maximum AVL packet size" the Teltonika wiki
//! ("Codec" page) gives for Codec 8 and 8 Extended; a declared length above it, or below the
//! 3 bytes of an empty data field, is never waited for: the bytes are skipped
//! ([`Cut::Skip`]) up to the next place where a valid header could start (four zero bytes
//! with a plausible length and codec), or the whole buffer if there is none. An IMEI packet
//! declaring 0 or more than [`MAX_IMEI_DIGITS`] bytes is skipped the same way. So a
//! connection never buffers more than 1280 bytes for one frame.
//!
//! # Fixes
//!
//! - Time: the record's timestamp, unix milliseconds UTC, as sent. A timestamp before
//!   2000-01-01 (a device whose clock is not set) refuses the record as `BadFrame`.
//! - Latitude/longitude: signed 32-bit, 1e-7 degrees. Outside ±90 / ±180: `BadFrame`.
//! - No fix: Teltonika documents that a record taken without a GPS fix carries the *last
//!   valid* coordinates with angle, satellites and speed 0. So a record with 0 satellites,
//!   or with latitude and longitude both exactly 0, is refused as [`FrameErrorKind::NoFix`]
//!   (its coordinates are stale, not a position at its time).
//! - Speed: km/h as sent. Course: the angle in degrees (`None` if above 360). Altitude:
//!   metres, read as a signed 16-bit value (below sea level is sent in two's complement).
//! - Battery: IO element 113 (battery level, percent, on FMB/FMC/FMM models) when present and
//!   at most 100; otherwise `None`. IO 66 (external voltage, mV) is not a percentage and is
//!   not used. Accuracy: `None` (Teltonika sends HDOP, not a radius).
//!
//! # Reply policy
//!
//! - IMEI packet: `Reply::login` only; the server writes `01` or `00`.
//! - AVL packet, valid: `Reply::durable` is the 4-byte big-endian count of *all* records of
//!   the packet, fixes and refused records alike, written once the fixes are durable. The
//!   device deletes what is counted and resends a packet whose count does not match. A
//!   record refused by this module (no fix, out of range) will be refused again on every
//!   resend, so not counting it would make the device resend the packet forever and, since
//!   it sends its oldest records first, hold back every newer position behind it. A refused
//!   record is therefore counted: it is kept by the server as a reject with the frame
//!   (`Reply::refused`), so nothing acknowledged is lost.
//! - AVL packet whose CRC is right but whose content is invalid (count mismatch, bad
//!   priority, IO counts, trailing bytes), or of Codec 16: `Ok` with one refusal and
//!   `durable` = the packet's first record count, for the same reason: it can never be
//!   accepted, and the frame is kept as a reject.
//! - CRC mismatch: `Err` (`BadFrame`) and no reply: the bytes are not what the device sent,
//!   so nothing in them (not even the count) is trusted; the device resends after its
//!   acknowledgement timeout.
//! - An AVL packet before the IMEI packet: `Err` ([`FrameErrorKind::NoIdentity`]), no reply.
//! - `Reply::now` is always empty.

use nom_teltonika::decoder::{FrameError as DecodeError, take_frame};
use nom_teltonika::protocol::{AvlCodec, AvlRecordView, FrameView, IoValueView};

use super::{Cut, DeviceFix, FrameError, FrameErrorKind, Login, Reply, StreamProtocol};

/// Largest AVL packet, preamble to CRC, in bytes (Teltonika: "Maximum AVL packet size is 1280
/// bytes" for Codec 8 and 8 Extended).
pub const MAX_PACKET_LEN: usize = 1280;

/// Most digits accepted in the IMEI packet (an IMEI has 15, an IMEISV 16).
pub const MAX_IMEI_DIGITS: usize = 17;

/// Preamble, data length and CRC around the data field.
const OVERHEAD: usize = 12;
/// The smallest data field: codec id and the two record counts.
const MIN_DATA_LEN: usize = 3;
/// 2000-01-01T00:00:00Z in unix milliseconds: older record times are a clock not yet set.
const MIN_TIME_MS: i64 = 946_684_800_000;
/// IO element id of the battery level, percent.
const IO_BATTERY_PCT: u16 = 113;

/// One Teltonika TCP connection: before the IMEI packet, and after it with the IMEI.
#[derive(Debug, Default)]
pub struct TeltonikaSession {
    imei: Option<String>,
}

impl TeltonikaSession {
    /// The IMEI the connection gave, if it did.
    pub fn imei(&self) -> Option<&str> {
        self.imei.as_deref()
    }
}

/// How far `bytes` agree with the start of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head {
    /// Not the start of a packet.
    Invalid,
    /// The start of one, not yet all there.
    Need,
    /// A whole packet of this many bytes, once buffered.
    Len(usize),
}

/// Reads an AVL packet header at the start of `bytes`.
fn avl_head(bytes: &[u8]) -> Head {
    let preamble = bytes.get(..4).unwrap_or(bytes);
    if preamble.iter().any(|&b| b != 0) {
        return Head::Invalid;
    }
    let Some(&[a, b, c, d]) = bytes.get(4..8) else {
        return Head::Need;
    };
    let data_len = u32::from_be_bytes([a, b, c, d]);
    let total = usize::try_from(data_len)
        .ok()
        .and_then(|n| n.checked_add(OVERHEAD));
    match total {
        Some(total)
            if total <= MAX_PACKET_LEN
                && usize::try_from(data_len).is_ok_and(|n| n >= MIN_DATA_LEN) =>
        {
            match bytes.get(8) {
                // Only codecs that can be acknowledged are worth waiting for.
                Some(&codec) if ![0x08, 0x8E, 0x10, 0x0C, 0x0D, 0x0E].contains(&codec) => {
                    Head::Invalid
                }
                _ => Head::Len(total),
            }
        }
        _ => Head::Invalid,
    }
}

/// Reads an IMEI packet header at the start of `bytes`.
fn imei_head(bytes: &[u8]) -> Head {
    match bytes {
        [] | [0] => Head::Need,
        [hi, lo, rest @ ..] => {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            if len == 0 || len > MAX_IMEI_DIGITS {
                return Head::Invalid;
            }
            match rest.first() {
                Some(d) if !d.is_ascii_digit() => Head::Invalid,
                _ => Head::Len(len + 2),
            }
        }
        [_] => Head::Invalid,
    }
}

impl TeltonikaSession {
    /// What the packet at the start of `bytes` is, given the session's state: an AVL packet
    /// (or the start of one) when it begins with two zero bytes, else (before the IMEI is
    /// known) an IMEI packet.
    fn head(&self, bytes: &[u8]) -> Head {
        let zero_start = bytes.iter().take(2).all(|&b| b == 0);
        if zero_start {
            avl_head(bytes)
        } else if self.imei.is_none() {
            imei_head(bytes)
        } else {
            Head::Invalid
        }
    }
}

impl StreamProtocol for TeltonikaSession {
    const NAME: &'static str = "teltonika";

    fn cut(&self, buf: &[u8]) -> Cut {
        match self.head(buf) {
            Head::Need => Cut::Need,
            Head::Len(n) if n <= buf.len() => Cut::Frame(n),
            Head::Len(_) => Cut::Need,
            Head::Invalid => {
                // Skip to the next offset where a packet could start, or everything.
                let next = (1..buf.len())
                    .find(|&i| {
                        buf.get(i..)
                            .is_some_and(|rest| self.head(rest) != Head::Invalid)
                    })
                    .unwrap_or(buf.len());
                Cut::Skip(next.max(1))
            }
        }
    }

    fn frame(&mut self, frame: &[u8]) -> Result<Reply, FrameError> {
        if frame.starts_with(&[0, 0]) {
            let Some(imei) = self.imei.clone() else {
                return Err(FrameError {
                    kind: FrameErrorKind::NoIdentity,
                    detail: "AVL packet before the IMEI packet".into(),
                });
            };
            return avl_packet(&imei, frame);
        }
        let imei = imei_packet(frame)?;
        self.imei = Some(imei.clone());
        Ok(Reply {
            login: Some(Login {
                device: imei,
                accept: vec![0x01],
                refuse: vec![0x00],
            }),
            ..Reply::default()
        })
    }
}

/// The IMEI of a whole IMEI packet.
fn imei_packet(frame: &[u8]) -> Result<String, FrameError> {
    let Some((&[hi, lo], digits)) = frame.split_first_chunk::<2>() else {
        return Err(FrameError::bad("IMEI packet shorter than its length field"));
    };
    let declared = usize::from(u16::from_be_bytes([hi, lo]));
    if declared != digits.len() {
        return Err(FrameError::bad(format!(
            "IMEI packet declares {declared} bytes but has {}",
            digits.len()
        )));
    }
    if digits.is_empty() || digits.len() > MAX_IMEI_DIGITS || !digits.iter().all(u8::is_ascii_digit)
    {
        return Err(FrameError::bad(format!(
            "IMEI is not 1 to {MAX_IMEI_DIGITS} ASCII digits"
        )));
    }
    Ok(digits.iter().map(|&d| char::from(d)).collect())
}

/// The 4-byte acknowledgement of `count` records.
fn ack(count: u8) -> Vec<u8> {
    u32::from(count).to_be_bytes().to_vec()
}

/// Decodes a whole AVL packet of a device that gave `imei`.
fn avl_packet(imei: &str, frame: &[u8]) -> Result<Reply, FrameError> {
    // The first record count, for acknowledging a packet that can never be accepted.
    let first_count = frame.get(9).copied().unwrap_or(0);
    let mut input = frame;
    let packet = match take_frame(&mut input) {
        Ok(FrameView::Avl(packet)) => packet,
        Ok(_) => {
            return Err(FrameError {
                kind: FrameErrorKind::Unsupported,
                detail: "GPRS command message (Codec 12/13/14): not used".into(),
            });
        }
        Err(nom_teltonika::decoder::DecodeFrameError::InvalidFrame { reason, .. }) => {
            return match reason {
                DecodeError::CrcMismatch { expected, received } => Err(FrameError::bad(format!(
                    "CRC mismatch: computed {expected:#06x}, received {received:#010x}"
                ))),
                DecodeError::UnsupportedCodec(id) => Err(FrameError {
                    kind: FrameErrorKind::Unsupported,
                    detail: format!("unsupported codec {id:#04x}"),
                }),
                // The CRC is right: the device sent this and will send it again unless
                // it is acknowledged.
                other => Ok(Reply {
                    refused: vec![FrameError::bad(format!("invalid AVL packet: {other}"))],
                    durable: ack(first_count),
                    ..Reply::default()
                }),
            };
        }
        Err(other) => return Err(FrameError::bad(format!("not a whole AVL packet: {other}"))),
    };
    if !input.is_empty() {
        return Err(FrameError::bad("bytes after the AVL packet"));
    }
    let mut reply = Reply::default();
    let mut count: u8 = 0;
    for record in packet.records() {
        count = count.saturating_add(1);
        match packet.codec() {
            AvlCodec::Codec8 | AvlCodec::Codec8Extended => match record_fix(imei, &record) {
                Ok(fix) => reply.fixes.push(fix),
                Err(refusal) => reply.refused.push(refusal),
            },
            _ => reply.refused.push(FrameError {
                kind: FrameErrorKind::Unsupported,
                detail: format!("codec {:#04x} record", packet.codec() as u8),
            }),
        }
    }
    reply.durable = ack(count);
    Ok(reply)
}

/// One record as a fix, or why it is refused.
fn record_fix(imei: &str, record: &AvlRecordView<'_>) -> Result<DeviceFix, FrameError> {
    let gps = record.gps();
    if gps.satellites == 0 || (gps.latitude_raw == 0 && gps.longitude_raw == 0) {
        return Err(FrameError {
            kind: FrameErrorKind::NoFix,
            detail: format!(
                "no GPS fix (satellites {}, coordinates {} {})",
                gps.satellites,
                gps.latitude_degrees(),
                gps.longitude_degrees()
            ),
        });
    }
    let (lat, lon) = (gps.latitude_degrees(), gps.longitude_degrees());
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(FrameError::bad(format!(
            "coordinates out of range: {lat} {lon}"
        )));
    }
    let time_ms = i64::try_from(u64::from(record.timestamp()))
        .ok()
        .filter(|&t| t >= MIN_TIME_MS)
        .ok_or_else(|| {
            FrameError::bad(format!(
                "record time {} ms is before 2000-01-01",
                u64::from(record.timestamp())
            ))
        })?;
    let batt_pct = record.io_elements().find_map(|io| {
        if u16::from(io.id()) != IO_BATTERY_PCT {
            return None;
        }
        let value = match io.value() {
            IoValueView::U8(v) => u64::from(v),
            IoValueView::U16(v) => u64::from(v),
            IoValueView::U32(v) => u64::from(v),
            IoValueView::U64(v) => v,
            _ => return None,
        };
        u8::try_from(value)
            .ok()
            .filter(|&p| p <= 100)
            .map(f64::from)
    });
    Ok(DeviceFix {
        device: imei.to_owned(),
        time_ms,
        lat,
        lon,
        speed_kmh: Some(f64::from(gps.speed_kph)),
        course_deg: (gps.angle_degrees <= 360).then(|| f64::from(gps.angle_degrees)),
        alt_m: Some(f64::from(gps.altitude_meters_signed())),
        acc_m: None,
        batt_pct,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::device::teltonika as device;
    use crate::gateway::testing::unhex as hex;

    // Teltonika wiki, "Codec" page (wiki.teltonika-gps.com/view/Codec), Codec 8 examples 1 and
    // 3 and the Codec 8 Extended example; published by Teltonika as protocol examples.
    const WIKI_CODEC8_1: &str = "000000000000003608010000016B40D8EA30010000000000000000000000000000000105021503010101425E0F01F10000601A014E0000000000000000010000C7CF";
    const WIKI_CODEC8_3: &str = "000000000000004308020000016B40D57B480100000000000000000000000000000001010101000000000000016B40D5C198010000000000000000000000000000000101010101000000020000252C";
    const WIKI_CODEC8E: &str = "000000000000004A8E010000016B412CEE000100000000000000000000000000000000010005000100010100010011001D00010010015E2C880002000B000000003544C87A000E000000001DD7E06A00000100002994";
    // Teltonika wiki, "Codec" page, Codec 12 "getinfo" command example.
    const WIKI_CODEC12: &str = "000000000000000F0C010500000007676574696E666F0100004312";
    // Real device captures from Traccar's TeltonikaProtocolDecoderTest.java
    // (github.com/traccar/traccar, Apache-2.0): the IMEI packet, a Codec 8 record with a fix,
    // a Codec 8E record with a variable-length (NX) IO element, and a Codec 8E packet of two
    // records without a fix (0 satellites, last coordinates kept, IO 113 = 1 %).
    const TRACCAR_IMEI: &str = "000F313233343536373839303132333435";
    const TRACCAR_CODEC8: &str = "000000000000004508010000015eb70a86d00024089d4d21dee3860137005f12005f000e06ef01f00150011503c800450108b5000bb6000642382718005fcd057ace19d3430f57440000000001000002bf";
    const TRACCAR_CODEC8E_NX: &str = "00000000000000a38e0100000178b11c9e1000040bbbc91f03190c002100e113001300000010000600ef0100f00100150300c800004501001e070005004237e00018000a00ce166200430f970024059f000300f10000665900c70000001e00100000a1b500000002010000115756315a5a5a32455a38363031353338380119002950303239392c50303637352c50303637342c50303637322c50303637312c50303437312c50324241430100001ad8";
    const TRACCAR_CODEC8E_NOFIX: &str = "00000000000000b98e0200000179555c7bf8010b3a1cfbebc142b00000000000000000ec000f000900f00000150000c80000450200710100740001070100fa0000ec01000500b500000018000000430d560044000000190000000100f1000000000000000000000179555c83c8010b3a1cfbebc142b0000000000000000185000f000900f00000150000c80000450200710100740001070100fa00018511000500b500000018000000430d560044000000190000000100f100000000000000000200003251";

    const IMEI: &str = "356307042441013";

    /// A session that has received the IMEI packet.
    fn logged_in() -> TeltonikaSession {
        let mut s = TeltonikaSession::default();
        let packet = device::imei_packet(IMEI);
        assert_eq!(s.cut(&packet), Cut::Frame(packet.len()));
        assert!(s.frame(&packet).is_ok());
        s
    }

    /// Cuts and decodes one whole frame that must be exactly `bytes`.
    fn one(s: &mut TeltonikaSession, bytes: &[u8]) -> Result<Reply, FrameError> {
        assert_eq!(s.cut(bytes), Cut::Frame(bytes.len()));
        s.frame(bytes)
    }

    fn fix(time_ms: i64, lat: f64, lon: f64) -> DeviceFix {
        DeviceFix {
            device: IMEI.into(),
            time_ms,
            lat,
            lon,
            speed_kmh: Some(57.0),
            course_deg: Some(271.0),
            alt_m: Some(-12.0),
            acc_m: None,
            batt_pct: Some(87.0),
        }
    }

    #[test]
    fn imei_packet_gives_a_login_and_nothing_else() {
        let mut s = TeltonikaSession::default();
        let reply = one(&mut s, &hex(TRACCAR_IMEI)).unwrap_or_default();
        assert_eq!(
            reply.login,
            Some(Login {
                device: "123456789012345".into(),
                accept: vec![1],
                refuse: vec![0]
            })
        );
        assert!(reply.fixes.is_empty() && reply.now.is_empty() && reply.durable.is_empty());
        assert_eq!(s.imei(), Some("123456789012345"));
    }

    #[test]
    fn real_codec8_record_decodes_exactly() {
        let mut s = logged_in();
        let reply = one(&mut s, &hex(TRACCAR_CODEC8)).unwrap_or_default();
        assert!(reply.refused.is_empty(), "{:?}", reply.refused);
        assert_eq!(
            reply.fixes,
            vec![DeviceFix {
                device: IMEI.into(),
                time_ms: 1_506_309_474_000, // 2017-09-25T03:17:54Z
                lat: 56.825_536_6,
                lon: 60.454_433_3,
                speed_kmh: Some(95.0),
                course_deg: Some(95.0),
                alt_m: Some(311.0),
                acc_m: None,
                batt_pct: None,
            }]
        );
        assert_eq!(reply.durable, vec![0, 0, 0, 1]);
        assert!(reply.now.is_empty() && reply.login.is_none());
    }

    #[test]
    fn real_codec8e_record_with_variable_length_io_decodes() {
        let mut s = logged_in();
        let reply = one(&mut s, &hex(TRACCAR_CODEC8E_NX)).unwrap_or_default();
        assert!(reply.refused.is_empty(), "{:?}", reply.refused);
        assert_eq!(reply.fixes.len(), 1);
        let f = &reply.fixes[0];
        assert_eq!(f.time_ms, 1_617_879_146_000); // 2021-04-08T10:52:26Z
        assert_eq!((f.lat, f.lon), (52.029_671_6, 6.787_783_3));
        assert_eq!(
            (f.speed_kmh, f.course_deg, f.alt_m),
            (Some(19.0), Some(225.0), Some(33.0))
        );
        assert_eq!(reply.durable, vec![0, 0, 0, 1]);
    }

    #[test]
    fn records_without_fix_are_refused_but_counted() {
        let mut s = logged_in();
        for (packet, n) in [
            (WIKI_CODEC8_1, 1u8),
            (WIKI_CODEC8_3, 2),
            (WIKI_CODEC8E, 1),
            (TRACCAR_CODEC8E_NOFIX, 2),
        ] {
            let reply = one(&mut s, &hex(packet)).unwrap_or_default();
            assert!(reply.fixes.is_empty());
            assert_eq!(reply.refused.len(), usize::from(n));
            assert!(
                reply
                    .refused
                    .iter()
                    .all(|e| e.kind == FrameErrorKind::NoFix),
                "{:?}",
                reply.refused
            );
            assert_eq!(reply.durable, vec![0, 0, 0, n], "{packet}");
        }
    }

    #[test]
    fn avl_before_imei_is_no_identity() {
        let mut s = TeltonikaSession::default();
        let err = one(&mut s, &hex(TRACCAR_CODEC8)).err().map(|e| e.kind);
        assert_eq!(err, Some(FrameErrorKind::NoIdentity));
    }

    #[test]
    fn bad_crc_is_refused_without_any_reply() {
        let mut s = logged_in();
        let mut p = hex(TRACCAR_CODEC8);
        if let Some(last) = p.last_mut() {
            *last ^= 0x01;
        }
        let err = one(&mut s, &p).err();
        assert_eq!(err.as_ref().map(|e| e.kind), Some(FrameErrorKind::BadFrame));
        assert!(err.is_some_and(|e| e.detail.contains("CRC")));
        // A flipped bit in a record is caught by the CRC too.
        let mut p = hex(TRACCAR_CODEC8);
        if let Some(b) = p.get_mut(30) {
            *b ^= 0x80;
        }
        assert!(one(&mut s, &p).is_err());
    }

    #[test]
    fn invalid_content_with_good_crc_is_refused_and_acknowledged() {
        let mut s = logged_in();
        // Second record count 2 where the first says 1, CRC recomputed.
        let mut p = device::avl_packet_codec8(&[fix(1_700_000_000_000, 50.0, 14.0)]);
        let n = p.len();
        if let Some(b) = p.get_mut(n - 5) {
            *b = 2;
        }
        let crc = device::crc16_ibm(p.get(8..n - 4).unwrap_or_default());
        p.truncate(n - 4);
        p.extend_from_slice(&u32::from(crc).to_be_bytes());
        let reply = one(&mut s, &p).unwrap_or_default();
        assert!(reply.fixes.is_empty());
        assert_eq!(reply.refused.len(), 1);
        assert_eq!(reply.refused[0].kind, FrameErrorKind::BadFrame);
        assert_eq!(reply.durable, vec![0, 0, 0, 1]);
    }

    #[test]
    fn codec12_message_is_unsupported_without_reply() {
        let mut s = logged_in();
        let err = one(&mut s, &hex(WIKI_CODEC12)).err().map(|e| e.kind);
        assert_eq!(err, Some(FrameErrorKind::Unsupported));
    }

    #[test]
    fn every_truncation_waits_for_more() {
        let s = logged_in();
        let p = hex(TRACCAR_CODEC8E_NX);
        for n in 0..p.len() {
            assert_eq!(s.cut(&p[..n]), Cut::Need, "prefix {n}");
        }
        let fresh = TeltonikaSession::default();
        let imei = hex(TRACCAR_IMEI);
        for n in 0..imei.len() {
            assert_eq!(fresh.cut(&imei[..n]), Cut::Need, "prefix {n}");
        }
    }

    #[test]
    fn oversize_and_undersize_lengths_are_skipped_not_buffered() {
        let s = logged_in();
        // 1269 bytes of data: 1281 in all, one over the bound.
        let over = [0, 0, 0, 0, 0, 0, 0x04, 0xF5, 0x08];
        assert!(matches!(s.cut(&over), Cut::Skip(n) if n >= 1));
        let huge = [0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        assert!(matches!(s.cut(&huge), Cut::Skip(n) if n >= 1));
        let empty = [0, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(s.cut(&empty), Cut::Skip(n) if n >= 1));
        // 1268 bytes of data (1280 in all) is waited for.
        assert_eq!(s.cut(&[0, 0, 0, 0, 0, 0, 0x04, 0xF4, 0x08]), Cut::Need);
        // An IMEI packet longer than 17 digits.
        let fresh = TeltonikaSession::default();
        assert!(matches!(fresh.cut(&[0x00, 0x20, b'3', b'5']), Cut::Skip(n) if n >= 1));
        assert!(matches!(fresh.cut(&[0x41, 0x42]), Cut::Skip(_)));
    }

    #[test]
    fn garbage_is_skipped_up_to_the_next_packet() {
        let s = logged_in();
        let mut buf = b"GET / HTTP/1.1\r\n".to_vec();
        let garbage = buf.len();
        buf.extend_from_slice(&hex(TRACCAR_CODEC8));
        assert_eq!(s.cut(&buf), Cut::Skip(garbage));
        assert_eq!(s.cut(&buf[garbage..]), Cut::Frame(buf.len() - garbage));
    }

    #[test]
    fn bad_imei_is_refused() {
        let mut s = TeltonikaSession::default();
        let p = [0x00, 0x03, b'1', b'2', b'x'];
        assert_eq!(
            one(&mut s, &p).err().map(|e| e.kind),
            Some(FrameErrorKind::BadFrame)
        );
        assert_eq!(s.imei(), None);
    }

    #[test]
    fn round_trip_through_the_device_encoders() {
        let fixes: Vec<DeviceFix> = (0..25)
            .map(|i| {
                fix(
                    1_767_225_600_000 + i * 1000,
                    -33.868_8 + i as f64 * 1e-4,
                    151.209_3 - i as f64 * 1e-4,
                )
            })
            .collect();
        for packet in [
            device::avl_packet_codec8(&fixes),
            device::avl_packet_codec8e(&fixes),
        ] {
            let mut s = TeltonikaSession::default();
            let mut buf = device::imei_packet(IMEI);
            buf.extend_from_slice(&packet);
            let Cut::Frame(n) = s.cut(&buf) else {
                panic!("no IMEI frame")
            };
            let login = s.frame(&buf[..n]).unwrap_or_default().login;
            assert_eq!(
                login.map(|l| device::parse_login_reply(&l.accept)),
                Some(Some(true))
            );
            let rest = &buf[n..];
            let reply = one(&mut s, rest).unwrap_or_default();
            assert_eq!(device::parse_ack(&reply.durable), Some(25));
            assert_eq!(reply.fixes.len(), 25);
            for (got, want) in reply.fixes.iter().zip(&fixes) {
                assert_eq!(got.time_ms, want.time_ms);
                assert!((got.lat - want.lat).abs() < 1e-7 && (got.lon - want.lon).abs() < 1e-7);
                assert_eq!(
                    (got.speed_kmh, got.course_deg, got.alt_m),
                    (Some(57.0), Some(271.0), Some(-12.0))
                );
                assert_eq!(got.batt_pct, Some(87.0));
                assert_eq!(got.device, IMEI);
            }
        }
        // Zero satellites: every record refused as no fix, all counted.
        let mut s = logged_in();
        let p = device::avl_packet(device::Codec::Codec8Extended, &fixes[..3], 0);
        let reply = one(&mut s, &p).unwrap_or_default();
        assert_eq!((reply.fixes.len(), reply.refused.len()), (0, 3));
        assert_eq!(device::parse_ack(&reply.durable), Some(3));
    }

    #[test]
    fn device_crc_matches_the_wiki_example() {
        let p = hex(WIKI_CODEC8_1);
        assert_eq!(device::crc16_ibm(&p[8..p.len() - 4]), 0xC7CF);
        assert_eq!(device::imei_packet("123456789012345"), hex(TRACCAR_IMEI));
        assert_eq!(device::parse_ack(&[0, 0, 1, 2]), Some(258));
        assert_eq!(device::parse_ack(&[0, 0, 1]), None);
        assert_eq!(device::parse_login_reply(&[0]), Some(false));
    }

    #[test]
    fn old_timestamp_and_out_of_range_are_refused_per_record() {
        let mut s = logged_in();
        let p =
            device::avl_packet_codec8(&[fix(1000, 10.0, 10.0), fix(1_700_000_000_000, 10.0, 10.0)]);
        let reply = one(&mut s, &p).unwrap_or_default();
        assert_eq!(reply.fixes.len(), 1);
        assert_eq!(reply.refused.len(), 1);
        assert_eq!(reply.refused[0].kind, FrameErrorKind::BadFrame);
        assert_eq!(device::parse_ack(&reply.durable), Some(2));
        let p = device::avl_packet_codec8(&[fix(1_700_000_000_000, 95.0, 10.0)]);
        let reply = one(&mut s, &p).unwrap_or_default();
        assert_eq!(
            reply.refused.first().map(|e| e.kind),
            Some(FrameErrorKind::BadFrame)
        );
    }
}
