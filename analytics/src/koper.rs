//! Job 5, Koper visits: how the patrol presence in each hot-spot cell was dosed, in visits.
//!
//! Definitions (intervals, flags and gaps as in [`crate::context`], credit as in
//! [`crate::dosage`]):
//! - a *visit* of a unit to a cell is a maximal run of its consecutive tracked intervals whose
//!   grid path includes the cell; a no-data interval or an interval that misses the cell ends
//!   it. Its *length* is the dosage those intervals credit to the cell (so the visits of a
//!   cell add up to its dosage), its *span* runs from the first interval's start to the last
//!   one's end;
//! - `share_10_15`: visits of 10 to 15 minutes (both included) / visits, the Koper curve's
//!   sweet spot; `lt2`..`gt15` count visits by length in minutes: [0, 2), [2, 5), [5, 10),
//!   [10, 15], (15, ∞);
//! - `longest_gap_minutes`: the longest stretch of `[from, to)` covered by no unit's visit span.

use std::collections::HashMap;

use h3o::{CellIndex, LatLng};
use polars::prelude::*;

use crate::AnalyticsError;
use crate::context::JobContext;
use crate::dosage::{path_cells, split_ms};
use crate::store::UNIT;

/// One visit: unit, span start and end (ms), credited length (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Visit {
    start: i64,
    end: i64,
    ms: i64,
    /// Index of the last interval that extended it.
    last: usize,
}

/// The tracked intervals Koper needs: `unit`, `t`, `dt`, `cell_a`, `cell_b`, sorted by unit
/// and time.
pub fn koper_plan(ctx: &JobContext, pings: LazyFrame) -> LazyFrame {
    ctx.intervals(pings)
        .filter(col("tracked"))
        .select([col(UNIT), col("t"), col("dt"), col("cell_a"), col("cell_b")])
        .sort([UNIT, "t"], SortMultipleOptions::default())
}

/// Longest stretch of `[from, to)` outside every span.
fn longest_gap(mut spans: Vec<(i64, i64)>, from: i64, to: i64) -> i64 {
    spans.sort_unstable();
    let (mut covered_to, mut longest) = (from, 0);
    for (s, e) in spans {
        if s > covered_to {
            longest = longest.max(s.min(to) - covered_to);
        }
        covered_to = covered_to.max(e);
    }
    longest.max(to - covered_to)
}

/// Runs the Koper job for `hot_cells` (at the run's resolution). Columns: `cell`, `lat`,
/// `lon`, `visits`, `minutes`, `mean_minutes`, `median_minutes`, `max_minutes`, `share_10_15`,
/// `lt2`, `m2_5`, `m5_10`, `m10_15`, `gt15`, `longest_gap_minutes`.
///
/// # Errors
/// A polars error.
pub fn koper(
    ctx: &JobContext,
    pings: LazyFrame,
    hot_cells: &[u64],
) -> Result<DataFrame, AnalyticsError> {
    let df = koper_plan(ctx, pings).collect()?;
    let unit = df.column(UNIT)?.str()?;
    let t = df.column("t")?.i64()?;
    let dt = df.column("dt")?.i64()?;
    let a = df.column("cell_a")?.u64()?;
    let b = df.column("cell_b")?.u64()?;
    let hot: HashMap<u64, usize> = hot_cells.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    let mut done: Vec<Vec<Visit>> = vec![Vec::new(); hot_cells.len()];
    let mut open: HashMap<usize, Visit> = HashMap::new();
    let mut prev: Option<(&str, i64)> = None;
    for k in 0..df.height() {
        let (Some(u), Some(t), Some(dt), Some(a), Some(b)) =
            (unit.get(k), t.get(k), dt.get(k), a.get(k), b.get(k))
        else {
            continue;
        };
        // A new unit or a break in the track closes every open visit.
        let contiguous = prev == Some((u, t));
        if !contiguous {
            for (c, v) in open.drain() {
                done[c].push(v);
            }
        }
        prev = Some((u, t + dt));
        // An interval inside one cold cell credits no hot cell.
        let cells = if a == b && !hot.contains_key(&a) {
            Vec::new()
        } else {
            path_cells(a, b)
        };
        for (cell, part) in cells.iter().zip(split_ms(dt, cells.len())) {
            let Some(&c) = hot.get(cell) else {
                continue;
            };
            match open.get_mut(&c) {
                Some(v) if v.last + 1 == k || v.last == k => {
                    v.end = t + dt;
                    v.ms += part;
                    v.last = k;
                }
                _ => {
                    if let Some(v) = open.remove(&c) {
                        done[c].push(v);
                    }
                    open.insert(
                        c,
                        Visit {
                            start: t,
                            end: t + dt,
                            ms: part,
                            last: k,
                        },
                    );
                }
            }
        }
        // Visits this interval did not extend are over.
        let ended: Vec<usize> = open
            .iter()
            .filter(|(_, v)| v.last != k)
            .map(|(c, _)| *c)
            .collect();
        for c in ended {
            if let Some(v) = open.remove(&c) {
                done[c].push(v);
            }
        }
    }
    for (c, v) in open.drain() {
        done[c].push(v);
    }
    let mut rows = KoperRows::default();
    for (i, &cell) in hot_cells.iter().enumerate() {
        let visits = &done[i];
        let mut minutes: Vec<f64> = visits.iter().map(|v| v.ms as f64 / 60_000.0).collect();
        minutes.sort_by(f64::total_cmp);
        let n = minutes.len();
        let total: f64 = minutes.iter().sum();
        let count = |lo: f64, hi: f64, hi_inclusive: bool| {
            minutes
                .iter()
                .filter(|m| **m >= lo && (**m < hi || (hi_inclusive && **m <= hi)))
                .count() as u32
        };
        let centre = CellIndex::try_from(cell).map(LatLng::from).ok();
        rows.cell.push(cell);
        rows.lat.push(centre.map_or(f64::NAN, |c| c.lat()));
        rows.lon.push(centre.map_or(f64::NAN, |c| c.lng()));
        rows.visits.push(n as u32);
        rows.minutes.push(total);
        rows.mean.push(if n > 0 { total / n as f64 } else { 0.0 });
        rows.median.push(match n {
            0 => 0.0,
            _ if n % 2 == 1 => minutes[n / 2],
            _ => (minutes[n / 2 - 1] + minutes[n / 2]) / 2.0,
        });
        rows.max.push(minutes.last().copied().unwrap_or(0.0));
        let sweet = count(10.0, 15.0, true);
        rows.share.push(if n > 0 {
            f64::from(sweet) / n as f64
        } else {
            0.0
        });
        rows.lt2.push(count(0.0, 2.0, false));
        rows.m2_5.push(count(2.0, 5.0, false));
        rows.m5_10.push(count(5.0, 10.0, false));
        rows.m10_15.push(sweet);
        rows.gt15
            .push(minutes.iter().filter(|m| **m > 15.0).count() as u32);
        let spans = visits.iter().map(|v| (v.start, v.end)).collect();
        rows.gap
            .push(longest_gap(spans, ctx.from_ms, ctx.to_ms) as f64 / 60_000.0);
    }
    rows.into_frame()
}

#[derive(Default)]
struct KoperRows {
    cell: Vec<u64>,
    lat: Vec<f64>,
    lon: Vec<f64>,
    visits: Vec<u32>,
    minutes: Vec<f64>,
    mean: Vec<f64>,
    median: Vec<f64>,
    max: Vec<f64>,
    share: Vec<f64>,
    lt2: Vec<u32>,
    m2_5: Vec<u32>,
    m5_10: Vec<u32>,
    m10_15: Vec<u32>,
    gt15: Vec<u32>,
    gap: Vec<f64>,
}

impl KoperRows {
    fn into_frame(self) -> Result<DataFrame, AnalyticsError> {
        Ok(DataFrame::new_infer_height(vec![
            Column::new("cell".into(), self.cell),
            Column::new("lat".into(), self.lat),
            Column::new("lon".into(), self.lon),
            Column::new("visits".into(), self.visits),
            Column::new("minutes".into(), self.minutes),
            Column::new("mean_minutes".into(), self.mean),
            Column::new("median_minutes".into(), self.median),
            Column::new("max_minutes".into(), self.max),
            Column::new("share_10_15".into(), self.share),
            Column::new("lt2".into(), self.lt2),
            Column::new("m2_5".into(), self.m2_5),
            Column::new("m5_10".into(), self.m5_10),
            Column::new("m10_15".into(), self.m10_15),
            Column::new("gt15".into(), self.gt15),
            Column::new("longest_gap_minutes".into(), self.gap),
        ])?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::testing::{Fix, cells9, ms, pings, windows};

    #[test]
    fn hand_computed_visits() {
        let (x, y, _) = cells9();
        let t0 = ms("2026-11-02T15:00:00Z");
        let m = 60_000;
        let mut fixes = Vec::new();
        for k in 0..=12 {
            fixes.push(Fix::at("C01", t0 + k * m, x));
        }
        for k in 13..=59 {
            fixes.push(Fix::at("C01", t0 + k * m, y));
        }
        for k in 60..=63 {
            fixes.push(Fix::at("C01", t0 + k * m, x));
        }
        // Another unit crosses x after a gap in its track: two visits of one minute.
        fixes.push(Fix::at("F01", t0 + 30 * m, x));
        fixes.push(Fix::at("F01", t0 + 31 * m, x));
        fixes.push(Fix::at("F01", t0 + 40 * m, x));
        fixes.push(Fix::at("F01", t0 + 41 * m, x));
        let ctx = JobContext::new(
            chrono_tz::America::Chicago,
            windows(),
            (t0 - 10 * m, t0 + 120 * m),
            (9, 11),
            120,
        )
        .unwrap();
        let df = koper(&ctx, pings(&fixes), &[x, y]).unwrap();
        let f = |c: &str, i: usize| df.column(c).unwrap().f64().unwrap().get(i).unwrap();
        let u = |c: &str, i: usize| df.column(c).unwrap().u32().unwrap().get(i).unwrap();
        // x: C01 12 + 0.5 minutes, then 0.5 + 3 minutes; F01 1 and 1 minute.
        assert_eq!(u("visits", 0), 4);
        assert_eq!(f("minutes", 0), 12.5 + 3.5 + 1.0 + 1.0);
        assert_eq!(f("max_minutes", 0), 12.5);
        assert_eq!(f("median_minutes", 0), (1.0 + 3.5) / 2.0);
        assert_eq!(f("share_10_15", 0), 0.25);
        assert_eq!(
            (u("lt2", 0), u("m2_5", 0), u("m10_15", 0), u("gt15", 0)),
            (2, 1, 1, 0)
        );
        // Spans cover minutes 0-13, 30-31, 40-41 and 59-63 of [-10, 120): longest gap 57.
        assert_eq!(f("longest_gap_minutes", 0), 57.0);
        // y: one visit from the leaving half-minute to the entering half-minute.
        assert_eq!(u("visits", 1), 1);
        assert_eq!(f("minutes", 1), 0.5 + 46.0 + 0.5);
        assert_eq!(u("gt15", 1), 1);
    }

    #[test]
    fn gaps_between_spans() {
        assert_eq!(longest_gap(vec![], 0, 100), 100);
        assert_eq!(longest_gap(vec![(10, 20), (15, 30), (70, 80)], 0, 100), 40);
        assert_eq!(longest_gap(vec![(-5, 50)], 0, 60), 10);
    }
}
