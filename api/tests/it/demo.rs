//! The README's demo command, end to end: `patrol demo` with its embedded broker, simulator,
//! ingest and API, stopped with SIGINT like Ctrl-C. Sped up, its units are live (fresh fixes,
//! not offline) and no fix is refused as from the future.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use arrow::array::{Array, Int32Array, StringArray};
use devkit::testkit::http::get_blocking;
use devkit::testkit::{fixtures, free_port, free_port_run, wait_listening, wait_until};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::support::{Reaper, patrol, wait_exit};

/// The value of a Prometheus counter in a `/metrics` body.
fn metric(body: &str, name: &str) -> u64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}

/// The string column `name` (or the int column, as text) of every Parquet file of `table`.
fn column(store: &Path, table: &str, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(days) = std::fs::read_dir(store.join(table)) else {
        return out;
    };
    for day in days.flatten() {
        for file in std::fs::read_dir(day.path()).unwrap().flatten() {
            let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(file.path()).unwrap())
                .unwrap()
                .build()
                .unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                let col = batch.column_by_name(name).unwrap();
                if let Some(text) = col.as_any().downcast_ref::<StringArray>() {
                    out.extend(text.iter().map(|v| v.unwrap_or_default().to_owned()));
                } else {
                    let ints = col.as_any().downcast_ref::<Int32Array>().unwrap();
                    out.extend((0..ints.len()).map(|i| ints.value(i).to_string()));
                }
            }
        }
    }
    out
}

/// The body of `GET path` with a bearer token (empty while the server does not answer).
fn authed_get(port: u16, path: &str, token: &str) -> String {
    get_blocking(port, path, Some(token)).map_or_else(|_| String::new(), |r| r.body)
}

/// The status and body of `GET path` without a token.
fn public_get(port: u16, path: &str) -> (u16, String) {
    let r = get_blocking(port, path, None).unwrap();
    (r.status, r.body)
}

#[test]
fn demo_publishes_ingests_serves_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let (http, mqtt) = (free_port(), free_port());
    let mut child = patrol()
        .args(["demo", "--data"])
        .arg(dir.path())
        .arg("--fixtures")
        .arg(fixtures())
        .args(["--http", &format!("127.0.0.1:{http}")])
        .args(["--mqtt-port", &mqtt.to_string()])
        .args(["--gateway-port", &free_port_run(6).to_string()])
        .args(["--speedup", "20"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The demo prints the map URL with a ready-made token.
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut child = Reaper(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut token = None;
    while token.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("demo prints its URLs");
        if let Some((_, t)) = line.split_once(&format!("http://127.0.0.1:{http}/#token=")) {
            token = Some(t.trim().to_owned());
        }
    }
    let token = token.unwrap();
    wait_listening(http, Duration::from_secs(30));
    assert_eq!(public_get(http, "/health").0, 200);
    assert!(public_get(http, "/").1.contains("<canvas"), "the map page");
    assert_eq!(
        public_get(http, "/api/units").0,
        401,
        "the API needs the token"
    );

    // Units appear on the live API and pings become durable.
    let mut stored = 0;
    wait_until(
        Duration::from_secs(60),
        "5 units live and 50 pings stored",
        || {
            let body = authed_get(http, "/api/units", &token);
            let units = body.matches("\"unit\":").count();
            stored = metric(
                &authed_get(http, "/metrics", &token),
                "patrol_pings_stored_total",
            );
            units >= 5 && stored >= 50
        },
    );

    // Sped up, the units are live: fresh fixes, shown moving or idle, not offline (a unit or
    // two may be in a simulated network outage), and nothing was refused as from the future.
    let body = authed_get(http, "/api/units", &token);
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let list = list.as_array().unwrap();
    let live: Vec<&serde_json::Value> = list
        .iter()
        .filter(|u| u["status"] != "offline" && u["age_s"].as_f64().unwrap() < 180.0)
        .collect();
    assert!(
        live.len() >= 5 && live.len() * 10 >= list.len() * 8,
        "{} of {} units live: {list:?}",
        live.len(),
        list.len()
    );
    // The simulated units report over every device protocol too, each through its gateway.
    wait_until(
        Duration::from_secs(60),
        "fixes through every gateway",
        || {
            let metrics = authed_get(http, "/metrics", &token);
            [
                "osmand\",transport=\"http",
                "jt808\",transport=\"tcp",
                "gt06\",transport=\"tcp",
                "teltonika\",transport=\"tcp",
                "lip\",transport=\"udp",
                "nmea\",transport=\"tcp",
            ]
            .iter()
            .all(|g| {
                metric(
                    &metrics,
                    &format!("patrol_gateway_fixes_total{{protocol=\"{g}\"}}"),
                ) > 0
            })
        },
    );
    let metrics = authed_get(http, "/metrics", &token);
    assert!(
        !metrics.contains("reason=\"future_timestamp\""),
        "{metrics}"
    );

    // Ctrl-C: a clean stop that leaves the received pings in Parquet.
    Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status()
        .unwrap();
    let status = wait_exit(&mut child.0, Duration::from_secs(30));
    assert!(status.success(), "demo exited with {status}");
    let store = dir.path().join("store");
    let keys = ingest::store::scan_ping_keys(&store).unwrap();
    assert!(
        keys.len() as u64 >= stored,
        "{} in Parquet, {stored} counted",
        keys.len()
    );
    // The rejects table holds the simulator's damaged payloads, never a future timestamp;
    // and the fixes arrived fresh: only the simulated late batches are flagged late.
    let reasons = column(&store, "rejects", "reason");
    assert!(
        reasons.iter().all(|r| r != "future_timestamp"),
        "{reasons:?}"
    );
    let late = i32::from(ingest::ping::Flags::LATE.bits());
    let flags = column(&store, "pings", "flags");
    let flagged = flags
        .iter()
        .filter(|f| f.parse::<i32>().unwrap() & late != 0)
        .count();
    assert!(
        flagged * 5 <= flags.len(),
        "{flagged} of {} pings late",
        flags.len()
    );
}
