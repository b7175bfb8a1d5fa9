//! Analytics endpoints: `/api/analytics/{job}` runs the same job as `patrol analyze JOB` (the
//! dispatch of [`crate::commands::run`], with the same parameters) and answers its table as JSON rows,
//! GeoJSON (rows with an H3 `cell` become its hexagon), or a table: CSV, Parquet or an Arrow
//! IPC stream ([`crate::http::table`]; for jobs that answer with features, their properties).
//!
//! Answers are cached by (job, parameters, store version), where the store version is derived
//! from the names, sizes and modification times of the `pings` Parquet files: a repeated
//! question is answered from memory until new data reaches Parquet. One job runs at a time (on
//! the blocking pool) so analysis never starves ingest of both cores.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::params::{Kind, ParamDoc, Params};
use crate::http::table::{self, Format};
use crate::server::AppState;

/// Parameters of every analytics route (those of `patrol analyze`).
pub const PARAMS: &[ParamDoc] = &[
    ParamDoc::required(
        "from",
        Kind::Time,
        "Span start: RFC 3339, epoch ms, or YYYY-MM-DD (local midnight).",
    ),
    ParamDoc::required(
        "to",
        Kind::Time,
        "Span end (excluded), same forms as `from`.",
    ),
    ParamDoc::query(
        "res",
        Kind::Integer,
        "H3 resolution (default: the jurisdiction's analysis_res).",
    ),
    ParamDoc::query(
        "top",
        Kind::Integer,
        "Rows kept by ranked jobs such as gaps (default 25).",
    ),
    ParamDoc::query(
        "format",
        Kind::Text,
        "`geojson` (default), `json` (rows), or a table: `csv`, `parquet` or `arrow` (Arrow IPC stream).",
    ),
    ParamDoc::query(
        "station",
        Kind::Text,
        "Only rows of this station (by station, beat, zone or unit).",
    ),
];

/// A cached answer: the job's rows (GeoJSON features for jobs that answer with geometry), or
/// the reason there is nothing to analyse (also an answer for this store version).
type Rows = Arc<Result<Vec<Value>, String>>;

/// The cache of analytics answers and the lock that runs one job at a time.
#[derive(Debug, Default)]
pub struct AnalyticsCache {
    answers: Mutex<HashMap<u64, Rows>>,
    run: tokio::sync::Mutex<()>,
}

/// Most answers kept; the cache is cleared when full (answers are cheap to recompute relative
/// to the memory a long-running server could otherwise accumulate).
const MAX_ANSWERS: usize = 64;

/// Version of the store's Parquet pings: a hash of every file's name, size and mtime.
fn store_version(store: &Path) -> u64 {
    let mut h = DefaultHasher::new();
    let mut files = Vec::new();
    if let Ok(days) = std::fs::read_dir(store.join(ingest::store::schema::PINGS)) {
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

/// `YYYY-MM-DD`, RFC 3339 or epoch ms, as `patrol analyze` takes it.
fn span_arg(p: &Params, name: &str) -> Result<String, ApiError> {
    let raw = p
        .text(name)
        .ok_or_else(|| ApiError::param(name, "required"))?;
    if chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d").is_ok() {
        return Ok(raw.to_owned());
    }
    let ms = p.time(name)?.unwrap_or_default();
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339())
        .ok_or_else(|| ApiError::param(name, "out of range"))
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
    q: Option<String>,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref(), PARAMS)?;
    let station = caller.station_filter(p.text("station"))?;
    let mut args = vec![
        "--from".to_owned(),
        span_arg(&p, "from")?,
        "--to".to_owned(),
        span_arg(&p, "to")?,
    ];
    if let Some(res) = p.get::<u8>("res")? {
        if res > 15 {
            return Err(ApiError::param("res", "an H3 resolution is 0..=15"));
        }
        args.extend(["--res".into(), res.to_string()]);
    }
    if let Some(top) = p.get::<usize>("top")? {
        args.extend(["--top".into(), top.to_string()]);
    }
    let format = Format::param(&p, &[Format::GeoJson, Format::Json])?;
    let store = s.store.clone();
    let mut h = DefaultHasher::new();
    (job, &args, store_version(&store)).hash(&mut h);
    let key = h.finish();
    let cached = s
        .analytics
        .answers
        .lock()
        .ok()
        .and_then(|m| m.get(&key).cloned());
    let rows = match cached {
        Some(r) => r,
        None => {
            let _one = s.analytics.run.lock().await;
            // Someone may have answered it while this request waited its turn.
            let done = s
                .analytics
                .answers
                .lock()
                .ok()
                .and_then(|m| m.get(&key).cloned());
            if let Some(r) = done {
                return render(&s, r, station.as_deref(), format);
            }
            let fixtures: PathBuf = s.fixtures.clone();
            let result =
                tokio::task::spawn_blocking(move || run_job(job, &args, &store, &fixtures))
                    .await
                    .map_err(|e| ApiError::Internal(anyhow::anyhow!("analytics task: {e}")))?;
            let rows = Arc::new(match result.map_err(classify) {
                Ok(rows) => Ok(rows),
                Err(ApiError::NotFound(why)) => Err(why),
                Err(e) => return Err(e),
            });
            if let Ok(mut m) = s.analytics.answers.lock() {
                if m.len() >= MAX_ANSWERS {
                    m.clear();
                }
                m.insert(key, rows.clone());
            }
            rows
        }
    };
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

/// Maps a job's failure to an API error: empty stores and bad spans are the caller's.
fn classify(e: anyhow::Error) -> ApiError {
    for cause in e.chain() {
        if let Some(a) = cause.downcast_ref::<analytics::AnalyticsError>() {
            return match a {
                analytics::AnalyticsError::NoPings(_) => {
                    ApiError::NotFound("no stored pings to analyse".into())
                }
                analytics::AnalyticsError::Invalid(msg) => ApiError::param("from", msg.clone()),
                _ => ApiError::Internal(e),
            };
        }
    }
    ApiError::Internal(e)
}
