//! The HTTP side: health, metrics, live units and the live stream.
//!
//! Only this crate has HTTP and JSON wire types. Handlers read shared state; none of them can
//! slow ingest (live state is a snapshot under a short lock plus a broadcast channel).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Json, Router};
use ingest::pipeline::IngestStats;
use ingest::sink::live::{LiveState, UnitState};
use ingest::source::mqtt::SourceStats;
use tokio_util::sync::CancellationToken;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Live units.
    pub live: Arc<LiveState>,
    /// Pipeline counters.
    pub ingest: Arc<IngestStats>,
    /// Source counters.
    pub source: Arc<SourceStats>,
    /// Ends open streams on shutdown.
    pub shutdown: CancellationToken,
}

/// The router.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/api/units", get(units))
        .route("/api/live", get(live))
        .with_state(state)
}

async fn units(State(s): State<AppState>) -> Json<Vec<UnitState>> {
    Json(s.live.snapshot())
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let mut out = String::new();
    let mut line = |name: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    };
    line(
        "patrol_mqtt_received_total",
        "MQTT messages received.",
        s.source.received.load(Relaxed),
    );
    line(
        "patrol_mqtt_acked_total",
        "MQTT messages acknowledged after they were durable.",
        s.source.acked.load(Relaxed),
    );
    line(
        "patrol_mqtt_reconnects_total",
        "MQTT connection errors.",
        s.source.reconnects.load(Relaxed),
    );
    line(
        "patrol_pings_stored_total",
        "Pings newly stored.",
        s.ingest.stored.load(Relaxed),
    );
    line(
        "patrol_duplicates_total",
        "Records dropped as already stored.",
        s.ingest.duplicates.load(Relaxed),
    );
    line(
        "patrol_offline_total",
        "Last-will messages.",
        s.ingest.offline.load(Relaxed),
    );
    let _ = writeln!(
        out,
        "# HELP patrol_wal_pending Records durable in the WAL, not yet in Parquet.\n# TYPE patrol_wal_pending gauge\npatrol_wal_pending {}",
        s.ingest.wal_pending.load(Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP patrol_rejected_total Rejected messages by reason.\n# TYPE patrol_rejected_total counter"
    );
    if let Ok(m) = s.ingest.rejected.lock() {
        for (reason, n) in m.iter() {
            let _ = writeln!(out, "patrol_rejected_total{{reason=\"{reason}\"}} {n}");
        }
    }
    let _ = writeln!(
        out,
        "# HELP patrol_live_units Units in live state.\n# TYPE patrol_live_units gauge\npatrol_live_units {}",
        s.live.snapshot().len()
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

async fn live(
    State(s): State<AppState>,
) -> Sse<impl futures_core::Stream<Item = Result<Event, Infallible>>> {
    let mut rx = s.live.subscribe();
    let stop = s.shutdown.clone();
    let stream = async_stream::stream! {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                msg = rx.recv() => match msg {
                    Ok(ev) => {
                        if let Ok(e) = Event::default().json_data(&ev) {
                            yield Ok(e);
                        }
                    }
                    // A slow client skips ahead rather than holding ingest back.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
            }
        }
    };
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
