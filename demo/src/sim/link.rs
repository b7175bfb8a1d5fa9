//! One unit's device on the network, speaking its protocol to a gateway of `patrol serve`:
//! a JT/T 808 terminal, a GT06 or Teltonika tracker, a phone with an OsmAnd/Traccar client,
//! or a radio dispatch gateway's LIP or NMEA feed. The simulator drives its units' devices
//! with it, and the tests and benchmarks drive the gateways with it.
//!
//! A link connects on first use, logs in where the protocol has a login, and after a failure
//! drops its connection so that the next send connects again, as a device does.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use ingest::gateway::device::{gt06, jt808, lip, nmea, osmand, teltonika};
use ingest::gateway::{Cut, DeviceFix, StreamProtocol};
use model::jurisdiction::DeviceIds;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long a device waits for a reply before it gives the connection up.
pub const REPLY_WAIT: Duration = Duration::from_secs(10);

/// How a device reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OwnTracks JSON over MQTT (the simulator's own path, not a gateway).
    Mqtt,
    /// JT/T 808 over TCP.
    Jt808,
    /// GT06 over TCP.
    Gt06,
    /// Teltonika Codec 8 over TCP.
    Teltonika,
    /// OsmAnd / Traccar Client over HTTP.
    Osmand,
    /// TETRA LIP long location reports over UDP.
    Lip,
    /// NMEA RMC sentences over a TCP line feed.
    Nmea,
}

impl Protocol {
    /// Every protocol, MQTT first: the simulator gives the `i`th unit `ALL[i % 7]`.
    pub const ALL: [Protocol; 7] = [
        Protocol::Mqtt,
        Protocol::Jt808,
        Protocol::Gt06,
        Protocol::Teltonika,
        Protocol::Osmand,
        Protocol::Lip,
        Protocol::Nmea,
    ];

    /// The protocol's name, as the gateways' metrics and rejects name it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Mqtt => "mqtt",
            Protocol::Jt808 => "jt808",
            Protocol::Gt06 => "gt06",
            Protocol::Teltonika => "teltonika",
            Protocol::Osmand => "osmand",
            Protocol::Lip => "lip",
            Protocol::Nmea => "nmea",
        }
    }

    /// True when the gateway answers each fix once it is durable.
    #[must_use]
    pub fn acknowledges(self) -> bool {
        matches!(
            self,
            Protocol::Mqtt
                | Protocol::Jt808
                | Protocol::Gt06
                | Protocol::Teltonika
                | Protocol::Osmand
        )
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown protocol `{s}`"))
    }
}

/// Where each gateway listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayPorts {
    /// OsmAnd (HTTP).
    pub osmand: SocketAddr,
    /// JT/T 808 (TCP).
    pub jt808: SocketAddr,
    /// GT06 (TCP).
    pub gt06: SocketAddr,
    /// Teltonika (TCP).
    pub teltonika: SocketAddr,
    /// TETRA LIP (UDP).
    pub lip: SocketAddr,
    /// NMEA (TCP lines).
    pub nmea: SocketAddr,
}

impl GatewayPorts {
    /// The address of `protocol`'s gateway; `None` for MQTT.
    #[must_use]
    pub fn of(&self, protocol: Protocol) -> Option<SocketAddr> {
        match protocol {
            Protocol::Mqtt => None,
            Protocol::Jt808 => Some(self.jt808),
            Protocol::Gt06 => Some(self.gt06),
            Protocol::Teltonika => Some(self.teltonika),
            Protocol::Osmand => Some(self.osmand),
            Protocol::Lip => Some(self.lip),
            Protocol::Nmea => Some(self.nmea),
        }
    }
}

/// Why a send failed; the link has dropped its connection.
#[derive(Debug)]
pub struct LinkError(String);

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LinkError {}

impl From<std::io::Error> for LinkError {
    fn from(e: std::io::Error) -> Self {
        LinkError(e.to_string())
    }
}

fn fail<T>(what: impl Into<String>) -> Result<T, LinkError> {
    Err(LinkError(what.into()))
}

/// One device's link to its gateway.
#[derive(Debug)]
pub struct Link {
    protocol: Protocol,
    addr: SocketAddr,
    ids: DeviceIds,
    tcp: Option<TcpStream>,
    udp: Option<UdpSocket>,
    /// Bytes read and not yet cut into a reply.
    buf: Vec<u8>,
    serial: u16,
}

impl Link {
    /// A link of a device with identities `ids` to the gateway of `protocol` at `addr`.
    ///
    /// # Errors
    /// When `protocol` is MQTT (no gateway) or the unit has no identity it needs.
    pub fn new(protocol: Protocol, addr: SocketAddr, ids: DeviceIds) -> Result<Self, LinkError> {
        let needed = match protocol {
            Protocol::Mqtt => return fail("MQTT has no gateway link"),
            Protocol::Gt06 | Protocol::Teltonika => &ids.imei,
            Protocol::Lip => &ids.issi,
            Protocol::Jt808 | Protocol::Osmand | Protocol::Nmea => &ids.device,
        };
        if needed.is_none() {
            return fail(format!("the unit has no identity for {protocol}"));
        }
        Ok(Link {
            protocol,
            addr,
            ids,
            tcp: None,
            udp: None,
            buf: Vec::new(),
            serial: 0,
        })
    }

    /// The protocol.
    #[must_use]
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Drops the connection (a device switched off or out of coverage); the next send
    /// connects and logs in again.
    pub fn disconnect(&mut self) {
        self.tcp = None;
        self.buf.clear();
    }

    fn device(&self) -> &str {
        self.ids.device.as_deref().unwrap_or_default()
    }

    fn imei(&self) -> &str {
        self.ids.imei.as_deref().unwrap_or_default()
    }

    fn next_serial(&mut self) -> u16 {
        self.serial = self.serial.wrapping_add(1);
        self.serial
    }

    /// Sends `fix` (its `device` is replaced by the link's identity). Returns once the
    /// gateway acknowledged it, true, or once it is sent where the protocol has no
    /// acknowledgement, false.
    ///
    /// # Errors
    /// When the gateway cannot be reached, refuses the device or does not acknowledge within
    /// [`REPLY_WAIT`]; the connection is dropped and the next send reconnects.
    pub async fn send(&mut self, fix: &DeviceFix) -> Result<bool, LinkError> {
        let r = self.try_send(fix).await;
        if r.is_err() {
            self.disconnect();
        }
        r
    }

    /// Sends a garbled frame (the simulator's malformed reports): bytes the gateway keeps
    /// as a `bad_frame` reject.
    ///
    /// # Errors
    /// As [`Link::send`].
    pub async fn send_garbled(&mut self, fix: &DeviceFix) -> Result<(), LinkError> {
        let r = self.try_garbled(fix).await;
        if r.is_err() {
            self.disconnect();
        }
        r
    }

    async fn try_send(&mut self, fix: &DeviceFix) -> Result<bool, LinkError> {
        let mut fix = fix.clone();
        match self.protocol {
            Protocol::Mqtt => fail("MQTT has no gateway link"),
            Protocol::Jt808 => {
                self.connect().await?;
                fix.device = self.device().to_owned();
                let serial = self.next_serial();
                let frame = jt808::location(self.device(), serial, &fix);
                self.jt808_exchange(&frame, serial, 0x0200).await?;
                Ok(true)
            }
            Protocol::Gt06 => {
                self.connect().await?;
                let serial = self.next_serial();
                let frame = gt06::location(serial, &fix);
                let (_, answered) = self.gt06_exchange(&frame).await?;
                if answered != serial {
                    return fail(format!(
                        "GT06 reply answers serial {answered}, not {serial}"
                    ));
                }
                Ok(true)
            }
            Protocol::Teltonika => {
                self.connect().await?;
                let packet = teltonika::avl_packet_codec8(&[fix]);
                self.write(&packet).await?;
                let reply = self.read_exact(4).await?;
                match teltonika::parse_ack(&reply) {
                    Some(1) => Ok(true),
                    other => fail(format!("Teltonika acknowledged {other:?} records, not 1")),
                }
            }
            Protocol::Osmand => {
                fix.device = self.device().to_owned();
                let status = self.http_get(&osmand::query(&fix)).await?;
                if status == 200 {
                    Ok(true)
                } else {
                    fail(format!("OsmAnd gateway answered {status}"))
                }
            }
            Protocol::Lip => {
                let issi: u32 = self
                    .ids
                    .issi
                    .as_deref()
                    .unwrap_or_default()
                    .parse()
                    .map_err(|_| LinkError("ISSI is not a number".into()))?;
                // The long report, which carries the time of the position (a short one says
                // only how long ago it was taken).
                let line = lip::long_report(issi, &fix);
                self.datagram(line.as_bytes()).await?;
                Ok(false)
            }
            Protocol::Nmea => {
                let line = format!("{}\r\n", nmea::rmc_line(self.device(), &fix));
                self.connect().await?;
                self.write(line.as_bytes()).await?;
                Ok(false)
            }
        }
    }

    async fn try_garbled(&mut self, fix: &DeviceFix) -> Result<(), LinkError> {
        // No byte that starts a frame of any of the stream protocols.
        const GARBLED: &[u8] = b"GARBLED FRAME";
        match self.protocol {
            Protocol::Mqtt => fail("MQTT has no gateway link"),
            Protocol::Jt808 | Protocol::Gt06 | Protocol::Teltonika => {
                self.connect().await?;
                self.write(GARBLED).await
            }
            Protocol::Osmand => {
                let query = format!(
                    "id={}&lat=north&lon=east&timestamp={}",
                    self.device(),
                    fix.time_ms / 1000
                );
                self.http_get(&query).await.map(|_| ())
            }
            Protocol::Lip => {
                let line = format!(
                    "{},0A-not-hex",
                    self.ids.issi.as_deref().unwrap_or_default()
                );
                self.datagram(line.as_bytes()).await
            }
            Protocol::Nmea => {
                // The right sentence with a wrong checksum.
                let mut line = nmea::rmc_line(self.device(), fix);
                let wrong = if line.ends_with('0') { '1' } else { '0' };
                line.pop();
                line.push(wrong);
                line.push_str("\r\n");
                self.connect().await?;
                self.write(line.as_bytes()).await
            }
        }
    }

    /// Connects (and logs in) if not connected.
    async fn connect(&mut self) -> Result<(), LinkError> {
        if self.tcp.is_some() {
            return Ok(());
        }
        let stream = tokio::time::timeout(REPLY_WAIT, TcpStream::connect(self.addr))
            .await
            .map_err(|_| LinkError(format!("connecting to {} timed out", self.addr)))??;
        stream.set_nodelay(true)?;
        self.tcp = Some(stream);
        self.buf.clear();
        match self.protocol {
            Protocol::Jt808 => {
                let serial = self.next_serial();
                let frame = jt808::register(self.device(), serial);
                let code = match self.jt808_reply(&frame).await? {
                    jt808::ServerReply::Register {
                        result: 0,
                        auth_code,
                        ..
                    } => auth_code,
                    other => return fail(format!("JT/T 808 registration refused: {other:?}")),
                };
                let serial = self.next_serial();
                let frame = jt808::authenticate(self.device(), serial, &code);
                self.jt808_exchange(&frame, serial, 0x0102).await
            }
            Protocol::Gt06 => {
                let serial = self.next_serial();
                let frame = gt06::login(self.imei(), serial);
                match self.gt06_exchange(&frame).await? {
                    (0x01, s) if s == serial => Ok(()),
                    other => fail(format!("GT06 login answered {other:?}")),
                }
            }
            Protocol::Teltonika => {
                let packet = teltonika::imei_packet(self.imei());
                self.write(&packet).await?;
                let reply = self.read_exact(1).await?;
                match teltonika::parse_login_reply(&reply) {
                    Some(true) => Ok(()),
                    _ => fail("Teltonika IMEI refused"),
                }
            }
            Protocol::Mqtt | Protocol::Osmand | Protocol::Lip | Protocol::Nmea => Ok(()),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        let Some(tcp) = self.tcp.as_mut() else {
            return fail("not connected");
        };
        tcp.write_all(bytes).await?;
        Ok(())
    }

    /// Reads until `cut` finds a whole frame in what was read, and returns it.
    async fn read_frame(&mut self, cut: impl Fn(&[u8]) -> Cut) -> Result<Vec<u8>, LinkError> {
        loop {
            match cut(&self.buf) {
                Cut::Frame(n) => return Ok(self.buf.drain(..n.min(self.buf.len())).collect()),
                Cut::Skip(n) => {
                    self.buf.drain(..n.clamp(1, self.buf.len()));
                }
                Cut::Need => self.read_more().await?,
            }
        }
    }

    async fn read_exact(&mut self, n: usize) -> Result<Vec<u8>, LinkError> {
        while self.buf.len() < n {
            self.read_more().await?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    async fn read_more(&mut self) -> Result<(), LinkError> {
        let Some(tcp) = self.tcp.as_mut() else {
            return fail("not connected");
        };
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(REPLY_WAIT, tcp.read(&mut chunk))
            .await
            .map_err(|_| LinkError("no reply from the gateway".into()))??;
        if n == 0 {
            return fail("the gateway closed the connection");
        }
        self.buf
            .extend_from_slice(chunk.get(..n).unwrap_or_default());
        Ok(())
    }

    async fn jt808_reply(&mut self, frame: &[u8]) -> Result<jt808::ServerReply, LinkError> {
        self.write(frame).await?;
        let server = ingest::gateway::jt808::Jt808::default();
        let reply = self.read_frame(|b| server.cut(b)).await?;
        jt808::parse_reply(&reply).map_err(LinkError)
    }

    /// Sends a JT/T 808 frame on the open connection and reads its general response:
    /// success for `serial`.
    async fn jt808_exchange(
        &mut self,
        frame: &[u8],
        serial: u16,
        id: u16,
    ) -> Result<(), LinkError> {
        match self.jt808_reply(frame).await? {
            jt808::ServerReply::General {
                answered_serial,
                answered_id,
                result: 0,
            } if answered_serial == serial && answered_id == id => Ok(()),
            other => fail(format!("JT/T 808 answered {other:?}")),
        }
    }

    /// Sends a GT06 packet on the open connection and reads the response packet: (protocol,
    /// serial answered).
    async fn gt06_exchange(&mut self, packet: &[u8]) -> Result<(u8, u16), LinkError> {
        self.write(packet).await?;
        let server = ingest::gateway::gt06::Gt06::default();
        let reply = self.read_frame(|b| server.cut(b)).await?;
        gt06::parse_reply(&reply).map_err(LinkError)
    }

    async fn datagram(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        if self.udp.is_none() {
            self.udp = Some(UdpSocket::bind(("127.0.0.1", 0)).await?);
        }
        let Some(socket) = self.udp.as_ref() else {
            return fail("no UDP socket");
        };
        socket.send_to(bytes, self.addr).await?;
        Ok(())
    }

    /// One HTTP/1.1 GET on its own connection, as a phone's tracker app makes it; returns the
    /// status.
    async fn http_get(&mut self, query: &str) -> Result<u16, LinkError> {
        let exchange = async {
            let mut tcp = TcpStream::connect(self.addr).await?;
            let request = format!(
                "GET /?{query} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                self.addr
            );
            tcp.write_all(request.as_bytes()).await?;
            let mut response = Vec::new();
            tcp.read_to_end(&mut response).await?;
            Ok::<_, std::io::Error>(response)
        };
        let response = tokio::time::timeout(REPLY_WAIT, exchange)
            .await
            .map_err(|_| LinkError("no HTTP answer".into()))??;
        let head = String::from_utf8_lossy(response.get(..12).unwrap_or_default()).into_owned();
        head.get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| LinkError(format!("not an HTTP answer: {head:?}")))
    }
}
