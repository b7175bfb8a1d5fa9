//! The embedded MQTT broker (rumqttd), so the demo and the tests need nothing installed.
//!
//! rumqttd has no shutdown API and keeps nothing on disk: it is the zero-install default, not a
//! production broker (use Mosquitto with `deploy/mosquitto.conf`, see the README). It runs on a
//! thread of its own for the life of the process.
//!
//! This is the only module of the workspace that names rumqttd, so the product's ingest does
//! not link a second MQTT stack (and, through it, a second axum and hyper).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Failure to start the embedded broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The configuration could not be built.
    #[error("embedded broker config: {0}")]
    Config(String),
    /// Nothing listened on the address within the start-up time.
    #[error("embedded broker did not start listening on {0}")]
    NotListening(SocketAddr),
    /// No free port could be found.
    #[error("no free port: {0}")]
    NoPort(std::io::Error),
}

/// The largest payload the broker takes: ingest's `MAX_PACKET_BYTES` (1 MiB), the limit of
/// both shipped brokers. devkit cannot name ingest's constant (ingest's tests depend on this
/// crate), so ingest's tests check that the two agree.
pub const MAX_PAYLOAD_BYTES: u32 = 1 << 20;

/// Picks a free loopback port by binding port 0 and releasing it.
///
/// # Errors
/// [`BrokerError::NoPort`] when the OS refuses to bind.
pub fn free_port() -> Result<u16, BrokerError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(BrokerError::NoPort)?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(BrokerError::NoPort)
}

/// Starts rumqttd with an MQTT 5 listener on `addr` and returns once it accepts connections.
///
/// `max_inflight` is the broker's per-connection limit of unacknowledged QoS 1 messages.
///
/// # Errors
/// [`BrokerError`] when the config is refused or the listener does not come up within 5 s.
pub fn start_embedded(addr: SocketAddr, max_inflight: usize) -> Result<(), BrokerError> {
    let config_text = format!(
        r#"
id = 0
[router]
id = 0
max_connections = 10010
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10

[v5.1]
name = "v5-1"
listen = "{addr}"
next_connection_delay_ms = 0
    [v5.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = {max_payload}
    max_inflight_count = {max_inflight}
    dynamic_filters = true
"#,
        max_payload = MAX_PAYLOAD_BYTES
    );
    let config: rumqttd::Config =
        toml::from_str(&config_text).map_err(|e| BrokerError::Config(e.to_string()))?;
    std::thread::Builder::new()
        .name("embedded-broker".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(error) = broker.start() {
                tracing::error!(%error, "Embedded broker stopped");
            }
        })
        .map_err(|e| BrokerError::Config(e.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(BrokerError::NotListening(addr))
}
