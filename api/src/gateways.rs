//! The device gateways of `patrol serve` and the demo: each protocol on its own address,
//! all into ingest's one intake. The TCP and UDP servers are ingest's
//! ([`ingest::gateway::server`]); the OsmAnd protocol is HTTP and served here with axum.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::routing::any;
use ingest::gateway::server::{
    self, Delivered, DeviceMap, Gateway, GatewayConfig, GatewayStats, IdColumn,
};
use ingest::gateway::{
    DatagramProtocol, StreamProtocol, gt06, jt808, lip, nmea, osmand, teltonika,
};
use ingest::source::intake::Intake;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Where each gateway listens (`[gateways]` in the serve config); an unset one is off.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GatewayAddrs {
    /// OsmAnd / Traccar Client (HTTP).
    pub osmand: Option<SocketAddr>,
    /// JT/T 808 terminals (TCP).
    pub jt808: Option<SocketAddr>,
    /// GT06 / Concox trackers (TCP).
    pub gt06: Option<SocketAddr>,
    /// Teltonika Codec 8 / 8E trackers (TCP).
    pub teltonika: Option<SocketAddr>,
    /// TETRA LIP reports from a radio dispatch gateway (UDP datagrams).
    pub lip_udp: Option<SocketAddr>,
    /// TETRA LIP reports from a radio dispatch gateway (TCP lines).
    pub lip_tcp: Option<SocketAddr>,
    /// NMEA sentences from a radio dispatch gateway (UDP datagrams).
    pub nmea_udp: Option<SocketAddr>,
    /// NMEA sentences from a radio dispatch gateway (TCP lines).
    pub nmea_tcp: Option<SocketAddr>,
    /// Seconds a TCP connection may stay silent before it is closed (default 600).
    pub idle_timeout_s: Option<u64>,
}

impl GatewayAddrs {
    /// Every gateway on 127.0.0.1, on consecutive ports from `base` in the order of the
    /// fields (the demo's).
    #[must_use]
    pub fn local(base: u16) -> Self {
        Self::at(IpAddr::from([127, 0, 0, 1]), base)
    }

    /// Every gateway on `ip`, on consecutive ports from `base` in the order of the fields,
    /// each radio feed's UDP and TCP sharing a port number.
    #[must_use]
    pub fn at(ip: IpAddr, base: u16) -> Self {
        let at = |k: u16| Some(SocketAddr::new(ip, base.saturating_add(k)));
        GatewayAddrs {
            osmand: at(0),
            jt808: at(1),
            gt06: at(2),
            teltonika: at(3),
            lip_udp: at(4),
            lip_tcp: at(4),
            nmea_udp: at(5),
            nmea_tcp: at(5),
            idle_timeout_s: None,
        }
    }

    /// The addresses the gateways of `running` are bound to (a port 0 resolved).
    #[must_use]
    pub fn bound(running: &[RunningGateway]) -> Self {
        let at = |protocol: &str, transport: &str| {
            running
                .iter()
                .find(|g| g.protocol == protocol && g.transport == transport)
                .map(|g| g.addr)
        };
        GatewayAddrs {
            osmand: at(osmand::NAME, "http"),
            jt808: at(<jt808::Jt808 as StreamProtocol>::NAME, "tcp"),
            gt06: at(<gt06::Gt06 as StreamProtocol>::NAME, "tcp"),
            teltonika: at(<teltonika::TeltonikaSession as StreamProtocol>::NAME, "tcp"),
            lip_udp: at(<lip::LipFeed as DatagramProtocol>::NAME, "udp"),
            lip_tcp: at(<lip::LipFeed as DatagramProtocol>::NAME, "tcp"),
            nmea_udp: at(<nmea::NmeaFeed as DatagramProtocol>::NAME, "udp"),
            nmea_tcp: at(<nmea::NmeaFeed as DatagramProtocol>::NAME, "tcp"),
            idle_timeout_s: None,
        }
    }

    /// Where the simulator's devices report (LIP over UDP, NMEA over TCP lines); `None`
    /// unless all six gateways they use are set.
    #[cfg(feature = "demo")]
    #[must_use]
    pub fn simulator_ports(&self) -> Option<demo::sim::link::GatewayPorts> {
        Some(demo::sim::link::GatewayPorts {
            osmand: self.osmand?,
            jt808: self.jt808?,
            gt06: self.gt06?,
            teltonika: self.teltonika?,
            lip: self.lip_udp?,
            nmea: self.nmea_tcp?,
        })
    }

    fn config(&self) -> GatewayConfig {
        let mut c = GatewayConfig::default();
        if let Some(s) = self.idle_timeout_s {
            c.idle = Duration::from_secs(s.max(1));
        }
        c
    }
}

/// A gateway that is listening.
#[derive(Debug, Clone)]
pub struct RunningGateway {
    /// Protocol name.
    pub protocol: &'static str,
    /// `tcp`, `udp` or `http`.
    pub transport: &'static str,
    /// The address bound.
    pub addr: SocketAddr,
    /// Its counters.
    pub stats: Arc<GatewayStats>,
}

/// Binds every configured gateway and serves it on `tracker` until `token` fires.
///
/// # Errors
/// When an address cannot be bound (named in the message).
pub fn start(
    addrs: &GatewayAddrs,
    intake: &Intake,
    devices: &Arc<DeviceMap>,
    tracker: &TaskTracker,
    token: &CancellationToken,
) -> anyhow::Result<Vec<RunningGateway>> {
    let mut s = Starter {
        intake,
        devices,
        config: addrs.config(),
        tracker,
        token,
        running: Vec::new(),
    };
    if let Some(addr) = addrs.osmand {
        s.osmand(addr)?;
    }
    s.stream::<jt808::Jt808>(addrs.jt808, IdColumn::Device)?;
    s.stream::<gt06::Gt06>(addrs.gt06, IdColumn::Imei)?;
    s.stream::<teltonika::TeltonikaSession>(addrs.teltonika, IdColumn::Imei)?;
    s.feed(lip::LipFeed, addrs.lip_udp, addrs.lip_tcp, IdColumn::Issi)?;
    s.feed(
        nmea::NmeaFeed,
        addrs.nmea_udp,
        addrs.nmea_tcp,
        IdColumn::Device,
    )?;
    for g in &s.running {
        tracing::info!(protocol = g.protocol, transport = g.transport, addr = %g.addr, "Device gateway listening");
    }
    Ok(s.running)
}

/// What starting the gateways shares, and the gateways started so far.
struct Starter<'a> {
    intake: &'a Intake,
    devices: &'a Arc<DeviceMap>,
    config: GatewayConfig,
    tracker: &'a TaskTracker,
    token: &'a CancellationToken,
    running: Vec<RunningGateway>,
}

impl Starter<'_> {
    fn gateway(&self, protocol: &'static str, column: IdColumn) -> Gateway {
        Gateway::new(
            protocol,
            column,
            self.intake.clone(),
            self.devices.clone(),
            self.config,
        )
    }

    fn up(&mut self, gw: &Gateway, transport: &'static str, addr: SocketAddr) {
        self.running.push(RunningGateway {
            protocol: gw.protocol,
            transport,
            addr,
            stats: gw.stats.clone(),
        });
    }

    fn osmand(&mut self, addr: SocketAddr) -> anyhow::Result<()> {
        let gw = self.gateway(osmand::NAME, IdColumn::Device);
        let listener = tcp(addr, osmand::NAME)?;
        self.up(&gw, "http", listener.local_addr()?);
        let app = Router::new()
            .fallback(any(osmand_request))
            .with_state(gw)
            .into_make_service_with_connect_info::<SocketAddr>();
        let t = self.token.clone();
        self.tracker.spawn(async move {
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(async move { t.cancelled().await })
                .await
            {
                tracing::error!(%error, "OsmAnd gateway failed");
            }
        });
        Ok(())
    }

    fn stream<P: StreamProtocol + Default>(
        &mut self,
        addr: Option<SocketAddr>,
        column: IdColumn,
    ) -> anyhow::Result<()> {
        let Some(addr) = addr else { return Ok(()) };
        let gw = self.gateway(P::NAME, column);
        let listener = tcp(addr, P::NAME)?;
        self.up(&gw, "tcp", listener.local_addr()?);
        self.tracker.spawn(server::serve_stream::<P>(
            listener,
            gw,
            self.tracker.clone(),
            self.token.clone(),
        ));
        Ok(())
    }

    /// A radio feed on UDP, on TCP lines, or both.
    fn feed<P: DatagramProtocol + Clone>(
        &mut self,
        protocol: P,
        udp: Option<SocketAddr>,
        tcp_lines: Option<SocketAddr>,
        column: IdColumn,
    ) -> anyhow::Result<()> {
        if let Some(addr) = udp {
            let gw = self.gateway(P::NAME, column);
            let s = std::net::UdpSocket::bind(addr).with_context(|| {
                format!(
                    "binding the {} gateway on UDP {addr} ([gateways] {}_udp)",
                    P::NAME,
                    P::NAME
                )
            })?;
            s.set_nonblocking(true)?;
            let socket = tokio::net::UdpSocket::from_std(s)?;
            self.up(&gw, "udp", socket.local_addr()?);
            let serve = server::serve_udp(socket, protocol.clone(), gw, self.token.clone());
            self.tracker.spawn(serve);
        }
        if let Some(addr) = tcp_lines {
            let gw = self.gateway(P::NAME, column);
            let listener = tcp(addr, &format!("{}_tcp", P::NAME))?;
            self.up(&gw, "tcp", listener.local_addr()?);
            self.tracker.spawn(server::serve_lines(
                listener,
                protocol,
                gw,
                self.tracker.clone(),
                self.token.clone(),
            ));
        }
        Ok(())
    }
}

fn tcp(addr: SocketAddr, key: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr)
        .with_context(|| format!("binding the {key} gateway on {addr} ([gateways] {key})"))?;
    l.set_nonblocking(true)?;
    Ok(tokio::net::TcpListener::from_std(l)?)
}

/// One OsmAnd request: the position in the query string (GET or POST, the OsmAnd and older
/// Traccar Client form), else in a form or JSON body (newer Traccar Client). Answers 200
/// once the fix is durable, 400 for a request that is not a valid position and 403 for a
/// device no unit carries (both kept as rejects, durable before the answer), 503 while
/// ingest shuts down.
async fn osmand_request(
    State(gw): State<Gateway>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    if method != Method::GET && method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, String::new());
    }
    let t = model::now_ms();
    gw.stats
        .frames
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let query = uri.query().unwrap_or("");
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (parsed, frame) = if !query.is_empty() {
        (osmand::parse(query), format!("{method} {uri}").into_bytes())
    } else if json {
        (osmand::parse_json(&body), body.to_vec())
    } else {
        (
            std::str::from_utf8(&body)
                .map_err(|_| ingest::gateway::FrameError::bad("body is not UTF-8"))
                .and_then(osmand::parse),
            body.to_vec(),
        )
    };
    let closed = || {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "ingest is shutting down\n".to_owned(),
        )
    };
    let (seq, answer) = match parsed {
        Ok(fix) => match gw.deliver(fix, &frame, t).await {
            Ok(Delivered::Fix(seq)) => (seq, (StatusCode::OK, String::new())),
            Ok(Delivered::UnknownDevice(seq)) => (
                seq,
                (
                    StatusCode::FORBIDDEN,
                    "no unit in units.csv has this device id\n".to_owned(),
                ),
            ),
            Err(_) => return closed(),
        },
        Err(error) => {
            let detail = format!("{error}\n");
            match gw.refuse(&peer.ip().to_string(), error, &frame, t).await {
                Ok(seq) => (seq, (StatusCode::BAD_REQUEST, detail)),
                Err(_) => return closed(),
            }
        }
    };
    match gw.durable(seq).await {
        Ok(()) => {
            if answer.0 == StatusCode::OK {
                gw.stats
                    .acks
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            answer
        }
        Err(_) => closed(),
    }
}
