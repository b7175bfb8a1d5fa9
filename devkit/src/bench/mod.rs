//! What the MQTT benchmarks share (`ingest`'s `bench_broker` and `api`'s `bench_ingest`
//! examples): a raw MQTT 5 client that coalesces writes, the pacing of a publisher, the clock,
//! CPU time and percentiles. Benchmarks only.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub mod raw_mqtt;

/// Wall-clock time in microseconds since the epoch, as the payloads carry it.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// When message `k` of a publisher sending at `rate` per second is due.
pub fn due(t0: Instant, k: usize, rate: f64) -> Instant {
    t0 + Duration::from_secs_f64(k as f64 / rate)
}

/// User plus system CPU seconds of a process (`self` or a pid), from `/proc/PID/stat`.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which may hold spaces) start after its ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(ticks / 100.0)
}

/// The `p` quantile (0..=1, nearest rank) of sorted microsecond latencies, in ms.
pub fn percentile_ms(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}
