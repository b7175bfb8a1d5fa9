//! The gateways' sockets: TCP connections of stream protocols, UDP datagrams and TCP line
//! feeds of radio dispatch gateways, each on its own port.
//!
//! # The guarantee
//! Every fix and every refused frame goes through the [`Intake`], the same durable path as
//! MQTT. A device is answered with its protocol's acknowledgement ([`Reply::durable`]) only
//! once everything its frame gave (fixes and rejects) is durable in the WAL; a device that
//! gets no answer (a crash, a paused store) sends again and the store drops the copies. Feeds
//! without an acknowledgement in their protocol (UDP datagrams, NMEA and LIP line feeds) get
//! none of this: what the process had received and not yet made durable when it died is lost.
//!
//! # Devices
//! [`DeviceMap`] maps each protocol's identity to a unit through the columns of `units.csv`
//! ([`IdColumn`]). A device that no unit carries is refused: its frame is kept as an
//! `unknown_device` reject, a login is answered with the protocol's refusal and the
//! connection closed.
//!
//! # Bounds
//! A connection holds at most [`MAX_BUFFER`] bytes not yet cut into frames (each protocol's
//! `cut` also skips anything longer than its largest frame), and is closed after
//! [`GatewayConfig::idle`] without a byte. Frames are handled one after another per
//! connection, each waiting for durability before the next is read, so a connection has at
//! most one frame in the pipeline.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use model::jurisdiction::Unit;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Cut, DatagramProtocol, DeviceFix, FrameError, FrameErrorKind, Reply, StreamProtocol};
use crate::decode::RawPing;
use crate::ping::{EpochMillis, RejectReason, Rejection};
use crate::source::intake::{Body, Closed, Intake};

/// Most bytes a connection holds that are not yet cut into frames.
pub const MAX_BUFFER: usize = 64 * 1024;

/// Bytes read from a connection at a time.
const READ_CHUNK: usize = 2048;

/// Longest line of a line feed; a longer one is refused and skipped.
pub const MAX_LINE: usize = 4096;

/// Which column of `units.csv` a protocol's device identity is looked up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdColumn {
    /// `device`: OsmAnd/Traccar clients, NMEA feeds, JT/T 808 terminals' phone numbers.
    Device,
    /// `imei`: GT06 and Teltonika trackers.
    Imei,
    /// `issi`: TETRA radios.
    Issi,
}

/// A device's unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitRef {
    /// Unit id.
    pub unit: String,
    /// Its station.
    pub station: String,
}

/// The devices of `units.csv`, by column and identity.
#[derive(Debug, Clone, Default)]
pub struct DeviceMap {
    /// By column (`IdColumn as usize`), then normalized identity.
    ids: [HashMap<String, UnitRef>; 3],
}

impl DeviceMap {
    /// The map of the units' device identities.
    #[must_use]
    pub fn from_units(units: &[Unit]) -> Self {
        let mut ids: [HashMap<String, UnitRef>; 3] = Default::default();
        for u in units {
            let unit = UnitRef {
                unit: u.id.clone(),
                station: u.station.clone(),
            };
            let d = &u.devices;
            for (column, id) in [
                (IdColumn::Device, &d.device),
                (IdColumn::Imei, &d.imei),
                (IdColumn::Issi, &d.issi),
            ] {
                if let Some(id) = id {
                    ids[column as usize].insert(normalize(column, id).to_owned(), unit.clone());
                }
            }
        }
        DeviceMap { ids }
    }

    /// The unit carrying device `id` in `column`.
    #[must_use]
    pub fn unit(&self, column: IdColumn, id: &str) -> Option<&UnitRef> {
        self.ids[column as usize].get(normalize(column, id))
    }

    /// How many device identities the map holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.iter().map(HashMap::len).sum()
    }

    /// True when no unit has a device identity.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.iter().all(HashMap::is_empty)
    }
}

/// Numeric identities compare as numbers: a JT/T 808 phone number or an ISSI may come with
/// leading zeros (BCD fields are fixed width) that `units.csv` leaves out, or the other way.
/// (A borrowed slice: the lookup of every fix allocates nothing.)
fn normalize(column: IdColumn, id: &str) -> &str {
    let numeric = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
    match column {
        IdColumn::Issi | IdColumn::Device if numeric => {
            let t = id.trim_start_matches('0');
            if t.is_empty() { "0" } else { t }
        }
        _ => id,
    }
}

/// Counters of one gateway, read by `/metrics`.
#[derive(Debug, Default)]
pub struct GatewayStats {
    /// TCP connections open now.
    pub connections: AtomicU64,
    /// TCP connections accepted since start.
    pub accepted: AtomicU64,
    /// Frames (datagrams, lines, HTTP requests) received.
    pub frames: AtomicU64,
    /// Fixes handed to the pipeline.
    pub fixes: AtomicU64,
    /// Frames and records kept as rejects.
    pub rejects: AtomicU64,
    /// Acknowledgements written to devices after their fixes were durable.
    pub acks: AtomicU64,
}

/// Settings shared by every gateway.
#[derive(Debug, Clone, Copy)]
pub struct GatewayConfig {
    /// A connection without a byte for this long is closed.
    pub idle: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            idle: Duration::from_secs(600),
        }
    }
}

/// One protocol's gateway: the intake, the device map and its counters.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// Protocol name (`jt808`, `gt06`, ...): the rejects' topic prefix.
    pub protocol: &'static str,
    column: IdColumn,
    intake: Intake,
    devices: Arc<DeviceMap>,
    /// Counters.
    pub stats: Arc<GatewayStats>,
    config: GatewayConfig,
}

/// What [`Gateway::deliver`] did with one fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// Handed to the pipeline under this sequence number.
    Fix(u64),
    /// The device is not in `units.csv`; kept as a reject under this number.
    UnknownDevice(u64),
}

impl Delivered {
    /// The input's sequence number.
    #[must_use]
    pub fn seq(self) -> u64 {
        match self {
            Delivered::Fix(s) | Delivered::UnknownDevice(s) => s,
        }
    }
}

impl Gateway {
    /// A gateway for `protocol`, looking devices up in `column`.
    #[must_use]
    pub fn new(
        protocol: &'static str,
        column: IdColumn,
        intake: Intake,
        devices: Arc<DeviceMap>,
        config: GatewayConfig,
    ) -> Self {
        Gateway {
            protocol,
            column,
            intake,
            devices,
            stats: Arc::default(),
            config,
        }
    }

    /// Maps `fix`'s device to its unit and hands it to the pipeline; an unknown device's
    /// `frame` is kept as a reject instead.
    ///
    /// # Errors
    /// [`Closed`] when ingest is shutting down.
    pub async fn deliver(
        &self,
        fix: DeviceFix,
        frame: &[u8],
        recv_time: EpochMillis,
    ) -> Result<Delivered, Closed> {
        let Some(unit) = self.devices.unit(self.column, &fix.device) else {
            let seq = self
                .reject(
                    &fix.device,
                    RejectReason::UnknownDevice,
                    format!(
                        "no unit in units.csv has {} `{}`",
                        column_name(self.column),
                        fix.device
                    ),
                    frame,
                    recv_time,
                )
                .await?;
            return Ok(Delivered::UnknownDevice(seq));
        };
        let body = Body::Fix {
            origin: format!("{}/{}", self.protocol, fix.device),
            raw: Box::new(raw_ping(fix, unit)),
            frame: frame.to_vec(),
        };
        self.stats.fixes.fetch_add(1, Relaxed);
        Ok(Delivered::Fix(self.intake.submit(body, recv_time).await?))
    }

    /// Keeps a refused `frame` from `source` (a device or a peer address) as a reject.
    ///
    /// # Errors
    /// [`Closed`] when ingest is shutting down.
    pub async fn reject(
        &self,
        source: &str,
        reason: RejectReason,
        detail: String,
        frame: &[u8],
        recv_time: EpochMillis,
    ) -> Result<u64, Closed> {
        self.stats.rejects.fetch_add(1, Relaxed);
        let r = Rejection {
            recv_time,
            topic: format!("{}/{source}", self.protocol),
            reason,
            detail,
            payload: frame.to_vec(),
        };
        self.intake.submit(Body::Reject(r), recv_time).await
    }

    /// Keeps a [`FrameError`] as a reject.
    ///
    /// # Errors
    /// [`Closed`] when ingest is shutting down.
    pub async fn refuse(
        &self,
        source: &str,
        error: FrameError,
        frame: &[u8],
        recv_time: EpochMillis,
    ) -> Result<u64, Closed> {
        let reason = reason_of(error.kind);
        self.reject(source, reason, error.detail, frame, recv_time)
            .await
    }

    /// Waits until input `seq` is durable.
    ///
    /// # Errors
    /// [`Closed`] when the store stopped before it was.
    pub async fn durable(&self, seq: u64) -> Result<(), Closed> {
        self.intake.durable(seq).await
    }

    /// True when `device` is in `units.csv`.
    #[must_use]
    pub fn knows(&self, device: &str) -> bool {
        self.devices.unit(self.column, device).is_some()
    }
}

/// The reject reason of a frame error.
#[must_use]
pub fn reason_of(kind: FrameErrorKind) -> RejectReason {
    match kind {
        FrameErrorKind::BadFrame => RejectReason::BadFrame,
        FrameErrorKind::NoFix => RejectReason::NoFix,
        FrameErrorKind::Unsupported => RejectReason::IgnoredType,
        FrameErrorKind::NoIdentity => RejectReason::UnknownDevice,
    }
}

fn column_name(c: IdColumn) -> &'static str {
    match c {
        IdColumn::Device => "device",
        IdColumn::Imei => "imei",
        IdColumn::Issi => "issi",
    }
}

/// A fix as the pipeline's validation takes it (fix time rounded down to the second, as
/// the store keeps it).
fn raw_ping(fix: DeviceFix, unit: &UnitRef) -> RawPing {
    RawPing {
        station: unit.station.clone(),
        unit: unit.unit.clone(),
        lat: fix.lat,
        lon: fix.lon,
        tst: fix.time_ms.div_euclid(1000),
        acc: fix.acc_m,
        vel: fix.speed_kmh,
        cog: fix.course_deg,
        alt: fix.alt_m,
        batt: fix.batt_pct,
        tid: None,
    }
}

/// Accepts connections of stream protocol `P` until `shutdown` fires; each connection runs
/// on `tracker`.
pub async fn serve_stream<P: StreamProtocol + Default>(
    listener: TcpListener,
    gateway: Gateway,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    accept(listener, gateway, tracker, shutdown, |gw, stream, peer, stop| async move {
        Connection::<P>::new(gw, peer).run(stream, stop).await
    })
    .await;
}

/// Accepts connections until `shutdown` fires and runs `connection` for each on `tracker`,
/// counting them in the gateway's stats.
async fn accept<F, Fut>(
    listener: TcpListener,
    gateway: Gateway,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    connection: F,
) where
    F: Fn(Gateway, TcpStream, SocketAddr, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), Ended>> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let stats = gateway.stats.clone();
                stats.accepted.fetch_add(1, Relaxed);
                stats.connections.fetch_add(1, Relaxed);
                let run = connection(gateway.clone(), stream, peer, shutdown.clone());
                tracker.spawn(async move {
                    if let Err(error) = run.await {
                        tracing::debug!(%peer, %error, "Device connection closed");
                    }
                    stats.connections.fetch_sub(1, Relaxed);
                });
            }
            Err(error) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                tracing::warn!(%error, protocol = gateway.protocol, "Accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Why a connection ended.
#[derive(Debug)]
enum Ended {
    Io(std::io::Error),
    Idle,
    Closed,
    Refused(String),
    Overflow,
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::Io(e) => write!(f, "{e}"),
            Ended::Idle => f.write_str("idle"),
            Ended::Closed => f.write_str("ingest is shutting down"),
            Ended::Refused(d) => write!(f, "device {d} refused"),
            Ended::Overflow => write!(f, "over {MAX_BUFFER} bytes without a frame"),
        }
    }
}

impl From<std::io::Error> for Ended {
    fn from(e: std::io::Error) -> Self {
        Ended::Io(e)
    }
}

impl From<Closed> for Ended {
    fn from(_: Closed) -> Self {
        Ended::Closed
    }
}

/// One device's TCP connection.
struct Connection<P> {
    gw: Gateway,
    protocol: P,
    peer: SocketAddr,
    /// The identity a login gave, for the rejects' topic.
    device: Option<String>,
}

impl<P: StreamProtocol + Default> Connection<P> {
    fn new(gw: Gateway, peer: SocketAddr) -> Self {
        Connection {
            gw,
            protocol: P::default(),
            peer,
            device: None,
        }
    }

    fn source(&self) -> String {
        self.device.clone().unwrap_or_else(|| self.peer.to_string())
    }

    async fn run(
        mut self,
        mut stream: TcpStream,
        shutdown: CancellationToken,
    ) -> Result<(), Ended> {
        // Nagle would hold small replies back until the device's next frame.
        stream.set_nodelay(true)?;
        // Grown when bytes arrive and given back once they are all cut into frames, so an
        // idle connection holds no buffer.
        let mut buf: Vec<u8> = Vec::new();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                r = tokio::time::timeout(self.gw.config.idle, stream.readable()) => {
                    r.map_err(|_| Ended::Idle)??;
                }
            }
            if buf.capacity() - buf.len() < READ_CHUNK {
                buf.reserve(READ_CHUNK);
            }
            match stream.try_read_buf(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e.into()),
            }
            self.frames(&mut buf, &mut stream).await?;
            if buf.is_empty() {
                buf = Vec::new();
            }
            if buf.len() > MAX_BUFFER {
                let t = model::now_ms();
                let source = self.source();
                self.gw
                    .reject(
                        &source,
                        RejectReason::BadFrame,
                        format!("{} bytes without a whole frame", buf.len()),
                        &buf,
                        t,
                    )
                    .await?;
                return Err(Ended::Overflow);
            }
        }
    }

    /// Cuts and handles every whole frame in `buf`.
    async fn frames(&mut self, buf: &mut Vec<u8>, stream: &mut TcpStream) -> Result<(), Ended> {
        loop {
            match self.protocol.cut(buf) {
                Cut::Need => return Ok(()),
                Cut::Skip(n) => {
                    let n = n.clamp(1, buf.len());
                    let skipped: Vec<u8> = buf.drain(..n).collect();
                    let source = self.source();
                    self.gw
                        .reject(
                            &source,
                            RejectReason::BadFrame,
                            format!("{n} bytes that do not start a {} frame", P::NAME),
                            &skipped,
                            model::now_ms(),
                        )
                        .await?;
                }
                Cut::Frame(n) => {
                    let n = n.clamp(1, buf.len());
                    let frame: Vec<u8> = buf.drain(..n).collect();
                    self.frame(&frame, stream).await?;
                }
            }
        }
    }

    /// Handles one frame: a login first, then fixes and refusals into the pipeline, the
    /// immediate reply, and the acknowledgement once all of it is durable.
    async fn frame(&mut self, frame: &[u8], stream: &mut TcpStream) -> Result<(), Ended> {
        let t = model::now_ms();
        self.gw.stats.frames.fetch_add(1, Relaxed);
        let reply: Reply = match self.protocol.frame(frame) {
            Ok(r) => r,
            Err(e) => {
                let source = self.source();
                self.gw.refuse(&source, e, frame, t).await?;
                return Ok(());
            }
        };
        if let Some(login) = reply.login {
            if !self.gw.knows(&login.device) {
                let seq = self
                    .gw
                    .reject(
                        &login.device,
                        RejectReason::UnknownDevice,
                        format!(
                            "login of a device no unit in units.csv has: `{}`",
                            login.device
                        ),
                        frame,
                        t,
                    )
                    .await?;
                self.gw.durable(seq).await?;
                stream.write_all(&login.refuse).await?;
                return Err(Ended::Refused(login.device));
            }
            self.device = Some(login.device);
            stream.write_all(&login.accept).await?;
        }
        let mut last = None;
        for fix in reply.fixes {
            last = Some(self.gw.deliver(fix, frame, t).await?.seq());
        }
        for e in reply.refused {
            let source = self.source();
            last = Some(self.gw.refuse(&source, e, frame, t).await?);
        }
        if !reply.now.is_empty() {
            stream.write_all(&reply.now).await?;
        }
        if !reply.durable.is_empty() {
            if let Some(seq) = last {
                self.gw.durable(seq).await?;
            }
            stream.write_all(&reply.durable).await?;
            self.gw.stats.acks.fetch_add(1, Relaxed);
        }
        Ok(())
    }
}

/// Receives datagrams of protocol `P` until `shutdown` fires. Datagrams carry no
/// acknowledgement: each is handed on as it comes.
pub async fn serve_udp<P: DatagramProtocol>(
    socket: UdpSocket,
    protocol: P,
    gateway: Gateway,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let received = tokio::select! {
            () = shutdown.cancelled() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        match received {
            Ok((n, peer)) => {
                let datagram = buf.get(..n).unwrap_or_default();
                if datagrams(&protocol, &gateway, datagram, &peer.to_string())
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(error) => tracing::warn!(%error, protocol = P::NAME, "UDP receive failed"),
        }
    }
}

/// Hands one datagram's (or line's) fixes and refusals to the pipeline; returns the last
/// sequence number.
async fn datagrams<P: DatagramProtocol>(
    protocol: &P,
    gateway: &Gateway,
    bytes: &[u8],
    peer: &str,
) -> Result<Option<u64>, Closed> {
    let t = model::now_ms();
    gateway.stats.frames.fetch_add(1, Relaxed);
    let mut last = None;
    for result in protocol.datagram(bytes, t) {
        last = Some(match result {
            Ok(fix) => gateway.deliver(fix, bytes, t).await?.seq(),
            Err(e) => gateway.refuse(peer, e, bytes, t).await?,
        });
    }
    Ok(last)
}

/// Accepts TCP line feeds of protocol `P` (one datagram's content a line) until `shutdown`
/// fires. A connection reads its next line only once the previous one is durable, so a slow
/// store slows the feed through TCP's own flow control.
pub async fn serve_lines<P: DatagramProtocol + Clone>(
    listener: TcpListener,
    protocol: P,
    gateway: Gateway,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    accept(
        listener,
        gateway,
        tracker,
        shutdown,
        |gw, stream, peer, stop| {
            let p = protocol.clone();
            async move { lines(p, &gw, stream, peer, stop).await }
        },
    )
    .await;
}

async fn lines<P: DatagramProtocol>(
    protocol: P,
    gw: &Gateway,
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: CancellationToken,
) -> Result<(), Ended> {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::with_capacity(256);
    let source = peer.to_string();
    loop {
        line.clear();
        let mut limited = (&mut reader).take(MAX_LINE as u64 + 1);
        let read = limited.read_until(b'\n', &mut line);
        let n = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            r = tokio::time::timeout(gw.config.idle, read) => r.map_err(|_| Ended::Idle)??,
        };
        if n == 0 {
            return Ok(());
        }
        if line.len() > MAX_LINE {
            gw.reject(
                &source,
                RejectReason::BadFrame,
                format!("line longer than {MAX_LINE} bytes"),
                &line,
                model::now_ms(),
            )
            .await?;
            // Drop the rest of the long line.
            let mut rest = Vec::new();
            (&mut reader)
                .take(MAX_BUFFER as u64)
                .read_until(b'\n', &mut rest)
                .await?;
            continue;
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        if line.is_empty() {
            continue;
        }
        if let Some(seq) = datagrams(&protocol, gw, &line, &source).await? {
            gw.durable(seq).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::jurisdiction::{DeviceIds, UnitKind};

    fn unit(id: &str, device: Option<&str>, imei: Option<&str>, issi: Option<&str>) -> Unit {
        Unit {
            id: id.into(),
            kind: UnitKind::Car,
            station: "ST1".into(),
            crew: 2,
            devices: DeviceIds {
                device: device.map(Into::into),
                imei: imei.map(Into::into),
                issi: issi.map(Into::into),
            },
        }
    }

    #[test]
    fn devices_are_found_in_their_own_column_and_numbers_without_leading_zeros() {
        let map = DeviceMap::from_units(&[
            unit(
                "C01",
                Some("13800138000"),
                Some("358480081234567"),
                Some("2001001"),
            ),
            unit("B01", Some("osm-b01"), None, None),
        ]);
        assert_eq!(map.len(), 4);
        let c01 = |c, id| map.unit(c, id).map(|u| u.unit.as_str());
        assert_eq!(c01(IdColumn::Device, "013800138000"), Some("C01"));
        assert_eq!(c01(IdColumn::Device, "13800138000"), Some("C01"));
        assert_eq!(c01(IdColumn::Issi, "02001001"), Some("C01"));
        assert_eq!(c01(IdColumn::Imei, "358480081234567"), Some("C01"));
        // An IMEI is not looked up as a phone number, nor the other way.
        assert_eq!(c01(IdColumn::Device, "358480081234567"), None);
        assert_eq!(c01(IdColumn::Imei, "13800138000"), None);
        assert_eq!(c01(IdColumn::Device, "osm-b01"), Some("B01"));
        assert_eq!(c01(IdColumn::Device, "OSM-B01"), None);
    }

    #[test]
    fn a_fix_keeps_its_values_and_takes_its_units_identity() {
        let fix = DeviceFix {
            device: "x".into(),
            time_ms: 1_700_000_000_999,
            lat: 22.5,
            lon: 114.0,
            speed_kmh: Some(36.0),
            course_deg: Some(90.0),
            alt_m: Some(12.0),
            acc_m: Some(5.0),
            batt_pct: Some(80.0),
        };
        let raw = raw_ping(
            fix,
            &UnitRef {
                unit: "C01".into(),
                station: "ST1".into(),
            },
        );
        assert_eq!((raw.unit.as_str(), raw.station.as_str()), ("C01", "ST1"));
        assert_eq!(raw.tst, 1_700_000_000);
        assert_eq!(
            (raw.vel, raw.cog, raw.alt, raw.acc, raw.batt),
            (Some(36.0), Some(90.0), Some(12.0), Some(5.0), Some(80.0))
        );
    }
}
