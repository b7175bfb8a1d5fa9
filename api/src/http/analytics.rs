//! Analytics endpoints: `/api/analytics/{job}` runs the same job as `patrol analyze JOB` (the
//! dispatch of [`crate::commands::run`], with the same parameters) and answers its table as JSON rows,
//! GeoJSON (rows with an H3 `cell` become its hexagon), or a table: CSV, Parquet or an Arrow
//! IPC stream ([`crate::http::table`]; for jobs that answer with features, their properties).
//!
//! Answers are cached by (job, parameters, store version), where the store version is derived
//! from the names, sizes and modification times of the `pings` Parquet files: a repeated
//! question is answered from memory until new data reaches Parquet. The cache is bounded by the
//! estimated memory of its answers ([`CACHE_BYTES`]), least recently used first out.
//!
//! One job runs at a time (on the blocking pool) so analysis never starves ingest of both
//! cores, and a token has at most one job running or waiting ([`JOBS_PER_TOKEN`]; more is a
//! 429): one analyst cannot queue work in front of everybody else. A request waits at most
//! [`QUEUE_WAIT`] for the running job to end (then 503). Resolutions and spans are bounded so
//! that a job ends within the route's deadline: `res` in [`MIN_RES`]..=[`MAX_RES`]
//! ([`MAX_RESPONSE_RES`] for the response rule, whose grid and hourly evaluations grow with the
//! cells) and spans of at most [`MAX_SPAN_MS`]. A polars job cannot be interrupted, so a job
//! whose request went away still runs to its end, holding its slots, and caches its answer for
//! the next ask.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::http::auth::{Caller, TokenId};
use crate::http::error::{ApiError, ApiResult};
use crate::http::limits::PerToken;
use crate::http::params::{self, Kind, ParamDoc, Params};
use crate::http::table::{self, Format};
use crate::server::AppState;

/// Coarsest H3 resolution the analytics routes take (cells of about 36 km²).
pub const MIN_RES: i64 = 6;
/// Finest H3 resolution of the patrol jobs (cells of about 0.015 km²).
pub const MAX_RES: i64 = 10;
/// Finest H3 resolution of the response rule: every cell is snapped to the road network and
/// evaluated for every hour of the span, and at resolution 11 a county answered in 47 s with
/// gigabytes of cells.
pub const MAX_RESPONSE_RES: i64 = 9;
/// Longest span of an analytics question.
pub const MAX_SPAN_MS: i64 = 31 * 86_400_000;
/// Most rows a ranked job lists.
pub const MAX_TOP: i64 = 1000;
/// Estimated memory the cached answers may hold together.
pub const CACHE_BYTES: usize = 256 << 20;
/// Jobs one token may have running or waiting.
pub const JOBS_PER_TOKEN: usize = 1;
/// Longest wait for the running job (another caller's) to end.
pub const QUEUE_WAIT: Duration = Duration::from_secs(10);

const FORMATS: [&str; 5] = ["geojson", "json", "csv", "parquet", "arrow"];

/// The parameters of an analytics route whose finest resolution is `max_res`.
const fn params(max_res: i64) -> [ParamDoc; 6] {
    [
        ParamDoc::required(
            "from",
            Kind::Time,
            "Span start: epoch ms, RFC 3339, or YYYY-MM-DD (local midnight).",
        ),
        ParamDoc::required(
            "to",
            Kind::Time,
            "Span end (excluded), same forms as `from`; after `from`, at most 31 days later.",
        ),
        ParamDoc::query(
            "res",
            Kind::Integer {
                min: MIN_RES,
                max: max_res,
            },
            "H3 resolution (default: the jurisdiction's analysis_res).",
        ),
        ParamDoc::query(
            "top",
            Kind::Integer {
                min: 1,
                max: MAX_TOP,
            },
            "Rows kept by ranked jobs such as gaps (default 25).",
        ),
        ParamDoc::query(
            "format",
            Kind::OneOf(&FORMATS),
            "`geojson` (default), `json` (rows), or a table: `csv`, `parquet` or `arrow` (Arrow IPC stream).",
        ),
        ParamDoc::query(
            "station",
            Kind::Text,
            "Only rows of this station (by station, beat, zone or unit).",
        ),
    ]
}

/// Parameters of the patrol jobs' routes (those of `patrol analyze`).
pub const PARAMS: &[ParamDoc] = &params(MAX_RES);
/// Parameters of `/api/analytics/response`.
pub const RESPONSE_PARAMS: &[ParamDoc] = &params(MAX_RESPONSE_RES);

/// A cached answer: the job's rows (GeoJSON features for jobs that answer with geometry), or
/// the reason there is nothing to analyse (also an answer for this store version).
type Rows = Arc<Result<Vec<Value>, String>>;

/// The cache of analytics answers and the limits on running jobs.
#[derive(Debug)]
pub struct AnalyticsCache {
    answers: Mutex<Answers>,
    /// Why a semaphore of one: a job uses both cores, so jobs run one after the other; the
    /// permit moves into the job, so a job whose request went away still holds it.
    run: Arc<Semaphore>,
    /// Jobs running or waiting, per token.
    per_token: PerToken,
}

impl Default for AnalyticsCache {
    fn default() -> Self {
        AnalyticsCache {
            answers: Mutex::new(Answers::new(CACHE_BYTES)),
            run: Arc::new(Semaphore::new(1)),
            per_token: PerToken::new(JOBS_PER_TOKEN),
        }
    }
}

impl AnalyticsCache {
    fn get(&self, key: u64) -> Option<Rows> {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
    }

    fn put(&self, key: u64, rows: Rows) {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(key, rows);
    }
}

/// Answers by key, with their estimated sizes, evicted least recently used first.
#[derive(Debug)]
struct Answers {
    map: HashMap<u64, Cached>,
    /// Sum of the entries' sizes.
    bytes: usize,
    /// Most bytes held.
    cap: usize,
    /// Advances with every use; an entry's `used` is the tick of its last use.
    tick: u64,
}

#[derive(Debug)]
struct Cached {
    rows: Rows,
    bytes: usize,
    used: u64,
}

impl Answers {
    fn new(cap: usize) -> Answers {
        Answers {
            map: HashMap::new(),
            bytes: 0,
            cap,
            tick: 0,
        }
    }

    fn get(&mut self, key: u64) -> Option<Rows> {
        self.tick += 1;
        let e = self.map.get_mut(&key)?;
        e.used = self.tick;
        Some(e.rows.clone())
    }

    /// Keeps `rows` unless they alone would take more than a quarter of the cap (so one
    /// answer cannot flush every other), evicting the least recently used until they fit.
    fn put(&mut self, key: u64, rows: Rows) {
        let bytes = match rows.as_ref() {
            Ok(rows) => rows.iter().map(weight).sum(),
            Err(why) => why.len(),
        };
        if bytes > self.cap / 4 {
            return;
        }
        if let Some(old) = self.map.remove(&key) {
            self.bytes -= old.bytes;
        }
        while self.bytes + bytes > self.cap {
            let Some(oldest) = self.map.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| *k) else {
                break;
            };
            if let Some(e) = self.map.remove(&oldest) {
                self.bytes -= e.bytes;
            }
        }
        self.tick += 1;
        self.bytes += bytes;
        self.map.insert(
            key,
            Cached {
                rows,
                bytes,
                used: self.tick,
            },
        );
    }
}

/// Estimated heap and inline bytes of a JSON value: each node's own size, its strings' bytes,
/// and a map entry's key and bookkeeping.
fn weight(v: &Value) -> usize {
    const NODE: usize = std::mem::size_of::<Value>();
    NODE + match v {
        Value::String(s) => s.len(),
        Value::Array(a) => a.iter().map(weight).sum(),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| std::mem::size_of::<String>() + k.len() + weight(v))
            .sum(),
        _ => 0,
    }
}

/// Version of the store's Parquet pings: a hash of every file's name, size and mtime.
fn store_version(store: &Path) -> u64 {
    let mut h = DefaultHasher::new();
    let mut files = Vec::new();
    if let Ok(days) = std::fs::read_dir(store.join(model::schema::PINGS)) {
        for day in days.flatten() {
            if let Ok(entries) = std::fs::read_dir(day.path()) {
                for e in entries.flatten() {
                    if let Ok(m) = e.metadata() {
                        files.push((e.path(), m.len(), m.modified().ok()));
                    }
                }
            }
        }
    }
    files.sort();
    files.hash(&mut h);
    h.finish()
}

/// The span `[from, to)` of the question: ordered and no longer than the job can answer.
fn span(p: &Params) -> Result<(i64, i64), ApiError> {
    let (Some(from), Some(to)) = (p.time("from"), p.time("to")) else {
        return Err(ApiError::param("from", "required"));
    };
    if to <= from {
        return Err(ApiError::param(
            "to",
            "must be after `from` (the span is from `from` up to, not including, `to`)",
        ));
    }
    // Both lie within EARLIEST..=LATEST, so the difference cannot overflow.
    if to - from > MAX_SPAN_MS {
        return Err(ApiError::param(
            "to",
            format!("the span may be at most {}", params::duration(MAX_SPAN_MS)),
        ));
    }
    Ok((from, to))
}

/// A time as `patrol analyze` reads it.
fn rfc3339(ms: i64) -> Result<String, ApiError> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339())
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("time {ms} out of range")))
}

/// Runs `patrol analyze` for `job` into a temporary JSON file and reads the rows back.
fn run_job(
    job: &str,
    args: &[String],
    store: &Path,
    fixtures: &Path,
) -> anyhow::Result<Vec<Value>> {
    let dir = tempfile::tempdir().context("temporary directory for the answer")?;
    // The response job writes its areas as GeoJSON; the others write row tables.
    let out = dir.path().join(if job == "response" {
        "answer.geojson"
    } else {
        "answer.json"
    });
    crate::analyze::run_into(job, store, fixtures, &out, args)?;
    let text = std::fs::read_to_string(&out).context("reading the answer")?;
    let v: Value = serde_json::from_str(&text).context("parsing the answer")?;
    Ok(match v {
        Value::Array(rows) => rows,
        Value::Object(mut o) => match o.remove("features") {
            Some(Value::Array(features)) => features,
            _ => vec![Value::Object(o)],
        },
        other => vec![other],
    })
}

/// Which column colours a job's cells on the map.
const VALUE_COLUMNS: [&str; 6] = ["gap", "gi_z", "minutes", "dosage_minutes", "coverage", "ms"];

/// The columns of a row: a plain row, or the properties of a feature.
fn props(row: &Value) -> &Value {
    if row.get("type").and_then(Value::as_str) == Some("Feature") {
        &row["properties"]
    } else {
        row
    }
}

fn station_of_row(row: &Value, s: &AppState) -> Option<String> {
    let row = props(row);
    let get = |k: &str| row.get(k).and_then(Value::as_str);
    if let Some(st) = get("station") {
        return Some(st.to_owned());
    }
    for key in ["beat", "zone", "fence"] {
        if let Some(f) = get(key).and_then(|id| s.reference.fence_station(id)) {
            return Some(f.to_owned());
        }
    }
    get("unit")
        .and_then(|u| s.reference.station_of(u))
        .map(str::to_owned)
}

fn geojson(rows: &[Value]) -> Value {
    let features: Vec<Value> = rows
        .iter()
        .map(|row| {
            if row.get("type").and_then(Value::as_str) == Some("Feature") {
                return row.clone();
            }
            let cell = row
                .get("cell")
                .and_then(Value::as_u64)
                .and_then(|c| h3o::CellIndex::try_from(c).ok());
            let geometry = cell.map_or(Value::Null, |c| {
                let mut ring: Vec<Value> = c
                    .boundary()
                    .iter()
                    .map(|ll| json!([ll.lng(), ll.lat()]))
                    .collect();
                if let Some(first) = ring.first().cloned() {
                    ring.push(first);
                }
                json!({"type": "Polygon", "coordinates": [ring]})
            });
            let mut props = row.clone();
            if let Some(v) = VALUE_COLUMNS
                .iter()
                .find_map(|k| row.get(*k).and_then(Value::as_f64))
                && let Some(o) = props.as_object_mut()
            {
                o.insert("value".into(), json!(v));
            }
            json!({"type": "Feature", "geometry": geometry, "properties": props})
        })
        .collect();
    json!({"type": "FeatureCollection", "features": features})
}

/// `GET /api/analytics/{job}`.
pub(crate) async fn answer(
    job: &'static str,
    s: AppState,
    caller: Caller,
    token: TokenId,
    q: Option<String>,
) -> ApiResult<Response> {
    let docs = if job == "response" {
        RESPONSE_PARAMS
    } else {
        PARAMS
    };
    let p = Params::parse(q.as_deref(), docs, s.reference.zone())?;
    let station = caller.station_filter(p.text("station"))?;
    let (from, to) = span(&p)?;
    let mut args = vec![
        "--from".to_owned(),
        rfc3339(from)?,
        "--to".to_owned(),
        rfc3339(to)?,
    ];
    if let Some(res) = p.integer("res") {
        args.extend(["--res".into(), res.to_string()]);
    }
    if let Some(top) = p.integer("top") {
        args.extend(["--top".into(), top.to_string()]);
    }
    let format = Format::param(&p)?;
    let store = s.store.clone();
    let mut h = DefaultHasher::new();
    (job, &args, store_version(&store)).hash(&mut h);
    let key = h.finish();
    if let Some(rows) = s.analytics.get(key) {
        return render(&s, rows, station.as_deref(), format);
    }
    let slot = s
        .analytics
        .per_token
        .try_acquire(token)
        .ok_or_else(|| ApiError::TooMany {
            what: "this token already has an analytics job running or waiting; ask again when it has answered".into(),
            retry_after_s: 5,
        })?;
    let permit = tokio::time::timeout(QUEUE_WAIT, s.analytics.run.clone().acquire_owned())
        .await
        .map_err(|_| ApiError::Busy {
            reason: format!(
                "another analytics job has been running for over {} s; ask again shortly",
                QUEUE_WAIT.as_secs()
            ),
            retry_after_s: QUEUE_WAIT.as_secs(),
        })?
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("the job semaphore: {e}")))?;
    // Someone may have answered it while this request waited its turn.
    if let Some(rows) = s.analytics.get(key) {
        return render(&s, rows, station.as_deref(), format);
    }
    let fixtures: PathBuf = s.fixtures.clone();
    let cache = s.analytics.clone();
    let rows = tokio::task::spawn_blocking(move || {
        // Held until the job ends, whether or not its request is still there.
        let _held = (slot, permit);
        let rows = match run_job(job, &args, &store, &fixtures).map_err(classify) {
            Ok(rows) => Arc::new(Ok(rows)),
            Err(ApiError::NotFound(why)) => Arc::new(Err(why)),
            Err(e) => return Err(e),
        };
        cache.put(key, rows.clone());
        Ok(rows)
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("analytics task: {e}")))??;
    render(&s, rows, station.as_deref(), format)
}

/// Filters an answer by station and writes it in `format`.
fn render(s: &AppState, rows: Rows, station: Option<&str>, format: Format) -> ApiResult<Response> {
    let rows = match rows.as_ref() {
        Ok(r) => r,
        Err(why) => return Err(ApiError::NotFound(why.clone())),
    };
    let visible: Vec<Value> = match station {
        None => rows.clone(),
        Some(st) => rows
            .iter()
            .filter(|r| station_of_row(r, s).as_deref() == Some(st))
            .cloned()
            .collect(),
    };
    Ok(match format {
        Format::Table(t) => {
            let rows: Vec<&serde_json::Map<String, Value>> = visible
                .iter()
                .filter_map(|r| props(r).as_object())
                .collect();
            return table::respond(&table::from_rows(&rows)?, t);
        }
        Format::Json => axum::Json(visible).into_response(),
        Format::GeoJson => (
            [(header::CONTENT_TYPE, "application/geo+json")],
            axum::Json(geojson(&visible)),
        )
            .into_response(),
    })
}

/// Maps a job's failure to an API error: an empty store is "nothing there" (404).
fn classify(e: anyhow::Error) -> ApiError {
    for cause in e.chain() {
        if let Some(a) = cause.downcast_ref::<analytics::AnalyticsError>() {
            return match a {
                analytics::AnalyticsError::NoPings(_) => {
                    ApiError::NotFound("no stored pings to analyse".into())
                }
                // The span and resolution were checked before the job started; what the job
                // still finds invalid is the jurisdiction's configuration, not the request.
                _ => ApiError::Internal(e),
            };
        }
    }
    ApiError::Internal(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Rows {
        Arc::new(Ok((0..n)
            .map(|i| json!({"cell": i, "beat": "BT01"}))
            .collect()))
    }

    /// The cache holds answers up to its byte cap, evicting the least recently used; an answer
    /// too large for a quarter of the cap is not kept at all.
    #[test]
    fn the_cache_is_bounded_by_bytes() {
        let sample = rows(100);
        let one: usize = sample
            .as_ref()
            .as_ref()
            .map_or(0, |r| r.iter().map(weight).sum());
        assert!(one > 100 * 32, "every row counts its nodes: {one}");
        let mut cache = Answers::new(4 * one);
        for key in 0..4 {
            cache.put(key, rows(100));
        }
        assert_eq!((cache.map.len(), cache.bytes), (4, 4 * one));
        // Key 0 is used again, so key 1 is the least recently used when key 4 needs room.
        assert!(cache.get(0).is_some());
        cache.put(4, rows(100));
        assert_eq!((cache.map.len(), cache.bytes), (4, 4 * one));
        assert!(cache.get(1).is_none() && cache.get(0).is_some() && cache.get(4).is_some());
        // Two answers' worth in one is over a quarter of the cap: answered, never cached.
        cache.put(5, rows(200));
        assert!(cache.get(5).is_none());
        assert!(cache.bytes <= cache.cap);
        // Replacing a key does not count it twice.
        cache.put(4, rows(100));
        assert_eq!(cache.bytes, 4 * one);
    }
}
