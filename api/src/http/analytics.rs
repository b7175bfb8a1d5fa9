//! Analytics endpoints: `/api/analytics/{job}` runs the job `patrol analyze JOB` runs
//! ([`analytics::jobs::run`], with a typed request) and answers its main table as JSON rows,
//! GeoJSON (rows with an H3 `cell` become its hexagon), or a table: CSV, Parquet or an Arrow
//! IPC stream ([`crate::http::table`]) with the job's own column types. The response rule's
//! JSON and GeoJSON are its map (cells and failing areas); its table is the per-cell table.
//!
//! Answers are cached by (job, parameters, store version), where the store version is derived
//! from the names, sizes and modification times of the `pings` Parquet files: a repeated
//! question is answered from memory until new data reaches Parquet. The cache is bounded by the
//! estimated memory of its answers ([`CACHE_BYTES`](crate::http::answers::CACHE_BYTES)), least recently used first out.
//!
//! One job runs at a time (on the blocking pool) so analysis never starves ingest of both
//! cores, and a token has at most one job running or waiting ([`JOBS_PER_TOKEN`](crate::http::answers::JOBS_PER_TOKEN); more is a
//! 429): one analyst cannot queue work in front of everybody else. A request waits at most
//! [`QUEUE_WAIT`] for the running job to end (then 503). Resolutions and spans are bounded so
//! that a job ends within the route's deadline: `res` in [`MIN_RES`]..=[`MAX_RES`]
//! ([`MAX_RESPONSE_RES`] for the response rule, whose grid and hourly evaluations grow with the
//! cells) and spans of at most [`MAX_SPAN_MS`]. A polars job cannot be interrupted, so a job
//! whose request went away still runs to its end, holding its slots, and caches its answer for
//! the next ask.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use analytics::jobs::{self, Job, Request};
use analytics::output::{self};
use anyhow::Context;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use model::jurisdiction::Jurisdiction;
use serde_json::{Value, json};

use crate::http::answers::{Answer, Rows};
use crate::http::auth::{Caller, TokenId};
use crate::http::error::{ApiError, ApiResult};
use crate::http::params::{self, Kind, ParamDoc, Params};
use crate::http::state::AppState;
use crate::http::table::{self, Format};

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

/// Runs `req` and keeps its main table (and the response rule's map).
fn run_job(req: &Request, store: &Path, fixtures: &Path) -> Result<Answer, ApiError> {
    let j = Jurisdiction::load(fixtures)
        .with_context(|| format!("jurisdiction {}", fixtures.display()))?;
    let out = jobs::run(&j, store, req).map_err(classify)?;
    let features = out.response.as_ref().map(|r| match r.geojson() {
        Value::Object(mut o) => match o.remove("features") {
            Some(Value::Array(features)) => features,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    });
    let frame = out
        .tables
        .into_iter()
        .next()
        .map(|t| t.frame)
        .unwrap_or_default();
    Ok(Answer { frame, features })
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
    job: Job,
    s: AppState,
    caller: Caller,
    token: TokenId,
    q: Option<String>,
) -> ApiResult<Response> {
    let docs = if job == Job::Response {
        RESPONSE_PARAMS
    } else {
        PARAMS
    };
    let p = Params::parse(q.as_deref(), docs, s.reference.zone())?;
    let station = caller.station_filter(p.text("station"))?;
    let (from, to) = span(&p)?;
    let mut req = Request::new(job, from, to);
    // Both were checked against the route's bounds by `Params::parse`.
    req.res = p.integer("res").and_then(|r| u8::try_from(r).ok());
    if let Some(top) = p.integer("top").and_then(|t| usize::try_from(t).ok()) {
        req.top = top;
    }
    let format = Format::param(&p)?;
    let store = s.store.clone();
    let mut h = DefaultHasher::new();
    (job, from, to, req.res, req.top, store_version(&store)).hash(&mut h);
    let key = h.finish();
    if let Some(rows) = s.analytics.get(key) {
        return render(&s, &rows, station.as_deref(), format);
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
        return render(&s, &rows, station.as_deref(), format);
    }
    let fixtures: PathBuf = s.fixtures.clone();
    let cache = s.analytics.clone();
    let rows = tokio::task::spawn_blocking(move || {
        // Held until the job ends, whether or not its request is still there.
        let _held = (slot, permit);
        let rows = match run_job(&req, &store, &fixtures) {
            Ok(answer) => Arc::new(Ok(answer)),
            Err(ApiError::NotFound(why)) => Arc::new(Err(why)),
            Err(e) => return Err(e),
        };
        cache.put(key, rows.clone());
        Ok(rows)
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("analytics task: {e}")))??;
    render(&s, &rows, station.as_deref(), format)
}

/// Filters an answer by station and writes it in `format`.
fn render(s: &AppState, rows: &Rows, station: Option<&str>, format: Format) -> ApiResult<Response> {
    let answer = match rows.as_ref() {
        Ok(a) => a,
        Err(why) => return Err(ApiError::NotFound(why.clone())),
    };
    let visible = |r: &Value| station.is_none_or(|st| station_of_row(r, s).as_deref() == Some(st));
    if let Format::Table(t) = format {
        let mut frame = match station {
            None => answer.frame.clone(),
            Some(_) => {
                let keep: Vec<bool> = output::json_rows(&answer.frame)
                    .into_iter()
                    .map(|r| visible(&Value::Object(r)))
                    .collect();
                output::filter_rows(&answer.frame, &keep).context("filtering by station")?
            }
        };
        return table::respond(&table::from_frame(&mut frame)?, t);
    }
    let rows: Vec<Value> = match &answer.features {
        Some(features) => features.iter().filter(|r| visible(r)).cloned().collect(),
        None => output::json_rows(&answer.frame)
            .into_iter()
            .map(Value::Object)
            .filter(|r| visible(r))
            .collect(),
    };
    Ok(match format {
        Format::GeoJson => (
            [(header::CONTENT_TYPE, "application/geo+json")],
            axum::Json(geojson(&rows)),
        )
            .into_response(),
        _ => axum::Json(rows).into_response(),
    })
}

/// Maps a job's failure to an API error: an empty store is "nothing there" (404).
fn classify(e: analytics::AnalyticsError) -> ApiError {
    match e {
        analytics::AnalyticsError::NoPings(_) => {
            ApiError::NotFound("no stored pings to analyse".into())
        }
        // The span and resolution were checked before the job started; what the job still
        // finds invalid is the jurisdiction's configuration, not the request.
        other => ApiError::Internal(other.into()),
    }
}
