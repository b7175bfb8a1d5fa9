//! What the report's maps draw for context: roads by class with their names, and named
//! places, read from the jurisdiction's road file (OSM XML, OSM PBF or GeoJSON).
//!
//! This is not the routing network: `analytics::roads` keeps what routing needs (drivable
//! ways, speeds, directions) and drops names. Here every way of a drawn `highway` class is
//! kept with its `name` (else its `ref`), and every node tagged `place` (city, town, village,
//! hamlet) or a named `amenity` becomes a label. Coordinates are (lon, lat).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::Context;
use osmpbf::{Element, ElementReader};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// How a road is drawn: its `highway` class grouped in three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RoadClass {
    /// Unclassified, residential, living streets and untyped roads.
    Minor,
    /// Secondary and tertiary roads.
    Secondary,
    /// Motorways, trunk and primary roads.
    Major,
}

impl RoadClass {
    /// The class of an OSM `highway` value (links count as their road), `None` for ways the
    /// maps leave out (service roads, tracks, paths).
    fn of(highway: &str) -> Option<Self> {
        match highway.strip_suffix("_link").unwrap_or(highway) {
            "motorway" | "trunk" | "primary" => Some(Self::Major),
            "secondary" | "tertiary" => Some(Self::Secondary),
            "unclassified" | "residential" | "living_street" | "road" => Some(Self::Minor),
            _ => None,
        }
    }
}

/// What a named point is, least important first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum PlaceKind {
    /// A named `amenity` (police, school, hospital...).
    Poi,
    /// `place=hamlet`.
    Hamlet,
    /// `place=village`.
    Village,
    /// `place=town`.
    Town,
    /// `place=city`.
    City,
}

impl PlaceKind {
    fn of(place: Option<&str>, amenity: Option<&str>) -> Option<Self> {
        match place {
            Some("city") => Some(Self::City),
            Some("town") => Some(Self::Town),
            Some("village") => Some(Self::Village),
            Some("hamlet") => Some(Self::Hamlet),
            _ => amenity.map(|_| Self::Poi),
        }
    }
}

/// A drawn road: its class, its name (or `ref`) and its points.
#[derive(Debug, Clone)]
pub(crate) struct Road {
    pub(crate) class: RoadClass,
    pub(crate) name: Option<String>,
    pub(crate) line: Vec<(f64, f64)>,
}

/// A named place.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    pub(crate) name: String,
    pub(crate) kind: PlaceKind,
    pub(crate) lon: f64,
    pub(crate) lat: f64,
}

/// The roads and places of a jurisdiction's road file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Basemap {
    pub(crate) roads: Vec<Road>,
    pub(crate) places: Vec<Place>,
}

/// The tags of the element being read that the maps use.
#[derive(Debug, Default)]
struct Tags {
    highway: Option<String>,
    name: Option<String>,
    road_ref: Option<String>,
    place: Option<String>,
    amenity: Option<String>,
}

impl Tags {
    fn set(&mut self, key: &str, value: &str) {
        let slot = match key {
            "highway" => &mut self.highway,
            "name" => &mut self.name,
            "ref" => &mut self.road_ref,
            "place" => &mut self.place,
            "amenity" => &mut self.amenity,
            _ => return,
        };
        *slot = Some(value.to_owned());
    }
}

/// OSM elements as they are read: node positions by id, tagged nodes and ways by reference.
#[derive(Debug, Default)]
struct Osm {
    nodes: HashMap<i64, (f64, f64)>,
    tagged: Vec<(i64, Tags)>,
    ways: Vec<(Vec<i64>, Tags)>,
}

impl Osm {
    /// Resolves references (a way is split where it references a node not in the file) and
    /// keeps what the maps draw.
    fn finish(self) -> Basemap {
        let mut map = Basemap::default();
        for (refs, tags) in self.ways {
            let Some(class) = tags.highway.as_deref().and_then(RoadClass::of) else {
                continue;
            };
            let name = tags.name.or(tags.road_ref);
            for run in refs.split(|r| !self.nodes.contains_key(r)) {
                if run.len() >= 2 {
                    map.roads.push(Road {
                        class,
                        name: name.clone(),
                        line: run
                            .iter()
                            .filter_map(|r| self.nodes.get(r).copied())
                            .collect(),
                    });
                }
            }
        }
        for (id, tags) in self.tagged {
            let kind = PlaceKind::of(tags.place.as_deref(), tags.amenity.as_deref());
            if let (Some(kind), Some(name), Some(&(lon, lat))) =
                (kind, tags.name, self.nodes.get(&id))
            {
                map.places.push(Place {
                    name,
                    kind,
                    lon,
                    lat,
                });
            }
        }
        map
    }
}

impl Basemap {
    /// The named road or place nearest to a point, within `max_m` metres: its name and
    /// distance (to the nearest stretch of a road, to a place's node).
    pub(crate) fn nearest_name(&self, lat: f64, lon: f64, max_m: f64) -> Option<(String, f64)> {
        // Equirectangular metres around the point: exact enough within walking distance.
        let k = 111_320.0;
        let kx = k * lat.to_radians().cos();
        let xy = |(x, y): (f64, f64)| ((x - lon) * kx, (y - lat) * k);
        let to_segment = |a: (f64, f64), b: (f64, f64)| {
            let (ax, ay) = xy(a);
            let (bx, by) = xy(b);
            let (dx, dy) = (bx - ax, by - ay);
            let len2 = dx * dx + dy * dy;
            let t = if len2 > 0.0 {
                (-(ax * dx + ay * dy) / len2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            (ax + t * dx).hypot(ay + t * dy)
        };
        let roads = self.roads.iter().filter_map(|r| {
            let name = r.name.as_ref()?;
            let d = r
                .line
                .windows(2)
                .map(|w| to_segment(w[0], w[1]))
                .fold(f64::INFINITY, f64::min);
            Some((name.clone(), d))
        });
        let places = self.places.iter().map(|p| {
            let (x, y) = xy((p.lon, p.lat));
            (p.name.clone(), x.hypot(y))
        });
        roads
            .chain(places)
            .filter(|(_, d)| *d <= max_m)
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// Reads the roads and places of `path`, by its extension: `.osm.pbf`, `.osm`, else
    /// GeoJSON.
    ///
    /// # Errors
    /// The file cannot be read or is malformed.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let name = path.to_string_lossy();
        let file = File::open(path).with_context(|| format!("reading {}", path.display()))?;
        let read = if name.ends_with(".osm.pbf") {
            pbf(BufReader::new(file))
        } else if name.ends_with(".osm") {
            xml(BufReader::new(file))
        } else {
            geojson(BufReader::new(file))
        };
        read.with_context(|| format!("{}: the roads and places for the maps", path.display()))
    }
}

fn xml(input: impl BufRead) -> anyhow::Result<Basemap> {
    let mut reader = Reader::from_reader(input);
    let mut buf = Vec::new();
    let mut osm = Osm::default();
    // The tagged element being read: a node (its id) or a way (its references).
    let mut open: Option<(Option<i64>, Vec<i64>, Tags)> = None;
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .with_context(|| format!("OSM XML near byte {}", reader.buffer_position()))?;
        let get = |e: &BytesStart<'_>, key: &str| -> anyhow::Result<String> {
            let attr = e
                .try_get_attribute(key)?
                .with_context(|| format!("an OSM element without `{key}`"))?;
            Ok(attr
                .decode_and_unescape_value(reader.decoder())?
                .into_owned())
        };
        let start = matches!(event, Event::Start(_));
        match &event {
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                b"node" => {
                    let id: i64 = get(e, "id")?.parse()?;
                    let lat: f64 = get(e, "lat")?.parse()?;
                    let lon: f64 = get(e, "lon")?.parse()?;
                    osm.nodes.insert(id, (lon, lat));
                    if start {
                        open = Some((Some(id), Vec::new(), Tags::default()));
                    }
                }
                b"way" if start => open = Some((None, Vec::new(), Tags::default())),
                b"nd" => {
                    if let Some((None, refs, _)) = open.as_mut() {
                        refs.push(get(e, "ref")?.parse()?);
                    }
                }
                b"tag" => {
                    if let Some((_, _, tags)) = open.as_mut() {
                        tags.set(&get(e, "k")?, &get(e, "v")?);
                    }
                }
                _ => {}
            },
            Event::End(e) if matches!(e.name().as_ref(), b"node" | b"way") => match open.take() {
                Some((Some(id), _, tags)) => osm.tagged.push((id, tags)),
                Some((None, refs, tags)) => osm.ways.push((refs, tags)),
                None => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(osm.finish())
}

fn pbf(input: impl std::io::Read + Send) -> anyhow::Result<Basemap> {
    let mut osm = Osm::default();
    let tags_of = |kv: &mut dyn Iterator<Item = (&str, &str)>| {
        let mut tags = Tags::default();
        for (k, v) in kv {
            tags.set(k, v);
        }
        tags
    };
    let mut node = |id: i64, lon: f64, lat: f64, tags: Tags| {
        osm.nodes.insert(id, (lon, lat));
        if tags.place.is_some() || tags.amenity.is_some() {
            osm.tagged.push((id, tags));
        }
    };
    let mut ways = Vec::new();
    ElementReader::new(input).for_each(|element| match element {
        Element::Node(n) => node(n.id(), n.lon(), n.lat(), tags_of(&mut n.tags())),
        Element::DenseNode(n) => node(n.id(), n.lon(), n.lat(), tags_of(&mut n.tags())),
        Element::Way(w) => ways.push((w.refs().collect(), tags_of(&mut w.tags()))),
        Element::Relation(_) => {}
    })?;
    osm.ways = ways;
    Ok(osm.finish())
}

/// A GeoJSON road file: `LineString` and `MultiLineString` features with `highway` (or
/// `class`) and `name` properties are roads; `Point` features with `place` or `amenity` and
/// a `name` are places.
fn geojson(input: impl BufRead) -> anyhow::Result<Basemap> {
    let doc: serde_json::Value = serde_json::from_reader(input)?;
    let mut map = Basemap::default();
    let point = |c: &serde_json::Value| Some((c.get(0)?.as_f64()?, c.get(1)?.as_f64()?));
    let line = |c: &serde_json::Value| -> Vec<(f64, f64)> {
        c.as_array()
            .map(|pts| pts.iter().filter_map(point).collect())
            .unwrap_or_default()
    };
    let features = doc["features"].as_array().map_or(&[][..], Vec::as_slice);
    for f in features {
        let props = &f["properties"];
        let text = |key: &str| props[key].as_str();
        let coords = &f["geometry"]["coordinates"];
        let lines = match f["geometry"]["type"].as_str() {
            Some("LineString") => vec![line(coords)],
            Some("MultiLineString") => coords
                .as_array()
                .map(|ls| ls.iter().map(line).collect())
                .unwrap_or_default(),
            Some("Point") => {
                let kind = PlaceKind::of(text("place"), text("amenity"));
                if let (Some(kind), Some(name), Some((lon, lat))) =
                    (kind, text("name"), point(coords))
                {
                    map.places.push(Place {
                        name: name.to_owned(),
                        kind,
                        lon,
                        lat,
                    });
                }
                continue;
            }
            _ => continue,
        };
        // As in the routing reader, a feature without a class is an untyped road.
        let class = RoadClass::of(text("highway").or(text("class")).unwrap_or("road"));
        let Some(class) = class else {
            continue;
        };
        let name = text("name").or(text("ref")).map(str::to_owned);
        for line in lines.into_iter().filter(|l| l.len() >= 2) {
            map.roads.push(Road {
                class,
                name: name.clone(),
                line,
            });
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_name_is_the_closest_road_stretch_or_place() {
        let map = Basemap {
            roads: vec![
                Road {
                    class: RoadClass::Minor,
                    name: Some("Elm Street".into()),
                    line: vec![(-88.0, 40.0), (-88.0, 40.01)],
                },
                Road {
                    class: RoadClass::Major,
                    name: None,
                    line: vec![(-88.001, 40.0), (-88.001, 40.01)],
                },
            ],
            places: vec![Place {
                name: "Millbrook".into(),
                kind: PlaceKind::Village,
                lon: -88.003,
                lat: 40.005,
            }],
        };
        // 0.0005° of longitude at 40° N is 42.6 m from Elm Street's middle; the unnamed road
        // is nearer and does not count.
        let (name, d) = map.nearest_name(40.005, -88.0005, 800.0).unwrap();
        assert_eq!(name, "Elm Street");
        assert!(
            (d - 0.0005 * 111_320.0 * 40.005f64.to_radians().cos()).abs() < 0.01,
            "{d}"
        );
        // Beside the village, the village.
        assert_eq!(
            map.nearest_name(40.005, -88.0029, 800.0).unwrap().0,
            "Millbrook"
        );
        // Nothing within reach.
        assert!(map.nearest_name(40.1, -88.0, 800.0).is_none());
    }

    #[test]
    fn xml_keeps_named_roads_by_class_and_places() {
        let text = r#"<osm version="0.6">
          <node id="1" lat="40.0" lon="-88.0"/>
          <node id="2" lat="40.0" lon="-88.1"/>
          <node id="3" lat="40.1" lon="-88.1"><tag k="place" v="village"/><tag k="name" v="Oak &amp; Elm"/></node>
          <node id="4" lat="40.2" lon="-88.2"><tag k="amenity" v="police"/><tag k="name" v="Post"/></node>
          <node id="5" lat="40.3" lon="-88.3"><tag k="place" v="village"/></node>
          <way id="1"><nd ref="1"/><nd ref="2"/><tag k="highway" v="primary_link"/><tag k="ref" v="US 51"/></way>
          <way id="2"><nd ref="1"/><nd ref="9"/><nd ref="2"/><nd ref="3"/><tag k="highway" v="residential"/><tag k="name" v="Main St"/></way>
          <way id="3"><nd ref="1"/><nd ref="2"/><tag k="highway" v="footway"/></way>
        </osm>"#;
        let map = xml(text.as_bytes()).unwrap();
        let roads: Vec<_> = map
            .roads
            .iter()
            .map(|r| (r.class, r.name.as_deref(), r.line.len()))
            .collect();
        // The second way is split at the missing node 9; footways are not drawn.
        assert_eq!(
            roads,
            [
                (RoadClass::Major, Some("US 51"), 2),
                (RoadClass::Minor, Some("Main St"), 2)
            ]
        );
        assert_eq!(map.roads[0].line[1], (-88.1, 40.0));
        let places: Vec<_> = map
            .places
            .iter()
            .map(|p| (p.name.as_str(), p.kind))
            .collect();
        assert_eq!(
            places,
            [("Oak & Elm", PlaceKind::Village), ("Post", PlaceKind::Poi)]
        );
    }

    #[test]
    fn geojson_reads_lines_and_points() {
        let text = r#"{"type":"FeatureCollection","features":[
          {"type":"Feature","properties":{"highway":"secondary","name":"Mill Rd"},
           "geometry":{"type":"MultiLineString","coordinates":[[[0,0],[1,1]],[[2,2]]]}},
          {"type":"Feature","properties":{},
           "geometry":{"type":"LineString","coordinates":[[0,0],[1,0]]}},
          {"type":"Feature","properties":{"place":"town","name":"Ashford"},
           "geometry":{"type":"Point","coordinates":[-88.9,40.1]}}]}"#;
        let map = geojson(text.as_bytes()).unwrap();
        assert_eq!(map.roads.len(), 2);
        assert_eq!(map.roads[0].class, RoadClass::Secondary);
        assert_eq!(map.roads[1].class, RoadClass::Minor);
        assert_eq!(map.places[0].name, "Ashford");
        assert_eq!(map.places[0].kind, PlaceKind::Town);
    }

    #[test]
    fn the_fixture_has_roads_and_places() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/roads.osm");
        let map = Basemap::load(&path).unwrap();
        assert!(
            map.roads
                .iter()
                .any(|r| r.class == RoadClass::Major && r.name.as_deref() == Some("US 51"))
        );
        let towns: Vec<&str> = map
            .places
            .iter()
            .filter(|p| p.kind == PlaceKind::Town)
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(towns, ["Ashford"]);
        assert_eq!(map.places.len(), 6, "the town and five villages");
    }
}
