//! Device gateway benchmark: idle TCP device connections held, and a device's acknowledgement
//! latency and the process's CPU per fix while they are open, against ingest's real pipeline
//! (stage with fences and event engine, WAL store in a temporary directory) and its JT/T 808
//! gateway on a free port. Prints a Markdown table for BENCHMARKS.md.
//!
//! ```sh
//! cargo build --release -p ingest --example bench_gateways
//! target/release/examples/bench_gateways [--connections 10000] [--fixes 2000] [--devices 1]
//! ```
//!
//! The connections come from a child process (this program run with `--hold N PORT`), so the
//! measured process holds only the gateway's side of each: its resident memory before and
//! after they open, divided by their number, is the gateway's memory per connection. Each is a
//! JT/T 808 terminal that sent one heartbeat, had it answered, and stays silent, as a parked
//! car's terminal does between reports. With them open, `--devices` more terminals (units of
//! the fixture county, at most 44) each send `--fixes` location reports one after another,
//! each waiting for the acknowledgement the gateway sends once the fix is durable in the WAL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use devkit::bench::{cpu_seconds, percentile_ms};
use h3o::Resolution;
use ingest::decode::DecodeConfig;
use ingest::events::EventConfig;
use ingest::gateway::device::jt808;
use ingest::gateway::jt808::Jt808;
use ingest::gateway::server::{self, DeviceMap, Gateway, GatewayConfig, IdColumn};
use ingest::gateway::{Cut, DeviceFix, StreamProtocol};
use ingest::geofence::GeofenceIndex;
use ingest::pipeline::{self, ChannelConfig, PipelineConfig, Stages};
use ingest::sink::live::{LiveConfig, LiveState, SWEEP_EVERY};
use ingest::source::intake::Intake;
use ingest::store::StoreConfig;
use ingest::validate::ValidateConfig;
use model::jurisdiction::Jurisdiction;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
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

/// Writes `frame` and reads until one whole JT/T 808 frame came back.
async fn exchange(s: &mut TcpStream, frame: &[u8]) -> Vec<u8> {
    s.write_all(frame).await.unwrap();
    let cutter = Jt808::default();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        if let Cut::Frame(n) = cutter.cut(&buf) {
            return buf[..n].to_vec();
        }
        let k = s.read(&mut chunk).await.unwrap();
        assert!(k > 0, "the gateway closed the connection");
        buf.extend_from_slice(&chunk[..k]);
    }
}

/// The child: opens `n` JT/T 808 connections to `port`, a heartbeat answered on each, prints
/// `ready`, and holds them until its input closes.
async fn hold(n: usize, port: u16) {
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let phone = format!("{}", 15_000_000_000u64 + i as u64);
        exchange(&mut s, &jt808::heartbeat(&phone, 1)).await;
        conns.push(s);
    }
    println!("ready");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop(conns);
}

/// One terminal on its own connection: `fixes` location reports, each sent once the previous
/// one was acknowledged; returns the time to each acknowledgement, µs.
async fn report(port: u16, phone: String, t0: i64, fixes: usize) -> Vec<i64> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.set_nodelay(true).unwrap();
    let mut lat_us = Vec::with_capacity(fixes);
    for k in 0..fixes {
        let fix = DeviceFix {
            device: phone.clone(),
            time_ms: t0 + k as i64 * 1000,
            lat: 40.1,
            lon: -88.9 + k as f64 * 1e-5,
            speed_kmh: Some(20.0),
            course_deg: Some(90.0),
            alt_m: None,
            acc_m: None,
            batt_pct: None,
        };
        let serial = k as u16;
        let t = Instant::now();
        let reply = exchange(&mut s, &jt808::location(&phone, serial, &fix)).await;
        lat_us.push(t.elapsed().as_micros() as i64);
        match jt808::parse_reply(&reply).unwrap() {
            jt808::ServerReply::General {
                answered_serial,
                result: 0,
                ..
            } if answered_serial == serial => {}
            other => panic!("{phone}: fix {k} not acknowledged: {other:?}"),
        }
    }
    lat_us
}

fn stages(j: &Jurisdiction) -> Stages {
    let catalog = j.catalog();
    let res = Resolution::try_from(j.settings().h3.fence_res).unwrap();
    let index = Arc::new(GeofenceIndex::build(catalog, res).unwrap());
    Stages::new(
        DecodeConfig::default(),
        ValidateConfig::from_settings(&j.settings().validate, None),
        index,
        catalog.version,
        Resolution::Eleven,
    )
    .with_events(
        j.checkpoints(),
        j.roster(),
        EventConfig::from_settings(j.settings(), j.timezone()),
    )
    .unwrap()
}

#[tokio::main]
async fn main() {
    if let Some(n) = arg("--hold") {
        let port = std::env::args().nth(3).unwrap().parse().unwrap();
        hold(n.parse().unwrap(), port).await;
        return;
    }
    let connections = num("--connections", 10_000) as usize;
    let fixes = num("--fixes", 2_000) as usize;
    let devices = num("--devices", 1).clamp(1, 44) as usize;
    let j = Jurisdiction::load(&devkit::testkit::fixtures()).unwrap();
    let store = tempfile::tempdir().unwrap();
    let tracker = TaskTracker::new();
    let token = CancellationToken::new();
    let (tx, rx) = mpsc::channel(1000);
    let (durable_tx, durable_rx) = watch::channel(0);
    pipeline::spawn(
        PipelineConfig {
            store: StoreConfig::new(store.path()),
            channels: ChannelConfig::DEFAULT,
            flush_interval: Duration::from_secs(5),
            retention: None,
            sweep_every: SWEEP_EVERY,
        },
        stages(&j),
        Arc::new(LiveState::new(LiveConfig::new(300, 180))),
        rx,
        durable_tx,
        &tracker,
        token.clone(),
    )
    .unwrap();
    let gw = Gateway::new(
        "jt808",
        IdColumn::Device,
        Intake::new(tx, durable_rx),
        Arc::new(DeviceMap::from_units(j.units())),
        GatewayConfig::default(),
    );
    let stats = gw.stats.clone();
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    tracker.spawn(server::serve_stream::<Jt808>(
        listener,
        gw,
        tracker.clone(),
        token.clone(),
    ));
    let pid = std::process::id().to_string();

    let rss_before = rss_kib();
    let t0 = Instant::now();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--hold", &connections.to_string(), &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let ready = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        out.read_line(&mut line).map(|_| line)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(ready.trim(), "ready", "the client process failed");
    let open_s = t0.elapsed().as_secs_f64();
    let open = stats.connections.load(Relaxed);
    // Let allocations settle, then read memory and the idle CPU.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_kib();
    let cpu0 = cpu_seconds(&pid).unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle_cpu = cpu_seconds(&pid).unwrap() - cpu0;

    // Then `--devices` more terminals, units of the fixture county, report while the others
    // are open, each its `--fixes` one after another.
    let now = model::now_ms() / 1000 * 1000 - 3_600_000;
    let cpu1 = cpu_seconds(&pid).unwrap();
    let t1 = Instant::now();
    let mut tasks = Vec::new();
    for unit in j.units().iter().take(devices) {
        let phone = unit.devices.device.clone().unwrap();
        tasks.push(tokio::spawn(report(port, phone, now, fixes)));
    }
    let mut lat_us = Vec::with_capacity(fixes * devices);
    for t in tasks {
        lat_us.extend(t.await.unwrap());
    }
    let elapsed = t1.elapsed().as_secs_f64();
    let acked = lat_us.len();
    let cpu_per_fix_us = (cpu_seconds(&pid).unwrap() - cpu1) / acked as f64 * 1e6;
    lat_us.sort_unstable();
    drop(child.stdin.take());
    let _ = child.wait();
    token.cancel();
    tracker.close();
    tracker.wait().await;

    let per_conn = (rss_after.saturating_sub(rss_before)) as f64 / connections as f64;
    println!("| figure | value |\n|---|---|");
    println!("| idle JT/T 808 connections open (the gateway's gauge) | {open} of {connections} |");
    println!(
        "| time to open them (connect, heartbeat answered; one client task) | {open_s:.1} s |"
    );
    println!(
        "| gateway process RSS before / after | {:.1} / {:.1} MiB |",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    println!("| memory per idle connection | {per_conn:.1} KiB |");
    println!("| CPU of the process over 10 s with them idle | {idle_cpu:.2} s |");
    println!(
        "| location reports acknowledged (durable), {devices} terminals x {fixes} in a row | {acked} in {elapsed:.1} s, {:.0}/s |",
        acked as f64 / elapsed
    );
    println!(
        "| time to the acknowledgement, p50 / p99 / max | {:.2} / {:.2} / {:.2} ms |",
        percentile_ms(&lat_us, 0.5),
        percentile_ms(&lat_us, 0.99),
        percentile_ms(&lat_us, 1.0)
    );
    println!("| process CPU per acknowledged fix | {cpu_per_fix_us:.0} µs |");
}
