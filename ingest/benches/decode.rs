//! Decode and validate throughput: OwnTracks JSON payloads as the simulator sends them, through
//! `decode` then `validate` (no geofence, no IO). Reported per ping on one core.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ingest::decode::{DecodeConfig, Message, decode};
use ingest::validate::{ValidateConfig, validate};

const PINGS: usize = 10_000;

fn payloads() -> Vec<(String, Vec<u8>)> {
    (0..PINGS)
        .map(|i| {
            let topic = format!("owntracks/ST{}/C{:02}", i % 4 + 1, i % 40);
            let payload = format!(
                r#"{{"_type":"location","lat":{:.6},"lon":{:.6},"tst":{},"acc":{},"vel":{},"cog":{},"batt":{},"tid":"C{}","created_at":{}}}"#,
                40.05 + (i % 997) as f64 * 1e-4,
                -88.95 + (i % 991) as f64 * 1e-4,
                1_795_000_000 + i,
                5 + i % 30,
                i % 60,
                i % 360,
                20 + i % 80,
                i % 10,
                1_795_000_001 + i,
            );
            (topic, payload.into_bytes())
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let msgs = payloads();
    let dcfg = DecodeConfig {
        max_payload_bytes: 4096,
    };
    let vcfg = ValidateConfig {
        max_acc_m: 50.0,
        future_tolerance_ms: 300_000,
        reorder_window_ms: 120_000,
        known_units: None,
        max_age_ms: None,
    };
    let recv = 1_795_000_000_000 + PINGS as i64 * 1000;
    let mut g = c.benchmark_group("decode_validate");
    g.throughput(Throughput::Elements(PINGS as u64));
    g.bench_function("owntracks_location", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for (topic, payload) in &msgs {
                if let Ok(Message::Location(raw)) = decode(topic, payload, &dcfg)
                    && validate(raw, recv, &vcfg).is_ok()
                {
                    ok += 1;
                }
            }
            assert_eq!(ok, PINGS);
            black_box(ok)
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
