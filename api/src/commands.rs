//! What each subcommand does. Each returns `anyhow::Result` with context naming the file or
//! flag involved.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use ingest::geofence::index::GeofenceIndex;
use ingest::source::mqtt;
use ingest::store::{Store, StoreConfig};
use model::jurisdiction::Jurisdiction;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cli::{Command, FencesCommand, ImportArgs, ServeArgs, TokenCommand};
use crate::config::ServeConfig;
use crate::http::auth::{self, Tokens};
use crate::wiring::{self, IngestSettings};

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
        #[cfg(feature = "demo")]
        Command::Demo(a) => runtime()?.block_on(crate::kit::demo(a)),
        Command::Serve(a) => runtime()?.block_on(serve(a)),
        #[cfg(feature = "demo")]
        Command::Simulate(a) => runtime()?.block_on(crate::kit::simulate(a)),
        #[cfg(feature = "demo")]
        Command::Generate(a) => crate::kit::generate(&a),
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
        #[cfg(feature = "demo")]
        Command::Fixtures(a) => {
            let summary = demo::county::write_county(&a.out, a.seed)?;
            println!("wrote {} ({summary:?})", a.out.display());
            Ok(())
        }
        Command::Analyze(a) => crate::analyze::run(&a),
        Command::Report(a) => crate::report::run(&a),
        Command::Plan(a) => crate::plan::run(&a),
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
            gateways: file.gateways.clone(),
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

fn import(a: &ImportArgs) -> anyhow::Result<()> {
    let j = Jurisdiction::load(&a.fixtures)
        .with_context(|| format!("loading jurisdiction {}", a.fixtures.display()))?;
    let mut stages = wiring::stages(&j, true)?;
    let mut store = Store::open(StoreConfig::new(&a.store))
        .with_context(|| format!("opening store {}", a.store.display()))?;
    let now = model::now_ms();
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
