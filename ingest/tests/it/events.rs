//! The event engine on real tracks (San Francisco taxi traces against the SF police
//! districts), and events end to end: MQTT → pipeline → live broadcast and the `events` table.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use devkit::broker;
use devkit::testkit::{fixtures, shared_data, wait_until_async};
use h3o::Resolution;
use ingest::decode::DecodeConfig;
use ingest::events::{Disposition, Event, EventConfig, EventEngine, EventKind, FixInput, Layer};
use ingest::geofence::GeofenceIndex;
use ingest::ping::EpochMillis;
use ingest::pipeline::{self, ChannelConfig, PipelineConfig, Stages};
use ingest::sink::live::{LiveConfig, LiveEvent, LiveState, SWEEP_EVERY};
use ingest::source::intake::Intake;
use ingest::source::mqtt::{self, MqttSourceConfig, Publisher, PublisherConfig, SourceStats};
use ingest::store::{Record, StoreConfig, scan_events};
use ingest::validate::ValidateConfig;
use model::jurisdiction::{Jurisdiction, Settings, UnitKind};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::geofence::sf_catalog;

/// The settings of the fixture jurisdiction: the shipped defaults of every threshold.
fn settings() -> Settings {
    Jurisdiction::load(&fixtures()).unwrap().settings().clone()
}

fn validate_config(s: &Settings) -> ValidateConfig {
    ValidateConfig::from_settings(&s.validate, None)
}

/// A maximal run of consecutive fixes of one unit in the same district (or in none).
#[derive(Debug, Clone)]
struct Run {
    fence: Option<String>,
    count: u32,
    first_ms: EpochMillis,
    last_ms: EpochMillis,
    /// Time of the first fix after the run, if any (the naive rule's exit).
    next_ms: Option<EpochMillis>,
}

/// The naive per-fix rule's view of a unit: the runs of its fix-by-fix districts.
fn runs(fixes: &[(EpochMillis, Option<String>)]) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    for (t, fence) in fixes {
        match out.last_mut() {
            Some(run) if run.fence == *fence => {
                run.count += 1;
                run.last_ms = *t;
            }
            last => {
                if let Some(run) = last {
                    run.next_ms = Some(*t);
                }
                out.push(Run {
                    fence: fence.clone(),
                    count: 1,
                    first_ms: *t,
                    last_ms: *t,
                    next_ms: None,
                });
            }
        }
    }
    out
}

fn collapse(seq: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in seq {
        if out.last() != Some(&s) {
            out.push(s);
        }
    }
    out
}

/// Naive-rule tallies over all units.
#[derive(Debug, Default)]
struct Naive {
    /// Runs inside a district that end with another fix: one enter and one exit each.
    pairs: usize,
    /// Of those, runs whose fixes inside span less than the dwell.
    flaps_span: usize,
    /// Of those, runs whose naive enter-to-exit time is less than the dwell.
    flaps_enter_exit: usize,
    /// Runs that confirm under the engine's rule (enough fixes spanning the dwell).
    real: usize,
    /// Runs spanning the dwell but with too few fixes (sparse sampling).
    long_but_few: usize,
}

impl Naive {
    fn add(&mut self, runs: &[Run], rule: (u32, EpochMillis)) {
        for r in runs.iter().filter(|r| r.fence.is_some()) {
            let span = r.last_ms - r.first_ms;
            if let Some(next) = r.next_ms {
                self.pairs += 1;
                self.flaps_span += usize::from(span < rule.1);
                self.flaps_enter_exit += usize::from(next - r.first_ms < rule.1);
            }
            if r.count >= rule.0 && span >= rule.1 {
                self.real += 1;
            } else if span >= rule.1 {
                self.long_but_few += 1;
            }
        }
    }
}

/// Replays the five cabspotting taxis as units through the import path (validate, jump check,
/// district assignment) into one engine configured as `jurisdiction.toml` configures it, and
/// compares the engine's confirmed district sequence with the naive per-fix sequence.
#[test]
#[ignore = "needs ../shared/data"]
fn sf_taxi_traces_hysteresis_against_the_naive_rule() {
    let (catalog, dir) = (sf_catalog(), shared_data("sf-cabspotting-taxi-gps"));
    let s = settings();
    let config = EventConfig::from_settings(&s, chrono_tz::America::Los_Angeles);
    assert_eq!(
        (config.enter_fixes, config.dwell_s),
        (3, 30),
        "the issue's rule"
    );
    let rule = (config.enter_fixes, EpochMillis::from(config.dwell_s) * 1000);
    let index = Arc::new(GeofenceIndex::build(&catalog, Resolution::Ten).unwrap());
    let mut stages = Stages::new(
        DecodeConfig::default(),
        validate_config(&s),
        index.clone(),
        catalog.version,
        Resolution::Eleven,
    );
    stages.default_max_kmh = UnitKind::Car.max_speed_kmh();
    let mut engine = EventEngine::new(index, &[], &[], config).unwrap();

    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 5, "{files:?}");

    // Per unit: the fixes the engine's state machine saw (trusted, in order, not duplicates),
    // and every accepted fix for the naive rule without the jump filter.
    let mut seen: HashMap<String, Vec<(EpochMillis, Option<String>)>> = HashMap::new();
    let mut all: HashMap<String, Vec<(EpochMillis, Option<String>)>> = HashMap::new();
    let mut events: Vec<Event> = Vec::new();
    let (mut fixes, mut rejected, mut untrusted, mut dropped) = (0, 0, 0, 0);
    for path in &files {
        let cab = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        for point in ingest::import::parse_cabspotting(&text).unwrap() {
            fixes += 1;
            let raw = point.into_raw("sf", &cab);
            let recv = raw.tst * 1000 + 1000;
            let Record::Ping(p) = stages.location(raw, "replay", &[], recv) else {
                rejected += 1;
                continue;
            };
            let pushed = engine.push(&FixInput::from_ping(&p.ping, None));
            events.extend(pushed.events);
            if pushed.disposition != Disposition::Buffered {
                dropped += 1;
                continue;
            }
            let fix = (p.ping.fix_time(), p.beat.clone());
            all.entry(cab.clone()).or_default().push(fix.clone());
            if p.ping.flags().is_untrusted() {
                untrusted += 1;
            } else {
                seen.entry(cab.clone()).or_default().push(fix);
            }
        }
    }
    events.extend(engine.drain());

    let (mut naive, mut naive_all) = (Naive::default(), Naive::default());
    let mut engine_stays = 0;
    let mut confirmed = 0;
    let crossings = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Crossing { .. }))
        .count();
    let mut units: Vec<&String> = seen.keys().collect();
    units.sort();
    for unit in units {
        let unit_runs = runs(&seen[unit]);
        naive.add(&unit_runs, rule);
        naive_all.add(&runs(&all[unit]), rule);
        let real: Vec<&Run> = unit_runs
            .iter()
            .filter(|r| r.fence.is_some() && r.count >= rule.0 && r.last_ms - r.first_ms >= rule.1)
            .collect();
        let mine: Vec<&Event> = events.iter().filter(|e| &e.unit == unit).collect();
        let mut enters = Vec::new();
        let mut open: Option<(&str, EpochMillis)> = None;
        for e in &mine {
            assert_eq!(e.catalog_version, catalog.version);
            match &e.kind {
                EventKind::Enter { layer, fence, .. } => {
                    assert_eq!(*layer, Layer::Beat);
                    // Every enter is backdated to the first fix of a run that confirms.
                    assert!(
                        real.iter()
                            .any(|r| r.fence.as_deref() == Some(fence.as_str())
                                && r.first_ms == e.time_ms),
                        "{unit}: enter {fence} at {} starts no confirming run",
                        e.time_ms
                    );
                    assert!(open.is_none(), "{unit}: enter {fence} while in {open:?}");
                    open = Some((fence, e.time_ms));
                    enters.push(fence.clone());
                }
                EventKind::Exit { fence, .. } => {
                    let (inside, since) = open.take().expect("an exit follows an enter");
                    assert_eq!(inside, fence, "{unit}");
                    // No enter/exit pair of the engine lasts less than the dwell.
                    assert!(
                        e.time_ms - since >= rule.1,
                        "{unit}: {fence} entered at {since}, left at {}",
                        e.time_ms
                    );
                    engine_stays += 1;
                }
                _ => {}
            }
        }
        confirmed += enters.len();
        // Every real stay is caught: the confirmed districts are the real runs' districts,
        // in order (repeats collapse: a unit already in a district does not enter it again).
        let want = collapse(real.iter().filter_map(|r| r.fence.clone()));
        assert_eq!(collapse(enters), want, "{unit}");
    }
    eprintln!(
        "sf taxis: {fixes} fixes, {rejected} rejected, {dropped} not fed (duplicate or late), \
         {untrusted} untrusted (jumps) skipped by the engine"
    );
    eprintln!(
        "naive per-fix rule: {} enter/exit pairs, {} of them flaps (fixes inside span < {} s), \
         {} with enter-to-exit < {} s; {} runs confirm (>= {} fixes over >= {} s), {} span the \
         dwell with fewer fixes",
        naive.pairs,
        naive.flaps_span,
        rule.1 / 1000,
        naive.flaps_enter_exit,
        rule.1 / 1000,
        naive.real,
        rule.0,
        rule.1 / 1000,
        naive.long_but_few
    );
    eprintln!(
        "naive rule without the jump filter: {} pairs, {} flaps (span < {} s)",
        naive_all.pairs,
        naive_all.flaps_span,
        rule.1 / 1000
    );
    eprintln!(
        "engine: {confirmed} confirmed enters, {engine_stays} enter/exit pairs, none under the \
         dwell; {crossings} sparse-segment crossings"
    );
    // The data must exercise both sides for the comparison to mean anything.
    assert!(naive.flaps_span > 0, "{naive:?}");
    assert!(naive.real > 0, "{naive:?}");
    assert!(confirmed <= naive.real);
}

/// Fixes of a unit driving east along latitude 40.09 in the fixture county: four in BT03
/// (West Ashford) then four in BT02 (Central Ashford, south of its hole), 10 s and about
/// 100 m apart; the beats' shared edge is at longitude -88.918790.
const CROSSING: [f64; 8] = [
    -88.9230, -88.9218, -88.9206, -88.9194, -88.9182, -88.9170, -88.9158, -88.9146,
];
const CROSSING_LAT: f64 = 40.09;

fn location(lat: f64, lon: f64, tst: i64) -> Vec<u8> {
    format!(
        r#"{{"_type":"location","lat":{lat},"lon":{lon},"tst":{tst},"acc":8,"vel":36,"cog":90,"tid":"F1"}}"#
    )
    .into_bytes()
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Beat enter/exit events as `(kind, fence, time_ms)`.
fn beat_events<'a>(
    events: impl IntoIterator<Item = &'a Event>,
) -> Vec<(&'static str, String, i64)> {
    events
        .into_iter()
        .filter_map(|e| match &e.kind {
            EventKind::Enter {
                layer: Layer::Beat,
                fence,
                ..
            } => Some(("enter", fence.clone(), e.time_ms)),
            EventKind::Exit {
                layer: Layer::Beat,
                fence,
                ..
            } => Some(("exit", fence.clone(), e.time_ms)),
            _ => None,
        })
        .collect()
}

fn fixture_stages(store_settings: &Settings) -> (Stages, u32) {
    let j = Jurisdiction::load(&fixtures()).unwrap();
    let catalog = j.catalog();
    let res = Resolution::try_from(store_settings.h3.fence_res).unwrap();
    let index = Arc::new(GeofenceIndex::build(catalog, res).unwrap());
    let mut config = EventConfig::from_settings(store_settings, chrono_tz::America::Chicago);
    // A short reorder window, so that the stage's one-second ticks release the last fixes
    // while the test watches instead of two minutes later.
    config.reorder_window_s = 5;
    let stages = Stages::new(
        DecodeConfig::default(),
        validate_config(store_settings),
        index,
        catalog.version,
        Resolution::Eleven,
    )
    .with_events(&[], &[], config)
    .unwrap();
    (stages, catalog.version)
}

async fn next_beat_events(
    rx: &mut tokio::sync::broadcast::Receiver<LiveEvent>,
    n: usize,
    limit: Duration,
) -> Vec<Event> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while beat_events(&got).len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            // Provisional events of the live path come first; these tests follow the durable
            // ones (the live path has its own tests in `restart.rs`).
            Ok(Ok(LiveEvent::Event(event))) if !event.provisional => got.push(event),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("live broadcast: {e}"),
            Err(_) => panic!("timed out; live events so far: {got:?}"),
        }
    }
    got
}

/// A unit crossing from one fixture beat into another over the embedded broker: the enter and
/// exit events reach the live broadcast while ingest runs, and the `events` table after
/// shutdown, with the catalog version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beat_crossing_reaches_live_and_the_store() {
    let port = broker::free_port().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    broker::start_embedded(addr, 1000).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let tracker = TaskTracker::new();
    let token = CancellationToken::new();
    let live = Arc::new(LiveState::new(LiveConfig::new(300, 180)));
    let mut rx = live.subscribe();
    let (tx, input) = mpsc::channel(1000);
    let (durable_tx, durable_rx) = watch::channel(0);
    let (stages, version) = fixture_stages(&settings());
    let ingest = pipeline::spawn(
        PipelineConfig {
            store: StoreConfig::new(&store_dir),
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
        live.clone(),
        input,
        durable_tx,
        &tracker,
        token.clone(),
    )
    .unwrap();
    let source_stats = Arc::new(SourceStats::default());
    let mut scfg = MqttSourceConfig::new(&addr.ip().to_string(), addr.port(), "ingest-events");
    scfg.topics = vec!["owntracks/+/+".into()];
    tracker.spawn(mqtt::run(
        scfg,
        Intake::new(tx, durable_rx),
        source_stats.clone(),
        token.clone(),
    ));
    wait_until_async(Duration::from_secs(30), "the source's subscription", || {
        source_stats.subscribed.load(Relaxed)
    })
    .await;
    let (publisher, task) = Publisher::connect(&PublisherConfig {
        host: addr.ip().to_string(),
        port: addr.port(),
        client_id: "events-pub".into(),
        last_will: None,
        credentials: None,
        queue: 100,
    });
    // Recent enough not to be flagged late (the reorder window of validate is 120 s).
    let t0 = now_s() - 80;
    for (i, lon) in CROSSING.iter().enumerate() {
        let payload = location(CROSSING_LAT, *lon, t0 + 10 * i as i64);
        publisher
            .publish("owntracks/ST1/F01", payload)
            .await
            .unwrap();
    }
    let ms = |s: i64| (t0 + s) * 1000;
    let want = vec![
        ("enter", "BT03".to_owned(), ms(0)),
        ("exit", "BT03".to_owned(), ms(40)),
        ("enter", "BT02".to_owned(), ms(40)),
    ];
    let got = next_beat_events(&mut rx, 3, Duration::from_secs(30)).await;
    assert_eq!(beat_events(&got), want);
    assert!(
        got.iter()
            .all(|e| e.unit == "F01" && e.catalog_version == version)
    );
    assert_eq!(live.snapshot()[0].beat.as_deref(), Some("BT02"));

    wait_until_async(Duration::from_secs(30), "every fix acknowledged", || {
        source_stats.acked.load(Relaxed) >= CROSSING.len() as u64
    })
    .await;
    token.cancel();
    tracker.close();
    tokio::time::timeout(Duration::from_secs(10), tracker.wait())
        .await
        .unwrap();
    task.abort();

    assert_eq!(ingest.stats.stored.load(Relaxed), CROSSING.len() as u64);
    let stored = stored_events(&store_dir, ms(-3600), ms(3600));
    let stored_beats: Vec<_> = stored
        .iter()
        .filter(|e| e.layer.as_deref() == Some("beat"))
        .map(|e| (e.kind.as_str(), e.fence.clone().unwrap(), e.time_ms))
        .collect();
    let mut want_sorted: Vec<_> = want.iter().map(|(k, f, t)| (*k, f.clone(), *t)).collect();
    // The table is sorted by time, then unit; exit and enter at the same time keep their order.
    want_sorted.sort_by_key(|w| w.2);
    assert_eq!(stored_beats, want_sorted);
    assert!(
        stored
            .iter()
            .all(|e| e.catalog_version == version && e.unit == "F01")
    );
    // The stored detail is the event exactly as live sent it.
    for e in &got {
        let json = serde_json::to_string(e).unwrap();
        assert!(stored.iter().any(|s| s.detail == json), "{json} not stored");
    }
    assert_eq!(
        ingest.stats.events.load(Relaxed),
        stored.len() as u64,
        "every event published was stored once"
    );
}

fn stored_events(root: &Path, from: i64, to: i64) -> Vec<ingest::store::StoredEvent> {
    scan_events(root, from, to).unwrap()
}
