//! Decode cost per fix of each device gateway: 1,000 fixes as each protocol's devices send
//! them (the frames made by `ingest::gateway::device`), cut and decoded by the gateway's
//! protocol session (no socket, no validation, no store). Reported per fix on one core.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ingest::gateway::device::{gt06, jt808, lip, nmea, osmand, teltonika};
use ingest::gateway::gt06::Gt06;
use ingest::gateway::jt808::Jt808;
use ingest::gateway::lip::LipFeed;
use ingest::gateway::nmea::NmeaFeed;
use ingest::gateway::teltonika::TeltonikaSession;
use ingest::gateway::{Cut, DatagramProtocol, DeviceFix, StreamProtocol};

const FIXES: usize = 1_000;
const T0: i64 = 1_795_000_000_000;

fn fixes(device: &str) -> Vec<DeviceFix> {
    (0..FIXES)
        .map(|i| DeviceFix {
            device: device.to_owned(),
            time_ms: T0 + i as i64 * 5_000,
            lat: 40.05 + (i % 997) as f64 * 1e-4,
            lon: -88.95 + (i % 991) as f64 * 1e-4,
            speed_kmh: Some((i % 60) as f64),
            course_deg: Some((i % 360) as f64),
            alt_m: Some(210.0),
            acc_m: Some(8.0),
            batt_pct: Some(80.0),
        })
        .collect()
}

/// Cuts and decodes every frame of `stream` in a fresh session that first took `login`;
/// returns the fixes decoded.
fn run_stream<P: StreamProtocol + Default>(login: &[u8], stream: &[u8]) -> usize {
    let mut session = P::default();
    let mut n = 0;
    for bytes in [login, stream] {
        let mut at = 0;
        while at < bytes.len() {
            match session.cut(&bytes[at..]) {
                Cut::Frame(len) => {
                    if let Ok(reply) = session.frame(&bytes[at..at + len]) {
                        n += reply.fixes.len();
                    }
                    at += len;
                }
                Cut::Skip(len) => at += len,
                Cut::Need => break,
            }
        }
    }
    n
}

fn run_lines<P: DatagramProtocol>(feed: &P, lines: &[String]) -> usize {
    lines
        .iter()
        .map(|l| {
            feed.datagram(l.as_bytes(), T0 + FIXES as i64 * 5_000)
                .into_iter()
                .filter(Result::is_ok)
                .count()
        })
        .sum()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("gateway_decode");
    g.throughput(Throughput::Elements(FIXES as u64));

    let phone = "13900000001";
    let jt: Vec<u8> = fixes(phone)
        .iter()
        .enumerate()
        .flat_map(|(i, f)| jt808::location(phone, i as u16, f))
        .collect();
    g.bench_function("jt808_location", |b| {
        b.iter(|| assert_eq!(black_box(run_stream::<Jt808>(&[], &jt)), FIXES));
    });

    let imei = "350000000000014";
    let gt_login = gt06::login(imei, 0);
    let gt: Vec<u8> = fixes(imei)
        .iter()
        .enumerate()
        .flat_map(|(i, f)| gt06::location(i as u16 + 1, f))
        .collect();
    g.bench_function("gt06_location", |b| {
        b.iter(|| assert_eq!(black_box(run_stream::<Gt06>(&gt_login, &gt)), FIXES));
    });

    let tl_login = teltonika::imei_packet(imei);
    let one: Vec<u8> = fixes(imei)
        .iter()
        .flat_map(|f| teltonika::avl_packet_codec8(std::slice::from_ref(f)))
        .collect();
    g.bench_function("teltonika_codec8_1_record_packets", |b| {
        b.iter(|| {
            assert_eq!(
                black_box(run_stream::<TeltonikaSession>(&tl_login, &one)),
                FIXES
            );
        });
    });
    let batched: Vec<u8> = fixes(imei)
        .chunks(10)
        .flat_map(teltonika::avl_packet_codec8e)
        .collect();
    g.bench_function("teltonika_codec8e_10_record_packets", |b| {
        b.iter(|| {
            assert_eq!(
                black_box(run_stream::<TeltonikaSession>(&tl_login, &batched)),
                FIXES
            );
        });
    });

    let queries: Vec<String> = fixes(phone).iter().map(osmand::query).collect();
    g.bench_function("osmand_query", |b| {
        b.iter(|| {
            let ok = queries
                .iter()
                .filter(|q| ingest::gateway::osmand::parse(q).is_ok())
                .count();
            assert_eq!(black_box(ok), FIXES);
        });
    });
    let bodies: Vec<String> = fixes(phone).iter().map(osmand::json).collect();
    g.bench_function("osmand_json", |b| {
        b.iter(|| {
            let ok = bodies
                .iter()
                .filter(|q| ingest::gateway::osmand::parse_json(q.as_bytes()).is_ok())
                .count();
            assert_eq!(black_box(ok), FIXES);
        });
    });

    let lip_lines: Vec<String> = fixes("2001001")
        .iter()
        .map(|f| lip::long_report(2_001_001, f))
        .collect();
    g.bench_function("lip_long_report", |b| {
        b.iter(|| assert_eq!(black_box(run_lines(&LipFeed, &lip_lines)), FIXES));
    });

    let rmc: Vec<String> = fixes(phone)
        .iter()
        .map(|f| nmea::rmc_line(phone, f))
        .collect();
    g.bench_function("nmea_rmc", |b| {
        b.iter(|| assert_eq!(black_box(run_lines(&NmeaFeed, &rmc)), FIXES));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
