//! Realistic faults on a unit's stream of reports: GPS noise, poor-accuracy fixes, dropouts,
//! jumps, duplicates, out-of-order delivery, late (buffered) batches, malformed payloads and
//! units going offline. Pure: a seeded RNG, no clock.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::model::Fix;

/// Fault probabilities per report (and the noise range, always on).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultRates {
    /// GPS noise radius range in metres (applied to every fix).
    pub noise_m: (f64, f64),
    /// A fix with poor accuracy (acc 80-500 m, error to match).
    pub poor_accuracy: f64,
    /// The start of a 1-5 minute dropout (nothing sent).
    pub dropout: f64,
    /// A fix 2-20 km away from the truth for one report.
    pub jump: f64,
    /// The same payload sent twice.
    pub duplicate: f64,
    /// Two consecutive reports sent in swapped order.
    pub out_of_order: f64,
    /// The start of a 1-3 minute buffer, sent in one burst at its end.
    pub late_batch: f64,
    /// A payload damaged in transit.
    pub malformed: f64,
    /// The unit drops off the network (the broker publishes its last will) for 2-10 minutes.
    pub offline: f64,
}

impl FaultRates {
    /// The documented default rates scaled by `scale` (0 = clean; noise stays on unless 0).
    pub fn scaled(scale: f64) -> FaultRates {
        let s = scale.max(0.0);
        FaultRates {
            noise_m: if s > 0.0 { (5.0, 15.0) } else { (0.0, 0.0) },
            poor_accuracy: 0.02 * s,
            dropout: 0.002 * s,
            jump: 0.002 * s,
            duplicate: 0.01 * s,
            out_of_order: 0.01 * s,
            late_batch: 0.002 * s,
            malformed: 0.003 * s,
            offline: 0.0003 * s,
        }
        .clamped()
    }

    fn clamped(mut self) -> Self {
        for p in [
            &mut self.poor_accuracy,
            &mut self.dropout,
            &mut self.jump,
            &mut self.duplicate,
            &mut self.out_of_order,
            &mut self.late_batch,
            &mut self.malformed,
            &mut self.offline,
        ] {
            *p = p.clamp(0.0, 1.0);
        }
        self
    }
}

/// What to do with the connection and the payloads.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Publish this payload now.
    Send(Vec<u8>),
    /// Drop the connection without a DISCONNECT for this long (ms).
    GoOffline(i64),
}

/// Counts of injected faults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Fixes sent with poor accuracy.
    pub poor_accuracy: u64,
    /// Fixes not sent because of a dropout.
    pub dropped: u64,
    /// Jumps.
    pub jumps: u64,
    /// Duplicates.
    pub duplicates: u64,
    /// Swapped pairs.
    pub out_of_order: u64,
    /// Fixes delivered late in a burst.
    pub late: u64,
    /// Malformed payloads.
    pub malformed: u64,
    /// Offline episodes.
    pub offline: u64,
}

/// Applies faults to one unit's reports.
#[derive(Debug)]
pub struct FaultInjector {
    rates: FaultRates,
    rng: ChaCha8Rng,
    tid: String,
    dropout_until: i64,
    late_until: i64,
    late: Vec<Vec<u8>>,
    swap: Option<Vec<u8>>,
    /// What was injected so far.
    pub counts: FaultCounts,
}

const M_PER_DEG: f64 = 111_320.0;

impl FaultInjector {
    /// An injector for one unit.
    pub fn new(rates: FaultRates, seed: u64, tid: &str) -> Self {
        FaultInjector {
            rates,
            rng: ChaCha8Rng::seed_from_u64(seed),
            tid: tid.to_owned(),
            dropout_until: i64::MIN,
            late_until: i64::MIN,
            late: Vec::new(),
            swap: None,
            counts: FaultCounts::default(),
        }
    }

    /// Moves a fix by `radius` metres in a random direction.
    fn displace(&mut self, fix: &mut Fix, radius: f64) {
        let angle = self.rng.random_range(0.0..std::f64::consts::TAU);
        let r = radius * self.rng.random_range(0.0..1.0f64).sqrt();
        fix.lat += r * angle.cos() / M_PER_DEG;
        fix.lon += r * angle.sin() / (M_PER_DEG * fix.lat.to_radians().cos().max(0.01));
    }

    /// What the receiver measures: noise, poor accuracy and jumps applied, or `None` during a
    /// dropout. The part of the faults that `patrol generate` uses too.
    pub fn perturb(&mut self, mut fix: Fix) -> Option<Fix> {
        let r = self.rates;
        if fix.t_ms < self.dropout_until {
            self.counts.dropped += 1;
            return None;
        }
        if self.rng.random_bool(r.dropout) {
            self.counts.dropped += 1;
            self.dropout_until = fix.t_ms + self.rng.random_range(60_000..300_000);
            return None;
        }
        if r.noise_m.1 > 0.0 {
            let noise = self.rng.random_range(r.noise_m.0..=r.noise_m.1);
            self.displace(&mut fix, noise);
        }
        if self.rng.random_bool(r.poor_accuracy) {
            self.counts.poor_accuracy += 1;
            fix.acc = self.rng.random_range(80.0..500.0);
            let err = fix.acc;
            self.displace(&mut fix, err);
        }
        if self.rng.random_bool(r.jump) {
            self.counts.jumps += 1;
            let far = self.rng.random_range(2_000.0..20_000.0);
            let angle = self.rng.random_range(0.0..std::f64::consts::TAU);
            fix.lat += far * angle.cos() / M_PER_DEG;
            fix.lon += far * angle.sin() / (M_PER_DEG * fix.lat.to_radians().cos().max(0.01));
        }
        Some(fix)
    }

    /// Turns a true fix into what the network delivers.
    pub fn apply(&mut self, fix: Fix) -> Vec<Action> {
        let r = self.rates;
        let t = fix.t_ms;
        if t >= self.dropout_until && self.rng.random_bool(r.offline) {
            self.counts.offline += 1;
            let ms = self.rng.random_range(120_000..600_000);
            self.dropout_until = t + ms;
            return vec![Action::GoOffline(ms)];
        }
        let Some(fix) = self.perturb(fix) else {
            return Vec::new();
        };
        let mut payload = fix.to_owntracks(&self.tid);
        if self.rng.random_bool(r.malformed) {
            self.counts.malformed += 1;
            let cut = self.rng.random_range(1..payload.len());
            payload.truncate(cut);
        }
        let mut out = Vec::new();
        let copies = if self.rng.random_bool(r.duplicate) {
            self.counts.duplicates += 1;
            2
        } else {
            1
        };
        // Late batches: hold everything until the buffer window closes.
        if t < self.late_until {
            self.counts.late += 1;
            for _ in 0..copies {
                self.late.push(payload.clone());
            }
            return out;
        }
        if !self.late.is_empty() {
            out.extend(self.late.drain(..).map(Action::Send));
        }
        if self.rng.random_bool(r.late_batch) {
            self.late_until = t + self.rng.random_range(60_000..180_000);
            self.counts.late += 1;
            self.late.push(payload);
            return out;
        }
        if let Some(held) = self.swap.take() {
            // The held report goes after this one: delivered out of order.
            for _ in 0..copies {
                out.push(Action::Send(payload.clone()));
            }
            out.push(Action::Send(held));
            return out;
        }
        if self.rng.random_bool(r.out_of_order) {
            self.counts.out_of_order += 1;
            self.swap = Some(payload);
            return out;
        }
        for _ in 0..copies {
            out.push(Action::Send(payload.clone()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix(t: i64) -> Fix {
        Fix {
            t_ms: t,
            lat: 40.1,
            lon: -88.9,
            acc: 8.0,
            vel: 20.0,
            cog: 90.0,
            batt: 90,
        }
    }

    #[test]
    fn clean_stream_passes_through_unchanged() {
        let mut f = FaultInjector::new(FaultRates::scaled(0.0), 1, "C1");
        for i in 0..100 {
            let out = f.apply(fix(i * 1000));
            assert_eq!(out, vec![Action::Send(fix(i * 1000).to_owntracks("C1"))]);
        }
        assert_eq!(f.counts, FaultCounts::default());
    }

    #[test]
    fn faulty_stream_injects_each_kind_and_keeps_noise_bounded() {
        let mut rates = FaultRates::scaled(1.0);
        rates.jump = 0.0;
        rates.poor_accuracy = 0.0;
        let mut f = FaultInjector::new(
            FaultRates {
                duplicate: 0.05,
                ..rates
            },
            7,
            "C1",
        );
        let mut sent = 0;
        for i in 0..20_000 {
            for a in f.apply(fix(i * 5000)) {
                if let Action::Send(p) = a {
                    sent += 1;
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&p) {
                        let lat = v["lat"].as_f64().unwrap();
                        assert!((lat - 40.1).abs() * M_PER_DEG <= 15.5, "noise within 15 m");
                    }
                }
            }
        }
        let c = f.counts;
        assert!(c.duplicates > 0 && c.out_of_order > 0 && c.late > 0 && c.malformed > 0);
        assert!(c.dropped > 0 && c.offline > 0);
        assert!(sent > 15_000);
    }
}
