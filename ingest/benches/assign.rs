//! Point-to-beat assignment on Chicago's 277 beat polygons: the H3 `GeofenceIndex` against a
//! naive exact test over every fence and an R-tree bounding-box prefilter plus exact test.
//!
//! Each iteration assigns the same 10,000 random points over the beats' bounding box, so the
//! reported throughput is pings per second on one core.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use devkit::testkit::shared_data;
use geo::{BoundingRect, Contains, Coord, CoordsIter};
use h3o::Resolution;
use ingest::geofence::{Catalog, Fence, FenceKind, GeofenceIndex, LoadedFences, PropertyMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rstar::RTree;
use rstar::primitives::{GeomWithData, Rectangle};
use std::hint::black_box;

const POINTS: usize = 10_000;

fn chicago_beats() -> Catalog {
    let path = shared_data("chicago-police-beats-districts").join("police_beats.geojson");
    let text = std::fs::read_to_string(&path).expect("the beats file reads");
    let map = PropertyMap {
        id: "BEAT_NUM".to_owned(),
        name: "BEAT_NUM".to_owned(),
        station: "DISTRICT".to_owned(),
    };
    let beats = ingest::geofence::parse_fences(&text, "police_beats", FenceKind::Beat, &map)
        .expect("beats load");
    let zones = LoadedFences {
        fences: Vec::new(),
        repairs: Vec::new(),
    };
    Catalog::from_parts(1, beats, zones)
}

fn points(beats: &[Fence]) -> Vec<Coord<f64>> {
    let coords = beats.iter().flat_map(|b| b.geometry.coords_iter());
    let (mut min, mut max) = (
        Coord {
            x: f64::MAX,
            y: f64::MAX,
        },
        Coord {
            x: f64::MIN,
            y: f64::MIN,
        },
    );
    for c in coords {
        min = Coord {
            x: min.x.min(c.x),
            y: min.y.min(c.y),
        };
        max = Coord {
            x: max.x.max(c.x),
            y: max.y.max(c.y),
        };
    }
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    (0..POINTS)
        .map(|_| Coord {
            x: rng.random_range(min.x..max.x),
            y: rng.random_range(min.y..max.y),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let catalog = chicago_beats();
    let beats = &catalog.beats;
    let pts = points(beats);
    let mut group = c.benchmark_group("assign_chicago_beats");
    group.throughput(Throughput::Elements(POINTS as u64));

    for (name, res) in [
        ("h3_res10", Resolution::Ten),
        ("h3_res11", Resolution::Eleven),
    ] {
        let index = GeofenceIndex::build(&catalog, res).expect("index builds");
        eprintln!("{name}: {} cells", index.cell_count());
        group.bench_function(name, |b| {
            b.iter(|| {
                for p in &pts {
                    black_box(index.assign(black_box(p.y), black_box(p.x)));
                }
            });
        });
    }

    // The floor of every H3 path: one `to_cell`, which `assign` must do anyway.
    group.bench_function("h3o_to_cell_only", |b| {
        b.iter(|| {
            for p in &pts {
                let ll = h3o::LatLng::new(black_box(p.y), black_box(p.x)).expect("finite");
                black_box(ll.to_cell(Resolution::Ten));
            }
        });
    });

    let index = GeofenceIndex::build(&catalog, Resolution::Ten).expect("index builds");
    group.bench_function("h3_res10_with_res11_cell", |b| {
        b.iter(|| {
            for p in &pts {
                black_box(index.assign_with_cell(
                    black_box(p.y),
                    black_box(p.x),
                    Resolution::Eleven,
                ));
            }
        });
    });

    group.bench_function("naive_all_fences", |b| {
        b.iter(|| {
            for p in &pts {
                black_box(beats.iter().position(|f| f.geometry.contains(black_box(p))));
            }
        });
    });

    let tree = RTree::bulk_load(
        beats
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let r = f.geometry.bounding_rect()?;
                let rect = Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]);
                Some(GeomWithData::new(rect, i))
            })
            .collect(),
    );
    group.bench_function("rtree_bbox_then_exact", |b| {
        b.iter(|| {
            for p in &pts {
                let hit = tree
                    .locate_all_at_point(&[p.x, p.y])
                    .map(|g| g.data)
                    .filter(|&i| beats[i].geometry.contains(black_box(p)))
                    .min();
                black_box(hit);
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
