//! What every patrol job shares: the analysed span, the grid, the gap cap, the windows, the
//! local clock and the roster, the interval plan built from the pings, and the passes.
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
//! `roster.csv` (the walk of [`crate::duty`]):
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

use std::collections::{BTreeMap, HashMap};

use chrono::Timelike;
use chrono_tz::Tz;
use h3o::Resolution;
use model::jurisdiction::{Jurisdiction, NonexistentLocalTime, RosterEntry, Window};
use polars::prelude::*;

use crate::clock::{LocalClock, NO_WINDOW, window_day_expr, window_expr, window_index_at};
use crate::shifts::{Shift, base_unit};
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
    /// The roster and the span's minutes as the on-duty walk reads them; nobody is on duty until
    /// [`JobContext::with_roster`].
    duty: Duty,
    /// Most fixes one pass of dosage, coverage or gaps reads (see [`JobContext::passes`]).
    pub pass_fixes: u64,
}

/// The roster and the clock as the on-duty walk ([`crate::duty`]) reads them.
#[derive(Debug, Clone, Default)]
struct Duty {
    /// Each rostered unit's shifts (see [`duty_spans`]), sorted, with `g` the end of the
    /// grace: `e` plus the gap cap, but not past the unit's next shift, so one unit's shifts
    /// and graces never overlap. A fix in the grace starts no interval; it only ends the
    /// shift's last one.
    shifts: BTreeMap<String, Vec<Shift>>,
    /// Per UTC minute of the span from its first (epoch ms / 60 000): the window index
    /// ([`NO_WINDOW`] outside windows) and day [`window_at`] gives for it (the windows and
    /// the zone's offsets are whole minutes, so every instant of a minute has the same).
    minutes: Vec<(u8, i64)>,
}

/// Default of [`JobContext::pass_fixes`]. Over a week of 100M pings `patrol analyze presence`
/// peaked at 1.55 to 1.70 GB with passes of 4M fixes, 2.24 GB with 6M and 2.73 GB with 8M, and
/// was no faster with either (BENCHMARKS.md).
pub const DEFAULT_PASS_FIXES: u64 = 4_000_000;

/// One pass of [`JobContext::passes`].
#[derive(Clone)]
pub struct Pass {
    /// The pings of the pass's units.
    pub pings: LazyFrame,
    /// Those of the pass's units that have a fix in the span, sorted: one column, `unit`.
    pub units: DataFrame,
}

/// Longest span a context accepts: its minute table ([`Duty::minutes`]) holds 16 bytes a
/// minute, 84 MB for ten years.
const MAX_SPAN_MS: i64 = 10 * 366 * 86_400_000;

/// Each unit's roster entries as UTC ms `[start, end)`, sorted, with overlapping or touching
/// shifts merged into one.
///
/// # Errors
/// [`NonexistentLocalTime`] for an entry whose start or end names no instant in `tz`.
pub fn duty_spans(
    roster: &[RosterEntry],
    tz: Tz,
) -> Result<BTreeMap<String, Vec<(i64, i64)>>, NonexistentLocalTime> {
    let mut out: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for e in roster {
        let (s, end) = e.utc_ms(tz)?;
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
    Ok(out)
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
        if to_ms - from_ms > MAX_SPAN_MS {
            return Err(AnalyticsError::Invalid(
                "the span from --from to --to must be at most ten years".into(),
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
            duty: Duty::default(),
            pass_fixes: DEFAULT_PASS_FIXES,
        })
    }

    /// The context with the shifts of `roster` (see [`duty_spans`]) as the units' time on duty.
    ///
    /// # Errors
    /// [`AnalyticsError::Invalid`] when a window does not start and end on a whole minute or
    /// the zone's offset over the span is not a whole number of minutes;
    /// [`AnalyticsError::LocalTime`] for a shift time that does not exist in the zone; a polars
    /// error building the roster tables.
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
        if self.windows.len() >= usize::from(NO_WINDOW) {
            return Err(AnalyticsError::Invalid(format!(
                "at most {} patrol windows",
                NO_WINDOW - 1
            )));
        }
        let minutes = (self.from_ms.div_euclid(60_000)..=(self.to_ms - 1).div_euclid(60_000))
            .map(|m| self.window_code(m * 60_000))
            .collect();
        let shifts = duty_spans(roster, self.clock.tz())?
            .into_iter()
            .map(|(id, spans)| {
                let shifts = spans
                    .iter()
                    .enumerate()
                    .map(|(k, &(s, e))| {
                        let next = spans.get(k + 1).map_or(i64::MAX, |n| n.0);
                        let g = e.saturating_add(self.gap_cap_ms).min(next);
                        Shift { s, e, g }
                    })
                    .collect();
                (id, shifts)
            })
            .collect();
        self.duty = Duty { shifts, minutes };
        Ok(self)
    }

    /// A context from a jurisdiction's settings and its roster; `res` defaults to
    /// `[h3] analysis_res`.
    ///
    /// # Errors
    /// As [`JobContext::new`] and [`JobContext::with_roster`].
    pub fn for_jurisdiction(
        j: &Jurisdiction,
        from_ms: i64,
        to_ms: i64,
        res: Option<u8>,
    ) -> Result<Self, AnalyticsError> {
        let s = j.settings();
        Self::new(
            j.timezone(),
            s.windows.clone(),
            (from_ms, to_ms),
            (res.unwrap_or(s.h3.analysis_res), s.h3.store_res),
            s.dosage.gap_cap_s,
        )?
        .with_roster(j.roster())
    }

    /// What lifts a cell at `store_res` to its parent at `res`, by arithmetic on the H3 bits:
    /// the digits finer than `res` are set to 7 (a bitwise or with the first value) and the
    /// resolution field is lowered (less the second).
    fn parent_bits(&self) -> (u64, u64) {
        let low = 3 * (15 - u32::from(u8::from(self.res)));
        let drop = u64::from(u8::from(self.store_res) - u8::from(self.res)) << 52;
        ((1u64 << low) - 1, drop)
    }

    /// `cell` (UInt64 at `store_res`) as its parent at `res` ([`JobContext::parent_bits`]).
    pub fn parent_expr(&self, cell: Expr) -> Expr {
        let (digits, drop) = self.parent_bits();
        cell.or(lit(digits)) - lit(drop)
    }

    /// [`JobContext::parent_expr`] of one cell; 0 (no cell) stays 0.
    pub(crate) fn parent(&self, cell: u64) -> u64 {
        if cell == 0 {
            return 0;
        }
        let (digits, drop) = self.parent_bits();
        (cell | digits) - drop
    }

    /// The shifts of `unit` (see [`Duty::shifts`]): its own, or for a clone `<id>-<n>` without
    /// entries of its own, those of `<id>`; none for a unit not on the roster.
    pub(crate) fn shifts_of(&self, unit: &str) -> &[Shift] {
        self.duty
            .shifts
            .get(unit)
            .or_else(|| base_unit(unit).and_then(|b| self.duty.shifts.get(b)))
            .map_or(&[], Vec::as_slice)
    }

    /// Rostered unit-minutes inside each window over the span (a unit on duty through a whole
    /// 2 h 50 min window adds 170): the force the windows have.
    #[must_use]
    pub fn duty_minutes_by_window(&self) -> HashMap<String, f64> {
        let mut by_index: HashMap<u8, f64> = HashMap::new();
        let first = self.from_ms.div_euclid(60_000);
        for shifts in self.duty.shifts.values() {
            for sh in shifts {
                let (a, b) = (sh.s.max(self.from_ms), sh.e.min(self.to_ms));
                for m in a.div_euclid(60_000)..b.div_euclid(60_000) {
                    let code = usize::try_from(m - first)
                        .ok()
                        .and_then(|i| self.duty.minutes.get(i))
                        .map_or(NO_WINDOW, |(w, _)| *w);
                    if code != NO_WINDOW {
                        *by_index.entry(code).or_default() += 1.0;
                    }
                }
            }
        }
        by_index
            .into_iter()
            .filter_map(|(i, m)| self.window_name(i).map(|n| (n.to_owned(), m)))
            .collect()
    }

    /// The name of window `index` ([`NO_WINDOW`]: None).
    pub(crate) fn window_name(&self, index: u8) -> Option<&str> {
        self.windows
            .get(usize::from(index))
            .map(|w| w.name.as_str())
    }

    /// The window index ([`NO_WINDOW`] outside windows) and local day of the window instance
    /// at `utc_ms`, an instant of the span, from the table of the span's minutes.
    pub(crate) fn window_and_day(&self, utc_ms: i64) -> (u8, i64) {
        let minute = utc_ms.div_euclid(60_000) - self.from_ms.div_euclid(60_000);
        usize::try_from(minute)
            .ok()
            .and_then(|m| self.duty.minutes.get(m).copied())
            .unwrap_or_else(|| self.window_code(utc_ms))
    }

    /// [`window_index_at`] of `utc_ms` as [`JobContext::window_and_day`] gives it.
    fn window_code(&self, utc_ms: i64) -> (u8, i64) {
        let (index, day) = window_index_at(&self.windows, self.clock.local_ms(utc_ms));
        let index = index.and_then(|i| u8::try_from(i).ok());
        (index.unwrap_or(NO_WINDOW), day)
    }

    /// The interval plan over `pings` (store columns), on duty or not (the roster is not
    /// consulted; see [`crate::duty`]): one row per interval with `unit`, `t`
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
    /// with more has a pass of its own). Every interval, shift and on-duty interval belongs to one
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
    pub(crate) fn trusted_fixes(&self, pings: LazyFrame) -> LazyFrame {
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
