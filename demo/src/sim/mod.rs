//! The fleet simulator (`patrol simulate`, and the demo) and the bulk generator
//! (`patrol generate`).
//!
//! - [`model`]: where each unit is and when it reports (pure, seeded).
//! - [`faults`]: what the network does to the reports (pure, seeded).
//! - [`fleet`]: builds both from a jurisdiction directory.
//! - [`link`]: a unit's device speaking a gateway protocol (JT/T 808, GT06, Teltonika,
//!   OsmAnd, TETRA LIP, NMEA).
//! - this module: drives them against the clock and sends each unit's reports over MQTT or,
//!   given the gateways' addresses, over its device's protocol.
//! - [`generate`]: writes a span of days straight into a store.

pub mod faults;
pub mod fleet;
pub mod generate;
pub mod link;
pub mod model;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ::model::jurisdiction::Settings;
use ingest::gateway::DeviceFix;
use ingest::source::mqtt::{Publisher, PublisherConfig};
use tokio_util::sync::CancellationToken;

use faults::{Action, FaultCounts, FaultInjector, FaultRates};
use fleet::Fleet;
use link::{GatewayPorts, Link, Protocol};

/// Settings of a live simulation.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Simulated seconds per real second while the clock catches up with the wall clock from
    /// the fleet's start (see [`live_start`]); it then runs at real time, never ahead of the
    /// wall clock (devices cannot report the future).
    pub speedup: f64,
    /// Stop after this long (real time).
    pub duration: Option<Duration>,
    /// Fault rate scale (see [`FaultRates::scaled`]).
    pub faults: f64,
    /// Seed.
    pub seed: u64,
    /// The device gateways' addresses: when given, the `i`th unit with device identities
    /// reports over [`Protocol::ALL`]`[i % 7]` (MQTT, JT/T 808, GT06, Teltonika, OsmAnd,
    /// TETRA LIP, NMEA); otherwise every unit uses MQTT.
    pub gateways: Option<GatewayPorts>,
}

/// What a simulation did.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimReport {
    /// Fixes produced by the model.
    pub fixes: u64,
    /// Payloads published (MQTT) or sent to a gateway.
    pub published: u64,
    /// Sends to a gateway that failed (no connection, no acknowledgement in time).
    pub link_errors: u64,
    /// Faults injected.
    pub faults: FaultCounts,
}

/// Where the clock of a live simulation at `speedup` starts, given the jurisdiction's
/// settings.
///
/// Above 1x it starts in the past and catches up at `speedup`, so units have a short history
/// at once; but by at most three quarters of the shorter of the reorder window and the offline
/// time, so that every fix still arrives in time to count as live: not flagged late, its unit
/// not shown offline. Starting further back (hours) would fill the map with offline units for
/// as long as the catch-up lasts. At or below 1x it starts now.
pub fn live_start(now_ms: i64, speedup: f64, settings: &Settings) -> i64 {
    if speedup <= 1.0 {
        return now_ms;
    }
    let fresh_s = settings
        .validate
        .reorder_window_s
        .min(settings.status.offline_after_s);
    now_ms - i64::from(fresh_s) * 750
}

struct Conn {
    publisher: Publisher,
    task: tokio::task::JoinHandle<()>,
}

fn connect(cfg: &SimConfig, station: &str, unit: &str) -> Conn {
    let topic = format!("owntracks/{station}/{unit}");
    let will = format!(r#"{{"_type":"lwt","tst":{}}}"#, ::model::now_ms() / 1000).into_bytes();
    let (publisher, task) = Publisher::connect(&PublisherConfig {
        host: cfg.host.clone(),
        port: cfg.port,
        client_id: format!("sim-{station}-{unit}"),
        last_will: Some((topic, will)),
        credentials: None,
        queue: 256,
    });
    Conn { publisher, task }
}

/// Runs the fleet against the clock until `shutdown` fires or the duration passes.
///
/// # Errors
/// When a publish fails because the connection task ended.
pub async fn simulate(
    mut fleet: Fleet,
    cfg: SimConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<SimReport> {
    let wall_start = ::model::now_ms();
    let started = Instant::now();
    let speedup = cfg.speedup.max(0.01);
    // Catching up from the past at `speedup`, then running at real time.
    let sim_start = fleet.start_ms;
    let tz = fleet.tz;
    let clock = move || {
        let el = started.elapsed().as_secs_f64() * 1000.0;
        let t = sim_start + (el * speedup) as i64;
        t.min(wall_start + el as i64)
    };
    let rates = FaultRates::scaled(cfg.faults);
    let mut injectors: Vec<FaultInjector> = fleet
        .units
        .iter()
        .enumerate()
        .map(|(i, u)| FaultInjector::new(rates, cfg.seed ^ ((i as u64 + 1) * 0x9e37), &u.unit))
        .collect();
    let mut conns: HashMap<usize, Conn> = HashMap::new();
    let mut links: HashMap<usize, Link> = HashMap::new();
    if let Some(ports) = &cfg.gateways {
        for (i, u) in fleet.units.iter().enumerate() {
            let protocol = Protocol::ALL[i % Protocol::ALL.len()];
            if let Some(addr) = ports.of(protocol)
                && let Ok(link) = Link::new(protocol, addr, u.devices.clone())
            {
                links.insert(i, link);
            }
        }
    }
    let mut offline_until: HashMap<usize, i64> = HashMap::new();
    let mut report = SimReport::default();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut last_log = Instant::now();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        if cfg.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        let now = clock();
        let world = &fleet.world;
        for (i, (unit, injector)) in fleet.units.iter_mut().zip(&mut injectors).enumerate() {
            while unit.next_report_ms() <= now {
                let Some(fix) = unit.step(world, |t| fleet::local_hour(tz, t)) else {
                    // Off shift: a clean disconnect, so no last will.
                    if let Some(link) = links.get_mut(&i) {
                        link.disconnect();
                    }
                    if let Some(c) = conns.remove(&i) {
                        let _ = c.publisher.disconnect().await;
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            c.task.abort();
                        });
                    }
                    continue;
                };
                report.fixes += 1;
                if offline_until.get(&i).is_some_and(|t| *t > fix.t_ms) {
                    continue;
                }
                let topic = format!("owntracks/{}/{}", unit.station, unit.unit);
                let truth = true_fix(&fix);
                for action in injector.apply(fix) {
                    match action {
                        Action::Send(payload) if links.contains_key(&i) => {
                            let Some(link) = links.get_mut(&i) else {
                                continue;
                            };
                            let sent = match device_fix(&payload) {
                                Some(f) => link.send(&f).await.map(drop),
                                None => link.send_garbled(&truth).await,
                            };
                            match sent {
                                Ok(()) => report.published += 1,
                                Err(error) => {
                                    report.link_errors += 1;
                                    tracing::debug!(%error, unit = %unit.unit, protocol = %link.protocol(), "Device send failed");
                                }
                            }
                        }
                        Action::Send(payload) => {
                            let c = conns
                                .entry(i)
                                .or_insert_with(|| connect(&cfg, &unit.station, &unit.unit));
                            c.publisher.publish(&topic, payload).await?;
                            report.published += 1;
                        }
                        Action::GoOffline(ms) => {
                            if let Some(link) = links.get_mut(&i) {
                                link.disconnect();
                            }
                            // Cut the connection without DISCONNECT: the broker sends the will.
                            if let Some(c) = conns.remove(&i) {
                                c.task.abort();
                            }
                            offline_until.insert(i, fix.t_ms + ms);
                        }
                    }
                }
            }
        }
        if last_log.elapsed() >= Duration::from_secs(10) {
            last_log = Instant::now();
            tracing::info!(
                published = report.published,
                connected = conns.len(),
                "Simulator"
            );
        }
    }
    // Clean DISCONNECTs (no last wills), a moment to send them, then drop the connections.
    for c in conns.values() {
        let _ = c.publisher.disconnect().await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (_, c) in conns.drain() {
        c.task.abort();
    }
    for inj in &injectors {
        add_counts(&mut report.faults, inj.counts);
    }
    Ok(report)
}

/// The fix an OwnTracks payload of the fault injector carries, for a gateway device to send
/// in its own protocol; `None` when the injector garbled the payload.
fn device_fix(payload: &[u8]) -> Option<DeviceFix> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let num = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
    Some(DeviceFix {
        device: String::new(),
        time_ms: v.get("tst")?.as_i64()? * 1000,
        lat: num("lat")?,
        lon: num("lon")?,
        speed_kmh: num("vel"),
        course_deg: num("cog"),
        alt_m: None,
        acc_m: num("acc"),
        batt_pct: num("batt"),
    })
}

/// The model's fix as a device reports it.
fn true_fix(f: &model::Fix) -> DeviceFix {
    DeviceFix {
        device: String::new(),
        time_ms: f.t_ms,
        lat: f.lat,
        lon: f.lon,
        speed_kmh: Some(f.vel),
        course_deg: Some(f.cog),
        alt_m: None,
        acc_m: Some(f.acc),
        batt_pct: Some(f64::from(f.batt)),
    }
}

fn add_counts(total: &mut FaultCounts, c: FaultCounts) {
    total.poor_accuracy += c.poor_accuracy;
    total.dropped += c.dropped;
    total.jumps += c.jumps;
    total.duplicates += c.duplicates;
    total.out_of_order += c.out_of_order;
    total.late += c.late;
    total.malformed += c.malformed;
    total.offline += c.offline;
}
