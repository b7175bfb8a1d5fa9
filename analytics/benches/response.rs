//! The response rule on a county-size synthetic road network: a 316 × 316 lattice (99,856
//! nodes, about 63 km × 63 km with 200 m blocks; every tenth street an arterial at 60 km/h,
//! every twentieth row one-way) under all of its resolution-9 H3 cells.
//!
//! - `grid`: tiling the outline and snapping every cell to its nearest node (done once a run);
//! - `static_50_sources`: one evaluation from 50 sources over every cell;
//! - `week_168_hours`: the dynamic rule for a week, 50 units with a fix every minute, one
//!   evaluation per hour.
//!
//! Run with `cargo bench --workspace --locked --bench response`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use analytics::response::{Grid, Rule, Source, Tracks, evaluate, hourly_coverage};
use analytics::roads::{RoadNetwork, SpeedTable};
use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use geo::{LineString, MultiPolygon, Polygon};

const SIDE: usize = 316;
const LAT0: f64 = 39.8;
const LON0: f64 = -89.3;
const DLAT: f64 = 0.0018;
const DLON: f64 = 0.00235;

fn lattice_osm() -> String {
    let mut xml = String::from("<osm version=\"0.6\">\n");
    for r in 0..SIDE {
        for c in 0..SIDE {
            let id = r * SIDE + c + 1;
            let (lat, lon) = (LAT0 + r as f64 * DLAT, LON0 + c as f64 * DLON);
            writeln!(xml, "<node id=\"{id}\" lat=\"{lat:.7}\" lon=\"{lon:.7}\"/>").ok();
        }
    }
    let mut way = 0;
    let mut street =
        |xml: &mut String, nodes: &mut dyn Iterator<Item = usize>, main: bool, oneway: bool| {
            way += 1;
            write!(xml, "<way id=\"{way}\">").ok();
            for n in nodes {
                write!(xml, "<nd ref=\"{n}\"/>").ok();
            }
            let class = if main { "primary" } else { "residential" };
            write!(xml, "<tag k=\"highway\" v=\"{class}\"/>").ok();
            if oneway {
                write!(xml, "<tag k=\"oneway\" v=\"yes\"/>").ok();
            }
            xml.push_str("</way>\n");
        };
    for r in 0..SIDE {
        let mut row = (0..SIDE).map(|c| r * SIDE + c + 1);
        street(&mut xml, &mut row, r % 10 == 0, r % 20 == 5);
    }
    for c in 0..SIDE {
        let mut col = (0..SIDE).map(|r| r * SIDE + c + 1);
        street(&mut xml, &mut col, c % 10 == 0, false);
    }
    xml.push_str("</osm>\n");
    xml
}

fn outline() -> MultiPolygon<f64> {
    let (s, n) = (LAT0, LAT0 + (SIDE - 1) as f64 * DLAT);
    let (w, e) = (LON0, LON0 + (SIDE - 1) as f64 * DLON);
    MultiPolygon(vec![Polygon::new(
        LineString::from(vec![(w, s), (e, s), (e, n), (w, n), (w, s)]),
        vec![],
    )])
}

/// A small deterministic generator (64-bit LCG), so every run uses the same points.
struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn point(&mut self) -> (f64, f64) {
        let span = (SIDE - 1) as f64;
        (
            LAT0 + self.unit() * span * DLAT,
            LON0 + self.unit() * span * DLON,
        )
    }
}

fn rule() -> Rule {
    Rule {
        max_time_s: 30.0 * 60.0,
        max_dist_m: 30_000.0,
        offroad_mps: 15.0 / 3.6,
    }
}

fn bench(c: &mut Criterion) {
    let net = RoadNetwork::from_osm_reader(lattice_osm().as_bytes(), &SpeedTable::defaults())
        .expect("the lattice is a road network");
    let outline = outline();
    let grid = Grid::new(&net, &outline, 9).expect("the outline tiles");
    eprintln!(
        "lattice: {} nodes, {} edges, {} res-9 cells",
        net.node_count(),
        net.edge_count(),
        grid.cells().len()
    );
    let mut rng = Lcg(7);
    let sources: Vec<Source> = (0..50)
        .map(|i| {
            let (lat, lon) = rng.point();
            Source {
                id: format!("S{i}"),
                lat,
                lon,
            }
        })
        .collect();
    let rule = rule();

    let mut g = c.benchmark_group("response");
    g.sample_size(10);
    g.bench_function("grid", |b| {
        b.iter(|| Grid::new(black_box(&net), &outline, 9).expect("tiles"));
    });
    g.bench_function("static_50_sources", |b| {
        b.iter(|| evaluate(black_box(&net), &grid, &sources, &rule).expect("evaluates"));
    });

    // 50 units drifting by up to ~100 m a minute for a week.
    let t0 = Utc
        .with_ymd_and_hms(2026, 11, 2, 6, 0, 0)
        .single()
        .expect("a valid instant");
    let minutes = 7 * 24 * 60;
    let mut fixes = Vec::with_capacity(50 * minutes);
    for u in 0..50 {
        let (mut lat, mut lon) = rng.point();
        for m in 0..minutes {
            lat += (rng.unit() - 0.5) * 0.0018;
            lon += (rng.unit() - 0.5) * 0.0024;
            let t = t0.timestamp_millis() + m as i64 * 60_000;
            fixes.push((format!("U{u}"), t, lat, lon));
        }
    }
    let tracks = Tracks::from_fixes(fixes);
    let t1 = t0 + chrono::Duration::hours(168);
    g.measurement_time(Duration::from_secs(60));
    g.bench_function("week_168_hours", |b| {
        b.iter(|| {
            let hours =
                hourly_coverage(black_box(&net), &grid, &rule, &tracks, t0, t1).expect("evaluates");
            assert_eq!(hours.len(), 168);
            hours
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
