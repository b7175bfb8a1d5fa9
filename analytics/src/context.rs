//! What every patrol job shares: the analysed span, the grid, the gap cap, the windows and
//! the local clock, and the interval plan built from the pings.
//!
//! # Intervals
//! A unit's *interval* runs from one of its fixes to its next fix in the span, both trusted:
//! fixes flagged low accuracy or jump are dropped first (their position is not believed), so
//! the time across them is bridged by the trusted fixes around them, subject to the gap cap.
//! Late fixes are kept: they are sorted into place by fix time. An interval is *tracked* when
//! it lasts at most the gap cap (`[dosage] gap_cap_s`), otherwise it is *no data*. An interval
//! belongs to the window instance, local day and fence (beat, zone) of its first fix. The
//! span is `[from, to)` on fix time; an interval whose second fix lies after `to` is not seen.

use chrono_tz::Tz;
use h3o::Resolution;
use polars::prelude::*;

use crate::AnalyticsError;
use crate::clock::{LocalClock, window_day_expr, window_expr};
use crate::jurisdiction::{Jurisdiction, Window};
use crate::store::{
    BEAT, CELL, FIX_TIME, FLAG_JUMP, FLAG_LOW_ACCURACY, FLAGS, LAT, LON, UNIT, ZONE,
};

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
        })
    }

    /// A context from a jurisdiction's settings; `res` defaults to `[h3] analysis_res`.
    ///
    /// # Errors
    /// As [`JobContext::new`].
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
        )
    }

    /// `cell` (UInt64 at `store_res`) as its parent at `res`, by arithmetic on the H3 bits:
    /// the digits finer than `res` are set to 7 and the resolution field is lowered.
    pub fn parent_expr(&self, cell: Expr) -> Expr {
        let low = 3 * (15 - u32::from(u8::from(self.res)));
        let unit = 1u64 << low;
        let drop = u64::from(u8::from(self.store_res) - u8::from(self.res)) << 52;
        cell / lit(unit) * lit(unit) + lit(unit - 1) - lit(drop)
    }

    /// The interval plan over `pings` (store columns): one row per interval with `unit`, `t`
    /// and `dt` (ms), `cell_a`/`cell_b` (both ends at `res`), `lat`, `lon`, `lat_b`, `lon_b`,
    /// `beat`, `zone`, `window` (null outside windows), `day` (local day of the window
    /// instance), `tracked` (bool).
    pub fn intervals(&self, pings: LazyFrame) -> LazyFrame {
        let t = col(FIX_TIME).cast(DataType::Int64);
        // Bits 0 (low accuracy) and 1 (jump) both clear: flags mod 4 is 0.
        let trusted = (col(FLAGS) % lit(FLAG_LOW_ACCURACY + FLAG_JUMP + 1)).eq(lit(0));
        let next = |c: &str, alias: &str| col(c).shift(lit(-1)).alias(alias);
        let local = self.clock.local_ms_expr(col("t"));
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
}
