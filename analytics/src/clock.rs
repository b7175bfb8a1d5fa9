//! Local time inside polars plans without polars' time-zone support: the UTC offsets of the
//! jurisdiction's zone over the analysed span, turned into arithmetic on epoch milliseconds.
//!
//! Definitions used by every job:
//! - *local ms*: UTC epoch ms plus the zone's offset at that instant (DST honoured);
//! - *local day*: `floor(local ms / 86 400 000)`, days since 1970-01-01 (a Thursday); the
//!   expressions use integer division, which floors for the times after 1970 analysed here;
//! - *day of week*: 0 = Monday .. 6 = Sunday; *hour*: 0..23 local;
//! - a fix is in a `[[windows]]` entry when its local time of day lies in `[start, end)`; a
//!   window whose end is not after its start crosses midnight, and its part after midnight
//!   belongs to the window *instance* of the previous local day (the night of Monday 23:00 to
//!   Tuesday 05:00 is Monday's night). The first window listed wins when windows overlap.

use chrono::{DateTime, Duration, NaiveDate, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use polars::prelude::*;

use model::jurisdiction::Window;

/// Milliseconds per day.
pub const DAY_MS: i64 = 86_400_000;

/// The UTC offsets of one zone over a span, as `(from UTC ms, offset ms)` pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalClock {
    tz: Tz,
    pieces: Vec<(i64, i64)>,
}

fn offset_at(tz: Tz, utc_ms: i64) -> i64 {
    let t = DateTime::<Utc>::from_timestamp_millis(utc_ms).unwrap_or_default();
    i64::from(
        tz.offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc(),
    ) * 1000
}

impl LocalClock {
    /// The offsets of `tz` from two days before `from_ms` to two days after `to_ms`; each
    /// transition is located to the millisecond.
    #[must_use]
    pub fn new(tz: Tz, from_ms: i64, to_ms: i64) -> Self {
        const HOUR: i64 = 3_600_000;
        let start = from_ms - 2 * DAY_MS;
        let end = to_ms.max(from_ms) + 2 * DAY_MS;
        let mut pieces = vec![(i64::MIN, offset_at(tz, start))];
        let mut t = start;
        while t < end {
            let next = t + HOUR;
            let (before, after) = (offset_at(tz, t), offset_at(tz, next));
            if before != after {
                // First instant with the new offset, by bisection on (t, next].
                let (mut lo, mut hi) = (t, next);
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if offset_at(tz, mid) == before {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                pieces.push((hi, after));
            }
            t = next;
        }
        Self { tz, pieces }
    }

    /// The zone.
    #[must_use]
    pub const fn tz(&self) -> Tz {
        self.tz
    }

    /// The offset (ms) at `utc_ms`.
    #[must_use]
    pub fn offset_ms(&self, utc_ms: i64) -> i64 {
        self.pieces
            .iter()
            .rev()
            .find(|(from, _)| *from <= utc_ms)
            .map_or(0, |(_, off)| *off)
    }

    /// Local ms of `utc_ms`.
    #[must_use]
    pub fn local_ms(&self, utc_ms: i64) -> i64 {
        utc_ms + self.offset_ms(utc_ms)
    }

    /// `utc_ms` (an Int64 expression of epoch ms) as local ms.
    pub fn local_ms_expr(&self, utc_ms: Expr) -> Expr {
        let mut offset = lit(self.pieces[0].1);
        for &(from, off) in &self.pieces[1..] {
            offset = when(utc_ms.clone().gt_eq(lit(from)))
                .then(lit(off))
                .otherwise(offset);
        }
        utc_ms + offset
    }
}

/// Milliseconds after local midnight of a window's start and end.
fn bounds_ms(w: &Window) -> (i64, i64) {
    let ms = |t: chrono::NaiveTime| i64::from(t.num_seconds_from_midnight()) * 1000;
    (ms(w.start), ms(w.end))
}

/// True when local time of day `tod_ms` is inside `w`.
fn in_window(w: &Window, tod: Expr) -> Expr {
    let (start, end) = bounds_ms(w);
    if end <= start {
        tod.clone().gt_eq(lit(start)).or(tod.lt(lit(end)))
    } else {
        tod.clone().gt_eq(lit(start)).and(tod.lt(lit(end)))
    }
}

/// The name of the window `local_ms` falls in (String), null outside every window.
pub fn window_expr(windows: &[Window], local_ms: Expr) -> Expr {
    let tod = local_ms % lit(DAY_MS);
    let mut out = lit(NULL).cast(DataType::String);
    for w in windows.iter().rev() {
        out = when(in_window(w, tod.clone()))
            .then(lit(w.name.clone()))
            .otherwise(out);
    }
    out
}

/// The local day (Int64) of the window instance `local_ms` belongs to: its own local day, or
/// the day before for the after-midnight part of a window crossing midnight. Outside every
/// window it is the local day itself.
pub fn window_day_expr(windows: &[Window], local_ms: Expr) -> Expr {
    let day = local_ms.clone() / lit(DAY_MS);
    let tod = local_ms % lit(DAY_MS);
    let mut out = day.clone();
    for w in windows.iter().rev() {
        let (start, end) = bounds_ms(w);
        let shifted = if end <= start {
            when(tod.clone().lt(lit(end)))
                .then(day.clone() - lit(1i64))
                .otherwise(day.clone())
        } else {
            day.clone()
        };
        out = when(in_window(w, tod.clone())).then(shifted).otherwise(out);
    }
    out
}

/// What [`window_expr`] and [`window_day_expr`] give for one local time: the window's name
/// (None outside every window) and the local day of its instance.
#[must_use]
pub fn window_at(windows: &[Window], local_ms: i64) -> (Option<&str>, i64) {
    let (index, day) = window_index_at(windows, local_ms);
    (index.map(|i| windows[i].name.as_str()), day)
}

/// The window index (a `u8` where the walk keeps it) of a time outside every patrol window;
/// so a run has at most `NO_WINDOW - 1` windows.
pub(crate) const NO_WINDOW: u8 = u8::MAX;

/// [`window_at`] with the window's index in `windows` instead of its name.
#[must_use]
pub fn window_index_at(windows: &[Window], local_ms: i64) -> (Option<usize>, i64) {
    let (day, tod) = (local_ms.div_euclid(DAY_MS), local_ms.rem_euclid(DAY_MS));
    for (i, w) in windows.iter().enumerate() {
        let (start, end) = bounds_ms(w);
        let inside = if end <= start {
            tod >= start || tod < end
        } else {
            tod >= start && tod < end
        };
        if inside {
            let shifted = end <= start && tod < end;
            return (Some(i), day - i64::from(shifted));
        }
    }
    (None, day)
}

impl LocalClock {
    /// True when every offset and every change of offset over the span falls on a whole
    /// minute, so that local time of day advances minute by minute with UTC.
    #[must_use]
    pub fn whole_minutes(&self) -> bool {
        self.pieces
            .iter()
            .all(|&(from, off)| off % 60_000 == 0 && (from == i64::MIN || from % 60_000 == 0))
    }
}

/// A day number (days since 1970-01-01) as a calendar date.
#[must_use]
pub fn day_to_date(day: i64) -> NaiveDate {
    NaiveDate::default() + Duration::days(day)
}

/// One occurrence of a window: its local start day and UTC span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowInstance {
    /// Window name.
    pub window: String,
    /// Local day the instance starts (days since 1970-01-01).
    pub day: i64,
    /// UTC start, epoch ms.
    pub start_ms: i64,
    /// UTC end, epoch ms (the local end time; a DST change inside makes it an hour longer or
    /// shorter).
    pub end_ms: i64,
}

/// Every window instance whose UTC start lies in `[from_ms, to_ms)`.
#[must_use]
pub fn window_instances(
    tz: Tz,
    windows: &[Window],
    from_ms: i64,
    to_ms: i64,
) -> Vec<WindowInstance> {
    let clock = LocalClock::new(tz, from_ms, to_ms);
    let first = clock.local_ms(from_ms).div_euclid(DAY_MS) - 1;
    let last = clock.local_ms(to_ms).div_euclid(DAY_MS) + 1;
    let utc = |date: NaiveDate, t: chrono::NaiveTime| {
        tz.from_local_datetime(&date.and_time(t))
            .earliest()
            .map(|d| d.timestamp_millis())
    };
    let mut out = Vec::new();
    for day in first..=last {
        let date = day_to_date(day);
        for w in windows {
            let end_date = if w.crosses_midnight() {
                date + Duration::days(1)
            } else {
                date
            };
            let (Some(start_ms), Some(end_ms)) = (utc(date, w.start), utc(end_date, w.end)) else {
                continue;
            };
            if (from_ms..to_ms).contains(&start_ms) {
                out.push(WindowInstance {
                    window: w.name.clone(),
                    day,
                    start_ms,
                    end_ms,
                });
            }
        }
    }
    out.sort_by_key(|i| i.start_ms);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn offsets_follow_daylight_saving() {
        let tz = chrono_tz::America::Chicago;
        let clock = LocalClock::new(tz, ms("2026-10-30T00:00:00Z"), ms("2026-11-03T00:00:00Z"));
        // DST ends 2026-11-01 at 02:00 CDT = 07:00 UTC.
        assert_eq!(
            clock.offset_ms(ms("2026-11-01T06:59:59.999Z")),
            -5 * 3_600_000
        );
        assert_eq!(clock.offset_ms(ms("2026-11-01T07:00:00Z")), -6 * 3_600_000);
        assert_eq!(clock.pieces.len(), 2);
    }

    #[test]
    fn window_at_matches_the_expressions() {
        let windows = crate::testing::windows();
        let tz = chrono_tz::America::Chicago;
        let (from, to) = (ms("2026-10-31T00:00:00Z"), ms("2026-11-03T00:00:00Z"));
        let clock = LocalClock::new(tz, from, to);
        assert!(clock.whole_minutes());
        let t: Vec<i64> = (from..to).step_by(7 * 60_000 + 30_000).collect();
        let local = clock.local_ms_expr(col("t"));
        let df = DataFrame::new_infer_height(vec![Column::new("t".into(), t.clone())])
            .unwrap()
            .lazy()
            .select([
                window_expr(&windows, local.clone()).alias("window"),
                window_day_expr(&windows, local).alias("day"),
            ])
            .collect()
            .unwrap();
        let window = df.column("window").unwrap().str().unwrap();
        let day = df.column("day").unwrap().i64().unwrap();
        for (i, &t) in t.iter().enumerate() {
            let want = (window.get(i), day.get(i).unwrap());
            assert_eq!(window_at(&windows, clock.local_ms(t)), want, "at {t}");
        }
        assert!((0..t.len()).any(|i| window.get(i) == Some("night")));
    }

    #[test]
    fn window_instances_cross_midnight_and_dst() {
        let tz = chrono_tz::America::Chicago;
        let night = Window {
            name: "night".into(),
            start: chrono::NaiveTime::from_hms_opt(23, 0, 0).unwrap(),
            end: chrono::NaiveTime::from_hms_opt(5, 0, 0).unwrap(),
        };
        let got = window_instances(
            tz,
            &[night],
            ms("2026-10-31T00:00:00-05:00"),
            ms("2026-11-02T00:00:00-06:00"),
        );
        let spans: Vec<_> = got
            .iter()
            .map(|i| (i.end_ms - i.start_ms) / 3_600_000)
            .collect();
        // Saturday night gains the hour DST gives back; Sunday night is 6 hours.
        assert_eq!(spans, [7, 6]);
        assert_eq!(day_to_date(got[0].day).to_string(), "2026-10-31");
    }
}
