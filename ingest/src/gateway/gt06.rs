//! GT06 / Concox binary protocol over TCP, server side.
//!
//! # Framing
//! `0x78 0x78`, length (1 byte), protocol number, content, serial (2), CRC (2), `0x0d 0x0a`;
//! or the extended form `0x79 0x79` with a 2-byte length. The length counts the protocol
//! number, content, serial and CRC (at least 5). The CRC is CRC-16/X-25 (CRC-ITU: reflected
//! polynomial 0x1021, initial 0xffff, final xor 0xffff) over the bytes from the length to
//! the serial. [`Gt06::cut`] skips bytes up to the next start marker, skips a start marker
//! whose length is under 5, over [`MAX_EXTENDED_LEN`] (extended form) or whose frame does not
//! end in `0x0d 0x0a`, so a stream cannot make the buffer grow past one frame.
//!
//! # Messages
//! | protocol | message | what the server does |
//! |----------|---------|----------------------|
//! | 0x01 | login (IMEI as 8 BCD bytes, optional type and time zone) | [`Login`]: accept = the login response packet, refuse = nothing (the server closes) |
//! | 0x13 | status / heartbeat | response packet in `Reply::now` |
//! | 0x12, 0x22 | GPS + LBS location | one fix; response packet in `Reply::durable` |
//! | 0x16, 0x26 | GPS + LBS + status alarm | one fix (with the battery level); response packet in `Reply::durable` |
//! | others | | refused as `Unsupported`; response packet in `Reply::now` |
//!
//! Before a login, everything but a login is refused (`Err`, `NoIdentity`) unanswered.
//!
//! Not covered: GPS-only 0x10, the many vendor position variants (0x1a, 0x2d, 0x31..0x37,
//! 0xa0, ...), LBS/Wi-Fi-only packets (no GPS position), string/info packets (0x15, 0x21,
//! 0x94): all `Unsupported`. Alarm types are not reported (the fix is stored as a fix).
//!
//! # Reply policy
//! The response packet echoes the protocol number and serial (`78 78 05 <protocol> <serial>
//! <crc> 0d 0a`), as the protocol documents for login and status and as Traccar sends for
//! every packet. Location and alarm packets are not required to be answered by the protocol
//! document, but answering them does no harm to devices that ignore it and lets devices that
//! keep a blind-area buffer know a record landed: the answer goes in `Reply::durable`, so it
//! is written only once the fix is durable. A location refused as not positioned (`NoFix`) or
//! out of range (`BadFrame`) is `Ok` with the refusal in `Reply::refused` and the same answer
//! in `Reply::durable` (a retransmission would carry the same record). A frame with a bad
//! CRC, length or stop bytes is `Err`: unanswered, the device may send it again.
//!
//! # Units, identity and time
//! - Device id: the IMEI, 15 decimal digits (the 16 BCD nibbles without the first, which
//!   devices send as 0). A login with a non-decimal nibble is refused.
//! - Latitude and longitude: unsigned raw value / 1 800 000 degrees (minutes × 30 000);
//!   course/status word: bits 0..9 course (degrees; 360 and above gives no course), bit 10
//!   set = north, bit 11 set = west, bit 12 set = positioned (clear: `NoFix`). Speed km/h.
//! - Battery (0x16/0x26 only): voltage level 0..6 as `level × 100 / 6` percent (integer),
//!   as Traccar reports it.
//! - Time: binary year-2000, month, day, hour, minute, second. The protocol documents it as
//!   UTC and it is taken as UTC, except when the login carried the time zone field (newer
//!   Concox models: bits 15..4 = hours × 100 + minutes, bit 3 set = west): then the times of
//!   that connection are taken as local to that zone and converted to UTC, as Traccar does.

use super::{Cut, DeviceFix, FrameError, FrameErrorKind, Login, Reply, StreamProtocol};

/// Largest length field accepted in the extended (`0x79 0x79`) form: the protocol's packets
/// stay under 1024 bytes.
pub const MAX_EXTENDED_LEN: usize = 1024;

const STOP: [u8; 2] = [0x0d, 0x0a];
const PROTO_LOGIN: u8 = 0x01;
const PROTO_LOCATION: u8 = 0x12;
const PROTO_STATUS: u8 = 0x13;
const PROTO_ALARM: u8 = 0x16;
const PROTO_LOCATION_2: u8 = 0x22;
const PROTO_ALARM_2: u8 = 0x26;

/// Bytes of the GPS block every location packet starts with.
const GPS_BLOCK: usize = 18;

/// A GT06 connection: the IMEI its login gave and the time zone it announced.
#[derive(Debug, Default)]
pub struct Gt06 {
    imei: Option<String>,
    /// Milliseconds the device's clock is ahead of UTC (from the login's time zone field).
    tz_offset_ms: i64,
}

/// CRC-16/X-25 (CRC-ITU) as GT06 uses it.
pub fn crc_x25(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xffff;
    for &b in bytes {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Whether a frame of `total` bytes is all in `buf` and ends with the stop bytes. While it is
/// not all there, a whole checked frame starting later in `buf` shows that this start marker
/// was a stray byte pair (its length byte is then garbage): it is skipped rather than
/// waited for, so a device waiting for the answer to that later frame is not stalled.
fn finish(buf: &[u8], total: usize) -> Cut {
    match buf.get(total.saturating_sub(2)..total) {
        None if later_whole_frame(buf) => Cut::Skip(1),
        None => Cut::Need,
        Some(stop) if stop == STOP => Cut::Frame(total),
        Some(_) => Cut::Skip(1),
    }
}

/// Whether a whole frame with correct stop bytes and CRC starts after the first byte of
/// `buf`. At most 16 complete candidates are checked, so a crafted stream cannot make each
/// call cost more than a few frames' CRCs.
fn later_whole_frame(buf: &[u8]) -> bool {
    (1..buf.len())
        .filter_map(|p| {
            let rest = buf.get(p..)?;
            let total = match rest {
                [0x78, 0x78, len, ..] => usize::from(*len) + 5,
                [0x79, 0x79, hi, lo, ..] => usize::from(u16::from_be_bytes([*hi, *lo])) + 6,
                _ => return None,
            };
            rest.get(..total)
        })
        .take(16)
        .any(|f| Packet::parse(f).is_ok())
}

impl StreamProtocol for Gt06 {
    const NAME: &'static str = "gt06";

    fn cut(&self, buf: &[u8]) -> Cut {
        match (buf.first(), buf.get(1)) {
            (None, _) | (Some(0x78 | 0x79), None) => Cut::Need,
            (Some(0x78), Some(0x78)) => match buf.get(2) {
                None => Cut::Need,
                Some(&len) if len < 5 => Cut::Skip(1),
                Some(&len) => finish(buf, usize::from(len) + 5),
            },
            (Some(0x79), Some(0x79)) => match (buf.get(2), buf.get(3)) {
                (Some(&hi), Some(&lo)) => {
                    let len = usize::from(u16::from_be_bytes([hi, lo]));
                    if (5..=MAX_EXTENDED_LEN).contains(&len) {
                        finish(buf, len + 6)
                    } else {
                        Cut::Skip(1)
                    }
                }
                _ => Cut::Need,
            },
            _ => {
                // Up to the next byte that may start a marker.
                let next = (1..buf.len()).find(|&i| {
                    let b = buf.get(i).copied();
                    matches!(b, Some(0x78 | 0x79))
                        && (i + 1 == buf.len() || buf.get(i + 1).copied() == b)
                });
                Cut::Skip(next.unwrap_or(buf.len()))
            }
        }
    }

    fn frame(&mut self, frame: &[u8]) -> Result<Reply, FrameError> {
        let packet = Packet::parse(frame)?;
        if packet.protocol == PROTO_LOGIN {
            return self.login(&packet);
        }
        let Some(imei) = self.imei.clone() else {
            return Err(FrameError {
                kind: FrameErrorKind::NoIdentity,
                detail: format!("protocol 0x{:02x} before login", packet.protocol),
            });
        };
        let ack = response(packet.protocol, packet.serial);
        match packet.protocol {
            PROTO_STATUS => Ok(Reply {
                now: ack,
                ..Reply::default()
            }),
            PROTO_LOCATION | PROTO_LOCATION_2 | PROTO_ALARM | PROTO_ALARM_2 => {
                let alarm = matches!(packet.protocol, PROTO_ALARM | PROTO_ALARM_2);
                Ok(match self.location(packet.content, alarm, imei) {
                    Ok(fix) => Reply {
                        fixes: vec![fix],
                        durable: ack,
                        ..Reply::default()
                    },
                    Err(e) => Reply {
                        refused: vec![e],
                        durable: ack,
                        ..Reply::default()
                    },
                })
            }
            other => Ok(Reply {
                refused: vec![FrameError {
                    kind: FrameErrorKind::Unsupported,
                    detail: format!("protocol 0x{other:02x} not supported"),
                }],
                now: ack,
                ..Reply::default()
            }),
        }
    }
}

/// A checked frame's parts.
struct Packet<'a> {
    protocol: u8,
    content: &'a [u8],
    serial: u16,
}

impl<'a> Packet<'a> {
    fn parse(frame: &'a [u8]) -> Result<Self, FrameError> {
        let (header, len) = match frame {
            [0x78, 0x78, len, ..] => (3, usize::from(*len)),
            [0x79, 0x79, hi, lo, ..] => (4, usize::from(u16::from_be_bytes([*hi, *lo]))),
            _ => return Err(FrameError::bad("no 0x7878 / 0x7979 start marker")),
        };
        if len < 5 || header + len + 2 != frame.len() {
            return Err(FrameError::bad(format!(
                "length field {len} in a {}-byte frame",
                frame.len()
            )));
        }
        let n = frame.len();
        let short = || FrameError::bad("frame too short");
        if frame.get(n - 2..) != Some(&STOP[..]) {
            return Err(FrameError::bad("no 0x0d 0x0a stop bytes"));
        }
        let crc_bytes = frame.get(n - 4..n - 2).ok_or_else(short)?;
        let got = u16::from_be_bytes([
            crc_bytes.first().copied().unwrap_or(0),
            crc_bytes.get(1).copied().unwrap_or(0),
        ]);
        let computed = crc_x25(frame.get(2..n - 4).ok_or_else(short)?);
        if got != computed {
            return Err(FrameError::bad(format!(
                "CRC 0x{got:04x}, computed 0x{computed:04x}"
            )));
        }
        let protocol = frame.get(header).copied().ok_or_else(short)?;
        let content = frame.get(header + 1..n - 6).ok_or_else(short)?;
        let serial_bytes = frame.get(n - 6..n - 4).ok_or_else(short)?;
        let serial = u16::from_be_bytes([
            serial_bytes.first().copied().unwrap_or(0),
            serial_bytes.get(1).copied().unwrap_or(0),
        ]);
        Ok(Packet {
            protocol,
            content,
            serial,
        })
    }
}

/// The server's response packet: protocol number and serial echoed.
fn response(protocol: u8, serial: u16) -> Vec<u8> {
    let [s0, s1] = serial.to_be_bytes();
    let mut out = vec![0x78, 0x78, 0x05, protocol, s0, s1];
    let crc = crc_x25(out.get(2..).unwrap_or_default());
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&STOP);
    out
}

impl Gt06 {
    fn login(&mut self, packet: &Packet<'_>) -> Result<Reply, FrameError> {
        let id = packet.content.get(..8).ok_or_else(|| {
            FrameError::bad(format!("login of {} bytes, needs 8", packet.content.len()))
        })?;
        let digits: String = id.iter().map(|b| format!("{b:02x}")).collect();
        if !digits.bytes().all(|c| c.is_ascii_digit()) {
            return Err(FrameError::bad(format!("IMEI {digits} is not BCD")));
        }
        let imei = digits.get(1..).unwrap_or_default().to_string();
        // Type identification (2 bytes), then time zone and language (2 bytes).
        self.tz_offset_ms = match packet.content.get(10..12) {
            Some(&[hi, lo]) => {
                let v = u16::from_be_bytes([hi, lo]);
                let hhmm = i64::from(v >> 4);
                let minutes = (hhmm / 100) * 60 + hhmm % 100;
                let ms = minutes * 60_000;
                if v & 0x08 != 0 { -ms } else { ms }
            }
            _ => 0,
        };
        self.imei = Some(imei.clone());
        Ok(Reply {
            login: Some(Login {
                device: imei,
                accept: response(PROTO_LOGIN, packet.serial),
                refuse: Vec::new(),
            }),
            ..Reply::default()
        })
    }

    fn location(
        &self,
        content: &[u8],
        alarm: bool,
        device: String,
    ) -> Result<DeviceFix, FrameError> {
        let gps = content.get(..GPS_BLOCK).ok_or_else(|| {
            FrameError::bad(format!(
                "location content of {} bytes, needs {GPS_BLOCK}",
                content.len()
            ))
        })?;
        let byte = |i: usize| gps.get(i).copied().unwrap_or(0);
        let u32_at =
            |i: usize| u32::from_be_bytes([byte(i), byte(i + 1), byte(i + 2), byte(i + 3)]);
        let bad_time = || {
            FrameError::bad(format!(
                "bad date-time {:02x?}",
                gps.get(..6).unwrap_or_default()
            ))
        };
        let local = chrono::NaiveDate::from_ymd_opt(
            2000 + i32::from(byte(0)),
            u32::from(byte(1)),
            u32::from(byte(2)),
        )
        .and_then(|d| d.and_hms_opt(u32::from(byte(3)), u32::from(byte(4)), u32::from(byte(5))))
        .ok_or_else(bad_time)?;
        let time_ms = local.and_utc().timestamp_millis() - self.tz_offset_ms;
        let lat_raw = u32_at(7);
        let lon_raw = u32_at(11);
        let speed = byte(15);
        let flags = u16::from_be_bytes([byte(16), byte(17)]);
        let mut lat = f64::from(lat_raw) / 1_800_000.0;
        let mut lon = f64::from(lon_raw) / 1_800_000.0;
        if lat > 90.0 || lon > 180.0 {
            return Err(FrameError::bad(format!(
                "coordinates out of range: {lat}, {lon}"
            )));
        }
        if flags & 0x1000 == 0 {
            return Err(FrameError {
                kind: FrameErrorKind::NoFix,
                detail: format!("course/status 0x{flags:04x}: not positioned"),
            });
        }
        if flags & 0x0400 == 0 {
            lat = -lat;
        }
        if flags & 0x0800 != 0 {
            lon = -lon;
        }
        let course = flags & 0x03ff;
        Ok(DeviceFix {
            device,
            time_ms,
            lat,
            lon,
            speed_kmh: Some(f64::from(speed)),
            course_deg: (course < 360).then_some(f64::from(course)),
            alt_m: None,
            acc_m: None,
            batt_pct: if alarm { alarm_battery(content) } else { None },
        })
    }
}

/// The voltage level of an alarm packet (after the GPS block, the LBS block with its length
/// byte, and the terminal information byte) as percent.
fn alarm_battery(content: &[u8]) -> Option<f64> {
    let lbs_len = usize::from(*content.get(GPS_BLOCK)?);
    if lbs_len < 9 {
        return None;
    }
    let level = *content.get(GPS_BLOCK + lbs_len + 1)?;
    (level <= 6).then(|| f64::from(u16::from(level) * 100 / 6))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::device::gt06 as dev;
    use crate::gateway::testing::{ms, mutated_streams, unhex};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// The reply to `frame` after the Traccar login, and its first fix.
    fn located(frame: &str) -> (Reply, DeviceFix) {
        let mut s = Gt06::default();
        let out = run(&mut s, &[unhex(LOGIN), unhex(frame)]);
        let reply = out[1].clone().unwrap_or_default();
        let f = reply
            .fixes
            .first()
            .cloned()
            .unwrap_or_else(|| panic!("no fix {reply:?}"));
        (reply, f)
    }

    /// Feeds frames one after the other through `cut` and `frame`.
    fn run(s: &mut Gt06, frames: &[Vec<u8>]) -> Vec<Result<Reply, FrameError>> {
        frames
            .iter()
            .map(|f| {
                assert_eq!(s.cut(f), Cut::Frame(f.len()), "{f:02x?}");
                s.frame(f)
            })
            .collect()
    }

    // Frames below are from traccar/traccar
    // src/test/java/org/traccar/protocol/Gt06ProtocolDecoderTest.java (Apache-2.0).
    const LOGIN: &str = "78780D01086471700328358100093F040D0A";
    const LOGIN_TZ: &str = "787811010863586038760942a0010000010aa4000d0a";
    const LOC_22: &str =
        "787822220F0C1D023305C9027AC8180C46586000140001CC00287D001F71000001000820860D0A";
    const LOC_12: &str =
        "787821121303120b2524c70138e363085b549003d43301940057d200cd52c000006aa1ca0d0a";
    const ALARM_16: &str =
        "7878251613020C12141AC5027951430C2A16F60014000900000000001A00007C550300020002F1E70D0A";
    const ALARM_26: &str =
        "7878252612030C063816C3026C10540C38C9700144030901CC002866000EEE0C06040302000DA2DB0D0A";
    const STATUS: &str = "7878151330802b00000642014f0008720000802b5ee4d4c90d0a";
    const INFO_79: &str =
        "79790020940a035985708236675805200502187214018966051912408052452f000355560d0a";

    #[test]
    fn crc_check_value() {
        // CRC-16/X-25 check value of "123456789".
        assert_eq!(crc_x25(b"123456789"), 0x906e);
    }

    #[test]
    fn traccar_login_then_location_0x22() {
        let mut s = Gt06::default();
        let out = run(&mut s, &[unhex(LOGIN), unhex(LOC_22)]);
        let login = out[0]
            .clone()
            .unwrap_or_default()
            .login
            .unwrap_or_else(|| panic!("no login"));
        assert_eq!(login.device, "864717003283581");
        // The login response: 78 78 05 01, serial, CRC-16/X-25 of 05 01 00 09, 0d 0a.
        assert_eq!(login.accept, unhex("78780501000955940d0a"));
        assert_eq!(dev::parse_reply(&login.accept), Ok((0x01, 0x0009)));
        assert!(login.refuse.is_empty());
        let reply = out[1].clone().unwrap_or_default();
        let f = reply
            .fixes
            .first()
            .cloned()
            .unwrap_or_else(|| panic!("no fix {reply:?}"));
        assert_eq!(f.device, "864717003283581");
        assert_eq!(f.time_ms, ms("2015-12-29T02:51:05Z"));
        assert!(close(f.lat, 23.111693333333335), "{}", f.lat);
        assert!(close(f.lon, 114.40929777777778), "{}", f.lon);
        assert_eq!(f.speed_kmh, Some(0.0));
        assert_eq!(f.course_deg, Some(0.0));
        assert!(reply.now.is_empty() && reply.refused.is_empty());
        assert_eq!(dev::parse_reply(&reply.durable), Ok((0x22, 0x0008)));
    }

    #[test]
    fn traccar_location_0x12() {
        let (reply, f) = located(LOC_12);
        // Course/status 0xd433: positioned, north, east, course 0x033.
        assert_eq!(f.time_ms, ms("2019-03-18T11:37:36Z"));
        assert!(close(f.lat, 11.391912777777778), "{}", f.lat);
        assert!(close(f.lon, 77.89064), "{}", f.lon);
        assert_eq!(f.speed_kmh, Some(3.0));
        assert_eq!(f.course_deg, Some(51.0));
        assert_eq!(f.batt_pct, None);
        assert_eq!(dev::parse_reply(&reply.durable), Ok((0x12, 0x006a)));
    }

    #[test]
    fn traccar_alarm_0x16() {
        let (reply, f) = located(ALARM_16);
        assert_eq!(f.time_ms, ms("2019-02-12T18:20:26Z"));
        assert!(close(f.lat, 23.05838388888889), "{}", f.lat);
        assert!(close(f.lon, 113.38054555555556), "{}", f.lon);
        assert_eq!(f.course_deg, Some(0.0));
        // Its voltage byte is 0x55, outside the 0..6 scale: no battery level.
        assert_eq!(f.batt_pct, None);
        assert_eq!(dev::parse_reply(&reply.durable), Ok((0x16, 0x0002)));
    }

    #[test]
    fn traccar_alarm_0x26_not_positioned() {
        let mut s = Gt06::default();
        let out = run(&mut s, &[unhex(LOGIN), unhex(ALARM_26)]);
        let reply = out[1].clone().unwrap_or_default();
        // Course/status 0x4403: bit 12 clear.
        assert!(reply.fixes.is_empty());
        assert_eq!(
            reply.refused.iter().map(|e| e.kind).collect::<Vec<_>>(),
            vec![FrameErrorKind::NoFix]
        );
        assert_eq!(dev::parse_reply(&reply.durable), Ok((0x26, 0x000d)));
        // Its status block (voltage level 6) reads as 100 %.
        let content = unhex(ALARM_26);
        assert_eq!(
            alarm_battery(content.get(4..content.len() - 6).unwrap_or_default()),
            Some(100.0)
        );
    }

    #[test]
    fn traccar_status_answered_now() {
        let mut s = Gt06::default();
        let out = run(&mut s, &[unhex(LOGIN), unhex(STATUS)]);
        let reply = out[1].clone().unwrap_or_default();
        assert!(reply.fixes.is_empty() && reply.durable.is_empty() && reply.refused.is_empty());
        assert_eq!(dev::parse_reply(&reply.now), Ok((0x13, 0x5ee4)));
    }

    #[test]
    fn traccar_extended_frame_unsupported() {
        let mut s = Gt06::default();
        let out = run(&mut s, &[unhex(LOGIN), unhex(INFO_79)]);
        let reply = out[1].clone().unwrap_or_default();
        assert_eq!(
            reply.refused.first().map(|e| e.kind),
            Some(FrameErrorKind::Unsupported)
        );
        assert_eq!(dev::parse_reply(&reply.now), Ok((0x94, 0x0003)));
    }

    #[test]
    fn traccar_login_with_time_zone_zero() {
        let mut s = Gt06::default();
        let out = run(&mut s, &[unhex(LOGIN_TZ)]);
        let login = out[0]
            .clone()
            .unwrap_or_default()
            .login
            .unwrap_or_else(|| panic!("no login"));
        assert_eq!(login.device, "863586038760942");
        assert_eq!(dev::parse_reply(&login.accept), Ok((0x01, 0x010a)));
        assert_eq!(s.tz_offset_ms, 0);
    }

    #[test]
    fn location_before_login_has_no_identity() {
        let mut s = Gt06::default();
        let e = s.frame(&unhex(LOC_22)).err().map(|e| e.kind);
        assert_eq!(e, Some(FrameErrorKind::NoIdentity));
        let e = s.frame(&unhex(STATUS)).err().map(|e| e.kind);
        assert_eq!(e, Some(FrameErrorKind::NoIdentity));
    }

    #[test]
    fn bad_crc_and_truncation_refused() {
        let mut s = Gt06::default();
        let _ = s.frame(&unhex(LOGIN));
        let mut f = unhex(LOC_22);
        let n = f.len();
        f[n - 3] ^= 0xff;
        assert_eq!(
            s.frame(&f).err().map(|e| e.kind),
            Some(FrameErrorKind::BadFrame)
        );
        let f = unhex(LOC_22);
        assert_eq!(s.cut(&f[..f.len() - 1]), Cut::Need);
        assert_eq!(s.cut(&f[..2]), Cut::Need);
        assert_eq!(s.cut(&f[..1]), Cut::Need);
        // Correct CRC but content too short for a location: refused, answered.
        let short = dev::packet(0x12, &[0x0f, 0x0c], 77);
        let reply = s.frame(&short).unwrap_or_default();
        assert_eq!(
            reply.refused.first().map(|e| e.kind),
            Some(FrameErrorKind::BadFrame)
        );
        // Traccar's empty 0x12 packet "787805120099abec0d0a".
        let reply = s.frame(&unhex("787805120099abec0d0a")).unwrap_or_default();
        assert_eq!(
            reply.refused.first().map(|e| e.kind),
            Some(FrameErrorKind::BadFrame)
        );
        // Length field disagreeing with the frame.
        assert!(s.frame(&f[..f.len() - 3]).is_err());
    }

    #[test]
    fn garbage_and_resync() {
        let s = Gt06::default();
        let mut stream = b"hello\x78".to_vec();
        assert_eq!(s.cut(&stream), Cut::Skip(5));
        stream.extend(unhex(LOGIN));
        // "hello" then "78 78 78 0d ..." : skip to the first 0x78, then that one.
        assert_eq!(s.cut(&stream), Cut::Skip(5));
        let rest = &stream[5..];
        // 78 78 78 0d: a length of 0x78 would be waited for, but a whole login follows.
        assert_eq!(s.cut(rest), Cut::Skip(1));
        assert_eq!(s.cut(&rest[1..]), Cut::Frame(rest.len() - 1));
        // A bad length is skipped.
        assert_eq!(s.cut(&[0x78, 0x78, 0x02, 0, 0]), Cut::Skip(1));
        assert_eq!(s.cut(&[0x79, 0x79, 0xff, 0xff]), Cut::Skip(1));
        assert_eq!(s.cut(&[1, 2, 3]), Cut::Skip(3));
        assert_eq!(s.cut(&[1, 0x79, 0x78]), Cut::Skip(2));
    }

    #[test]
    fn oversize_bounded() {
        let s = Gt06::default();
        // The largest extended frame is cut; anything longer is refused at its start.
        let big = dev::packet_extended(0x94, &vec![0x41; MAX_EXTENDED_LEN - 5], 1);
        assert_eq!(big.len(), MAX_EXTENDED_LEN + 6);
        assert_eq!(s.cut(&big), Cut::Frame(big.len()));
        let too_big = dev::packet_extended(0x94, &vec![0x41; MAX_EXTENDED_LEN - 4], 1);
        assert_eq!(s.cut(&too_big), Cut::Skip(1));
    }

    fn fix(lat: f64, lon: f64) -> DeviceFix {
        DeviceFix {
            device: "359339075003821".into(),
            time_ms: ms("2024-12-31T23:59:59Z"),
            lat,
            lon,
            speed_kmh: Some(95.0),
            course_deg: Some(271.0),
            alt_m: None,
            acc_m: None,
            batt_pct: None,
        }
    }

    #[test]
    fn encoder_round_trip() {
        for (lat, lon) in [
            (48.858_370, 2.294_481),
            (-33.868_820, 151.209_296),
            (40.689_247, -74.044_502),
            (-22.951_916, -43.210_487),
        ] {
            let mut s = Gt06::default();
            let out = run(
                &mut s,
                &[
                    dev::login("359339075003821", 1),
                    dev::location(2, &fix(lat, lon)),
                ],
            );
            let login = out[0]
                .clone()
                .unwrap_or_default()
                .login
                .unwrap_or_else(|| panic!("no login"));
            assert_eq!(login.device, "359339075003821");
            let reply = out[1].clone().unwrap_or_default();
            let f = reply
                .fixes
                .first()
                .cloned()
                .unwrap_or_else(|| panic!("no fix {reply:?}"));
            // The wire keeps 1/1 800 000 degree.
            assert!(
                (f.lat - lat).abs() < 1e-6 && (f.lon - lon).abs() < 1e-6,
                "{f:?}"
            );
            assert_eq!(
                (f.time_ms, f.speed_kmh, f.course_deg),
                (fix(lat, lon).time_ms, Some(95.0), Some(271.0))
            );
            assert_eq!(dev::parse_reply(&reply.durable), Ok((0x22, 2)));
        }
    }

    #[test]
    fn not_positioned_is_no_fix_and_answered() {
        let mut s = Gt06::default();
        let out = run(
            &mut s,
            &[
                dev::login("359339075003821", 1),
                dev::location_unpositioned(2, &fix(1.0, 2.0)),
            ],
        );
        let reply = out[1].clone().unwrap_or_default();
        assert!(reply.fixes.is_empty());
        assert_eq!(
            reply.refused.iter().map(|e| e.kind).collect::<Vec<_>>(),
            vec![FrameErrorKind::NoFix]
        );
        assert_eq!(dev::parse_reply(&reply.durable), Ok((0x22, 2)));
    }

    #[test]
    fn login_time_zone_applied() {
        let mut s = Gt06::default();
        // GMT+8: 800 << 4, east.
        let _ = s.frame(&dev::login_with_time_zone("359339075003821", 1, 800 << 4));
        let reply = s
            .frame(&dev::location(2, &fix(1.0, 2.0)))
            .unwrap_or_default();
        let f = reply
            .fixes
            .first()
            .cloned()
            .unwrap_or_else(|| panic!("no fix"));
        assert_eq!(f.time_ms, fix(1.0, 2.0).time_ms - 8 * 3_600_000);
        // GMT-3:30, west.
        let _ = s.frame(&dev::login_with_time_zone(
            "359339075003821",
            3,
            (330 << 4) | 0x08,
        ));
        let reply = s
            .frame(&dev::location(4, &fix(1.0, 2.0)))
            .unwrap_or_default();
        let f = reply
            .fixes
            .first()
            .cloned()
            .unwrap_or_else(|| panic!("no fix"));
        assert_eq!(f.time_ms, fix(1.0, 2.0).time_ms + 210 * 60_000);
    }

    #[test]
    fn bad_login_and_bad_date() {
        let mut s = Gt06::default();
        let bad = dev::packet(0x01, &[0x0a; 8], 1);
        assert_eq!(
            s.frame(&bad).err().map(|e| e.kind),
            Some(FrameErrorKind::BadFrame)
        );
        let _ = s.frame(&dev::login("359339075003821", 1));
        let mut content = dev::location_content(&fix(1.0, 2.0), true);
        content[1] = 13; // month 13
        let reply = s.frame(&dev::packet(0x22, &content, 5)).unwrap_or_default();
        assert_eq!(
            reply.refused.first().map(|e| e.kind),
            Some(FrameErrorKind::BadFrame)
        );
        assert!(reply.fixes.is_empty());
    }

    #[test]
    fn mutated_streams_keep_cut_invariants() {
        let seeds = [
            unhex(LOGIN),
            unhex(LOC_22),
            unhex(LOC_12),
            unhex(ALARM_16),
            unhex(STATUS),
            unhex(INFO_79),
        ];
        let fixes = mutated_streams::<Gt06>(&seeds, Some(&unhex(LOGIN)), MAX_EXTENDED_LEN + 6);
        // Most unmutated frames still decode.
        assert!(fixes > 300, "{fixes}");
    }
}
