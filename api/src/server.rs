//! The HTTP API: the route table, the router and its layers, `/ready` and `/metrics`.
//!
//! Every route is declared once in [`routes`] with its access class and parameters; the same
//! table builds the router (each route behind [`auth::guard`]) and the OpenAPI document
//! ([`openapi`](crate::http::openapi)). Handlers live in [`crate::http`]. None of them can slow
//! ingest: live state is a snapshot under a short lock plus broadcast channels that skip ahead.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use analytics::jobs::Job;
use axum::Extension;
use axum::Router;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use ingest::gateway::server::GatewayStats;

use crate::gateways::RunningGateway;
use crate::http::analytics as analytics_api;
use crate::http::auth::{self, Access, Caller, Guard, TokenId};
use crate::http::error::ApiError;
use crate::http::openapi::RouteDoc;
use crate::http::params::ParamDoc;
use crate::http::state::{AppState, BUCKETS, HttpStats};
use crate::http::{history, live, openapi, page};

/// Deadline of a route's response head, unless its [`RouteDoc`] says otherwise: a store read
/// of the longest span the parameters allow takes well under a second.
pub const DEADLINE: Duration = Duration::from_secs(30);
/// Deadline of the analytics routes: a wait of up to
/// [`QUEUE_WAIT`](crate::http::analytics::QUEUE_WAIT) for the running job, then the job.
pub const ANALYTICS_DEADLINE: Duration = Duration::from_secs(90);
/// Longest request target (path and query) read, bytes.
pub const MAX_TARGET: usize = 8 * 1024;
/// Most header fields a request may carry.
pub const MAX_HEADERS: usize = 64;
/// Largest header section (names and values) read, bytes.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

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
        deadline: DEADLINE,
        errors: &[],
    }
}

const JSON: &str = "application/json";
const GEOJSON: &str = "application/geo+json";

/// The analytics routes: path, job, summary.
const ANALYTICS: [(&str, Job, &str); 7] = [
    (
        "/api/analytics/dosage",
        Job::Dosage,
        "Patrol dosage: minutes of presence per H3 cell, window and unit kind.",
    ),
    (
        "/api/analytics/coverage",
        Job::Coverage,
        "Beat and zone coverage: share of cells visited, patrol minutes, distance.",
    ),
    (
        "/api/analytics/hotspots",
        Job::Hotspots,
        "Incident hot spots: Getis-Ord Gi* z, p, q and bin per cell.",
    ),
    (
        "/api/analytics/gaps",
        Job::Gaps,
        "Gaps: cells with many incidents and little patrol, ranked.",
    ),
    (
        "/api/analytics/koper",
        Job::Koper,
        "Koper visits: length of patrol visits to hot-spot cells.",
    ),
    (
        "/api/analytics/compliance",
        Job::Compliance,
        "Roster compliance: rostered patrols against what the units did.",
    ),
    (
        "/api/analytics/response",
        Job::Response,
        "The 30 km / 30 minute response rule on the road network.",
    ),
];

/// Every route with its handler. All are `GET`.
pub fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    let mut table = fixed_routes();
    for (path, job, summary) in ANALYTICS {
        let params = if job == Job::Response {
            analytics_api::RESPONSE_PARAMS
        } else {
            analytics_api::PARAMS
        };
        table.push((
            RouteDoc {
                deadline: ANALYTICS_DEADLINE,
                ..doc(path, Access::Analytics, summary, params, GEOJSON)
            }
            .with_tables()
            // 404: nothing stored to analyse; 429: the token's job is still running; 503:
            // another caller's job did not end in time.
            .with_errors(&[404, 429, 503]),
            get(
                move |State(s): State<AppState>,
                      Extension(c): Extension<Caller>,
                      Extension(t): Extension<TokenId>,
                      RawQuery(q): RawQuery| analytics_api::answer(job, s, c, t, q),
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
                "/ready",
                Access::Public,
                "Readiness: 200 while ingest is connected to the broker with its subscriptions granted and the store takes writes; 503 with the reason otherwise (wrong broker credentials, broker down, subscription not granted yet, disk full, store read-only).",
                &[],
                "application/json",
            )
            // 503: not ready, with the reason.
            .with_errors(&[503]),
            get(ready),
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
            get(|| async { axum::Json(openapi::document(routes().iter().map(|(d, _)| d))) }),
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
            )
            // 429: the token holds its most open streams.
            .with_errors(&[429]),
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
            .with_tables()
            // 404: no such unit.
            .with_errors(&[404]),
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

/// The router: every route of [`routes`] behind its guard and (but the public ones) its
/// deadline, JSON 404/405 answers, oversized requests refused in the error shape, the
/// security headers on every answer, and the latency histogram around everything.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new();
    for (d, handler) in routes() {
        let guard = Guard {
            tokens: state.tokens.clone(),
            access: d.access,
        };
        let mut handler = handler.route_layer(middleware::from_fn_with_state(guard, auth::guard));
        if d.access != Access::Public {
            handler = handler.route_layer(middleware::from_fn_with_state(d.deadline, deadline));
        }
        router = router.route(d.path, handler);
    }
    router
        .fallback(|| async {
            ApiError::NotFound("no such endpoint (see /api/openapi.json)".into())
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn(refuse_oversized))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn_with_state(
            state.http.clone(),
            time_request,
        ))
        .with_state(state)
}

/// Middleware: the route's work gets `limit` to produce its response head, else it is
/// dropped (which stops its store reads) and the answer is 504. A stream's body is not
/// limited: `/api/live` ends with its client or the server.
async fn deadline(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::Timeout(format!(
            "the request did not finish within {} s and was stopped",
            limit.as_secs()
        ))
        .into_response(),
    }
}

/// Middleware: 414 for a request target over [`MAX_TARGET`], 431 for more than
/// [`MAX_HEADERS`] header fields or [`MAX_HEADER_BYTES`] of them, in the error shape.
///
/// hyper refuses larger requests still (a target over 64 KiB, over 100 fields or about
/// 400 KiB of head) itself, before any route runs, with an empty body; these limits are lower
/// so that every request this server reads is answered in the error shape.
async fn refuse_oversized(req: Request, next: Next) -> Response {
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > MAX_TARGET {
        return ApiError::UriTooLong(MAX_TARGET).into_response();
    }
    let headers = req.headers();
    if headers.len() > MAX_HEADERS {
        return ApiError::HeadersTooLarge(format!("{MAX_HEADERS} fields")).into_response();
    }
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if bytes > MAX_HEADER_BYTES {
        return ApiError::HeadersTooLarge(format!("{MAX_HEADER_BYTES} bytes")).into_response();
    }
    next.run(req).await
}

/// The content security policy: the map page loads its script and style sheet from this
/// server, calls only this server, draws on a canvas, and has a `data:` icon; nothing may
/// frame it.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Middleware: the usual security headers on every answer, and `Cache-Control: no-store`
/// on every answer that does not set its own (the API's answers carry officers' locations;
/// only the map's static files set theirs).
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

async fn time_request(State(stats): State<Arc<HttpStats>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let resp = next.run(req).await;
    stats.observe(start.elapsed().as_secs_f64());
    resp
}

/// `/ready`: whether this node takes in pings now. A load balancer or supervisor reads the
/// status; the body says what is wrong, as the operator needs it.
async fn ready(State(s): State<AppState>) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let mut problems = Vec::new();
    if !s.source.connected.load(Relaxed) {
        problems.push(match s.source.error() {
            Some(e) => format!("not connected to the MQTT broker: {e}"),
            None => "not connected to the MQTT broker yet".to_owned(),
        });
    } else if !s.source.subscribed.load(Relaxed) {
        // Connected, but what devices publish now would not reach ingest.
        problems.push("connected to the MQTT broker, its subscriptions not granted yet".to_owned());
    }
    if let Some(e) = s.ingest.store_error() {
        problems.push(format!("the store refuses writes, ingest is paused: {e}"));
    }
    if problems.is_empty() {
        Ok(axum::Json(serde_json::json!({ "ready": true })))
    } else {
        Err(ApiError::Unavailable(problems.join("; ")))
    }
}

/// The device gateways' counters, labelled by protocol and transport.
fn gateway_metrics(out: &mut String, gateways: &[RunningGateway]) {
    type Read = fn(&GatewayStats) -> u64;
    let series: [(&str, &str, &str, Read); 6] = [
        (
            "patrol_gateway_connections",
            "gauge",
            "Device connections open.",
            |g| g.connections.load(Relaxed),
        ),
        (
            "patrol_gateway_accepted_total",
            "counter",
            "Device connections accepted.",
            |g| g.accepted.load(Relaxed),
        ),
        (
            "patrol_gateway_frames_total",
            "counter",
            "Frames, datagrams, lines and requests received.",
            |g| g.frames.load(Relaxed),
        ),
        (
            "patrol_gateway_fixes_total",
            "counter",
            "Fixes handed to the pipeline.",
            |g| g.fixes.load(Relaxed),
        ),
        (
            "patrol_gateway_rejects_total",
            "counter",
            "Frames and records kept as rejects.",
            |g| g.rejects.load(Relaxed),
        ),
        (
            "patrol_gateway_acks_total",
            "counter",
            "Acknowledgements sent once the fixes were durable.",
            |g| g.acks.load(Relaxed),
        ),
    ];
    for (name, kind, help, read) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for g in gateways {
            let _ = writeln!(
                out,
                "{name}{{protocol=\"{}\",transport=\"{}\"}} {}",
                g.protocol,
                g.transport,
                read(&g.stats)
            );
        }
    }
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
        "patrol_store_pauses_total",
        "Times the store refused a write and ingest paused until it could write again.",
        s.ingest.store_pauses.load(Relaxed),
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
        "patrol_mqtt_connected",
        "1 while ingest is connected to the broker.",
        u64::from(s.source.connected.load(Relaxed)),
    );
    gauge(
        "patrol_store_paused",
        "1 while the store refuses writes and ingest waits (nothing is acknowledged).",
        u64::from(s.ingest.store_paused.load(Relaxed)),
    );
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
    gateway_metrics(&mut out, &s.gateways);
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

#[cfg(test)]
mod tests {
    use tower::ServiceExt;

    use super::*;

    /// Past its deadline a handler is dropped and the answer is a 504 in the error shape.
    #[test]
    fn the_deadline_answers_504_and_drops_the_work() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
            let dropped_tx = Arc::new(std::sync::Mutex::new(Some(dropped_tx)));
            /// Sends on drop: tells the test the handler's future was dropped.
            struct OnDrop(Arc<std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>>);
            impl Drop for OnDrop {
                fn drop(&mut self) {
                    if let Some(tx) = self.0.lock().unwrap().take() {
                        let _ = tx.send(());
                    }
                }
            }
            let app = Router::new()
                .route(
                    "/slow",
                    get(move || {
                        let guard = OnDrop(dropped_tx.clone());
                        async move {
                            let _guard = guard;
                            tokio::time::sleep(Duration::from_secs(60)).await;
                            "late"
                        }
                    })
                    .route_layer(middleware::from_fn_with_state(
                        Duration::from_millis(100),
                        deadline,
                    )),
                )
                .layer(middleware::from_fn(security_headers));
            let req = axum::http::Request::get("/slow")
                .body(axum::body::Body::empty())
                .unwrap();
            let resp = tokio::time::timeout(Duration::from_secs(10), app.oneshot(req))
                .await
                .expect("an answer at the deadline, not the handler's 60 s")
                .unwrap();
            assert_eq!(resp.status(), axum::http::StatusCode::GATEWAY_TIMEOUT);
            assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            let body = String::from_utf8_lossy(&body);
            assert!(body.contains("\"error\":\"timeout\""), "{body}");
            tokio::time::timeout(Duration::from_secs(5), dropped_rx)
                .await
                .expect("the handler was dropped at the deadline")
                .unwrap();
        });
    }
}
