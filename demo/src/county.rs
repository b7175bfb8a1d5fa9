//! The demo jurisdiction "Ashford County": a fictional, deterministic rural Midwest county
//! (about 60 km x 50 km around lat 40.10, lon -88.90) written as the files a jurisdiction
//! is described by: settings, stations, beats, zones, checkpoints, roads, fleet, roster and
//! a year of incidents.
//!
//! Geometry is laid out in a local kilometre frame (x east, y north, origin at the county
//! centre) and converted to WGS-84 in exactly one function, `lonlat`. Shapes are fixed;
//! the seed only moves road curves, checkpoint radii, crews, roster levels and incidents.
//! Nothing iterates a hash map, so the same seed always writes the same bytes.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Weekday};
use chrono_tz::{America::Chicago, Tz};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What [`write_county`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct CountySummary {
    /// File names written, relative to the output directory, in write order.
    pub files: Vec<String>,
    /// Nodes in `roads.osm`.
    pub road_nodes: usize,
    /// Ways in `roads.osm`.
    pub road_ways: usize,
    /// Rows of `units.csv`.
    pub units: usize,
    /// Rows of `roster.csv`.
    pub roster_rows: usize,
    /// Rows of `incidents.csv`.
    pub incidents: usize,
    /// Share of the county's 1 km grid points where no station meets the response rule.
    pub uncovered_share: f64,
}

/// Writes the Ashford County fixture files into `out` (created if missing).
///
/// The same `seed` always gives the same bytes; the committed `fixtures/` folder is
/// `write_county(.., 7)`.
///
/// # Errors
/// Fails when the directory cannot be created or a file cannot be written.
///
/// # Example
/// ```no_run
/// let summary = demo::county::write_county(std::path::Path::new("fixtures"), 7)?;
/// assert_eq!(summary.files.len(), 11);
/// # Ok::<(), anyhow::Error>(())
/// ```
pub fn write_county(out: &Path, seed: u64) -> Result<CountySummary> {
    let county = County::generate(seed);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let files = county.render();
    for (name, text) in &files {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(CountySummary {
        files: files.iter().map(|(name, _)| (*name).to_owned()).collect(),
        road_nodes: county.roads.nodes.len(),
        road_ways: county.roads.ways.len(),
        units: county.units.len(),
        roster_rows: county.roster.len(),
        incidents: county.incidents.len(),
        uncovered_share: county.coverage.uncovered_share(),
    })
}

// ---------------------------------------------------------------------------------------
// Frame and fixed layout
// ---------------------------------------------------------------------------------------

const CENTER_LAT: f64 = 40.10;
const CENTER_LON: f64 = -88.90;
const KM_PER_DEG_LAT: f64 = 111.03;
const KM_PER_DEG_LON_EQUATOR: f64 = 111.32;
const TIMEZONE: &str = "America/Chicago";

/// Response rule: a point is covered when a station reaches it within both limits.
const MAX_MINUTES: f64 = 30.0;
const MAX_KM: f64 = 30.0;
/// Speed over the last stretch from the nearest road node to the point.
const OFFROAD_KMH: f64 = 15.0;

/// Speed per OSM highway class when a way has no usable `maxspeed`.
const SPEEDS_KMH: [(&str, f64); 15] = [
    ("motorway", 110.0),
    ("trunk", 90.0),
    ("primary", 80.0),
    ("secondary", 70.0),
    ("tertiary", 60.0),
    ("unclassified", 50.0),
    ("residential", 40.0),
    ("service", 20.0),
    ("living_street", 10.0),
    ("motorway_link", 60.0),
    ("trunk_link", 50.0),
    ("primary_link", 50.0),
    ("secondary_link", 40.0),
    ("tertiary_link", 30.0),
    ("road", 40.0),
];

/// Patrol windows in local time (name, start, end); night crosses midnight.
const WINDOWS: [(&str, &str, &str); 4] = [
    ("day", "08:30", "11:20"),
    ("afternoon", "13:00", "17:30"),
    ("evening", "20:00", "22:30"),
    ("night", "23:00", "05:00"),
];

/// Share of a station's force out per patrol level (level 3 is normal).
const LEVEL_SHARES: [f64; 3] = [0.6667, 0.5, 0.3333];

/// A point of the local frame, in kilometres east and north of the county centre.
#[derive(Debug, Clone, Copy, PartialEq)]
struct P {
    x: f64,
    y: f64,
}

const fn p(x: f64, y: f64) -> P {
    P { x, y }
}

impl P {
    fn dist(self, o: P) -> f64 {
        (self.x - o.x).hypot(self.y - o.y)
    }
    /// Metre key used to merge nodes that are the same place.
    fn key(self) -> (i64, i64) {
        (
            (self.x * 1000.0).round() as i64,
            (self.y * 1000.0).round() as i64,
        )
    }
}

/// The one conversion from the local frame to WGS-84 (lon, lat).
fn lonlat(q: P) -> (f64, f64) {
    let km_per_deg_lon = KM_PER_DEG_LON_EQUATOR * CENTER_LAT.to_radians().cos();
    (
        CENTER_LON + q.x / km_per_deg_lon,
        CENTER_LAT + q.y / KM_PER_DEG_LAT,
    )
}

fn coord(q: P) -> String {
    let (lon, lat) = lonlat(q);
    format!("[{lon:.6},{lat:.6}]")
}

/// County outline, counter-clockwise. The east line follows a meandering creek.
const COUNTY: [P; 13] = [
    p(-30.0, -25.0),
    p(-12.0, -25.0),
    p(12.0, -25.0),
    p(30.0, -25.0),
    p(31.2, -19.0),
    p(29.4, -12.0),
    p(30.6, -5.0),
    p(30.0, 0.0),
    p(31.0, 6.0),
    p(29.5, 12.0),
    p(30.8, 18.0),
    p(30.0, 25.0),
    p(-30.0, 25.0),
];

/// x of the county's east line at latitude `y` (linear between creek vertices).
fn east_line_x(y: f64) -> f64 {
    let creek = &COUNTY[3..12];
    for w in creek.windows(2) {
        if (w[0].y..=w[1].y).contains(&y) {
            return w[0].x + (w[1].x - w[0].x) * (y - w[0].y) / (w[1].y - w[0].y);
        }
    }
    30.0
}

fn in_county(q: P) -> bool {
    q.x >= -30.0 && q.y >= -25.0 && q.y <= 25.0 && q.x <= east_line_x(q.y)
}

struct Station {
    id: &'static str,
    name: &'static str,
    kind: &'static str,
    at: P,
}

/// Stations sit on road nodes: the county town's grid and the villages' grids.
const STATIONS: [Station; 4] = [
    Station {
        id: "ST1",
        name: "Ashford Police Department",
        kind: "central",
        at: p(-0.6, -0.6),
    },
    Station {
        id: "ST2",
        name: "Millbrook Substation",
        kind: "rural",
        at: p(-20.75, 0.0),
    },
    Station {
        id: "ST3",
        name: "Carver Substation",
        kind: "rural",
        at: p(14.0, -11.75),
    },
    Station {
        id: "ST4",
        name: "Pike Grove Substation",
        kind: "rural",
        at: p(20.75, 18.0),
    },
];

/// Villages: a small street grid centred on a rural crossroads.
const VILLAGES: [(&str, P); 5] = [
    ("Millbrook", p(-21.0, 0.0)),
    ("Carver", p(14.0, -12.0)),
    ("Pike Grove", p(21.0, 18.0)),
    ("Harlan", p(-7.0, 18.0)),
    ("Dunmore", p(7.0, -18.0)),
];

/// The named places of `roads.osm` (name, OSM `place` value, centre): the county town and
/// the villages.
fn places() -> impl Iterator<Item = (&'static str, &'static str, P)> {
    std::iter::once(("Ashford", "town", p(0.0, 0.0)))
        .chain(VILLAGES.iter().map(|&(name, at)| (name, "village", at)))
}

/// Town grid: 300 m blocks, 19 x 17 streets, centred on Main St x Washington St.
const TOWN_STEP: f64 = 0.3;
const TOWN_HX: i32 = 9;
const TOWN_HY: i32 = 8;
/// Village grid: 250 m blocks, 5 x 5 streets.
const VILLAGE_STEP: f64 = 0.25;
const VILLAGE_H: i32 = 2;

/// Rural crossroads lattice, in hectometres (100 m): section roads every 3.5 km east-west
/// and 3 km north-south.
fn lattice_x() -> Vec<i32> {
    (-8..=8).map(|i| i * 35).collect()
}

fn lattice_y() -> Vec<i32> {
    (-8..=8).map(|i| i * 30).collect()
}

/// Hectometres to kilometres.
fn hm(v: i32) -> f64 {
    f64::from(v) / 10.0
}

/// The motorway's centre line y (km) at x.
fn motorway_y(x: f64) -> f64 {
    -16.5 + 0.6 * (std::f64::consts::TAU * x / 40.0).sin()
}

/// Slow pocket in the south-west: gravel roads only.
fn in_gravel_pocket(a: (i32, i32), b: (i32, i32)) -> bool {
    a.0 <= -210 && b.0 <= -210 && a.1 <= -180 && b.1 <= -180
}

struct Hotspot {
    name: &'static str,
    at: P,
    sigma_km: f64,
    count: usize,
    profile: Profile,
    categories: &'static [(&'static str, u32)],
}

const HOTSPOTS: [Hotspot; 4] = [
    Hotspot {
        name: "Tap Row (bars on Main St)",
        at: p(0.75, 0.0),
        sigma_km: 0.12,
        count: 1150,
        profile: Profile::Night,
        categories: &[
            ("assault", 30),
            ("disturbance", 35),
            ("drugs", 15),
            ("vandalism", 10),
            ("theft", 10),
        ],
    },
    Hotspot {
        name: "Ashford Depot (railway station)",
        at: p(-1.2, -0.9),
        sigma_km: 0.1,
        count: 700,
        profile: Profile::General,
        categories: &[
            ("theft", 35),
            ("drugs", 25),
            ("disturbance", 20),
            ("assault", 10),
            ("vandalism", 10),
        ],
    },
    Hotspot {
        name: "Ashford Commons (shopping centre)",
        at: p(2.1, -1.8),
        sigma_km: 0.1,
        count: 800,
        profile: Profile::Day,
        categories: &[
            ("theft", 55),
            ("vandalism", 15),
            ("disturbance", 15),
            ("traffic", 15),
        ],
    },
    Hotspot {
        name: "Millbrook village centre",
        at: p(-21.0, 0.0),
        sigma_km: 0.15,
        count: 400,
        profile: Profile::Night,
        categories: &[
            ("disturbance", 30),
            ("vandalism", 25),
            ("burglary", 20),
            ("drugs", 15),
            ("theft", 10),
        ],
    },
];
const TOWN_INCIDENTS: usize = 1500;
const RURAL_INCIDENTS: usize = 1450;
const TOWN_CATEGORIES: &[(&str, u32)] = &[
    ("burglary", 25),
    ("theft", 25),
    ("vandalism", 20),
    ("traffic", 15),
    ("disturbance", 15),
];
const RURAL_CATEGORIES: &[(&str, u32)] = &[
    ("traffic", 40),
    ("burglary", 30),
    ("theft", 15),
    ("vandalism", 15),
];

struct ZoneDef {
    id: &'static str,
    name: &'static str,
    station: &'static str,
    /// Bounding box (x0, y0, x1, y1) in km; the polygon is the box with cut corners.
    bbox: (f64, f64, f64, f64),
}

const ZONES: [ZoneDef; 6] = [
    ZoneDef {
        id: "Z1",
        name: "Main Street",
        station: "ST1",
        bbox: (-0.15, -0.3, 1.35, 0.3),
    },
    ZoneDef {
        id: "Z2",
        name: "Depot",
        station: "ST1",
        bbox: (-1.8, -1.5, -0.45, -0.45),
    },
    ZoneDef {
        id: "Z3",
        name: "Ashford Commons",
        station: "ST1",
        bbox: (1.5, -2.55, 2.85, -1.2),
    },
    ZoneDef {
        id: "Z4",
        name: "North Side",
        station: "ST1",
        bbox: (-2.4, 0.9, 0.6, 2.25),
    },
    ZoneDef {
        id: "Z5",
        name: "Millbrook",
        station: "ST2",
        bbox: (-21.8, -0.8, -20.2, 0.8),
    },
    ZoneDef {
        id: "Z6",
        name: "Carver",
        station: "ST3",
        bbox: (13.2, -12.8, 14.8, -11.2),
    },
];

/// Patrol checkpoints (visited nightly) and entry points, snapped to the nearest road node.
const CHECKPOINTS: [(&str, &str, &str, P); 17] = [
    ("CP01", "Main & Washington", "patrol", p(0.0, 0.0)),
    ("CP02", "Tap Row", "patrol", p(0.9, 0.0)),
    ("CP03", "Ashford Depot", "patrol", p(-1.2, -0.9)),
    ("CP04", "Ashford Commons", "patrol", p(2.25, -1.65)),
    ("CP05", "Lincoln Park", "patrol", p(-1.2, 1.5)),
    ("CP06", "Water Tower", "patrol", p(-2.7, -2.4)),
    ("CP07", "Ashford High School", "patrol", p(1.8, 1.2)),
    ("CP08", "Millbrook Grain Elevator", "patrol", p(-21.0, 0.25)),
    ("CP09", "Carver Square", "patrol", p(14.0, -12.0)),
    ("CP10", "Pike Grove Church", "patrol", p(21.25, 18.0)),
    ("CP11", "Harlan Co-op", "patrol", p(-7.0, 18.0)),
    ("CP12", "Dunmore Bridge", "patrol", p(7.0, -18.25)),
    ("CP13", "I-72 Park and Ride", "patrol", p(0.0, -14.0)),
    ("EX01", "US 51 north county line", "entry", p(0.0, 24.95)),
    ("EX02", "US 51 south county line", "entry", p(0.0, -24.95)),
    ("EX03", "IL 10 west county line", "entry", p(-29.95, 0.0)),
    ("EX04", "IL 10 east county line", "entry", p(29.9, 0.0)),
];
const PATROL_WINDOW: &str = "23:00-05:00";

/// Fleet per station: (station, kind, id prefix, first number, count).
const FLEET: [(&str, &str, char, u32, u32); 10] = [
    ("ST1", "car", 'C', 1, 10),
    ("ST1", "bike", 'B', 1, 8),
    ("ST1", "ebike", 'E', 1, 4),
    ("ST1", "foot", 'F', 1, 8),
    ("ST2", "car", 'C', 11, 3),
    ("ST2", "ebike", 'E', 5, 2),
    ("ST3", "car", 'C', 14, 3),
    ("ST3", "foot", 'F', 9, 2),
    ("ST4", "car", 'C', 17, 2),
    ("ST4", "bike", 'B', 9, 2),
];
/// Patrols that deliberately break the "group of at least two" rule.
const SOLO_PATROLS: [&str; 3] = ["B07", "F08", "E06"];

const ROSTER_START: (i32, u32, u32) = (2026, 11, 2);
const ROSTER_DAYS: i64 = 28;
const INCIDENTS_FIRST: (i32, u32, u32) = (2025, 11, 23);
const INCIDENT_DAYS: i64 = 365;

// ---------------------------------------------------------------------------------------
// The generated county
// ---------------------------------------------------------------------------------------

struct County {
    seed: u64,
    beats: Vec<Area>,
    county_ring: Vec<P>,
    roads: Roads,
    checkpoints: Vec<CheckpointRow>,
    units: Vec<UnitRow>,
    roster: Vec<RosterRow>,
    incidents: Vec<Incident>,
    coverage: Coverage,
}

impl County {
    fn generate(seed: u64) -> County {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (beats, county_ring) = beats();
        let roads = roads(&mut rng);
        let graph = Graph::new(&roads);
        let from_station: Vec<Vec<Reach>> = STATIONS
            .iter()
            .map(|s| graph.dijkstra(roads.nearest(s.at).0))
            .collect();
        let coverage = Coverage::compute(&roads, &from_station);
        let checkpoints = checkpoints(&roads, &mut rng);
        let units = units(&mut rng);
        let roster = roster(&units, &mut rng);
        let incidents = incidents(&roads, &from_station, &units, &mut rng);
        County {
            seed,
            beats,
            county_ring,
            roads,
            checkpoints,
            units,
            roster,
            incidents,
            coverage,
        }
    }

    fn render(&self) -> Vec<(&'static str, String)> {
        vec![
            ("jurisdiction.toml", jurisdiction_toml()),
            ("county.geojson", county_geojson(&self.county_ring)),
            ("stations.geojson", stations_geojson()),
            ("beats.geojson", beats_geojson(&self.beats)),
            ("zones.geojson", zones_geojson()),
            (
                "checkpoints.geojson",
                checkpoints_geojson(&self.checkpoints),
            ),
            ("roads.osm", self.roads.to_osm()),
            ("units.csv", units_csv(&self.units)),
            ("roster.csv", roster_csv(&self.roster)),
            ("incidents.csv", incidents_csv(&self.incidents)),
            ("README.md", self.readme()),
        ]
    }
}

// ---------------------------------------------------------------------------------------
// jurisdiction.toml
// ---------------------------------------------------------------------------------------

fn jurisdiction_toml() -> String {
    let mut s = String::from(
        "# Ashford County: a fictional demo jurisdiction (see README.md).\n\
         name = \"Ashford County\"\n\
         # IANA zone: windows, roster times and local dates are in this zone.\n",
    );
    let _ = writeln!(s, "timezone = \"{TIMEZONE}\"");
    s.push_str(
        "# Catalog version: bump when beats, zones or checkpoints change.\n\
         version = 1\n\
         \n\
         # H3 resolutions: stored cell per fix, geofence prefilter, analytics grid.\n\
         [h3]\n\
         store_res = 11\n\
         fence_res = 9\n\
         analysis_res = 9\n\
         \n\
         # Response rule: a place is covered when a station reaches it within both limits;\n\
         # the stretch from the nearest road to the place is driven at offroad_kmh.\n\
         [response]\n",
    );
    let _ = writeln!(
        s,
        "max_minutes = {MAX_MINUTES:.0}\nmax_km = {MAX_KM:.0}\noffroad_kmh = {OFFROAD_KMH:.0}"
    );
    s.push_str(
        "\n\
         # Dosage: a gap between two fixes counts at most this long inside a cell or zone.\n\
         [dosage]\n\
         gap_cap_s = 120\n\
         \n\
         # Geofence hysteresis: a unit enters a fence after enter_fixes consecutive fixes\n\
         # inside it spanning at least dwell_s seconds.\n\
         [hysteresis]\n\
         enter_fixes = 3\n\
         dwell_s = 30\n\
         \n\
         # Validation of incoming fixes.\n\
         [validate]\n\
         # Fixes less accurate than this (metres) are flagged.\n\
         max_acc_m = 50\n\
         # Fixes timestamped further in the future than this are rejected.\n\
         future_tolerance_s = 300\n\
         # Fixes older than the unit's latest by more than this are flagged late.\n\
         reorder_window_s = 120\n\
         # Live enter/exit alerts wait this long for late fixes before going out\n\
         # (marked provisional); the stored events always wait the reorder window.\n\
         live_window_s = 0\n\
         # Larger MQTT payloads are rejected.\n\
         max_payload_bytes = 4096\n\
         \n\
         # Live status: no fix for offline_after_s means offline; no movement for\n\
         # idle_after_s means idle.\n\
         [status]\n\
         idle_after_s = 300\n\
         offline_after_s = 180\n\
         \n\
         # Speed (km/h) per OSM highway class, used when a way has no maxspeed tag.\n\
         [speeds_kmh]\n",
    );
    for (class, kmh) in SPEEDS_KMH {
        let _ = writeln!(s, "{class} = {kmh:.0}");
    }
    s.push_str("\n# Patrol windows, local time; a window whose end is before its start ends the next day.\n");
    for (name, start, end) in WINDOWS {
        let _ = writeln!(
            s,
            "[[windows]]\nname = \"{name}\"\nstart = \"{start}\"\nend = \"{end}\"\n"
        );
    }
    s.push_str("# Patrol levels: share of a station's force out on patrol (level 3 is normal).\n[levels]\n");
    for (i, share) in LEVEL_SHARES.iter().enumerate() {
        let _ = writeln!(s, "level{} = {share:.4}", i + 1);
    }
    s.push_str(
        "\n\
         # Hot spots: the statistics of `patrol analyze hotspots` and the forecasts that\n\
         # `patrol analyze backtest` scores and chooses between. Every key is optional.\n\
         [hotspots]\n\
         # Quartic kernel bandwidth of the `kde` method, H3 rings beyond the cell.\n\
         kde_rings = 1\n\
         # Gi* neighbourhood, rings; a hot spot needs at least gi_min_incidents in it.\n\
         gi_rings = 1\n\
         gi_min_incidents = 5\n\
         # Forecasts learn from this many local weeks; `recency` halves a weight every\n\
         # half_life_days; top_share of the study cells are flagged hot.\n\
         training_weeks = 4\n\
         half_life_days = 14\n\
         top_share = 0.05\n\
         # Used until a backtest has chosen: naive, recency, kde, kde-cv, recency-kde or gi.\n\
         method = \"kde-cv\"\n\
         # The gap list directs at most this share of a window's rostered patrol minutes.\n\
         directed_share = 0.25\n",
    );
    s
}

// ---------------------------------------------------------------------------------------
// Polygons: county, beats, zones
// ---------------------------------------------------------------------------------------

/// A polygon as rings, exterior first.
type Polygon = Vec<Vec<P>>;

/// A beat: one or more polygons.
struct Area {
    id: &'static str,
    name: &'static str,
    station: &'static str,
    polygons: Vec<Polygon>,
}

fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<P> {
    vec![p(x0, y0), p(x1, y0), p(x1, y1), p(x0, y1)]
}

fn signed_area(ring: &[P]) -> f64 {
    let n = ring.len();
    (0..n)
        .map(|i| {
            let (a, b) = (ring[i], ring[(i + 1) % n]);
            a.x * b.y - b.x * a.y
        })
        .sum::<f64>()
        / 2.0
}

/// Inserts into `ring` every vertex of `all` lying inside one of its edges, so that two
/// beats sharing an edge list exactly the same vertices along it.
fn conform(ring: &[P], all: &[P]) -> Vec<P> {
    let mut out = Vec::new();
    for i in 0..ring.len() {
        let (a, b) = (ring[i], ring[(i + 1) % ring.len()]);
        out.push(a);
        let (dx, dy) = (b.x - a.x, b.y - a.y);
        let len2 = dx * dx + dy * dy;
        let mut inner: Vec<(f64, P)> = all
            .iter()
            .filter_map(|&q| {
                let cross = dx * (q.y - a.y) - dy * (q.x - a.x);
                let t = (dx * (q.x - a.x) + dy * (q.y - a.y)) / len2;
                (cross.abs() < 1e-9 && t > 1e-9 && t < 1.0 - 1e-9).then_some((t, q))
            })
            .collect();
        inner.sort_by(|l, r| l.0.total_cmp(&r.0));
        inner.dedup_by(|l, r| l.1.dist(r.1) < 1e-9);
        out.extend(inner.into_iter().map(|(_, q)| q));
    }
    out
}

/// Orients a ring: exteriors counter-clockwise, holes clockwise (RFC 7946).
fn oriented(mut ring: Vec<P>, exterior: bool) -> Vec<P> {
    if (signed_area(&ring) > 0.0) != exterior {
        ring.reverse();
    }
    ring
}

/// The twelve beats tiling the county, and the county ring.
fn beats() -> (Vec<Area>, Vec<P>) {
    let downtown = rect(-0.8, -0.7, 0.8, 0.7);
    let town_notch_n = vec![
        p(-12.0, 0.0),
        p(-3.0, 0.0),
        p(-3.0, 2.5),
        p(3.0, 2.5),
        p(3.0, 0.0),
        p(12.0, 0.0),
    ];
    let mut north_prairie = town_notch_n;
    north_prairie.extend([p(12.0, 25.0), p(-12.0, 25.0)]);
    let south_prairie = vec![
        p(-12.0, -25.0),
        p(12.0, -25.0),
        p(12.0, 0.0),
        p(3.0, 0.0),
        p(3.0, -2.5),
        p(-3.0, -2.5),
        p(-3.0, 0.0),
        p(-12.0, 0.0),
    ];
    let mut carver = vec![p(12.0, -25.0)];
    carver.extend_from_slice(&COUNTY[3..8]);
    carver.push(p(12.0, 0.0));
    let mut east_central = vec![p(12.0, 0.0)];
    east_central.extend_from_slice(&COUNTY[7..10]);
    east_central.push(p(12.0, 12.0));
    let mut pike = vec![p(12.0, 12.0)];
    pike.extend_from_slice(&COUNTY[9..12]);
    pike.push(p(12.0, 25.0));

    let raw: Vec<(&str, &str, &str, Vec<Polygon>)> = vec![
        ("BT01", "Downtown", "ST1", vec![vec![downtown.clone()]]),
        (
            "BT02",
            "Central Ashford",
            "ST1",
            vec![vec![rect(-1.6, -1.4, 1.6, 1.4), downtown]],
        ),
        (
            "BT03",
            "West Ashford",
            "ST1",
            vec![vec![rect(-3.0, -1.4, -1.6, 1.4)]],
        ),
        (
            "BT04",
            "East Ashford",
            "ST1",
            vec![vec![rect(1.6, -1.4, 3.0, 1.4)]],
        ),
        (
            "BT05",
            "Ashford Fringe",
            "ST1",
            vec![
                vec![rect(-3.0, 1.4, 3.0, 2.5)],
                vec![rect(-3.0, -2.5, 3.0, -1.4)],
            ],
        ),
        ("BT06", "North Prairie", "ST1", vec![vec![north_prairie]]),
        ("BT07", "South Prairie", "ST1", vec![vec![south_prairie]]),
        (
            "BT08",
            "Millbrook",
            "ST2",
            vec![vec![rect(-30.0, 0.0, -12.0, 25.0)]],
        ),
        (
            "BT09",
            "Elm Bottoms",
            "ST2",
            vec![vec![rect(-30.0, -25.0, -12.0, 0.0)]],
        ),
        ("BT10", "Pike Grove", "ST4", vec![vec![pike]]),
        ("BT11", "Creek Valley", "ST4", vec![vec![east_central]]),
        ("BT12", "Carver", "ST3", vec![vec![carver]]),
    ];
    let all: Vec<P> = raw
        .iter()
        .flat_map(|(_, _, _, polys)| polys.iter().flatten().flatten().copied())
        .chain(COUNTY)
        .collect();
    let beats = raw
        .into_iter()
        .map(|(id, name, station, polys)| Area {
            id,
            name,
            station,
            polygons: polys
                .into_iter()
                .map(|rings| {
                    rings
                        .into_iter()
                        .enumerate()
                        .map(|(i, ring)| oriented(conform(&ring, &all), i == 0))
                        .collect()
                })
                .collect(),
        })
        .collect();
    (beats, oriented(conform(&COUNTY, &all), true))
}

fn zone_ring(bbox: (f64, f64, f64, f64)) -> Vec<P> {
    let (x0, y0, x1, y1) = bbox;
    let c = 0.15;
    vec![
        p(x0 + c, y0),
        p(x1 - c, y0),
        p(x1, y0 + c),
        p(x1, y1 - c),
        p(x1 - c, y1),
        p(x0 + c, y1),
        p(x0, y1 - c),
        p(x0, y0 + c),
    ]
}

fn ring_json(ring: &[P]) -> String {
    let mut parts: Vec<String> = ring.iter().map(|&q| coord(q)).collect();
    if let Some(first) = ring.first() {
        parts.push(coord(*first));
    }
    format!("[{}]", parts.join(","))
}

fn polygon_json(rings: &[Vec<P>]) -> String {
    format!(
        "[{}]",
        rings
            .iter()
            .map(|r| ring_json(r))
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// One GeoJSON feature on one line; property values are JSON literals.
fn feature(props: &[(&str, String)], geometry: &str) -> String {
    let props: Vec<String> = props.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    format!(
        "{{\"type\":\"Feature\",\"properties\":{{{}}},\"geometry\":{geometry}}}",
        props.join(",")
    )
}

fn feature_collection(features: &[String]) -> String {
    format!(
        "{{\"type\":\"FeatureCollection\",\"features\":[\n{}\n]}}\n",
        features.join(",\n")
    )
}

fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn point_json(q: P) -> String {
    format!("{{\"type\":\"Point\",\"coordinates\":{}}}", coord(q))
}

fn county_geojson(ring: &[P]) -> String {
    let geometry = format!(
        "{{\"type\":\"Polygon\",\"coordinates\":{}}}",
        polygon_json(&[ring.to_vec()])
    );
    feature_collection(&[feature(
        &[
            ("id", json_str("ASHFORD")),
            ("name", json_str("Ashford County")),
        ],
        &geometry,
    )])
}

fn beats_geojson(beats: &[Area]) -> String {
    let features: Vec<String> = beats
        .iter()
        .map(|b| {
            let geometry = match b.polygons.as_slice() {
                [one] => format!(
                    "{{\"type\":\"Polygon\",\"coordinates\":{}}}",
                    polygon_json(one)
                ),
                many => format!(
                    "{{\"type\":\"MultiPolygon\",\"coordinates\":[{}]}}",
                    many.iter()
                        .map(|poly| polygon_json(poly))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            };
            feature(
                &[
                    ("id", json_str(b.id)),
                    ("name", json_str(b.name)),
                    ("station", json_str(b.station)),
                ],
                &geometry,
            )
        })
        .collect();
    feature_collection(&features)
}

fn zones_geojson() -> String {
    let features: Vec<String> = ZONES
        .iter()
        .map(|z| {
            let geometry = format!(
                "{{\"type\":\"Polygon\",\"coordinates\":{}}}",
                polygon_json(&[zone_ring(z.bbox)])
            );
            let groups = format!(
                "[{},{}]",
                json_str(&format!("{}-A", z.id)),
                json_str(&format!("{}-B", z.id))
            );
            feature(
                &[
                    ("id", json_str(z.id)),
                    ("name", json_str(z.name)),
                    ("station", json_str(z.station)),
                    ("groups", groups),
                ],
                &geometry,
            )
        })
        .collect();
    feature_collection(&features)
}

fn stations_geojson() -> String {
    let features: Vec<String> = STATIONS
        .iter()
        .map(|s| {
            feature(
                &[
                    ("id", json_str(s.id)),
                    ("name", json_str(s.name)),
                    ("kind", json_str(s.kind)),
                ],
                &point_json(s.at),
            )
        })
        .collect();
    feature_collection(&features)
}

struct CheckpointRow {
    id: &'static str,
    name: &'static str,
    kind: &'static str,
    at: P,
    radius_m: u32,
    min_dwell_s: u32,
}

fn checkpoints(roads: &Roads, rng: &mut ChaCha8Rng) -> Vec<CheckpointRow> {
    CHECKPOINTS
        .iter()
        .map(|&(id, name, kind, want)| CheckpointRow {
            id,
            name,
            kind,
            at: roads.nodes[roads.nearest(want).0],
            radius_m: 50 + 10 * rng.random_range(0..=5),
            min_dwell_s: 120 + 30 * rng.random_range(0..=6),
        })
        .collect()
}

fn checkpoints_geojson(rows: &[CheckpointRow]) -> String {
    let features: Vec<String> = rows
        .iter()
        .map(|c| {
            let mut props = vec![
                ("id", json_str(c.id)),
                ("name", json_str(c.name)),
                ("kind", json_str(c.kind)),
                ("radius_m", c.radius_m.to_string()),
                ("min_dwell_s", c.min_dwell_s.to_string()),
            ];
            if c.kind == "patrol" {
                props.push(("window", json_str(PATROL_WINDOW)));
            }
            feature(&props, &point_json(c.at))
        })
        .collect();
    feature_collection(&features)
}

// ---------------------------------------------------------------------------------------
// Roads
// ---------------------------------------------------------------------------------------

type Tags = Vec<(&'static str, String)>;

struct Way {
    nodes: Vec<usize>,
    tags: Tags,
}

#[derive(Default)]
struct Roads {
    nodes: Vec<P>,
    index: BTreeMap<(i64, i64), usize>,
    ways: Vec<Way>,
    /// Index of the first motorway node. Earlier nodes are merged by position; later ones
    /// never are, because the motorway crosses other roads on bridges.
    separate_from: usize,
}

fn tags(highway: &str, name: &str, extra: &[(&'static str, &str)]) -> Tags {
    let mut t: Tags = vec![("highway", highway.to_owned())];
    if !name.is_empty() {
        t.push(("name", name.to_owned()));
    }
    t.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    t
}

impl Roads {
    /// The node at `q`, merged with an existing one at the same metre.
    fn node(&mut self, q: P) -> usize {
        let next = self.nodes.len();
        let id = *self.index.entry(q.key()).or_insert(next);
        if id == next {
            self.nodes.push(q);
        }
        id
    }

    fn fresh_node(&mut self, q: P) -> usize {
        self.nodes.push(q);
        self.nodes.len() - 1
    }

    /// Nearest node to `q` among the merged (non-motorway) nodes, and its distance in km.
    fn nearest(&self, q: P) -> (usize, f64) {
        self.nearest_in(q, 0..self.separate_from)
    }

    fn nearest_in(&self, q: P, range: std::ops::Range<usize>) -> (usize, f64) {
        range
            .map(|i| (i, self.nodes[i].dist(q)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, f64::INFINITY))
    }

    /// Adds a street through `points`, splitting it into ways wherever the per-segment tags
    /// change; a segment whose flag is set is one-way against the point order.
    fn street(&mut self, points: &[P], seg: impl Fn(usize) -> (Tags, bool)) {
        let ids: Vec<usize> = points.iter().map(|&q| self.node(q)).collect();
        let mut start = 0;
        while start + 1 < ids.len() {
            let (t, rev) = seg(start);
            let mut end = start + 1;
            while end + 1 < ids.len() && seg(end) == (t.clone(), rev) {
                end += 1;
            }
            let mut nodes = ids[start..=end].to_vec();
            if rev {
                nodes.reverse();
            }
            self.ways.push(Way { nodes, tags: t });
            start = end;
        }
    }

    fn to_osm(&self) -> String {
        let mut s = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<osm version=\"0.6\" generator=\"patrol fixtures\">\n",
        );
        let (lo, hi) = (lonlat(p(-30.0, -25.0)), lonlat(p(31.2, 25.0)));
        let _ = writeln!(
            s,
            "  <bounds minlat=\"{:.6}\" minlon=\"{:.6}\" maxlat=\"{:.6}\" maxlon=\"{:.6}\"/>",
            lo.1, lo.0, hi.1, hi.0
        );
        for (i, &q) in self.nodes.iter().enumerate() {
            let (lon, lat) = lonlat(q);
            let _ = writeln!(
                s,
                "  <node id=\"{}\" lat=\"{lat:.6}\" lon=\"{lon:.6}\"/>",
                i + 1
            );
        }
        // Named places for map labels, numbered after the road nodes; no way uses them.
        for (i, (name, place, q)) in places().enumerate() {
            let (lon, lat) = lonlat(q);
            let _ = writeln!(
                s,
                "  <node id=\"{}\" lat=\"{lat:.6}\" lon=\"{lon:.6}\">\n    \
                 <tag k=\"place\" v=\"{place}\"/>\n    <tag k=\"name\" v=\"{}\"/>\n  </node>",
                self.nodes.len() + i + 1,
                xml_escape(name)
            );
        }
        for (i, w) in self.ways.iter().enumerate() {
            let _ = writeln!(s, "  <way id=\"{}\">", i + 1);
            for n in &w.nodes {
                let _ = writeln!(s, "    <nd ref=\"{}\"/>", n + 1);
            }
            for (k, v) in &w.tags {
                let _ = writeln!(s, "    <tag k=\"{k}\" v=\"{}\"/>", xml_escape(v));
            }
            s.push_str("  </way>\n");
        }
        s.push_str("</osm>\n");
        s
    }
}

fn xml_escape(v: &str) -> String {
    v.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn ordinal(n: i32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Class, name and extra tags of a rural line: (`vertical`, coordinate in hectometres).
fn lattice_line(
    vertical: bool,
    at: i32,
) -> (&'static str, String, Vec<(&'static str, &'static str)>) {
    match (vertical, at) {
        (true, 0) => (
            "primary",
            "US 51".into(),
            vec![("ref", "US 51"), ("maxspeed", "55 mph")],
        ),
        (false, 0) => (
            "primary",
            "IL 10".into(),
            vec![("ref", "IL 10"), ("maxspeed", "55 mph")],
        ),
        (true, -210) => (
            "secondary",
            "IL 32".into(),
            vec![("ref", "IL 32"), ("maxspeed", "55 mph")],
        ),
        (true, 210) => ("secondary", "IL 48".into(), vec![("ref", "IL 48")]),
        (false, -120) => (
            "secondary",
            "IL 133".into(),
            vec![("ref", "IL 133"), ("maxspeed", "55 mph")],
        ),
        (true, 140) => (
            "tertiary",
            county_road(vertical, at),
            vec![("maxspeed", "80")],
        ),
        (true, -70) | (false, 120) => ("tertiary", county_road(vertical, at), vec![]),
        _ => ("unclassified", county_road(vertical, at), vec![]),
    }
}

fn county_road(vertical: bool, at: i32) -> String {
    if vertical {
        format!("County Road {}E", (at + 300) * 10)
    } else {
        format!("County Road {}N", (at + 250) * 10)
    }
}

fn lattice_tags(vertical: bool, at: i32) -> Tags {
    let (class, name, extra) = lattice_line(vertical, at);
    tags(class, &name, &extra)
}

fn town_tags(vertical: bool, k: i32, along: i32) -> (Tags, bool) {
    let one_way = |rev: bool| -> (Tags, bool) {
        let name = match (vertical, rev) {
            (false, false) => "Market St",
            (false, true) => "Court St",
            (true, false) => "Walnut St",
            (true, true) => "Elm St",
        };
        (
            tags(
                "tertiary",
                name,
                &[("oneway", "yes"), ("maxspeed", "25 mph")],
            ),
            rev,
        )
    };
    if k == 0 {
        let (name, r) = if vertical {
            ("Washington St", "US 51")
        } else {
            ("Main St", "IL 10")
        };
        return (
            tags("primary", name, &[("ref", r), ("maxspeed", "30 mph")]),
            false,
        );
    }
    if k.abs() == 1 && (-4..4).contains(&along) {
        return one_way(k < 0);
    }
    if vertical && k == 2 && along == 0 {
        return (tags("living_street", "Market Square", &[]), false);
    }
    let name = if vertical {
        format!("{} Ave {}", ordinal(k.abs()), if k > 0 { "E" } else { "W" })
    } else {
        format!("{} St {}", ordinal(k.abs()), if k > 0 { "N" } else { "S" })
    };
    let ring = if vertical { TOWN_HX } else { TOWN_HY };
    let t = match k.abs() {
        4 => tags("secondary", &name, &[("maxspeed", "30 mph")]),
        a if a == ring => tags("tertiary", &name, &[("maxspeed", "50")]),
        a if a % 2 == 0 => tags("residential", &name, &[("maxspeed", "25 mph")]),
        _ => tags("residential", &name, &[]),
    };
    (t, false)
}

fn gauss(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Where a crossroads lies: the town, a village, or open country (index into VILLAGES).
#[derive(Clone, Copy, PartialEq)]
enum Crossing {
    Town,
    Village(usize),
    Open,
}

fn crossing(x: i32, y: i32) -> Crossing {
    if (x, y) == (0, 0) {
        return Crossing::Town;
    }
    VILLAGES
        .iter()
        .position(|(_, c)| c.key() == p(hm(x), hm(y)).key())
        .map_or(Crossing::Open, Crossing::Village)
}

fn roads(rng: &mut ChaCha8Rng) -> Roads {
    let mut r = Roads::default();
    // Town grid.
    for vertical in [false, true] {
        let (hk, ha) = if vertical {
            (TOWN_HX, TOWN_HY)
        } else {
            (TOWN_HY, TOWN_HX)
        };
        for k in -hk..=hk {
            let pts: Vec<P> = (-ha..=ha)
                .map(|a| {
                    let (u, v) = (f64::from(k) * TOWN_STEP, f64::from(a) * TOWN_STEP);
                    if vertical { p(u, v) } else { p(v, u) }
                })
                .collect();
            r.street(&pts, |i| town_tags(vertical, k, i as i32 - ha));
        }
    }
    // Village grids; the centre lines carry the rural road through.
    for (name, c) in VILLAGES {
        for vertical in [false, true] {
            for k in -VILLAGE_H..=VILLAGE_H {
                let pts: Vec<P> = (-VILLAGE_H..=VILLAGE_H)
                    .map(|a| {
                        let (u, v) = (f64::from(k) * VILLAGE_STEP, f64::from(a) * VILLAGE_STEP);
                        if vertical {
                            p(c.x + u, c.y + v)
                        } else {
                            p(c.x + v, c.y + u)
                        }
                    })
                    .collect();
                let t = if k == 0 {
                    let at = if vertical { c.x } else { c.y };
                    lattice_tags(vertical, (at * 10.0).round() as i32)
                } else {
                    let side = if vertical {
                        if k > 0 { "E" } else { "W" }
                    } else if k > 0 {
                        "N"
                    } else {
                        "S"
                    };
                    tags(
                        "residential",
                        &format!("{name} {} St {side}", ordinal(k.abs())),
                        &[],
                    )
                };
                r.street(&pts, |_| (t.clone(), false));
            }
        }
    }
    // Service roads: depot and mall car parks, a grain elevator lane.
    for (from, to, name) in [
        (p(-1.2, -0.9), p(-1.05, -1.05), "Depot Parking"),
        (p(2.1, -1.8), p(2.25, -1.95), "Ashford Commons Parking"),
        (p(-21.0, 0.25), p(-21.15, 0.4), "Elevator Lane"),
    ] {
        r.street(&[from, p((from.x + to.x) / 2.0, from.y), to], |_| {
            (tags("service", name, &[]), false)
        });
    }
    rural_lattice(&mut r, rng);
    // Highways run on to the county line.
    for (a, b, vertical) in [
        (p(0.0, 24.0), p(0.0, 24.95), true),
        (p(0.0, -24.0), p(0.0, -24.95), true),
        (p(-28.0, 0.0), p(-29.95, 0.0), false),
        (p(28.0, 0.0), p(29.9, 0.0), false),
    ] {
        r.street(&[a, b], |_| (lattice_tags(vertical, 0), false));
    }
    motorway(&mut r);
    r
}

/// A lattice road between two crossroads (hectometres), and whether it runs north-south.
type LatticeEdge = ((i32, i32), (i32, i32), bool);

fn rural_lattice(r: &mut Roads, rng: &mut ChaCha8Rng) {
    let mut at: BTreeMap<(i32, i32), P> = BTreeMap::new();
    let (xs, ys) = (lattice_x(), lattice_y());
    for &x in &xs {
        for &y in &ys {
            let base = p(hm(x), hm(y));
            let pinned = x == 0 || y == 0 || crossing(x, y) != Crossing::Open;
            let jitter = if pinned {
                p(0.0, 0.0)
            } else {
                p(rng.random_range(-0.25..0.25), rng.random_range(-0.25..0.25))
            };
            at.insert((x, y), p(base.x + jitter.x, base.y + jitter.y));
        }
    }
    let mut edges: Vec<LatticeEdge> = Vec::new();
    for (xi, &x) in xs.iter().enumerate() {
        for (yi, &y) in ys.iter().enumerate() {
            if let Some(&nx) = xs.get(xi + 1) {
                edges.push(((x, y), (nx, y), false));
            }
            if let Some(&ny) = ys.get(yi + 1) {
                edges.push(((x, y), (x, ny), true));
            }
        }
    }
    // Rural grids are not complete: drop some minor roads while every crossroads stays reachable.
    let mut keep = vec![true; edges.len()];
    for i in 0..edges.len() {
        let (a, b, vertical) = edges[i];
        let line = if vertical { a.0 } else { a.1 };
        let minor = lattice_line(vertical, line).0 == "unclassified" && !in_gravel_pocket(a, b);
        let open = crossing(a.0, a.1) == Crossing::Open && crossing(b.0, b.1) == Crossing::Open;
        if minor && open && rng.random_bool(0.25) {
            keep[i] = false;
            if !lattice_connected(&edges, &keep) {
                keep[i] = true;
            }
        }
    }
    for (i, &(a, b, vertical)) in edges.iter().enumerate() {
        if !keep[i] {
            continue;
        }
        let line = if vertical { a.0 } else { a.1 };
        let mut t = lattice_tags(vertical, line);
        if in_gravel_pocket(a, b) {
            let name = county_road(vertical, line);
            t = tags(
                "unclassified",
                &name,
                &[("surface", "gravel"), ("maxspeed", "25 mph")],
            );
        }
        let class = t[0].1.clone();
        let ends = [(a, b), (b, a)].map(|(from, to)| {
            let dir = p(
                f64::from((to.0 - from.0).signum()),
                f64::from((to.1 - from.1).signum()),
            );
            let c = at[&from];
            match crossing(from.0, from.1) {
                Crossing::Town => p(
                    dir.x * f64::from(TOWN_HX) * TOWN_STEP,
                    dir.y * f64::from(TOWN_HY) * TOWN_STEP,
                ),
                Crossing::Village(_) => {
                    let h = f64::from(VILLAGE_H) * VILLAGE_STEP;
                    p(c.x + dir.x * h, c.y + dir.y * h)
                }
                Crossing::Open => c,
            }
        });
        let (s, e) = (ends[0], ends[1]);
        let len = s.dist(e);
        let n = (len / 0.8).ceil().max(1.0) as usize;
        let (amp, noise) = match class.as_str() {
            "primary" => (0.0, 0.0),
            "secondary" => (rng.random_range(-0.1..0.1), 0.0),
            _ => (rng.random_range(-0.2..0.2), 0.03),
        };
        let (nx, ny) = ((s.y - e.y) / len, (e.x - s.x) / len);
        let pts: Vec<P> = (0..=n)
            .map(|k| {
                let t = k as f64 / n as f64;
                let off = if k == 0 || k == n {
                    0.0
                } else {
                    amp * (std::f64::consts::PI * t).sin() + noise * rng.random_range(-1.0..1.0)
                };
                p(
                    s.x + (e.x - s.x) * t + nx * off,
                    s.y + (e.y - s.y) * t + ny * off,
                )
            })
            .collect();
        r.street(&pts, |_| (t.clone(), false));
    }
}

/// True when the kept lattice edges connect every crossroads (villages and town included).
fn lattice_connected(edges: &[LatticeEdge], keep: &[bool]) -> bool {
    let mut adj: BTreeMap<(i32, i32), Vec<(i32, i32)>> = BTreeMap::new();
    for (&(a, b, _), _) in edges.iter().zip(keep).filter(|(_, k)| **k) {
        adj.entry(a).or_default().push(b);
        adj.entry(b).or_default().push(a);
    }
    let total = lattice_x().len() * lattice_y().len();
    let mut seen = std::collections::BTreeSet::from([(0, 0)]);
    let mut stack = vec![(0, 0)];
    while let Some(v) = stack.pop() {
        for &w in adj.get(&v).map_or(&[][..], Vec::as_slice) {
            if seen.insert(w) {
                stack.push(w);
            }
        }
    }
    seen.len() == total
}

/// I-72 crosses the county west to east on bridges, joined by ramps at three interchanges.
fn motorway(r: &mut Roads) {
    r.separate_from = r.nodes.len();
    let xs: Vec<f64> = (-30..=30)
        .map(|x| if x == -30 { -29.95 } else { f64::from(x) })
        .collect();
    let ids: Vec<usize> = xs
        .iter()
        .map(|&x| r.fresh_node(p(x, motorway_y(x))))
        .collect();
    let mtags = tags(
        "motorway",
        "I-72",
        &[("ref", "I-72"), ("oneway", "no"), ("maxspeed", "70 mph")],
    );
    r.ways.push(Way {
        nodes: ids.clone(),
        tags: mtags,
    });
    for x in [-21, 0, 21] {
        for side in [-1, 1] {
            let xm = x + side;
            let Some(pos) = xs.iter().position(|&v| v == f64::from(xm)) else {
                continue;
            };
            let on_motorway = ids[pos];
            let target = p(
                f64::from(x),
                motorway_y(f64::from(x)) + 0.8 * f64::from(side),
            );
            let (road_node, _) = r.nearest_in(target, 0..r.separate_from);
            let (a, b) = (r.nodes[on_motorway], r.nodes[road_node]);
            let mid = r.fresh_node(p(
                (a.x + b.x) / 2.0 + 0.1 * f64::from(side),
                (a.y + b.y) / 2.0,
            ));
            let name = format!("I-72 Exit {}", x + 41);
            r.ways.push(Way {
                nodes: vec![on_motorway, mid, road_node],
                tags: tags("motorway_link", &name, &[("oneway", "no")]),
            });
        }
    }
}

// ---------------------------------------------------------------------------------------
// Drive times
// ---------------------------------------------------------------------------------------

/// Speed of a way: its `maxspeed` ("30 mph" or km/h) or the class default.
fn way_speed_kmh(t: &Tags) -> f64 {
    let get = |k: &str| t.iter().find(|(key, _)| *key == k).map(|(_, v)| v.as_str());
    if let Some(ms) = get("maxspeed") {
        let parsed = match ms.strip_suffix(" mph") {
            Some(mph) => mph.parse::<f64>().map(|v| v * 1.609_344),
            None => ms.parse::<f64>(),
        };
        if let Ok(v) = parsed {
            return v;
        }
    }
    let class = get("highway").unwrap_or("road");
    SPEEDS_KMH
        .iter()
        .find(|(c, _)| *c == class)
        .map_or(40.0, |(_, v)| *v)
}

/// Fastest drive from a source: seconds and kilometres along that route.
#[derive(Debug, Clone, Copy)]
struct Reach {
    secs: f64,
    km: f64,
}

struct Graph {
    /// Outgoing edges: (to, km, seconds).
    adj: Vec<Vec<(usize, f64, f64)>>,
}

impl Graph {
    fn new(roads: &Roads) -> Graph {
        let mut adj = vec![Vec::new(); roads.nodes.len()];
        for w in &roads.ways {
            let kmh = way_speed_kmh(&w.tags);
            let oneway = w.tags.iter().any(|(k, v)| *k == "oneway" && v == "yes");
            for pair in w.nodes.windows(2) {
                let km = roads.nodes[pair[0]].dist(roads.nodes[pair[1]]);
                let secs = km / kmh * 3600.0;
                adj[pair[0]].push((pair[1], km, secs));
                if !oneway {
                    adj[pair[1]].push((pair[0], km, secs));
                }
            }
        }
        Graph { adj }
    }

    fn dijkstra(&self, src: usize) -> Vec<Reach> {
        let mut best = vec![
            Reach {
                secs: f64::INFINITY,
                km: f64::INFINITY
            };
            self.adj.len()
        ];
        let mut heap = BinaryHeap::new();
        best[src] = Reach { secs: 0.0, km: 0.0 };
        heap.push(Reverse((0_u64, src)));
        while let Some(Reverse((ms, v))) = heap.pop() {
            if ms > (best[v].secs * 1000.0).round() as u64 {
                continue;
            }
            for &(w, km, secs) in &self.adj[v] {
                let cand = Reach {
                    secs: best[v].secs + secs,
                    km: best[v].km + km,
                };
                if cand.secs < best[w].secs {
                    best[w] = cand;
                    heap.push(Reverse(((cand.secs * 1000.0).round() as u64, w)));
                }
            }
        }
        best
    }
}

/// The response rule on a 1 km grid over the county.
struct Coverage {
    /// (point, covered) for every grid point inside the county.
    points: Vec<(P, bool)>,
}

impl Coverage {
    fn compute(roads: &Roads, from_station: &[Vec<Reach>]) -> Coverage {
        let mut points = Vec::new();
        for yi in -25..25 {
            for xi in -30..32 {
                let q = p(f64::from(xi) + 0.5, f64::from(yi) + 0.5);
                if !in_county(q) {
                    continue;
                }
                let (node, off_km) = roads.nearest(q);
                let covered = from_station.iter().any(|reach| {
                    let r = reach[node];
                    let minutes = r.secs / 60.0 + off_km / OFFROAD_KMH * 60.0;
                    minutes <= MAX_MINUTES && r.km + off_km <= MAX_KM
                });
                points.push((q, covered));
            }
        }
        Coverage { points }
    }

    fn uncovered_share(&self) -> f64 {
        let bad = self.points.iter().filter(|(_, ok)| !ok).count();
        bad as f64 / self.points.len().max(1) as f64
    }

    /// Uncovered grid points per ninth of the county (3 x 3 sectors), non-empty only.
    fn pockets(&self) -> Vec<(String, usize)> {
        let mut by: BTreeMap<(usize, usize), usize> = BTreeMap::new();
        for (q, _) in self.points.iter().filter(|(_, ok)| !ok) {
            let col = ((q.x + 30.0) / 20.0).floor().clamp(0.0, 2.0) as usize;
            let row = ((25.0 - q.y) / (50.0 / 3.0)).floor().clamp(0.0, 2.0) as usize;
            *by.entry((row, col)).or_default() += 1;
        }
        let names = [
            ["north-west", "north", "north-east"],
            ["west", "centre", "east"],
            ["south-west", "south", "south-east"],
        ];
        by.into_iter()
            .map(|((row, col), n)| (names[row][col].to_owned(), n))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Fleet and roster
// ---------------------------------------------------------------------------------------

struct UnitRow {
    id: String,
    kind: &'static str,
    station: &'static str,
    crew: u8,
}

fn units(rng: &mut ChaCha8Rng) -> Vec<UnitRow> {
    let mut out = Vec::new();
    for (station, kind, prefix, first, count) in FLEET {
        for n in first..first + count {
            let id = format!("{prefix}{n:02}");
            let crew = if SOLO_PATROLS.contains(&id.as_str()) {
                1
            } else if kind == "car" {
                if rng.random_bool(0.3) { 1 } else { 2 }
            } else {
                2
            };
            out.push(UnitRow {
                id,
                kind,
                station,
                crew,
            });
        }
    }
    out
}

fn units_csv(units: &[UnitRow]) -> String {
    let mut s = String::from("unit,kind,station,crew,device,imei,issi\n");
    for (n, u) in (1u64..).zip(units) {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{}",
            u.id,
            u.kind,
            u.station,
            u.crew,
            device_number(n),
            imei(n),
            issi(n)
        );
    }
    s
}

/// The `n`th unit's device id: an 11-digit mobile number (a JT/T 808 terminal's, and the id
/// its phone's tracker app and radio feed send).
fn device_number(n: u64) -> String {
    format!("{}", 13_900_000_000 + n)
}

/// The `n`th unit's tracker IMEI: 14 digits and the Luhn check digit.
fn imei(n: u64) -> String {
    let body = format!("{:014}", 35_000_000_000_000 + n);
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let d2 = d * 2;
                d2 / 10 + d2 % 10
            } else {
                d
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// The `n`th unit's TETRA radio ISSI.
fn issi(n: u64) -> String {
    format!("{}", 2_001_000 + n)
}

struct RosterRow {
    date: NaiveDate,
    unit: String,
    zone: &'static str,
    window: usize,
    crew: u8,
    level: u8,
}

/// Units out per zone: level share of the station's force, split over its zones.
fn units_needed(force: usize, zones: usize, level: u8) -> usize {
    let share = LEVEL_SHARES[usize::from(level - 1)];
    ((share * force as f64 / zones.max(1) as f64).round() as usize).max(1)
}

fn roster(units: &[UnitRow], rng: &mut ChaCha8Rng) -> Vec<RosterRow> {
    let mut rows = Vec::new();
    let start =
        NaiveDate::from_ymd_opt(ROSTER_START.0, ROSTER_START.1, ROSTER_START.2).unwrap_or_default();
    for day in 0..ROSTER_DAYS {
        let date = start + Duration::days(day);
        let levels: Vec<u8> = ZONES
            .iter()
            .map(|_| match rng.random_range(0..100) {
                0..5 => 1,
                5..20 => 2,
                _ => 3,
            })
            .collect();
        for (w, (window, _, _)) in WINDOWS.iter().enumerate() {
            let preference: &[&str] = if *window == "night" {
                &["bike", "ebike", "foot", "car"]
            } else {
                &["foot", "car", "ebike", "bike"]
            };
            for station in STATIONS.iter().map(|s| s.id) {
                let zones: Vec<usize> = (0..ZONES.len())
                    .filter(|&z| ZONES[z].station == station)
                    .collect();
                let mut pool: Vec<&UnitRow> = Vec::new();
                for kind in preference {
                    let mut same: Vec<&UnitRow> = units
                        .iter()
                        .filter(|u| u.station == station && u.kind == *kind)
                        .collect();
                    if !same.is_empty() {
                        let shift = (day as usize + w) % same.len();
                        same.rotate_left(shift);
                    }
                    pool.extend(same);
                }
                let mut next = pool.into_iter();
                for &z in &zones {
                    let need = units_needed(
                        units.iter().filter(|u| u.station == station).count(),
                        zones.len(),
                        levels[z],
                    );
                    for u in next.by_ref().take(need) {
                        rows.push(RosterRow {
                            date,
                            unit: u.id.clone(),
                            zone: ZONES[z].id,
                            window: w,
                            crew: u.crew,
                            level: levels[z],
                        });
                    }
                }
            }
        }
    }
    rows
}

fn roster_csv(rows: &[RosterRow]) -> String {
    let mut s = String::from("date,unit,zone,window,start,end,crew,level\n");
    for r in rows {
        let (name, start, end) = WINDOWS[r.window];
        let _ = writeln!(
            s,
            "{},{},{},{name},{start},{end},{},{}",
            r.date, r.unit, r.zone, r.crew, r.level
        );
    }
    s
}

// ---------------------------------------------------------------------------------------
// Incidents
// ---------------------------------------------------------------------------------------

/// Hour-of-day shape of a place.
#[derive(Clone, Copy)]
enum Profile {
    /// Bars and village nights: evening and night peaks, strong weekend nights.
    Night,
    /// Shops: open hours.
    Day,
    /// Everything else: mild evening peak.
    General,
}

impl Profile {
    fn hour_weight(self, hour: u32, weekday: Weekday) -> f64 {
        const GENERAL: [f64; 24] = [
            8., 6., 5., 4., 3., 2., 2., 3., 4., 5., 5., 6., 6., 6., 6., 7., 7., 8., 9., 10., 11.,
            12., 12., 10.,
        ];
        const NIGHT: [f64; 24] = [
            14., 12., 9., 5., 2., 1., 1., 1., 1., 1., 1., 2., 2., 2., 2., 3., 4., 5., 7., 9., 11.,
            13., 15., 15.,
        ];
        const DAY: [f64; 24] = [
            1., 1., 0., 0., 0., 0., 1., 1., 2., 4., 8., 10., 11., 11., 11., 11., 11., 11., 10., 9.,
            7., 4., 2., 1.,
        ];
        let base = match self {
            Profile::Night => NIGHT[hour as usize],
            Profile::Day => DAY[hour as usize],
            Profile::General => GENERAL[hour as usize],
        };
        // Weekend nights: Friday and Saturday evenings and the small hours after them.
        let weekend_night = matches!(
            (weekday, hour),
            (Weekday::Fri | Weekday::Sat, 20..=23) | (Weekday::Sat | Weekday::Sun, 0..=3)
        );
        let day_factor = match weekday {
            Weekday::Fri => 1.1,
            Weekday::Sat => 1.2,
            Weekday::Sun => 1.0,
            _ => 0.95,
        };
        let boost = match (self, weekend_night) {
            (Profile::Day, _) | (_, false) => 1.0,
            (Profile::Night, true) => 2.2,
            (Profile::General, true) => 1.5,
        };
        base * day_factor * boost
    }
}

/// Cumulative weights over every local hour of the incident year.
struct HourSampler {
    cumulative: Vec<f64>,
}

impl HourSampler {
    fn new(profile: Profile, first: NaiveDate) -> HourSampler {
        let mut total = 0.0;
        let mut cumulative = Vec::new();
        for d in 0..INCIDENT_DAYS {
            let weekday = (first + Duration::days(d)).weekday();
            for h in 0..24 {
                total += profile.hour_weight(h, weekday);
                cumulative.push(total);
            }
        }
        HourSampler { cumulative }
    }

    /// A (day offset, hour) drawn by weight.
    fn sample(&self, rng: &mut ChaCha8Rng) -> (i64, u32) {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let target = rng.random_range(0.0..total.max(f64::MIN_POSITIVE));
        let i = self
            .cumulative
            .partition_point(|&c| c <= target)
            .min(self.cumulative.len() - 1);
        ((i / 24) as i64, (i % 24) as u32)
    }
}

struct Incident {
    received: DateTime<Tz>,
    at: P,
    category: &'static str,
    priority: u8,
    dispatch: Option<(String, DateTime<Tz>, DateTime<Tz>)>,
}

fn pick(rng: &mut ChaCha8Rng, weighted: &[(&'static str, u32)]) -> &'static str {
    let total: u32 = weighted.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0..total.max(1));
    for (v, w) in weighted {
        if x < *w {
            return v;
        }
        x -= w;
    }
    weighted.first().map_or("", |(v, _)| v)
}

fn priority(category: &str, rng: &mut ChaCha8Rng) -> u8 {
    let roll = rng.random_range(0..100);
    match category {
        "assault" => {
            if roll < 70 {
                1
            } else {
                2
            }
        }
        "burglary" | "drugs" => {
            if roll < 55 {
                2
            } else {
                3
            }
        }
        "traffic" => match roll {
            0..15 => 1,
            15..65 => 2,
            _ => 3,
        },
        _ => {
            if roll < 25 {
                2
            } else {
                3
            }
        }
    }
}

/// Local wall time to a zoned instant; times in the spring-forward gap move one hour on.
fn local(date: NaiveDate, secs_of_day: u32) -> DateTime<Tz> {
    let t = NaiveTime::from_num_seconds_from_midnight_opt(secs_of_day, 0).unwrap_or_default();
    let ndt = date.and_time(t);
    Chicago
        .from_local_datetime(&ndt)
        .earliest()
        .or_else(|| {
            Chicago
                .from_local_datetime(&(ndt + Duration::hours(1)))
                .earliest()
        })
        .unwrap_or_else(|| Chicago.from_utc_datetime(&ndt))
}

/// Weighted incident categories of a place.
type Categories = &'static [(&'static str, u32)];

fn incidents(
    roads: &Roads,
    from_station: &[Vec<Reach>],
    units: &[UnitRow],
    rng: &mut ChaCha8Rng,
) -> Vec<Incident> {
    let first = NaiveDate::from_ymd_opt(INCIDENTS_FIRST.0, INCIDENTS_FIRST.1, INCIDENTS_FIRST.2)
        .unwrap_or_default();
    let samplers =
        [Profile::Night, Profile::Day, Profile::General].map(|pr| HourSampler::new(pr, first));
    let sampler = |pr: Profile| match pr {
        Profile::Night => &samplers[0],
        Profile::Day => &samplers[1],
        Profile::General => &samplers[2],
    };
    let in_town = |q: P| q.x.abs() <= 2.7 && q.y.abs() <= 2.4;
    let town_nodes: Vec<usize> = (0..roads.separate_from)
        .filter(|&i| in_town(roads.nodes[i]))
        .collect();
    let rural_nodes: Vec<usize> = (0..roads.separate_from)
        .filter(|&i| !in_town(roads.nodes[i]))
        .collect();
    let mut plans: Vec<(P, Profile, Categories)> = Vec::new();
    for h in &HOTSPOTS {
        for _ in 0..h.count {
            let q = p(
                h.at.x + h.sigma_km * gauss(rng),
                h.at.y + h.sigma_km * gauss(rng),
            );
            plans.push((q, h.profile, h.categories));
        }
    }
    for _ in 0..TOWN_INCIDENTS {
        let n = roads.nodes[town_nodes[rng.random_range(0..town_nodes.len())]];
        let along = rng.random_range(0.0..TOWN_STEP);
        let side = rng.random_range(-0.02..0.02);
        let q = if rng.random_bool(0.5) {
            p(n.x + along, n.y + side)
        } else {
            p(n.x + side, n.y + along)
        };
        plans.push((q, Profile::General, TOWN_CATEGORIES));
    }
    for _ in 0..RURAL_INCIDENTS {
        let n = roads.nodes[rural_nodes[rng.random_range(0..rural_nodes.len())]];
        let q = p(n.x + 0.05 * gauss(rng), n.y + 0.05 * gauss(rng));
        plans.push((q, Profile::General, RURAL_CATEGORIES));
    }
    let mut out: Vec<Incident> = plans
        .into_iter()
        .filter(|(q, _, _)| in_county(*q))
        .map(|(q, profile, cats)| {
            let (day, hour) = sampler(profile).sample(rng);
            let secs = hour * 3600 + rng.random_range(0..3600);
            let received = local(first + Duration::days(day), secs);
            let category = pick(rng, cats);
            let priority = priority(category, rng);
            let dispatch_p = [0.95, 0.75, 0.45][usize::from(priority - 1)];
            let dispatch = rng.random_bool(dispatch_p).then(|| {
                let (node, off_km) = roads.nearest(q);
                let (station, reach) = from_station
                    .iter()
                    .enumerate()
                    .map(|(s, r)| (s, r[node]))
                    .min_by(|a, b| a.1.secs.total_cmp(&b.1.secs))
                    .unwrap_or((
                        0,
                        Reach {
                            secs: 600.0,
                            km: 10.0,
                        },
                    ));
                let cars: Vec<&UnitRow> = units
                    .iter()
                    .filter(|u| u.station == STATIONS[station].id && u.kind == "car")
                    .collect();
                let unit = cars
                    .get(rng.random_range(0..cars.len().max(1)))
                    .map_or(String::new(), |u| u.id.clone());
                let dispatched = received + Duration::seconds(rng.random_range(40..150));
                let drive =
                    reach.secs * rng.random_range(0.5..1.1) + off_km / OFFROAD_KMH * 3600.0 + 30.0;
                let arrived = dispatched + Duration::seconds(drive.round() as i64);
                (unit, dispatched, arrived)
            });
            Incident {
                received,
                at: q,
                category,
                priority,
                dispatch,
            }
        })
        .collect();
    out.sort_by_key(|i| i.received);
    out
}

fn rfc3339(t: &DateTime<Tz>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

fn incidents_csv(rows: &[Incident]) -> String {
    let mut s = String::from("id,received,lat,lon,category,priority,unit,dispatched,arrived\n");
    for (i, r) in rows.iter().enumerate() {
        let (lon, lat) = lonlat(r.at);
        let (unit, dispatched, arrived) = match &r.dispatch {
            Some((u, d, a)) => (u.as_str(), rfc3339(d), rfc3339(a)),
            None => ("", String::new(), String::new()),
        };
        let _ = writeln!(
            s,
            "IN{:05},{},{lat:.6},{lon:.6},{},{},{unit},{dispatched},{arrived}",
            i + 1,
            rfc3339(&r.received),
            r.category,
            r.priority
        );
    }
    s
}

// ---------------------------------------------------------------------------------------
// README
// ---------------------------------------------------------------------------------------

impl County {
    fn readme(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "# Fixture jurisdiction: Ashford County\n\n\
             Ashford County is fictional. Every file here is written by `demo::county::write_county` \
             with seed {seed}; do not edit them by hand. Regenerate with\n\n\
             ```sh\ncargo run -- fixtures --out fixtures --seed 7   # or: patrol fixtures ...\n```\n\n\
             A test (`demo::county::tests::committed_fixtures_match_generator`) regenerates into a \
             temporary folder and compares byte for byte, so the committed files and the generator \
             never drift. `fixtures/tracks/` is not written by the generator.\n\n\
             All coordinates are WGS-84 longitude/latitude with 6 decimals. The county is laid out in \
             a local frame of kilometres east (x) and north (y) of its centre at lat {CENTER_LAT:.2}, \
             lon {CENTER_LON:.2}; positions below are given in that frame. Time zone: `{TIMEZONE}`.\n\n",
            seed = self.seed
        );
        s.push_str(
            "## The county\n\n\
             About 60 km x 50 km of flat farmland: x from -30 to 30 km (the east line follows the \
             meandering Vermilion Creek, between 29.4 and 31.2 km), y from -25 to 25 km. The county \
             town, **Ashford**, sits at the centre on a 300 m street grid (about 5.4 km x 4.8 km). \
             Five villages sit on rural crossroads with a 250 m street grid: Millbrook (-21, 0), \
             Carver (14, -12), Pike Grove (21, 18), Harlan (-7, 18) and Dunmore (7, -18).\n\n",
        );
        s.push_str("## Stations (`stations.geojson`)\n\nPoints; properties `id`, `name`, `kind` (`central` | `rural`).\n\n");
        s.push_str("| id | name | kind | x, y (km) |\n|---|---|---|---|\n");
        for st in &STATIONS {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.2}, {:.2} |",
                st.id, st.name, st.kind, st.at.x, st.at.y
            );
        }
        s.push_str("\nStraight-line distances (km):\n\n| | ST1 | ST2 | ST3 | ST4 |\n|---|---|---|---|---|\n");
        for a in &STATIONS {
            let cells: Vec<String> = STATIONS
                .iter()
                .map(|b| format!("{:.1}", a.at.dist(b.at)))
                .collect();
            let _ = writeln!(s, "| {} | {} |", a.id, cells.join(" | "));
        }
        let pockets: Vec<String> = self
            .coverage
            .pockets()
            .iter()
            .map(|(name, n)| format!("{name} ({n})"))
            .collect();
        let _ = write!(
            s,
            "\n### Response rule (30 km / 30 min)\n\n\
             A place is covered when some station reaches it by the fastest road route within \
             {MAX_MINUTES:.0} minutes and {MAX_KM:.0} km, counting the stretch from the nearest road node \
             at {OFFROAD_KMH:.0} km/h (speeds: `maxspeed`, else `[speeds_kmh]`; one-way streets honoured). \
             Checked by the generator on a 1 km grid: {:.1}% of the {} grid points fail. Failing points \
             per ninth of the county: {}. The pockets are strips along the north county line \
             west of US 51 (north of Harlan, which has no station) and along the south county line \
             west of Dunmore, both more than 30 km by road from every station; the far south-west \
             corner (Elm Bottoms, gravel roads at 25 mph); and a few points on the creek bank in the \
             far east, where the off-road stretch to the nearest road is long.\n\n",
            100.0 * self.coverage.uncovered_share(),
            self.coverage.points.len(),
            if pockets.is_empty() {
                "none".to_owned()
            } else {
                pockets.join(", ")
            }
        );
        s.push_str(
            "## Beats (`beats.geojson`, `county.geojson`)\n\n\
             Twelve beats tile the county without gaps or overlaps: shared edges list exactly the \
             same vertices, so a point lies in the interior of at most one beat. Properties `id`, \
             `name`, `station`. `BT02` is a Polygon with a hole that `BT01` fills exactly; `BT05` is \
             a MultiPolygon (a strip north and a strip south of the town centre). `county.geojson` \
             holds the county outline as one Polygon (property `id`, `name`).\n\n\
             | id | name | station | geometry | area (km²) |\n|---|---|---|---|---|\n",
        );
        for b in &self.beats {
            let area: f64 = b
                .polygons
                .iter()
                .map(|rings| rings.iter().map(|r| signed_area(r)).sum::<f64>())
                .sum();
            let kind = if b.polygons.len() > 1 {
                "MultiPolygon"
            } else if b.polygons.iter().any(|r| r.len() > 1) {
                "Polygon with hole"
            } else {
                "Polygon"
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {kind} | {area:.2} |",
                b.id, b.name, b.station
            );
        }
        s.push_str(
            "\n## Patrol zones (`zones.geojson`)\n\n\
             Six Polygons (boxes with cut corners) that do not overlap each other but may cross beat \
             lines. Properties `id`, `name`, `station`, `groups` (two patrol group names).\n\n\
             | id | name | station |\n|---|---|---|\n",
        );
        for z in &ZONES {
            let _ = writeln!(s, "| {} | {} | {} |", z.id, z.name, z.station);
        }
        s.push_str(
            "\n## Checkpoints (`checkpoints.geojson`)\n\n\
             Points on road nodes of `roads.osm`. Properties `id`, `name`, `kind` (`patrol`: visited \
             every night; `entry`: entry/exit point on a main road at the county line), `radius_m`, \
             `min_dwell_s` (seconds a unit must stay within the radius), and for patrol checkpoints \
             `window` (`HH:MM-HH:MM`, local time, may cross midnight).\n\n\
             | id | name | kind | radius_m | min_dwell_s |\n|---|---|---|---|---|\n",
        );
        for c in &self.checkpoints {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                c.id, c.name, c.kind, c.radius_m, c.min_dwell_s
            );
        }
        let mut km_by_class: BTreeMap<String, f64> = BTreeMap::new();
        for w in &self.roads.ways {
            let km: f64 = w
                .nodes
                .windows(2)
                .map(|n| self.roads.nodes[n[0]].dist(self.roads.nodes[n[1]]))
                .sum();
            *km_by_class.entry(w.tags[0].1.clone()).or_default() += km;
        }
        let _ = write!(
            s,
            "\n## Roads (`roads.osm`)\n\n\
             OpenStreetMap XML 0.6: {} road nodes and {} ways, tags `highway`, `name`, and where set `ref`, \
             `maxspeed` (`\"30 mph\"` or plain km/h such as `\"50\"`), `oneway` (`yes` means along the \
             node order; the motorway and its ramps say `oneway=no` explicitly), `surface`. The network \
             is one strongly connected component with one-ways honoured (tested). Ashford's grid has \
             Main St (IL 10) and Washington St (US 51) as primaries and two one-way pairs downtown \
             (Market St eastbound / Court St westbound, Walnut St northbound / Elm St southbound). \
             Rural roads follow a 3.5 km x 3 km lattice of section roads with curves; some minor roads are \
             missing. I-72 crosses east-west near y = -16.5 km on bridges, with ramps at US 51, IL 32 \
             and IL 48. After the road nodes come {} named place nodes for map labels, on no way: \
             Ashford (`place=town`) and the five villages (`place=village`), at their centres.\n\n\
             | class | km |\n|---|---|\n",
            self.roads.nodes.len(),
            self.roads.ways.len(),
            places().count()
        );
        for (class, km) in &km_by_class {
            let _ = writeln!(s, "| {class} | {km:.1} |");
        }
        s.push_str(
            "\n## Fleet (`units.csv`)\n\n\
             Header `unit,kind,station,crew,device,imei,issi`. `kind` is `car`, `bike`, `ebike` or \
             `foot` (foot = hand-held radio); ids are the kind's letter and a number (`C01`, `B05`, \
             `E02`, `F10`). `crew` is the number of officers (1-3). The last three columns are the \
             identities the unit's devices report with, for the device gateways: `device` (an \
             11-digit number: a JT/T 808 terminal's phone number, or the id an OsmAnd/Traccar \
             client or an NMEA feed sends), `imei` (a GT06 or Teltonika tracker's, with its Luhn \
             check digit) and `issi` (a TETRA radio's). They are made up. Bikes and foot patrols \
             go in groups of two; \
             ",
        );
        let _ = write!(
            s,
            "{} deliberately have crew 1 so the \"group of at least two\" rule can be seen failing.\n\n",
            SOLO_PATROLS.join(", ")
        );
        s.push_str(
            "Ingest (`patrol serve`, `patrol import`) takes positions only from these units, each on \
             its own station's topic `<prefix>/<station>/<unit>` (`owntracks/ST4/C17` for a car of \
             ST4): a unit not in the file is refused as `unknown_unit`, a unit on another station's \
             topic (`owntracks/ST2/C17`) as `station_mismatch`, and both are kept in `rejects`. A \
             topic that is not three levels of 1-64 ASCII letters, digits, `-`, `_` or `.` is refused \
             as `bad_topic`, so ids in this file keep to those characters.\n\n",
        );
        s.push_str("| station | car | bike | ebike | foot |\n|---|---|---|---|---|\n");
        for st in &STATIONS {
            let n = |kind: &str| {
                self.units
                    .iter()
                    .filter(|u| u.station == st.id && u.kind == kind)
                    .count()
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                st.id,
                n("car"),
                n("bike"),
                n("ebike"),
                n("foot")
            );
        }
        let _ = write!(
            s,
            "\n## Roster (`roster.csv`)\n\n\
             Header `date,unit,zone,window,start,end,crew,level`; {} rows for 28 days from Monday \
             2026-11-02. `date` is the local date the shift starts, `start`/`end` local `HH:MM`; an \
             end before the start is on the next day (night window 23:00-05:00). `window` names a \
             `[[windows]]` entry of `jurisdiction.toml`. Each day every zone gets a patrol level \
             (mostly 3, sometimes 2, rarely 1). Units out per zone and window = round(level share x \
             units of the zone's station / zones of that station), at least 1; shares come from \
             `[levels]` (level 1 = 2/3, level 2 = 1/2, level 3 = 1/3 of the force). Night patrols \
             take bikes and e-bikes first, day windows foot patrols and cars; a unit is in at most \
             one zone per window.\n\n",
            self.roster.len()
        );
        let (mut hot, mut dispatched) = (0, 0);
        for i in &self.incidents {
            if HOTSPOTS.iter().any(|h| h.at.dist(i.at) <= 0.4) {
                hot += 1;
            }
            if i.dispatch.is_some() {
                dispatched += 1;
            }
        }
        let n = self.incidents.len().max(1) as f64;
        let _ = write!(
            s,
            "## Incidents (`incidents.csv`)\n\n\
             Header `id,received,lat,lon,category,priority,unit,dispatched,arrived`; {} rows from \
             2025-11-23 to 2026-11-22 sorted by `received`. Times are RFC 3339 with the local offset \
             (`-06:00` in winter, `-05:00` in summer). `category` is one of theft, burglary, assault, \
             vandalism, traffic, disturbance, drugs; `priority` 1 (urgent) to 3. {:.0}% have a \
             responding `unit` (a car of the station with the fastest drive), `dispatched` 40-150 s \
             after `received` and `arrived` after a drive time taken from the road network; the others \
             leave the three fields empty.\n\n\
             Concentration: {:.0}% of incidents lie within 400 m of four hot spots, which cover {:.2}% \
             of the county:\n\n",
            self.incidents.len(),
            100.0 * f64::from(dispatched) / n,
            100.0 * f64::from(hot) / n,
            100.0 * 4.0 * std::f64::consts::PI * 0.16 / 3000.0
        );
        for h in &HOTSPOTS {
            let _ = writeln!(s, "- {} at ({:.2}, {:.2})", h.name, h.at.x, h.at.y);
        }
        s.push_str(
            "\nThe rest are spread over Ashford's streets and along rural roads. Hours follow a \
             daily rhythm (quiet early morning, peaks in the evening and at night; the shopping \
             centre peaks in opening hours) and a weekly one (Friday and Saturday nights are the \
             busiest).\n\n\
             ## Settings (`jurisdiction.toml`)\n\n\
             `name`, `timezone` (IANA), `version` (catalog version), and commented tables: `[h3]`, \
             `[response]`, `[dosage]`, `[hysteresis]`, `[validate]`, `[status]`, `[speeds_kmh]` (per \
             OSM highway class), `[[windows]]` (`name`, `start`, `end`, local `HH:MM`), `[levels]` and `[hotspots]` \
             (optional; see the README, \"Forecasts and the backtest\").\n\n\
             `[validate]` holds `max_acc_m` (less accurate fixes are flagged), `future_tolerance_s` \
             (fixes further ahead of their arrival are refused as `future_timestamp`), \
             `reorder_window_s` (fixes older than this \
             at arrival are flagged late), `live_window_s` (optional, default 0; \
             see ARCHITECTURE.md, \"Geofence events\"), `max_payload_bytes` (larger MQTT payloads are \
             refused as `oversize`) and `max_age_s` (optional, default 604800, a week): a live MQTT \
             fix older than this when it arrives is refused as `too_old`, so a clock fault (a GPS \
             week-number rollover puts fixes 19.6 years back) does not open a day partition of its \
             own, while a device's offline queue of a few days still lands (flagged late). `patrol \
             import` backfills history and is not held to `max_age_s`. Independently of any setting, \
             a fix time before 2000-01-01T00:00:00Z (`tst` 0 or anything else from a broken clock, \
             such as 1906) is refused everywhere as `bad_timestamp`.\n",
        );
        s
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use devkit::testkit::fixtures;
    use geo::{Area as _, Contains, Coord, Intersects, LineString, MultiPolygon, Point, Polygon};
    use quick_xml::events::Event;
    use std::collections::{BTreeSet, VecDeque};

    fn read(name: &str) -> String {
        std::fs::read_to_string(fixtures().join(name)).unwrap()
    }

    fn features(name: &str) -> Vec<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_str(&read(name)).unwrap();
        v["features"].as_array().unwrap().clone()
    }

    fn ring(v: &serde_json::Value) -> LineString<f64> {
        let coords: Vec<Coord<f64>> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|c| Coord {
                x: c[0].as_f64().unwrap(),
                y: c[1].as_f64().unwrap(),
            })
            .collect();
        assert_eq!(coords.first(), coords.last(), "ring not closed");
        LineString::new(coords)
    }

    fn polygon(rings: &serde_json::Value) -> Polygon<f64> {
        let rings = rings.as_array().unwrap();
        Polygon::new(ring(&rings[0]), rings[1..].iter().map(ring).collect())
    }

    fn multipolygon(geometry: &serde_json::Value) -> MultiPolygon<f64> {
        match geometry["type"].as_str().unwrap() {
            "Polygon" => MultiPolygon::new(vec![polygon(&geometry["coordinates"])]),
            "MultiPolygon" => MultiPolygon::new(
                geometry["coordinates"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(polygon)
                    .collect(),
            ),
            other => panic!("unexpected geometry {other}"),
        }
    }

    #[test]
    fn committed_fixtures_match_generator() {
        let dir = tempfile::tempdir().unwrap();
        let summary = write_county(dir.path(), 7).unwrap();
        let committed: BTreeSet<String> = std::fs::read_dir(fixtures())
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_file())
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        let written: BTreeSet<String> = summary.files.iter().cloned().collect();
        assert_eq!(
            committed, written,
            "fixtures/ holds other files than the generator writes"
        );
        for name in &summary.files {
            let fresh = std::fs::read(dir.path().join(name)).unwrap();
            let old = std::fs::read(fixtures().join(name)).unwrap();
            assert!(
                fresh == old,
                "fixtures/{name} differs from the generator; run `cargo run -- fixtures --out fixtures`"
            );
        }
        let total: u64 = summary
            .files
            .iter()
            .map(|n| std::fs::metadata(fixtures().join(n)).unwrap().len())
            .sum();
        assert!(total < 3_000_000, "fixtures are {total} bytes");
    }

    #[test]
    fn another_seed_changes_data_but_not_shapes() {
        let dir = tempfile::tempdir().unwrap();
        write_county(dir.path(), 8).unwrap();
        let other = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(other("beats.geojson"), read("beats.geojson"));
        assert_ne!(other("incidents.csv"), read("incidents.csv"));
    }

    #[test]
    fn beats_tile_the_county() {
        let county = multipolygon(&features("county.geojson")[0]["geometry"]);
        let beats: Vec<(String, MultiPolygon<f64>)> = features("beats.geojson")
            .iter()
            .map(|f| {
                (
                    f["properties"]["id"].as_str().unwrap().to_owned(),
                    multipolygon(&f["geometry"]),
                )
            })
            .collect();
        assert_eq!(beats.len(), 12);
        let total: f64 = beats.iter().map(|(_, b)| b.unsigned_area()).sum();
        assert!(
            (total - county.unsigned_area()).abs() < 1e-9 * county.unsigned_area(),
            "areas differ"
        );
        assert!(
            beats.iter().any(|(_, b)| b.0.len() > 1),
            "no MultiPolygon beat"
        );
        assert!(
            beats
                .iter()
                .any(|(_, b)| b.0.iter().any(|p| !p.interiors().is_empty())),
            "no beat with a hole"
        );
        // Points off any vertex line: each lies in exactly one beat.
        let ((x0, y0), (x1, y1)) = ((-89.26, 39.87), (-88.53, 40.33));
        for i in 0..120 {
            for j in 0..80 {
                let pt = Point::new(
                    x0 + (x1 - x0) * (f64::from(i) + 0.37) / 120.0,
                    y0 + (y1 - y0) * (f64::from(j) + 0.41) / 80.0,
                );
                let n = beats.iter().filter(|(_, b)| b.contains(&pt)).count();
                assert_eq!(
                    n,
                    usize::from(county.contains(&pt)),
                    "{pt:?} is in {n} beats"
                );
            }
        }
        // Small beats in town: the enclave and a few others around it.
        let small = beats
            .iter()
            .filter(|(_, b)| b.unsigned_area() < 0.002)
            .count();
        assert!(small >= 4, "{small} town beats");
    }

    #[test]
    fn zones_do_not_overlap_and_have_two_groups() {
        let zones: Vec<(serde_json::Value, MultiPolygon<f64>)> = features("zones.geojson")
            .into_iter()
            .map(|f| (f["properties"].clone(), multipolygon(&f["geometry"])))
            .collect();
        assert_eq!(zones.len(), 6);
        for (i, (pi, a)) in zones.iter().enumerate() {
            assert_eq!(pi["groups"].as_array().unwrap().len(), 2);
            for (_, b) in &zones[i + 1..] {
                assert!(!a.intersects(b), "zone {} overlaps another", pi["id"]);
            }
        }
    }

    /// Road nodes (id -> "lat,lon") and ways (node ids, tags) of roads.osm.
    type Osm = (
        BTreeMap<u64, (String, String)>,
        Vec<(Vec<u64>, BTreeMap<String, String>)>,
    );

    fn parse_osm(text: &str) -> Osm {
        let mut reader = quick_xml::Reader::from_str(text);
        let (mut nodes, mut ways) = (BTreeMap::new(), Vec::new());
        let mut in_way = false;
        let attr = |e: &quick_xml::events::BytesStart<'_>, k: &[u8]| -> String {
            e.attributes()
                .map(|a| a.unwrap())
                .find(|a| a.key.as_ref() == k)
                .unwrap()
                .unescape_value()
                .unwrap()
                .into_owned()
        };
        loop {
            let event = reader.read_event().unwrap();
            // Road nodes are bare; a node with tags is a named place, left out.
            let bare = matches!(event, Event::Empty(_));
            match event {
                Event::Eof => break,
                Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                    b"osm" => assert_eq!(attr(&e, b"version"), "0.6"),
                    b"node" if bare => {
                        nodes.insert(
                            attr(&e, b"id").parse().unwrap(),
                            (attr(&e, b"lat"), attr(&e, b"lon")),
                        );
                    }
                    b"way" => {
                        in_way = true;
                        ways.push((Vec::new(), BTreeMap::new()));
                    }
                    b"nd" => ways
                        .last_mut()
                        .unwrap()
                        .0
                        .push(attr(&e, b"ref").parse().unwrap()),
                    // Place nodes carry tags too; only a way's are kept.
                    b"tag" if in_way => {
                        ways.last_mut()
                            .unwrap()
                            .1
                            .insert(attr(&e, b"k"), attr(&e, b"v"));
                    }
                    _ => {}
                },
                Event::End(e) if e.name().as_ref() == b"way" => in_way = false,
                _ => {}
            }
        }
        (nodes, ways)
    }

    fn reached(adj: &BTreeMap<u64, Vec<u64>>, start: u64) -> usize {
        let mut seen = BTreeSet::from([start]);
        let mut queue = VecDeque::from([start]);
        while let Some(v) = queue.pop_front() {
            for &w in adj.get(&v).into_iter().flatten() {
                if seen.insert(w) {
                    queue.push_back(w);
                }
            }
        }
        seen.len()
    }

    #[test]
    fn roads_are_one_strongly_connected_component() {
        let (nodes, ways) = parse_osm(&read("roads.osm"));
        assert!((1000..5000).contains(&nodes.len()), "{} nodes", nodes.len());
        let (mut fwd, mut back): (BTreeMap<u64, Vec<u64>>, BTreeMap<u64, Vec<u64>>) =
            Default::default();
        let mut used = BTreeSet::new();
        let mut oneways = 0;
        for (nds, tags) in &ways {
            let oneway = match tags.get("oneway").map(String::as_str) {
                Some("yes") => true,
                Some("no") => false,
                _ => tags["highway"] == "motorway",
            };
            oneways += usize::from(oneway);
            for pair in nds.windows(2) {
                assert!(nodes.contains_key(&pair[0]) && nodes.contains_key(&pair[1]));
                fwd.entry(pair[0]).or_default().push(pair[1]);
                back.entry(pair[1]).or_default().push(pair[0]);
                if !oneway {
                    fwd.entry(pair[1]).or_default().push(pair[0]);
                    back.entry(pair[0]).or_default().push(pair[1]);
                }
            }
            used.extend(nds.iter().copied());
        }
        assert_eq!(used.len(), nodes.len(), "every node belongs to a way");
        assert!(oneways >= 4, "{oneways} one-way streets");
        let start = *nodes.keys().next().unwrap();
        assert_eq!(
            reached(&fwd, start),
            nodes.len(),
            "not every node is reachable"
        );
        assert_eq!(
            reached(&back, start),
            nodes.len(),
            "not every node reaches back"
        );
        let classes: BTreeSet<&str> = ways.iter().map(|(_, t)| t["highway"].as_str()).collect();
        for class in [
            "motorway",
            "primary",
            "secondary",
            "tertiary",
            "unclassified",
            "residential",
        ] {
            assert!(classes.contains(class), "no {class} road");
        }
        let speeds: BTreeSet<&str> = ways
            .iter()
            .filter_map(|(_, t)| t.get("maxspeed").map(String::as_str))
            .collect();
        assert!(
            speeds.contains("30 mph") && speeds.contains("50"),
            "{speeds:?}"
        );
    }

    #[test]
    fn checkpoints_and_stations_sit_on_road_nodes() {
        let (nodes, _) = parse_osm(&read("roads.osm"));
        let on_road: BTreeSet<(String, String)> = nodes.into_values().collect();
        let at = |f: &serde_json::Value| {
            let c = &f["geometry"]["coordinates"];
            (
                format!("{:.6}", c[1].as_f64().unwrap()),
                format!("{:.6}", c[0].as_f64().unwrap()),
            )
        };
        let cps = features("checkpoints.geojson");
        assert_eq!(cps.len(), 17);
        let kinds: Vec<&str> = cps
            .iter()
            .map(|f| f["properties"]["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds.iter().filter(|k| **k == "patrol").count(), 13);
        assert_eq!(kinds.iter().filter(|k| **k == "entry").count(), 4);
        for f in cps.iter().chain(&features("stations.geojson")) {
            assert!(
                on_road.contains(&at(f)),
                "{} is not on a road node",
                f["properties"]["id"]
            );
        }
    }

    #[test]
    fn response_rule_fails_only_in_pockets() {
        let county = County::generate(7);
        let share = county.coverage.uncovered_share();
        assert!((0.01..0.10).contains(&share), "uncovered share {share}");
        // The town and the villages with a station are always covered.
        for (q, ok) in &county.coverage.points {
            if q.x.abs() < 10.0 && q.y.abs() < 10.0 {
                assert!(ok, "{q:?} near Ashford is not covered");
            }
        }
    }

    #[test]
    fn roster_follows_levels_and_never_doubles_a_unit() {
        let text = read("roster.csv");
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect())
            .collect();
        let dates: BTreeSet<&str> = rows.iter().map(|r| r[0]).collect();
        assert_eq!(dates.len(), 28);
        assert_eq!(dates.first(), Some(&"2026-11-02"));
        let mut per_slot: BTreeMap<(&str, &str, &str), (usize, u8)> = BTreeMap::new();
        let mut busy = BTreeSet::new();
        for r in &rows {
            assert!(
                busy.insert((r[0], r[3], r[1])),
                "{} twice in {} {}",
                r[1],
                r[0],
                r[3]
            );
            let e = per_slot
                .entry((r[0], r[2], r[3]))
                .or_insert((0, r[7].parse().unwrap()));
            e.0 += 1;
        }
        let units = read("units.csv");
        let force = |station: &str| {
            units
                .lines()
                .filter(|l| l.split(',').nth(2) == Some(station))
                .count()
        };
        for ((_, zone, _), (n, level)) in &per_slot {
            let z = ZONES.iter().find(|z| z.id == *zone).unwrap();
            let zones = ZONES.iter().filter(|o| o.station == z.station).count();
            assert_eq!(
                *n,
                units_needed(force(z.station), zones, *level),
                "zone {zone} level {level}"
            );
        }
        let levels: Vec<u8> = per_slot.values().map(|v| v.1).collect();
        let count = |l| levels.iter().filter(|&&x| x == l).count();
        assert!(count(3) > count(2) && count(2) > count(1) && count(1) > 0);
        assert!(rows.iter().any(|r| r[3] == "night"
            && r[4] == "23:00"
            && r[5] == "05:00"
            && r[1].starts_with('B')));
    }

    #[test]
    fn incidents_are_sorted_concentrated_and_plausible() {
        let text = read("incidents.csv");
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect())
            .collect();
        assert!((4000..=8000).contains(&rows.len()));
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap();
        let mut dispatched = 0;
        let mut night = 0;
        for w in rows.windows(2) {
            assert!(t(w[0][1]) <= t(w[1][1]), "not sorted at {}", w[1][0]);
        }
        for r in &rows {
            assert_eq!(r.len(), 9);
            let received = t(r[1]);
            if !r[6].is_empty() {
                dispatched += 1;
                let (d, a) = (t(r[7]), t(r[8]));
                assert!(
                    received < d && d < a && a - d < chrono::Duration::hours(1),
                    "{}",
                    r[0]
                );
            }
            let hour: u32 = r[1][11..13].parse().unwrap();
            if !(4..20).contains(&hour) {
                night += 1;
            }
        }
        assert!(rows.first().unwrap()[1].starts_with("2025-11-23"));
        assert!(rows.last().unwrap()[1].starts_with("2026-11-22"));
        let share = f64::from(dispatched) / rows.len() as f64;
        assert!((0.5..0.7).contains(&share), "dispatched share {share}");
        // 8 of 24 hours hold far more than a third of the incidents.
        assert!(f64::from(night) / rows.len() as f64 > 0.45);
        // Half of the incidents sit in about 5% of the 1 km squares of the county.
        let mut per_cell: BTreeMap<(i64, i64), usize> = BTreeMap::new();
        for r in &rows {
            let (lat, lon): (f64, f64) = (r[2].parse().unwrap(), r[3].parse().unwrap());
            *per_cell
                .entry(((lon * 85.0).floor() as i64, (lat * 111.0).floor() as i64))
                .or_default() += 1;
        }
        let mut counts: Vec<usize> = per_cell.into_values().collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let top: usize = counts.iter().take(150).sum();
        assert!(top * 2 > rows.len(), "top 5% of cells hold {top}");
    }
}
