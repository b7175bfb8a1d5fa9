//! End-to-end ingest benchmark: publishers → MQTT broker (QoS 1) → `source::mqtt` → pipeline →
//! WAL synced → broker acknowledged. Prints throughput and publish-to-durable latency.
//!
//! ```text
//! cargo run --release --example bench_ingest -- [--broker HOST:PORT] [--pings N]
//!     [--publishers P] [--rate PINGS_PER_S] [--pub rumqttc|raw] [--window W] [--broker-pid PID]
//! ```
//! Without `--broker` it starts the embedded broker. Without `--rate` the publishers send as fast
//! as they can (throughput); with it they pace themselves (latency at that load). `--pub rumqttc`
//! (the default) publishes with the project's [`Publisher`], one `write` per PUBLISH, as each
//! device does; `--pub raw` with the benchmarks' minimal MQTT 5 client, which keeps up to `W`
//! (default 100) publishes unacknowledged and writes all that are ready at once, as a gateway
//! relaying many devices does. The publishers are the devices: they run on other machines in
//! production and share this one's two cores here, so the cheaper client leaves more of them to
//! the broker and ingest. Either way ingest is the same code. Each payload
//! carries its publish time in an extra JSON field (`sent_us`, ignored by the decoder); a tap
//! between source and pipeline notes it per sequence number, and a message counts as durable
//! when the pipeline reports its sequence number durable. The last two columns are the CPU
//! seconds this process (publishers and ingest) and, with `--broker-pid`, the broker used over
//! the run (from `/proc/PID/stat`): CPU per ping does not depend on what else the machine runs,
//! latency does.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use devkit::bench::{self, cpu_seconds, now_us, percentile_ms, raw_mqtt};
use devkit::broker;
use ingest::pipeline::{self, ChannelConfig, PipelineConfig};
use ingest::sink::live::{LiveConfig, LiveState, SWEEP_EVERY};
use ingest::source::intake::{Body, Delivery, Intake};
use ingest::source::mqtt::{self, MqttSourceConfig, Publisher, PublisherConfig, SourceStats};
use ingest::store::StoreConfig;
use model::jurisdiction::Jurisdiction;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

struct Args {
    broker: Option<SocketAddr>,
    pings: usize,
    publishers: usize,
    rate: Option<f64>,
    broker_pid: Option<u32>,
    raw: bool,
    window: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        broker: None,
        pings: 200_000,
        publishers: 4,
        rate: None,
        broker_pid: None,
        raw: false,
        window: 100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--broker" => a.broker = Some(value.parse().context("--broker HOST:PORT")?),
            "--pings" => a.pings = value.parse().context("--pings N")?,
            "--publishers" => a.publishers = value.parse().context("--publishers P")?,
            "--rate" => a.rate = Some(value.parse().context("--rate PINGS_PER_S")?),
            "--broker-pid" => a.broker_pid = Some(value.parse().context("--broker-pid PID")?),
            "--window" => a.window = value.parse().context("--window W")?,
            "--pub" => {
                a.raw = match value.as_str() {
                    "raw" => true,
                    "rumqttc" => false,
                    other => bail!("--pub: unknown client {other}"),
                }
            }
            other => bail!("unknown flag {other}"),
        }
    }
    if a.publishers == 0 || a.pings == 0 || a.window == 0 {
        bail!("--pings, --publishers and --window must be positive");
    }
    Ok(a)
}

/// The value of `"sent_us":` in a payload. The publishers put it last, so the search runs
/// from the end (the tap sees every message; a scan from the start showed in profiles).
fn sent_us(body: &Body) -> Option<i64> {
    let Body::Mqtt { payload, .. } = body else {
        return None;
    };
    let key = b"\"sent_us\":";
    let at = payload.windows(key.len()).rposition(|w| w == key)? + key.len();
    let digits = &payload[at..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .filter(|&e| e > 0)?;
    digits[..end].iter().try_fold(0i64, |n, d| {
        n.checked_mul(10)?.checked_add(i64::from(d - b'0'))
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let fixtures = devkit::testkit::fixtures();
    let j = Jurisdiction::load(&fixtures).context("loading fixtures")?;
    let units: Vec<(String, String)> = j
        .units()
        .iter()
        .map(|u| (u.station.clone(), u.id.clone()))
        .collect();
    let stages = api::wiring::stages(&j, true)?;
    let addr = match a.broker {
        Some(addr) => addr,
        None => {
            let addr: SocketAddr = format!("127.0.0.1:{}", broker::free_port()?).parse()?;
            broker::start_embedded(addr, 1000)?;
            addr
        }
    };
    let store_dir = tempfile::tempdir()?;
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let live = Arc::new(LiveState::new(LiveConfig::new(300, 180)));
    let (src_tx, mut src_rx) = mpsc::channel::<Delivery>(1000);
    let (tx, rx) = mpsc::channel::<Delivery>(1000);
    let (durable_tx, durable_rx) = watch::channel(0u64);
    let mut durable_seen = durable_rx.clone();
    let ingest = pipeline::spawn(
        PipelineConfig {
            store: StoreConfig::new(store_dir.path()),
            channels: ChannelConfig::DEFAULT,
            flush_interval: Duration::from_secs(5),
            retention: None,
            sweep_every: SWEEP_EVERY,
        },
        stages,
        live,
        rx,
        durable_tx,
        &tracker,
        token.clone(),
    )?;
    let mut scfg = MqttSourceConfig::new(
        &addr.ip().to_string(),
        addr.port(),
        &format!("bench-ingest-{}", std::process::id()),
    );
    // A topic prefix of this run's own: the broker keeps an earlier run's session (and would
    // queue this run's pings for it) until the session expires.
    let prefix = format!("benchtracks-{}", std::process::id());
    scfg.topics = vec![format!("{prefix}/+/+")];
    scfg.session_expiry_s = 60;
    let source_stats = Arc::new(SourceStats::default());
    tracker.spawn(mqtt::run(
        scfg,
        Intake::new(src_tx, durable_rx),
        source_stats,
        token.clone(),
    ));

    // Tap: sequence number → publish time, in arrival order.
    let pending: Arc<Mutex<VecDeque<(u64, i64)>>> = Arc::default();
    let tap_pending = pending.clone();
    tracker.spawn(async move {
        while let Some(d) = src_rx.recv().await {
            if let Some(t) = sent_us(&d.body)
                && let Ok(mut p) = tap_pending.lock()
            {
                p.push_back((d.seq, t));
            }
            if tx.send(d).await.is_err() {
                break;
            }
        }
    });
    // Durable watcher: latencies of everything at or below the durable sequence number.
    let total = a.pings;
    let watch_pending = pending.clone();
    let watcher = tokio::spawn(async move {
        let mut lat = Vec::with_capacity(total);
        let mut last = None;
        while lat.len() < total {
            if durable_seen.changed().await.is_err() {
                break;
            }
            let upto = *durable_seen.borrow_and_update();
            let now = now_us();
            if let Ok(mut p) = watch_pending.lock() {
                while p.front().is_some_and(|(seq, _)| *seq <= upto) {
                    if let Some((_, sent)) = p.pop_front() {
                        lat.push(now - sent);
                    }
                }
            }
            last = Some(Instant::now());
        }
        (lat, last)
    });
    // Let the source subscribe before publishing.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let base_s = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64 - 86_400;
    let per = a.pings.div_ceil(a.publishers);
    let started = Instant::now();
    let broker_pid = a.broker_pid.map(|p| p.to_string());
    let cpu_at_start = (
        cpu_seconds("self"),
        broker_pid.as_deref().and_then(cpu_seconds),
    );
    let mut pubs = Vec::new();
    for p in 0..a.publishers {
        let units = units.clone();
        let prefix = prefix.clone();
        let rate = a.rate.map(|r| r / a.publishers as f64);
        let count = per.min(a.pings.saturating_sub(p * per));
        let (raw, window) = (a.raw, a.window);
        pubs.push(tokio::spawn(async move {
            // Ping `k` of publisher `p`: a unique fix time per unit (publisher-major blocks of
            // seconds) and its publish time last.
            let message = |k: usize| {
                let i = p * per + k;
                let (station, unit) = &units[i % units.len()];
                let tst = base_s + (i / units.len()) as i64;
                let payload = format!(
                    r#"{{"_type":"location","lat":{:.6},"lon":{:.6},"tst":{tst},"acc":8,"vel":20,"sent_us":{}}}"#,
                    40.08 + (i % 500) as f64 * 2e-5,
                    -88.93 + (i % 700) as f64 * 2e-5,
                    now_us()
                );
                (format!("{prefix}/{station}/{unit}"), payload.into_bytes())
            };
            let client_id = format!("bench-publisher-{}-{p}", std::process::id());
            if raw {
                let job = raw_mqtt::RawPublish {
                    broker: addr,
                    client_id,
                    count,
                    rate,
                    window,
                };
                return raw_mqtt::publish(job, message)
                    .await
                    .map_err(|e| anyhow::anyhow!("raw publisher {p}: {e}"));
            }
            let (publisher, task) = Publisher::connect(&PublisherConfig {
                host: addr.ip().to_string(),
                port: addr.port(),
                client_id,
                last_will: None,
                credentials: None,
                queue: 1000,
            });
            let t0 = Instant::now();
            for k in 0..count {
                let (topic, payload) = message(k);
                publisher.publish(&topic, payload).await?;
                if let Some(r) = rate {
                    tokio::time::sleep_until(bench::due(t0, k + 1, r).into()).await;
                }
            }
            publisher.disconnect().await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            task.abort();
            anyhow::Ok(())
        }));
    }
    for p in pubs {
        p.await??;
    }
    let (mut lat, last) = tokio::time::timeout(Duration::from_secs(600), watcher)
        .await
        .context("not every ping became durable within 10 minutes")??;
    let elapsed = last.map_or(started.elapsed(), |l| l - started);
    token.cancel();
    tracker.close();
    tracker.wait().await;
    lat.sort_unstable();
    let stats = &ingest.stats;
    let cpu_used = |now: Option<f64>, start: Option<f64>| {
        now.zip(start)
            .map_or("?".to_owned(), |(n, s)| format!("{:.2}", n - s))
    };
    let own_cpu = cpu_used(cpu_seconds("self"), cpu_at_start.0);
    let broker_cpu = cpu_used(broker_pid.as_deref().and_then(cpu_seconds), cpu_at_start.1);
    println!(
        "| {} | {} x {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {own_cpu} | {broker_cpu} |",
        a.broker
            .map_or("embedded rumqttd".to_owned(), |b| b.to_string()),
        a.publishers,
        if a.raw {
            format!("raw (window {})", a.window)
        } else {
            "rumqttc".to_owned()
        },
        a.rate.map_or("max".to_owned(), |r| format!("{r:.0}/s")),
        lat.len() as f64 / elapsed.as_secs_f64(),
        percentile_ms(&lat, 0.50),
        percentile_ms(&lat, 0.99),
        percentile_ms(&lat, 1.0),
        stats.rejected_total(),
    );
    if lat.len() != a.pings {
        bail!("only {} of {} pings became durable", lat.len(), a.pings);
    }
    Ok(())
}
