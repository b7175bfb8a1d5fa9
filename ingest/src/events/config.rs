//! [`EventConfig`]: the tunables of the event engine, most of them from `jurisdiction.toml`.

use chrono_tz::Tz;
use model::jurisdiction::Settings;

use crate::ping::EpochMillis;

use super::hysteresis::Rule;

/// Tunables of the [`EventEngine`](super::EventEngine). Build it with
/// [`EventConfig::from_settings`], then adjust the fields that `jurisdiction.toml` does not have.
#[derive(Debug, Clone, PartialEq)]
pub struct EventConfig {
    /// Consecutive trusted fixes inside a fence needed to enter it, and away from it to exit it
    /// (`[hysteresis] enter_fixes`; 0 counts as 1).
    pub enter_fixes: u32,
    /// Seconds those fixes must span (`[hysteresis] dwell_s`).
    pub dwell_s: u32,
    /// Out-of-order fixes of a unit are sorted within this many seconds of its newest fix;
    /// older ones are late (`[validate] reorder_window_s`).
    pub reorder_window_s: u32,
    /// The live path's reorder window, seconds (`[validate] live_window_s`, default 0). While
    /// it is shorter than [`EventConfig::reorder_window_s`], a second pair of hysteresis
    /// trackers per unit is fed the fixes that arrive within this window of the unit's newest
    /// (with 0: each fix newer than every earlier one, as it arrives) and its enters and exits
    /// go out at once as provisional events ([`Event::provisional`](super::Event::provisional))
    /// for live subscribers only; the durable events still come from the reorder buffer.
    pub live_window_s: u32,
    /// A segment between consecutive trusted fixes more than this many seconds apart is sparse
    /// (default `2 × dwell_s`).
    pub sparse_gap_s: u32,
    /// A segment longer than this (metres) is sparse too (default 300).
    pub sparse_len_m: f64,
    /// A segment spanning more than this many seconds is not sampled: the path between its
    /// ends is unknown (default 600).
    pub max_interpolate_s: u32,
    /// Spacing of the samples taken along a sparse segment, metres (default 25).
    pub sample_step_m: f64,
    /// A unit outside its rostered zone for more than this many seconds of its shift is
    /// alerted (default 300).
    pub out_of_zone_grace_s: u32,
    /// A unit that stays within [`EventConfig::idle_radius_m`] for this many seconds of a
    /// shift is idle (`[status] idle_after_s`).
    pub idle_after_s: u32,
    /// Movement below this radius (metres) around where the unit stopped is not movement
    /// (default 50).
    pub idle_radius_m: f64,
    /// A rostered unit without a fix for this many seconds of its shift is offline
    /// (`[status] offline_after_s`).
    pub offline_after_s: u32,
    /// A shift with a smaller crew is alerted (default 2).
    pub min_crew: u8,
    /// Time zone of roster dates and checkpoint windows.
    pub timezone: Tz,
}

impl EventConfig {
    /// The configuration from `jurisdiction.toml` plus the documented defaults of the fields
    /// it has no key for.
    ///
    /// # Example
    /// ```
    /// # fn settings() -> model::jurisdiction::Settings {
    /// #     let dir = devkit::testkit::fixtures();
    /// #     model::jurisdiction::Jurisdiction::load(&dir).unwrap().settings().clone()
    /// # }
    /// let config = ingest::events::EventConfig::from_settings(&settings(), chrono_tz::UTC);
    /// assert_eq!((config.enter_fixes, config.dwell_s, config.sparse_gap_s), (3, 30, 60));
    /// ```
    #[must_use]
    pub fn from_settings(settings: &Settings, timezone: Tz) -> Self {
        let h = settings.hysteresis;
        Self {
            enter_fixes: h.enter_fixes,
            dwell_s: h.dwell_s,
            reorder_window_s: settings.validate.reorder_window_s,
            live_window_s: settings.validate.live_window_s,
            sparse_gap_s: h.dwell_s.saturating_mul(2),
            sparse_len_m: 300.0,
            max_interpolate_s: 600,
            sample_step_m: 25.0,
            out_of_zone_grace_s: 300,
            idle_after_s: settings.status.idle_after_s,
            idle_radius_m: 50.0,
            offline_after_s: settings.status.offline_after_s,
            min_crew: 2,
            timezone,
        }
    }

    /// The live path's window in ms, when it runs (shorter than the reorder window).
    pub(super) fn live_window_ms(&self) -> Option<EpochMillis> {
        (self.live_window_s < self.reorder_window_s).then(|| ms(self.live_window_s))
    }

    pub(super) fn rule(&self) -> Rule {
        Rule {
            fixes: self.enter_fixes.max(1),
            dwell_ms: ms(self.dwell_s),
        }
    }
}

/// Seconds to milliseconds.
pub(super) fn ms(seconds: u32) -> EpochMillis {
    EpochMillis::from(seconds) * 1000
}
