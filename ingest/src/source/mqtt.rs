//! The MQTT source: subscribes with QoS 1 and a persistent session, hands each message to the
//! pipeline, and acknowledges it only once the store says it is durable.
//!
//! # How acks flow without deadlock
//! One task owns the rumqttc event loop and does nothing but poll it, forward publishes and
//! send acks. The store reports progress through a `watch` channel holding the highest durable
//! sequence number, which it can always write without waiting. The source acks with
//! `try_ack` (never awaiting the client's request queue, which only this task drains) in
//! arrival order.
//!
//! # Backpressure
//! The MQTT 5 receive maximum caps how many unacknowledged messages the broker sends us, so the
//! messages held in the process are bounded by it: when the store is slow, acks slow, and the
//! broker stops sending. The forward channel has room for a full window; if it is ever full the
//! source keeps the message in a queue bounded by the same window and keeps polling, so
//! keep-alives and acks still flow.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{ConnAck, LastWill, Packet, Publish, SubAck, SubscribeReasonCode};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::intake::{Body, Intake};
use crate::ping::EpochMillis;

/// Settings of the MQTT source.
#[derive(Debug, Clone)]
pub struct MqttSourceConfig {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Client id; with a persistent session the broker keeps our queue under this name.
    pub client_id: String,
    /// Topic filters, e.g. `owntracks/+/+` or `$share/ingest/owntracks/+/+`.
    pub topics: Vec<String>,
    /// Optional username and password.
    pub credentials: Option<(String, String)>,
    /// TLS to the broker (`mqtts://`); `None` is plain TCP.
    pub tls: Option<TlsSettings>,
    /// MQTT 5 receive maximum: unacknowledged messages the broker may send at once.
    pub receive_maximum: u16,
    /// Session expiry in seconds (how long the broker queues for us while we are away).
    pub session_expiry_s: u32,
    /// Keep-alive interval.
    pub keep_alive: Duration,
    /// Largest MQTT packet we accept, announced to the broker in CONNECT (MQTT 5 Maximum
    /// Packet Size). A broker must not send us anything larger, so no message can break the
    /// connection by its size; keep the broker's own limit (`max_packet_size` in Mosquitto) at
    /// or below this, so that publishers are refused instead.
    pub max_packet_bytes: u32,
}

/// The packet size limit of the shipped broker configurations (the embedded broker and
/// `deploy/mosquitto.conf`), and so ingest's default: 1 MiB. An OwnTracks fix is a few hundred
/// bytes; anything near this is refused by decode as `oversize` and kept in rejects.
pub const MAX_PACKET_BYTES: u32 = 1 << 20;

/// Room above the broker's limit for what a broker adds to a packet it forwards (a message
/// expiry or subscription identifier property).
const FORWARD_HEADROOM: u32 = 4096;

impl MqttSourceConfig {
    /// Source settings for a broker at `host:port` with the default topic `owntracks/#`,
    /// receive maximum 1000, a one-day session and the shipped packet size limit.
    ///
    /// The filter takes topics of any depth under the prefix, so a device publishing to a
    /// malformed topic (`owntracks/ST1`, `owntracks/ST1/C01/x`) ends in rejects as
    /// `bad_topic` instead of being dropped by the broker for want of a subscriber.
    pub fn new(host: &str, port: u16, client_id: &str) -> Self {
        MqttSourceConfig {
            host: host.to_owned(),
            port,
            client_id: client_id.to_owned(),
            topics: vec!["owntracks/#".to_owned()],
            credentials: None,
            tls: None,
            receive_maximum: 1000,
            session_expiry_s: 86_400,
            keep_alive: Duration::from_secs(30),
            max_packet_bytes: MAX_PACKET_BYTES,
        }
    }
}

/// TLS settings: the CA that signed the broker's certificate and, for brokers that require
/// client certificates, the client's certificate chain and key (all PEM).
#[derive(Clone)]
pub struct TlsSettings {
    ca_pem: Vec<u8>,
    client_auth: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("TlsSettings")
            .field("ca_pem_bytes", &self.ca_pem.len())
            .field("client_auth", &self.client_auth.is_some())
            .finish()
    }
}

impl TlsSettings {
    /// Reads the PEM files.
    ///
    /// # Errors
    /// A message naming the file that cannot be read or holds no PEM block.
    pub fn from_files(
        ca: &std::path::Path,
        client: Option<(&std::path::Path, &std::path::Path)>,
    ) -> Result<TlsSettings, String> {
        let read = |p: &std::path::Path| -> Result<Vec<u8>, String> {
            let bytes = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
            if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
                return Err(format!("{}: not a PEM file", p.display()));
            }
            Ok(bytes)
        };
        let client_auth = match client {
            Some((cert, key)) => Some((read(cert)?, read(key)?)),
            None => None,
        };
        Ok(TlsSettings {
            ca_pem: read(ca)?,
            client_auth,
        })
    }
}

/// A broker address parsed from a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Host name or address.
    pub host: String,
    /// Port (default 1883, or 8883 for `mqtts://`).
    pub port: u16,
    /// `mqtts://`: connect with TLS.
    pub tls: bool,
}

/// Parses `mqtt://host[:port]` (port 1883) or `mqtts://host[:port]` (TLS, port 8883).
///
/// # Errors
/// A message naming the URL when it is not of that form.
///
/// # Example
/// ```
/// use ingest::source::mqtt::parse_url;
/// let u = parse_url("mqtt://127.0.0.1:11883").unwrap();
/// assert_eq!((u.host.as_str(), u.port, u.tls), ("127.0.0.1", 11883, false));
/// assert_eq!(parse_url("mqtts://broker.local").unwrap().port, 8883);
/// assert!(parse_url("http://x").is_err());
/// ```
pub fn parse_url(url: &str) -> Result<BrokerUrl, String> {
    let (rest, tls) = if let Some(r) = url.strip_prefix("mqtts://") {
        (r, true)
    } else if let Some(r) = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
    {
        (r, false)
    } else {
        return Err(format!(
            "broker URL {url:?} must start with mqtt:// or mqtts://"
        ));
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("broker URL {url:?} has a bad port"))?,
        ),
        None => (rest, if tls { 8883 } else { 1883 }),
    };
    if host.is_empty() {
        return Err(format!("broker URL {url:?} has no host"));
    }
    Ok(BrokerUrl {
        host: host.to_owned(),
        port,
        tls,
    })
}

/// Counters and connection state of the source, read by `/metrics` and `/ready`.
#[derive(Debug, Default)]
pub struct SourceStats {
    /// Messages received.
    pub received: std::sync::atomic::AtomicU64,
    /// Messages acknowledged.
    pub acked: std::sync::atomic::AtomicU64,
    /// Connection errors (each followed by a back-off and reconnect).
    pub reconnects: std::sync::atomic::AtomicU64,
    /// True while a connection to the broker is up (between its CONNACK and its loss).
    pub connected: std::sync::atomic::AtomicBool,
    /// True once the broker has granted every subscription on the current connection: from
    /// then on a message published to the broker reaches ingest. (Between the CONNACK and the
    /// SUBACKs the broker drops what is published for want of a subscriber.)
    pub subscribed: std::sync::atomic::AtomicBool,
    /// The last connection error, for `/ready`; cleared by the next CONNACK.
    pub last_error: std::sync::Mutex<Option<String>>,
}

impl SourceStats {
    fn set_error(&self, error: Option<String>) {
        if let Ok(mut e) = self.last_error.lock() {
            *e = error;
        }
    }

    /// The last connection error, if the source is not connected now.
    pub fn error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }
}

/// Why the source gave up instead of retrying.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The broker refused the credentials on the first connection: a configuration error that
    /// retrying cannot fix, so `patrol serve` refuses to start. (Refusals after a first
    /// successful connection are retried: the broker's password file may be mid-edit.)
    #[error(
        "broker {host}:{port} refused the connection: {code:?} (check [mqtt] username and password)"
    )]
    Refused {
        /// Broker host.
        host: String,
        /// Broker port.
        port: u16,
        /// The CONNACK reason code.
        code: rumqttc::v5::mqttbytes::v5::ConnectReturnCode,
    },
}

/// CONNACK codes that mean "these credentials or this client may not connect".
fn is_auth_refusal(code: rumqttc::v5::mqttbytes::v5::ConnectReturnCode) -> bool {
    use rumqttc::v5::mqttbytes::v5::ConnectReturnCode as C;
    matches!(
        code,
        C::BadUserNamePassword | C::NotAuthorized | C::Banned | C::BadAuthenticationMethod
    )
}

/// First wait before reconnecting; it doubles on each failed attempt up to [`MAX_BACKOFF`] and
/// starts again from here once a CONNACK arrives.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

fn options(cfg: &MqttSourceConfig) -> MqttOptions {
    let mut o = MqttOptions::new(&cfg.client_id, &cfg.host, cfg.port);
    o.set_keep_alive(cfg.keep_alive)
        .set_clean_start(false)
        .set_session_expiry_interval(Some(cfg.session_expiry_s))
        .set_receive_maximum(Some(cfg.receive_maximum))
        .set_manual_acks(true)
        .set_max_packet_size(Some(cfg.max_packet_bytes.saturating_add(FORWARD_HEADROOM)))
        .set_request_channel_capacity(usize::from(cfg.receive_maximum) * 2 + 16);
    if let Some((u, p)) = &cfg.credentials {
        o.set_credentials(u, p);
    }
    if let Some(tls) = &cfg.tls {
        // rustls needs a process-wide crypto provider and panics when feature unification
        // leaves it more than one to choose from; name ring explicitly. Later calls are no-ops.
        let _ = rustls::crypto::ring::default_provider().install_default();
        o.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Simple {
                ca: tls.ca_pem.clone(),
                alpn: None,
                client_auth: tls.client_auth.clone(),
            },
        ));
    }
    o
}

/// Runs the source until `shutdown` fires. Each message goes to `out`; `durable` carries the
/// highest sequence number the store has made durable, and every message up to it is acked.
///
/// Connection errors are logged and retried with a doubling back-off (up to [`MAX_BACKOFF`],
/// reset by every CONNACK); messages received on a lost connection are not acked (the broker
/// redelivers them and the store drops the copies).
///
/// # Errors
/// [`SourceError::Refused`] when the broker refuses the credentials before any connection
/// succeeded.
pub async fn run(
    cfg: MqttSourceConfig,
    out: Intake,
    stats: Arc<SourceStats>,
    shutdown: CancellationToken,
) -> Result<(), SourceError> {
    let durable = out.durable_watch();
    MqttSource::new(cfg, durable, stats)
        .run(out, shutdown)
        .await
}

/// A message the pipeline's full channel could not take yet.
#[derive(Debug)]
struct Held {
    body: Body,
    recv_time: EpochMillis,
    /// What to ack once it is durable; `None` for QoS 0.
    publish: Option<Publish>,
}

/// The source task's state: the client and its event loop, the messages waiting for their
/// ack or for room in the pipeline, and the reconnect back-off.
struct MqttSource {
    cfg: MqttSourceConfig,
    /// Sends acks and subscriptions; its request queue is drained by `eventloop`, which only
    /// this task polls, so requests go through `try_*` and never wait.
    client: AsyncClient,
    eventloop: EventLoop,
    /// The store's highest durable sequence number; written without waiting, so the store
    /// never depends on this task.
    durable: watch::Receiver<u64>,
    stats: Arc<SourceStats>,
    /// Taken by the pipeline but not yet acked, with their numbers, in arrival order.
    unacked: VecDeque<(u64, Publish)>,
    /// Received but not yet taken by the pipeline (only when its channel is full), with what
    /// to ack once they are durable; at most a receive window, since the broker sends no
    /// more than that unacknowledged. They follow every message in `unacked`.
    overflow: VecDeque<Held>,
    backoff: Duration,
    /// A CONNACK arrived once: from then on a refusal is retried instead of fatal.
    ever_connected: bool,
    /// SUBACKs still to come on this connection, one per subscribed topic.
    subacks_awaited: usize,
}

impl MqttSource {
    fn new(cfg: MqttSourceConfig, durable: watch::Receiver<u64>, stats: Arc<SourceStats>) -> Self {
        let (client, eventloop) =
            AsyncClient::new(options(&cfg), usize::from(cfg.receive_maximum) * 2 + 16);
        MqttSource {
            cfg,
            client,
            eventloop,
            durable,
            stats,
            unacked: VecDeque::new(),
            overflow: VecDeque::new(),
            backoff: FIRST_BACKOFF,
            ever_connected: false,
            subacks_awaited: 0,
        }
    }

    /// Polls the event loop, forwards publishes to `out` and acks durable ones until
    /// `shutdown` fires or the pipeline goes away; see [`run`].
    ///
    /// `out` leads to the pipeline stage
    /// ([`ChannelConfig::FORWARD_WHEN_FULL`](crate::channels::ChannelConfig::FORWARD_WHEN_FULL)).
    /// It is not a field: a permit to send borrows it across the `select!` arm that uses it.
    async fn run(mut self, out: Intake, shutdown: CancellationToken) -> Result<(), SourceError> {
        let window = usize::from(self.cfg.receive_maximum).max(1);
        loop {
            // With a full window held here, stop polling until the pipeline takes some: the
            // broker could not send more anyway, and keep-alives wait for the next poll.
            let can_poll = self.overflow.len() < window;
            tokio::select! {
                () = shutdown.cancelled() => break,
                permit = out.reserve(), if !self.overflow.is_empty() => {
                    let Ok(permit) = permit else { break };
                    if let Some(held) = self.overflow.pop_front() {
                        let seq = out.send(permit, held.body, held.recv_time);
                        self.taken(seq, held.publish);
                    }
                }
                changed = self.durable.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let upto = *self.durable.borrow_and_update();
                    self.ack_upto(upto);
                }
                event = self.eventloop.poll(), if can_poll => match event {
                    Ok(Event::Incoming(Packet::Publish(publish))) => self.forward(&out, publish),
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => self.connected(&ack),
                    Ok(other) => {
                        if let Event::Incoming(Packet::SubAck(ack)) = &other {
                            self.suback(ack);
                        }
                        // The poll drained the request queue: retry acks that found it full.
                        let upto = *self.durable.borrow();
                        self.ack_upto(upto);
                    }
                    Err(error) => {
                        if self.connection_lost(error, &shutdown).await?.is_break() {
                            break;
                        }
                    }
                }
            }
        }
        self.finish(out).await;
        Ok(())
    }

    /// Acks, in arrival order, the messages up to `upto` as far as the client's request queue
    /// takes them; the rest are retried after the next poll drains it.
    fn ack_upto(&mut self, upto: u64) {
        while let Some((seq, publish)) = self.unacked.front()
            && *seq <= upto
        {
            if self.client.try_ack(publish).is_err() {
                break;
            }
            self.unacked.pop_front();
            self.stats.acked.fetch_add(1, Relaxed);
        }
    }

    /// Hands a publish to the pipeline, or holds it while the channel is full.
    fn forward(&mut self, out: &Intake, publish: Publish) {
        self.stats.received.fetch_add(1, Relaxed);
        let body = Body::Mqtt {
            topic: String::from_utf8_lossy(&publish.topic).into_owned(),
            payload: publish.payload.to_vec(),
        };
        let recv_time = model::now_ms();
        let publish = (publish.qos != QoS::AtMostOnce).then_some(publish);
        if self.overflow.is_empty() {
            match out.try_submit(body, recv_time) {
                Ok(seq) => self.taken(seq, publish),
                Err(body) => self.overflow.push_back(Held {
                    body,
                    recv_time,
                    publish,
                }),
            }
        } else {
            self.overflow.push_back(Held {
                body,
                recv_time,
                publish,
            });
        }
    }

    /// The pipeline took message `seq`: ack it once it is durable (QoS 0 needs no ack).
    fn taken(&mut self, seq: u64, publish: Option<Publish>) {
        if let Some(publish) = publish {
            self.unacked.push_back((seq, publish));
        }
    }

    /// A CONNACK: the back-off starts over, `/ready` sees the connection, and the
    /// subscriptions are (re)made.
    fn connected(&mut self, ack: &ConnAck) {
        tracing::info!(session_present = ack.session_present, "Connected to broker");
        self.backoff = FIRST_BACKOFF;
        self.ever_connected = true;
        self.stats.connected.store(true, Relaxed);
        self.stats.set_error(None);
        self.subacks_awaited = self.cfg.topics.len();
        // Subscribing again with a session present is harmless and covers brokers that lost
        // the session's subscriptions.
        for topic in &self.cfg.topics {
            if let Err(error) = self.client.try_subscribe(topic, QoS::AtLeastOnce) {
                tracing::error!(%error, topic, "Subscribe failed");
            }
        }
    }

    /// A SUBACK: once the broker has granted every topic, `subscribed` says so. A refused
    /// topic is logged and leaves it false (nothing would arrive on it).
    fn suback(&mut self, ack: &SubAck) {
        let refused: Vec<&SubscribeReasonCode> = ack
            .return_codes
            .iter()
            .filter(|c| !matches!(c, SubscribeReasonCode::Success(_)))
            .collect();
        if !refused.is_empty() {
            tracing::error!(?refused, "The broker refused a subscription");
            return;
        }
        self.subacks_awaited = self.subacks_awaited.saturating_sub(1);
        if self.subacks_awaited == 0 {
            self.stats.subscribed.store(true, Relaxed);
        }
    }

    /// A connection error: records it, gives up on a refusal of the credentials before any
    /// connection succeeded, and otherwise waits out the back-off. Breaks when `shutdown`
    /// fires during the wait.
    async fn connection_lost(
        &mut self,
        error: ConnectionError,
        shutdown: &CancellationToken,
    ) -> Result<ControlFlow<()>, SourceError> {
        self.stats.reconnects.fetch_add(1, Relaxed);
        self.stats.connected.store(false, Relaxed);
        self.stats.subscribed.store(false, Relaxed);
        self.stats.set_error(Some(error.to_string()));
        if let ConnectionError::ConnectionRefused(code) = error
            && is_auth_refusal(code)
        {
            if !self.ever_connected {
                return Err(SourceError::Refused {
                    host: self.cfg.host.clone(),
                    port: self.cfg.port,
                    code,
                });
            }
            // An operator must see this one: ingest is down until it is fixed.
            tracing::error!(?code, "The broker refuses ingest's credentials; retrying");
        } else {
            tracing::warn!(
                %error,
                backoff_ms = self.backoff.as_millis() as u64,
                "MQTT connection error"
            );
        }
        // Acks for the old connection would be meaningless: the broker redelivers.
        self.unacked.clear();
        tokio::select! {
            () = shutdown.cancelled() => return Ok(ControlFlow::Break(())),
            () = tokio::time::sleep(self.backoff) => {}
        }
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Ok(ControlFlow::Continue(()))
    }

    /// Hands over what is still queued and disconnects cleanly, which keeps the session for
    /// the next start (if the broker is gone, the short poll just times out).
    async fn finish(mut self, out: Intake) {
        self.stats.connected.store(false, Relaxed);
        self.stats.subscribed.store(false, Relaxed);
        // Handed over but never acked: the broker redelivers them and the store drops copies.
        for held in self.overflow.drain(..) {
            if out.submit(held.body, held.recv_time).await.is_err() {
                break;
            }
        }
        let _ = self.client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_millis(500), self.eventloop.poll()).await;
    }
}

/// A publishing client for the simulator and tests: one MQTT 5 connection, optionally with a
/// last will, publishing QoS 1.
#[derive(Debug, Clone)]
pub struct Publisher {
    client: AsyncClient,
}

/// Publisher settings.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Client id.
    pub client_id: String,
    /// Topic and payload the broker publishes if this client vanishes.
    pub last_will: Option<(String, Vec<u8>)>,
    /// Optional username and password.
    pub credentials: Option<(String, String)>,
    /// Requests queued before `publish` waits.
    pub queue: usize,
}

/// Error of a publisher.
#[derive(Debug, thiserror::Error)]
#[error("publish failed: {0}")]
pub struct PublishError(String);

impl Publisher {
    /// Connects and returns the publisher and a task driving its connection. Dropping or
    /// aborting the task cuts the connection without a DISCONNECT, so the broker sends the will.
    pub fn connect(cfg: &PublisherConfig) -> (Publisher, tokio::task::JoinHandle<()>) {
        let mut o = MqttOptions::new(&cfg.client_id, &cfg.host, cfg.port);
        o.set_keep_alive(Duration::from_secs(30))
            .set_clean_start(true)
            .set_request_channel_capacity(cfg.queue.max(1));
        if let Some((topic, payload)) = &cfg.last_will {
            o.set_last_will(LastWill::new(
                topic.clone(),
                payload.clone(),
                QoS::AtLeastOnce,
                false,
                None,
            ));
        }
        if let Some((u, p)) = &cfg.credentials {
            o.set_credentials(u, p);
        }
        let (client, mut eventloop) = AsyncClient::new(o, cfg.queue.max(1));
        let task = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match eventloop.poll().await {
                    Ok(_) => backoff = Duration::from_millis(100),
                    Err(rumqttc::v5::ConnectionError::RequestsDone) => break,
                    Err(error) => {
                        tracing::debug!(%error, "Publisher connection error");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
        });
        (Publisher { client }, task)
    }

    /// Queues a QoS 1 publish, waiting while the request queue is full.
    ///
    /// # Errors
    /// [`PublishError`] when the connection task has ended.
    pub async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), PublishError> {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .map_err(|e| PublishError(e.to_string()))
    }

    /// Sends a clean DISCONNECT (no will is published).
    ///
    /// # Errors
    /// [`PublishError`] when the connection task has ended.
    pub async fn disconnect(&self) -> Result<(), PublishError> {
        self.client
            .disconnect()
            .await
            .map_err(|e| PublishError(e.to_string()))
    }
}
