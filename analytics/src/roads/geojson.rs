//! GeoJSON reader: a `FeatureCollection` of `LineString` and `MultiLineString` roads.
//!
//! Lines share a node where they share a coordinate to 1e-7° (OSM's precision). Features
//! with other geometry types, a null geometry, or a non-drivable class are skipped.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{
    Direction, RawNetwork, RawWay, RoadsError, SpeedTable, UNTAGGED_CLASS, parse_maxspeed,
};

/// Coordinates are joined on this grid (degrees × 1e7).
const COORD_SCALE: f64 = 1e7;

pub(crate) fn read(text: &str, speeds: &SpeedTable) -> Result<RawNetwork, RoadsError> {
    let root: Value = serde_json::from_str(text)?;
    if root.get("type").and_then(Value::as_str) != Some("FeatureCollection") {
        return Err(RoadsError::BadFeature {
            feature: 0,
            reason: "the root is not a FeatureCollection",
        });
    }
    let features =
        root.get("features")
            .and_then(Value::as_array)
            .ok_or(RoadsError::BadFeature {
                feature: 0,
                reason: "`features` is not an array",
            })?;
    let mut raw = RawNetwork::default();
    let mut index: HashMap<(i64, i64), u32> = HashMap::new();
    for (feature, f) in features.iter().enumerate() {
        raw.ways_read += 1;
        let bad = |reason| RoadsError::BadFeature { feature, reason };
        let props = f.get("properties").and_then(Value::as_object);
        let class = match prop(props, "highway").or_else(|| prop(props, "class")) {
            None => UNTAGGED_CLASS,
            Some(v) => v.as_str().ok_or(bad("`highway`/`class` is not a string"))?,
        };
        if speeds.kmh(class).is_none() {
            continue;
        }
        let Some(parts) = lines(f.get("geometry")).map_err(bad)? else {
            continue;
        };
        let maxspeed = match (prop(props, "speed_kmh"), prop(props, "maxspeed")) {
            (Some(v), _) => {
                Some(positive(v.as_f64()).ok_or(bad("`speed_kmh` is not a positive number"))?)
            }
            (None, Some(v)) => {
                let parsed = match v {
                    Value::Number(n) => positive(n.as_f64()),
                    Value::String(s) => parse_maxspeed(s),
                    _ => None,
                };
                raw.bad_maxspeed += usize::from(parsed.is_none());
                parsed
            }
            (None, None) => None,
        };
        let kmh = speeds
            .way_kmh(class, maxspeed)
            .ok_or(bad("class is not drivable"))?;
        let direction =
            oneway(prop(props, "oneway"), Direction::implied(class, None)).map_err(bad)?;
        for line in parts {
            let mut nodes = Vec::with_capacity(line.len());
            for value in line {
                let (lat, lon) = position(value).map_err(bad)?;
                let key = (
                    (lat * COORD_SCALE).round() as i64,
                    (lon * COORD_SCALE).round() as i64,
                );
                let next = u32::try_from(raw.coords.len()).map_err(|_| RoadsError::TooLarge)?;
                let id = *index.entry(key).or_insert_with(|| {
                    raw.coords.push((lat, lon));
                    next
                });
                nodes.push(id);
            }
            if nodes.len() >= 2 {
                raw.ways.push(RawWay {
                    nodes,
                    kmh,
                    direction,
                });
            }
        }
        raw.ways_kept += 1;
        *raw.ways_by_class.entry(class.to_owned()).or_default() += 1;
    }
    Ok(raw)
}

/// A property that is present and not null.
fn prop<'a>(props: Option<&'a Map<String, Value>>, key: &str) -> Option<&'a Value> {
    props.and_then(|p| p.get(key)).filter(|v| !v.is_null())
}

/// The coordinate arrays of a `LineString` or `MultiLineString`; `None` for a null geometry
/// or another geometry type.
fn lines(geometry: Option<&Value>) -> Result<Option<Vec<&Vec<Value>>>, &'static str> {
    let Some(geometry) = geometry.filter(|g| !g.is_null()) else {
        return Ok(None);
    };
    let coords = geometry.get("coordinates").and_then(Value::as_array);
    let lines = match geometry.get("type").and_then(Value::as_str) {
        Some("LineString") => vec![coords.ok_or("LineString without coordinates")?],
        Some("MultiLineString") => coords
            .ok_or("MultiLineString without coordinates")?
            .iter()
            .map(|l| l.as_array().ok_or("MultiLineString member is not an array"))
            .collect::<Result<_, _>>()?,
        _ => return Ok(None),
    };
    Ok(Some(lines))
}

fn positive(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite() && *v > 0.0)
}

/// `[lon, lat, ...]` to `(lat, lon)`, range-checked.
fn position(value: &Value) -> Result<(f64, f64), &'static str> {
    let pair = value
        .as_array()
        .filter(|a| a.len() >= 2)
        .ok_or("position is not [lon, lat]")?;
    let (lon, lat) = (pair[0].as_f64(), pair[1].as_f64());
    match (lat, lon) {
        (Some(lat), Some(lon))
            if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) =>
        {
            Ok((lat, lon))
        }
        _ => Err("position is not a [lon, lat] pair in range"),
    }
}

/// `oneway` as a bool, a number (1, 0, -1) or an OSM string.
fn oneway(value: Option<&Value>, implied: Direction) -> Result<Direction, &'static str> {
    match value {
        None => Ok(implied),
        Some(Value::Bool(true)) => Ok(Direction::Forward),
        Some(Value::Bool(false)) => Ok(Direction::Both),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(1) => Ok(Direction::Forward),
            Some(-1) => Ok(Direction::Backward),
            Some(0) => Ok(Direction::Both),
            _ => Err("numeric `oneway` must be 1, 0 or -1"),
        },
        Some(Value::String(s)) => Ok(Direction::from_oneway(Some(s), implied)),
        Some(_) => Err("`oneway` is not a bool, number or string"),
    }
}
