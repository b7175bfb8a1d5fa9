//! History endpoints over the Parquet store: `/api/units/{id}/track` (route replay),
//! `/api/at` (who was near a place at a time) and `/api/fences` (the base layers). The track
//! and `/api/at` are also tables (`format=csv|parquet|arrow`, see [`crate::http::table`]).
//!
//! Pings reach Parquet when the WAL is flushed (every few seconds), so the last seconds of a
//! track are on the live stream before they are here.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use arrow::array::{
    Array, ArrayRef, Float32Array, Float64Array, Int32Array, Int64Array, StringArray,
    TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ingest::store::projected_reader;
use model::schema::{
    BEAT, DETAIL, EVENTS, FIX_TIME, FLAGS, LAT, LON, PINGS, SPEED_KMH, STATION, TIME, UNIT, ZONE,
};
use serde_json::{Value, json};

use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::limits::{Stop, blocking};
use crate::http::params::{Kind, ParamDoc, Params};
use crate::http::state::AppState;
use crate::http::table::{self, Format};

const DAY_MS: i64 = 86_400_000;
/// Longest replay window.
const MAX_TRACK_MS: i64 = 7 * DAY_MS;
/// Most fixes in one answer.
const MAX_FIXES: usize = 500_000;

const TRACK_FORMATS: [&str; 4] = table::formats("geojson");

/// Parameters of `/api/units/{id}/track`.
pub const TRACK_PARAMS: &[ParamDoc] = &[
    ParamDoc::path("id", "Unit id."),
    ParamDoc::query(
        "from",
        Kind::Time,
        "Start (epoch ms, RFC 3339 or YYYY-MM-DD local midnight); default 2 h before `to`.",
    ),
    ParamDoc::query(
        "to",
        Kind::Time,
        "End, same forms as `from`; default now. At most 7 days after `from`.",
    ),
    ParamDoc::query(
        "format",
        Kind::OneOf(&TRACK_FORMATS),
        "`geojson` (default), or one row per fix: `csv`, `parquet` or `arrow` (Arrow IPC stream).",
    ),
];

const AT_FORMATS: [&str; 4] = table::formats("geojson");

/// Parameters of `/api/at`.
pub const AT_PARAMS: &[ParamDoc] = &[
    ParamDoc::required(
        "lat",
        Kind::Number {
            min: -90.0,
            max: 90.0,
        },
        "Latitude, WGS-84 degrees.",
    ),
    ParamDoc::required(
        "lon",
        Kind::Number {
            min: -180.0,
            max: 180.0,
        },
        "Longitude, WGS-84 degrees.",
    ),
    ParamDoc::required(
        "t",
        Kind::Time,
        "The time (epoch ms, RFC 3339 or YYYY-MM-DD local midnight).",
    ),
    ParamDoc::query(
        "radius",
        Kind::Number {
            min: 1.0,
            max: 10_000.0,
        },
        "Metres around the place (default 250).",
    ),
    ParamDoc::query(
        "window",
        Kind::Integer { min: 0, max: 3600 },
        "Seconds either side of `t` (default 300).",
    ),
    ParamDoc::query("station", Kind::Text, "Only this station's units."),
    ParamDoc::query(
        "format",
        Kind::OneOf(&AT_FORMATS),
        "`geojson` (default), or one row per unit with `lat` and `lon`: `csv`, `parquet` or `arrow` (Arrow IPC stream).",
    ),
];

/// Parameters of `/api/fences`.
pub const FENCES_PARAMS: &[ParamDoc] = &[
    ParamDoc::query(
        "station",
        Kind::Text,
        "Only this station's beats, zones, checkpoints and station.",
    ),
    ParamDoc::query(
        "layer",
        Kind::ListOf(&LAYERS),
        "Only these layers (comma-separated: county, station, beat, zone, checkpoint, road).",
    ),
];

/// The base layers `/api/fences` serves.
const LAYERS: [&str; 6] = ["county", "station", "beat", "zone", "checkpoint", "road"];

/// One stored fix.
#[derive(Debug, Clone, PartialEq)]
struct Fix {
    unit: String,
    station: String,
    t: i64,
    lat: f64,
    lon: f64,
    speed: Option<f32>,
    beat: Option<String>,
    zone: Option<String>,
    flags: i32,
}

/// The day partitions (`date=YYYY-MM-DD`, UTC) of `table` that `from..=to` touches, oldest
/// first. The callers' parameters bound the span to days, so this is a short list.
fn day_dirs(store: &Path, table: &str, from: i64, to: i64) -> Vec<std::path::PathBuf> {
    let (first, last) = (from.div_euclid(DAY_MS), to.div_euclid(DAY_MS));
    (first..=last)
        .filter_map(|day| day.checked_mul(DAY_MS))
        .filter_map(chrono::DateTime::from_timestamp_millis)
        .map(|d| {
            store
                .join(table)
                .join(format!("date={}", d.format("%Y-%m-%d")))
        })
        .collect()
}

/// The Parquet files of a partition directory (none when it does not exist).
fn parquet_files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads the fixes with `from <= fix_time <= to` that `keep(unit, station)` accepts, in
/// `(unit, fix_time)` order without duplicates (a part file and the compacted file covering it
/// may briefly coexist). Stops with [`Stopped`](crate::http::limits::Stopped) when `stop`
/// fires.
fn read_fixes(
    store: &Path,
    from: i64,
    to: i64,
    keep: &dyn Fn(&str, &str) -> bool,
    stop: &Stop,
) -> anyhow::Result<Vec<Fix>> {
    let mut out = Vec::new();
    'days: for dir in day_dirs(store, PINGS, from, to) {
        for path in parquet_files(&dir) {
            stop.check()?;
            read_file(&path, from, to, keep, &mut out, stop)
                .with_context(|| format!("reading {}", path.display()))?;
            if out.len() > MAX_FIXES {
                break 'days;
            }
        }
    }
    out.sort_by(|a, b| (a.unit.as_str(), a.t).cmp(&(b.unit.as_str(), b.t)));
    out.dedup_by(|a, b| a.unit == b.unit && a.t == b.t);
    Ok(out)
}

const COLUMNS: [&str; 9] = [
    UNIT, STATION, FIX_TIME, LAT, LON, SPEED_KMH, BEAT, ZONE, FLAGS,
];

fn read_file(
    path: &Path,
    from: i64,
    to: i64,
    keep: &dyn Fn(&str, &str) -> bool,
    out: &mut Vec<Fix>,
    stop: &Stop,
) -> anyhow::Result<()> {
    for batch in projected_reader(File::open(path)?, &COLUMNS)? {
        stop.check()?;
        let b = batch?;
        let units = col::<StringArray>(&b, UNIT)?;
        let stations = col::<StringArray>(&b, STATION)?;
        let times = col::<TimestampMillisecondArray>(&b, FIX_TIME)?;
        let lats = col::<Float64Array>(&b, LAT)?;
        let lons = col::<Float64Array>(&b, LON)?;
        let speeds = col::<Float32Array>(&b, SPEED_KMH)?;
        let beats = col::<StringArray>(&b, BEAT)?;
        let zones = col::<StringArray>(&b, ZONE)?;
        let flags = col::<Int32Array>(&b, FLAGS)?;
        for i in 0..b.num_rows() {
            let t = times.value(i);
            if t < from || t > to || !keep(units.value(i), stations.value(i)) {
                continue;
            }
            let text = |a: &StringArray| (!a.is_null(i)).then(|| a.value(i).to_owned());
            out.push(Fix {
                unit: units.value(i).to_owned(),
                station: stations.value(i).to_owned(),
                t,
                lat: lats.value(i),
                lon: lons.value(i),
                speed: (!speeds.is_null(i)).then(|| speeds.value(i)),
                beat: text(beats),
                zone: text(zones),
                flags: flags.value(i),
            });
        }
    }
    Ok(())
}

/// The fixes as a table: the columns of the store's `pings` that a replay shows, with
/// `fix_time` in milliseconds since the epoch as in the GeoJSON answer.
fn fix_table(fixes: &[Fix]) -> anyhow::Result<RecordBatch> {
    let text = |f: fn(&Fix) -> Option<&str>| -> ArrayRef {
        Arc::new(fixes.iter().map(f).collect::<StringArray>())
    };
    let columns: Vec<(&str, DataType, ArrayRef)> = vec![
        (UNIT, DataType::Utf8, text(|f| Some(&f.unit))),
        (STATION, DataType::Utf8, text(|f| Some(&f.station))),
        (
            FIX_TIME,
            DataType::Int64,
            Arc::new(fixes.iter().map(|f| f.t).collect::<Int64Array>()),
        ),
        (
            LAT,
            DataType::Float64,
            Arc::new(fixes.iter().map(|f| f.lat).collect::<Float64Array>()),
        ),
        (
            LON,
            DataType::Float64,
            Arc::new(fixes.iter().map(|f| f.lon).collect::<Float64Array>()),
        ),
        (
            SPEED_KMH,
            DataType::Float32,
            Arc::new(fixes.iter().map(|f| f.speed).collect::<Float32Array>()),
        ),
        (BEAT, DataType::Utf8, text(|f| f.beat.as_deref())),
        (ZONE, DataType::Utf8, text(|f| f.zone.as_deref())),
        (
            FLAGS,
            DataType::Int32,
            Arc::new(fixes.iter().map(|f| f.flags).collect::<Int32Array>()),
        ),
    ];
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, dtype, a)| Field::new(*name, dtype.clone(), a.null_count() > 0))
        .collect();
    let arrays = columns.into_iter().map(|(_, _, a)| a).collect();
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

fn col<'a, T: Array + 'static>(b: &'a RecordBatch, name: &str) -> anyhow::Result<&'a T> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .with_context(|| format!("column {name} missing or of the wrong type"))
}

/// The stored events with `from <= time <= to`, each the JSON object `/api/live` sent
/// (the table's `detail` column), oldest first. Stops with [`Stopped`](crate::http::limits::Stopped) when `stop`
/// fires.
///
/// # Errors
/// When a file cannot be read or its `detail` is not JSON.
pub(crate) fn read_events(
    store: &Path,
    from: i64,
    to: i64,
    stop: &Stop,
) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for dir in day_dirs(store, EVENTS, from, to) {
        for path in parquet_files(&dir) {
            stop.check()?;
            let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
            for batch in projected_reader(file, &[TIME, DETAIL])? {
                stop.check()?;
                let b = batch?;
                let times = col::<TimestampMillisecondArray>(&b, TIME)?;
                let details = col::<StringArray>(&b, DETAIL)?;
                for i in 0..b.num_rows() {
                    let t = times.value(i);
                    if (from..=to).contains(&t) {
                        let v: Value = serde_json::from_str(details.value(i))
                            .with_context(|| format!("event detail in {}", path.display()))?;
                        out.push((t, v));
                    }
                }
            }
        }
    }
    out.sort_by_key(|(t, _)| *t);
    Ok(out.into_iter().map(|(_, v)| v).collect())
}

/// `GET /api/units/{id}/track`: the unit's stored fixes as a GeoJSON LineString whose
/// properties carry the per-fix times, speeds and flags, or as a table of fixes.
pub(crate) async fn track(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Result<UrlPath<String>, PathRejection>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    // A path that does not decode (invalid UTF-8) is a bad `id`, in the error shape.
    let UrlPath(id) = id.map_err(|e| ApiError::param("id", e.body_text()))?;
    let p = Params::parse(q.as_deref(), TRACK_PARAMS, s.reference.zone())?;
    let (from, to) = p.range(model::now_ms(), 2 * 3_600_000, MAX_TRACK_MS)?;
    let format = Format::param(&p)?;
    let station = s
        .reference
        .station_of(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no unit {id} in units.csv")))?
        .to_owned();
    if !caller.sees(&station) {
        return Err(ApiError::Forbidden(format!(
            "unit {id} belongs to station {station}, outside this token's scope"
        )));
    }
    let store = s.store.clone();
    let unit = id.clone();
    let fixes = blocking(move |stop| read_fixes(&store, from, to, &|u, _| u == unit, stop)).await?;
    if let Format::Table(t) = format {
        return table::respond(&fix_table(&fixes)?, t);
    }
    let coords: Vec<Value> = fixes.iter().map(|f| json!([f.lon, f.lat])).collect();
    let body = json!({
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": coords},
        "properties": {
            "unit": id,
            "station": station,
            "from": from,
            "to": to,
            "times": fixes.iter().map(|f| f.t).collect::<Vec<_>>(),
            "speed_kmh": fixes.iter().map(|f| f.speed).collect::<Vec<_>>(),
            "beat": fixes.iter().map(|f| f.beat.clone()).collect::<Vec<_>>(),
            "flags": fixes.iter().map(|f| f.flags).collect::<Vec<_>>(),
        },
    });
    Ok(([(header::CONTENT_TYPE, "application/geo+json")], Json(body)).into_response())
}

/// `GET /api/at`: for each unit with a fix within `radius` metres of the place and `window`
/// seconds of `t`, its fix closest in time, as a GeoJSON FeatureCollection.
pub(crate) async fn at(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref(), AT_PARAMS, s.reference.zone())?;
    // `lat`, `lon` and `t` are required, so present once parsed.
    let (Some(lat), Some(lon), Some(t)) = (p.number("lat"), p.number("lon"), p.time("t")) else {
        return Err(ApiError::param("t", "required"));
    };
    let radius = p.number("radius").unwrap_or(250.0);
    // `t` lies within EARLIEST..=LATEST and the window within an hour: no overflow.
    let w = p.integer("window").unwrap_or(300) * 1000;
    let station = caller.station_filter(p.text("station"))?;
    let format = Format::param(&p)?;
    let store = s.store.clone();
    let fixes = blocking(move |stop| {
        read_fixes(
            &store,
            t - w,
            t + w,
            &|_, st| station.as_deref().is_none_or(|s| s == st),
            stop,
        )
    })
    .await?;
    let mut best: HashMap<&str, (&Fix, f64)> = HashMap::new();
    for f in &fixes {
        let d = ingest::validate::haversine_m(lat, lon, f.lat, f.lon);
        if d > radius {
            continue;
        }
        let e = best.entry(f.unit.as_str()).or_insert((f, d));
        if (f.t - t).abs() < (e.0.t - t).abs() {
            *e = (f, d);
        }
    }
    let mut near: Vec<(&Fix, f64)> = best.into_values().collect();
    near.sort_by(|a, b| a.1.total_cmp(&b.1));
    let properties = |f: &Fix, d: f64| {
        json!({
            "unit": f.unit, "station": f.station, "fix_time": f.t,
            "distance_m": (d * 10.0).round() / 10.0, "speed_kmh": f.speed,
            "beat": f.beat, "zone": f.zone, "flags": f.flags,
        })
    };
    if let Format::Table(t) = format {
        let rows: Vec<serde_json::Map<String, Value>> = near
            .iter()
            .filter_map(|(f, d)| {
                let mut row = properties(f, *d).as_object()?.clone();
                row.insert("lat".into(), json!(f.lat));
                row.insert("lon".into(), json!(f.lon));
                Some(row)
            })
            .collect();
        let rows: Vec<&serde_json::Map<String, Value>> = rows.iter().collect();
        return table::respond(&table::from_rows(&rows)?, t);
    }
    let features: Vec<Value> = near
        .iter()
        .map(|(f, d)| {
            json!({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [f.lon, f.lat]},
                "properties": properties(f, *d),
            })
        })
        .collect();
    let body = json!({"type": "FeatureCollection", "features": features});
    Ok(([(header::CONTENT_TYPE, "application/geo+json")], Json(body)).into_response())
}

/// `GET /api/fences`: the base layers the caller's scope covers.
pub(crate) async fn fences(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref(), FENCES_PARAMS, s.reference.zone())?;
    let station = caller.station_filter(p.text("station"))?;
    // Each word was checked against LAYERS by the parser.
    let layers: Option<Vec<&str>> = p
        .text("layer")
        .map(|l| l.split(',').map(str::trim).collect());
    let body = s.reference.fences(station.as_deref(), layers.as_deref());
    Ok(([(header::CONTENT_TYPE, "application/geo+json")], Json(body)).into_response())
}
