//! `patrol generate`: the simulator's tracks for a span of days, written straight into a store
//! through the same validate and geofence stages as live pings, but without MQTT or the WAL.
//! Units are split over worker threads; the calling thread writes Parquet.

use std::sync::mpsc::sync_channel;
use std::time::Instant;

use ingest::decode::RawPing;
use ingest::pipeline::Stages;
use ingest::store::{Record, Store};

use super::faults::{FaultInjector, FaultRates};
use super::fleet::{self, Fleet};

/// What a generation run wrote.
#[derive(Debug, Clone, Copy, Default)]
pub struct GenerateReport {
    /// Pings stored.
    pub pings: u64,
    /// Fixes the validator refused (none expected; counted to prove it).
    pub rejected: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Records handed to the writer at once.
const CHUNK: usize = 250_000;

/// Generates every unit's reports from `fleet.start_ms` to `end_ms` into `store`.
/// `make_stages` builds one [`Stages`] per worker thread.
///
/// # Errors
/// When the store is not empty (generated data is not deduplicated) or a write fails.
pub fn generate(
    fleet: &Fleet,
    make_stages: &dyn Fn() -> anyhow::Result<Stages>,
    store: &mut Store,
    end_ms: i64,
    threads: usize,
    seed: u64,
) -> anyhow::Result<GenerateReport> {
    anyhow::ensure!(
        store.has_no_pings()?,
        "store {} already holds pings; generate writes only into an empty store",
        store.root().display()
    );
    let started = Instant::now();
    let threads = threads.max(1);
    let (tx, rx) = sync_channel::<Vec<Record>>(threads);
    let rates = FaultRates {
        duplicate: 0.0,
        out_of_order: 0.0,
        late_batch: 0.0,
        malformed: 0.0,
        offline: 0.0,
        ..FaultRates::scaled(1.0)
    };
    let mut report = GenerateReport::default();
    let workers = (0..threads)
        .map(|_| make_stages())
        .collect::<anyhow::Result<Vec<Stages>>>()?;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for (worker, mut stages) in workers.into_iter().enumerate() {
            let tx = tx.clone();
            scope.spawn(move || {
                let mut buf = Vec::with_capacity(CHUNK);
                let tz = fleet.tz;
                for (i, unit) in fleet.units.iter().enumerate().skip(worker).step_by(threads) {
                    let mut model = unit.clone();
                    let mut faults =
                        FaultInjector::new(rates, seed ^ ((i as u64 + 1) * 0x9e37), &unit.unit);
                    while model.next_report_ms() < end_ms {
                        let Some(fix) = model.step(&fleet.world, |t| fleet::local_hour(tz, t))
                        else {
                            continue;
                        };
                        let Some(fix) = faults.perturb(fix) else {
                            continue;
                        };
                        let raw = RawPing {
                            station: model.station.clone(),
                            unit: model.unit.clone(),
                            lat: fix.lat,
                            lon: fix.lon,
                            tst: fix.t_ms.div_euclid(1000),
                            acc: Some(fix.acc),
                            vel: Some(fix.vel),
                            cog: Some(fix.cog),
                            alt: None,
                            batt: Some(f64::from(fix.batt)),
                            tid: None,
                        };
                        buf.push(stages.location(raw, "generate", &[], fix.t_ms + 1500));
                        if buf.len() >= CHUNK && tx.send(std::mem::take(&mut buf)).is_err() {
                            return;
                        }
                    }
                }
                if !buf.is_empty() {
                    let _ = tx.send(buf);
                }
            });
        }
        drop(tx);
        for chunk in rx {
            for r in &chunk {
                match r {
                    Record::Ping(_) => report.pings += 1,
                    Record::Reject(_) => report.rejected += 1,
                    // Bulk generation runs no event engine.
                    Record::Event(_) => {}
                }
            }
            store.write_bulk(&chunk)?;
        }
        Ok(())
    })?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
