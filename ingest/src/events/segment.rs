//! Fences crossed between two sparse fixes, found by sampling the straight segment joining them.
//!
//! The segment is interpolated linearly in latitude and longitude (fine over the few km a
//! unit covers between fixes; not across the antimeridian) and in time, sampled every
//! `step_m` metres, and each sample is assigned with [`GeofenceIndex::assign`], so the index's
//! boundary and overlap rules hold. A run of samples in a fence that is neither the start
//! fix's nor the end fix's fence of that layer is a crossing; its times are half a sample step
//! before its first sample and after its last. A fence narrower than `step_m` along the path
//! may be missed.

use crate::geofence::{FenceIdx, GeofenceIndex};
use crate::ping::EpochMillis;
use crate::validate::haversine_m;

use super::event::Layer;

/// Upper bound on samples per segment (a 600 s segment at 200 km/h is 1,334 samples of 25 m).
const MAX_SAMPLES: usize = 2_000;

/// A point of a segment end: time, position and its fences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct End {
    pub(super) time_ms: EpochMillis,
    pub(super) lat: f64,
    pub(super) lon: f64,
    pub(super) beat: Option<FenceIdx>,
    pub(super) zone: Option<FenceIdx>,
}

/// A fence entered and left between two fixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Crossed {
    pub(super) layer: Layer,
    pub(super) fence: FenceIdx,
    pub(super) entered_ms: EpochMillis,
    pub(super) left_ms: EpochMillis,
}

/// The crossings of the segment `a`–`b`, per layer in path order (beats first).
pub(super) fn crossings(index: &GeofenceIndex, a: &End, b: &End, step_m: f64) -> Vec<Crossed> {
    let len = haversine_m(a.lat, a.lon, b.lat, b.lon);
    let steps = (len / step_m.max(1.0)).ceil();
    let n = if steps.is_finite() {
        (steps as usize).clamp(2, MAX_SAMPLES)
    } else {
        2
    };
    let frac = |k: f64| k / n as f64;
    let time_at = |k: f64| a.time_ms + ((b.time_ms - a.time_ms) as f64 * frac(k)).round() as i64;
    let samples: Vec<_> = (1..n)
        .map(|k| {
            let f = frac(k as f64);
            index.assign(a.lat + (b.lat - a.lat) * f, a.lon + (b.lon - a.lon) * f)
        })
        .collect();
    let mut out = Vec::new();
    for layer in [Layer::Beat, Layer::Zone] {
        let pick = |beat: Option<FenceIdx>, zone: Option<FenceIdx>| match layer {
            Layer::Beat => beat,
            Layer::Zone => zone,
        };
        let ends = [pick(a.beat, a.zone), pick(b.beat, b.zone)];
        let fences: Vec<Option<FenceIdx>> = samples.iter().map(|s| pick(s.beat, s.zone)).collect();
        let mut i = 0;
        while i < fences.len() {
            let fence = fences[i];
            let mut j = i;
            while fences.get(j + 1) == Some(&fence) {
                j += 1;
            }
            // Sample i sits at step k = i + 1.
            if let Some(f) = fence
                && !ends.contains(&fence)
            {
                out.push(Crossed {
                    layer,
                    fence: f,
                    entered_ms: time_at(i as f64 + 0.5),
                    left_ms: time_at(j as f64 + 1.5),
                });
            }
            i = j + 1;
        }
    }
    out
}
