//! Tests for road loading and routing: a hand-built network with exact answers, GeoJSON, a
//! deep line graph, and the real Logan Square OSM extract.

// Panicking on a broken fixture is the point of a test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use devkit::testkit::{fixtures, osmium, shared_data};

use super::*;
use crate::distance::{EARTH_RADIUS_M, haversine_m};

/// Length of 0.001° along the equator (or along a meridian).
const D: f64 = EARTH_RADIUS_M * 0.001 * std::f64::consts::PI / 180.0;

/// A five-node loop 1-2-3-4-5-1 with one-way 3→4 (maxspeed 30 mph) and 4→5 (`oneway=-1`), a
/// two-way spur 1-6 (a bridge), a one-way dead end 3→7, an island 8-9 with a bad maxspeed, a
/// footway and a building.
const SMALL_OSM: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6">
 <node id="1" lat="0" lon="0"/>
 <node id="2" lat="0" lon="0.001"/>
 <node id="3" lat="0" lon="0.002"><tag k="highway" v="traffic_signals"/></node>
 <node id="4" lat="0.001" lon="0.002"/>
 <node id="5" lat="0.001" lon="0"/>
 <node id="6" lat="-0.001" lon="0"/>
 <node id="7" lat="0" lon="0.003"/>
 <node id="8" lat="0.01" lon="0.01"/>
 <node id="9" lat="0.01" lon="0.011"/>
 <node id="10" lat="0.02" lon="0.02"/>
 <way id="101"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="highway" v="residential"/></way>
 <way id="102"><nd ref="3"/><nd ref="4"/><tag k="highway" v="tertiary"/><tag k="oneway" v="yes"/><tag k="maxspeed" v="30 mph"/></way>
 <way id="103"><nd ref="5"/><nd ref="4"/><tag k="highway" v="residential"/><tag k="oneway" v="-1"/></way>
 <way id="104"><nd ref="5"/><nd ref="1"/><tag k="highway" v="residential"/></way>
 <way id="105"><nd ref="1"/><nd ref="6"/><tag k="highway" v="service"/></way>
 <way id="106"><nd ref="3"/><nd ref="7"/><tag k="highway" v="residential"/><tag k="oneway" v="1"/></way>
 <way id="107"><nd ref="8"/><nd ref="9"/><tag k="highway" v="residential"/><tag k="maxspeed" v="none"/></way>
 <way id="108"><nd ref="9"/><nd ref="10"/><tag k="highway" v="footway"/></way>
 <way id="109"><nd ref="8"/><nd ref="9"/><nd ref="10"/><nd ref="8"/><tag k="building" v="yes"/></way>
</osm>"#;

fn small() -> RoadNetwork {
    RoadNetwork::from_osm_reader(SMALL_OSM.as_bytes(), &SpeedTable::defaults()).unwrap()
}

/// The node at exactly this coordinate.
fn at(net: &RoadNetwork, lat: f64, lon: f64) -> NodeId {
    let (node, dist) = net.nearest_node(lat, lon).unwrap();
    assert!(
        dist < 1e-6,
        "no node at {lat},{lon} (nearest is {dist} m away)"
    );
    node
}

fn mps(kmh: f64) -> f64 {
    kmh / 3.6
}

fn assert_close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "{actual} != {expected}"
    );
}

#[test]
fn maxspeed_parsing() {
    let check = |raw: &str, expect: Option<f64>| match (parse_maxspeed(raw), expect) {
        (Some(a), Some(e)) => assert_close(a, e),
        (a, e) => assert_eq!(a, e, "{raw:?}"),
    };
    check("50", Some(50.0));
    check("50 km/h", Some(50.0));
    check("50kmh", Some(50.0));
    check("40 kph", Some(40.0));
    check("30 mph", Some(48.280_32));
    check(" 55 mph ", Some(88.513_92));
    check("none", None);
    check("signals", None);
    check("RU:urban", None);
    check("50;30", None);
    check("0", None);
    check("30 knots", None);
}

#[test]
fn speed_table_overrides_and_rejects() {
    let speeds = SpeedTable::new([("residential", 25.0), ("motorway_link", 70.0)]).unwrap();
    assert_eq!(speeds.kmh("residential"), Some(25.0));
    assert_eq!(speeds.kmh("motorway_link"), Some(70.0));
    assert_eq!(speeds.kmh("primary"), Some(60.0));
    assert_eq!(
        SpeedTable::new([("footway", 5.0)]),
        Err(SpeedTableError::UnknownClass {
            class: "footway".into()
        })
    );
    assert!(matches!(
        SpeedTable::new([("service", 0.0)]),
        Err(SpeedTableError::BadSpeed { .. })
    ));
    assert!(SpeedTable::defaults().with_factor(f64::NAN).is_err());
}

#[test]
fn small_network_report() {
    let net = small();
    let by_class = [("residential", 5), ("service", 1), ("tertiary", 1)]
        .map(|(c, n)| (c.to_owned(), n))
        .into_iter()
        .collect();
    let expected = LoadReport {
        ways_read: 9,
        ways_kept: 7,
        ways_by_class: by_class,
        nodes: 6,
        edges: 10,
        // The dead end 7 and the island 8-9.
        dropped_nodes: 3,
        components: 3,
        bad_maxspeed: 1,
    };
    assert_eq!(net.report(), &expected);
    assert_eq!((net.node_count(), net.edge_count()), (6, 10));
    // The dropped nodes are gone: the nearest node to the island is on the loop.
    let (_, dist) = net.nearest_node(0.01, 0.01).unwrap();
    assert!(dist > 1000.0);
    let (_, dist) = net.nearest_node(0.0, 0.003).unwrap();
    assert_close(dist, D);
}

#[test]
fn one_way_streets_and_exact_times() {
    let net = small();
    let [n1, n2, n3, n4, n5, n6] = [
        (0.0, 0.0),
        (0.0, 0.001),
        (0.0, 0.002),
        (0.001, 0.002),
        (0.001, 0.0),
        (-0.001, 0.0),
    ]
    .map(|(lat, lon)| at(&net, lat, lon));

    // 3→4 is one-way at 30 mph: the edge exists forward only.
    let e34 = net.edges(n3).find(|e| e.to == n4).unwrap();
    assert_close(e34.length_m, D);
    assert_close(e34.time_s, D / mps(48.280_32));
    assert!(net.edges(n4).all(|e| e.to != n3));
    // `oneway=-1` on the way 5→4 means traffic runs 4→5.
    assert!(net.edges(n4).any(|e| e.to == n5));
    assert!(net.edges(n5).all(|e| e.to != n4));

    let route = net.shortest_path(n3, n4).unwrap();
    assert_eq!(route.nodes(), &[n3, n4]);
    assert_close(route.time_s(), D / mps(48.280_32));

    // Back from 4 to 3 must go round the loop.
    let route = net.shortest_path(n4, n3).unwrap();
    assert_eq!(route.nodes(), &[n4, n5, n1, n2, n3]);
    let l45 = haversine_m(0.001, 0.002, 0.001, 0.0);
    assert_close(route.length_m(), l45 + 3.0 * D);
    assert_close(route.time_s(), (l45 + 3.0 * D) / mps(30.0));
    assert_eq!(route.cum_time_s().len(), 5);
    assert_close(route.cum_dist_m()[2], l45 + D);

    // The spur 1-6 is a two-way bridge, kept, at the service speed.
    let route = net.shortest_path(n6, n2).unwrap();
    assert_eq!(route.nodes(), &[n6, n1, n2]);
    assert_close(route.time_s(), D / mps(20.0) + D / mps(30.0));

    let still = net.shortest_path(n2, n2).unwrap();
    assert_eq!(
        (still.nodes(), still.time_s(), still.length_m()),
        (&[n2][..], 0.0, 0.0)
    );
}

#[test]
fn route_positions_interpolate() {
    let net = small();
    let (n1, n3) = (at(&net, 0.0, 0.0), at(&net, 0.0, 0.002));
    let route = net.shortest_path(n1, n3).unwrap();
    let total = route.time_s();
    let check = |t: f64, lat: f64, lon: f64, heading: f64| {
        let (a, b, h) = route.position_at(t);
        assert!(
            (a - lat).abs() < 1e-12 && (b - lon).abs() < 1e-12,
            "{t}: {a},{b}"
        );
        assert!((h - heading).abs() < 1e-9, "{t}: heading {h}");
    };
    check(-5.0, 0.0, 0.0, 90.0);
    check(0.0, 0.0, 0.0, 90.0);
    check(total / 4.0, 0.0, 0.0005, 90.0);
    check(total / 2.0, 0.0, 0.001, 90.0);
    check(total, 0.0, 0.002, 90.0);
    check(total + 100.0, 0.0, 0.002, 90.0);

    let (n4, n5) = (at(&net, 0.001, 0.002), at(&net, 0.001, 0.0));
    let route = net.shortest_path(n4, n5).unwrap();
    let (_, _, h) = route.position_at(1.0);
    assert!((h - 270.0).abs() < 1e-3, "westward heading {h}");
    let route = net.shortest_path(n5, n1).unwrap();
    let (_, _, h) = route.position_at(1.0);
    assert!((h - 180.0).abs() < 1e-9, "southward heading {h}");
}

#[test]
fn multi_source_forward_and_reverse() {
    let net = small();
    let [n1, n2, n3, n4, n5] = [
        (0.0, 0.0),
        (0.0, 0.001),
        (0.0, 0.002),
        (0.001, 0.002),
        (0.001, 0.0),
    ]
    .map(|(lat, lon)| at(&net, lat, lon));
    let l45 = haversine_m(0.001, 0.002, 0.001, 0.0);
    let (res, tert) = (mps(30.0), mps(48.280_32));

    let reach = net.multi_source(&[(n1, 0.0), (n3, 10.0)]).unwrap();
    assert_eq!(reach.len(), net.node_count());
    let r2 = reach[n2.index()];
    assert_eq!(r2.source, 0);
    assert_close(r2.dist_m, D);
    assert_close(r2.time_s, D / res);
    let r4 = reach[n4.index()];
    assert_eq!(r4.source, 1);
    assert_close(r4.time_s, 10.0 + D / tert);
    assert_eq!(
        reach[n3.index()],
        Reach {
            time_s: 10.0,
            dist_m: 0.0,
            source: 1
        }
    );

    // From 3 to 4 is one edge; from 4 to 3 is the long way round.
    let forward = net.multi_source(&[(n3, 0.0)]).unwrap();
    let reverse = net.multi_target(&[(n3, 0.0)]).unwrap();
    assert_close(forward[n4.index()].time_s, D / tert);
    assert_close(reverse[n4.index()].time_s, (l45 + 3.0 * D) / res);
    assert_close(reverse[n4.index()].dist_m, l45 + 3.0 * D);
    // 5 → 3 goes 5-1-2-3, 3 → 5 goes 3-4-5.
    assert_close(reverse[n5.index()].time_s, 3.0 * D / res);
    assert_close(forward[n5.index()].time_s, D / tert + l45 / res);
    for v in net.nodes() {
        let there = net.shortest_path(n3, v).unwrap().time_s();
        let back = net.shortest_path(v, n3).unwrap().time_s();
        assert_close(forward[v.index()].time_s, there);
        assert_close(reverse[v.index()].time_s, back);
    }
}

#[test]
fn multi_source_rejects_bad_sources() {
    let net = small();
    let n1 = at(&net, 0.0, 0.0);
    assert_eq!(net.multi_source(&[]), Err(RouteError::NoSources));
    assert_eq!(
        net.multi_target(&[(n1, 0.0), (n1, -1.0)]),
        Err(RouteError::BadStartTime {
            index: 1,
            time_s: -1.0
        })
    );
    assert!(matches!(
        net.multi_source(&[(n1, f64::INFINITY)]),
        Err(RouteError::BadStartTime { .. })
    ));
    assert_eq!(
        net.multi_source(&[(NodeId(99), 0.0)]),
        Err(RouteError::UnknownNode { index: 0 })
    );
    assert!(net.shortest_path(n1, NodeId(99)).is_none());
    assert_eq!(net.node(6), None);
    assert_eq!(net.node(5).map(NodeId::index), Some(5));
}

#[test]
fn geojson_lines_join_on_shared_coordinates() {
    let text = r#"{"type": "FeatureCollection", "features": [
      {"type": "Feature", "properties": {"highway": "residential"},
       "geometry": {"type": "LineString", "coordinates": [[0, 0], [0.001, 0], [0.002, 0]]}},
      {"type": "Feature", "properties": {"class": "primary", "oneway": true, "speed_kmh": 36},
       "geometry": {"type": "MultiLineString", "coordinates": [[[0.002, 0], [0.002, 0.001]], [[0.002, 0.001], [0, 0.001]]]}},
      {"type": "Feature", "properties": {"oneway": -1, "maxspeed": "18 km/h"},
       "geometry": {"type": "LineString", "coordinates": [[0, 0], [0, 0.001]]}},
      {"type": "Feature", "properties": {"highway": "footway"},
       "geometry": {"type": "LineString", "coordinates": [[0, 0], [-0.001, 0]]}},
      {"type": "Feature", "properties": {"maxspeed": "fast"},
       "geometry": {"type": "LineString", "coordinates": [[5, 5], [5.001, 5]]}},
      {"type": "Feature", "properties": null, "geometry": {"type": "Point", "coordinates": [0, 0]}},
      {"type": "Feature", "properties": {}, "geometry": null}
    ]}"#;
    let net = RoadNetwork::from_geojson_str(text, &SpeedTable::defaults()).unwrap();
    let report = net.report();
    assert_eq!(
        (report.ways_read, report.ways_kept, report.bad_maxspeed),
        (7, 4, 1)
    );
    assert_eq!(
        (report.nodes, report.dropped_nodes, report.components),
        (5, 2, 2)
    );
    // Residential both ways (4) + primary loop part one-way (2) + untagged reversed (1).
    assert_eq!(report.edges, 7);
    let a = at(&net, 0.0, 0.0);
    let c = at(&net, 0.0, 0.002);
    let d = at(&net, 0.001, 0.002);
    let e = at(&net, 0.001, 0.0);
    let route = net.shortest_path(c, a).unwrap();
    assert_eq!(route.nodes().len(), 3);
    assert_close(route.time_s(), 2.0 * D / mps(30.0));
    // a → e only round the loop (the untagged line runs e → a at 18 km/h).
    let route = net.shortest_path(a, e).unwrap();
    assert_eq!(route.nodes().len(), 5);
    assert_close(
        route.time_s(),
        2.0 * D / mps(30.0) + D / mps(36.0) + 2.0 * D / mps(36.0),
    );
    assert_close(net.shortest_path(e, a).unwrap().time_s(), D / mps(18.0));
    assert!(net.edges(d).all(|edge| edge.to != c));
}

#[test]
fn geojson_errors_name_the_feature() {
    let speeds = SpeedTable::defaults();
    let bad = r#"{"type": "FeatureCollection", "features": [
      {"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": [[0, 0], [0, 0.001]]}},
      {"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": [[0, 0], [0, 91]]}}]}"#;
    assert!(matches!(
        RoadNetwork::from_geojson_str(bad, &speeds),
        Err(RoadsError::BadFeature { feature: 1, .. })
    ));
    let not_fc = r#"{"type": "Feature"}"#;
    assert!(matches!(
        RoadNetwork::from_geojson_str(not_fc, &speeds),
        Err(RoadsError::BadFeature { feature: 0, .. })
    ));
    assert!(matches!(
        RoadNetwork::from_geojson_str("{", &speeds),
        Err(RoadsError::Json(_))
    ));
}

#[test]
fn osm_errors_and_empty_input() {
    let speeds = SpeedTable::defaults();
    let bad_lat = r#"<osm><node id="1" lat="north" lon="0"/></osm>"#;
    match RoadNetwork::from_osm_reader(bad_lat.as_bytes(), &speeds) {
        Err(RoadsError::BadAttribute {
            element: "node",
            attribute: "lat",
            value,
        }) => assert_eq!(value, "north"),
        other => panic!("expected a bad lat, got {other:?}"),
    }
    let no_roads = r#"<osm><node id="1" lat="0" lon="0"/><node id="2" lat="0" lon="1"/>
      <way id="1"><nd ref="1"/><nd ref="2"/><tag k="highway" v="footway"/></way></osm>"#;
    assert!(matches!(
        RoadNetwork::from_osm_reader(no_roads.as_bytes(), &speeds),
        Err(RoadsError::NoRoads)
    ));
    // A single one-way street has no cycle, so nothing routable is left.
    let one_way = r#"<osm><node id="1" lat="0" lon="0"/><node id="2" lat="0" lon="1"/>
      <way id="1"><nd ref="1"/><nd ref="2"/><tag k="highway" v="motorway"/></way></osm>"#;
    assert!(matches!(
        RoadNetwork::from_osm_reader(one_way.as_bytes(), &speeds),
        Err(RoadsError::NoRoads)
    ));
    // A reference to a node missing from the extract splits the way there.
    let gap = r#"<osm><node id="1" lat="0" lon="0"/><node id="2" lat="0" lon="0.001"/>
      <node id="4" lat="0" lon="0.003"/><node id="5" lat="0" lon="0.004"/><node id="6" lat="0" lon="0.005"/>
      <way id="1"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="5"/><nd ref="6"/>
      <tag k="highway" v="road"/></way></osm>"#;
    let net = RoadNetwork::from_osm_reader(gap.as_bytes(), &speeds).unwrap();
    assert_eq!(
        (
            net.node_count(),
            net.report().dropped_nodes,
            net.report().components
        ),
        (3, 2, 2)
    );
    assert!(matches!(
        RoadNetwork::from_osm_reader("<osm><node></osm>".as_bytes(), &speeds),
        Err(RoadsError::Xml { .. } | RoadsError::BadAttribute { .. })
    ));
}

#[test]
fn load_dispatches_on_extension() {
    let dir = tempfile::tempdir().unwrap();
    let osm = dir.path().join("town.OSM");
    std::fs::write(&osm, SMALL_OSM).unwrap();
    let net = RoadNetwork::load(&osm, &SpeedTable::defaults()).unwrap();
    assert_eq!(net.node_count(), 6);

    let pbf = dir.path().join("town.osm.pbf");
    std::fs::write(&pbf, b"").unwrap();
    let err = RoadNetwork::load(&pbf, &SpeedTable::defaults()).unwrap_err();
    assert!(matches!(err, RoadsError::NoRoads), "{err}");
    std::fs::write(&pbf, b"\0\0\0\x0cnot a pbf blob at all").unwrap();
    let err = RoadNetwork::load(&pbf, &SpeedTable::defaults()).unwrap_err();
    assert!(matches!(err, RoadsError::Pbf { .. }), "{err}");

    let shp = dir.path().join("town.shp");
    std::fs::write(&shp, b"").unwrap();
    let err = RoadNetwork::load(&shp, &SpeedTable::defaults()).unwrap_err();
    assert!(matches!(err, RoadsError::UnsupportedFormat { .. }));
    assert!(err.to_string().contains("town.shp"), "{err}");

    let missing = dir.path().join("gone.geojson");
    assert!(matches!(
        RoadNetwork::load(&missing, &SpeedTable::defaults()),
        Err(RoadsError::Io { .. })
    ));
}

/// A two-way road of `n` nodes in a straight line: depth-first search goes `n` deep.
fn line_osm(n: usize) -> String {
    let mut xml = String::from("<osm version=\"0.6\">\n");
    for i in 0..n {
        xml.push_str(&format!(
            "<node id=\"{i}\" lat=\"0\" lon=\"{}\"/>\n",
            i as f64 * 1e-4
        ));
    }
    xml.push_str("<way id=\"1\">");
    for i in 0..n {
        xml.push_str(&format!("<nd ref=\"{i}\"/>"));
    }
    xml.push_str("<tag k=\"highway\" v=\"unclassified\"/></way></osm>");
    xml
}

#[test]
fn deep_line_graph_is_one_component() {
    let n = 100_000;
    let net =
        RoadNetwork::from_osm_reader(line_osm(n).as_bytes(), &SpeedTable::defaults()).unwrap();
    assert_eq!((net.node_count(), net.edge_count()), (n, 2 * (n - 1)));
    assert_eq!(
        (net.report().components, net.report().dropped_nodes),
        (1, 0)
    );
    let first = at(&net, 0.0, 0.0);
    let last = at(&net, 0.0, (n - 1) as f64 * 1e-4);
    let reach = net.multi_source(&[(first, 0.0), (last, 0.0)]).unwrap();
    let total_m: f64 = reach.iter().map(|r| r.dist_m).fold(0.0, f64::max);
    // The farthest node from both ends is the middle, half the line away.
    assert!(
        (total_m - (n - 1) as f64 * D / 10.0 / 2.0).abs() < 10.0,
        "{total_m}"
    );
    assert!(reach.iter().all(|r| r.time_s.is_finite()));
}

#[test]
fn nearest_node_matches_brute_force() {
    let net = small();
    let mut queries = Vec::new();
    for i in -10..=30 {
        for j in -10..=30 {
            queries.push((f64::from(i) * 1e-4, f64::from(j) * 1e-4));
        }
    }
    queries.extend([(1.0, 1.0), (-1.0, 0.001), (0.0005, -3.0)]);
    check_nearest(&net, &queries);
    assert_eq!(net.nearest_node(f64::NAN, 0.0), None);
}

fn check_nearest(net: &RoadNetwork, queries: &[(f64, f64)]) {
    for &(lat, lon) in queries {
        let (_, got) = net.nearest_node(lat, lon).unwrap();
        let want = net
            .nodes()
            .map(|v| {
                let (a, b) = net.coord(v).unwrap();
                haversine_m(lat, lon, a, b)
            })
            .fold(f64::INFINITY, f64::min);
        assert_eq!(got, want, "query {lat},{lon}");
    }
}

/// The Logan Square OSM extract of the shared data (the test fails when it is missing).
fn logan_osm() -> PathBuf {
    shared_data("chicago-osm-logan-square").join("chicago_logan_square.osm")
}

fn logan_square(speeds: &SpeedTable) -> RoadNetwork {
    RoadNetwork::load(&logan_osm(), speeds).unwrap()
}

#[test]
#[ignore = "needs ../shared/data"]
fn logan_square_loads_with_source_counts() {
    let net = logan_square(&SpeedTable::defaults());
    let report = net.report();
    // SOURCE.md lists 258 highway ways by class but omits one secondary_link.
    let by_class: BTreeMap<String, usize> = [
        ("motorway", 18),
        ("motorway_link", 9),
        ("primary", 2),
        ("residential", 98),
        ("secondary", 20),
        ("secondary_link", 1),
        ("service", 105),
        ("tertiary", 5),
    ]
    .map(|(c, n)| (c.to_owned(), n))
    .into_iter()
    .collect();
    assert_eq!(report.ways_by_class, by_class);
    assert_eq!((report.ways_read, report.ways_kept), (318, 258));
    // Six ways carry "55 mph", which parses.
    assert_eq!(report.bad_maxspeed, 0);
    assert!(report.components > 1);
    // 1382 of 1552 nodes are kept; each dropped node is a component of its own.
    assert!(
        report.nodes * 10 >= (report.nodes + report.dropped_nodes) * 8,
        "{report:?}"
    );
    assert_eq!(
        (report.nodes, report.edges),
        (net.node_count(), net.edge_count())
    );
    eprintln!("logan square: {report:?}");
}

#[test]
#[ignore = "needs ../shared/data"]
fn logan_square_drive_distances_and_speed_scaling() {
    let net = logan_square(&SpeedTable::defaults());
    let fast = logan_square(&SpeedTable::defaults().with_factor(2.0).unwrap());
    let (source, _) = net.nearest_node(41.9338, -87.7149).unwrap();
    let (slat, slon) = net.coord(source).unwrap();
    let reach = net.multi_source(&[(source, 0.0)]).unwrap();
    let reach_fast = fast.multi_source(&[(source, 0.0)]).unwrap();
    let reverse = net.multi_target(&[(source, 0.0)]).unwrap();
    for v in net.nodes() {
        let (lat, lon) = net.coord(v).unwrap();
        assert_eq!(fast.coord(v), Some((lat, lon)));
        let straight = haversine_m(slat, slon, lat, lon);
        let r = reach[v.index()];
        assert_eq!(r.source, 0);
        assert!(
            r.dist_m >= straight * (1.0 - 1e-9),
            "node {v:?}: {} < {straight}",
            r.dist_m
        );
        assert!(reverse[v.index()].dist_m >= straight * (1.0 - 1e-9));
        assert_close(reach_fast[v.index()].time_s, r.time_s / 2.0);
    }
    let far = reach.iter().map(|r| r.dist_m).fold(0.0, f64::max);
    assert!(far > 2000.0, "farthest node only {far} m away");
    let mut queries = Vec::new();
    for i in 0..25 {
        for j in 0..25 {
            queries.push((41.90 + f64::from(i) * 0.003, -87.80 + f64::from(j) * 0.006));
        }
    }
    check_nearest(&net, &queries);
}

#[test]
fn fixture_roads_osm_is_strongly_connected() {
    let path = fixtures().join("roads.osm");
    let net = RoadNetwork::load(&path, &SpeedTable::defaults()).unwrap();
    let report = net.report();
    assert_eq!(
        (report.components, report.dropped_nodes),
        (1, 0),
        "{report:?}"
    );
    assert!(net.edge_count() > 0);
}

/// Converts an OSM XML file to `<dir>/<name>.osm.pbf` with osmium.
fn to_pbf(osmium: &str, xml: &Path, dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(format!("{name}.osm.pbf"));
    let status = std::process::Command::new(osmium)
        .arg("cat")
        .arg(xml)
        .arg("-o")
        .arg(&out)
        .arg("--overwrite")
        .status()
        .unwrap();
    assert!(status.success(), "osmium cat {} failed", xml.display());
    out
}

/// The same network read twice: equal counts, coordinates and search results.
fn assert_same_network(a: &RoadNetwork, b: &RoadNetwork) {
    assert_eq!(a.report(), b.report());
    assert_eq!(
        (a.node_count(), a.edge_count()),
        (b.node_count(), b.edge_count())
    );
    for v in a.nodes() {
        let ((lat1, lon1), (lat2, lon2)) = (a.coord(v).unwrap(), b.coord(v).unwrap());
        assert!((lat1 - lat2).abs() < 1e-9 && (lon1 - lon2).abs() < 1e-9);
    }
    let source = a.node(0).unwrap();
    let (ra, rb) = (
        a.multi_source(&[(source, 0.0)]).unwrap(),
        b.multi_source(&[(source, 0.0)]).unwrap(),
    );
    for (x, y) in ra.iter().zip(&rb) {
        assert!((x.time_s - y.time_s).abs() <= 1e-6 * x.time_s.max(1.0));
        assert!((x.dist_m - y.dist_m).abs() <= 1e-6 * x.dist_m.max(1.0));
    }
}

#[test]
#[ignore = "needs osmium"]
fn pbf_from_osmium_matches_the_xml() {
    let osmium = osmium();
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("small.osm");
    std::fs::write(&xml, SMALL_OSM).unwrap();
    let pbf = to_pbf(osmium, &xml, dir.path(), "small");
    let speeds = SpeedTable::defaults();
    let from_pbf = RoadNetwork::load(&pbf, &speeds).unwrap();
    assert_same_network(&small(), &from_pbf);
    // The one-way 3→4 survives the round trip: 4 is not a neighbour of 3 the other way.
    let (n3, n4) = (at(&from_pbf, 0.0, 0.002), at(&from_pbf, 0.001, 0.002));
    assert!(from_pbf.edges(n3).any(|e| e.to == n4));
    assert!(!from_pbf.edges(n4).any(|e| e.to == n3));
}

#[test]
#[ignore = "needs ../shared/data and osmium"]
fn logan_square_pbf_matches_the_xml() {
    let xml = logan_osm();
    let dir = tempfile::tempdir().unwrap();
    let pbf = to_pbf(osmium(), &xml, dir.path(), "logan");
    let speeds = SpeedTable::defaults();
    let from_xml = RoadNetwork::load(&xml, &speeds).unwrap();
    let from_pbf = RoadNetwork::load(&pbf, &speeds).unwrap();
    assert_same_network(&from_xml, &from_pbf);
    assert_eq!(from_pbf.report().ways_read, 318);
}
