//! HTTP API benchmark: live fan-out latency, `/api/units` with many units (unchanging, then
//! while updates stream in), and a cached analytics answer, against the real server (in-process axum on a free port, real ingest and
//! embedded broker). Prints a Markdown table for BENCHMARKS.md.
//!
//! ```sh
//! cargo build --release --workspace --example bench_api
//! target/release/examples/bench_api [--units 10000] [--rate 10000] [--clients 20] [--seconds 10]
//! ```
//!
//! Live latency is measured from `LiveState::update` (the live sink ingest calls for every
//! stored ping) to the SSE client parsing the event: updates carry their send time in
//! `fix_time`, and each client subtracts it from its own clock on receipt.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use api::http::auth::{self, Caller, Role, Tokens};
use api::wiring::{self, ApiSettings, IngestSettings};
use devkit::broker;
use ingest::ping::{Extras, Flags, Ping};
use ingest::sink::live::LiveState;
use ingest::store::StoredPing;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn get(port: u16, path: &str, token: &str) -> (u16, usize) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let status = buf
        .get(9..12)
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, buf.len())
}

fn ping(unit: &str, t: i64, lat: f64) -> StoredPing {
    let extras = Extras {
        speed_kmh: Some(30.0),
        ..Extras::default()
    };
    StoredPing {
        ping: Ping::new(unit, "ST1", t, t, lat, -88.9, extras, Flags::empty()).unwrap(),
        cell: 0,
        beat: Some("BT01".into()),
        zone: None,
        fence_version: 1,
    }
}

/// One SSE client: returns the latencies (ms) of the position events it received.
async fn sse_client(port: u16, token: String, stop: CancellationToken) -> Vec<f64> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let req = format!(
        "GET /api/live HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut lat = Vec::new();
    let mut buf = Vec::with_capacity(1 << 16);
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let n = tokio::select! {
            () = stop.cancelled() => break,
            n = s.read(&mut chunk) => n.unwrap_or(0),
        };
        if n == 0 {
            break;
        }
        let now = model::now_ms();
        buf.extend_from_slice(&chunk[..n]);
        // Each position event carries "fix_time":<send ms>.
        let mut start = 0;
        while let Some(i) = find(&buf[start..], b"\"fix_time\":") {
            let from = start + i + 11;
            let end = buf[from..]
                .iter()
                .position(|c| !c.is_ascii_digit())
                .map_or(buf.len(), |e| from + e);
            if end == buf.len() {
                break;
            }
            if let Some(t) = std::str::from_utf8(&buf[from..end])
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
            {
                lat.push((now - t) as f64);
            }
            start = end;
        }
        buf.drain(..start);
    }
    lat
}

/// Sends `rate` updates per second for `seconds` to `units` units, each stamped with its send
/// time; returns how many it sent and how long that took (s).
fn publish(live: &LiveState, rate: u64, seconds: u64, units: usize) -> (u64, f64) {
    let start = Instant::now();
    let total = rate * seconds;
    for n in 0..total {
        let due = Duration::from_secs_f64(n as f64 / rate as f64);
        while start.elapsed() < due {
            std::thread::yield_now();
        }
        let unit = format!("U{:05}", n as usize % units.max(1));
        let lat = 40.1 + (n % 100) as f64 * 1e-4;
        live.update(&ping(&unit, model::now_ms(), lat), false);
    }
    (total, start.elapsed().as_secs_f64())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let units = arg("--units", 10_000) as usize;
    let rate = arg("--rate", 10_000);
    let clients = arg("--clients", 20) as usize;
    let seconds = arg("--seconds", 10);

    let fixtures = devkit::testkit::fixtures();
    let store = tempfile::tempdir().unwrap();
    // Two days of the fixture fleet for the analytics answer.
    let generate = <api::cli::Cli as clap::Parser>::try_parse_from([
        "patrol",
        "generate",
        "--fixtures",
        &fixtures.display().to_string(),
        "--store",
        &store.path().display().to_string(),
        "--days",
        "2",
        "--start",
        "2026-11-02",
    ])
    .unwrap();
    api::run(generate).unwrap();

    let mqtt = broker::free_port().unwrap();
    broker::start_embedded(([127, 0, 0, 1], mqtt).into(), 1000).unwrap();
    let tracker = TaskTracker::new();
    let token = CancellationToken::new();
    let running = wiring::start_ingest(
        IngestSettings::local(fixtures.clone(), store.path().to_owned(), mqtt, "bench-api"),
        &tracker,
        &token,
    )
    .unwrap();
    let (secret, _) = auth::new_token();
    let mut tokens = Tokens::default();
    tokens.add(
        &secret,
        Caller {
            role: Role::Admin,
            station: None,
            name: "bench".into(),
        },
    );
    let api = ApiSettings {
        tokens,
        store: store.path().to_owned(),
    };
    let port = wiring::serve_http(([127, 0, 0, 1], 0).into(), api, &running, &tracker, &token)
        .await
        .unwrap()
        .port();
    let live = running.ingest.live.clone();

    // 1. GET /api/units with `units` live units.
    let now = model::now_ms();
    for i in 0..units {
        live.update(&ping(&format!("U{i:05}"), now, 40.1), false);
    }
    let mut units_ms = Vec::new();
    let mut body = 0;
    for i in 0..220 {
        let t = Instant::now();
        let (status, n) = get(port, "/api/units", &secret).await;
        assert_eq!(status, 200);
        if i >= 20 {
            units_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        body = n;
    }

    // 2. A cached analytics answer.
    let url = "/api/analytics/gaps?from=2026-11-02&to=2026-11-04";
    let t = Instant::now();
    let (status, _) = get(port, url, &secret).await;
    assert_eq!(status, 200, "first gaps answer");
    let first_s = t.elapsed().as_secs_f64();
    let mut cached_ms = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        assert_eq!(get(port, url, &secret).await.0, 200);
        cached_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }

    // 3. Live fan-out: `rate` updates/s to `clients` SSE clients for `seconds`.
    let stop = CancellationToken::new();
    let handles: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(sse_client(port, secret.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fan_out = live.clone();
    let publisher = tokio::task::spawn_blocking(move || publish(&fan_out, rate, seconds, units));
    let (sent, took) = publisher.await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    let mut lat: Vec<f64> = Vec::new();
    for h in handles {
        lat.extend(h.await.unwrap());
    }
    let received = lat.len();

    // 4. GET /api/units while `rate` updates/s change the units (each answer re-serialises
    // the units changed since the previous one).
    let changing = live.clone();
    let publisher = tokio::task::spawn_blocking(move || publish(&changing, rate, 5, units));
    let mut busy_ms = Vec::new();
    while !publisher.is_finished() {
        let t = Instant::now();
        assert_eq!(get(port, "/api/units", &secret).await.0, 200);
        busy_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    wiring::stop(&tracker, &token).await.unwrap();

    println!("| measure | figure | goal |");
    println!("|---|---|---|");
    println!(
        "| live update → SSE client, {clients} clients, {sent} updates in {took:.1} s ({:.0}/s) | p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; {received} of {} deliveries ({:.1}%) | p99 ≤ 100 ms |",
        sent as f64 / took,
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        pct(&mut lat, 1.0),
        sent as usize * clients,
        received as f64 * 100.0 / (sent as usize * clients) as f64
    );
    println!(
        "| `GET /api/units`, {units} units ({:.1} MB), 200 sequential requests | p50 {:.1} ms, p99 {:.1} ms | p99 ≤ 20 ms |",
        body as f64 / 1e6,
        pct(&mut units_ms, 0.5),
        pct(&mut units_ms, 0.99)
    );
    println!(
        "| `GET /api/units`, {units} units, while {rate} updates/s change them, {} sequential requests | p50 {:.1} ms, p99 {:.1} ms | p99 ≤ 20 ms |",
        busy_ms.len(),
        pct(&mut busy_ms, 0.5),
        pct(&mut busy_ms, 0.99)
    );
    println!(
        "| `GET {url}`, cached (first answer {first_s:.1} s), 200 sequential requests | p50 {:.2} ms, p99 {:.2} ms | p99 ≤ 10 ms |",
        pct(&mut cached_ms, 0.5),
        pct(&mut cached_ms, 0.99)
    );
}
