//! Geofences on real data: loading and repair, a differential test of `GeofenceIndex::assign`
//! against brute force, and agreement with the beats/districts recorded on real incidents.
#![allow(clippy::unwrap_used, reason = "test helpers panic on bad test data")]

use std::path::{Path, PathBuf};

use devkit::testkit::{fixtures, shared_data};
use geo::{BoundingRect, Contains, Coord, CoordsIter, Intersects, LinesIter, Rect};
use h3o::{LatLng, Resolution};
use ingest::geofence::{
    Catalog, Fence, FenceKind, GeofenceIndex, LoadedFences, PropertyMap, check_catalog,
    parse_fences,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn map(id: &str, name: &str, station: &str) -> PropertyMap {
    PropertyMap {
        id: id.to_owned(),
        name: name.to_owned(),
        station: station.to_owned(),
    }
}

fn load(path: PathBuf, kind: FenceKind, map: &PropertyMap) -> LoadedFences {
    let text = std::fs::read_to_string(&path).unwrap();
    parse_fences(&text, &path.display().to_string(), kind, map).unwrap()
}

fn empty() -> LoadedFences {
    LoadedFences {
        fences: Vec::new(),
        repairs: Vec::new(),
    }
}

/// SF's 10 districts as beats.
pub(crate) fn sf_catalog() -> Catalog {
    let dir = shared_data("sf-police-districts");
    let districts = load(
        dir.join("sfpd_districts.geojson"),
        FenceKind::Beat,
        &map("DISTRICT", "DISTRICT", "DISTRICT"),
    );
    Catalog::from_parts(1, districts, empty())
}

/// Chicago's beats, with its police districts as zones.
fn chicago_catalog() -> Catalog {
    let dir = shared_data("chicago-police-beats-districts");
    let beats = load(
        dir.join("police_beats.geojson"),
        FenceKind::Beat,
        &map("BEAT_NUM", "BEAT_NUM", "DISTRICT"),
    );
    let districts = load(
        dir.join("police_districts.geojson"),
        FenceKind::Zone,
        &map("DIST_NUM", "DIST_LABEL", "DIST_NUM"),
    );
    Catalog::from_parts(1, beats, districts)
}

#[test]
#[ignore = "needs ../shared/data"]
fn sf_districts_load_with_two_repairs() {
    let catalog = sf_catalog();
    assert_eq!(catalog.beats.len(), 10);
    // The file is clockwise (pre-RFC 7946), which is normalised silently; only the two
    // self-intersecting districts count as repairs.
    let mut repaired: Vec<&str> = catalog.repairs.iter().map(|r| r.fence.as_str()).collect();
    repaired.sort_unstable();
    assert_eq!(repaired, ["NORTHERN", "RICHMOND"]);
    for r in &catalog.repairs {
        // A self-intersection fix must not change the district's area noticeably.
        let change = (r.area_after_m2 - r.area_before_m2).abs() / r.area_before_m2;
        assert!(change < 0.01, "{}: area changed by {change}", r.fence);
    }
    let report = check_catalog(&catalog, None).to_string();
    eprintln!("{report}");
    assert!(report.contains("RICHMOND") && report.contains("self-intersection"));
}

#[test]
#[ignore = "needs ../shared/data"]
fn chicago_beats_merge_split_beat_and_check() {
    let catalog = chicago_catalog();
    // 277 features, 275 distinct BEAT_NUM ("3100" is three polygons).
    assert_eq!(catalog.beats.len(), 275);
    let split = catalog.beats.iter().find(|b| b.id == "3100").unwrap();
    assert_eq!(split.geometry.0.len(), 3);
    let union = geo::unary_union(catalog.zones.iter().map(|z| &z.geometry));
    let report = check_catalog(&catalog, Some(&union));
    eprintln!("{report}");
    // The districts are unions of beats: less than 0.1 % of the city may be uncovered.
    assert!(report.gaps.area_m2 < 600_000.0, "{report}");
}

#[test]
fn fixture_fences_check() {
    let j = model::jurisdiction::Jurisdiction::load(&fixtures()).unwrap();
    let report = check_catalog(j.catalog(), Some(j.county()));
    eprintln!("{report}");
    assert!(report.beats > 0);
}

/// The reference: the first fence, in catalog order, that strictly contains the point (the
/// bounding box only skips fences that cannot contain it).
fn brute(fences: &[(Rect<f64>, &Fence)], coord: Coord<f64>) -> Option<usize> {
    fences
        .iter()
        .position(|(bbox, f)| bbox.intersects(&coord) && f.geometry.contains(&coord))
}

fn with_bbox(fences: &[Fence]) -> Vec<(Rect<f64>, &Fence)> {
    fences
        .iter()
        .map(|f| (f.geometry.bounding_rect().unwrap(), f))
        .collect()
}

/// Random points over the beats' bbox grown by 5 %, plus every vertex and edge midpoint.
fn sample(catalog: &Catalog, random: usize, seed: u64) -> Vec<Coord<f64>> {
    let mut points: Vec<Coord<f64>> = Vec::new();
    for fence in catalog.beats.iter().chain(&catalog.zones) {
        points.extend(fence.geometry.coords_iter());
        points.extend(fence.geometry.lines_iter().map(|l| (l.start + l.end) / 2.0));
    }
    let (mut min, mut max) = (points[0], points[0]);
    for p in &points {
        min = Coord {
            x: min.x.min(p.x),
            y: min.y.min(p.y),
        };
        max = Coord {
            x: max.x.max(p.x),
            y: max.y.max(p.y),
        };
    }
    let pad = (max - min) * 0.05;
    let (min, max) = (min - pad, max + pad);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    points.extend((0..random).map(|_| Coord {
        x: rng.random_range(min.x..max.x),
        y: rng.random_range(min.y..max.y),
    }));
    points
}

/// Asserts `assign` equals brute force on every point, and its cells equal h3o's; returns how many points were tested.
fn differential(catalog: &Catalog, random: usize, seed: u64) -> usize {
    let index = GeofenceIndex::build(catalog, Resolution::Ten).unwrap();
    let points = sample(catalog, random, seed);
    let (beats, zones) = (with_bbox(&catalog.beats), with_bbox(&catalog.zones));
    let mut disagreements = Vec::new();
    let mut assigned = 0;
    for &p in &points {
        let got = index.assign(p.y, p.x);
        let want = (brute(&beats, p), brute(&zones, p));
        let got_idx = (got.beat.map(|b| b.index()), got.zone.map(|z| z.index()));
        if got_idx != want {
            disagreements.push((p, got_idx, want));
        }
        // The cells, at the index resolution and at the store's, are h3o's, whichever path
        // answered; the finer call assigns the same fences.
        let ll = LatLng::new(p.y, p.x).unwrap();
        let fine = index.assign_with_cell(p.y, p.x, Resolution::Eleven);
        assert_eq!(got.cell, Some(ll.to_cell(Resolution::Ten)), "at {p:?}");
        assert_eq!(fine.cell, Some(ll.to_cell(Resolution::Eleven)), "at {p:?}");
        assert_eq!((fine.beat, fine.zone), (got.beat, got.zone), "at {p:?}");
        assigned += usize::from(got.beat.is_some());
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements, first: {:?}",
        disagreements.len(),
        &disagreements[..disagreements.len().min(5)]
    );
    // The sample must exercise both answers.
    assert!(assigned > points.len() / 4 && assigned < points.len());
    points.len()
}

#[test]
#[ignore = "needs ../shared/data"]
fn differential_chicago_beats_and_districts() {
    let n = differential(&chicago_catalog(), 700_000, 7);
    eprintln!("chicago: {n} points agree");
}

#[test]
#[ignore = "needs ../shared/data"]
fn differential_sf_districts() {
    let n = differential(&sf_catalog(), 300_000, 11);
    eprintln!("sf: {n} points agree");
}

/// Share of the rows of the CSV file `path` whose recorded fence (column `label`) is the one
/// `assign` picks.
fn agreement(index: &GeofenceIndex, path: &Path, lat: &str, lon: &str, label: &str) -> f64 {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (lat, lon, label) = (col(lat), col(lon), col(label));
    let (mut rows, mut hits) = (0_u32, 0_u32);
    for f in reader.records() {
        let f = f.unwrap();
        let (Ok(y), Ok(x)) = (f[lat].parse::<f64>(), f[lon].parse::<f64>()) else {
            continue;
        };
        rows += 1;
        let beat = index.assign(y, x).beat.and_then(|b| index.beat(b));
        hits += u32::from(beat.is_some_and(|b| b.id == f[label]));
    }
    assert!(rows > 5_000, "only {rows} rows parsed");
    f64::from(hits) / f64::from(rows)
}

#[test]
#[ignore = "needs ../shared/data"]
fn chicago_incidents_match_recorded_beat() {
    let dir = shared_data("chicago-incidents-englewood");
    let index = GeofenceIndex::build(&chicago_catalog(), Resolution::Ten).unwrap();
    let csv = dir.join("crimes2017.csv");
    let share = agreement(&index, &csv, "latitude", "longitude", "beat");
    eprintln!(
        "chicago 2017: {:.2} % agree with the recorded beat",
        share * 100.0
    );
    assert!(share >= 0.88, "{share}");
}

#[test]
#[ignore = "needs ../shared/data"]
fn sf_incidents_match_recorded_district() {
    let dir = shared_data("sf-incidents-2013-12");
    let index = GeofenceIndex::build(&sf_catalog(), Resolution::Ten).unwrap();
    let csv = dir.join("sf_incidents_2013-12.csv");
    let share = agreement(&index, &csv, "lat", "lng", "PdDistrict");
    eprintln!("sf 2013-12: {:.2} % agree with PdDistrict", share * 100.0);
    assert!(share >= 0.97, "{share}");
}
