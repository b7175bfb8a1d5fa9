//! End-to-end ingest over a real MQTT broker: the embedded rumqttd by default, Mosquitto when
//! `PATROL_TEST_MOSQUITTO=host:port` is set (the ignored tests, run by CI).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use devkit::broker;
use devkit::testkit::wait_until_async;
use ingest::decode::DecodeConfig;
use ingest::geofence::index::GeofenceIndex;
use ingest::geofence::{Catalog, FenceKind, LoadedFences, PropertyMap, parse_fences};
use ingest::pipeline::{self, ChannelConfig, PipelineConfig, Stages};
use ingest::sink::live::{LiveConfig, LiveState, SWEEP_EVERY};
use ingest::source::intake::Intake;
use ingest::source::mqtt::{self, MqttSourceConfig, Publisher, PublisherConfig, SourceStats};
use ingest::store::StoreConfig;
use ingest::validate::ValidateConfig;
use parquet::file::reader::{FileReader, SerializedFileReader};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const BEATS: &str = r#"{"type":"FeatureCollection","features":[
 {"type":"Feature","properties":{"id":"N","name":"North","station":"central"},
  "geometry":{"type":"Polygon","coordinates":[[[-89.0,40.1],[-88.8,40.1],[-88.8,40.2],[-89.0,40.2],[-89.0,40.1]]]}},
 {"type":"Feature","properties":{"id":"S","name":"South","station":"central"},
  "geometry":{"type":"Polygon","coordinates":[[[-89.0,40.0],[-88.8,40.0],[-88.8,40.1],[-89.0,40.1],[-89.0,40.0]]]}}]}"#;

pub(crate) fn stages() -> Stages {
    let beats = parse_fences(BEATS, "beats", FenceKind::Beat, &PropertyMap::default()).unwrap();
    let catalog = Catalog::from_parts(1, beats, LoadedFences::default());
    let index = GeofenceIndex::build(&catalog, h3o::Resolution::Nine).unwrap();
    Stages::new(
        DecodeConfig::default(),
        ValidateConfig {
            max_acc_m: 50.0,
            future_tolerance_ms: 300_000,
            reorder_window_ms: 120_000,
            known_units: None,
            max_age_ms: None,
        },
        Arc::new(index),
        catalog.version,
        h3o::Resolution::Eleven,
    )
}

/// Counts rows of every Parquet file under `dir/table`.
pub(crate) fn count_rows(dir: &Path, table: &str) -> i64 {
    let mut n = 0;
    let Ok(days) = std::fs::read_dir(dir.join(table)) else {
        return 0;
    };
    for day in days {
        for f in std::fs::read_dir(day.unwrap().path()).unwrap() {
            let path = f.unwrap().path();
            if path.extension().is_some_and(|e| e == "parquet") {
                let r = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
                n += r.metadata().file_metadata().num_rows();
            }
        }
    }
    n
}

fn location(lat: f64, lon: f64, tst: i64) -> Vec<u8> {
    format!(
        r#"{{"_type":"location","lat":{lat},"lon":{lon},"tst":{tst},"acc":8,"vel":24,"cog":90,"batt":80,"tid":"xx"}}"#
    )
    .into_bytes()
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Publishes `units * per_unit` valid pings plus duplicates, malformed and ignored messages,
/// and checks that the store holds each valid ping once and each rejection once, and that every
/// message was acknowledged.
async fn round_trip(addr: SocketAddr, client: &str) {
    let dir = tempfile::tempdir().unwrap();
    let tracker = TaskTracker::new();
    let token = CancellationToken::new();
    let live = Arc::new(LiveState::new(LiveConfig::new(300, 180)));
    let (tx, rx) = mpsc::channel(1000);
    let (durable_tx, durable_rx) = watch::channel(0);
    let cfg = PipelineConfig {
        store: StoreConfig::new(dir.path().join("store")),
        channels: ChannelConfig {
            batch: 512,
            store_queue: 4,
            ..ChannelConfig::DEFAULT
        },
        flush_interval: Duration::from_millis(300),
        retention: None,
        sweep_every: SWEEP_EVERY,
    };
    let ingest = pipeline::spawn(
        cfg,
        stages(),
        live.clone(),
        rx,
        durable_tx,
        &tracker,
        token.clone(),
    )
    .unwrap();
    let source_stats = Arc::new(SourceStats::default());
    let mut scfg = MqttSourceConfig::new(&addr.ip().to_string(), addr.port(), client);
    scfg.topics = vec!["owntracks/+/+".into()];
    tracker.spawn(mqtt::run(
        scfg,
        Intake::new(tx, durable_rx),
        source_stats.clone(),
        token.clone(),
    ));
    // What is published before the broker grants the subscription is lost (no retained
    // messages here).
    wait_until_async(Duration::from_secs(30), "the source's subscription", || {
        source_stats.subscribed.load(Relaxed)
    })
    .await;

    let (publisher, task) = Publisher::connect(&PublisherConfig {
        host: addr.ip().to_string(),
        port: addr.port(),
        client_id: format!("{client}-pub"),
        last_will: None,
        credentials: None,
        queue: 1000,
    });
    let (units, per_unit) = (10, 200);
    let t0 = now_s() - 3600;
    let mut sent = 0u64;
    for u in 0..units {
        let topic = format!("owntracks/central/U{u:02}");
        for i in 0..per_unit {
            let lat = 40.05 + 0.0001 * f64::from(i);
            let payload = location(lat, -88.9, t0 + i64::from(i) * 10);
            publisher.publish(&topic, payload.clone()).await.unwrap();
            sent += 1;
            if i % 20 == 0 {
                publisher.publish(&topic, payload).await.unwrap(); // a resend
                sent += 1;
            }
            // A broker with Mosquitto's default limits (1000 queued per session) drops what
            // overflows; keep what is unacknowledged well below that, as a real fleet does.
            if sent.is_multiple_of(100) {
                wait_until_async(Duration::from_secs(60), "the backlog to drain", || {
                    sent - source_stats.acked.load(Relaxed) < 400
                })
                .await;
            }
        }
    }
    let bad: [&[u8]; 4] = [
        b"{",
        b"[]",
        br#"{"_type":"location","lat":1}"#,
        br#"{"_type":"location","lat":91,"lon":0,"tst":1}"#,
    ];
    for (i, b) in bad.iter().enumerate() {
        publisher
            .publish(&format!("owntracks/central/X{i}"), b.to_vec())
            .await
            .unwrap();
    }
    publisher
        .publish(
            "owntracks/central/U00",
            br#"{"_type":"transition","event":"enter"}"#.to_vec(),
        )
        .await
        .unwrap();
    let total = (units * per_unit + units * per_unit / 20 + 5) as u64;
    wait_until_async(Duration::from_secs(60), "all messages acknowledged", || {
        source_stats.acked.load(Relaxed) >= total
    })
    .await;
    assert_eq!(ingest.stats.stored.load(Relaxed), (units * per_unit) as u64);
    assert_eq!(
        ingest.stats.duplicates.load(Relaxed),
        (units * per_unit / 20) as u64
    );
    assert_eq!(ingest.stats.rejected_total(), 5);
    assert_eq!(live.snapshot().len(), units as usize);
    assert_eq!(live.snapshot()[0].beat.as_deref(), Some("S"));

    token.cancel();
    tracker.close();
    tokio::time::timeout(Duration::from_secs(10), tracker.wait())
        .await
        .unwrap();
    task.abort();
    let store = dir.path().join("store");
    assert_eq!(count_rows(&store, "pings"), i64::from(units * per_unit));
    assert_eq!(count_rows(&store, "rejects"), 5);
}

/// The embedded broker (in the dev kit, which cannot name ingest's constant) refuses no
/// message ingest would take.
#[test]
fn embedded_broker_takes_the_largest_message_ingest_takes() {
    assert_eq!(broker::MAX_PAYLOAD_BYTES, mqtt::MAX_PACKET_BYTES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_round_trip() {
    let port = broker::free_port().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    broker::start_embedded(addr, 1000).unwrap();
    round_trip(addr, "ingest-embedded").await;
}

fn mosquitto() -> SocketAddr {
    std::env::var("PATROL_TEST_MOSQUITTO")
        .expect("set PATROL_TEST_MOSQUITTO=host:port to run the Mosquitto tests")
        .parse()
        .expect("PATROL_TEST_MOSQUITTO must be host:port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Mosquitto: PATROL_TEST_MOSQUITTO=127.0.0.1:1883"]
async fn mosquitto_round_trip() {
    round_trip(mosquitto(), &format!("ingest-mosq-{}", std::process::id())).await;
}
