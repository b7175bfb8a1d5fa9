//! What every patrol job shares: the analysed span, the grid, the gap cap, the windows, the
//! local clock and the roster, and the interval plans built from the pings.
//!
//! # Intervals
//! A unit's *interval* runs from one of its fixes to its next fix in the span, both trusted:
//! fixes flagged low accuracy or jump are dropped first (their position is not believed), so
//! the time across them is bridged by the trusted fixes around them, subject to the gap cap.
//! Late fixes are kept: they are sorted into place by fix time. An interval is *tracked* when
//! it lasts at most the gap cap (`[dosage] gap_cap_s`), otherwise it is *no data*. An interval
//! belongs to the window instance, local day and fence (beat, zone) of its first fix. The
//! span is `[from, to)` on fix time; an interval whose second fix lies after `to` is not seen.
//!
//! # On duty
//! The patrol jobs (dosage, coverage, gaps) count only time a unit is on duty per
//! `roster.csv` ([`JobContext::duty_intervals`]):
//! - a unit's *shifts* are its roster entries as UTC spans `[start, end)`
//!   ([`RosterEntry::utc_ms`]), merged where they overlap or touch; a unit `<id>-<n>` with no
//!   entry of its own (the clones `patrol generate --units` adds) has the shifts of `<id>`;
//! - an *on-duty interval* starts at a trusted fix inside one of the unit's shifts and ends at
//!   the unit's next trusted fix, the end of that shift or the end of the span, whichever comes
//!   first. It is tracked when the next fix comes within the gap cap (the part after the
//!   shift's end is cut off), otherwise no data: a unit that stops reporting during its shift
//!   is on duty without data until the shift ends;
//! - time before a shift's first fix is not counted (the interval that spans the shift's start
//!   began off duty), nor is any interval whose first fix is off duty.

use std::collections::BTreeMap;

use chrono::Timelike;
use chrono_tz::Tz;
use h3o::Resolution;
use polars::prelude::*;

use crate::clock::{LocalClock, window_at, window_day_expr, window_expr};
use crate::dosage::UNKNOWN_KIND;
use crate::jurisdiction::{Jurisdiction, RosterEntry, Window, load_roster};
use crate::store::{
    BEAT, CELL, FIX_TIME, FLAG_JUMP, FLAG_LOW_ACCURACY, FLAGS, LAT, LON, UNIT, ZONE,
};
use crate::{AnalyticsError, collect_streaming};

/// The parameters of a job run.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// Span start, UTC epoch ms (included).
    pub from_ms: i64,
    /// Span end, UTC epoch ms (excluded).
    pub to_ms: i64,
    /// Analysis grid.
    pub res: Resolution,
    /// Resolution of the stored `cell` column (`[h3] store_res`).
    pub store_res: Resolution,
    /// Longest interval that is bridged, ms.
    pub gap_cap_ms: i64,
    /// Patrol windows.
    pub windows: Vec<Window>,
    /// Local clock over the span.
    pub clock: LocalClock,
    /// The roster as the on-duty plans join it; nobody is on duty until
    /// [`JobContext::with_roster`].
    duty: Duty,
    /// Most fixes one pass of dosage, coverage or gaps reads (see [`JobContext::passes`]).
    pub pass_fixes: u64,
}

/// The roster tables [`JobContext::duty_intervals`] joins, built for the context's span.
#[derive(Debug, Clone)]
struct Duty {
    /// One row per hour of the span (counted from its start) that a shift or its grace
    /// touches: `duty_unit`, `hour`, `s` and
    /// `e` (the shift), `g` (end of the grace: `e` plus the gap cap, but not past the unit's
    /// next shift, so one unit's rows never overlap). A fix in the grace starts no interval;
    /// it is kept only to end the shift's last interval.
    hours: DataFrame,
    /// The roster's unit ids: `rostered`, and `own` (true).
    rostered: DataFrame,
    /// One row per UTC minute of the span (`minute` = epoch ms / 60 000): the `window` and
    /// `day` [`window_expr`] and [`window_day_expr`] give for it, joined instead of evaluating
    /// those expressions on every interval (the windows and the zone's offsets are whole
    /// minutes, so every instant of a minute has the same window and day).
    minutes: DataFrame,
}

impl Duty {
    fn empty() -> Self {
        let schema = |fields: &[(&str, DataType)]| {
            DataFrame::empty_with_schema(&Schema::from_iter(
                fields
                    .iter()
                    .map(|(n, d)| (PlSmallStr::from(*n), d.clone())),
            ))
        };
        let i = DataType::Int64;
        Self {
            hours: schema(&[
                ("duty_unit", DataType::String),
                ("hour", i.clone()),
                ("s", i.clone()),
                ("e", i.clone()),
                ("g", i),
            ]),
            rostered: schema(&[("rostered", DataType::String), ("own", DataType::Boolean)]),
            minutes: schema(&[
                ("minute", DataType::Int64),
                ("window", DataType::String),
                ("day", DataType::Int64),
            ]),
        }
    }
}

/// Default of [`JobContext::pass_fixes`]. Over a week of 100M pings `patrol analyze presence`,
/// the largest, peaked at 3.0 GB with passes of 4M fixes and 4.0 GB with 5M (BENCHMARKS.md).
pub const DEFAULT_PASS_FIXES: u64 = 4_000_000;

/// One pass of [`JobContext::passes`].
#[derive(Clone)]
pub struct Pass {
    /// The pings of the pass's units.
    pub pings: LazyFrame,
    /// Those of the pass's units that have a fix in the span, sorted: one column, `unit`.
    pub units: DataFrame,
}

/// Milliseconds per hour: the on-duty join matches fixes to shifts by hour of the span.
const HOUR_MS: i64 = 3_600_000;
/// The on-duty plan packs a unit's number and a time into one Int64 key, so that its join and
/// its sort each run on a single integer column: `unit << TIME_BITS | ms since the span start`
/// to sort, `unit << HOUR_BITS | hours since the span start` to join. A span is at most
/// 2^40 ms (34 years, hence fewer than 2^20 hours), which leaves 23 bits for the unit.
const TIME_BITS: u32 = 40;
/// See [`TIME_BITS`].
const HOUR_BITS: u32 = 20;

/// Each unit's roster entries as UTC ms `[start, end)`, sorted, with overlapping or touching
/// shifts merged into one.
#[must_use]
pub fn duty_spans(roster: &[RosterEntry], tz: Tz) -> BTreeMap<String, Vec<(i64, i64)>> {
    let mut out: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for e in roster {
        let (s, end) = e.utc_ms(tz);
        if s < end {
            out.entry(e.unit.clone()).or_default().push((s, end));
        }
    }
    for spans in out.values_mut() {
        spans.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
        for &(s, end) in spans.iter() {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((s, end)),
            }
        }
        *spans = merged;
    }
    out
}

impl JobContext {
    /// A context over `[from_ms, to_ms)`.
    ///
    /// # Errors
    /// [`AnalyticsError::Invalid`] when the span is empty or `res` is finer than `store_res`.
    pub fn new(
        tz: Tz,
        windows: Vec<Window>,
        (from_ms, to_ms): (i64, i64),
        (res, store_res): (u8, u8),
        gap_cap_s: u32,
    ) -> Result<Self, AnalyticsError> {
        if from_ms >= to_ms {
            return Err(AnalyticsError::Invalid("--from must be before --to".into()));
        }
        let resolution = |r: u8| {
            Resolution::try_from(r)
                .map_err(|_| AnalyticsError::Invalid(format!("H3 resolution {r} is not 0..=15")))
        };
        if to_ms - from_ms >= 1 << TIME_BITS {
            return Err(AnalyticsError::Invalid(
                "the span from --from to --to must be shorter than 34 years".into(),
            ));
        }
        if res > store_res {
            return Err(AnalyticsError::Invalid(format!(
                "resolution {res} is finer than the stored cells (store_res {store_res})"
            )));
        }
        Ok(Self {
            from_ms,
            to_ms,
            res: resolution(res)?,
            store_res: resolution(store_res)?,
            gap_cap_ms: i64::from(gap_cap_s) * 1000,
            windows,
            clock: LocalClock::new(tz, from_ms, to_ms),
            duty: Duty::empty(),
            pass_fixes: DEFAULT_PASS_FIXES,
        })
    }

    /// The context with the shifts of `roster` (see [`duty_spans`]) as the units' time on duty.
    ///
    /// # Errors
    /// [`AnalyticsError::Invalid`] when a window does not start and end on a whole minute or
    /// the zone's offset over the span is not a whole number of minutes; a polars error
    /// building the roster tables.
    pub fn with_roster(mut self, roster: &[RosterEntry]) -> Result<Self, AnalyticsError> {
        let whole = |t: chrono::NaiveTime| t.second() == 0 && t.nanosecond() == 0;
        if !self.windows.iter().all(|w| whole(w.start) && whole(w.end)) {
            return Err(AnalyticsError::Invalid(
                "patrol windows must start and end on whole minutes".into(),
            ));
        }
        if !self.clock.whole_minutes() {
            return Err(AnalyticsError::Invalid(
                "the zone's UTC offset is not a whole number of minutes over the span".into(),
            ));
        }
        let (mut minute, mut window, mut day) = (Vec::new(), Vec::new(), Vec::new());
        for m in self.from_ms.div_euclid(60_000)..=(self.to_ms - 1).div_euclid(60_000) {
            let (w, d) = window_at(&self.windows, self.clock.local_ms(m * 60_000));
            minute.push(m);
            window.push(w.map(str::to_owned));
            day.push(d);
        }
        let spans = duty_spans(roster, self.clock.tz());
        let (mut unit, mut hour, mut s, mut e, mut g) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (id, shifts) in &spans {
            for (k, &(start, end)) in shifts.iter().enumerate() {
                let next = shifts.get(k + 1).map_or(i64::MAX, |n| n.0);
                let grace = end.saturating_add(self.gap_cap_ms).min(next);
                if start >= self.to_ms || grace <= self.from_ms {
                    continue;
                }
                let hour_of = |t: i64| (t - self.from_ms).div_euclid(HOUR_MS);
                for h in hour_of(start).max(0)..=hour_of(grace - 1) {
                    unit.push(id.clone());
                    hour.push(h);
                    s.push(start);
                    e.push(end);
                    g.push(grace);
                }
            }
        }
        self.duty = Duty {
            hours: DataFrame::new_infer_height(vec![
                Column::new("duty_unit".into(), unit),
                Column::new("hour".into(), hour),
                Column::new("s".into(), s),
                Column::new("e".into(), e),
                Column::new("g".into(), g),
            ])?,
            rostered: DataFrame::new_infer_height(vec![
                Column::new("rostered".into(), spans.keys().cloned().collect::<Vec<_>>()),
                Column::new("own".into(), vec![true; spans.len()]),
            ])?,
            minutes: DataFrame::new_infer_height(vec![
                Column::new("minute".into(), minute),
                Column::new("window".into(), window),
                Column::new("day".into(), day),
            ])?,
        };
        Ok(self)
    }

    /// A context from a jurisdiction's settings and its `roster.csv`; `res` defaults to
    /// `[h3] analysis_res`.
    ///
    /// # Errors
    /// As [`JobContext::new`], or [`AnalyticsError::Jurisdiction`] when `roster.csv` cannot be
    /// read.
    pub fn for_jurisdiction(
        j: &Jurisdiction,
        from_ms: i64,
        to_ms: i64,
        res: Option<u8>,
    ) -> Result<Self, AnalyticsError> {
        let s = j.settings();
        let roster = load_roster(&j.roster_path())?;
        Self::new(
            j.timezone(),
            s.windows.clone(),
            (from_ms, to_ms),
            (res.unwrap_or(s.h3.analysis_res), s.h3.store_res),
            s.dosage.gap_cap_s,
        )?
        .with_roster(&roster)
    }

    /// `cell` (UInt64 at `store_res`) as its parent at `res`, by arithmetic on the H3 bits:
    /// the digits finer than `res` are set to 7 (a bitwise or) and the resolution field is
    /// lowered.
    pub fn parent_expr(&self, cell: Expr) -> Expr {
        let low = 3 * (15 - u32::from(u8::from(self.res)));
        let drop = u64::from(u8::from(self.store_res) - u8::from(self.res)) << 52;
        cell.or(lit((1u64 << low) - 1)) - lit(drop)
    }

    /// The interval plan over `pings` (store columns), on duty or not (the roster is not
    /// consulted; see [`JobContext::duty_intervals`]): one row per interval with `unit`, `t`
    /// and `dt` (ms), `cell_a`/`cell_b` (both ends at `res`), `lat`, `lon`, `lat_b`, `lon_b`,
    /// `beat`, `zone`, `window` (null outside windows), `day` (local day of the window
    /// instance), `tracked` (bool).
    pub fn intervals(&self, pings: LazyFrame) -> LazyFrame {
        let next = |c: &str, alias: &str| col(c).shift(lit(-1)).alias(alias);
        let local = self.clock.local_ms_expr(col("t"));
        self.trusted_fixes(pings)
            .sort([UNIT, "t"], SortMultipleOptions::default())
            .with_columns([
                next(UNIT, "unit_b"),
                next("t", "t_b"),
                next(CELL, "cell_b"),
                next(LAT, "lat_b"),
                next(LON, "lon_b"),
            ])
            .filter(col("unit_b").eq(col(UNIT)))
            .with_columns([
                (col("t_b") - col("t")).alias("dt"),
                self.parent_expr(col(CELL)).alias("cell_a"),
                self.parent_expr(col("cell_b")).alias("cell_b"),
                window_expr(&self.windows, local.clone()).alias("window"),
                window_day_expr(&self.windows, local).alias("day"),
            ])
            .with_column(col("dt").lt_eq(lit(self.gap_cap_ms)).alias("tracked"))
    }

    /// `pings` cut into passes by unit, so that a long span or a large fleet is analysed in
    /// bounded memory: each pass keeps the units of one contiguous range of unit ids (in byte
    /// order), with at most [`JobContext::pass_fixes`] fixes in the span between them (a unit
    /// with more has a pass of its own). Every interval, shift and on-duty plan belongs to one
    /// unit, so the passes' sums, and their counts of distinct units, add up to those of one
    /// pass over all the pings; a job that counts other distinct things (coverage's visible
    /// minutes) merges their sets. Counting the fixes per unit is one scan of the `unit` and
    /// `fix_time` columns, and it also gives each pass its list of units, so the passes' plans
    /// need no scan of their own to find them.
    ///
    /// # Errors
    /// A polars error from that scan.
    pub fn passes(&self, pings: LazyFrame) -> Result<Vec<Pass>, AnalyticsError> {
        let t = col(FIX_TIME).cast(DataType::Int64);
        // The streaming engine aggregates as it reads; the in-memory one would first hold the
        // two columns of every ping in the span (gigabytes for a week of a large fleet).
        let counts = collect_streaming(
            pings
                .clone()
                .filter(
                    t.clone()
                        .gt_eq(lit(self.from_ms))
                        .and(t.lt(lit(self.to_ms))),
                )
                .group_by([col(UNIT)])
                .agg([len().cast(DataType::UInt64).alias("n")])
                .drop_nulls(None)
                .sort([UNIT], SortMultipleOptions::default()),
        )?;
        let units = counts.column(UNIT)?.str()?;
        let fixes = counts.column("n")?.u64()?;
        // The row of `counts` each pass after the first starts at.
        let mut starts: Vec<usize> = Vec::new();
        let mut in_pass = 0u64;
        for i in 0..counts.height() {
            let n = fixes.get(i).unwrap_or(0);
            if in_pass > 0 && in_pass.saturating_add(n) > self.pass_fixes {
                starts.push(i);
                in_pass = 0;
            }
            in_pass = in_pass.saturating_add(n);
        }
        let seen = counts.select([UNIT])?;
        if starts.is_empty() {
            return Ok(vec![Pass { pings, units: seen }]);
        }
        let mut out = Vec::with_capacity(starts.len() + 1);
        let mut low: Option<usize> = None;
        for high in starts.into_iter().map(Some).chain(std::iter::once(None)) {
            let bound = |i: Option<usize>| i.and_then(|i| units.get(i));
            let above = bound(low).map(|l| col(UNIT).gt_eq(lit(l)));
            let below = bound(high).map(|h| col(UNIT).lt(lit(h)));
            let keep = match (above, below) {
                (Some(a), Some(b)) => a.and(b),
                (Some(k), None) | (None, Some(k)) => k,
                (None, None) => lit(true),
            };
            let first = low.unwrap_or(0);
            let rows = high.unwrap_or(counts.height()) - first;
            out.push(Pass {
                pings: pings.clone().filter(keep),
                units: seen.slice(first as i64, rows),
            });
            low = high;
        }
        Ok(out)
    }

    /// The trusted fixes in the span: `unit`, `t` (epoch ms) and the store columns the jobs read.
    fn trusted_fixes(&self, pings: LazyFrame) -> LazyFrame {
        let t = col(FIX_TIME).cast(DataType::Int64);
        // Bits 0 (low accuracy) and 1 (jump) both clear: flags mod 4 is 0.
        let trusted = (col(FLAGS) % lit(FLAG_LOW_ACCURACY + FLAG_JUMP + 1)).eq(lit(0));
        pings
            .filter(
                t.clone()
                    .gt_eq(lit(self.from_ms))
                    .and(t.clone().lt(lit(self.to_ms)))
                    .and(trusted),
            )
            .select([
                col(UNIT),
                t.alias("t"),
                col(CELL),
                col(LAT),
                col(LON),
                col(BEAT),
                col(ZONE),
            ])
    }

    /// The units of `seen` (a column `unit`), one row each: `unit`, `code` (a row number the plans sort
    /// and compare by instead of the string), `kind` (from `units`, a table of `unit` and
    /// `kind`; a clone `<id>-<n>` not listed takes the kind of `<id>`, any other unlisted unit
    /// is [`UNKNOWN_KIND`]) and `duty_unit` (the roster id whose shifts apply: the unit's own,
    /// or for a clone without entries of its own, that of `<id>`).
    fn unit_table(&self, seen: LazyFrame, units: LazyFrame) -> LazyFrame {
        let base_units = units
            .clone()
            .select([col(UNIT).alias("unit_base"), col("kind").alias("kind_base")]);
        seen.select([col(UNIT)])
            .unique(None, UniqueKeepStrategy::Any)
            // Sorted, so that every use of the table numbers the units alike.
            .sort([UNIT], SortMultipleOptions::default())
            .with_row_index("code", None)
            .with_column(col("code").cast(DataType::Int64))
            .with_column(
                col(UNIT)
                    .str()
                    .extract(lit(r"^(.+)-[0-9]+$"), 1)
                    .alias("unit_base"),
            )
            .left_join(units, col(UNIT), col(UNIT))
            .left_join(base_units, col("unit_base"), col("unit_base"))
            .left_join(
                self.duty.rostered.clone().lazy(),
                col(UNIT),
                col("rostered"),
            )
            .select([
                col(UNIT),
                col("code"),
                col("kind")
                    .fill_null(col("kind_base"))
                    .fill_null(lit(UNKNOWN_KIND)),
                when(col("own").is_not_null())
                    .then(col(UNIT))
                    .otherwise(col("unit_base"))
                    .alias("duty_unit"),
            ])
    }

    /// The on-duty interval plan over the pings of `pass` (store columns; see the module doc), one row per
    /// interval: `unit`, `code` (a number per unit), `kind` (from `units`, see below), `t`, `dt` (ms to the next fix, null when none follows in the span), `ms` (the
    /// on-duty length: to the next fix, the shift's end or the span's end, whichever is first),
    /// `cell_a`/`cell_b` (both ends at `res`), `lat`, `lon`, `lat_b`, `lon_b`, `beat`, `zone`,
    /// `window` (null outside windows), `day` (local day of the window instance), `tracked`.
    /// `units` has columns `unit` and `kind`; a clone `<id>-<n>` not listed there has the kind
    /// of `<id>`, any other unlisted unit is of kind [`UNKNOWN_KIND`].
    pub fn duty_intervals(&self, pass: Pass, units: LazyFrame) -> LazyFrame {
        let fixes = self.trusted_fixes(pass.pings);
        // The units come from the pass, not from the pings: a second branch over the scan
        // read the whole store without its filter (seen with POLARS_VERBOSE in polars 0.55).
        let units = self.unit_table(pass.units.lazy(), units).cache();
        let shifts = units
            .clone()
            .inner_join(
                self.duty.hours.clone().lazy(),
                col("duty_unit"),
                col("duty_unit"),
            )
            .select([
                (col("code") * lit(1i64 << HOUR_BITS) + col("hour")).alias("key"),
                col("s"),
                col("e"),
                col("g"),
            ]);
        let next = |c: &str, alias: &str| col(c).shift(lit(-1)).alias(alias);
        // The on-duty part ends at the shift's end or the span's end, whichever is first.
        let stop = when(col("e").lt(lit(self.to_ms)))
            .then(col("e"))
            .otherwise(lit(self.to_ms));
        let since_start = col("t") - lit(self.from_ms);
        fixes
            .inner_join(
                units.select([col(UNIT), col("code"), col("kind")]),
                col(UNIT),
                col(UNIT),
            )
            .with_column(
                (col("code") * lit(1i64 << HOUR_BITS) + since_start.clone() / lit(HOUR_MS))
                    .alias("key"),
            )
            .inner_join(shifts, col("key"), col("key"))
            .filter(col("t").gt_eq(col("s")).and(col("t").lt(col("g"))))
            .with_column((col("code") * lit(1i64 << TIME_BITS) + since_start).alias("order"))
            .sort(["order"], SortMultipleOptions::default())
            .with_columns([
                next("order", "order_b"),
                next(CELL, "cell_b"),
                next(LAT, "lat_b"),
                next(LON, "lon_b"),
            ])
            .filter(col("t").lt(col("e")))
            .with_column(
                // The next fix's time, when it is the same unit's.
                when((col("order_b") / lit(1i64 << TIME_BITS)).eq(col("code")))
                    .then(col("order_b") % lit(1i64 << TIME_BITS) + lit(self.from_ms))
                    .otherwise(lit(NULL).cast(DataType::Int64))
                    .alias("t_b"),
            )
            .with_column((col("t") / lit(60_000i64)).alias("minute"))
            .left_join(
                self.duty.minutes.clone().lazy(),
                col("minute"),
                col("minute"),
            )
            .with_columns([
                (col("t_b") - col("t")).alias("dt"),
                (when(col("t_b").lt(stop.clone()))
                    .then(col("t_b"))
                    .otherwise(stop)
                    - col("t"))
                .alias("ms"),
                self.parent_expr(col(CELL)).alias("cell_a"),
                self.parent_expr(col("cell_b")).alias("cell_b"),
            ])
            .with_column(
                col("dt")
                    .lt_eq(lit(self.gap_cap_ms))
                    .fill_null(lit(false))
                    .alias("tracked"),
            )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::testing::{Fix, cells9, ms, pings, windows};

    /// The units of each pass as [`Pass::units`] lists them, in order.
    fn pass_units(ctx: &JobContext, fixes: &[Fix]) -> Vec<Vec<String>> {
        ctx.passes(pings(fixes))
            .unwrap()
            .into_iter()
            .map(|p| {
                let units = p.units.column(UNIT).unwrap().str().unwrap().clone();
                (0..units.len())
                    .filter_map(|i| units.get(i).map(str::to_owned))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn passes_split_between_units_and_keep_every_fix() {
        let (a, _, _) = cells9();
        let t0 = ms("2026-11-02T14:00:00Z");
        let mut ctx = JobContext::new(
            chrono_tz::America::Chicago,
            windows(),
            (t0, ms("2026-11-02T18:00:00Z")),
            (9, 11),
            120,
        )
        .unwrap();
        // C01 has 3 fixes in the span, C02 and C03 one each; C00's fix lies before the span.
        let mut fixes = vec![Fix::at("C00", t0 - 1000, a)];
        for (unit, n) in [("C01", 3), ("C02", 1), ("C03", 1)] {
            for k in 0..n {
                fixes.push(Fix::at(unit, t0 + k * 10_000, a));
            }
        }
        assert_eq!(
            pass_units(&ctx, &fixes),
            [vec!["C01", "C02", "C03"]],
            "everything fits in one pass"
        );
        ctx.pass_fixes = 2;
        // C01 alone exceeds the budget and gets a pass of its own; C02 and C03 share one.
        assert_eq!(pass_units(&ctx, &fixes), [vec!["C01"], vec!["C02", "C03"]]);
        ctx.pass_fixes = 1;
        assert_eq!(
            pass_units(&ctx, &fixes),
            [vec!["C01"], vec!["C02"], vec!["C03"]]
        );
        // The passes' pings hold every fix once (C00's, outside the span, in the first pass).
        let sizes: Vec<usize> = ctx
            .passes(pings(&fixes))
            .unwrap()
            .into_iter()
            .map(|p| p.pings.collect().unwrap().height())
            .collect();
        assert_eq!(sizes, [4, 1, 1]);
    }
}
