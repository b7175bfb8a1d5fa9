//! What each subcommand does. Each returns `anyhow::Result` with context naming the file or
//! flag involved.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use devkit::broker;
use ingest::geofence::index::GeofenceIndex;
use ingest::source::mqtt;
use ingest::store::{Store, StoreConfig};
use model::jurisdiction::Jurisdiction;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cli::{
    Command, DemoArgs, FencesCommand, GenerateArgs, ImportArgs, ServeArgs, SimulateArgs,
    TokenCommand,
};
use crate::config::ServeConfig;
use crate::http::auth::{self, Caller, Role, Tokens};
use crate::sim::{self, SimConfig};
use crate::wiring::{self, IngestSettings};

const DAY_MS: i64 = 86_400_000;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Dispatches a subcommand.
///
/// # Errors
/// Whatever the subcommand reports.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Demo(a) => runtime()?.block_on(demo(a)),
        Command::Serve(a) => runtime()?.block_on(serve(a)),
        Command::Simulate(a) => runtime()?.block_on(simulate(a)),
        Command::Generate(a) => generate(&a),
        Command::Import(a) => import(&a),
        Command::Fences(FencesCommand::Check { dir }) => {
            let j = Jurisdiction::load(&dir)
                .with_context(|| format!("checking fences in {}", dir.display()))?;
            print!(
                "{}",
                ingest::geofence::check_catalog(j.catalog(), Some(j.county()))
            );
            Ok(())
        }
        Command::Fences(FencesCommand::Assign {
            fixtures,
            points,
            out,
        }) => assign(&fixtures, &points, &out),
        Command::Fixtures(a) => {
            let summary = crate::county::write_county(&a.out, a.seed)?;
            println!("wrote {} ({summary:?})", a.out.display());
            Ok(())
        }
        Command::Analyze(a) => match a.job.as_str() {
            "dosage" | "coverage" | "hotspots" | "gaps" | "koper" | "compliance" | "incidents"
            | "presence" => crate::analyze::run(&a),
            "response" => analyze_response(&a),
            other => anyhow::bail!(
                "patrol analyze {other}: unknown job (dosage, coverage, hotspots, gaps, koper, compliance, incidents, response, presence)"
            ),
        },
        Command::Report(a) => crate::report::run(&a),
        Command::Token(TokenCommand::New {
            role,
            station,
            name,
        }) => {
            let (token, hash) = auth::new_token();
            println!("token: {token}");
            println!("# Give the token to its holder; paste these lines into the serve config:");
            print!(
                "{}",
                auth::config_lines(&hash, role, station.as_deref(), name.as_deref())
            );
            Ok(())
        }
    }
}

async fn demo(a: DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        wiring::is_jurisdiction(&a.fixtures),
        "--fixtures {}: no jurisdiction.toml there (run from the repository root, or pass --fixtures)",
        a.fixtures.display()
    );
    let addr: SocketAddr = ([127, 0, 0, 1], a.mqtt_port).into();
    broker::start_embedded(addr, 1000)
        .with_context(|| format!("starting the embedded broker on {addr} (--mqtt-port)"))?;
    let tracker = TaskTracker::new();
    let token = CancellationToken::new();
    let running = wiring::start_ingest(
        IngestSettings {
            fixtures: a.fixtures.clone(),
            store: a.data.join("store"),
            mqtt: mqtt::MqttSourceConfig::new("127.0.0.1", a.mqtt_port, "patrol-demo-ingest"),
            flush_interval: Duration::from_secs(5),
            retention: None,
            node: None,
            channels: ingest::pipeline::ChannelConfig::DEFAULT,
            sweep_every: ingest::sink::live::SWEEP_EVERY,
        },
        &tracker,
        &token,
    )?;
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
    let now = wiring::now_ms();
    let speedup = a.speedup.max(0.01);
    let start = sim::live_start(now, speedup, running.jurisdiction.settings());
    let fleet = sim::fleet::build(&a.fixtures, start, now + 30 * DAY_MS, None, 1)?;
    let sim_cfg = SimConfig {
        host: "127.0.0.1".into(),
        port: a.mqtt_port,
        speedup,
        duration: None,
        faults: 1.0,
        seed: 1,
    };
    let sim_token = token.child_token();
    let sim_task = tokio::spawn(sim::simulate(fleet, sim_cfg, sim_token.clone()));
    println!(
        "patrol demo: broker mqtt://{addr}, store {}, API http://{http}/",
        a.data.join("store").display()
    );
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

async fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let file = match &a.config {
        Some(p) => ServeConfig::load(p)?,
        None => ServeConfig::default(),
    };
    let fixtures = a
        .fixtures
        .or(file.fixtures)
        .context("no jurisdiction: pass --fixtures or set `fixtures` in the config")?;
    let store_dir = a
        .store
        .or(file.store)
        .context("no store: pass --store or set `store` in the config")?;
    let http = a
        .http
        .or(file.http)
        .unwrap_or_else(|| ([127, 0, 0, 1], 8080).into());
    let url = a
        .mqtt
        .or(file.mqtt.url)
        .unwrap_or_else(|| "mqtt://127.0.0.1:1883".into());
    let broker = mqtt::parse_url(&url).map_err(|e| anyhow::anyhow!("--mqtt: {e}"))?;
    let mut mcfg = mqtt::MqttSourceConfig::new(
        &broker.host,
        broker.port,
        file.mqtt.client_id.as_deref().unwrap_or("patrol-ingest"),
    );
    if broker.tls {
        let ca = file
            .mqtt
            .ca_file
            .as_deref()
            .context("mqtts:// needs [mqtt] ca_file in the config (the broker's CA, PEM)")?;
        let client = match (&file.mqtt.client_cert, &file.mqtt.client_key) {
            (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
            (None, None) => None,
            _ => anyhow::bail!("config [mqtt] client_cert and client_key go together"),
        };
        mcfg.tls = Some(
            mqtt::TlsSettings::from_files(ca, client)
                .map_err(|e| anyhow::anyhow!("config [mqtt] TLS: {e}"))?,
        );
    }
    if let Some(t) = file.mqtt.topics {
        mcfg.topics = t;
    }
    if let Some(r) = file.mqtt.receive_maximum {
        anyhow::ensure!(r > 0, "config [mqtt] receive_maximum must be at least 1");
        mcfg.receive_maximum = r;
    }
    if let Some(m) = file.mqtt.max_packet_bytes {
        anyhow::ensure!(
            m >= 4096,
            "config [mqtt] max_packet_bytes must be at least 4096"
        );
        mcfg.max_packet_bytes = m;
    }
    if let (Some(u), Some(p)) = (file.mqtt.username, file.mqtt.password) {
        mcfg.credentials = Some((u, p));
    }
    let retention = match a.retention_days.or(file.store_settings.retention_days) {
        Some(0) => anyhow::bail!("--retention-days (or retention_days) must be at least 1"),
        Some(days) => Some(Duration::from_secs(u64::from(days) * 86_400)),
        None => None,
    };
    let tracker = TaskTracker::new();
    let token = CancellationToken::new();
    let running = wiring::start_ingest(
        IngestSettings {
            fixtures,
            store: store_dir.clone(),
            mqtt: mcfg,
            flush_interval: Duration::from_secs(
                file.store_settings.flush_interval_s.unwrap_or(5).max(1),
            ),
            retention,
            node: file.store_settings.node.clone(),
            channels: file.pipeline.channels(),
            sweep_every: file.pipeline.sweep_every(),
        },
        &tracker,
        &token,
    )?;
    let j = &running.jurisdiction;
    let stations: Vec<&str> = j.stations().iter().map(|s| s.id.as_str()).collect();
    let tokens = Tokens::from_config(&file.tokens, &stations).context("config")?;
    if tokens.is_empty() {
        tracing::warn!(
            "No [[tokens]] in the config: every API request but /health will be refused (see `patrol token new`)"
        );
    }
    let api = wiring::ApiSettings {
        tokens,
        store: store_dir,
    };
    let bound = wiring::serve_http(http, api, &running, &tracker, &token).await?;
    println!("patrol serve: ingesting from {url}, API http://{bound}/");
    tokio::select! {
        () = wiring::shutdown_signal() => {}
        () = token.cancelled() => {}
    }
    wiring::stop(&tracker, &token).await?;
    running.check()
}

async fn simulate(a: SimulateArgs) -> anyhow::Result<()> {
    let broker = mqtt::parse_url(&a.broker).map_err(|e| anyhow::anyhow!("--broker: {e}"))?;
    anyhow::ensure!(
        !broker.tls,
        "--broker: the simulator publishes over plain mqtt:// only"
    );
    let (host, port) = (broker.host, broker.port);
    let j = Jurisdiction::load(&a.fixtures)
        .with_context(|| format!("loading jurisdiction {}", a.fixtures.display()))?;
    let now = wiring::now_ms();
    let speedup = a.speedup.max(0.01);
    let start = sim::live_start(now, speedup, j.settings());
    let fleet = sim::fleet::build(&a.fixtures, start, now + 30 * DAY_MS, None, a.seed)?;
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        wiring::shutdown_signal().await;
        t.cancel();
    });
    let report = sim::simulate(
        fleet,
        SimConfig {
            host,
            port,
            speedup,
            duration: a.duration.map(Duration::from_secs),
            faults: a.faults,
            seed: a.seed,
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

fn generate(a: &GenerateArgs) -> anyhow::Result<()> {
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
    let make = || wiring::stages(&j, !cloned).expect("stages were built once before");
    // Build once up front so configuration errors surface as errors, not panics.
    wiring::stages(&j, !cloned)?;
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

fn import(a: &ImportArgs) -> anyhow::Result<()> {
    let j = Jurisdiction::load(&a.fixtures)
        .with_context(|| format!("loading jurisdiction {}", a.fixtures.display()))?;
    let mut stages = wiring::stages(&j, true)?;
    let mut store = Store::open(StoreConfig::new(&a.store))
        .with_context(|| format!("opening store {}", a.store.display()))?;
    let now = wiring::now_ms();
    let (mut stored, mut dups, mut rejected) = (0, 0, 0);
    for file in &a.files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let ext = file
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let points = match ext.as_str() {
            "gpx" => ingest::import::parse_gpx(&text),
            "csv" => ingest::import::parse_csv(&text),
            _ => anyhow::bail!(
                "{}: unknown track format (expected .gpx or .csv)",
                file.display()
            ),
        }
        .with_context(|| format!("parsing {}", file.display()))?;
        let fallback = a
            .unit
            .clone()
            .or_else(|| file.file_stem().map(|s| s.to_string_lossy().into_owned()));
        let topic = format!("file:{}", file.display());
        let mut records = Vec::with_capacity(points.len());
        for p in points {
            let Some(unit) = p.unit.clone().or_else(|| fallback.clone()) else {
                continue;
            };
            let station = a
                .station
                .clone()
                .or_else(|| j.unit(&unit).map(|u| u.station.clone()))
                .unwrap_or_else(|| "unknown".into());
            let raw = p.into_raw(&station, &unit);
            let line = format!("{} {} {}", raw.tst, raw.lat, raw.lon).into_bytes();
            records.push(stages.location(raw, &topic, &line, now));
        }
        let out = store
            .append(records)
            .with_context(|| format!("storing {}", file.display()))?;
        stored += out.pings;
        dups += out.duplicates;
        rejected += out.rejects;
    }
    store.flush()?;
    println!(
        "imported {stored} pings ({dups} already stored, {rejected} rejected) into {}",
        a.store.display()
    );
    Ok(())
}

fn assign(fixtures: &Path, points: &Path, out: &Path) -> anyhow::Result<()> {
    let j = Jurisdiction::load(fixtures)
        .with_context(|| format!("loading jurisdiction {}", fixtures.display()))?;
    let res = h3o::Resolution::try_from(j.settings().h3.fence_res).context("[h3] fence_res")?;
    let index = GeofenceIndex::build(j.catalog(), res).context("indexing fences")?;
    let text = std::fs::read_to_string(points)
        .with_context(|| format!("reading --points {}", points.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .with_context(|| format!("--points {}: no `{name}` column", points.display()))
    };
    let (ci, cl, cn) = (col("id")?, col("lat")?, col("lon")?);
    let mut csv = String::from("id,lat,lon,beat,zone\n");
    for (n, line) in lines.enumerate() {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let get = |i: usize| f.get(i).copied().unwrap_or("");
        let parse = |i: usize, what: &str| {
            get(i).parse::<f64>().with_context(|| {
                format!(
                    "--points {} line {}: bad {what} {:?}",
                    points.display(),
                    n + 2,
                    get(i)
                )
            })
        };
        let (lat, lon) = (parse(cl, "lat")?, parse(cn, "lon")?);
        let a = index.assign(lat, lon);
        let beat = a
            .beat
            .and_then(|b| index.beat(b))
            .map_or("", |f| f.id.as_str());
        let zone = a
            .zone
            .and_then(|z| index.zone(z))
            .map_or("", |f| f.id.as_str());
        let _ = writeln!(csv, "{},{lat},{lon},{beat},{zone}", get(ci));
    }
    std::fs::write(out, csv).with_context(|| format!("writing --out {}", out.display()))?;
    Ok(())
}

/// `patrol analyze response`: the 30 km / 30 minute rule from the stations (after the what-if
/// flags), from the units on duty hour by hour, and per incident; written by `--out`'s
/// extension.
fn analyze_response(a: &crate::cli::AnalyzeArgs) -> anyhow::Result<()> {
    use analytics::response::{Change, ResponseJob, Scenario};
    use chrono::{DateTime, NaiveDate, TimeZone, Utc};

    let tz = Jurisdiction::load(&a.fixtures)
        .with_context(|| format!("--fixtures {}", a.fixtures.display()))?
        .timezone();
    let time = |flag: &str, s: &str| -> anyhow::Result<DateTime<Utc>> {
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(t.with_timezone(&Utc));
        }
        let day = NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .with_context(|| format!("{flag} {s}: expected RFC 3339 or YYYY-MM-DD"))?;
        tz.from_local_datetime(&day.and_time(chrono::NaiveTime::MIN))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .with_context(|| format!("{flag} {s}: local midnight does not exist"))
    };
    let point = |flag: &str, s: &str| -> anyhow::Result<(f64, f64)> {
        let parsed = s.split_once(',').and_then(|(lat, lon)| {
            let (lat, lon) = (
                lat.trim().parse::<f64>().ok()?,
                lon.trim().parse::<f64>().ok()?,
            );
            (lat.abs() <= 90.0 && lon.abs() <= 180.0).then_some((lat, lon))
        });
        parsed.with_context(|| format!("{flag} {s}: expected LAT,LON in degrees"))
    };
    let mut changes = Vec::new();
    for s in &a.add_station {
        let (lat, lon) = point("--add-station", s)?;
        changes.push(Change::AddStation { lat, lon });
    }
    for s in &a.move_station {
        let (id, at) = s
            .split_once('=')
            .with_context(|| format!("--move-station {s}: expected ID=LAT,LON"))?;
        let (lat, lon) = point("--move-station", at)?;
        changes.push(Change::MoveStation {
            id: id.trim().to_owned(),
            lat,
            lon,
        });
    }
    for s in &a.post_unit {
        let (lat, lon) = point("--post-unit", s)?;
        changes.push(Change::PostUnit { lat, lon });
    }
    let mut job = ResponseJob::new(
        &a.fixtures,
        &a.store,
        time("--from", &a.from)?,
        time("--to", &a.to)?,
    );
    job.res = a.res;
    job.scenario = Scenario { changes };
    job.incidents.clone_from(&a.incidents);
    let report = job.run().context("patrol analyze response")?;
    report
        .write(&a.out)
        .with_context(|| format!("--out {}", a.out.display()))?;
    let s = &report.summary;
    println!(
        "response: {} cells at res {}, {:.1}% of the area passes from {} sources ({} failing \
         areas, worst {:.1} min); {} hours from units on duty; wrote {}",
        s.cells,
        report.res,
        s.passing_area_share * 100.0,
        report.sources.len(),
        s.failing_areas.len(),
        s.worst_time_s / 60.0,
        report.hours.len(),
        a.out.display()
    );
    Ok(())
}
