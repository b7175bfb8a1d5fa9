//! Wiring shared by `demo` and `serve`: jurisdiction → stages → pipeline + MQTT source,
//! and the HTTP server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use ingest::decode::DecodeConfig;
use ingest::events::EventConfig;
use ingest::gateway::server::DeviceMap;
use ingest::geofence::index::GeofenceIndex;
use ingest::pipeline::{self, ChannelConfig, Ingest, PipelineConfig, Stages};
use ingest::sink::live::{LiveConfig, LiveState};
use ingest::source::intake::Intake;
use ingest::source::mqtt::{self, MqttSourceConfig, SourceStats};
use ingest::store::StoreConfig;
use ingest::validate::ValidateConfig;
use model::jurisdiction::Jurisdiction;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::gateways::{self, GatewayAddrs, RunningGateway};
use crate::http::auth::Tokens;
use crate::http::hub::LiveHub;
use crate::http::reference::Reference;
use crate::http::state::AppState;
use crate::server;

fn resolution(n: u8, key: &str) -> anyhow::Result<h3o::Resolution> {
    h3o::Resolution::try_from(n)
        .with_context(|| format!("jurisdiction.toml {key} = {n} is not an H3 resolution (0-15)"))
}

/// Builds the per-message stages from a jurisdiction. With `known_units` the unit list of
/// `units.csv` is enforced (unknown units, and units on another station's topic, are
/// rejected).
///
/// # Errors
/// When the fences cannot be indexed.
pub fn stages(j: &Jurisdiction, known_units: bool) -> anyhow::Result<Stages> {
    let s = j.settings();
    let catalog = j.catalog();
    let index = GeofenceIndex::build(catalog, resolution(s.h3.fence_res, "[h3] fence_res")?)
        .context("indexing fences")?;
    let units: HashMap<String, String> = j
        .units()
        .iter()
        .map(|u| (u.id.clone(), u.station.clone()))
        .collect();
    let mut st = Stages::new(
        DecodeConfig {
            max_payload_bytes: s.validate.max_payload_bytes,
        },
        // No maximum age: `patrol import` backfills history through these same stages.
        ValidateConfig::from_settings(&s.validate, known_units.then_some(units)),
        Arc::new(index),
        catalog.version,
        resolution(s.h3.store_res, "[h3] store_res")?,
    );
    st.max_kmh = j
        .units()
        .iter()
        .map(|u| (u.id.clone(), u.kind.max_speed_kmh()))
        .collect();
    Ok(st)
}

/// Where ingest reads from and writes to.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    /// Jurisdiction directory.
    pub fixtures: PathBuf,
    /// Store directory.
    pub store: PathBuf,
    /// MQTT source settings.
    pub mqtt: MqttSourceConfig,
    /// Flush the WAL to Parquet at least this often.
    pub flush_interval: Duration,
    /// Purge data older than this; `None` keeps everything.
    pub retention: Option<Duration>,
    /// The node's name in the store's file names; `None` is the host name.
    pub node: Option<String>,
    /// Capacities of the pipeline's channels.
    pub channels: ChannelConfig,
    /// How often silent units are marked offline.
    pub sweep_every: Duration,
    /// Where the device gateways listen.
    pub gateways: GatewayAddrs,
}

impl IngestSettings {
    /// Ingest from a broker on this machine at `mqtt_port` as `client_id`, with the serve
    /// defaults: a flush every 5 s, no retention, the host's name, the default channels and
    /// offline sweep.
    #[must_use]
    pub fn local(fixtures: PathBuf, store: PathBuf, mqtt_port: u16, client_id: &str) -> Self {
        Self {
            fixtures,
            store,
            mqtt: MqttSourceConfig::new("127.0.0.1", mqtt_port, client_id),
            flush_interval: Duration::from_secs(5),
            retention: None,
            node: None,
            channels: ChannelConfig::DEFAULT,
            sweep_every: ingest::sink::live::SWEEP_EVERY,
            gateways: GatewayAddrs::default(),
        }
    }
}

/// A running ingest.
#[derive(Debug)]
pub struct Running {
    /// Pipeline counters and live state.
    pub ingest: Ingest,
    /// Source counters.
    pub source: Arc<SourceStats>,
    /// The device gateways listening.
    pub gateways: Vec<RunningGateway>,
    /// The loaded jurisdiction.
    pub jurisdiction: Jurisdiction,
}

impl Running {
    /// After shutdown: why ingest stopped on its own, as the process's error (so it exits
    /// with a failure and a supervisor's `Restart=on-failure` restarts it).
    ///
    /// # Errors
    /// The recorded failure, if any.
    pub fn check(&self) -> anyhow::Result<()> {
        match self.ingest.stats.failure() {
            Some(reason) => Err(anyhow::anyhow!(reason)),
            None => Ok(()),
        }
    }
}

/// Starts the pipeline (with the event engine), the MQTT source and the device gateways on
/// `tracker`; they stop when `token` fires.
///
/// # Errors
/// When the jurisdiction or the store cannot be opened, or a gateway's address bound.
pub fn start_ingest(
    cfg: IngestSettings,
    tracker: &TaskTracker,
    token: &CancellationToken,
) -> anyhow::Result<Running> {
    let j = Jurisdiction::load(&cfg.fixtures)
        .with_context(|| format!("loading jurisdiction {}", cfg.fixtures.display()))?;
    // Live ingest also runs the event engine over the jurisdiction's checkpoints and roster.
    let mut st = stages(&j, true)?
        .with_events(
            j.checkpoints(),
            j.roster(),
            EventConfig::from_settings(j.settings(), j.timezone()),
        )
        .context("building the event engine from the roster")?;
    // The live path refuses fixes older than `max_age_s` (a broken clock); imports do not.
    st.validate = ValidateConfig::live(&j.settings().validate, st.validate.known_units.take());
    let status = &j.settings().status;
    let mut live_cfg = LiveConfig::new(status.idle_after_s, status.offline_after_s);
    live_cfg.channel = cfg.channels.live;
    let live = Arc::new(LiveState::new(live_cfg));
    let (tx, rx) = mpsc::channel(cfg.channels.forward_capacity(cfg.mqtt.receive_maximum));
    let (durable_tx, durable_rx) = watch::channel(0);
    let mut store = StoreConfig::new(&cfg.store);
    if let Some(node) = cfg.node {
        store.node = node;
    }
    let pcfg = PipelineConfig {
        store,
        channels: cfg.channels,
        flush_interval: cfg.flush_interval,
        retention: cfg.retention,
        sweep_every: cfg.sweep_every,
    };
    let ingest = pipeline::spawn(pcfg, st, live, rx, durable_tx, tracker, token.clone())
        .with_context(|| format!("opening store {}", cfg.store.display()))?;
    let source = Arc::new(SourceStats::default());
    let (stats, failed) = (ingest.stats.clone(), token.clone());
    let intake = Intake::new(tx, durable_rx);
    let run = mqtt::run(cfg.mqtt, intake.clone(), source.clone(), token.clone());
    tracker.spawn(async move {
        if let Err(error) = run.await {
            tracing::error!(%error, "MQTT source stopped");
            stats.fail(error.to_string());
            failed.cancel();
        }
    });
    let devices = Arc::new(DeviceMap::from_units(j.units()));
    let gateways = gateways::start(&cfg.gateways, &intake, &devices, tracker, token)?;
    Ok(Running {
        ingest,
        source,
        gateways,
        jurisdiction: j,
    })
}

/// What the API needs beyond the running ingest.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Accepted bearer tokens.
    pub tokens: Tokens,
    /// The store ingest writes (history reads its Parquet files).
    pub store: PathBuf,
}

/// The API's router over the running ingest, its live hub started on `tracker` (it stops
/// when `token` fires). [`serve_http`] serves it; tests call it in-process.
///
/// # Errors
/// When the jurisdiction's layers cannot be loaded.
pub fn router(
    api: ApiSettings,
    running: &Running,
    tracker: &TaskTracker,
    token: &CancellationToken,
) -> anyhow::Result<Router> {
    let reference = Arc::new(Reference::load(&running.jurisdiction)?);
    let hub = LiveHub::start(
        &running.ingest.live,
        reference.clone(),
        tracker,
        token.clone(),
    );
    Ok(server::app(AppState {
        live: running.ingest.live.clone(),
        hub,
        ingest: running.ingest.stats.clone(),
        source: running.source.clone(),
        gateways: running.gateways.clone().into(),
        tokens: Arc::new(api.tokens),
        reference,
        store: api.store,
        fixtures: running.jurisdiction.dir().to_owned(),
        analytics: Arc::default(),
        http: Arc::default(),
        shutdown: token.clone(),
    }))
}

/// Binds and serves the API until `token` fires.
///
/// # Errors
/// When the address cannot be bound or the jurisdiction's layers cannot be loaded.
pub async fn serve_http(
    addr: SocketAddr,
    api: ApiSettings,
    running: &Running,
    tracker: &TaskTracker,
    token: &CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding HTTP address {addr}"))?;
    let bound = listener.local_addr()?;
    let app = router(api, running, tracker, token)?;
    let t = token.clone();
    tracker.spawn(async move {
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(async move { t.cancelled().await })
            .await
        {
            tracing::error!(%error, "HTTP server failed");
        }
    });
    Ok(bound)
}

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Stops everything and waits (bounded) for the store to flush.
///
/// # Errors
/// When tasks did not finish within the deadline.
pub async fn stop(tracker: &TaskTracker, token: &CancellationToken) -> anyhow::Result<()> {
    token.cancel();
    tracker.close();
    tokio::time::timeout(Duration::from_secs(30), tracker.wait())
        .await
        .context("shutdown did not finish within 30 s")
}

/// True if `dir` looks like a jurisdiction directory.
pub fn is_jurisdiction(dir: &Path) -> bool {
    dir.join("jurisdiction.toml").is_file()
}
