//! Reader for OSM PBF (`.osm.pbf`) through the pure-Rust `osmpbf` crate.
//!
//! The file is read in one sequential pass: plain and dense nodes give coordinates, ways go
//! through the same tag rules as the XML reader (`osm::keep_way`), and node references are
//! resolved at the end, so block order does not matter. Relations are ignored.

use std::collections::HashMap;
use std::io::Read;

use osmpbf::{Element, ElementReader};

use super::osm::{OpenWay, keep_way, resolve};
use super::{RawNetwork, RoadsError, SpeedTable};

pub(crate) fn read(input: impl Read + Send, speeds: &SpeedTable) -> Result<RawNetwork, RoadsError> {
    let mut raw = RawNetwork::default();
    let mut index: HashMap<i64, u32> = HashMap::new();
    let mut pending = Vec::new();
    // `for_each` takes an infallible closure; the first problem is kept and reported after.
    let mut failure: Option<RoadsError> = None;
    let mut node = |raw: &mut RawNetwork, id: i64, lat: f64, lon: f64| {
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return Err(RoadsError::BadAttribute {
                element: "node",
                attribute: "lat/lon",
                value: format!("{lat},{lon}"),
            });
        }
        let slot = u32::try_from(raw.coords.len()).map_err(|_| RoadsError::TooLarge)?;
        raw.coords.push((lat, lon));
        index.insert(id, slot);
        Ok(())
    };
    ElementReader::new(input)
        .for_each(|element| {
            if failure.is_some() {
                return;
            }
            let result = match element {
                Element::Node(n) => node(&mut raw, n.id(), n.lat(), n.lon()),
                Element::DenseNode(n) => node(&mut raw, n.id(), n.lat(), n.lon()),
                Element::Way(w) => {
                    raw.ways_read += 1;
                    let mut way = OpenWay {
                        refs: w.refs().collect(),
                        ..OpenWay::default()
                    };
                    for (key, value) in w.tags() {
                        if let Some(slot) = way.tag_slot(key) {
                            *slot = Some(value.to_owned());
                        }
                    }
                    pending.extend(keep_way(way, speeds, &mut raw));
                    Ok(())
                }
                Element::Relation(_) => Ok(()),
            };
            if let Err(e) = result {
                failure = Some(e);
            }
        })
        .map_err(|source| RoadsError::Pbf { source })?;
    if let Some(e) = failure {
        return Err(e);
    }
    resolve(pending, &index, &mut raw);
    Ok(raw)
}
