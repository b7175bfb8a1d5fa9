//! The event engine across restarts and crashes, and the live path's promptness, end to end:
//! MQTT (the embedded broker) → pipeline → live broadcast and the store on disk.
//!
//! The restart test runs ingest in child processes (this test binary again, running
//! [`ingest_child`]), so that a crash is a real SIGKILL: no shutdown code runs, only what
//! reached the WAL survives.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use devkit::broker;
use devkit::testkit::wait_until_async;
use h3o::Resolution;
use ingest::decode::DecodeConfig;
use ingest::events::{Event, EventConfig, EventKind, Layer};
use ingest::geofence::GeofenceIndex;
use ingest::pipeline::{self, ChannelConfig, Ingest, PipelineConfig, Stages};
use ingest::sink::live::{LiveConfig, LiveEvent, LiveState, SWEEP_EVERY};
use ingest::source::intake::Intake;
use ingest::source::mqtt::{self, MqttSourceConfig, Publisher, PublisherConfig, SourceStats};
use ingest::store::{StoreConfig, StoredEvent, scan_events, scan_ping_keys};
use ingest::validate::ValidateConfig;
use model::jurisdiction::Jurisdiction;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Set in a child's environment: `<broker port> <store dir> <client id>`.
const CHILD_ENV: &str = "PATROL_IT_INGEST_CHILD";

/// Along latitude 40.09 in the fixture county, beat BT03 (West Ashford) lies west of
/// longitude -88.918790 and BT02 (Central Ashford) east of it; steps of 0.0012° are about
/// 100 m.
const LAT: f64 = 40.09;

fn lon(step: i64) -> f64 {
    -88.9230 + 0.0012 * step as f64
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn location(lon: f64, tst: i64) -> Vec<u8> {
    format!(
        r#"{{"_type":"location","lat":{LAT},"lon":{lon},"tst":{tst},"acc":8,"vel":36,"cog":90,"tid":"F1"}}"#
    )
    .into_bytes()
}

/// The fixture jurisdiction's stages with the event engine; `reorder_window_s` and
/// `live_window_s` as given. Validation accepts fixes up to 15 minutes old, so that a track
/// published in the past is not flagged late.
fn stages(reorder_window_s: u32, live_window_s: u32) -> Stages {
    let j = Jurisdiction::load(&devkit::testkit::fixtures()).unwrap();
    let catalog = j.catalog();
    let res = Resolution::try_from(j.settings().h3.fence_res).unwrap();
    let index = Arc::new(GeofenceIndex::build(catalog, res).unwrap());
    let mut config = EventConfig::from_settings(j.settings(), j.timezone());
    config.reorder_window_s = reorder_window_s;
    config.live_window_s = live_window_s;
    Stages::new(
        DecodeConfig::default(),
        ValidateConfig {
            max_acc_m: 50.0,
            future_tolerance_ms: 300_000,
            reorder_window_ms: 900_000,
            known_units: None,
            max_age_ms: None,
        },
        index,
        catalog.version,
        Resolution::Eleven,
    )
    .with_events(&[], &[], config)
    .unwrap()
}

/// A running ingest: pipeline and MQTT source.
struct Running {
    ingest: Ingest,
    source: Arc<SourceStats>,
    tracker: TaskTracker,
    token: CancellationToken,
}

impl Running {
    async fn start(port: u16, store: &Path, client: &str, stages: Stages) -> Self {
        let tracker = TaskTracker::new();
        let token = CancellationToken::new();
        let live = Arc::new(LiveState::new(LiveConfig::new(300, 180)));
        let (tx, input) = mpsc::channel(1000);
        let (durable_tx, durable_rx) = watch::channel(0);
        let ingest = pipeline::spawn(
            PipelineConfig {
                store: StoreConfig::new(store),
                channels: ChannelConfig {
                    batch: 512,
                    store_queue: 4,
                    ..ChannelConfig::DEFAULT
                },
                flush_interval: Duration::from_millis(300),
                retention: None,
                sweep_every: SWEEP_EVERY,
            },
            stages,
            live,
            input,
            durable_tx,
            &tracker,
            token.clone(),
        )
        .unwrap();
        let source = Arc::new(SourceStats::default());
        let mut scfg = MqttSourceConfig::new("127.0.0.1", port, client);
        scfg.topics = vec!["owntracks/+/+".into()];
        tracker.spawn(mqtt::run(
            scfg,
            Intake::new(tx, durable_rx),
            source.clone(),
            token.clone(),
        ));
        // What is published before the broker grants the subscription is lost.
        wait_until_async(Duration::from_secs(30), "the source's subscription", || {
            source.subscribed.load(Relaxed)
        })
        .await;
        Self {
            ingest,
            source,
            tracker,
            token,
        }
    }

    async fn stop(self) {
        self.token.cancel();
        self.tracker.close();
        tokio::time::timeout(Duration::from_secs(20), self.tracker.wait())
            .await
            .unwrap();
    }
}

/// The ingest process of [`restart_and_crash_keep_the_event_state`]: runs ingest until it
/// reads `stop` on stdin, printing `ready` once subscribed and `acked N` as acks go out.
#[test]
#[ignore = "the child process of restart_and_crash_keep_the_event_state"]
fn ingest_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let [port, store, client] = <[&str; 3]>::try_from(spec.split(' ').collect::<Vec<_>>())
        .unwrap_or_else(|v| panic!("{CHILD_ENV}={v:?}"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let running = Running::start(
            port.parse().unwrap(),
            Path::new(store),
            client,
            stages(5, 0),
        )
        .await;
        println!("ready");
        let (stop_tx, mut stop_rx) = mpsc::channel::<()>(1);
        std::thread::spawn(move || {
            for line in std::io::stdin().lines() {
                if line.is_ok_and(|l| l == "stop") {
                    let _ = stop_tx.blocking_send(());
                    return;
                }
            }
        });
        // The ack counter is an atomic, which notifies nobody: look at it every 20 ms.
        let mut look = tokio::time::interval(Duration::from_millis(20));
        let mut acked = 0;
        loop {
            let now = running.source.acked.load(Relaxed);
            if now != acked {
                acked = now;
                println!("acked {acked}");
            }
            tokio::select! {
                _ = stop_rx.recv() => break,
                _ = look.tick() => {}
            }
        }
        running.stop().await;
        println!("stopped");
    });
}

/// A child process running [`ingest_child`], with its stdout lines on a channel.
struct ChildIngest {
    child: Child,
    stdin: ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
}

impl ChildIngest {
    fn start(port: u16, store: &Path, client: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "restart::ingest_child",
                "--ignored",
                "--nocapture",
            ])
            .env(CHILD_ENV, format!("{port} {} {client}", store.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut me = Self {
            child,
            stdin,
            lines,
        };
        me.wait_line("ready", |l| l == "ready");
        me
    }

    fn wait_line(&mut self, what: &str, mut ok: impl FnMut(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if ok(&line) => return,
                Ok(_) => {}
                Err(e) => panic!("child ingest: waiting for {what}: {e}"),
            }
        }
    }

    fn wait_acked(&mut self, n: usize) {
        let want = format!("acked {n}");
        self.wait_line("acks", |l| l == want);
    }

    /// A clean shutdown.
    fn stop(mut self) {
        writeln!(self.stdin, "stop").unwrap();
        self.wait_line("stopped", |l| l == "stopped");
        assert!(self.child.wait().unwrap().success());
    }

    /// A crash: SIGKILL, no shutdown code runs.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// A device's connection, closed on drop.
struct Device(tokio::task::JoinHandle<()>);

impl Drop for Device {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Publishes `fixes` (step along the track, fix time) of unit F01 with QoS 1. The connection
/// stays open until the returned device is dropped: drop it once ingest has acknowledged the
/// fixes, so none is cut off on its way to the broker.
fn publish(rt: &tokio::runtime::Runtime, port: u16, client: &str, fixes: &[(i64, i64)]) -> Device {
    rt.block_on(async {
        let (publisher, task) = Publisher::connect(&PublisherConfig {
            host: "127.0.0.1".into(),
            port,
            client_id: client.into(),
            last_will: None,
            credentials: None,
            queue: 100,
        });
        for &(step, tst) in fixes {
            publisher
                .publish("owntracks/ST1/F01", location(lon(step), tst))
                .await
                .unwrap();
        }
        Device(task)
    })
}

/// The `events` table of `store`.
fn stored(store: &Path) -> Vec<StoredEvent> {
    let t = now_s() * 1000;
    scan_events(store, t - 3_600_000, t + 3_600_000).unwrap()
}

/// A unit drives east from BT03 into BT02, back west into BT03 and east again; ingest is
/// killed (SIGKILL) after the first part of the track and stopped cleanly after the second.
/// The `events` table ends exactly as that of an uninterrupted run (same rows, same JSON:
/// no spurious enter, no exit missed, nothing twice), and every ping is stored once.
///
/// The track's last fix, 10 s after the one before it, closes it: it releases every earlier
/// fix from the 5 s reorder window, so once ingest has acknowledged it (after the batch it
/// released was stored) the `events` table is complete and ingest may stop.
#[test]
fn restart_and_crash_keep_the_event_state() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let port = broker::free_port().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    rt.block_on(async { broker::start_embedded(addr, 1000) })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Fixes every 10 s, all at least 90 s old: the engine's 5 s reorder window releases each
    // fix with the next one or with the tick after it, whatever the wall clock does.
    let t0 = now_s() - 300;
    let steps: Vec<i64> = (0..8).chain((0..8).rev()).chain(0..8).chain([7]).collect();
    let fixes: Vec<(i64, i64)> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (*s, t0 + 10 * i as i64))
        .collect();

    let whole = dir.path().join("whole");
    let child = ChildIngest::start(port, &whole, "ingest-whole");
    let device = publish(&rt, port, "pub-whole", &fixes);
    child.wait_acked_then(fixes.len(), ChildIngest::stop);
    drop(device);

    let parts = dir.path().join("parts");
    let child = ChildIngest::start(port, &parts, "ingest-parts");
    let device = publish(&rt, port, "pub-1", &fixes[..7]);
    child.wait_acked_then(7, ChildIngest::kill);
    drop(device);
    let child = ChildIngest::start(port, &parts, "ingest-parts");
    let device = publish(&rt, port, "pub-2", &fixes[7..15]);
    child.wait_acked_then(8, ChildIngest::stop);
    drop(device);
    let child = ChildIngest::start(port, &parts, "ingest-parts");
    let device = publish(&rt, port, "pub-3", &fixes[15..]);
    child.wait_acked_then(fixes.len() - 15, ChildIngest::stop);
    drop(device);

    let want = stored(&whole);
    let beats: Vec<_> = want
        .iter()
        .filter(|e| e.layer.as_deref() == Some("beat"))
        .map(|e| (e.kind.as_str(), e.fence.as_deref().unwrap(), e.time_ms))
        .collect();
    let ms = |i: i64| (t0 + 10 * i) * 1000;
    // East into BT02 at fix 4, back into BT03 at fix 12 (step 3), into BT02 at fix 20.
    assert_eq!(
        beats,
        [
            ("enter", "BT03", ms(0)),
            ("exit", "BT03", ms(4)),
            ("enter", "BT02", ms(4)),
            ("exit", "BT02", ms(12)),
            ("enter", "BT03", ms(12)),
            ("exit", "BT03", ms(20)),
            ("enter", "BT02", ms(20)),
        ]
    );
    assert_eq!(stored(&parts), want);
    let pings = scan_ping_keys(&parts).unwrap();
    assert_eq!(pings, scan_ping_keys(&whole).unwrap());
    assert_eq!(pings.len(), fixes.len());
}

impl ChildIngest {
    fn wait_acked_then(mut self, n: usize, then: impl FnOnce(Self)) {
        self.wait_acked(n);
        then(self);
    }
}

/// Beat enter and exit events on the live broadcast so far, as `(provisional, kind, fence)`.
fn live_beat_events(rx: &mut broadcast::Receiver<LiveEvent>) -> Vec<(bool, &'static str, String)> {
    let mut out = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        if let LiveEvent::Event(Event {
            provisional, kind, ..
        }) = ev
        {
            match kind {
                EventKind::Enter {
                    layer: Layer::Beat,
                    fence,
                    ..
                } => out.push((provisional, "enter", fence)),
                EventKind::Exit {
                    layer: Layer::Beat,
                    fence,
                    ..
                } => out.push((provisional, "exit", fence)),
                _ => {}
            }
        }
    }
    out
}

/// With the default 120 s reorder window, the provisional enter reaches live subscribers with
/// the fix that confirms it, while the durable event waits until the unit's newest fix is
/// 120 s later: twelve fixes of 10 s. The fixes are recent, so the wall-clock tick cannot
/// release them during the test; the count of fixes decides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_enter_goes_out_with_the_confirming_fix() {
    let port = broker::free_port().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    broker::start_embedded(addr, 1000).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let running = Running::start(
        port,
        &dir.path().join("store"),
        "ingest-live",
        stages(120, 0),
    )
    .await;
    let mut rx = running.ingest.live.subscribe();
    let (publisher, task) = Publisher::connect(&PublisherConfig {
        host: "127.0.0.1".into(),
        port,
        client_id: "pub-live".into(),
        last_will: None,
        credentials: None,
        queue: 100,
    });
    // Four fixes in BT03 spanning 30 s confirm the enter at the fourth.
    let t0 = now_s() - 30;
    let mut seen = Vec::new();
    for i in 0..16 {
        publisher
            .publish("owntracks/ST1/F01", location(lon(0), t0 + 10 * i))
            .await
            .unwrap();
        wait_until_async(
            Duration::from_secs(20),
            &format!("fix {i} acknowledged"),
            || running.source.acked.load(Relaxed) > i as u64,
        )
        .await;
        // Live events are broadcast before the batch is stored, so once a fix is
        // acknowledged, whatever it released is on the channel.
        seen.push(live_beat_events(&mut rx));
    }
    task.abort();
    let enter = |provisional| vec![(provisional, "enter", "BT03".to_owned())];
    for (i, got) in seen.iter().enumerate() {
        let want = match i {
            3 => enter(true),
            15 => enter(false),
            _ => Vec::new(),
        };
        assert_eq!(got, &want, "after fix {i}");
    }
    running.stop().await;
}
