//! The jurisdiction as the API serves it: the fleet (for unit kinds, crews and station scope)
//! and the map's base layers (county, stations, beats, zones, checkpoints, roads) as GeoJSON,
//! loaded once at startup.

use std::collections::HashMap;

use analytics::roads::{RoadNetwork, SpeedTable};
use anyhow::Context;
use chrono_tz::Tz;
use model::jurisdiction::{Jurisdiction, Unit};
use serde_json::{Value, json};

/// Fleet and base layers of one jurisdiction.
#[derive(Debug, Default)]
pub struct Reference {
    units: HashMap<String, Unit>,
    /// Features tagged with `layer`, and the station they belong to (`None`: everybody's).
    features: Vec<(Option<String>, Value)>,
    /// The jurisdiction's time zone: a date in a parameter is local midnight there.
    zone: Tz,
}

impl Reference {
    /// Loads the jurisdiction's GeoJSON layers and road network.
    ///
    /// # Errors
    /// When a layer file cannot be read or parsed.
    pub fn load(j: &Jurisdiction) -> anyhow::Result<Reference> {
        let mut features = Vec::new();
        let read = |name: &str| -> anyhow::Result<Vec<Value>> {
            let path = j.dir().join(name);
            if !path.exists() {
                return Ok(Vec::new());
            }
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let v: Value = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            Ok(v.get("features")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default())
        };
        for f in read("county.geojson")? {
            features.push((None, tag(f, "county")));
        }
        let beats = read("beats.geojson")?;
        for layer in ["beat", "zone"] {
            let list = if layer == "beat" {
                beats.clone()
            } else {
                read("zones.geojson")?
            };
            for f in list {
                let station = prop(&f, "station");
                features.push((station, tag(f, layer)));
            }
        }
        for f in read("stations.geojson")? {
            let station = prop(&f, "id");
            features.push((station, tag(f, "station")));
        }
        // Checkpoints belong to the station of the beat they lie in.
        for f in read("checkpoints.geojson")? {
            let station = point(&f).and_then(|(lon, lat)| {
                beats
                    .iter()
                    .find(|b| b.get("geometry").is_some_and(|g| contains(g, lon, lat)))
                    .and_then(|b| prop(b, "station"))
            });
            features.push((station, tag(f, "checkpoint")));
        }
        if let Some(roads) = j.roads_path() {
            let net = RoadNetwork::load(&roads, &SpeedTable::defaults())
                .with_context(|| format!("loading roads {}", roads.display()))?;
            features.push((None, road_feature(&net)));
        }
        Ok(Reference {
            units: j
                .units()
                .iter()
                .map(|u| (u.id.clone(), u.clone()))
                .collect(),
            features,
            zone: j.timezone(),
        })
    }

    /// The jurisdiction's time zone, in which dates given as parameters are read.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The fleet entry of `unit`.
    pub fn unit(&self, unit: &str) -> Option<&Unit> {
        self.units.get(unit)
    }

    /// The home station of `unit`.
    pub fn station_of(&self, unit: &str) -> Option<&str> {
        self.units.get(unit).map(|u| u.station.as_str())
    }

    /// The station of a beat or zone.
    pub fn fence_station(&self, id: &str) -> Option<&str> {
        self.features.iter().find_map(|(owner, f)| {
            let layer = f.pointer("/properties/layer").and_then(Value::as_str);
            let fid = f.pointer("/properties/id").and_then(Value::as_str);
            (matches!(layer, Some("beat" | "zone")) && fid == Some(id))
                .then_some(owner.as_deref())
                .flatten()
        })
    }

    /// A FeatureCollection of the layers in `layers` (all when `None`) that `station` may see
    /// (`None`: all stations).
    pub fn fences(&self, station: Option<&str>, layers: Option<&[&str]>) -> Value {
        let features: Vec<&Value> = self
            .features
            .iter()
            .filter(|(owner, f)| {
                let shared = owner.is_none();
                let visible = shared || station.is_none_or(|s| owner.as_deref() == Some(s));
                let layer = f
                    .pointer("/properties/layer")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                visible && layers.is_none_or(|ls| ls.contains(&layer))
            })
            .map(|(_, f)| f)
            .collect();
        json!({"type": "FeatureCollection", "features": features})
    }
}

fn tag(mut f: Value, layer: &str) -> Value {
    if let Some(p) = f.get_mut("properties").and_then(Value::as_object_mut) {
        p.insert("layer".into(), layer.into());
    }
    f
}

fn prop(f: &Value, key: &str) -> Option<String> {
    f.pointer(&format!("/properties/{key}"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn point(f: &Value) -> Option<(f64, f64)> {
    let c = f.pointer("/geometry/coordinates")?.as_array()?;
    Some((c.first()?.as_f64()?, c.get(1)?.as_f64()?))
}

/// Even-odd point-in-polygon over every ring of a Polygon or MultiPolygon (holes included).
fn contains(geometry: &Value, lon: f64, lat: f64) -> bool {
    let Some(coords) = geometry.get("coordinates") else {
        return false;
    };
    let polygons: Vec<&Value> = match geometry.get("type").and_then(Value::as_str) {
        Some("Polygon") => vec![coords],
        Some("MultiPolygon") => coords
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let mut inside = false;
    for ring in polygons.iter().filter_map(|p| p.as_array()).flatten() {
        let pts: Vec<(f64, f64)> = ring
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_f64()?)))
                    .collect()
            })
            .unwrap_or_default();
        for w in pts.windows(2) {
            let ((x1, y1), (x2, y2)) = (w[0], w[1]);
            if (y1 > lat) != (y2 > lat) && lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1) {
                inside = !inside;
            }
        }
    }
    inside
}

/// The road graph as one MultiLineString of its (undirected) segments.
fn road_feature(net: &RoadNetwork) -> Value {
    let mut lines = Vec::new();
    for a in net.nodes() {
        let Some((alat, alon)) = net.coord(a) else {
            continue;
        };
        for e in net.edges(a) {
            // Each two-way segment once; one-way segments have no reverse edge.
            let reverse = net.edges(e.to).any(|r| r.to == a);
            if reverse && e.to.index() < a.index() {
                continue;
            }
            if let Some((blat, blon)) = net.coord(e.to) {
                lines.push(json!([
                    [round6(alon), round6(alat)],
                    [round6(blon), round6(blat)]
                ]));
            }
        }
    }
    json!({
        "type": "Feature",
        "properties": {"layer": "road"},
        "geometry": {"type": "MultiLineString", "coordinates": lines},
    })
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_layers_and_scope() {
        let j = Jurisdiction::load(&devkit::testkit::fixtures()).unwrap();
        let r = Reference::load(&j).unwrap();
        let count = |v: &Value, layer: &str| {
            v["features"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["properties"]["layer"] == layer)
                .count()
        };
        let all = r.fences(None, None);
        assert_eq!(count(&all, "beat"), 12);
        assert_eq!(count(&all, "zone"), 6);
        assert_eq!(count(&all, "checkpoint"), 17);
        assert_eq!(count(&all, "road"), 1);
        let st2 = r.fences(Some("ST2"), None);
        assert_eq!(count(&st2, "beat"), 2, "BT08 and BT09");
        assert_eq!(count(&st2, "zone"), 1, "Z5");
        // CP08 (Millbrook Grain Elevator) lies in Millbrook's beat.
        let cps: Vec<&str> = st2["features"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["properties"]["layer"] == "checkpoint")
            .map(|f| f["properties"]["id"].as_str().unwrap())
            .collect();
        assert!(cps.contains(&"CP08") && !cps.contains(&"CP01"), "{cps:?}");
        assert_eq!(r.station_of("C01"), Some("ST1"));
    }
}
