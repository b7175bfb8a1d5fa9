//! Dosage, coverage and gaps from one read of the pings: the three tables the weekly meeting
//! puts side by side share their on-duty intervals, so [`patrol_tables`] builds them once per
//! pass (see [`JobContext::passes`]) instead of once per job. Each table is the one its own job
//! ([`crate::dosage::dosage`], [`crate::coverage::coverage`], [`crate::gaps::gaps`]) gives for
//! the same inputs.

use polars::prelude::{DataFrame, LazyFrame};

use crate::AnalyticsError;
use crate::context::JobContext;
use crate::coverage::{FenceCells, coverage_table, presence};
use crate::dosage::{dosage_frame, spread};
use crate::gaps::{GapAdvice, gaps_table};
use crate::hotspots::{IncidentPoint, StudyArea};

/// The three tables of [`patrol_tables`].
pub struct PatrolTables {
    /// As [`crate::dosage::dosage`].
    pub dosage: DataFrame,
    /// As [`crate::coverage::coverage`] over the same fences.
    pub coverage: DataFrame,
    /// As [`crate::gaps::gaps`] with the fences of kind `beat`.
    pub gaps: DataFrame,
}

/// What the gaps job needs beyond the pings.
pub struct GapInputs<'a> {
    /// The study area.
    pub area: &'a StudyArea,
    /// The incidents.
    pub incidents: &'a [IncidentPoint],
    /// How many gaps to list.
    pub top: usize,
    /// Forecasts and settings.
    pub advice: GapAdvice<'a>,
}

/// Runs dosage, coverage (over `fences`, beats and zones) and gaps (naming each cell's beat
/// from the fences of kind `beat`) over one read of `pings`.
///
/// # Errors
/// A polars error from the scan or the plans.
pub fn patrol_tables(
    ctx: &JobContext,
    pings: LazyFrame,
    units: &LazyFrame,
    fences: &[FenceCells],
    gaps: &GapInputs<'_>,
) -> Result<PatrolTables, AnalyticsError> {
    let mut p = presence(ctx, pings, units)?;
    let dosage = spread(std::mem::take(&mut p.pairs));
    let beats: Vec<FenceCells> = fences
        .iter()
        .filter(|f| f.kind == "beat")
        .cloned()
        .collect();
    Ok(PatrolTables {
        coverage: coverage_table(ctx, &p, &dosage, fences)?,
        gaps: gaps_table(
            ctx,
            &dosage,
            gaps.area,
            gaps.incidents,
            &beats,
            gaps.top,
            gaps.advice,
        )?,
        dosage: dosage_frame(&dosage)?,
    })
}
