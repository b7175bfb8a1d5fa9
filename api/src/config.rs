//! The `patrol serve` config file (TOML). Unknown keys are errors that name the key.
//!
//! ```toml
//! fixtures = "fixtures"            # jurisdiction directory
//! store = "data/store"             # store directory
//! http = "127.0.0.1:8080"
//! [mqtt]
//! url = "mqtt://127.0.0.1:1883"
//! client_id = "patrol-ingest"
//! topics = ["owntracks/#"]
//! username = "ingest"
//! password = "secret"
//! receive_maximum = 1000
//! max_packet_bytes = 1048576       # at least the broker's max_packet_size
//! ca_file = "/etc/patrol/ca.pem"   # with an mqtts:// url; client_cert/client_key optional
//! [store_settings]
//! flush_interval_s = 5
//! retention_days = 90             # purge older pings; unset keeps everything
//! node = "ingest_a"               # names this node's data files; default: the host name
//! [pipeline]                      # channel capacities; the defaults suit a receive window of 1000
//! forward_capacity = 1000         # source -> stage; default: receive_maximum, at least 16
//! batch = 1024                    # most messages the stage takes at once
//! store_queue = 8                 # batches waiting for the store (then the stage waits)
//! live_capacity = 4096            # live events a slow subscriber may lag before it skips ahead
//! sweep_interval_s = 5            # how often silent units are marked offline
//! [gateways]                      # device protocols, each on its own address; unset = off
//! osmand = "0.0.0.0:5055"         # OsmAnd / Traccar Client (HTTP)
//! jt808 = "0.0.0.0:5015"          # JT/T 808 terminals (TCP)
//! gt06 = "0.0.0.0:5023"           # GT06 / Concox trackers (TCP)
//! teltonika = "0.0.0.0:5027"      # Teltonika Codec 8 / 8E (TCP)
//! lip_udp = "0.0.0.0:5030"        # TETRA LIP from a radio dispatch gateway (UDP; TCP: lip_tcp)
//! nmea_udp = "0.0.0.0:5031"       # NMEA from a radio dispatch gateway (UDP; TCP: nmea_tcp)
//! idle_timeout_s = 600            # close a TCP connection silent this long
//! [[tokens]]                      # one per API client; `patrol token new` prints these
//! hash = "9f86d0...(64 hex digits)" # SHA-256 of the token
//! role = "command"                # command | analyst | chief | admin
//! station = "ST2"                 # omit for the whole county
//! name = "ST2 command room"       # optional label
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use ingest::pipeline::ChannelConfig;
use ingest::sink::live::SWEEP_EVERY;
use serde::Deserialize;

use crate::gateways::GatewayAddrs;
use crate::http::auth::TokenConfig;

/// The whole file; every key optional, flags override it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Jurisdiction directory.
    pub fixtures: Option<PathBuf>,
    /// Store directory.
    pub store: Option<PathBuf>,
    /// HTTP listen address.
    pub http: Option<SocketAddr>,
    /// MQTT settings.
    #[serde(default)]
    pub mqtt: MqttConfig,
    /// Store timing.
    #[serde(default)]
    pub store_settings: StoreSettings,
    /// Channel capacities and the offline sweep.
    #[serde(default)]
    pub pipeline: PipelineSettings,
    /// Device gateways' listen addresses; each unset one is off.
    #[serde(default)]
    pub gateways: GatewayAddrs,
    /// API bearer tokens (`[[tokens]]`), stored as SHA-256 hashes.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
}

/// `[mqtt]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker URL.
    pub url: Option<String>,
    /// Client id (the persistent session's name).
    pub client_id: Option<String>,
    /// Topic filters.
    pub topics: Option<Vec<String>>,
    /// Username.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// MQTT 5 receive maximum.
    pub receive_maximum: Option<u16>,
    /// Largest MQTT packet ingest accepts (MQTT 5 maximum packet size); the broker's own
    /// limit must not be larger.
    pub max_packet_bytes: Option<u32>,
    /// CA certificate (PEM) for `mqtts://` URLs.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM), for brokers that require one.
    pub client_cert: Option<PathBuf>,
    /// Client private key (PEM).
    pub client_key: Option<PathBuf>,
}

/// `[store_settings]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// Seconds between WAL-to-Parquet flushes.
    pub flush_interval_s: Option<u64>,
    /// Days of pings and rejections to keep; older day partitions are purged hourly.
    pub retention_days: Option<u32>,
    /// This node's name in the store's file names (letters, digits, `_`).
    pub node: Option<String>,
}

/// `[pipeline]`: the capacities of ingest's bounded channels (their policies when full are
/// fixed, see [`ChannelConfig`]) and the offline sweep's interval. Unset keys keep
/// [`ChannelConfig::DEFAULT`] and [`SWEEP_EVERY`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSettings {
    /// Messages queued from the MQTT source to the stage.
    pub forward_capacity: Option<usize>,
    /// Most messages the stage takes at once.
    pub batch: Option<usize>,
    /// Batches queued for the store; when full the stage waits.
    pub store_queue: Option<usize>,
    /// Live events kept for slow subscribers.
    pub live_capacity: Option<usize>,
    /// Seconds between sweeps for silent units (at least 1).
    pub sweep_interval_s: Option<u64>,
}

impl PipelineSettings {
    /// The channel capacities, defaults filled in.
    pub fn channels(&self) -> ChannelConfig {
        let d = ChannelConfig::DEFAULT;
        ChannelConfig {
            forward: self.forward_capacity.or(d.forward),
            batch: self.batch.unwrap_or(d.batch),
            store_queue: self.store_queue.unwrap_or(d.store_queue),
            live: self.live_capacity.unwrap_or(d.live),
        }
    }

    /// The offline sweep's interval.
    pub fn sweep_every(&self) -> Duration {
        self.sweep_interval_s
            .map_or(SWEEP_EVERY, |s| Duration::from_secs(s.max(1)))
    }
}

impl ServeConfig {
    /// Reads and validates a config file.
    ///
    /// # Errors
    /// When the file cannot be read or has an unknown key or a bad value (named in the message).
    pub fn load(path: &Path) -> anyhow::Result<ServeConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named() {
        let err = toml::from_str::<ServeConfig>("[mqtt]\nurl = \"mqtt://x\"\nqos = 2\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("qos"), "{err}");
        let ok: ServeConfig =
            toml::from_str("store = \"s\"\n[mqtt]\nreceive_maximum = 50\n").unwrap();
        assert_eq!(ok.mqtt.receive_maximum, Some(50));
    }

    #[test]
    fn pipeline_defaults_and_overrides() {
        let none: ServeConfig = toml::from_str("").unwrap();
        assert_eq!(none.pipeline.channels(), ChannelConfig::DEFAULT);
        assert_eq!(none.pipeline.sweep_every(), SWEEP_EVERY);
        let set: ServeConfig = toml::from_str(
            "[pipeline]\nforward_capacity = 64\nstore_queue = 2\nsweep_interval_s = 0\n",
        )
        .unwrap();
        let c = set.pipeline.channels();
        assert_eq!((c.forward_capacity(1000), c.store_queue), (64, 2));
        assert_eq!(c.batch, ChannelConfig::DEFAULT.batch);
        assert_eq!(set.pipeline.sweep_every(), Duration::from_secs(1));
        let err = toml::from_str::<ServeConfig>("[pipeline]\nwhen_full = \"drop\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("when_full"), "{err}");
    }

    #[test]
    fn tokens_parse_and_refuse_unknown_keys() {
        let ok: ServeConfig = toml::from_str(
            "[[tokens]]\nhash = \"ab\"\nrole = \"chief\"\n[[tokens]]\nhash = \"cd\"\nrole = \"command\"\nstation = \"ST2\"\n",
        )
        .unwrap();
        assert_eq!(ok.tokens.len(), 2);
        assert_eq!(ok.tokens[1].station.as_deref(), Some("ST2"));
        let err = toml::from_str::<ServeConfig>(
            "[[tokens]]\nhash = \"ab\"\nrole = \"chief\"\nscope = \"x\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("scope"), "{err}");
        let err = toml::from_str::<ServeConfig>("[[tokens]]\nhash = \"ab\"\nrole = \"boss\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("boss"), "{err}");
    }
}
