//! Event engine throughput: the five San Francisco cabspotting taxis (110,714 real fixes)
//! through `EventEngine::push` against the SF police districts, as the pipeline's stage feeds
//! it (fences already assigned), then `drain`.
//!
//! The taxis report about once a minute, so most segments are sparse and get sampled for
//! crossings: this is the engine's expensive case. Reported throughput is fixes per second on
//! one core. Run with `cargo bench --workspace --bench events`.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use devkit::testkit::{fixtures, shared_data};
use h3o::Resolution;
use ingest::events::{EventConfig, EventEngine, FixInput};
use ingest::geofence::{Assignment, Catalog, FenceKind, GeofenceIndex, LoadedFences, PropertyMap};
use ingest::ping::Flags;

fn sf_districts() -> Catalog {
    let path = shared_data("sf-police-districts").join("sfpd_districts.geojson");
    let text = std::fs::read_to_string(&path).expect("the districts file reads");
    let map = PropertyMap {
        id: "DISTRICT".to_owned(),
        name: "DISTRICT".to_owned(),
        station: "DISTRICT".to_owned(),
    };
    let beats = ingest::geofence::parse_fences(&text, "sfpd_districts", FenceKind::Beat, &map)
        .expect("districts load");
    let zones = LoadedFences {
        fences: Vec::new(),
        repairs: Vec::new(),
    };
    Catalog::from_parts(1, beats, zones)
}

/// One taxi's fixes: unit, fix time, lat, lon and the assignment.
type Fix = (String, i64, f64, f64, Assignment);

fn taxi_fixes(index: &GeofenceIndex) -> Vec<Fix> {
    let dir = shared_data("sf-cabspotting-taxi-gps");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the taxi folder lists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let cab = path
            .file_stem()
            .expect("a taxi file has a name")
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path).expect("a taxi file reads");
        for p in ingest::import::parse_cabspotting(&text).expect("cabspotting parses") {
            let a = index.assign(p.lat, p.lon);
            out.push((cab.clone(), p.time_ms, p.lat, p.lon, a));
        }
    }
    assert!(
        !out.is_empty(),
        "no cabspotting traces in {}",
        dir.display()
    );
    out
}

fn bench(c: &mut Criterion) {
    let catalog = sf_districts();
    let index = Arc::new(GeofenceIndex::build(&catalog, Resolution::Ten).expect("index builds"));
    let fixes = taxi_fixes(&index);
    let settings = model::jurisdiction::Jurisdiction::load(&fixtures())
        .expect("fixture jurisdiction loads")
        .settings()
        .clone();
    let config = EventConfig::from_settings(&settings, chrono_tz::America::Los_Angeles);
    let mut group = c.benchmark_group("event_engine_sf_taxis");
    group.sample_size(10);
    group.throughput(Throughput::Elements(fixes.len() as u64));
    group.bench_function("push_assigned_then_drain", |b| {
        b.iter_batched(
            || EventEngine::new(index.clone(), &[], &[], config.clone()).expect("engine"),
            |mut engine| {
                let mut events = 0;
                for (unit, t, lat, lon, a) in &fixes {
                    let fix = FixInput {
                        unit,
                        fix_time: *t,
                        lat: *lat,
                        lon: *lon,
                        flags: Flags::empty(),
                        assignment: Some(*a),
                    };
                    events += engine.push(black_box(&fix)).events.len();
                }
                events += engine.drain().len();
                black_box(events)
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
