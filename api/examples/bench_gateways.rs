//! Device gateway benchmark: idle TCP device connections held, and a device's acknowledgement
//! latency while they are open, against the real wiring (in-process ingest, store and
//! gateways; embedded broker). Prints a Markdown table for BENCHMARKS.md.
//!
//! ```sh
//! cargo build --release --workspace --example bench_gateways
//! target/release/examples/bench_gateways [--connections 10000] [--fixes 500]
//! ```
//!
//! The connections come from a child process (this program run with `--hold N PORT`), so the
//! gateway's process holds only its own side of each connection: its resident memory before
//! and after they open, divided by their number, is the gateway's memory per connection.
//! Each connection is a JT/T 808 terminal that sent one heartbeat, had it answered, and then
//! stays silent, as a parked car's terminal does between reports. With them open, one more
//! terminal sends `--fixes` location reports one after another; each waits for the
//! acknowledgement the gateway sends once the fix is durable in the WAL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use api::gateways::GatewayAddrs;
use api::wiring::{self, IngestSettings};
use demo::sim::link::{Link, Protocol};
use devkit::bench::{cpu_seconds, percentile_ms};
use devkit::broker;
use ingest::gateway::device::jt808;
use ingest::gateway::{Cut, DeviceFix, StreamProtocol};
use model::jurisdiction::{DeviceIds, Jurisdiction};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

fn num(name: &str, default: u64) -> u64 {
    arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Resident memory of this process, KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The child: opens `n` JT/T 808 connections to `port`, a heartbeat answered on each, prints
/// `ready`, and holds them until its input closes.
async fn hold(n: usize, port: u16) {
    let mut conns = Vec::with_capacity(n);
    let cutter = ingest::gateway::jt808::Jt808::default();
    for i in 0..n {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let phone = format!("{}", 15_000_000_000u64 + i as u64);
        s.write_all(&jt808::heartbeat(&phone, 1)).await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 256];
        loop {
            if let Cut::Frame(_) = cutter.cut(&buf) {
                break;
            }
            let k = s.read(&mut chunk).await.unwrap();
            assert!(k > 0, "connection {i} closed");
            buf.extend_from_slice(&chunk[..k]);
        }
        conns.push(s);
    }
    println!("ready");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop(conns);
}

#[tokio::main]
async fn main() {
    if let Some(n) = arg("--hold") {
        let port = std::env::args().nth(3).unwrap().parse().unwrap();
        hold(n.parse().unwrap(), port).await;
        return;
    }
    let connections = num("--connections", 10_000) as usize;
    let fixes = num("--fixes", 500) as usize;
    let mqtt = broker::free_port().unwrap();
    broker::start_embedded(([127, 0, 0, 1], mqtt).into(), 1000).unwrap();
    let store = tempfile::tempdir().unwrap();
    let fixtures = devkit::testkit::fixtures();
    let tracker = TaskTracker::new();
    let token = CancellationToken::new();
    let any: SocketAddr = ([127, 0, 0, 1], 0).into();
    let running = wiring::start_ingest(
        IngestSettings {
            gateways: GatewayAddrs {
                jt808: Some(any),
                ..GatewayAddrs::default()
            },
            ..IngestSettings::local(fixtures.clone(), store.path().to_owned(), mqtt, "bench-gw")
        },
        &tracker,
        &token,
    )
    .unwrap();
    let gw = running.gateways[0].clone();
    let pid = std::process::id().to_string();

    let rss_before = rss_kib();
    let t0 = Instant::now();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--hold",
            &connections.to_string(),
            &gw.addr.port().to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    tokio::task::spawn_blocking(move || out.read_line(&mut line).map(|_| line))
        .await
        .unwrap()
        .unwrap();
    let open_s = t0.elapsed().as_secs_f64();
    let open = gw
        .stats
        .connections
        .load(std::sync::atomic::Ordering::Relaxed);
    // Let allocations settle, then read memory and the idle CPU.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_kib();
    let cpu0 = cpu_seconds(&pid).unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle_cpu = cpu_seconds(&pid).unwrap() - cpu0;

    // One more terminal, a known unit's, reports while the others are open.
    let j = Jurisdiction::load(&fixtures).unwrap();
    let ids: DeviceIds = j.units()[0].devices.clone();
    let mut link = Link::new(Protocol::Jt808, gw.addr, ids).unwrap();
    let now = model::now_ms() / 1000 * 1000 - 3_600_000;
    let mut lat_us = Vec::with_capacity(fixes);
    let cpu1 = cpu_seconds(&pid).unwrap();
    for k in 0..fixes {
        let fix = DeviceFix {
            device: String::new(),
            time_ms: now + k as i64 * 1000,
            lat: 40.1,
            lon: -88.9 + k as f64 * 1e-5,
            speed_kmh: Some(20.0),
            course_deg: Some(90.0),
            alt_m: None,
            acc_m: Some(8.0),
            batt_pct: None,
        };
        let t = Instant::now();
        assert!(link.send(&fix).await.unwrap());
        lat_us.push(t.elapsed().as_micros() as i64);
    }
    let cpu_per_fix_us = (cpu_seconds(&pid).unwrap() - cpu1) / fixes as f64 * 1e6;
    lat_us.sort_unstable();
    drop(child.stdin.take());
    let _ = child.wait();
    wiring::stop(&tracker, &token).await.unwrap();

    let per_conn = (rss_after.saturating_sub(rss_before)) as f64 * 1024.0 / connections as f64;
    println!("| figure | value |\n|---|---|");
    println!("| idle JT/T 808 connections open (gateway's gauge) | {open} of {connections} |");
    println!("| time to open them (connect + heartbeat answered, one client) | {open_s:.1} s |");
    println!(
        "| gateway process RSS before / after | {:.1} / {:.1} MiB |",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    println!(
        "| memory per idle connection | {:.1} KiB |",
        per_conn / 1024.0
    );
    println!(
        "| CPU of the whole process over 10 s with them idle | {:.3} s |",
        idle_cpu
    );
    println!(
        "| location report acknowledged, p50 / p99 / max ({fixes} in a row) | {:.2} / {:.2} / {:.2} ms |",
        percentile_ms(&lat_us, 0.5),
        percentile_ms(&lat_us, 0.99),
        percentile_ms(&lat_us, 1.0)
    );
    println!("| process CPU per acknowledged fix | {cpu_per_fix_us:.0} µs |");
}
