//! Device gateways: the protocols of the trackers, phones and radios stations really have,
//! into the same durable path as MQTT.
//!
//! Each protocol module is pure (bytes in, [`DeviceFix`]es, refusals and reply bytes out; no
//! IO, no clock); [`server`] runs them on TCP and UDP sockets, maps each device to its unit
//! through `units.csv` ([`server::DeviceMap`]), hands fixes and refusals to the
//! [`Intake`](crate::source::intake::Intake) and answers a device only once what it sent is
//! durable. The OsmAnd protocol is HTTP; the API crate serves it with [`osmand`]'s parsers
//! and [`server::Gateway::deliver`].

/// A position as a device protocol reports it, before its device is mapped to a unit.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceFix {
    /// The identity the protocol carries: the IMEI (GT06, Teltonika), the terminal's phone
    /// number (JT/T 808), the ISSI (TETRA), the device id (OsmAnd, NMEA).
    pub device: String,
    /// Fix time, unix milliseconds, UTC.
    pub time_ms: i64,
    /// Latitude, degrees (WGS 84; south negative).
    pub lat: f64,
    /// Longitude, degrees (WGS 84; west negative).
    pub lon: f64,
    /// Speed over ground, km/h.
    pub speed_kmh: Option<f64>,
    /// Course over ground, degrees clockwise from north.
    pub course_deg: Option<f64>,
    /// Altitude, metres.
    pub alt_m: Option<f64>,
    /// Horizontal accuracy radius, metres.
    pub acc_m: Option<f64>,
    /// Battery level, percent.
    pub batt_pct: Option<f64>,
}

/// What kind of refusal a [`FrameError`] is; each maps to a reject reason in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameErrorKind {
    /// Not a valid frame of the protocol: bad checksum, length, escaping, syntax, field out
    /// of range (`bad_frame`).
    BadFrame,
    /// A well-formed position message whose device says it has no valid fix (`no_fix`).
    NoFix,
    /// A well-formed message the pipeline does not use (`ignored_type`).
    Unsupported,
    /// A position before the device identified itself (`unknown_device`).
    NoIdentity,
}

/// A refused frame (or one refused record of a batch frame).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{detail}")]
pub struct FrameError {
    /// Which refusal.
    pub kind: FrameErrorKind,
    /// What was wrong, for an operator.
    pub detail: String,
}

impl FrameError {
    /// A [`FrameErrorKind::BadFrame`].
    pub fn bad(detail: impl Into<String>) -> Self {
        FrameError {
            kind: FrameErrorKind::BadFrame,
            detail: detail.into(),
        }
    }
}

/// How a stream protocol cuts the bytes received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// No whole frame yet: read more.
    Need,
    /// The first `n` bytes are one frame.
    Frame(usize),
    /// The first `n` bytes (n >= 1) are not the start of a frame: drop them (they are kept
    /// as a `bad_frame` reject by the server).
    Skip(usize),
}

/// A device announcing itself on a stream connection (GT06 login, Teltonika IMEI packet,
/// JT/T 808 registration or authentication).
#[derive(Debug, Clone, PartialEq)]
pub struct Login {
    /// The identity it gives.
    pub device: String,
    /// Written at once when the device is known (mapped to a unit).
    pub accept: Vec<u8>,
    /// Written when the device is unknown; the connection is closed after it.
    pub refuse: Vec<u8>,
}

/// What one frame asks of the server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reply {
    /// A device identifying itself; the server checks it against the unit list before
    /// anything else in this reply.
    pub login: Option<Login>,
    /// Positions to store.
    pub fixes: Vec<DeviceFix>,
    /// Records of the frame refused one by one (a batch frame with a bad record); the server
    /// keeps them as rejects with the frame.
    pub refused: Vec<FrameError>,
    /// Bytes to write at once (heartbeat replies and the like).
    pub now: Vec<u8>,
    /// Bytes to write once every fix above is durable: the protocol's acknowledgement of the
    /// positions. Empty when the protocol has none.
    pub durable: Vec<u8>,
}

/// A TCP protocol: frames cut from a byte stream, decoded in a per-connection session (the
/// identity a login gave, counters).
pub trait StreamProtocol: Send + 'static {
    /// The protocol's name: metrics label and the rejects' topic prefix.
    const NAME: &'static str;
    /// Where the next frame ends in `buf` (the bytes received and not yet cut).
    fn cut(&self, buf: &[u8]) -> Cut;
    /// Decodes one whole frame, as [`StreamProtocol::cut`] gave it.
    ///
    /// # Errors
    /// [`FrameError`] when the whole frame is refused; the server keeps it as a reject and
    /// reads on.
    fn frame(&mut self, frame: &[u8]) -> Result<Reply, FrameError>;
}

/// Splits a datagram (or a line of a TCP feed) into its lines (`\n`; a trailing `\r`
/// dropped, blank lines skipped) and decodes each with `line`: the shared framing of the
/// radio feeds. An empty datagram is one `BadFrame`.
pub fn each_line(
    bytes: &[u8],
    line: impl FnMut(&[u8]) -> Result<DeviceFix, FrameError>,
) -> Vec<Result<DeviceFix, FrameError>> {
    let lines: Vec<&[u8]> = bytes
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .collect();
    if lines.is_empty() {
        return vec![Err(FrameError::bad("empty datagram"))];
    }
    lines.into_iter().map(line).collect()
}

/// A datagram (or line) protocol without replies: radio dispatch gateways' feeds.
pub trait DatagramProtocol: Send + Sync + 'static {
    /// The protocol's name: metrics label and the rejects' topic prefix.
    const NAME: &'static str;
    /// Decodes one datagram (or one line of a TCP feed, without its line end) received at
    /// `recv_ms` (unix ms): each position in it, or why it was refused.
    fn datagram(&self, bytes: &[u8], recv_ms: i64) -> Vec<Result<DeviceFix, FrameError>>;
}

pub mod device;
pub mod gt06;
pub mod jt808;
pub mod lip;
pub mod nmea;
pub mod osmand;
pub mod server;
pub mod teltonika;
#[cfg(test)]
mod testing;
