//! Live endpoints: `/api/units`, `/api/live` (Server-Sent Events) and `/api/events`.
//!
//! [`LiveHub`] subscribes once to ingest's live broadcast, serialises each event once, and
//! re-broadcasts it to every SSE client; clients that fall behind skip ahead (the broadcast
//! reports `Lagged`), so neither a slow client nor many clients slow ingest. Non-position
//! events (offline and whatever else ingest broadcasts) are also kept in a bounded in-memory
//! log (at most [`EVENT_LOG`]) that `/api/events` answers from besides the store's `events`
//! table: the live state's offline notices are not stored, and stored events reach Parquet
//! only when the WAL is flushed.
//!
//! `/api/units` keeps each unit's JSON serialised between changes ([`UnitsCache`]): a request
//! re-serialises only the units that changed since the previous one (live state numbers its
//! changes), filters the fragments by scope, and appends each unit's age, the one field that
//! depends on the time of the request.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ingest::sink::live::{LiveEvent, LiveState, UnitState};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::http::auth::{Caller, TokenId};
use crate::http::error::{ApiError, ApiResult};
use crate::http::limits::{PerToken, blocking};
use crate::http::params::{Kind, ParamDoc, Params};
use crate::http::reference::Reference;
use crate::http::table::{self, Format};
use crate::server::AppState;

/// Events kept for `/api/events`.
pub const EVENT_LOG: usize = 20_000;

/// Capacity of the fan-out channel to SSE clients; a client further behind skips ahead.
const FANOUT: usize = 8192;

/// Open `/api/live` streams one token may hold: a command room shows a few maps, and a
/// leaked or looping client must not hold thousands of streams (each a task and a queue).
pub const STREAMS_PER_TOKEN: usize = 8;

/// One live event, serialised once, with what the filters look at.
#[derive(Debug)]
pub struct LiveMsg {
    /// `type` of the event (`position`, `offline`, ...).
    pub kind: String,
    /// Unit id.
    pub unit: String,
    /// Station id (from the event, else from `units.csv`).
    pub station: String,
    /// Beat, for positions.
    pub beat: Option<String>,
    /// Event time, ms since the epoch.
    pub time: i64,
    /// The event as JSON.
    pub json: Arc<str>,
}

/// Fan-out of live events to SSE clients, and the recent event log.
#[derive(Debug)]
pub struct LiveHub {
    /// Why a second broadcast: ingest's events are serialised once here instead of once per
    /// client, and clients lag against this channel, never against ingest's.
    tx: broadcast::Sender<Arc<LiveMsg>>,
    log: RwLock<VecDeque<Arc<LiveMsg>>>,
    /// Events the hub itself missed because it fell behind ingest.
    pub hub_skipped: AtomicU64,
    /// Events SSE clients skipped because they fell behind.
    pub client_skipped: AtomicU64,
    /// Open SSE streams.
    pub clients: AtomicU64,
    /// Open SSE streams per token, at most [`STREAMS_PER_TOKEN`] each.
    streams: PerToken,
    /// `/api/units` fragments.
    units: UnitsCache,
}

impl LiveHub {
    /// Starts the hub task on `tracker`; it ends when `token` fires or ingest's channel closes.
    pub fn start(
        live: &LiveState,
        reference: Arc<Reference>,
        tracker: &TaskTracker,
        token: CancellationToken,
    ) -> Arc<LiveHub> {
        let (tx, _) = broadcast::channel(FANOUT);
        let hub = Arc::new(LiveHub {
            tx,
            log: RwLock::new(VecDeque::new()),
            hub_skipped: AtomicU64::new(0),
            client_skipped: AtomicU64::new(0),
            clients: AtomicU64::new(0),
            streams: PerToken::new(STREAMS_PER_TOKEN),
            units: UnitsCache::default(),
        });
        let mut rx = live.subscribe();
        let h = hub.clone();
        tracker.spawn(async move {
            loop {
                let ev = tokio::select! {
                    () = token.cancelled() => break,
                    ev = rx.recv() => ev,
                };
                match ev {
                    Ok(ev) => h.publish(&ev, &reference),
                    Err(RecvError::Lagged(n)) => {
                        h.hub_skipped.fetch_add(n, Relaxed);
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
        hub
    }

    fn publish(&self, ev: &LiveEvent, reference: &Reference) {
        let Some(msg) = to_msg(ev, reference) else {
            return;
        };
        let msg = Arc::new(msg);
        if msg.kind != "position"
            && let Ok(mut log) = self.log.write()
        {
            if log.len() == EVENT_LOG {
                log.pop_front();
            }
            log.push_back(msg.clone());
        }
        // No subscribers is fine.
        let _ = self.tx.send(msg);
    }

    /// Subscribes to serialised live events.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveMsg>> {
        self.tx.subscribe()
    }

    /// Logged events for which `keep` is true, oldest first.
    pub fn events(&self, keep: impl Fn(&LiveMsg) -> bool) -> Vec<Arc<LiveMsg>> {
        self.log
            .read()
            .map(|l| l.iter().filter(|m| keep(m)).cloned().collect())
            .unwrap_or_default()
    }
}

fn to_msg(ev: &LiveEvent, reference: &Reference) -> Option<LiveMsg> {
    let json = serde_json::to_string(ev).ok()?;
    let (kind, unit, station, beat, time) = match ev {
        LiveEvent::Position(s) => (
            "position".to_owned(),
            s.unit.clone(),
            s.station.clone(),
            s.beat.clone(),
            s.fix_time,
        ),
        LiveEvent::Offline { unit, station, at } => (
            "offline".to_owned(),
            unit.clone(),
            station.clone(),
            None,
            *at,
        ),
        LiveEvent::Event(e) => {
            let v: serde_json::Value = serde_json::from_str(&json).ok()?;
            let station = reference.station_of(&e.unit).unwrap_or_default().to_owned();
            (
                v.get("type")
                    .and_then(|t| t.as_str())
                    .unwrap_or("event")
                    .to_owned(),
                e.unit.clone(),
                station,
                beat_of_event(&v),
                e.time_ms,
            )
        }
    };
    Some(LiveMsg {
        kind,
        unit,
        station,
        beat,
        time,
        json: json.into(),
    })
}

/// The beat an event names (`layer` = `beat`), if any.
fn beat_of_event(v: &serde_json::Value) -> Option<String> {
    (v.get("layer").and_then(|l| l.as_str()) == Some("beat"))
        .then(|| v.get("fence").and_then(|f| f.as_str()).map(str::to_owned))
        .flatten()
}

/// The identity of an event across the store and the live log: unit, type and time.
fn event_key(v: &serde_json::Value) -> (String, String, i64) {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
    let t = ["time_ms", "at"]
        .iter()
        .find_map(|k| v.get(*k).and_then(serde_json::Value::as_i64))
        .unwrap_or(0);
    (s("unit"), s("type"), t)
}

/// The live filters shared by `/api/units`, `/api/live` and `/api/events`.
struct Filter {
    station: Option<String>,
    beat: Option<String>,
    units: Option<Vec<String>>,
}

impl Filter {
    fn from(p: &Params, caller: &Caller) -> Result<Filter, ApiError> {
        Ok(Filter {
            station: caller.station_filter(p.text("station"))?,
            beat: p.text("beat").map(str::to_owned),
            units: p
                .text("unit")
                .map(|u| u.split(',').map(|s| s.trim().to_owned()).collect()),
        })
    }

    fn keeps(&self, unit: &str, station: &str, beat: Option<&str>) -> bool {
        self.station.as_deref().is_none_or(|s| s == station)
            && self.beat.as_deref().is_none_or(|b| beat == Some(b))
            && self
                .units
                .as_ref()
                .is_none_or(|us| us.iter().any(|u| u == unit))
    }
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

/// One unit of `/api/units`, serialised, and what the filters look at.
#[derive(Debug)]
struct Fragment {
    station: String,
    beat: Option<String>,
    fix_time: i64,
    /// The unit's JSON object without its closing brace (the age goes there).
    json: String,
}

/// What `/api/units` says of a unit, but its age.
#[derive(Serialize)]
struct UnitRow<'a> {
    #[serde(flatten)]
    state: &'a UnitState,
    /// `car`, `bike`, `ebike` or `foot`, from `units.csv`.
    kind: Option<&'static str>,
    /// Officers in the unit, from `units.csv`.
    crew: Option<u8>,
}

impl Fragment {
    fn new(state: &UnitState, reference: &Reference) -> Result<Fragment, ApiError> {
        let info = reference.unit(&state.unit);
        let row = UnitRow {
            state,
            kind: info.map(|u| u.kind.as_str()),
            crew: info.map(|u| u.crew),
        };
        let mut json = serde_json::to_string(&row)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("serialising a unit: {e}")))?;
        // An object always ends with its brace.
        json.pop();
        Ok(Fragment {
            station: state.station.clone(),
            beat: state.beat.clone(),
            fix_time: state.fix_time,
            json,
        })
    }
}

/// The `/api/units` fragments of every unit, by unit id, as of a live-state version.
#[derive(Debug, Default)]
struct UnitsCache {
    inner: RwLock<Fragments>,
}

#[derive(Debug, Default)]
struct Fragments {
    version: u64,
    units: BTreeMap<String, Fragment>,
}

impl Fragments {
    /// The JSON array of the units `f` keeps, each with `age_s` as of `now`.
    fn render(&self, f: &Filter, now: i64) -> Vec<u8> {
        let size: usize = self.units.values().map(|u| u.json.len() + 24).sum();
        let mut out = Vec::with_capacity(size + 2);
        out.push(b'[');
        for (unit, frag) in &self.units {
            if !f.keeps(unit, &frag.station, frag.beat.as_deref()) {
                continue;
            }
            if out.len() > 1 {
                out.push(b',');
            }
            out.extend_from_slice(frag.json.as_bytes());
            out.extend_from_slice(b",\"age_s\":");
            let age = (now - frag.fix_time).max(0) as f64 / 1000.0;
            // Writing a number to a vector cannot fail.
            let _ = serde_json::to_writer(&mut out, &age);
            out.push(b'}');
        }
        out.push(b']');
        out
    }
}

/// `GET /api/units`.
pub(crate) async fn units(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref(), UNITS_PARAMS, s.reference.zone())?;
    let f = Filter::from(&p, &caller)?;
    let now = crate::wiring::now_ms();
    let poisoned = || ApiError::Internal(anyhow::anyhow!("the units cache lock is poisoned"));
    let cache = &s.hub.units;
    let current = s.live.version();
    let body = {
        let fresh = cache.inner.read().map_err(|_| poisoned())?;
        (fresh.version == current).then(|| fresh.render(&f, now))
    };
    let body = match body {
        Some(b) => b,
        None => {
            let mut stale = cache.inner.write().map_err(|_| poisoned())?;
            // Another request may have brought it up to date meanwhile; this costs nothing then.
            let (version, changed) = s.live.changed_since(stale.version);
            for state in &changed {
                stale
                    .units
                    .insert(state.unit.clone(), Fragment::new(state, &s.reference)?);
            }
            stale.version = version;
            stale.render(&f, now)
        }
    };
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
    let (from, to) = p.range(crate::wiring::now_ms(), 86_400_000, MAX_EVENTS_MS)?;
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
