//! Live endpoints: `/api/units`, `/api/live` (Server-Sent Events) and `/api/events`, served
//! from the fan-out and caches of [`LiveHub`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use tokio::sync::broadcast::error::RecvError;

use crate::http::auth::{Caller, TokenId};
use crate::http::error::{ApiError, ApiResult};
use crate::http::hub::{Filter, LiveHub, STREAMS_PER_TOKEN, beat_of_event};
use crate::http::limits::blocking;
use crate::http::params::{Kind, ParamDoc, Params};
use crate::http::state::AppState;
use crate::http::table::{self, Format};

/// The identity of an event across the store and the live log: unit, type and time.
fn event_key(v: &serde_json::Value) -> (String, String, i64) {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
    let t = ["time_ms", "at"]
        .iter()
        .find_map(|k| v.get(*k).and_then(serde_json::Value::as_i64))
        .unwrap_or(0);
    (s("unit"), s("type"), t)
}

const STATION: ParamDoc = ParamDoc::query(
    "station",
    Kind::Text,
    "Only this station's units (a station-scoped token may name only its own).",
);
const BEAT: ParamDoc = ParamDoc::query("beat", Kind::Text, "Only units in this beat.");
const UNIT: ParamDoc = ParamDoc::query(
    "unit",
    Kind::Text,
    "Only these units (comma-separated ids).",
);

/// Parameters of `/api/units`.
pub const UNITS_PARAMS: &[ParamDoc] = &[STATION, BEAT, UNIT];
/// Parameters of `/api/live`.
pub const LIVE_PARAMS: &[ParamDoc] = &[STATION, BEAT, UNIT];
/// Longest span of `/api/events`.
const MAX_EVENTS_MS: i64 = 31 * 86_400_000;

const EVENTS_FORMATS: [&str; 4] = table::formats("json");

/// Parameters of `/api/events`.
pub const EVENTS_PARAMS: &[ParamDoc] = &[
    ParamDoc::query(
        "from",
        Kind::Time,
        "Start (epoch ms, RFC 3339 or YYYY-MM-DD local midnight); default 24 h before `to`.",
    ),
    ParamDoc::query(
        "to",
        Kind::Time,
        "End, same forms as `from`; default now. At most 31 days after `from`.",
    ),
    UNIT,
    BEAT,
    ParamDoc::query(
        "kind",
        Kind::Text,
        "Only events of this type (e.g. offline).",
    ),
    STATION,
    ParamDoc::query(
        "format",
        Kind::OneOf(&EVENTS_FORMATS),
        "`json` (default), or one row per event with a column per field found in any of them: `csv`, `parquet` or `arrow` (Arrow IPC stream).",
    ),
];

/// `GET /api/units`.
pub(crate) async fn units(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref(), UNITS_PARAMS, s.reference.zone())?;
    let f = Filter::from(&p, &caller)?;
    let body = s
        .hub
        .units_json(&s.live, &s.reference, &f, model::now_ms())?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET /api/live`.
pub(crate) async fn live(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(token): Extension<TokenId>,
    RawQuery(q): RawQuery,
) -> ApiResult<impl IntoResponse> {
    let p = Params::parse(q.as_deref(), LIVE_PARAMS, s.reference.zone())?;
    let f = Filter::from(&p, &caller)?;
    let slot = s
        .hub
        .streams
        .try_acquire(token)
        .ok_or_else(|| ApiError::TooMany {
            what: format!(
                "this token already has {STREAMS_PER_TOKEN} live streams open (the most it may)"
            ),
            retry_after_s: 5,
        })?;
    let mut rx = s.hub.subscribe();
    let stop = s.shutdown.clone();
    let hub = s.hub.clone();
    let stream = async_stream::stream! {
        // Both end with the stream: the client left, or the server is stopping.
        let _slot = slot;
        let _open = OpenStream::new(&hub);
        yield Ok::<_, Infallible>(Event::default().event("hello").data("{}"));
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                msg = rx.recv() => match msg {
                    Ok(m) => {
                        if f.keeps(&m.unit, &m.station, m.beat.as_deref()) {
                            yield Ok(Event::default().event(m.kind.as_str()).data(&*m.json));
                        }
                    }
                    // A slow client skips ahead rather than holding anyone back.
                    Err(RecvError::Lagged(n)) => {
                        hub.client_skipped.fetch_add(n, Relaxed);
                    }
                    Err(RecvError::Closed) => break,
                },
            }
        }
    };
    let sse = Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)));
    // Positions: never stored by a cache (axum's own header for streams is `no-cache`).
    Ok(([(header::CACHE_CONTROL, "no-store")], sse))
}

/// Counts an open SSE stream for as long as it lives.
struct OpenStream(Arc<LiveHub>);

impl OpenStream {
    fn new(hub: &Arc<LiveHub>) -> OpenStream {
        hub.clients.fetch_add(1, Relaxed);
        OpenStream(hub.clone())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Relaxed);
    }
}

/// `GET /api/events`.
pub(crate) async fn events(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref(), EVENTS_PARAMS, s.reference.zone())?;
    let f = Filter::from(&p, &caller)?;
    let (from, to) = p.range(model::now_ms(), 86_400_000, MAX_EVENTS_MS)?;
    let format = Format::param(&p)?;
    let kind = p.text("kind");
    // An event without a beat of its own is placed in its unit's current beat.
    let current: HashMap<String, String> = if f.beat.is_some() {
        s.live
            .snapshot()
            .into_iter()
            .filter_map(|u| Some((u.unit, u.beat?)))
            .collect()
    } else {
        HashMap::new()
    };
    let keep = |unit: &str, station: &str, beat: Option<&str>, time: i64, k: &str| {
        let beat = beat.or_else(|| current.get(unit).map(String::as_str));
        (from..=to).contains(&time)
            && kind.is_none_or(|want| k == want)
            && f.keeps(unit, station, beat)
    };
    // Stored engine events first, then the live log (which also holds the live state's
    // offline notices, which are not stored, and events not yet flushed to Parquet).
    let store = s.store.clone();
    let stored =
        blocking(move |stop| crate::http::history::read_events(&store, from, to, stop)).await?;
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<(i64, serde_json::Value)> = Vec::new();
    for v in stored {
        let (unit, k, time) = event_key(&v);
        let station = s.reference.station_of(&unit).unwrap_or_default();
        if keep(&unit, station, beat_of_event(&v).as_deref(), time, &k)
            && seen.insert((unit, k, time))
        {
            out.push((time, v));
        }
    }
    for m in s
        .hub
        .events(|m| keep(&m.unit, &m.station, m.beat.as_deref(), m.time, &m.kind))
    {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&m.json)
            && seen.insert(event_key(&v))
        {
            out.push((m.time, v));
        }
    }
    out.sort_by_key(|(t, _)| *t);
    if let Format::Table(t) = format {
        let rows: Vec<&serde_json::Map<String, serde_json::Value>> =
            out.iter().filter_map(|(_, v)| v.as_object()).collect();
        return table::respond(&table::from_rows(&rows)?, t);
    }
    let out: Vec<serde_json::Value> = out.into_iter().map(|(_, v)| v).collect();
    Ok(Json(out).into_response())
}
