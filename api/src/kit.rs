//! The demo kit's commands (`patrol demo`, `simulate`, `generate`), built with the default
//! `demo` feature: the embedded broker, the simulator and the bulk generator around the same
//! wiring as `patrol serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use demo::sim::{self, SimConfig};
use ingest::source::mqtt;
use ingest::store::{Store, StoreConfig};
use model::jurisdiction::Jurisdiction;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cli::{DemoArgs, GenerateArgs, SimulateArgs};
use crate::gateways::GatewayAddrs;
use crate::http::auth::{self, Caller, Role, Tokens};
use crate::wiring::{self, IngestSettings};

const DAY_MS: i64 = 86_400_000;

/// The jurisdiction the demo runs on: `--fixtures`, else `./fixtures` when it holds one, else
/// the fixture county built into the binary, written to `<data>/fixtures`.
fn demo_fixtures(a: &DemoArgs) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &a.fixtures {
        anyhow::ensure!(
            wiring::is_jurisdiction(dir),
            "--fixtures {}: no jurisdiction.toml there",
            dir.display()
        );
        return Ok(dir.clone());
    }
    let here = PathBuf::from("fixtures");
    if wiring::is_jurisdiction(&here) {
        return Ok(here);
    }
    let built_in = a.data.join("fixtures");
    demo::fixtures::write_to(&built_in).context("writing the built-in fixture county")?;
    println!(
        "patrol demo: no ./fixtures here; running on the built-in fixture county, written to {}",
        built_in.display()
    );
    Ok(built_in)
}

pub(crate) async fn demo(a: DemoArgs) -> anyhow::Result<()> {
    let fixtures = demo_fixtures(&a)?;
    let addr: SocketAddr = ([127, 0, 0, 1], a.mqtt_port).into();
    devkit::broker::start_embedded(addr, 1000)
        .with_context(|| format!("starting the embedded broker on {addr} (--mqtt-port)"))?;
    let tracker = TaskTracker::new();
    let token = CancellationToken::new();
    let mut settings = IngestSettings::local(
        fixtures.clone(),
        a.data.join("store"),
        a.mqtt_port,
        "patrol-demo-ingest",
    );
    if a.gateway_port != 0 {
        settings.gateways = GatewayAddrs::local(a.gateway_port);
    }
    let running = wiring::start_ingest(settings, &tracker, &token)?;
    // A fresh county-wide admin token for this run only; it is never written to disk.
    let (api_token, _) = auth::new_token();
    let mut tokens = Tokens::default();
    tokens.add(
        &api_token,
        Caller {
            role: Role::Admin,
            station: None,
            name: "demo".into(),
        },
    );
    let api = wiring::ApiSettings {
        tokens,
        store: a.data.join("store"),
    };
    let http = wiring::serve_http(a.http, api, &running, &tracker, &token).await?;
    let now = model::now_ms();
    let speedup = a.speedup.max(0.01);
    let start = sim::live_start(now, speedup, running.jurisdiction.settings());
    let fleet = sim::fleet::build(&fixtures, start, now + 30 * DAY_MS, None, 1)?;
    let sim_cfg = SimConfig {
        host: "127.0.0.1".into(),
        port: a.mqtt_port,
        speedup,
        duration: None,
        faults: 1.0,
        seed: 1,
        gateways: GatewayAddrs::bound(&running.gateways).simulator_ports(),
    };
    let sim_token = token.child_token();
    let sim_task = tokio::spawn(sim::simulate(fleet, sim_cfg, sim_token.clone()));
    println!(
        "patrol demo: broker mqtt://{addr}, store {}, API http://{http}/",
        a.data.join("store").display()
    );
    for g in &running.gateways {
        println!("  gateway: {} ({}) on {}", g.protocol, g.transport, g.addr);
    }
    println!("  map: http://{http}/#token={api_token}");
    println!("  token: {api_token}   (API calls: Authorization: Bearer <token>)");
    println!(
        "  live units: http://{http}/api/units   stream: http://{http}/api/live   metrics: http://{http}/metrics   docs: http://{http}/api/openapi.json"
    );
    match a.duration {
        Some(s) => tokio::select! {
            () = wiring::shutdown_signal() => {}
            () = tokio::time::sleep(Duration::from_secs(s)) => {}
        },
        None => wiring::shutdown_signal().await,
    }
    println!("patrol demo: stopping");
    sim_token.cancel();
    let report = sim_task.await.context("simulator task")??;
    wiring::stop(&tracker, &token).await?;
    running.check()?;
    let st = &running.ingest.stats;
    println!(
        "patrol demo: simulator published {}; ingest stored {} pings, {} duplicates, {} rejected",
        report.published,
        st.stored.load(std::sync::atomic::Ordering::Relaxed),
        st.duplicates.load(std::sync::atomic::Ordering::Relaxed),
        st.rejected_total()
    );
    Ok(())
}

pub(crate) async fn simulate(a: SimulateArgs) -> anyhow::Result<()> {
    let broker = mqtt::parse_url(&a.broker).map_err(|e| anyhow::anyhow!("--broker: {e}"))?;
    anyhow::ensure!(
        !broker.tls,
        "--broker: the simulator publishes over plain mqtt:// only"
    );
    let (host, port) = (broker.host, broker.port);
    let j = Jurisdiction::load(&a.fixtures)
        .with_context(|| format!("loading jurisdiction {}", a.fixtures.display()))?;
    let now = model::now_ms();
    let speedup = a.speedup.max(0.01);
    let start = sim::live_start(now, speedup, j.settings());
    let fleet = sim::fleet::build(&a.fixtures, start, now + 30 * DAY_MS, None, a.seed)?;
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        wiring::shutdown_signal().await;
        t.cancel();
    });
    let gateways = match a.gateway_port {
        Some(base) => {
            let ip: std::net::IpAddr = tokio::net::lookup_host((host.as_str(), base))
                .await
                .ok()
                .and_then(|mut addrs| addrs.next())
                .map(|a| a.ip())
                .with_context(|| format!("--broker host {host} does not resolve"))?;
            GatewayAddrs::at(ip, base).simulator_ports()
        }
        None => None,
    };
    let report = sim::simulate(
        fleet,
        SimConfig {
            host,
            port,
            speedup,
            duration: a.duration.map(Duration::from_secs),
            faults: a.faults,
            seed: a.seed,
            gateways,
        },
        token,
    )
    .await?;
    println!(
        "simulated {} fixes, published {} messages; faults: {:?}",
        report.fixes, report.published, report.faults
    );
    Ok(())
}

pub(crate) fn generate(a: &GenerateArgs) -> anyhow::Result<()> {
    let j = Jurisdiction::load(&a.fixtures)
        .with_context(|| format!("loading jurisdiction {}", a.fixtures.display()))?;
    let first_roster_day = j.roster().iter().map(|e| e.date).min();
    let day = a
        .start
        .or(first_roster_day)
        .context("--start not given and roster.csv is empty")?;
    let start = day
        .and_hms_opt(0, 0, 0)
        .and_then(|d| d.and_local_timezone(j.timezone()).earliest())
        .context("--start is not a valid local date")?
        .timestamp_millis();
    let end = start + i64::from(a.days) * DAY_MS;
    let total = a.units.map(|u| u as usize);
    let cloned = total.is_some_and(|t| t > j.units().len());
    let fleet = sim::fleet::build(&a.fixtures, start, end, total, a.seed)?;
    let mut store = Store::open(StoreConfig::new(&a.store))
        .with_context(|| format!("opening store {}", a.store.display()))?;
    let make = || wiring::stages(&j, !cloned);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let report = sim::generate::generate(&fleet, &make, &mut store, end, threads, a.seed)?;
    println!(
        "generated {} pings for {} units over {} days in {:.1} s ({:.0} pings/s), {} rejected",
        report.pings,
        fleet.units.len(),
        a.days,
        report.seconds,
        report.pings as f64 / report.seconds.max(1e-9),
        report.rejected
    );
    // What a live store's compaction does as a day fills: one file per day, sorted by unit.
    let started = std::time::Instant::now();
    let merged = store.compact_all().context("merging the generated files")?;
    println!(
        "merged {merged} files into one per day in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
