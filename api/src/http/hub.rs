//! The live fan-out: [`LiveHub`] subscribes once to ingest's live broadcast, serialises each
//! event once, and re-broadcasts it to every SSE client; clients that fall behind skip ahead
//! (the broadcast reports `Lagged`), so neither a slow client nor many clients slow ingest.
//! Non-position events (offline and whatever else ingest broadcasts) are also kept in a
//! bounded in-memory log (at most [`EVENT_LOG`]) that `/api/events` answers from besides the
//! store's `events` table: the live state's offline notices are not stored, and stored events
//! reach Parquet only when the WAL is flushed.
//!
//! The hub also keeps each unit's `/api/units` JSON serialised between changes
//! ([`LiveHub::units_json`]): a request re-serialises only the units that changed since the
//! previous one (live state numbers its changes), filters the fragments by scope, and appends
//! each unit's age, the one field that depends on the time of the request.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

use ingest::sink::live::{LiveEvent, LiveState, UnitState};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::limits::PerToken;
use crate::http::params::Params;
use crate::http::reference::Reference;

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
    pub(crate) streams: PerToken,
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

    /// The JSON array of the units `f` keeps, each with its age as of `now`: the cached
    /// fragments, brought up to `live`'s version first.
    ///
    /// # Errors
    /// [`ApiError::Internal`] if the cache's lock is poisoned or a unit cannot be serialised.
    pub(crate) fn units_json(
        &self,
        live: &LiveState,
        reference: &Reference,
        f: &Filter,
        now: i64,
    ) -> Result<Vec<u8>, ApiError> {
        let poisoned = || ApiError::Internal(anyhow::anyhow!("the units cache lock is poisoned"));
        let cache = &self.units;
        let current = live.version();
        {
            let fresh = cache.inner.read().map_err(|_| poisoned())?;
            if fresh.version == current {
                return Ok(fresh.render(f, now));
            }
        }
        let mut stale = cache.inner.write().map_err(|_| poisoned())?;
        // Another request may have brought it up to date meanwhile; this costs nothing then.
        let (version, changed) = live.changed_since(stale.version);
        for state in &changed {
            stale
                .units
                .insert(state.unit.clone(), Fragment::new(state, reference)?);
        }
        stale.version = version;
        Ok(stale.render(f, now))
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
pub(crate) fn beat_of_event(v: &serde_json::Value) -> Option<String> {
    (v.get("layer").and_then(|l| l.as_str()) == Some("beat"))
        .then(|| v.get("fence").and_then(|f| f.as_str()).map(str::to_owned))
        .flatten()
}

/// The live filters shared by `/api/units`, `/api/live` and `/api/events`.
pub(crate) struct Filter {
    station: Option<String>,
    pub(crate) beat: Option<String>,
    units: Option<Vec<String>>,
}

impl Filter {
    pub(crate) fn from(p: &Params, caller: &Caller) -> Result<Filter, ApiError> {
        Ok(Filter {
            station: caller.station_filter(p.text("station"))?,
            beat: p.text("beat").map(str::to_owned),
            units: p
                .text("unit")
                .map(|u| u.split(',').map(|s| s.trim().to_owned()).collect()),
        })
    }

    pub(crate) fn keeps(&self, unit: &str, station: &str, beat: Option<&str>) -> bool {
        self.station.as_deref().is_none_or(|s| s == station)
            && self.beat.as_deref().is_none_or(|b| beat == Some(b))
            && self
                .units
                .as_ref()
                .is_none_or(|us| us.iter().any(|u| u == unit))
    }
}

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
