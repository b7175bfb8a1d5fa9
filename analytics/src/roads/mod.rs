//! Road networks: loading OSM XML, OSM PBF or GeoJSON into a routable graph.
//!
//! [`RoadNetwork::load`] reads a file, keeps drivable roads, assigns every directed edge a
//! length (haversine) and a travel time (length / speed), and keeps only the largest strongly
//! connected component so that every node can reach every other node. What was read, kept and
//! dropped is reported in a [`LoadReport`].
//!
//! Routing runs Dijkstra on travel time over compressed sparse row (CSR) arrays:
//! - [`RoadNetwork::shortest_path`]: one origin to one destination, as a [`Route`] that can be
//!   sampled along its length ([`Route::position_at`]).
//! - [`RoadNetwork::multi_source`]: *forward* search, the time **from** the nearest source (a
//!   station or a unit) **to** every node. This is a response time.
//! - [`RoadNetwork::multi_target`]: *reverse* search, the time **from** every node **to** the
//!   nearest target. This is a "how fast can I get back" time.
//!
//! On a network with one-way streets the two differ.
//!
//! # Layout
//! - `osm`: streaming OSM XML 0.6 reader.
//! - `pbf`: OSM PBF reader (the same tag rules as `osm`).
//! - `geojson`: GeoJSON `FeatureCollection` reader.
//! - `graph`: CSR build, strongly connected components, Dijkstra, nearest-node grid.

mod geojson;
mod graph;
mod osm;
mod pbf;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use graph::{Csr, NodeGrid, Search};
// The drivable classes and their default speeds are `model`'s, the list `[speeds_kmh]` is
// checked against when the jurisdiction loads.
use model::jurisdiction::{ROAD_SPEEDS_KMH, Settings};

/// Class used for GeoJSON features that carry neither `highway` nor `class`.
const UNTAGGED_CLASS: &str = "road";

/// An error while loading a road network.
#[derive(Debug, thiserror::Error)]
pub enum RoadsError {
    /// The file could not be opened or read.
    #[error("cannot read road network {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file extension is not `.osm`, `.osm.pbf`, `.geojson` or `.json`.
    #[error("{path}: unsupported road network format (expected .osm, .osm.pbf or .geojson)")]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
    },
    /// The OSM XML is malformed.
    #[error("malformed OSM XML near byte {position}")]
    Xml {
        /// Byte offset where the reader stopped.
        position: u64,
        /// The underlying error.
        #[source]
        source: quick_xml::Error,
    },
    /// An OSM element lacks a required attribute or has one that does not parse.
    #[error("OSM <{element}> has a missing or bad `{attribute}`: {value:?}")]
    BadAttribute {
        /// Element name, such as `node`.
        element: &'static str,
        /// Attribute name, such as `lat`.
        attribute: &'static str,
        /// The raw value (empty when missing).
        value: String,
    },
    /// The OSM PBF could not be decoded.
    #[error("malformed OSM PBF")]
    Pbf {
        /// The decoder's error.
        #[source]
        source: osmpbf::Error,
    },
    /// The GeoJSON is not valid JSON.
    #[error("invalid GeoJSON")]
    Json(#[from] serde_json::Error),
    /// The GeoJSON is valid JSON but not a usable `FeatureCollection`.
    #[error("GeoJSON feature {feature}: {reason}")]
    BadFeature {
        /// Index of the feature in `features` (0 for a problem with the collection itself).
        feature: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// More nodes or edges than fit in `u32` indices.
    #[error("road network too large for u32 node and edge indices")]
    TooLarge,
    /// No drivable road segment was found (or none in a cycle).
    #[error("no drivable roads in the input")]
    NoRoads,
}

/// An error in a [`SpeedTable`] override.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpeedTableError {
    /// The class is not one of the drivable `highway` classes.
    #[error("unknown road class {class:?}")]
    UnknownClass {
        /// The class as given.
        class: String,
    },
    /// A speed or factor is not finite and positive.
    #[error("speed for {class:?} must be finite and positive, got {value}")]
    BadSpeed {
        /// The class (or `"factor"`).
        class: String,
        /// The value as given.
        value: f64,
    },
}

/// Travel speed per drivable road class, plus a factor applied to every speed.
///
/// Speeds start from the documented defaults (motorway 100 km/h down to living_street
/// 10 km/h; see [`SpeedTable::defaults`]). A `maxspeed` tag on a way replaces its class speed;
/// the factor then scales both, e.g. 1.3 for driving under lights and sirens.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeedTable {
    kmh: [f64; ROAD_SPEEDS_KMH.len()],
    factor: f64,
}

impl SpeedTable {
    /// The default speeds (km/h): motorway 100, trunk 80, primary 60, secondary 50,
    /// tertiary 40, unclassified 40, residential 30, service 20, living_street 10, road 30,
    /// motorway_link 60, trunk_link 50, primary_link 40, secondary_link 40, tertiary_link 30.
    /// The factor is 1.
    ///
    /// # Example
    /// ```
    /// let speeds = analytics::roads::SpeedTable::defaults();
    /// assert_eq!(speeds.kmh("residential"), Some(30.0));
    /// assert_eq!(speeds.kmh("footway"), None);
    /// ```
    #[must_use]
    pub fn defaults() -> Self {
        Self {
            kmh: ROAD_SPEEDS_KMH.map(|(_, v)| v),
            factor: 1.0,
        }
    }

    /// The defaults with some classes overridden, e.g. from a jurisdiction's `[speeds_kmh]`
    /// table.
    ///
    /// # Errors
    /// [`SpeedTableError::UnknownClass`] for a class that is not drivable, and
    /// [`SpeedTableError::BadSpeed`] for a speed that is not finite and positive.
    ///
    /// # Example
    /// ```
    /// use analytics::roads::SpeedTable;
    /// let speeds = SpeedTable::new([("residential", 25.0)])?;
    /// assert_eq!(speeds.kmh("residential"), Some(25.0));
    /// assert!(SpeedTable::new([("footway", 5.0)]).is_err());
    /// # Ok::<(), analytics::roads::SpeedTableError>(())
    /// ```
    pub fn new<'a>(
        overrides: impl IntoIterator<Item = (&'a str, f64)>,
    ) -> Result<Self, SpeedTableError> {
        let mut table = Self::defaults();
        for (class, kmh) in overrides {
            let slot = class_index(class).ok_or_else(|| SpeedTableError::UnknownClass {
                class: class.to_owned(),
            })?;
            table.kmh[slot] = check_positive(class, kmh)?;
        }
        Ok(table)
    }

    /// The defaults overridden by a jurisdiction's `[speeds_kmh]`.
    ///
    /// # Errors
    /// As [`SpeedTable::new`]; settings that `model::jurisdiction::Jurisdiction::load`
    /// accepted never fail.
    pub fn for_settings(settings: &Settings) -> Result<Self, SpeedTableError> {
        Self::new(settings.speeds_kmh.iter().map(|(k, v)| (k.as_str(), *v)))
    }

    /// This table with every speed (class and `maxspeed`) multiplied by `factor`.
    ///
    /// # Errors
    /// [`SpeedTableError::BadSpeed`] if `factor` is not finite and positive.
    pub fn with_factor(mut self, factor: f64) -> Result<Self, SpeedTableError> {
        self.factor = check_positive("factor", factor)?;
        Ok(self)
    }

    /// The table speed (before the factor) for a class, or `None` if it is not drivable.
    #[must_use]
    pub fn kmh(&self, class: &str) -> Option<f64> {
        class_index(class).map(|i| self.kmh[i])
    }

    /// The effective speed of a way in km/h: `maxspeed` if given, else the class speed, times
    /// the factor. `None` if the class is not drivable.
    fn way_kmh(&self, class: &str, maxspeed_kmh: Option<f64>) -> Option<f64> {
        let base = self.kmh(class)?;
        Some(maxspeed_kmh.unwrap_or(base) * self.factor)
    }
}

fn class_index(class: &str) -> Option<usize> {
    ROAD_SPEEDS_KMH.iter().position(|(c, _)| *c == class)
}

fn check_positive(class: &str, value: f64) -> Result<f64, SpeedTableError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(SpeedTableError::BadSpeed {
            class: class.to_owned(),
            value,
        })
    }
}

/// Parses an OSM `maxspeed` value to km/h: `"50"`, `"50 km/h"`, `"50kmh"`, `"50 kph"`,
/// `"30 mph"`. Anything else (`"none"`, `"signals"`, `"RU:urban"`, `"50;30"`, zero) is `None`.
fn parse_maxspeed(raw: &str) -> Option<f64> {
    let raw = raw.trim();
    let split = raw
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let value: f64 = number.parse().ok()?;
    let kmh = match unit.trim() {
        "" | "km/h" | "kmh" | "kph" => value,
        "mph" => value * 1.609_344,
        _ => return None,
    };
    (kmh.is_finite() && kmh > 0.0).then_some(kmh)
}

/// Which way traffic may use a way, relative to its node order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Both,
    Forward,
    Backward,
}

impl Direction {
    /// Reads an OSM-style `oneway` value. `yes|true|1` is forward, `-1` backward,
    /// `no|false|0` both; anything else (`reversible`, `alternating`, absent) falls back to
    /// `implied`.
    fn from_oneway(value: Option<&str>, implied: Self) -> Self {
        match value.map(str::trim) {
            Some("yes" | "true" | "1") => Self::Forward,
            Some("-1") => Self::Backward,
            Some("no" | "false" | "0") => Self::Both,
            _ => implied,
        }
    }

    /// Motorways, motorway links and roundabouts are one-way unless tagged otherwise.
    fn implied(class: &str, junction: Option<&str>) -> Self {
        if matches!(class, "motorway" | "motorway_link") || junction == Some("roundabout") {
            Self::Forward
        } else {
            Self::Both
        }
    }
}

/// A drivable way before graph construction: raw node indices into the reader's coordinate
/// list, its speed and direction.
#[derive(Debug)]
struct RawWay {
    nodes: Vec<u32>,
    kmh: f64,
    direction: Direction,
}

/// What a reader produced: every coordinate it saw, the drivable ways over them, and counts.
#[derive(Debug, Default)]
struct RawNetwork {
    coords: Vec<(f64, f64)>,
    ways: Vec<RawWay>,
    ways_read: usize,
    ways_kept: usize,
    ways_by_class: BTreeMap<String, usize>,
    bad_maxspeed: usize,
}

/// What loading read, kept and dropped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadReport {
    /// OSM `<way>` elements, or GeoJSON features, read.
    pub ways_read: usize,
    /// Ways with a drivable class (before pruning to the largest component).
    pub ways_kept: usize,
    /// Kept ways by class.
    pub ways_by_class: BTreeMap<String, usize>,
    /// Nodes in the final graph.
    pub nodes: usize,
    /// Directed edges in the final graph.
    pub edges: usize,
    /// Nodes of drivable ways that lie outside the largest strongly connected component.
    pub dropped_nodes: usize,
    /// Strongly connected components before pruning (1 means nothing was dropped).
    pub components: usize,
    /// Kept ways whose `maxspeed` did not parse (their class speed was used).
    pub bad_maxspeed: usize,
}

/// Index of a node in a [`RoadNetwork`]. Valid only for the network that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u32);

impl NodeId {
    /// The node's index, in `0..network.node_count()`; also the index into
    /// [`RoadNetwork::multi_source`] results.
    #[must_use]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One directed road segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    /// Head of the edge.
    pub to: NodeId,
    /// Haversine length in metres.
    pub length_m: f64,
    /// Travel time in seconds (length / speed).
    pub time_s: f64,
}

/// The result of a multi-source search at one node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reach {
    /// Earliest time in seconds: the winning source's start time plus the travel time.
    pub time_s: f64,
    /// Road distance in metres along that fastest path.
    pub dist_m: f64,
    /// Index into the `sources` (or `targets`) slice of the one that won.
    pub source: usize,
}

/// An error in the arguments of a multi-source search.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum RouteError {
    /// The slice of sources was empty.
    #[error("no sources given")]
    NoSources,
    /// A source's node is not in this network.
    #[error("source {index} is not a node of this network")]
    UnknownNode {
        /// Index into the sources slice.
        index: usize,
    },
    /// The target node is not in this network.
    #[error("the target is not a node of this network")]
    UnknownTarget,
    /// A start time is negative or not finite.
    #[error("source {index} has start time {time_s}, expected a finite value >= 0")]
    BadStartTime {
        /// Index into the sources slice.
        index: usize,
        /// The value given.
        time_s: f64,
    },
}

/// A path through the network with cumulative times and distances at each node.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    nodes: Vec<NodeId>,
    points: Vec<(f64, f64)>,
    cum_time_s: Vec<f64>,
    cum_dist_m: Vec<f64>,
}

impl Route {
    /// The nodes from origin to destination (one node if they are the same).
    #[must_use]
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    /// `(lat, lon)` of each node.
    #[must_use]
    pub fn points(&self) -> &[(f64, f64)] {
        &self.points
    }

    /// Travel time in seconds from the origin to each node; starts at 0.
    #[must_use]
    pub fn cum_time_s(&self) -> &[f64] {
        &self.cum_time_s
    }

    /// Road distance in metres from the origin to each node; starts at 0.
    #[must_use]
    pub fn cum_dist_m(&self) -> &[f64] {
        &self.cum_dist_m
    }

    /// Total road length in metres.
    #[must_use]
    pub fn length_m(&self) -> f64 {
        self.cum_dist_m.last().copied().unwrap_or(0.0)
    }

    /// Total travel time in seconds.
    #[must_use]
    pub fn time_s(&self) -> f64 {
        self.cum_time_s.last().copied().unwrap_or(0.0)
    }

    /// Where a vehicle that left the origin `t_s` seconds ago is: `(lat, lon, heading)`,
    /// heading in degrees clockwise from north in `[0, 360)`. Within a segment the position
    /// moves linearly in lat/lon at constant speed. `t_s` is clamped to `[0, time_s]`; a
    /// single-node route stands still with heading 0.
    #[must_use]
    pub fn position_at(&self, t_s: f64) -> (f64, f64, f64) {
        let t = t_s.clamp(0.0, self.time_s());
        // First node whose cumulative time is >= t; the segment ends there.
        let end = self
            .cum_time_s
            .partition_point(|&c| c < t)
            .clamp(1, self.points.len().max(1));
        let Some(&(lat1, lon1)) = self.points.get(end) else {
            let (lat, lon) = self.points.last().copied().unwrap_or((f64::NAN, f64::NAN));
            return (lat, lon, 0.0);
        };
        let start = end - 1;
        let (lat0, lon0) = self.points[start];
        let span = self.cum_time_s[end] - self.cum_time_s[start];
        let f = if span > 0.0 {
            (t - self.cum_time_s[start]) / span
        } else {
            1.0
        };
        let heading = bearing_deg(lat0, lon0, lat1, lon1);
        (lat0 + (lat1 - lat0) * f, lon0 + (lon1 - lon0) * f, heading)
    }
}

/// A routable road graph: the largest strongly connected component of the drivable roads.
#[derive(Debug, Clone)]
pub struct RoadNetwork {
    coords: Vec<(f64, f64)>,
    forward: Csr,
    /// The same edges reversed, for searches towards targets.
    reverse: Csr,
    grid: NodeGrid,
    report: LoadReport,
}

impl RoadNetwork {
    /// Loads `.osm` (OSM XML 0.6), `.osm.pbf` (OSM PBF) or `.geojson`/`.json` by extension.
    ///
    /// # Errors
    /// [`RoadsError::UnsupportedFormat`] for other extensions,
    /// [`RoadsError::Io`] if the file cannot be read, a parse error, or
    /// [`RoadsError::NoRoads`] if nothing drivable was found.
    pub fn load(path: &Path, speeds: &SpeedTable) -> Result<Self, RoadsError> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let io = |source| RoadsError::Io {
            path: path.to_owned(),
            source,
        };
        if name.ends_with(".osm.pbf") {
            let file = File::open(path).map_err(io)?;
            Self::from_pbf_reader(BufReader::new(file), speeds)
        } else if name.ends_with(".osm") {
            let file = File::open(path).map_err(io)?;
            Self::from_osm_reader(BufReader::new(file), speeds)
        } else if name.ends_with(".geojson") || name.ends_with(".json") {
            let text = std::fs::read_to_string(path).map_err(io)?;
            Self::from_geojson_str(&text, speeds)
        } else {
            Err(RoadsError::UnsupportedFormat {
                path: path.to_owned(),
            })
        }
    }

    /// Builds a network from OSM XML 0.6, streamed.
    ///
    /// Keeps ways whose `highway` is a drivable class of `speeds`; honours `oneway`
    /// (`yes|true|1|-1`; motorways, motorway links and roundabouts are one-way by default)
    /// and `maxspeed`.
    ///
    /// # Errors
    /// [`RoadsError::Xml`], [`RoadsError::BadAttribute`] or [`RoadsError::NoRoads`].
    ///
    /// # Example
    /// ```
    /// use analytics::roads::{RoadNetwork, SpeedTable};
    /// let xml = r#"<osm version="0.6">
    ///   <node id="1" lat="0" lon="0"/><node id="2" lat="0" lon="0.001"/>
    ///   <way id="9"><nd ref="1"/><nd ref="2"/><tag k="highway" v="residential"/></way>
    /// </osm>"#;
    /// let net = RoadNetwork::from_osm_reader(xml.as_bytes(), &SpeedTable::defaults())?;
    /// assert_eq!((net.node_count(), net.edge_count()), (2, 2));
    /// # Ok::<(), analytics::roads::RoadsError>(())
    /// ```
    pub fn from_osm_reader(
        reader: impl std::io::BufRead,
        speeds: &SpeedTable,
    ) -> Result<Self, RoadsError> {
        Self::build(osm::read(reader, speeds)?)
    }

    /// Builds a network from OSM PBF, read sequentially. The same tags are honoured as in
    /// [`RoadNetwork::from_osm_reader`]; relations are ignored.
    ///
    /// # Errors
    /// [`RoadsError::Pbf`] if the blocks do not decode, [`RoadsError::BadAttribute`] for a
    /// node out of range, or [`RoadsError::NoRoads`].
    pub fn from_pbf_reader(
        reader: impl std::io::Read + Send,
        speeds: &SpeedTable,
    ) -> Result<Self, RoadsError> {
        Self::build(pbf::read(reader, speeds)?)
    }

    /// Builds a network from a GeoJSON `FeatureCollection` of `LineString`s and
    /// `MultiLineString`s. Lines join where they share an exact coordinate (to 1e-7°).
    ///
    /// Optional properties: `highway` or `class` (a drivable class; features with another
    /// class are skipped, features with none count as `road`), `speed_kmh` (number) or
    /// `maxspeed` (number or OSM string), `oneway` (bool, number or OSM string).
    ///
    /// # Errors
    /// [`RoadsError::Json`], [`RoadsError::BadFeature`] or [`RoadsError::NoRoads`].
    pub fn from_geojson_str(text: &str, speeds: &SpeedTable) -> Result<Self, RoadsError> {
        Self::build(geojson::read(text, speeds)?)
    }

    fn build(raw: RawNetwork) -> Result<Self, RoadsError> {
        let built = graph::build(&raw.coords, &raw.ways)?;
        let grid = NodeGrid::new(&built.coords);
        let report = LoadReport {
            ways_read: raw.ways_read,
            ways_kept: raw.ways_kept,
            ways_by_class: raw.ways_by_class,
            nodes: built.coords.len(),
            edges: built.forward.edge_count(),
            dropped_nodes: built.dropped_nodes,
            components: built.components,
            bad_maxspeed: raw.bad_maxspeed,
        };
        Ok(Self {
            coords: built.coords,
            reverse: built.forward.reversed(),
            forward: built.forward,
            grid,
            report,
        })
    }

    /// What loading read, kept and dropped.
    #[must_use]
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// Number of nodes.
    #[must_use]
    pub fn node_count(&self) -> usize {
        self.coords.len()
    }

    /// Number of directed edges.
    #[must_use]
    pub fn edge_count(&self) -> usize {
        self.forward.edge_count()
    }

    /// All node ids, in index order.
    pub fn nodes(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.coords.len()).map(|i| NodeId(i as u32))
    }

    /// The node with this index, if it exists.
    #[must_use]
    pub fn node(&self, index: usize) -> Option<NodeId> {
        (index < self.coords.len()).then_some(NodeId(index as u32))
    }

    /// `(lat, lon)` of a node, or `None` for a node of another network.
    #[must_use]
    pub fn coord(&self, node: NodeId) -> Option<(f64, f64)> {
        self.coords.get(node.index()).copied()
    }

    /// The edges leaving a node (empty for a node of another network).
    pub fn edges(&self, node: NodeId) -> impl Iterator<Item = Edge> + '_ {
        self.forward
            .edges(node.0)
            .map(|(to, length_m, time_s)| Edge {
                to: NodeId(to),
                length_m,
                time_s,
            })
    }

    /// The nearest node to a point and its haversine distance in metres; `None` only if the
    /// coordinates are not finite.
    #[must_use]
    pub fn nearest_node(&self, lat: f64, lon: f64) -> Option<(NodeId, f64)> {
        if !(lat.is_finite() && lon.is_finite()) {
            return None;
        }
        self.grid
            .nearest(&self.coords, lat, lon)
            .map(|(i, d)| (NodeId(i), d))
    }

    /// The fastest route from `from` to `to`, or `None` if either node is not in this network.
    /// (Within one network every node reaches every other.)
    #[must_use]
    pub fn shortest_path(&self, from: NodeId, to: NodeId) -> Option<Route> {
        if from.index() >= self.coords.len() || to.index() >= self.coords.len() {
            return None;
        }
        let mut search = Search::new(self.coords.len());
        search.run(&self.forward, &[(from.0, 0.0)], Some(to.0));
        let mut nodes = vec![to];
        let mut at = to.0;
        while at != from.0 {
            at = search.pred(at)?;
            nodes.push(NodeId(at));
        }
        nodes.reverse();
        let points = nodes.iter().map(|n| self.coords[n.index()]).collect();
        let cum_time_s = nodes.iter().map(|n| search.time(n.0)).collect();
        let cum_dist_m = nodes.iter().map(|n| search.dist(n.0)).collect();
        Some(Route {
            nodes,
            points,
            cum_time_s,
            cum_dist_m,
        })
    }

    /// Forward multi-source search: for every node, the earliest time a vehicle starting at one
    /// of `sources` (node, start time in seconds) reaches it, the road distance it drove and
    /// which source that was. Indexed by [`NodeId::index`]; every node is reached.
    ///
    /// # Errors
    /// [`RouteError`] if `sources` is empty, names a node of another network, or has a start
    /// time that is negative or not finite.
    pub fn multi_source(&self, sources: &[(NodeId, f64)]) -> Result<Vec<Reach>, RouteError> {
        self.search_all(&self.forward, sources)
    }

    /// Reverse multi-source search: for every node, the least time to drive from it to one of
    /// `targets` (node, extra seconds added at that target), the road distance of that drive
    /// and which target it was. Runs on the reversed graph. Indexed by [`NodeId::index`].
    ///
    /// # Errors
    /// As [`RoadNetwork::multi_source`].
    pub fn multi_target(&self, targets: &[(NodeId, f64)]) -> Result<Vec<Reach>, RouteError> {
        self.search_all(&self.reverse, targets)
    }

    /// Forward multi-source search towards one node: the earliest arrival at `target` from
    /// any of `sources`, as [`RoadNetwork::multi_source`] would give it at that node. The
    /// search stops as soon as `target` is settled, so it costs about as much as the region
    /// closer (in time) to the sources than the target.
    ///
    /// # Errors
    /// As [`RoadNetwork::multi_source`], and [`RouteError::UnknownTarget`].
    pub fn multi_source_to(
        &self,
        sources: &[(NodeId, f64)],
        target: NodeId,
    ) -> Result<Reach, RouteError> {
        if target.index() >= self.coords.len() {
            return Err(RouteError::UnknownTarget);
        }
        let starts = self.starts(sources)?;
        let mut search = Search::new(self.coords.len());
        search.run(&self.forward, &starts, Some(target.0));
        Ok(Reach {
            time_s: search.time(target.0),
            dist_m: search.dist(target.0),
            source: search.origin(target.0) as usize,
        })
    }

    fn search_all(&self, csr: &Csr, sources: &[(NodeId, f64)]) -> Result<Vec<Reach>, RouteError> {
        let starts = self.starts(sources)?;
        let mut search = Search::new(self.coords.len());
        search.run(csr, &starts, None);
        Ok((0..self.coords.len() as u32)
            .map(|v| Reach {
                time_s: search.time(v),
                dist_m: search.dist(v),
                source: search.origin(v) as usize,
            })
            .collect())
    }

    /// Checks sources and converts them to raw start pairs.
    fn starts(&self, sources: &[(NodeId, f64)]) -> Result<Vec<(u32, f64)>, RouteError> {
        if sources.is_empty() {
            return Err(RouteError::NoSources);
        }
        let mut starts = Vec::with_capacity(sources.len());
        for (index, &(node, time_s)) in sources.iter().enumerate() {
            if node.index() >= self.coords.len() {
                return Err(RouteError::UnknownNode { index });
            }
            if !(time_s.is_finite() && time_s >= 0.0) {
                return Err(RouteError::BadStartTime { index, time_s });
            }
            starts.push((node.0, time_s));
        }
        Ok(starts)
    }
}

/// Initial great-circle bearing in degrees clockwise from north, in `[0, 360)`.
fn bearing_deg(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dl = (lon2 - lon1).to_radians();
    let y = dl.sin() * p2.cos();
    let x = p1.cos() * p2.sin() - p1.sin() * p2.cos() * dl.cos();
    let deg = y.atan2(x).to_degrees().rem_euclid(360.0);
    // rem_euclid of a tiny negative angle rounds up to exactly 360.
    if deg >= 360.0 { 0.0 } else { deg }
}
