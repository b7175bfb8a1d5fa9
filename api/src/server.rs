//! The HTTP API: state, the route table, `/health` and `/metrics`.
//!
//! Every route is declared once in [`routes`] with its access class and parameters; the same
//! table builds the router (each route behind [`auth::guard`]) and the OpenAPI document
//! ([`openapi`](crate::http::openapi)). Handlers live in [`crate::http`]. None of them can slow
//! ingest: live state is a snapshot under a short lock plus broadcast channels that skip ahead.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use axum::Extension;
use axum::Router;
use axum::extract::{RawQuery, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use ingest::pipeline::IngestStats;
use ingest::sink::live::LiveState;
use ingest::source::mqtt::SourceStats;
use tokio_util::sync::CancellationToken;

use crate::http::analytics::{self as analytics_api, AnalyticsCache};
use crate::http::auth::{self, Access, Caller, Guard, Tokens};
use crate::http::error::ApiError;
use crate::http::live::LiveHub;
use crate::http::params::ParamDoc;
use crate::http::reference::Reference;
use crate::http::{history, live, openapi, page};

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Live units.
    pub live: Arc<LiveState>,
    /// Serialised live events for SSE clients, and the recent event log.
    pub hub: Arc<LiveHub>,
    /// Pipeline counters.
    pub ingest: Arc<IngestStats>,
    /// Source counters.
    pub source: Arc<SourceStats>,
    /// Configured bearer tokens.
    pub tokens: Arc<Tokens>,
    /// Fleet and base layers.
    pub reference: Arc<Reference>,
    /// Store directory (history reads its Parquet files).
    pub store: PathBuf,
    /// Jurisdiction directory (analytics jobs read it).
    pub fixtures: PathBuf,
    /// Cached analytics answers.
    pub analytics: Arc<AnalyticsCache>,
    /// Request latencies for `/metrics`.
    pub http: Arc<HttpStats>,
    /// Ends open streams on shutdown.
    pub shutdown: CancellationToken,
}

/// One route of the API, as documented.
#[derive(Debug, Clone, Copy)]
pub struct RouteDoc {
    /// Path, axum syntax (`/api/units/{id}/track`).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// One line for the OpenAPI document.
    pub summary: &'static str,
    /// Its parameters.
    pub params: &'static [ParamDoc],
    /// Content type of a successful answer.
    pub content: &'static str,
    /// Whether `format` also offers the tables of [`table`](crate::http::table) (CSV,
    /// Parquet, Arrow).
    pub tables: bool,
}

impl RouteDoc {
    /// The same route, also answering tables.
    const fn with_tables(self) -> RouteDoc {
        RouteDoc {
            tables: true,
            ..self
        }
    }
}

const fn doc(
    path: &'static str,
    access: Access,
    summary: &'static str,
    params: &'static [ParamDoc],
    content: &'static str,
) -> RouteDoc {
    RouteDoc {
        path,
        access,
        summary,
        params,
        content,
        tables: false,
    }
}

const JSON: &str = "application/json";
const GEOJSON: &str = "application/geo+json";

/// The analytics routes: path, `patrol analyze` job, summary.
const ANALYTICS: [(&str, &str, &str); 7] = [
    (
        "/api/analytics/dosage",
        "dosage",
        "Patrol dosage: minutes of presence per H3 cell, window and unit kind.",
    ),
    (
        "/api/analytics/coverage",
        "coverage",
        "Beat and zone coverage: share of cells visited, patrol minutes, distance.",
    ),
    (
        "/api/analytics/hotspots",
        "hotspots",
        "Incident hot spots: Getis-Ord Gi* z, p, q and bin per cell.",
    ),
    (
        "/api/analytics/gaps",
        "gaps",
        "Gaps: cells with many incidents and little patrol, ranked.",
    ),
    (
        "/api/analytics/koper",
        "koper",
        "Koper visits: length of patrol visits to hot-spot cells.",
    ),
    (
        "/api/analytics/compliance",
        "compliance",
        "Roster compliance: rostered patrols against what the units did.",
    ),
    (
        "/api/analytics/response",
        "response",
        "The 30 km / 30 minute response rule on the road network.",
    ),
];

/// Every route with its handler. All are `GET`.
pub fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    let mut table = fixed_routes();
    for (path, job, summary) in ANALYTICS {
        table.push((
            doc(
                path,
                Access::Analytics,
                summary,
                analytics_api::PARAMS,
                GEOJSON,
            )
            .with_tables(),
            get(
                move |State(s): State<AppState>,
                      Extension(c): Extension<Caller>,
                      RawQuery(q): RawQuery| analytics_api::answer(job, s, c, q),
            ),
        ));
    }
    table
}

fn fixed_routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        (
            doc(
                "/health",
                Access::Public,
                "Liveness: `ok`.",
                &[],
                "text/plain",
            ),
            get(|| async { "ok" }),
        ),
        (
            doc(
                "/",
                Access::Public,
                "The command-room map (static; it calls the API with the token given in the URL fragment).",
                &[],
                "text/html",
            ),
            get(page::index),
        ),
        (
            doc(
                "/app.js",
                Access::Public,
                "The map's script.",
                &[],
                "text/javascript",
            ),
            get(page::script),
        ),
        (
            doc(
                "/style.css",
                Access::Public,
                "The map's style sheet.",
                &[],
                "text/css",
            ),
            get(page::style),
        ),
        (
            doc(
                "/metrics",
                Access::Admin,
                "Prometheus text: ingest counters, rejections by reason, WAL lag, live units, SSE clients, HTTP latency.",
                &[],
                "text/plain",
            ),
            get(metrics),
        ),
        (
            doc(
                "/api/openapi.json",
                Access::AnyRole,
                "This document.",
                &[],
                JSON,
            ),
            get(openapi::handler),
        ),
        (
            doc(
                "/api/units",
                Access::Live,
                "Live units: position, status, beat and zone, age of the last fix, kind and crew.",
                live::UNITS_PARAMS,
                JSON,
            ),
            get(live::units),
        ),
        (
            doc(
                "/api/live",
                Access::Live,
                "Server-Sent Events: `position`, `offline` and other live events (event name = `type`). Slow clients skip ahead.",
                live::LIVE_PARAMS,
                "text/event-stream",
            ),
            get(live::live),
        ),
        (
            doc(
                "/api/events",
                Access::Live,
                "Geofence and duty events from the store, plus live offline notices and events not yet stored, oldest first.",
                live::EVENTS_PARAMS,
                JSON,
            )
            .with_tables(),
            get(live::events),
        ),
        (
            doc(
                "/api/units/{id}/track",
                Access::History,
                "Route replay: a unit's stored fixes as a LineString with per-fix times, speeds, beats and flags.",
                history::TRACK_PARAMS,
                GEOJSON,
            )
            .with_tables(),
            get(history::track),
        ),
        (
            doc(
                "/api/at",
                Access::History,
                "Who was near a place at a time: each unit's fix closest to `t` within `radius` and `window`.",
                history::AT_PARAMS,
                GEOJSON,
            )
            .with_tables(),
            get(history::at),
        ),
        (
            doc(
                "/api/fences",
                Access::AnyRole,
                "Base layers: county, stations, beats, zones, checkpoints and roads, as the token's scope allows.",
                history::FENCES_PARAMS,
                GEOJSON,
            ),
            get(history::fences),
        ),
    ]
}

/// The router: every route of [`routes`] behind its guard, JSON 404/405 answers, and the
/// latency histogram around everything.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new();
    for (d, handler) in routes() {
        let guard = Guard {
            tokens: state.tokens.clone(),
            access: d.access,
        };
        router = router.route(
            d.path,
            handler.route_layer(middleware::from_fn_with_state(guard, auth::guard)),
        );
    }
    router
        .fallback(|| async {
            ApiError::NotFound("no such endpoint (see /api/openapi.json)".into())
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(
            state.http.clone(),
            time_request,
        ))
        .with_state(state)
}

/// Upper bounds of the latency histogram's buckets, seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Request latency histogram (time to the response head; a stream's lifetime is not counted).
#[derive(Debug, Default)]
pub struct HttpStats {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl HttpStats {
    fn observe(&self, seconds: f64) {
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add((seconds * 1e6) as u64, Relaxed);
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
    }
}

async fn time_request(State(stats): State<Arc<HttpStats>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let resp = next.run(req).await;
    stats.observe(start.elapsed().as_secs_f64());
    resp
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    };
    counter(
        "patrol_mqtt_received_total",
        "MQTT messages received.",
        s.source.received.load(Relaxed),
    );
    counter(
        "patrol_mqtt_acked_total",
        "MQTT messages acknowledged after they were durable.",
        s.source.acked.load(Relaxed),
    );
    counter(
        "patrol_mqtt_reconnects_total",
        "MQTT connection errors.",
        s.source.reconnects.load(Relaxed),
    );
    counter(
        "patrol_pings_stored_total",
        "Pings newly stored.",
        s.ingest.stored.load(Relaxed),
    );
    counter(
        "patrol_duplicates_total",
        "Records dropped as already stored.",
        s.ingest.duplicates.load(Relaxed),
    );
    counter(
        "patrol_offline_total",
        "Last-will messages.",
        s.ingest.offline.load(Relaxed),
    );
    counter(
        "patrol_events_total",
        "Geofence and duty events stored.",
        s.ingest.events.load(Relaxed),
    );
    counter(
        "patrol_sse_skipped_total",
        "Live events SSE clients skipped because they fell behind.",
        s.hub.client_skipped.load(Relaxed) + s.hub.hub_skipped.load(Relaxed),
    );
    let mut gauge = |name: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    };
    gauge(
        "patrol_wal_pending",
        "Records durable in the WAL, not yet in Parquet.",
        s.ingest.wal_pending.load(Relaxed),
    );
    gauge(
        "patrol_live_units",
        "Units in live state.",
        s.live.snapshot().len() as u64,
    );
    gauge(
        "patrol_sse_clients",
        "Open live streams.",
        s.hub.clients.load(Relaxed),
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
    let h = &s.http;
    let _ = writeln!(
        out,
        "# HELP patrol_http_request_duration_seconds Time to the response head.\n# TYPE patrol_http_request_duration_seconds histogram"
    );
    let mut cumulative = 0;
    for (b, n) in BUCKETS.iter().zip(&h.buckets) {
        cumulative += n.load(Relaxed);
        let _ = writeln!(
            out,
            "patrol_http_request_duration_seconds_bucket{{le=\"{b}\"}} {cumulative}"
        );
    }
    let count = h.count.load(Relaxed);
    let _ = writeln!(
        out,
        "patrol_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}\npatrol_http_request_duration_seconds_sum {}\npatrol_http_request_duration_seconds_count {count}",
        h.sum_us.load(Relaxed) as f64 / 1e6
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
