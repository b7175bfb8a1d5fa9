//! Crash test: `patrol serve` is killed with SIGKILL three times while 200k pings (with
//! duplicates and malformed payloads) flow through a real Mosquitto; afterwards the store holds
//! every valid unique ping exactly once and every rejection once.

use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::time::Duration;

use devkit::testkit::mosquitto::mosquitto;
use devkit::testkit::{fixtures, free_port, poll_every, wait_listening};
use ingest::source::mqtt::{Publisher, PublisherConfig};
use model::jurisdiction::Jurisdiction;
use rand::{Rng, SeedableRng};

use crate::support::{patrol, terminate, wait_ready};

const VALID: usize = 200_000;

fn start_serve(store: &std::path::Path, mqtt_port: u16, http_port: u16) -> Child {
    let child = patrol()
        .args(["serve", "--fixtures"])
        .arg(fixtures())
        .arg("--store")
        .arg(store)
        .args(["--mqtt", &format!("mqtt://127.0.0.1:{mqtt_port}")])
        .args(["--http", &format!("127.0.0.1:{http_port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(http_port, Duration::from_secs(20));
    child
}

#[test]
#[ignore = "needs mosquitto on the PATH (or PATROL_TEST_MOSQUITTO_BIN); run by CI's extended step"]
fn sigkill_three_times_loses_and_duplicates_nothing() {
    let broker = mosquitto(
        "allow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 1000\npersistence false",
    );
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let units: Vec<String> = Jurisdiction::load(&fixtures())
        .unwrap()
        .units()
        .iter()
        .map(|u| u.id.clone())
        .take(20)
        .collect();
    let http = free_port();
    let mut child = start_serve(&store, broker.port, http);
    // The first start creates the persistent session: from its subscription on, the broker
    // keeps what is published for it.
    wait_ready(http, Duration::from_secs(20));

    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 3 * 86_400;
    let mut expected_pings = BTreeSet::new();
    let mut expected_rejects = BTreeSet::new();
    let mut messages = Vec::with_capacity(VALID + VALID / 10);
    for i in 0..VALID {
        let unit = &units[i % units.len()];
        let tst = base + (i / units.len()) as i64;
        let topic = format!("owntracks/ST1/{unit}");
        let lat = 40.05 + (i % 997) as f64 * 1e-4;
        let payload =
            format!(r#"{{"_type":"location","lat":{lat:.6},"lon":-88.9,"tst":{tst},"acc":10}}"#);
        expected_pings.insert((unit.clone(), tst * 1000));
        messages.push((topic.clone(), payload.clone().into_bytes()));
        if i % 20 == 0 {
            messages.push((topic.clone(), payload.into_bytes()));
        }
        if i % 100 == 0 {
            let bad =
                format!(r#"{{"_type":"location","lat":40.1,"lon":-88.9,"tst":{i}"#).into_bytes();
            expected_rejects.insert((topic.clone(), bad.clone()));
            messages.push((topic, bad));
        }
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    let port = broker.port;
    // The publisher keeps its connection until the store holds everything: its last
    // publishes may still be on their way to the broker when the loop ends.
    let publisher = rt.spawn(async move {
        let (p, task) = Publisher::connect(&PublisherConfig {
            host: "127.0.0.1".into(),
            port,
            client_id: "crash-test-publisher".into(),
            last_will: None,
            credentials: None,
            queue: 1000,
        });
        for (topic, payload) in messages {
            p.publish(&topic, payload).await.unwrap();
        }
        (p, task)
    });

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    for _ in 0..3 {
        // Each kill at a random point of the stream: the wait is the point of the test.
        std::thread::sleep(Duration::from_millis(rng.random_range(300..2500)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        child = start_serve(&store, broker.port, http);
    }
    let (publisher, connection) = rt.block_on(publisher).unwrap();

    // Drain: wait until the store (flushed to Parquet every 5 s) holds every valid ping and
    // every rejection, then stop gracefully. The scan reads the store's files, so it looks
    // once a second.
    let arrived = poll_every(Duration::from_secs(1), Duration::from_secs(300), || {
        let pings: BTreeSet<_> = ingest::store::scan_ping_keys(&store)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let rejects: BTreeSet<_> = ingest::store::scan_reject_keys(&store)
            .unwrap_or_default()
            .into_iter()
            .collect();
        pings.is_superset(&expected_pings) && rejects.is_superset(&expected_rejects)
    });
    terminate(&mut child);
    drop(publisher);
    connection.abort();
    assert!(
        arrived,
        "the store did not get every ping and rejection within 300 s"
    );
    let pings = ingest::store::scan_ping_keys(&store).unwrap();
    let rejects = ingest::store::scan_reject_keys(&store).unwrap();
    let got: BTreeSet<_> = pings.iter().cloned().collect();
    assert_eq!(got.len(), pings.len(), "a ping is stored twice");
    assert_eq!(
        got, expected_pings,
        "stored pings differ from the valid unique pings published"
    );
    let got_rejects: BTreeSet<_> = rejects.iter().cloned().collect();
    assert_eq!(
        got_rejects.len(),
        rejects.len(),
        "a rejection is stored twice"
    );
    assert_eq!(got_rejects, expected_rejects);
}
