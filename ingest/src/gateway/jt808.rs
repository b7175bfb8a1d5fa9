//! JT/T 808 (Chinese road vehicle terminal standard) over TCP, server side.
//!
//! # Framing
//! A frame is `0x7e`, the escaped message, `0x7e`. Inside, `0x7d 0x02` stands for `0x7e` and
//! `0x7d 0x01` for `0x7d`; any other byte after `0x7d` is refused. The last unescaped byte is
//! the XOR of all the others (the check code). [`Jt808::cut`] drops bytes before a `0x7e`
//! (`Cut::Skip`), drops a lone `0x7e` directly followed by another (the end of a frame the
//! server never saw the start of), and drops a candidate frame that grows beyond
//! [`MAX_FRAME`] bytes without a closing `0x7e` (a 1023-byte body, the largest the length
//! field allows, with the largest header, all escaped), so memory stays bounded.
//!
//! # Versions
//! The 2011 and 2013 header (message id, body properties, BCD\[6\] phone number, serial,
//! optional subpackage total/index) and the 2019 header (body properties bit 14 set, then a
//! protocol version byte and a BCD\[10\] phone number) are both decoded; replies use the
//! header form the terminal used. The body length in the properties must match the frame.
//!
//! # Messages
//! | id | message | what the server does |
//! |----|---------|----------------------|
//! | 0x0100 | registration | [`Login`]: accept = 0x8100 result 0 with an authentication code, refuse = 0x8100 result 4 ("terminal not in database") |
//! | 0x0102 | authentication | [`Login`]: accept = 0x8001 result 0, refuse = 0x8001 result 1 |
//! | 0x0002 | heartbeat | 0x8001 result 0 in `Reply::now` |
//! | 0x0003 | logout | 0x8001 result 0 in `Reply::now` |
//! | 0x0200 | location report | one fix; 0x8001 result 0 in `Reply::durable` |
//! | 0x0704 | batch location upload | one fix per record, refused records in `Reply::refused`; 0x8001 result 0 in `Reply::durable` |
//! | 0x0001 | terminal general response | refused as `Unsupported`, no reply (never answer an answer) |
//! | others | | refused as `Unsupported`; 0x8001 result 3 ("not supported") in `Reply::now` |
//!
//! Not covered: encrypted bodies (RSA, body properties bits 10..12) and subpackaged messages
//! (bit 13; multimedia uploads) are refused as `Unsupported` and answered with result 3; the
//! additional information items after the 28 fixed bytes of a location report (mileage,
//! fuel, signal, ...) are skipped, not checked; the authentication code a terminal presents
//! is not verified (the unit list, applied to the [`Login`], is the authority).
//!
//! # Reply policy
//! [`Jt808::frame`] returns `Err` only when the frame cannot be trusted (escaping, check code,
//! header or length wrong): nothing in it can be answered. A trusted frame is always `Ok`;
//! what it refuses is in `Reply::refused` (kept by the server as rejects with the frame),
//! and the terminal is still answered so that it does not retransmit the same message
//! forever:
//! - a location report or batch is acknowledged in `Reply::durable` (written once the fixes
//!   are durable; with no fix, at once after the rejects are kept): result 0 when its
//!   positions were stored or refused only for having no fix (a retransmission would carry
//!   the same no-fix record), result 2 ("message error") when it was refused as malformed
//!   (coordinates or time out of range, a batch whose record lengths do not add up; a batch is
//!   then refused whole, so the terminal may send it again repaired);
//! - registration, authentication, heartbeat and logout are answered at once as above;
//!   replies carry the server's own serial number, counted per connection.
//!
//! # Units, identity and time
//! - Device id: the terminal phone number's BCD digits with leading zeros stripped (`"0"`
//!   when all are zero), so the 2013 `013912345678` and the 2019 `00000000013912345678` are
//!   both `13912345678`: enter that form in the unit list. Some terminals put hex digits in
//!   the field (a terminal id rather than a phone number): a nibble above 9 is written as a
//!   lowercase hex digit (`4e5de66fba22`), as Traccar does, so such terminals can be listed too.
//! - Every header carries the phone number, so a location needs no earlier login: fixes are
//!   never refused as `NoIdentity`; the server maps the device id to a unit as for any fix.
//! - The authentication code given at registration is the device id itself (ASCII), so a
//!   terminal that registers again is given the same code.
//! - Latitude and longitude are in 1e-6 degrees with status bit 2 = south and bit 3 = west;
//!   status bit 1 clear means no fix (`NoFix`). Altitude metres, speed 1/10 km/h, direction
//!   degrees (0..359; other values give no course).
//! - Time is BCD `YYMMDDhhmmss` (years 2000..2099) in China standard time (GMT+8, no daylight
//!   saving); it is converted to UTC by subtracting 8 hours.

use super::{Cut, DeviceFix, FrameError, FrameErrorKind, Login, Reply, StreamProtocol};

/// Largest body the 10-bit length field allows.
pub const MAX_BODY: usize = 1023;
/// Largest header: 2019 form (2 + 2 + 1 + 10 + 2) with the subpackage fields (4).
const MAX_HEADER: usize = 21;
/// Largest frame on the wire: delimiters plus header, body and check code, all escaped.
pub const MAX_FRAME: usize = 2 + 2 * (MAX_HEADER + MAX_BODY + 1);

const DELIM: u8 = 0x7e;
const ESC: u8 = 0x7d;

const MSG_TERMINAL_RESPONSE: u16 = 0x0001;
const MSG_HEARTBEAT: u16 = 0x0002;
const MSG_LOGOUT: u16 = 0x0003;
const MSG_REGISTER: u16 = 0x0100;
const MSG_AUTH: u16 = 0x0102;
const MSG_LOCATION: u16 = 0x0200;
const MSG_BATCH: u16 = 0x0704;
const MSG_GENERAL_RESPONSE: u16 = 0x8001;
const MSG_REGISTER_RESPONSE: u16 = 0x8100;

const RESULT_OK: u8 = 0;
const RESULT_FAIL: u8 = 1;
const RESULT_MESSAGE_ERROR: u8 = 2;
const RESULT_UNSUPPORTED: u8 = 3;
const REGISTER_NO_TERMINAL: u8 = 4;

/// Bytes of a location report before its additional information items.
const LOCATION_FIXED: usize = 28;
/// China standard time, hours ahead of UTC.
const CST_OFFSET_MS: i64 = 8 * 3600 * 1000;

/// A JT/T 808 connection: the server's reply serial number.
#[derive(Debug, Default)]
pub struct Jt808 {
    serial: u16,
}

/// A decoded message header.
struct Header<'a> {
    id: u16,
    /// Protocol version byte of the 2019 form; `None` for 2011/2013.
    version: Option<u8>,
    /// The phone number's BCD bytes as received (6 or 10).
    phone_bcd: &'a [u8],
    /// The phone number as the device id.
    device: String,
    serial: u16,
    encrypted: bool,
    subpackaged: bool,
}

impl StreamProtocol for Jt808 {
    const NAME: &'static str = "jt808";

    fn cut(&self, buf: &[u8]) -> Cut {
        let Some(&first) = buf.first() else {
            return Cut::Need;
        };
        if first != DELIM {
            let n = buf.iter().position(|&b| b == DELIM).unwrap_or(buf.len());
            return Cut::Skip(n.max(1));
        }
        match buf.iter().skip(1).position(|&b| b == DELIM) {
            // `7e 7e`: the first is the end of a frame whose start was never seen.
            Some(0) => Cut::Skip(1),
            Some(i) => Cut::Frame(i + 2),
            None if buf.len() >= MAX_FRAME => Cut::Skip(buf.len()),
            None => Cut::Need,
        }
    }

    fn frame(&mut self, frame: &[u8]) -> Result<Reply, FrameError> {
        let message = unescape(frame)?;
        let (header, body) = parse_header(&message)?;
        Ok(self.handle(&header, body))
    }
}

impl Jt808 {
    fn handle(&mut self, h: &Header<'_>, body: &[u8]) -> Reply {
        if h.encrypted || h.subpackaged {
            let what = if h.encrypted {
                "encrypted"
            } else {
                "subpackaged"
            };
            return self.unsupported(h, format!("{what} message 0x{:04x} not supported", h.id));
        }
        match h.id {
            MSG_REGISTER => {
                let mut accept = h.serial.to_be_bytes().to_vec();
                accept.push(RESULT_OK);
                accept.extend_from_slice(h.device.as_bytes());
                let mut refuse = h.serial.to_be_bytes().to_vec();
                refuse.push(REGISTER_NO_TERMINAL);
                Reply {
                    login: Some(Login {
                        device: h.device.clone(),
                        accept: self.message(h, MSG_REGISTER_RESPONSE, &accept),
                        refuse: self.message(h, MSG_REGISTER_RESPONSE, &refuse),
                    }),
                    ..Reply::default()
                }
            }
            MSG_AUTH => Reply {
                login: Some(Login {
                    device: h.device.clone(),
                    accept: self.general(h, RESULT_OK),
                    refuse: self.general(h, RESULT_FAIL),
                }),
                ..Reply::default()
            },
            MSG_HEARTBEAT | MSG_LOGOUT => Reply {
                now: self.general(h, RESULT_OK),
                ..Reply::default()
            },
            MSG_LOCATION => match location(body, &h.device) {
                Ok(fix) => Reply {
                    fixes: vec![fix],
                    durable: self.general(h, RESULT_OK),
                    ..Reply::default()
                },
                Err(e) => {
                    let result = if e.kind == FrameErrorKind::NoFix {
                        RESULT_OK
                    } else {
                        RESULT_MESSAGE_ERROR
                    };
                    Reply {
                        refused: vec![e],
                        durable: self.general(h, result),
                        ..Reply::default()
                    }
                }
            },
            MSG_BATCH => match batch(body, &h.device) {
                Ok((fixes, refused)) => Reply {
                    fixes,
                    refused,
                    durable: self.general(h, RESULT_OK),
                    ..Reply::default()
                },
                Err(e) => Reply {
                    refused: vec![e],
                    durable: self.general(h, RESULT_MESSAGE_ERROR),
                    ..Reply::default()
                },
            },
            MSG_TERMINAL_RESPONSE => Reply {
                refused: vec![FrameError {
                    kind: FrameErrorKind::Unsupported,
                    detail: "terminal general response 0x0001 (the server sends no commands)"
                        .into(),
                }],
                ..Reply::default()
            },
            id => self.unsupported(h, format!("message 0x{id:04x} not supported")),
        }
    }

    fn unsupported(&mut self, h: &Header<'_>, detail: String) -> Reply {
        Reply {
            refused: vec![FrameError {
                kind: FrameErrorKind::Unsupported,
                detail,
            }],
            now: self.general(h, RESULT_UNSUPPORTED),
            ..Reply::default()
        }
    }

    /// A 0x8001 general response to the message `h`.
    fn general(&mut self, h: &Header<'_>, result: u8) -> Vec<u8> {
        let mut body = Vec::with_capacity(5);
        body.extend_from_slice(&h.serial.to_be_bytes());
        body.extend_from_slice(&h.id.to_be_bytes());
        body.push(result);
        self.message(h, MSG_GENERAL_RESPONSE, &body)
    }

    /// A whole server frame to the terminal of `h`, in its header form.
    fn message(&mut self, h: &Header<'_>, id: u16, body: &[u8]) -> Vec<u8> {
        let serial = self.serial;
        self.serial = self.serial.wrapping_add(1);
        // Server bodies here are at most a few dozen bytes: the mask never truncates them.
        let mut props = u16::try_from(body.len()).unwrap_or(0) & 0x03ff;
        let mut raw = Vec::with_capacity(body.len() + 20);
        raw.extend_from_slice(&id.to_be_bytes());
        if h.version.is_some() {
            props |= 0x4000;
        }
        raw.extend_from_slice(&props.to_be_bytes());
        if let Some(v) = h.version {
            raw.push(v);
        }
        raw.extend_from_slice(h.phone_bcd);
        raw.extend_from_slice(&serial.to_be_bytes());
        raw.extend_from_slice(body);
        raw.push(xor(&raw));
        escape(&raw)
    }
}

/// XOR of all bytes: the check code.
fn xor(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |acc, b| acc ^ b)
}

/// Escapes `raw` (message plus check code) and adds the delimiters.
fn escape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 4);
    out.push(DELIM);
    for &b in raw {
        match b {
            DELIM => out.extend_from_slice(&[ESC, 0x02]),
            ESC => out.extend_from_slice(&[ESC, 0x01]),
            _ => out.push(b),
        }
    }
    out.push(DELIM);
    out
}

/// Removes the delimiters and the escaping and checks the check code: the message without it.
fn unescape(frame: &[u8]) -> Result<Vec<u8>, FrameError> {
    let inner = match frame {
        [DELIM, inner @ .., DELIM] => inner,
        _ => return Err(FrameError::bad("frame not delimited by 0x7e")),
    };
    let mut out = Vec::with_capacity(inner.len());
    let mut bytes = inner.iter();
    while let Some(&b) = bytes.next() {
        match b {
            ESC => match bytes.next() {
                Some(0x01) => out.push(ESC),
                Some(0x02) => out.push(DELIM),
                Some(other) => {
                    return Err(FrameError::bad(format!("bad escape 0x7d 0x{other:02x}")));
                }
                None => return Err(FrameError::bad("frame ends inside an escape")),
            },
            DELIM => return Err(FrameError::bad("0x7e inside a frame")),
            _ => out.push(b),
        }
    }
    let Some((&check, message)) = out.split_last() else {
        return Err(FrameError::bad("empty frame"));
    };
    let computed = xor(message);
    if computed != check {
        return Err(FrameError::bad(format!(
            "check code 0x{check:02x}, computed 0x{computed:02x}"
        )));
    }
    out.pop();
    Ok(out)
}

/// Reads `N` bytes at `*at`, advancing it.
fn take<'a>(bytes: &'a [u8], at: &mut usize, n: usize, what: &str) -> Result<&'a [u8], FrameError> {
    let end = at
        .checked_add(n)
        .ok_or_else(|| FrameError::bad("length overflow"))?;
    let slice = bytes
        .get(*at..end)
        .ok_or_else(|| FrameError::bad(format!("truncated: no room for {what}")))?;
    *at = end;
    Ok(slice)
}

fn take_u16(bytes: &[u8], at: &mut usize, what: &str) -> Result<u16, FrameError> {
    let s = take(bytes, at, 2, what)?;
    Ok(u16::from_be_bytes([
        s.first().copied().unwrap_or(0),
        s.get(1).copied().unwrap_or(0),
    ]))
}

fn be_u32(s: &[u8]) -> u32 {
    s.iter()
        .take(4)
        .fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
}

fn parse_header(message: &[u8]) -> Result<(Header<'_>, &[u8]), FrameError> {
    let mut at = 0;
    let id = take_u16(message, &mut at, "message id")?;
    let props = take_u16(message, &mut at, "body properties")?;
    let body_len = usize::from(props & 0x03ff);
    let encrypted = props & 0x1c00 != 0;
    let subpackaged = props & 0x2000 != 0;
    let version = if props & 0x4000 != 0 {
        Some(
            take(message, &mut at, 1, "protocol version")?
                .first()
                .copied()
                .unwrap_or(0),
        )
    } else {
        None
    };
    let phone_bcd = take(
        message,
        &mut at,
        if version.is_some() { 10 } else { 6 },
        "phone number",
    )?;
    let device = phone_id(phone_bcd);
    let serial = take_u16(message, &mut at, "serial number")?;
    if subpackaged {
        take(message, &mut at, 4, "subpackage fields")?;
    }
    let body = message.get(at..).unwrap_or_default();
    if body.len() != body_len {
        return Err(FrameError::bad(format!(
            "body length {} in header, {} in frame",
            body_len,
            body.len()
        )));
    }
    Ok((
        Header {
            id,
            version,
            phone_bcd,
            device,
            serial,
            encrypted,
            subpackaged,
        },
        body,
    ))
}

/// The device id of a BCD phone number: its digits without leading zeros (a nibble above 9,
/// which some terminals use, is written as a lowercase hex digit).
fn phone_id(bcd: &[u8]) -> String {
    let digits: String = bcd.iter().map(|b| format!("{b:02x}")).collect();
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Two BCD digits as a number.
fn bcd2(b: u8) -> Option<u32> {
    let (hi, lo) = (b >> 4, b & 0x0f);
    (hi <= 9 && lo <= 9).then(|| u32::from(hi) * 10 + u32::from(lo))
}

/// BCD `YYMMDDhhmmss` in GMT+8 to unix milliseconds UTC.
fn cst_time_ms(t: &[u8]) -> Result<i64, FrameError> {
    let bad = || FrameError::bad(format!("bad time {}", hex(t)));
    let mut v = [0u32; 6];
    if t.len() != v.len() {
        return Err(bad());
    }
    for (slot, &b) in v.iter_mut().zip(t) {
        *slot = bcd2(b).ok_or_else(bad)?;
    }
    let [yy, mo, dd, hh, mi, ss] = v;
    let year = 2000 + i32::try_from(yy).map_err(|_| bad())?;
    let local = chrono::NaiveDate::from_ymd_opt(year, mo, dd)
        .and_then(|d| d.and_hms_opt(hh, mi, ss))
        .ok_or_else(bad)?;
    Ok(local.and_utc().timestamp_millis() - CST_OFFSET_MS)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes a location report body (0x0200, or one record of 0x0704).
fn location(body: &[u8], device: &str) -> Result<DeviceFix, FrameError> {
    let fixed = body.get(..LOCATION_FIXED).ok_or_else(|| {
        FrameError::bad(format!(
            "location report of {} bytes, needs {LOCATION_FIXED}",
            body.len()
        ))
    })?;
    let field = |from: usize, to: usize| fixed.get(from..to).unwrap_or_default();
    let status = be_u32(field(4, 8));
    let lat_raw = be_u32(field(8, 12));
    let lon_raw = be_u32(field(12, 16));
    let altitude = be_u32(field(16, 18));
    let speed = be_u32(field(18, 20));
    let direction = be_u32(field(20, 22));
    let time_ms = cst_time_ms(field(22, 28))?;
    if lat_raw > 90_000_000 || lon_raw > 180_000_000 {
        return Err(FrameError::bad(format!(
            "coordinates out of range: {lat_raw}, {lon_raw}"
        )));
    }
    if status & 0x02 == 0 {
        return Err(FrameError {
            kind: FrameErrorKind::NoFix,
            detail: format!("status 0x{status:08x}: not positioned"),
        });
    }
    let mut lat = f64::from(lat_raw) / 1e6;
    let mut lon = f64::from(lon_raw) / 1e6;
    if status & 0x04 != 0 {
        lat = -lat;
    }
    if status & 0x08 != 0 {
        lon = -lon;
    }
    Ok(DeviceFix {
        device: device.to_string(),
        time_ms,
        lat,
        lon,
        speed_kmh: Some(f64::from(speed) / 10.0),
        course_deg: (direction < 360).then_some(f64::from(direction)),
        alt_m: Some(f64::from(altitude)),
        acc_m: None,
        batt_pct: None,
    })
}

/// Decodes a batch upload body: its fixes and its refused records, or `Err` when the record
/// structure itself is broken (the batch is then refused whole).
fn batch(body: &[u8], device: &str) -> Result<(Vec<DeviceFix>, Vec<FrameError>), FrameError> {
    let mut at = 0;
    let count = take_u16(body, &mut at, "batch count")?;
    let kind = take(body, &mut at, 1, "batch type")?
        .first()
        .copied()
        .unwrap_or(0);
    let mut fixes = Vec::new();
    let mut refused = Vec::new();
    for i in 0..count {
        let len = take_u16(body, &mut at, "record length")
            .map_err(|e| FrameError::bad(format!("batch record {i} of {count}: {}", e.detail)))?;
        let record = take(body, &mut at, usize::from(len), "record")
            .map_err(|e| FrameError::bad(format!("batch record {i} of {count}: {}", e.detail)))?;
        match location(record, device) {
            Ok(fix) => fixes.push(fix),
            Err(e) => refused.push(FrameError {
                kind: e.kind,
                detail: format!("batch record {i} (type {kind}): {}", e.detail),
            }),
        }
    }
    if at != body.len() {
        return Err(FrameError::bad(format!(
            "batch of {count} records leaves {} bytes over",
            body.len() - at
        )));
    }
    Ok((fixes, refused))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::device::jt808 as dev;
    use crate::gateway::testing::{ms, mutated_streams, unhex};

    fn decode(bytes: &[u8]) -> Result<Reply, FrameError> {
        let mut s = Jt808::default();
        assert_eq!(s.cut(bytes), Cut::Frame(bytes.len()));
        s.frame(bytes)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// Frame from traccar/traccar src/test/java/org/traccar/protocol/HuabaoProtocolDecoderTest.java
    /// (Apache-2.0): a 2013 location report, phone 013833501744, serial 0x19.
    const LOC_2013: &str = "7E0200002A013833501744001900000000000000C201597FA806CC01580080000000081508180721210104000002F502020000030200009F7E";

    #[test]
    fn traccar_location_2013() {
        let reply = decode(&unhex(LOC_2013)).unwrap_or_default();
        assert_eq!(reply.fixes.len(), 1, "{reply:?}");
        let f = &reply.fixes[0];
        assert_eq!(f.device, "13833501744");
        assert!(close(f.lat, 22.6426), "{}", f.lat);
        assert!(close(f.lon, 114.032984), "{}", f.lon);
        assert_eq!(f.alt_m, Some(128.0));
        assert_eq!(f.speed_kmh, Some(0.0));
        assert_eq!(f.course_deg, Some(8.0));
        // 2015-08-18 07:21:21 GMT+8 is the evening before in UTC.
        assert_eq!(f.time_ms, ms("2015-08-17T23:21:21Z"));
        assert!(reply.now.is_empty() && reply.login.is_none() && reply.refused.is_empty());
        // The acknowledgement answers serial 0x19, id 0x0200, result 0, once durable.
        let ack = dev::parse_reply(&reply.durable);
        assert_eq!(
            ack,
            Ok(dev::ServerReply::General {
                answered_serial: 0x19,
                answered_id: 0x0200,
                result: 0
            })
        );
        assert_eq!(
            dev::reply_phone(&reply.durable).as_deref(),
            Ok("13833501744")
        );
    }

    /// Frame from the same Traccar test file whose length field (0x32) and check code do
    /// not match its 40-byte body: Traccar decodes it, this decoder refuses it.
    const INCONSISTENT: &str = "7E02000032013511221122000700000000000C000301578CC006CA3A5C00470000000014072317201501040000000030011631010BD07E";

    #[test]
    fn traccar_inconsistent_frame_refused() {
        let e = decode(&unhex(INCONSISTENT)).err();
        assert_eq!(e.map(|e| e.kind), Some(FrameErrorKind::BadFrame));
    }

    /// Frame from the same Traccar test file: status 0x1c06 (positioned, south), phone
    /// 202000129707, serial 0x1c.
    const SOUTH_EAST: &str = "7e0200002e202000129707001c0000000000001c0601a2f0a8091f0bf00000000000ed201103031733000000000000000000780000000018000000267e";

    #[test]
    fn traccar_south_east() {
        let reply = decode(&unhex(SOUTH_EAST)).unwrap_or_default();
        let f = reply
            .fixes
            .first()
            .cloned()
            .unwrap_or_else(|| panic!("no fix: {reply:?}"));
        assert_eq!(f.device, "202000129707");
        assert!(close(f.lat, -27.455656), "{}", f.lat);
        assert!(close(f.lon, 153.029616), "{}", f.lon);
        assert_eq!(f.course_deg, Some(237.0));
        assert_eq!(f.time_ms, ms("2020-11-02T19:17:33Z"));
        assert_eq!(
            dev::parse_reply(&reply.durable),
            Ok(dev::ServerReply::General {
                answered_serial: 0x1c,
                answered_id: 0x0200,
                result: 0
            })
        );
    }

    /// Frame from the same Traccar test file: 0x0900 data uplink pass-through from a
    /// terminal whose "phone number" has hex digits (4e5de66fba22).
    const PASS_THROUGH: &str = "7E0900005A4E5DE66FBA2200C4F02204280610090002010D052B0150052C0400129009052D016B052E014F05300231BA053502000005360203B8053802000005390200AD053D0201EA05440150054604009899D90545040000001E000C00030160A85C06D1C1389C7E";

    #[test]
    fn traccar_pass_through_unsupported() {
        let reply = decode(&unhex(PASS_THROUGH)).unwrap_or_default();
        assert_eq!(
            reply.refused.first().map(|e| e.kind),
            Some(FrameErrorKind::Unsupported)
        );
        assert!(reply.fixes.is_empty() && reply.durable.is_empty());
        assert_eq!(dev::reply_phone(&reply.now).as_deref(), Ok("4e5de66fba22"));
        assert_eq!(
            dev::parse_reply(&reply.now),
            Ok(dev::ServerReply::General {
                answered_serial: 0x00c4,
                answered_id: 0x0900,
                result: 3
            })
        );
    }

    /// Frame from the same Traccar test file: a 2011/2013 location report in the south
    /// and west, phone 014012499170.
    const LOC_B: &str = "7e020000220014012499170007000000000000400e012af16f02cbd2ba000000000000150101194257010400000077a97e";

    #[test]
    fn traccar_location_b() {
        let reply = decode(&unhex(LOC_B)).unwrap_or_default();
        let f = reply.fixes.first().cloned();
        let f = f.unwrap_or_else(|| panic!("no fix: {reply:?}"));
        assert_eq!(f.device, "1401249917");
        // Status 0x400e: positioned, south, west.
        assert!(close(f.lat, -19.591535), "{}", f.lat);
        assert!(close(f.lon, -46.912186), "{}", f.lon);
        assert_eq!(f.alt_m, Some(0.0));
        assert_eq!(f.time_ms, ms("2015-01-01T11:42:57Z"));
    }

    /// Batch upload (0x0704) from the same Traccar test file: 8 records, phone 013567777777.
    const BATCH: &str = "7E0704014301356777777707F5000801002600000000000000030159741206CBFD5001720000000116052709062401040000001D03020000002600000000000000030159746606CBFD50016B0000000116052709065301040000001D0302000000260000000000000003015975E406CBFE58013F0000000116052709072701040000001D0302000000260000000000000003015976DE06CBFF10012E0000000116052709075601040000001D0302000000260000000000000003015976BC06CBFED0012D0000000116052709083001040000001D0302000000260000000000000003015976FE06CBFEC001080000000116052709090001040000001D0302000000260000000000000003015976FE06CBFE7800FC0000000116052709093301040000001D0302000000260000000000000003015977A606CBFF3001080000000116052709100201040000001D030200001F7E";

    #[test]
    fn traccar_batch() {
        let reply = decode(&unhex(BATCH)).unwrap_or_default();
        assert_eq!(reply.fixes.len(), 8, "{reply:?}");
        assert!(reply.refused.is_empty());
        let f = &reply.fixes[0];
        assert_eq!(f.device, "13567777777");
        assert!(close(f.lat, 22.639634), "{}", f.lat);
        assert!(close(f.lon, 114.031952), "{}", f.lon);
        assert_eq!(f.alt_m, Some(370.0));
        assert_eq!(f.speed_kmh, Some(0.0));
        assert_eq!(f.course_deg, Some(1.0));
        assert_eq!(f.time_ms, ms("2016-05-27T01:06:24Z"));
        assert_eq!(reply.fixes[7].time_ms, ms("2016-05-27T01:10:02Z"));
        assert_eq!(
            dev::parse_reply(&reply.durable),
            Ok(dev::ServerReply::General {
                answered_serial: 0x07f5,
                answered_id: 0x0704,
                result: 0
            })
        );
    }

    /// Registration (0x0100) from the same Traccar test file, phone 013511221122, serial 5.
    const REGISTER: &str = "7E0100002D013511221122000500000000373031303748422D52303347424400000000000000000000003233363631303402CBD5424136383630387E";
    /// Authentication (0x0102) from the same file: code "authentication", serial 6.
    const AUTH: &str = "7E0102000E013511221122000661757468656E7469636174696F6E3F7E";
    /// Heartbeat (0x0002) from the same file, phone 043048325465, serial 0xb7.
    const HEARTBEAT: &str = "7e0002000004304832546500b7ca7e";

    #[test]
    fn traccar_register_and_auth() {
        let mut s = Jt808::default();
        let reply = s.frame(&unhex(REGISTER)).unwrap_or_default();
        let login = reply.login.unwrap_or_else(|| panic!("no login"));
        assert_eq!(login.device, "13511221122");
        assert_eq!(
            dev::parse_reply(&login.accept),
            Ok(dev::ServerReply::Register {
                answered_serial: 5,
                result: 0,
                auth_code: b"13511221122".to_vec()
            })
        );
        assert_eq!(
            dev::parse_reply(&login.refuse),
            Ok(dev::ServerReply::Register {
                answered_serial: 5,
                result: 4,
                auth_code: vec![]
            })
        );
        assert!(reply.fixes.is_empty() && reply.now.is_empty() && reply.durable.is_empty());

        let reply = s.frame(&unhex(AUTH)).unwrap_or_default();
        let login = reply.login.unwrap_or_else(|| panic!("no login"));
        assert_eq!(login.device, "13511221122");
        assert_eq!(
            dev::parse_reply(&login.accept),
            Ok(dev::ServerReply::General {
                answered_serial: 6,
                answered_id: 0x0102,
                result: 0
            })
        );
        assert_eq!(
            dev::parse_reply(&login.refuse),
            Ok(dev::ServerReply::General {
                answered_serial: 6,
                answered_id: 0x0102,
                result: 1
            })
        );
        // Server serials count up per connection.
        assert_ne!(
            dev::reply_serial(&login.accept),
            dev::reply_serial(&login.refuse)
        );
    }

    #[test]
    fn traccar_heartbeat_answered_now() {
        let reply = decode(&unhex(HEARTBEAT)).unwrap_or_default();
        assert!(reply.durable.is_empty() && reply.fixes.is_empty() && reply.login.is_none());
        assert_eq!(
            dev::parse_reply(&reply.now),
            Ok(dev::ServerReply::General {
                answered_serial: 0xb7,
                answered_id: 0x0002,
                result: 0
            })
        );
        assert_eq!(dev::reply_phone(&reply.now).as_deref(), Ok("43048325465"));
    }

    #[test]
    fn bad_check_code_refused() {
        let mut f = unhex(LOC_2013);
        let n = f.len();
        f[n - 2] ^= 0x01;
        let e = decode(&f).err().map(|e| e.kind);
        assert_eq!(e, Some(FrameErrorKind::BadFrame));
    }

    #[test]
    fn truncated_and_bad_length_refused() {
        let f = unhex(LOC_2013);
        // Drop a body byte and fix the check code: the header length no longer matches.
        let mut raw = unescape(&f).unwrap_or_default();
        raw.remove(20);
        raw.push(xor(&raw));
        let short = escape(&raw);
        assert_eq!(
            decode(&short).err().map(|e| e.kind),
            Some(FrameErrorKind::BadFrame)
        );
        // A header cut short.
        let mut tiny = vec![0x02, 0x00, 0x00];
        tiny.push(xor(&tiny));
        assert_eq!(
            decode(&escape(&tiny)).err().map(|e| e.kind),
            Some(FrameErrorKind::BadFrame)
        );
        assert_eq!(
            Jt808::default()
                .frame(&[DELIM, DELIM])
                .err()
                .map(|e| e.kind),
            Some(FrameErrorKind::BadFrame)
        );
        // A frame not yet complete is not cut.
        let s = Jt808::default();
        assert_eq!(s.cut(&f[..f.len() - 1]), Cut::Need);
        assert_eq!(s.cut(&[]), Cut::Need);
    }

    #[test]
    fn bad_escape_refused() {
        let mut s = Jt808::default();
        assert!(s.frame(&[DELIM, 0x00, ESC, 0x03, DELIM]).is_err());
        assert!(s.frame(&[DELIM, 0x00, ESC, DELIM]).is_err());
    }

    #[test]
    fn garbage_and_resync() {
        let s = Jt808::default();
        let mut stream = b"GET / HTTP".to_vec();
        stream.extend(unhex(LOC_2013));
        assert_eq!(s.cut(&stream), Cut::Skip(10));
        assert_eq!(s.cut(b"no delimiter"), Cut::Skip(12));
        // A lone end delimiter before a frame.
        let mut stream = vec![DELIM];
        stream.extend(unhex(LOC_2013));
        assert_eq!(s.cut(&stream), Cut::Skip(1));
        assert_eq!(s.cut(&stream[1..]), Cut::Frame(stream.len() - 1));
    }

    #[test]
    fn oversize_stream_skipped() {
        let s = Jt808::default();
        let mut buf = vec![DELIM];
        buf.resize(MAX_FRAME - 1, 0x11);
        assert_eq!(s.cut(&buf), Cut::Need);
        buf.push(0x11);
        assert_eq!(s.cut(&buf), Cut::Skip(MAX_FRAME));
        // The largest legal frame (everything escaped) is still cut whole.
        let big = escape(&[0x7e; MAX_HEADER + MAX_BODY + 1]);
        assert_eq!(big.len(), MAX_FRAME);
        assert_eq!(s.cut(&big), Cut::Frame(MAX_FRAME));
    }

    #[test]
    fn escaping_round_trip() {
        let raw: Vec<u8> = (0..=255u8).chain([0x7e, 0x7d, 0x7d, 0x02, 0x7e]).collect();
        let mut with_check = raw.clone();
        with_check.push(xor(&raw));
        let framed = escape(&with_check);
        assert!(!framed[1..framed.len() - 1].contains(&DELIM));
        assert_eq!(unescape(&framed), Ok(raw));
    }

    fn fix(lat: f64, lon: f64) -> DeviceFix {
        DeviceFix {
            device: "13912345678".into(),
            time_ms: ms("2024-02-29T23:59:58Z"),
            lat,
            lon,
            speed_kmh: Some(87.5),
            course_deg: Some(359.0),
            alt_m: Some(512.0),
            acc_m: None,
            batt_pct: None,
        }
    }

    #[test]
    fn encoder_round_trip_all_hemispheres() {
        for (lat, lon) in [
            (-33.868820, 151.209296),
            (51.5, -0.1275),
            (-12.046374, -77.042793),
        ] {
            for v2019 in [false, true] {
                let mut s = Jt808::default();
                let want = fix(lat, lon);
                let frame = if v2019 {
                    dev::location_2019("013912345678", 0x7e7d, &want)
                } else {
                    dev::location("013912345678", 0x7e7d, &want)
                };
                assert_eq!(s.cut(&frame), Cut::Frame(frame.len()));
                let reply = s.frame(&frame).unwrap_or_default();
                assert_eq!(reply.fixes, vec![want], "v2019 {v2019}");
                let ack = dev::parse_reply(&reply.durable);
                assert_eq!(
                    ack,
                    Ok(dev::ServerReply::General {
                        answered_serial: 0x7e7d,
                        answered_id: 0x0200,
                        result: 0
                    })
                );
                assert_eq!(
                    dev::reply_phone(&reply.durable).as_deref(),
                    Ok("13912345678")
                );
            }
        }
    }

    #[test]
    fn no_fix_refused_but_acknowledged() {
        let mut s = Jt808::default();
        let frame = dev::location_with_status("13912345678", 9, &fix(1.0, 2.0), 0);
        let reply = s.frame(&frame).unwrap_or_default();
        assert!(reply.fixes.is_empty());
        assert_eq!(
            reply.refused.iter().map(|e| e.kind).collect::<Vec<_>>(),
            vec![FrameErrorKind::NoFix]
        );
        assert_eq!(
            dev::parse_reply(&reply.durable),
            Ok(dev::ServerReply::General {
                answered_serial: 9,
                answered_id: 0x0200,
                result: 0
            })
        );
    }

    #[test]
    fn bad_time_answered_with_message_error() {
        let mut s = Jt808::default();
        let mut body = dev::location_body(&fix(1.0, 2.0));
        body[23] = 0x13; // month 13
        let frame = dev::encode(0x0200, "13912345678", 3, &body, None);
        let reply = s.frame(&frame).unwrap_or_default();
        assert!(reply.fixes.is_empty());
        assert_eq!(
            reply.refused.first().map(|e| e.kind),
            Some(FrameErrorKind::BadFrame)
        );
        assert_eq!(
            dev::parse_reply(&reply.durable),
            Ok(dev::ServerReply::General {
                answered_serial: 3,
                answered_id: 0x0200,
                result: 2
            })
        );
    }

    #[test]
    fn batch_with_refused_record() {
        let mut s = Jt808::default();
        let good = fix(10.0, 20.0);
        let mut records = vec![dev::location_body(&good), dev::location_body(&good)];
        records[1][7] &= !0x02; // clear "positioned" in the second record
        records.push(vec![0; 5]); // a record too short
        let frame = dev::batch_bodies("13912345678", 44, &records);
        let reply = s.frame(&frame).unwrap_or_default();
        assert_eq!(reply.fixes, vec![good]);
        let kinds: Vec<_> = reply.refused.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, vec![FrameErrorKind::NoFix, FrameErrorKind::BadFrame]);
        assert!(reply.refused[0].detail.contains("record 1"));
        assert_eq!(
            dev::parse_reply(&reply.durable),
            Ok(dev::ServerReply::General {
                answered_serial: 44,
                answered_id: 0x0704,
                result: 0
            })
        );
        // An encoder batch round trip.
        let fixes = vec![fix(1.0, 2.0), fix(-3.0, -4.0)];
        let reply = s
            .frame(&dev::batch("13912345678", 45, &fixes))
            .unwrap_or_default();
        assert_eq!(reply.fixes, fixes);
    }

    #[test]
    fn broken_batch_refused_whole() {
        let mut s = Jt808::default();
        let mut body = vec![0x00, 0x02, 0x00]; // two records announced
        let rec = dev::location_body(&fix(1.0, 2.0));
        body.extend_from_slice(&u16::try_from(rec.len()).unwrap_or(0).to_be_bytes());
        body.extend_from_slice(&rec);
        let frame = dev::encode(0x0704, "13912345678", 46, &body, None);
        let reply = s.frame(&frame).unwrap_or_default();
        assert!(reply.fixes.is_empty());
        assert_eq!(reply.refused.len(), 1);
        assert_eq!(
            dev::parse_reply(&reply.durable),
            Ok(dev::ServerReply::General {
                answered_serial: 46,
                answered_id: 0x0704,
                result: 2
            })
        );
    }

    #[test]
    fn unsupported_answered_with_result_3() {
        let mut s = Jt808::default();
        // 0x0900 data uplink pass-through.
        let reply = s
            .frame(&dev::encode(0x0900, "13912345678", 12, &[1, 2, 3], None))
            .unwrap_or_default();
        assert_eq!(
            reply.refused.first().map(|e| e.kind),
            Some(FrameErrorKind::Unsupported)
        );
        assert!(reply.durable.is_empty());
        assert_eq!(
            dev::parse_reply(&reply.now),
            Ok(dev::ServerReply::General {
                answered_serial: 12,
                answered_id: 0x0900,
                result: 3
            })
        );
        // A terminal's general response is never answered.
        let reply = s
            .frame(&dev::encode(
                0x0001,
                "13912345678",
                13,
                &[0, 1, 0x81, 0x03, 0],
                None,
            ))
            .unwrap_or_default();
        assert_eq!(
            reply.refused.first().map(|e| e.kind),
            Some(FrameErrorKind::Unsupported)
        );
        assert!(reply.now.is_empty() && reply.durable.is_empty());
    }

    #[test]
    fn device_encoders_register_auth_logout() {
        let mut s = Jt808::default();
        let r = s
            .frame(&dev::register("13912345678", 1))
            .unwrap_or_default();
        assert_eq!(r.login.map(|l| l.device).as_deref(), Some("13912345678"));
        let r = s
            .frame(&dev::authenticate("13912345678", 2, b"13912345678"))
            .unwrap_or_default();
        assert_eq!(r.login.map(|l| l.device).as_deref(), Some("13912345678"));
        let r = s
            .frame(&dev::heartbeat("13912345678", 3))
            .unwrap_or_default();
        assert_eq!(dev::parse_reply(&r.now).map(|_| ()), Ok(()));
        let r = s.frame(&dev::logout("13912345678", 4)).unwrap_or_default();
        assert_eq!(
            dev::parse_reply(&r.now),
            Ok(dev::ServerReply::General {
                answered_serial: 4,
                answered_id: 0x0003,
                result: 0
            })
        );
    }

    #[test]
    fn version_2019_reply_keeps_header_form() {
        let mut s = Jt808::default();
        let frame = dev::encode(0x0002, "13912345678", 5, &[], Some(1));
        let reply = s.frame(&frame).unwrap_or_default();
        let raw = unescape(&reply.now).unwrap_or_default();
        // Version flag set, version byte 1, 10-byte phone number.
        assert_eq!(raw.get(2).map(|b| b & 0x40), Some(0x40));
        assert_eq!(raw.get(4), Some(&1));
        assert_eq!(raw.len(), 2 + 2 + 1 + 10 + 2 + 5);
        assert_eq!(dev::reply_phone(&reply.now).as_deref(), Ok("13912345678"));
    }

    #[test]
    fn encrypted_refused_as_unsupported() {
        let mut s = Jt808::default();
        let mut frame = unescape(&dev::heartbeat("13912345678", 1)).unwrap_or_default();
        frame[2] |= 0x04; // RSA bit
        frame.push(xor(&frame));
        let reply = s.frame(&escape(&frame)).unwrap_or_default();
        assert_eq!(
            reply.refused.first().map(|e| e.kind),
            Some(FrameErrorKind::Unsupported)
        );
        assert_eq!(
            dev::parse_reply(&reply.now)
                .map(|r| matches!(r, dev::ServerReply::General { result: 3, .. })),
            Ok(true)
        );
    }

    #[test]
    fn phone_ids() {
        assert_eq!(
            phone_id(&[0x01, 0x39, 0x12, 0x34, 0x56, 0x78]),
            "13912345678"
        );
        assert_eq!(phone_id(&[0; 10]), "0");
        assert_eq!(phone_id(&[0x00, 0x0A, 0xBC]), "abc");
    }

    #[test]
    fn mutated_streams_keep_cut_invariants() {
        let seeds = [
            unhex(LOC_2013),
            unhex(BATCH),
            unhex(REGISTER),
            unhex(AUTH),
            unhex(HEARTBEAT),
            unhex(SOUTH_EAST),
        ];
        let fixes = mutated_streams::<Jt808>(&seeds, None, MAX_FRAME);
        // Most unmutated frames still decode.
        assert!(fixes > 1000, "{fixes}");
    }
}
