//! The standing fault-injection suite: `patrol serve` against a real Mosquitto while a device
//! stream flows and a fault is injected (ingest killed, ingest and broker killed together,
//! ingest down for 30 s, the disk filled then freed, the store's file system turned read-only,
//! a second process on the same store, poison messages, a wrong broker password).
//!
//! Each run prints one line, `fault NAME: sent S / acknowledged A / stored P / rejected R /
//! lost L / duplicated D`, where acknowledged counts the broker's PUBACKs, lost the valid
//! pings the broker acknowledged that are not in the store, and duplicated the stored rows
//! beyond one per `(unit, fix time)`; RELIABILITY.md collects the figures. Lost and
//! duplicated must be 0.
//!
//! The disk and file system faults mount a tmpfs or a loop-mounted ext4 image, so they need
//! root (CI runs as root); every test here needs Mosquitto and runs in CI's extended step.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use devkit::testkit::http::get_blocking;
use devkit::testkit::mosquitto::mosquitto;
use devkit::testkit::{
    fixtures, free_port, poll_every, poll_until_async, wait_listening, wait_until,
};
use model::jurisdiction::Jurisdiction;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};

use crate::support::{serve_command, wait_exit};

/// Broker settings for the ingest faults: queue without limit for ingest's session, refuse
/// packets over the shipped limit, keep nothing on disk (the broker is not what fails here).
const BROKER: &str = "allow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 1000\nmax_packet_size 1048576\npersistence false";

/// A `patrol serve` child with its stderr in a file.
struct Serve {
    child: Child,
    http: u16,
    log: PathBuf,
}

/// The admin token of the servers here (for `/metrics`).
const TOKEN: &str = "faults-suite-admin-token";

/// The config file of a server named `name`: a short flush interval, so the Parquet files
/// (which the tests read) follow the WAL closely, and [`TOKEN`].
fn config(dir: &Path, name: &str, mqtt_port: u16, extra: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let hash: String = Sha256::digest(TOKEN.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[mqtt]\nurl = \"mqtt://127.0.0.1:{mqtt_port}\"\nclient_id = \"faults-{name}\"\n{extra}\n[store_settings]\nflush_interval_s = 1\n[[tokens]]\nhash = \"{hash}\"\nrole = \"admin\"\n"
        ),
    )
    .unwrap();
    path
}

impl Serve {
    /// Starts serve on `store` and waits until its HTTP port answers.
    fn start(config: &Path, store: &Path, log: &Path) -> Serve {
        let http = free_port();
        let child = Self::spawn(config, store, log, http);
        wait_listening(http, Duration::from_secs(30));
        Serve {
            child,
            http,
            log: log.to_owned(),
        }
    }

    fn spawn(config: &Path, store: &Path, log: &Path, http: u16) -> Child {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        serve_command(config, store, http)
            .stderr(err)
            .spawn()
            .unwrap()
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit status (within 30 s).
    fn stop(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        wait_exit(&mut self.child, Duration::from_secs(30))
    }

    /// The status and body of `GET path`, with [`TOKEN`]; status 0 while serve does not
    /// answer.
    fn get(&self, path: &str) -> (u16, String) {
        get_blocking(self.http, path, Some(TOKEN))
            .map_or((0, String::new()), |r| (r.status, r.body))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The device stream: valid pings with unique `(unit, fix time)` for 20 of the fixture
/// county's units, in their own stations' topics.
struct Stream {
    messages: Vec<(String, Vec<u8>)>,
    valid: BTreeSet<(String, i64)>,
}

fn stream(n: usize, salt: i64) -> Stream {
    let units: Vec<(String, String)> = Jurisdiction::load(&fixtures())
        .unwrap()
        .units()
        .iter()
        .map(|u| (u.id.clone(), u.station.clone()))
        .take(20)
        .collect();
    // A day back, so every fix is within the reorder window's past and no alert depends on
    // the wall clock; `salt` keeps the runs of one test apart.
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 86_400
        + salt;
    let mut messages = Vec::with_capacity(n);
    let mut valid = BTreeSet::new();
    for i in 0..n {
        let (unit, station) = &units[i % units.len()];
        let tst = base + (i / units.len()) as i64;
        let lat = 40.05 + (i % 997) as f64 * 1e-4;
        let payload =
            format!(r#"{{"_type":"location","lat":{lat:.6},"lon":-88.9,"tst":{tst},"acc":10}}"#);
        messages.push((format!("owntracks/{station}/{unit}"), payload.into_bytes()));
        valid.insert((unit.clone(), tst * 1000));
    }
    Stream { messages, valid }
}

/// A device-side publisher on its own thread: QoS 1, a persistent session, counting the
/// broker's acknowledgements; unacknowledged messages are sent again after a reconnect.
struct Publisher {
    acked: Arc<AtomicU64>,
    sent: usize,
    thread: std::thread::JoinHandle<()>,
}

fn publish(port: u16, messages: Vec<(String, Vec<u8>)>, per_second: usize) -> Publisher {
    let acked = Arc::new(AtomicU64::new(0));
    let sent = messages.len();
    let a = acked.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let mut o = MqttOptions::new(format!("faults-device-{port}"), "127.0.0.1", port);
            o.set_keep_alive(Duration::from_secs(5))
                .set_clean_start(false)
                .set_session_expiry_interval(Some(3600))
                .set_max_packet_size(Some(2 << 20));
            let (client, mut eventloop) = AsyncClient::new(o, 1000);
            let counter = a.clone();
            let driver = tokio::spawn(async move {
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Incoming(Packet::PubAck(_))) => {
                            counter.fetch_add(1, Relaxed);
                        }
                        Ok(_) => {}
                        // Disconnected: a device's pause before it reconnects (pacing).
                        Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
            });
            let pause = Duration::from_secs_f64(1.0 / per_second.max(1) as f64);
            let mut tick = tokio::time::interval(pause * 50);
            for chunk in messages.chunks(50) {
                tick.tick().await;
                for (topic, payload) in chunk {
                    client
                        .publish(topic.clone(), QoS::AtLeastOnce, false, payload.clone())
                        .await
                        .unwrap();
                }
            }
            // Every PUBACK, or what came within the limit: `report` says what was missing.
            poll_until_async(Duration::from_secs(120), || a.load(Relaxed) >= sent as u64).await;
            driver.abort();
        });
    });
    Publisher {
        acked,
        sent,
        thread,
    }
}

impl Publisher {
    /// Waits until the broker has acknowledged `n` messages: the stream is that far along.
    fn wait_acked(&self, n: u64) {
        wait_until(
            Duration::from_secs(60),
            &format!("{n} messages acknowledged by the broker"),
            || self.acked.load(Relaxed) >= n,
        );
    }

    fn finish(self) -> (usize, u64) {
        self.thread.join().unwrap();
        (self.sent, self.acked.load(Relaxed))
    }
}

/// Counts in the store against the stream, printed as the suite's line; asserts nothing was
/// lost or duplicated.
fn report(name: &str, store: &Path, sent: usize, acked: u64, stream: &Stream) -> usize {
    let rows = ingest::store::scan_ping_keys(store).unwrap();
    let rejects = ingest::store::scan_reject_keys(store).unwrap().len();
    let keys: BTreeSet<_> = rows.iter().cloned().collect();
    let duplicated = rows.len() - keys.len();
    let lost = stream.valid.difference(&keys).count();
    println!(
        "fault {name}: sent {sent} / acknowledged {acked} / stored {} / rejected {rejects} / lost {lost} / duplicated {duplicated}",
        keys.len()
    );
    assert_eq!(
        acked as usize, sent,
        "{name}: the broker acknowledged every message"
    );
    assert_eq!(lost, 0, "{name}: acknowledged pings missing from the store");
    assert_eq!(duplicated, 0, "{name}: pings stored twice");
    rejects
}

/// Waits until the store holds every valid ping of `stream` (Parquet is flushed every
/// second); on time-out says how many are missing and what serve logged.
fn wait_stored(store: &Path, stream: &Stream, limit: Duration, serve: &Serve) {
    let mut missing = stream.valid.len();
    // The scan reads the store's files: five times a second is enough.
    let stored = poll_every(Duration::from_millis(200), limit, || {
        let keys: BTreeSet<_> = ingest::store::scan_ping_keys(store)
            .unwrap_or_default()
            .into_iter()
            .collect();
        missing = stream.valid.difference(&keys).count();
        missing == 0
    });
    assert!(
        stored,
        "{missing} pings still missing from the store; serve logged:\n{}",
        serve.log()
    );
}

/// One test's broker, folder, store and serve config.
struct Rig {
    broker: devkit::testkit::mosquitto::Mosquitto,
    dir: tempfile::TempDir,
    store: PathBuf,
    cfg: PathBuf,
    log: PathBuf,
}

impl Rig {
    /// A broker with [`BROKER`]'s settings and a store in the test's folder.
    fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        Rig::at(dir, store)
    }

    /// [`Rig::new`] with the store at `store` (on a file system the test mounted).
    fn at(dir: tempfile::TempDir, store: PathBuf) -> Rig {
        let broker = mosquitto(BROKER);
        let cfg = config(dir.path(), "serve", broker.port, "");
        let log = dir.path().join("serve.log");
        Rig {
            broker,
            dir,
            store,
            cfg,
            log,
        }
    }

    /// Starts serve and waits until it is connected to the broker.
    fn serve(&self) -> Serve {
        let serve = Serve::start(&self.cfg, &self.store, &self.log);
        wait_until(Duration::from_secs(20), "serve ready", || {
            serve.get("/ready").0 == 200
        });
        serve
    }
}

#[test]
#[ignore = "needs mosquitto; run by CI's extended step"]
fn poison_messages_end_as_rejects_and_ingest_goes_on() {
    let rig = Rig::new();
    let store = &rig.store;
    let serve = rig.serve();
    let mut s = stream(3000, 0);
    // Each oversize payload in the middle of the stream, twice (the second copy is a
    // duplicate rejection); rumqttc's default limit was 10 KiB, so the first broke ingest.
    let sizes = [11 * 1024, 256 * 1024, 1_000_000];
    let mut poison = Vec::new();
    for (k, size) in sizes.iter().enumerate() {
        let mut payload =
            format!(r#"{{"_type":"location","lat":40.1,"lon":-88.9,"tst":{size},"pad":""#)
                .into_bytes();
        payload.resize(*size - 2, b'x');
        payload.extend_from_slice(b"\"}");
        let at = 500 * (k + 1);
        for copy in 0..2 {
            poison.push(at + copy);
            s.messages
                .insert(at + copy, ("owntracks/ST1/C01".into(), payload.clone()));
        }
    }
    let publisher = publish(rig.broker.port, s.messages.clone(), 5000);
    let (sent, acked) = publisher.finish();
    wait_stored(store, &s, Duration::from_secs(60), &serve);
    let (_, metrics) = serve.get("/metrics");
    assert!(
        metrics.contains("patrol_rejected_total{reason=\"oversize\"} 6"),
        "{metrics}"
    );
    assert!(serve.stop().success());
    let rejected = report("poison", store, sent, acked, &s);
    assert_eq!(rejected, sizes.len(), "one oversize rejection per payload");
    let reasons = ingest::store::scan_reject_keys(store).unwrap();
    assert!(reasons.iter().all(|(t, _)| t == "owntracks/ST1/C01"));
}

#[test]
#[ignore = "needs mosquitto; run by CI's extended step"]
fn ingest_sigkill_mid_stream_loses_nothing() {
    let rig = Rig::new();
    let (store, cfg, log) = (&rig.store, &rig.cfg, &rig.log);
    let mut serve = rig.serve();
    let s = stream(40_000, 0);
    let publisher = publish(rig.broker.port, s.messages.clone(), 8000);
    // Killed twice mid-stream: at 30 % and at 60 % of it.
    for share in [12_000, 24_000] {
        publisher.wait_acked(share);
        serve.kill();
        serve = Serve::start(cfg, store, log);
    }
    let (sent, acked) = publisher.finish();
    wait_stored(store, &s, Duration::from_secs(90), &serve);
    assert!(serve.stop().success());
    report("ingest_sigkill", store, sent, acked, &s);
}

#[test]
#[ignore = "needs mosquitto; run by CI's extended step"]
fn ingest_down_thirty_seconds_loses_nothing() {
    let rig = Rig::new();
    let (store, cfg, log) = (&rig.store, &rig.cfg, &rig.log);
    let serve = rig.serve();
    let s = stream(20_000, 0);
    let publisher = publish(rig.broker.port, s.messages.clone(), 2000);
    publisher.wait_acked(4000);
    serve.kill();
    // The broker queues for ingest's persistent session while it is away: being away for
    // 30 s is the fault.
    std::thread::sleep(Duration::from_secs(30));
    let serve = Serve::start(cfg, store, log);
    let (sent, acked) = publisher.finish();
    wait_stored(store, &s, Duration::from_secs(90), &serve);
    assert!(serve.stop().success());
    report("ingest_down_30s", store, sent, acked, &s);
}

/// A file system mounted for one test, unmounted on drop.
struct Mount {
    path: PathBuf,
}

impl Mount {
    fn run(args: &[&str]) {
        let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {} (these faults need root)",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[test]
#[ignore = "needs mosquitto and root (mounts a tmpfs); run by CI's extended step"]
fn disk_full_pauses_ingest_until_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("disk");
    std::fs::create_dir(&mnt).unwrap();
    Mount::run(&[
        "mount",
        "-t",
        "tmpfs",
        "-o",
        "size=48m",
        "tmpfs",
        mnt.to_str().unwrap(),
    ]);
    let _mount = Mount { path: mnt.clone() };
    let rig = Rig::at(dir, mnt.join("store"));
    let store = &rig.store;
    let serve = rig.serve();
    let s = stream(30_000, 0);
    let (first, rest) = s.messages.split_at(5000);
    let publisher = publish(rig.broker.port, first.to_vec(), 5000);
    publisher.finish();
    // Fill the disk to the last byte.
    let filler = mnt.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 1 << 20];
        while f.write_all(&block).is_ok() {}
        let small = [0u8; 512];
        while f.write_all(&small).is_ok() {}
    }
    let publisher = publish(rig.broker.port, rest.to_vec(), 5000);
    wait_until(Duration::from_secs(30), "ingest to pause", || {
        let (status, body) = serve.get("/ready");
        status == 503 && body.contains("store refuses writes")
    });
    let (_, metrics) = serve.get("/metrics");
    assert!(metrics.contains("patrol_store_paused 1"), "{metrics}");
    // Paused for a while: the process stays up and acknowledges nothing more. Nothing is
    // awaited here, the 3 s are the span over which nothing must happen.
    let acked_before = metric(&serve, "patrol_mqtt_acked_total");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(metric(&serve, "patrol_mqtt_acked_total"), acked_before);
    std::fs::remove_file(&filler).unwrap();
    let (sent, acked) = publisher.finish();
    wait_stored(store, &s, Duration::from_secs(90), &serve);
    assert_eq!(serve.get("/ready").0, 200);
    assert!(serve.log().contains("ingest pauses"), "{}", serve.log());
    assert!(serve.stop().success());
    report("disk_full", store, sent + 5000, acked + 5000, &s);
}

fn metric(serve: &Serve, name: &str) -> u64 {
    let (_, body) = serve.get("/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {body}"))
}

#[test]
#[ignore = "needs mosquitto and root (loop-mounts an ext4 image); run by CI's extended step"]
fn a_store_turned_read_only_pauses_ingest_and_a_repaired_one_takes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("store.img");
    let mnt = dir.path().join("disk");
    std::fs::create_dir(&mnt).unwrap();
    Mount::run(&["truncate", "-s", "64M", image.to_str().unwrap()]);
    Mount::run(&["mkfs.ext4", "-q", "-F", image.to_str().unwrap()]);
    let mount = |_: ()| {
        Mount::run(&[
            "mount",
            "-o",
            "loop,errors=remount-ro",
            image.to_str().unwrap(),
            mnt.to_str().unwrap(),
        ]);
    };
    mount(());
    let guard = Mount { path: mnt.clone() };
    let rig = Rig::at(dir, mnt.join("store"));
    let (store, cfg, log) = (&rig.store, &rig.cfg, &rig.log);
    let serve = rig.serve();
    let s = stream(20_000, 0);
    let publisher = publish(rig.broker.port, s.messages.clone(), 4000);
    publisher.wait_acked(8000);
    // What a failing disk does to ext4 with errors=remount-ro: read-only at once, open files
    // and all.
    let source = String::from_utf8(
        Command::new("findmnt")
            .args(["-n", "-o", "SOURCE"])
            .arg(&mnt)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let dev = Path::new(source.trim()).file_name().unwrap().to_owned();
    std::fs::write(
        Path::new("/sys/fs/ext4")
            .join(&dev)
            .join("trigger_fs_error"),
        "fault suite\n",
    )
    .unwrap();
    wait_until(Duration::from_secs(30), "ingest to pause", || {
        let (status, body) = serve.get("/ready");
        status == 503 && body.contains("store refuses writes")
    });
    // The operator stops ingest (it says it stopped with data left to the broker), repairs
    // the file system and starts it again.
    let status = serve.stop();
    assert!(!status.success(), "stopping while paused is a failure exit");
    drop(guard);
    wait_until(Duration::from_secs(10), "the unmount", || {
        !Command::new("mountpoint")
            .arg("-q")
            .arg(&mnt)
            .status()
            .unwrap()
            .success()
    });
    // e2fsck exits 1 or 2 when it corrected errors, 4 and above when some remain.
    let fsck = Command::new("e2fsck")
        .arg("-fy")
        .arg(&image)
        .output()
        .unwrap();
    assert!(fsck.status.code().is_some_and(|c| c < 4), "{fsck:?}");
    mount(());
    let _guard = Mount { path: mnt.clone() };
    let serve = Serve::start(cfg, store, log);
    let (sent, acked) = publisher.finish();
    wait_stored(store, &s, Duration::from_secs(90), &serve);
    assert!(serve.stop().success());
    // The write in flight when the file system turned may fail with EIO, the next with EROFS.
    let mut text = String::new();
    std::fs::File::open(log)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(
        text.contains("ingest pauses")
            && (text.contains("Read-only file system") || text.contains("Input/output error")),
        "{text}"
    );
    report("store_read_only", store, sent, acked, &s);
}

#[test]
#[ignore = "needs mosquitto; run by CI's extended step"]
fn a_second_process_on_the_same_store_is_refused() {
    let rig = Rig::new();
    let store = &rig.store;
    let serve = rig.serve();
    let s = stream(20_000, 0);
    let publisher = publish(rig.broker.port, s.messages.clone(), 5000);
    let second_log = rig.dir.path().join("second.log");
    let mut second = Serve::spawn(
        &config(rig.dir.path(), "second", rig.broker.port, ""),
        store,
        &second_log,
        free_port(),
    );
    let status = wait_exit(&mut second, Duration::from_secs(30));
    assert!(!status.success());
    let text = std::fs::read_to_string(&second_log).unwrap();
    assert!(text.contains("in use by another process"), "{text}");
    let (sent, acked) = publisher.finish();
    wait_stored(store, &s, Duration::from_secs(60), &serve);
    assert!(serve.stop().success());
    report("second_process", store, sent, acked, &s);
}

#[test]
#[ignore = "needs mosquitto and mosquitto_passwd; run by CI's extended step"]
fn a_wrong_broker_password_stops_serve_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    crate::security::add_user(&passwd, "ingest", "right");
    let broker = mosquitto(&format!(
        "allow_anonymous false\npassword_file {}",
        passwd.display()
    ));
    let cfg = config(
        dir.path(),
        "serve",
        broker.port,
        "username = \"ingest\"\npassword = \"wrong\"",
    );
    let log = dir.path().join("serve.log");
    let mut child = Serve::spawn(&cfg, &dir.path().join("store"), &log, free_port());
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(!status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("refused the connection") && text.contains("username and password"),
        "{text}"
    );
}

#[test]
#[ignore = "needs mosquitto; run by CI's extended step"]
fn ingest_is_ready_again_soon_after_every_broker_restart() {
    let mut rig = Rig::new();
    let serve = rig.serve();
    // Twice: a back-off that grew in the first outage and was not reset at the reconnect
    // would keep ingest away for most of a minute after the second.
    for round in 1..=2 {
        rig.broker.kill9();
        wait_until(
            Duration::from_secs(20),
            "/ready to report the lost broker",
            || {
                let (status, body) = serve.get("/ready");
                status == 503 && body.contains("not connected to the MQTT broker")
            },
        );
        // Down for 10 s, so that ingest's reconnect back-off grows: the outage is the fault.
        std::thread::sleep(Duration::from_secs(10));
        rig.broker.restart();
        let back = Instant::now();
        wait_until(Duration::from_secs(60), "the reconnect", || {
            serve.get("/ready").0 == 200
        });
        let took = back.elapsed();
        println!("fault broker_restart: round {round}: ingest ready {took:?} after the broker");
        assert!(
            took <= Duration::from_secs(10),
            "round {round}: ingest took {took:?} to reconnect (back-off at most 5 s)"
        );
    }
    assert!(serve.stop().success());
}
