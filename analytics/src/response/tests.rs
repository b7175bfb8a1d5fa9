//! Tests of the response rule: exact answers on a hand-built network, the fixture county
//! against what `fixtures/README.md` says, the real Logan Square extract (XML and PBF), the
//! dynamic rule on a Parquet store written here, and the job's output files.

// Panicking on a broken fixture is the point of a test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use devkit::testkit::{fixtures, osmium, shared_data};
use model::jurisdiction::{self, Incident, Jurisdiction};

use super::*;
use crate::distance::haversine_m;
use crate::roads::SpeedTable;

/// A loop A→B→C→D→A with one-way sides (A→B at 72 km/h, C→D and D→A at 36 km/h), B–C
/// two-way at 36 km/h, a slow two-way diagonal A–C (10 km/h), a bridge B–E and a spur E–F
/// (36 km/h), and an island H–I that is not connected to the rest.
const TOWN: &str = r#"<osm version="0.6">
 <node id="1" lat="0" lon="0"/>
 <node id="2" lat="0" lon="0.01"/>
 <node id="3" lat="0.01" lon="0.01"/>
 <node id="4" lat="0.01" lon="0"/>
 <node id="5" lat="0" lon="0.02"/>
 <node id="6" lat="0" lon="0.03"/>
 <node id="8" lat="0.05" lon="0.05"/>
 <node id="9" lat="0.05" lon="0.051"/>
 <way id="11"><nd ref="1"/><nd ref="2"/><tag k="highway" v="primary"/><tag k="oneway" v="yes"/><tag k="maxspeed" v="72"/></way>
 <way id="12"><nd ref="2"/><nd ref="3"/><tag k="highway" v="residential"/><tag k="maxspeed" v="36"/></way>
 <way id="13"><nd ref="3"/><nd ref="4"/><nd ref="1"/><tag k="highway" v="residential"/><tag k="oneway" v="yes"/><tag k="maxspeed" v="36"/></way>
 <way id="14"><nd ref="1"/><nd ref="3"/><tag k="highway" v="living_street"/><tag k="maxspeed" v="10"/></way>
 <way id="15"><nd ref="2"/><nd ref="5"/><nd ref="6"/><tag k="highway" v="residential"/><tag k="maxspeed" v="36"/></way>
 <way id="16"><nd ref="8"/><nd ref="9"/><tag k="highway" v="residential"/></way>
</osm>"#;

const A: (f64, f64) = (0.0, 0.0);
const B: (f64, f64) = (0.0, 0.01);
const C: (f64, f64) = (0.01, 0.01);
const D: (f64, f64) = (0.01, 0.0);
const E: (f64, f64) = (0.0, 0.02);
const F: (f64, f64) = (0.0, 0.03);
const ISLAND: (f64, f64) = (0.05, 0.05);

fn town() -> RoadNetwork {
    RoadNetwork::from_osm_reader(TOWN.as_bytes(), &SpeedTable::defaults()).unwrap()
}

fn len(a: (f64, f64), b: (f64, f64)) -> f64 {
    haversine_m(a.0, a.1, b.0, b.1)
}

fn source(id: &str, p: (f64, f64)) -> Source {
    Source {
        id: id.to_owned(),
        lat: p.0,
        lon: p.1,
    }
}

/// Resolution-15 cells (under a metre across) at these points.
fn cells_at(net: &RoadNetwork, points: &[(f64, f64)]) -> Grid {
    let cells = points
        .iter()
        .map(|&(lat, lon)| LatLng::new(lat, lon).unwrap().to_cell(Resolution::Fifteen));
    Grid::from_cells(net, cells).unwrap()
}

fn rule(minutes: f64, km: f64) -> Rule {
    Rule {
        max_time_s: minutes * 60.0,
        max_dist_m: km * 1000.0,
        offroad_mps: 15.0 / 3.6,
    }
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "{what}: {actual} != {expected}"
    );
}

/// The verdict for the cell nearest `p`, with its expected road time and distance to its node
/// (off-road stretch added here).
fn check_cell(
    grid: &Grid,
    reach: &[CellReach],
    p: (f64, f64),
    road: (f64, f64),
    node: (f64, f64),
    rule: &Rule,
) -> CellReach {
    let i = grid.locate(p.0, p.1).unwrap();
    let c = grid.cells()[i];
    let off = haversine_m(c.lat, c.lon, node.0, node.1);
    assert_close(c.offroad_m, off, "off-road stretch");
    let r = reach[i];
    assert_close(r.time_s, road.0 + off / rule.offroad_mps, "time");
    assert_close(r.dist_m, road.1 + off, "distance");
    assert_eq!(
        r.pass,
        r.time_s <= rule.max_time_s && r.dist_m <= rule.max_dist_m
    );
    r
}

#[test]
fn town_from_one_station_exact() {
    let net = town();
    // The island is not in the network: 6 nodes, 2 components.
    assert_eq!((net.node_count(), net.report().components), (6, 2));
    let points = [A, B, C, D, E, F, ISLAND];
    let grid = cells_at(&net, &points);
    let r = rule(10.0, 3.0);
    let reach = evaluate(&net, &grid, &[source("S", A)], &r).unwrap();

    let (ab, bc, cd, be, ef) = (len(A, B), len(B, C), len(C, D), len(B, E), len(E, F));
    let (fast, slow) = (72.0 / 3.6, 36.0 / 3.6);
    let t_b = ab / fast;
    let t_c = t_b + bc / slow;
    let t_d = t_c + cd / slow;
    let t_e = t_b + be / slow;
    let t_f = t_e + ef / slow;
    let a = check_cell(&grid, &reach, A, (0.0, 0.0), A, &r);
    let b = check_cell(&grid, &reach, B, (t_b, ab), B, &r);
    // C: the fastest route is A→B→C (2.2 km); the 1.6 km diagonal at 10 km/h is slower, and
    // the distance reported is that of the fastest route.
    let c = check_cell(&grid, &reach, C, (t_c, ab + bc), C, &r);
    assert!(len(A, C) < ab + bc && len(A, C) / (10.0 / 3.6) > t_c);
    let d = check_cell(&grid, &reach, D, (t_d, ab + bc + cd), D, &r);
    // Across the bridge B–E.
    let e = check_cell(&grid, &reach, E, (t_e, ab + be), E, &r);
    let f = check_cell(&grid, &reach, F, (t_f, ab + be + ef), F, &r);
    // The island snaps to the nearest node of the network, F, and covers the rest off-road.
    let island = check_cell(&grid, &reach, ISLAND, (t_f, ab + be + ef), F, &r);
    let passes: Vec<bool> = [a, b, c, d, e, f, island].iter().map(|x| x.pass).collect();
    // D and F are within 10 minutes but more than 3 km; the island is neither.
    assert_eq!(passes, [true, true, true, false, true, false, false]);
    assert!(d.time_s < 600.0 && d.dist_m > 3000.0);
    assert!(island.time_s > 1200.0);
    assert!(reach.iter().all(|x| x.source == 0));

    // With 30 minutes and 20 km the island passes too: 24 minutes at 15 km/h plus the drive.
    let wide = rule(30.0, 20.0);
    let reach = evaluate(&net, &grid, &[source("S", A)], &wide).unwrap();
    assert!(reach.iter().all(|x| x.pass));
}

#[test]
fn town_one_way_streets_make_the_rule_asymmetric() {
    let net = town();
    let grid = cells_at(&net, &[A, B, C, D, E, F]);
    let r = rule(10.0, 5.0);
    let from_f = evaluate(&net, &grid, &[source("S", F)], &r).unwrap();
    let slow = 36.0 / 3.6;
    // From F to A there is no way back along A→B: F→E→B→C→D→A.
    let road = len(F, E) + len(E, B) + len(B, C) + len(C, D) + len(D, A);
    let t = (((len(F, E) / slow + len(E, B) / slow) + len(B, C) / slow) + len(C, D) / slow)
        + len(D, A) / slow;
    let to_a = check_cell(&grid, &from_f, A, (t, road), A, &r);
    assert!(!to_a.pass, "5.6 km is over 5 km");
    let from_a = evaluate(&net, &grid, &[source("S", A)], &r).unwrap();
    let i = grid.locate(F.0, F.1).unwrap();
    assert!(from_a[i].time_s < to_a.time_s / 1.5);
}

#[test]
fn town_two_sources_and_an_offroad_station() {
    let net = town();
    let grid = cells_at(&net, &[A, B, C, D, E, F]);
    let r = rule(10.0, 3.0);
    // A second station 200 m north of F: it pays the stretch to F at 15 km/h (48 s).
    let north_of_f = (200.0 / len((0.0, 0.0), (0.01, 0.0)) * 0.01, 0.03);
    let off = len(north_of_f, F);
    let sources = [source("S", A), source("T", north_of_f)];
    let reach = evaluate(&net, &grid, &sources, &r).unwrap();
    let slow = 36.0 / 3.6;
    let t_f_from_t = off / r.offroad_mps;
    let e = check_cell(
        &grid,
        &reach,
        E,
        (t_f_from_t + len(F, E) / slow, off + len(F, E)),
        E,
        &r,
    );
    assert_eq!(e.source, 1);
    let f = check_cell(&grid, &reach, F, (t_f_from_t, off), F, &r);
    assert_eq!(f.source, 1);
    // B is quicker from A (56 s) than from T (48 + 222 s).
    let b = check_cell(&grid, &reach, B, (len(A, B) / 20.0, len(A, B)), B, &r);
    assert_eq!(b.source, 0);
    let passes: Vec<bool> = reach.iter().map(|x| x.pass).collect();
    // Cells are in index order; only D (3.3 km from A, 4.4 km from T) still fails.
    let d = grid.locate(D.0, D.1).unwrap();
    assert!(
        passes.iter().enumerate().all(|(i, &p)| p == (i != d)),
        "{passes:?}"
    );
    assert!(matches!(
        evaluate(&net, &grid, &[], &r),
        Err(ResponseError::NoSources)
    ));
}

#[test]
fn scenario_adds_moves_and_posts() {
    let stations = vec![
        jurisdiction::Station {
            id: "ST1".into(),
            name: "one".into(),
            kind: jurisdiction::StationKind::Central,
            lat: A.0,
            lon: A.1,
        },
        jurisdiction::Station {
            id: "ST2".into(),
            name: "two".into(),
            kind: jurisdiction::StationKind::Rural,
            lat: B.0,
            lon: B.1,
        },
    ];
    let s = Scenario {
        changes: vec![
            Change::AddStation { lat: E.0, lon: E.1 },
            Change::MoveStation {
                id: "ST2".into(),
                lat: F.0,
                lon: F.1,
            },
            Change::PostUnit { lat: C.0, lon: C.1 },
            Change::AddStation { lat: D.0, lon: D.1 },
        ],
    };
    let got = s.sources(&stations).unwrap();
    let ids: Vec<_> = got.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["ST1", "ST2", "NEW1", "POST1", "NEW2"]);
    assert_eq!((got[1].lat, got[1].lon), F);
    let bad = Scenario {
        changes: vec![Change::MoveStation {
            id: "NEW1".into(),
            lat: 0.0,
            lon: 0.0,
        }],
    };
    assert!(matches!(
        bad.sources(&stations),
        Err(ResponseError::UnknownStation(id)) if id == "NEW1"
    ));

    // Adding a source never makes a cell slower; posting one at D makes D pass.
    let net = town();
    let grid = cells_at(&net, &[A, B, C, D, E, F]);
    let r = rule(10.0, 3.0);
    let before = evaluate(
        &net,
        &grid,
        &Scenario::default().sources(&stations[..1]).unwrap(),
        &r,
    )
    .unwrap();
    let post_d = Scenario {
        changes: vec![Change::PostUnit { lat: D.0, lon: D.1 }],
    };
    let after = evaluate(&net, &grid, &post_d.sources(&stations[..1]).unwrap(), &r).unwrap();
    for (x, y) in before.iter().zip(&after) {
        assert!(y.time_s <= x.time_s);
    }
    let d = grid.locate(D.0, D.1).unwrap();
    assert!(!before[d].pass && after[d].pass && after[d].source == 1);
}

#[test]
fn failing_areas_cluster_adjacent_cells() {
    let net = town();
    // A res-9 disk around A and one far cell; everything beyond 3 minutes fails.
    let centre = LatLng::new(0.0, 0.0).unwrap().to_cell(Resolution::Nine);
    let far = LatLng::new(ISLAND.0, ISLAND.1)
        .unwrap()
        .to_cell(Resolution::Nine);
    let mut cells: Vec<CellIndex> = centre.grid_disk(6);
    cells.push(far);
    let grid = Grid::from_cells(&net, cells).unwrap();
    let r = rule(3.0, 100.0);
    let reach = evaluate(&net, &grid, &[source("S", A)], &r).unwrap();
    let areas = failing_areas(&grid, &reach).unwrap();
    let failing: usize = reach.iter().filter(|x| !x.pass).count();
    assert!(
        failing > 1 && areas.len() >= 2,
        "{failing} failing, {} areas",
        areas.len()
    );
    assert_eq!(areas.iter().map(|a| a.cells.len()).sum::<usize>(), failing);
    let island = areas.iter().find(|a| a.cells == [far]).unwrap();
    assert_eq!(island.worst_cell, far);
    for a in &areas {
        let times: Vec<f64> = a
            .cells
            .iter()
            .map(|c| reach[grid.position[c]].time_s)
            .collect();
        assert!(times.iter().all(|&t| t > r.max_time_s));
        assert_eq!(a.worst_time_s, times.iter().copied().fold(0.0, f64::max));
        assert!(!a.outline.0.is_empty());
        // No cell of another area touches this one.
        for other in areas.iter().filter(|o| !std::ptr::eq(*o, a)) {
            for c in &a.cells {
                let ring: Vec<CellIndex> = c.grid_disk(1);
                assert!(other.cells.iter().all(|o| !ring.contains(o)));
            }
        }
    }
    for w in areas.windows(2) {
        assert!(w[0].area_km2 >= w[1].area_km2);
    }
    let summary = summarize(
        &grid,
        &reach,
        [(A.0, A.1), (ISLAND.0, ISLAND.1), (40.0, -88.0)],
        Some(&[(A.0, A.1, 100.0), (ISLAND.0, ISLAND.1, 300.0)]),
    )
    .unwrap();
    assert_eq!(summary.incidents.total, 2.0);
    assert_eq!(summary.incidents.outside, 1.0);
    assert_eq!(summary.incidents.share(), Some(0.5));
    assert_eq!(summary.population.unwrap().share(), Some(0.25));
    assert_eq!(summary.failing_areas, areas);
}

struct County {
    jurisdiction: Jurisdiction,
    net: RoadNetwork,
    grid: Grid,
    rule: Rule,
}

fn county(res: u8, factor: f64) -> County {
    let j = Jurisdiction::load(&fixtures()).unwrap();
    let speeds = SpeedTable::for_settings(j.settings())
        .unwrap()
        .with_factor(factor)
        .unwrap();
    let net = RoadNetwork::load(&j.roads_path().unwrap(), &speeds).unwrap();
    let grid = Grid::new(&net, j.county(), res).unwrap();
    let rule = Rule::from_settings(&j.settings().response);
    County {
        jurisdiction: j,
        net,
        grid,
        rule,
    }
}

/// `(x, y)` in km east and north of the county centre (lat 40.10, lon -88.90).
fn local_km(lat: f64, lon: f64) -> (f64, f64) {
    let y = haversine_m(40.10, -88.90, lat, -88.90) / 1000.0 * (lat - 40.10).signum();
    let x = haversine_m(lat, -88.90, lat, lon) / 1000.0 * (lon + 88.90).signum();
    (x, y)
}

#[test]
fn fixture_county_fails_where_the_readme_says() {
    let c = county(9, 1.0);
    let sources = Scenario::default()
        .sources(c.jurisdiction.stations())
        .unwrap();
    let reach = evaluate(&c.net, &c.grid, &sources, &c.rule).unwrap();
    let share = passing_area_share(&c.grid, &reach);
    // The README's 1 km check: 6.1% of points fail.
    assert!((0.90..=0.97).contains(&share), "passing share {share}");
    // Failing area (km²) per ninth of the county, rows north to south, columns west to east;
    // x thirds split at -10 and 10 km, y thirds at -8.33 and 8.33 km.
    let mut ninths = [[0.0f64; 3]; 3];
    for (cell, r) in c.grid.cells().iter().zip(&reach) {
        // The drive is never shorter than the straight line from its station.
        let s = &sources[r.source];
        let straight = haversine_m(s.lat, s.lon, cell.lat, cell.lon);
        assert!(
            r.dist_m >= straight * (1.0 - 1e-9),
            "{}: {} < {straight}",
            cell.cell,
            r.dist_m
        );
        if !r.pass {
            let (x, y) = local_km(cell.lat, cell.lon);
            let third = |v: f64, edge: f64| usize::from(v >= -edge) + usize::from(v >= edge);
            ninths[2 - third(y, 25.0 / 3.0)][third(x, 10.0)] += cell.area_km2;
        }
    }
    eprintln!("failing km² by ninth (N to S, W to E): {ninths:.1?}");
    // The README's 1 km check: failing points per ninth (each stands for about 1 km²).
    let readme = [[47.0, 33.0, 0.0], [0.0, 0.0, 9.0], [60.0, 27.0, 8.0]];
    for (row, expected) in ninths.iter().zip(readme) {
        for (&got, want) in row.iter().zip(expected) {
            if want == 0.0 {
                assert!(got < 1.0, "{ninths:.1?}");
            } else {
                assert!(got > want * 0.5 && got < want * 1.5, "{ninths:.1?}");
            }
        }
    }
    // Ashford itself passes: the station is in the town.
    let town = c.grid.locate(40.10, -88.90).unwrap();
    assert!(reach[town].pass && reach[town].time_s < 300.0);
}

#[test]
fn fixture_county_times_fall_with_speed() {
    let slow = county(8, 1.0);
    let fast = county(8, 1.5);
    let sources = Scenario::default()
        .sources(slow.jurisdiction.stations())
        .unwrap();
    let a = evaluate(&slow.net, &slow.grid, &sources, &slow.rule).unwrap();
    let b = evaluate(&fast.net, &fast.grid, &sources, &fast.rule).unwrap();
    assert_eq!(slow.grid.cells(), fast.grid.cells());
    let mut faster = 0;
    for ((x, y), cell) in a.iter().zip(&b).zip(slow.grid.cells()) {
        let off = cell.offroad_m / slow.rule.offroad_mps;
        // The same routes, driven 1.5 times as fast (the off-road stretch is not faster).
        assert!(y.time_s <= x.time_s + 1e-9);
        let start = slow
            .net
            .nearest_node(sources[x.source].lat, sources[x.source].lon)
            .unwrap()
            .1
            / slow.rule.offroad_mps;
        if x.source == y.source {
            assert_close(
                y.time_s - off - start,
                (x.time_s - off - start) / 1.5,
                "scaled road time",
            );
        }
        faster += usize::from(y.time_s < x.time_s);
    }
    assert!(faster * 10 > a.len() * 9);
    assert!(passing_area_share(&fast.grid, &b) > passing_area_share(&slow.grid, &a));
}

#[test]
fn fixture_what_if_a_station_in_harlan_closes_the_north_pocket() {
    let c = county(8, 1.0);
    let base = Scenario::default()
        .sources(c.jurisdiction.stations())
        .unwrap();
    let before = evaluate(&c.net, &c.grid, &base, &c.rule).unwrap();
    // Harlan is at (-7, 18) km: 40.262 N, -88.982 E.
    let harlan = Scenario {
        changes: vec![Change::AddStation {
            lat: 40.10 + 18.0 / 111.2,
            lon: -88.90 - 7.0 / 85.1,
        }],
    };
    let after = evaluate(
        &c.net,
        &c.grid,
        &harlan.sources(c.jurisdiction.stations()).unwrap(),
        &c.rule,
    )
    .unwrap();
    let north = |reach: &[CellReach]| {
        c.grid
            .cells()
            .iter()
            .zip(reach)
            .filter(|(cell, r)| !r.pass && local_km(cell.lat, cell.lon).1 > 15.0)
            .count()
    };
    assert!(north(&before) > 0);
    assert!(
        north(&after) < north(&before),
        "{} -> {}",
        north(&before),
        north(&after)
    );
    assert!(passing_area_share(&c.grid, &after) > passing_area_share(&c.grid, &before));
}

/// The Logan Square OSM extract of the shared data (the test fails when it is missing).
fn logan_osm() -> PathBuf {
    shared_data("chicago-osm-logan-square").join("chicago_logan_square.osm")
}

/// The `<bounds>` box of the Logan Square extract as an outline.
fn logan_outline() -> MultiPolygon<f64> {
    let (s, n, w, e) = (41.9247, 41.9429, -87.7272, -87.7026);
    MultiPolygon(vec![geo::Polygon::new(
        geo::LineString::from(vec![(w, s), (e, s), (e, n), (w, n), (w, s)]),
        vec![],
    )])
}

fn logan_sources() -> Vec<Source> {
    vec![
        source("A", (41.9338, -87.7149)),
        source("B", (41.9270, -87.7050)),
    ]
}

#[test]
#[ignore = "needs ../shared/data"]
fn logan_square_rule_is_sane_on_real_roads() {
    let path = logan_osm();
    let net = RoadNetwork::load(&path, &SpeedTable::defaults()).unwrap();
    let fast = RoadNetwork::load(&path, &SpeedTable::defaults().with_factor(2.0).unwrap()).unwrap();
    let grid = Grid::new(&net, &logan_outline(), 10).unwrap();
    assert!(grid.cells().len() > 200, "{} cells", grid.cells().len());
    // A tight rule so the 2 km × 2 km extract has both verdicts: 3 minutes and 1.5 km.
    let r = rule(3.0, 1.5);
    let sources = logan_sources();
    let slow = evaluate(&net, &grid, &sources, &r).unwrap();
    let quick = evaluate(&fast, &grid, &sources, &r).unwrap();
    for ((x, y), cell) in slow.iter().zip(&quick).zip(grid.cells()) {
        let s = &sources[x.source];
        assert!(x.dist_m >= haversine_m(s.lat, s.lon, cell.lat, cell.lon) * (1.0 - 1e-9));
        assert!(y.time_s <= x.time_s + 1e-9);
    }
    let share = passing_area_share(&grid, &slow);
    assert!(share > 0.05 && share < 0.95, "passing share {share}");
    assert!(passing_area_share(&grid, &quick) >= share);
}

#[test]
#[ignore = "needs ../shared/data and osmium"]
fn logan_square_pbf_gives_the_same_verdict() {
    let xml = logan_osm();
    let dir = tempfile::tempdir().unwrap();
    let pbf = dir.path().join("roads.osm.pbf");
    let status = std::process::Command::new(osmium())
        .arg("cat")
        .arg(&xml)
        .arg("-o")
        .arg(&pbf)
        .status()
        .unwrap();
    assert!(status.success());
    let a = RoadNetwork::load(&xml, &SpeedTable::defaults()).unwrap();
    let b = RoadNetwork::load(&pbf, &SpeedTable::defaults()).unwrap();
    let r = rule(3.0, 1.5);
    let (ga, gb) = (
        Grid::new(&a, &logan_outline(), 10).unwrap(),
        Grid::new(&b, &logan_outline(), 10).unwrap(),
    );
    let ra = evaluate(&a, &ga, &logan_sources(), &r).unwrap();
    let rb = evaluate(&b, &gb, &logan_sources(), &r).unwrap();
    assert_eq!(ra.len(), rb.len());
    for (x, y) in ra.iter().zip(&rb) {
        assert_eq!((x.pass, x.source), (y.pass, y.source));
        assert!((x.time_s - y.time_s).abs() < 1e-6 && (x.dist_m - y.dist_m).abs() < 1e-6);
    }
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

#[test]
fn tracks_on_duty_and_available() {
    let t0 = utc(2026, 11, 2, 6, 0).timestamp_millis();
    let min = 60_000;
    let tracks = Tracks::from_fixes([
        ("U2".to_owned(), t0 + 50 * min, 1.0, 1.0),
        ("U1".to_owned(), t0 + 40 * min, 0.4, 0.4),
        ("U1".to_owned(), t0 + 10 * min, 0.1, 0.1),
        ("U1".to_owned(), t0 + 31 * min, 0.3, 0.3),
        ("U3".to_owned(), t0 + 70 * min, 3.0, 3.0),
    ]);
    assert_eq!(tracks.units(), ["U2", "U1", "U3"]);
    assert_eq!(tracks.fix_count(), 5);
    let duty = tracks.on_duty(t0, t0 + 60 * min);
    // U1 at its fix nearest minute 30 (minute 31); U2 at its only fix; U3 is not on duty.
    assert_eq!(
        duty,
        vec![source("U2", (1.0, 1.0)), source("U1", (0.3, 0.3))]
    );
    let avail = tracks.available_at(t0 + 45 * min, 5 * min);
    assert_eq!(avail, vec![source("U1", (0.4, 0.4))]);
    assert!(tracks.available_at(t0 + 5 * min, 5 * min).is_empty());
}

#[test]
fn week_profile_folds_local_hours() {
    let tz = chrono_tz::America::Chicago;
    // Monday 2026-11-02 00:00 in Chicago is 06:00 UTC.
    let hours = [
        HourCoverage {
            start: utc(2026, 11, 2, 6, 0),
            units: 2,
            passing_area_share: 0.5,
        },
        HourCoverage {
            start: utc(2026, 11, 9, 6, 0),
            units: 4,
            passing_area_share: 0.7,
        },
        HourCoverage {
            start: utc(2026, 11, 2, 7, 0),
            units: 0,
            passing_area_share: 0.0,
        },
    ];
    let week = week_profile(&hours, tz);
    assert_eq!(week.len(), 168);
    assert_eq!((week[0].weekday, week[0].hour, week[0].samples), (0, 0, 2));
    assert_close(week[0].mean_share.unwrap(), 0.6, "mean");
    assert_eq!(week[0].min_share, Some(0.5));
    assert_eq!(week[0].mean_units, Some(3.0));
    assert_eq!((week[1].samples, week[1].mean_share), (1, Some(0.0)));
    assert_eq!(
        (week[167].weekday, week[167].hour, week[167].samples),
        (6, 23, 0)
    );
    assert_eq!(week[167].mean_share, None);
}

#[test]
fn dynamic_rule_on_the_town() {
    let net = town();
    let grid = cells_at(&net, &[A, B, C, D, E, F]);
    let r = rule(10.0, 3.0);
    let h0 = utc(2026, 11, 2, 6, 0);
    let ms = |m: i64| h0.timestamp_millis() + m * 60_000;
    // Hour 0: a unit at A (the same verdict as a station at A); hour 1: nobody; hour 2: units
    // at A and at F.
    let tracks = Tracks::from_fixes([
        ("U1".to_owned(), ms(20), A.0, A.1),
        ("U1".to_owned(), ms(130), A.0, A.1),
        ("U1".to_owned(), ms(149), A.0, A.1),
        ("U2".to_owned(), ms(150), F.0, F.1),
    ]);
    let hours = hourly_coverage(&net, &grid, &r, &tracks, h0, utc(2026, 11, 2, 9, 0)).unwrap();
    let station = evaluate(&net, &grid, &[source("S", A)], &r).unwrap();
    let both = evaluate(&net, &grid, &[source("S", A), source("T", F)], &r).unwrap();
    let got: Vec<(usize, f64)> = hours
        .iter()
        .map(|h| (h.units, h.passing_area_share))
        .collect();
    assert_eq!(
        got,
        [
            (1, passing_area_share(&grid, &station)),
            (0, 0.0),
            (2, passing_area_share(&grid, &both)),
        ]
    );
    assert!(got[2].1 > got[0].1);

    // Incidents at the centre of D's cell. At minute 135 U1 (fix at 130) is available and U2
    // (first fix at 150) is not; at 100 nobody is; at 152 both are.
    let d = grid.locate(D.0, D.1).unwrap();
    let at = grid.cells()[d];
    let incident = |id: &str, m: i64| Incident {
        id: id.into(),
        received: DateTime::from_timestamp_millis(ms(m)).unwrap(),
        lat: at.lat,
        lon: at.lon,
        category: "theft".into(),
        priority: 1,
        unit: None,
        dispatched: None,
        arrived: None,
    };
    let reach = incident_reach(
        &net,
        &r,
        &tracks,
        &[
            incident("I1", 135),
            incident("I2", 100),
            incident("I3", 152),
        ],
        300.0,
    )
    .unwrap();
    assert_eq!(reach[0].unit.as_deref(), Some("U1"));
    assert_eq!(reach[0].available, 1);
    assert_close(reach[0].time_s.unwrap(), station[d].time_s, "incident time");
    assert_close(
        reach[0].dist_m.unwrap(),
        station[d].dist_m,
        "incident distance",
    );
    assert_eq!(reach[0].pass, Some(false));
    assert_eq!((reach[1].available, reach[1].time_s), (0, None));
    // At minute 152 both are fresh; D is nearer in time from A than from F.
    assert_eq!(reach[2].available, 2);
    assert_eq!(reach[2].unit.as_deref(), Some("U1"));
}

/// Writes `rows` (unit, epoch ms, lat, lon) as one Parquet file of a Hive day partition,
/// with the store's column names and types.
fn write_pings(store: &Path, day: &str, rows: &[(&str, i64, f64, f64)]) {
    use polars::prelude::*;
    let dir = store.join(crate::store::PINGS).join(format!("date={day}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut df = df!(
        crate::store::UNIT => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        crate::store::STATION => rows.iter().map(|_| "ST1").collect::<Vec<_>>(),
        crate::store::FIX_TIME => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        crate::store::LAT => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        crate::store::LON => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
    )
    .unwrap()
    .lazy()
    .with_column(col(crate::store::FIX_TIME).cast(DataType::Datetime(
        TimeUnit::Milliseconds,
        Some(TimeZone::UTC),
    )))
    .collect()
    .unwrap();
    let file = std::fs::File::create(dir.join("part-1.parquet")).unwrap();
    ParquetWriter::new(file).finish(&mut df).unwrap();
}

#[test]
fn unit_minutes_thins_pings_read_from_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = utc(2026, 11, 2, 6, 0).timestamp_millis();
    let s = 1000;
    write_pings(
        dir.path(),
        "2026-11-02",
        &[
            // Two fixes in minute 0: the later one (at 50 s) stands for the minute.
            ("U1", t0 + 50 * s, 0.5, 0.5),
            ("U1", t0 + 10 * s, 0.1, 0.1),
            ("U1", t0 + 70 * s, 0.7, 0.7),
            ("U2", t0 + 30 * s, 2.0, 2.0),
            // Outside the span.
            ("U2", t0 + 3_600 * s, 9.0, 9.0),
            ("U3", t0 - s, 9.0, 9.0),
        ],
    );
    let pings = crate::store::scan_pings(dir.path()).unwrap();
    let df = unit_minutes(pings, t0, t0 + 3_600 * s).collect().unwrap();
    let tracks = Tracks::from_frame(&df).unwrap();
    assert_eq!(tracks.units(), ["U1", "U2"]);
    assert_eq!(tracks.fix_count(), 3);
    assert_eq!(
        tracks.available_at(t0 + 60 * s, 40 * s),
        vec![source("U1", (0.5, 0.5)), source("U2", (2.0, 2.0))]
    );
    assert_eq!(
        tracks.available_at(t0 + 80 * s, 40 * s),
        vec![source("U1", (0.7, 0.7))]
    );
}

#[test]
fn job_writes_every_format() {
    let store = tempfile::tempdir().unwrap();
    let from = utc(2026, 11, 2, 6, 0);
    let st1 = Jurisdiction::load(&fixtures()).unwrap().stations()[0].clone();
    // One unit parked at ST1 for the first two hours, a fix every minute.
    let rows: Vec<(&str, i64, f64, f64)> = (0..120)
        .map(|m| {
            (
                "C01",
                from.timestamp_millis() + m * 60_000,
                st1.lat,
                st1.lon,
            )
        })
        .collect();
    write_pings(store.path(), "2026-11-02", &rows);
    let mut job = ResponseJob::new(&fixtures(), store.path(), from, utc(2026, 11, 2, 10, 0));
    job.res = Some(7);
    let report = job.run().unwrap();
    assert_eq!(report.units_seen, 1);
    let shares: Vec<f64> = report.hours.iter().map(|h| h.passing_area_share).collect();
    assert_eq!(shares.len(), 4);
    assert!(shares[0] > 0.2 && shares[0] == shares[1] && shares[2] == 0.0 && shares[3] == 0.0);
    // One unit at ST1 covers less than all four stations.
    assert!(shares[0] < report.summary.passing_area_share);

    let out = tempfile::tempdir().unwrap();
    let json_path = out.path().join("summary.json");
    report.write(&json_path).unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(summary["static"]["cells"], report.grid.cells().len());
    assert_eq!(summary["dynamic"]["week"].as_array().unwrap().len(), 168);
    assert_eq!(summary["rule"]["max_km"], 30.0);

    let geo_path = out.path().join("map.geojson");
    report.write(&geo_path).unwrap();
    let map: geojson::FeatureCollection =
        std::fs::read_to_string(&geo_path).unwrap().parse().unwrap();
    let kinds = |k: &str| {
        map.features
            .iter()
            .filter(|f| f.property("kind").and_then(|v| v.as_str()) == Some(k))
            .count()
    };
    assert_eq!(kinds("cell"), report.grid.cells().len());
    assert_eq!(kinds("failing_area"), report.summary.failing_areas.len());

    let csv_path = out.path().join("cells.csv");
    report.write(&csv_path).unwrap();
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert_eq!(
        csv.lines().next(),
        Some("cell,lat,lon,area_km2,offroad_m,time_min,dist_km,source,pass")
    );
    assert_eq!(csv.lines().count(), report.grid.cells().len() + 1);

    let pq_path = out.path().join("cells.parquet");
    report.write(&pq_path).unwrap();
    let back = {
        use polars::prelude::SerReader;
        polars::prelude::ParquetReader::new(std::fs::File::open(&pq_path).unwrap())
            .finish()
            .unwrap()
    };
    assert_eq!(back.height(), report.grid.cells().len());
    let passing = back.column("pass").unwrap().bool().unwrap().sum().unwrap() as usize;
    assert_eq!(passing, report.summary.passing_cells);

    assert!(matches!(
        report.write(&out.path().join("cells.txt")),
        Err(JobError::OutputFormat(_))
    ));
}

#[test]
fn population_file_loads_and_names_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("population.csv");
    std::fs::write(
        &path,
        "lat,lon,population\n40.1,-88.9,120\n\n40.2,-88.8,0.5\n",
    )
    .unwrap();
    assert_eq!(
        jurisdiction::load_population(&path).unwrap(),
        [(40.1, -88.9, 120.0), (40.2, -88.8, 0.5)]
    );
    std::fs::write(&path, "lat,lon,population\n40.1,-88.9,-3\n").unwrap();
    let err = jurisdiction::load_population(&path)
        .unwrap_err()
        .to_string();
    assert!(err.contains(":2:") && err.contains("negative"), "{err}");
    std::fs::write(&path, "lat,lon,people\n").unwrap();
    let err = jurisdiction::load_population(&path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("lat,lon,population"), "{err}");
}
