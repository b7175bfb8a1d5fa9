//! Retention: `patrol serve --retention-days N` purges day partitions older than N days and
//! keeps the rest. Data gets into the store through `patrol import`, as a backfill would.

use std::process::Stdio;
use std::time::Duration;

use chrono::{Duration as Days, Utc};
use devkit::testkit::{fixtures, free_port, wait_listening, wait_until};

use crate::support::{Reaper, patrol};

#[test]
fn serve_purges_partitions_older_than_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let today = Utc::now().date_naive();
    let old = today - Days::days(10);
    let recent = today - Days::days(1);
    let csv = dir.path().join("track.csv");
    std::fs::write(
        &csv,
        format!(
            "unit,time,lon,lat,acc\n\
             C01,{old}T09:00:00Z,-88.9,40.1,5\n\
             C01,{old}T09:01:00Z,-88.9,40.101,5\n\
             C01,{recent}T09:00:00Z,-88.9,40.1,5\n"
        ),
    )
    .unwrap();
    let status = patrol()
        .args(["import", "--store"])
        .arg(&store)
        .arg("--fixtures")
        .arg(fixtures())
        .arg(&csv)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let old_dir = store.join(format!("pings/date={old}"));
    let recent_dir = store.join(format!("pings/date={recent}"));
    assert!(
        old_dir.is_dir() && recent_dir.is_dir(),
        "import wrote both days"
    );

    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "[store_settings]\nflush_interval_s = 1\n").unwrap();
    let http = free_port();
    // No broker listens on this port: ingest keeps retrying while the store thread purges.
    let child = patrol()
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--fixtures")
        .arg(fixtures())
        .arg("--store")
        .arg(&store)
        .args(["--mqtt", &format!("mqtt://127.0.0.1:{}", free_port())])
        .args(["--http", &format!("127.0.0.1:{http}")])
        .args(["--retention-days", "3"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = Reaper(child);
    wait_listening(http, Duration::from_secs(20));
    wait_until(
        Duration::from_secs(20),
        "the purge of the 10-day-old partition",
        || !old_dir.exists(),
    );
    drop(child);
    assert!(recent_dir.is_dir(), "yesterday's partition was kept");
    let keys = ingest::store::scan_ping_keys(&store).unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
}
