//! Analytics: jobs over the patrol store and the jurisdiction files.
//!
//! This crate depends on neither `ingest` nor `api`: its inputs are the store's Parquet files
//! and the jurisdiction's files on disk, both as the `model` crate describes them (the store
//! schema, `model::jurisdiction::Jurisdiction`).
//!
//! # Layout
//! - [`store`]: the pings columns analytics reads, with their polars dtypes, from
//!   `model::schema`.
//! - [`clock`]: local time, days and patrol windows as polars expressions.
//! - [`context`]: [`JobContext`], the parameters of a run, the interval plan over pings and the
//!   passes.
//! - `shifts`: a unit's shifts as the walk follows them, clones' roster units, unknown kinds.
//! - `duty`: the on-duty walk of dosage, coverage and gaps.
//! - `distance`: great-circle (geo's haversine) and equirectangular distances.
//! - [`dosage`], [`coverage`], [`hotspots`], [`gaps`], [`koper`], [`compliance`],
//!   [`incidents`]: the weekly meeting's jobs (issue 5).
//! - [`forecast`]: hot-spot forecasts, their rolling-origin backtest and the chosen method.
//! - [`presence`]: dosage, coverage and gaps from one read of the pings.
//! - [`plan`]: next week's roster and directed visits from the forecast (`patrol plan`).
//! - [`jobs`]: the one entry point: a [`jobs::Job`], a typed [`jobs::Request`], and
//!   [`jobs::run`] answering with tables of declared schemas.
//! - [`output`]: writing a job's table as Parquet, CSV or JSON.
//! - [`roads`]: road network loading (OSM XML and PBF, GeoJSON) and routing.
//! - [`response`]: the 30 km / 30 minute response rule on the road network (issue 6).

pub mod clock;
pub mod compliance;
pub mod context;
pub mod coverage;
mod distance;
pub mod dosage;
mod duty;
pub mod forecast;
pub mod gaps;
pub mod hotspots;
pub mod incidents;
pub mod jobs;
pub mod koper;
pub mod output;
pub mod plan;
pub mod presence;
pub mod response;
pub mod roads;
mod shifts;
pub mod store;
#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test support")]
mod testing;

use std::path::PathBuf;

use polars::prelude::{DataFrame, Engine, LazyFrame, OptFlags, PolarsError};

pub use context::JobContext;

/// Why an analytics job failed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// Polars could not scan, plan or run the query.
    #[error("polars: {0}")]
    Polars(#[from] PolarsError),
    /// The store has no pings to analyse.
    #[error("no pings under {}", .0.display())]
    NoPings(PathBuf),
    /// The store's columns differ from [`store::pings_columns`].
    #[error("store schema: {0}")]
    Schema(String),
    /// A jurisdiction file could not be loaded.
    #[error(transparent)]
    Jurisdiction(#[from] model::jurisdiction::JurisdictionError),
    /// A roster time names no instant in the jurisdiction's zone.
    #[error(transparent)]
    LocalTime(#[from] model::jurisdiction::NonexistentLocalTime),
    /// An H3 operation failed (a fence the tiler refuses).
    #[error("H3: {0}")]
    H3(String),
    /// A parameter is out of range.
    #[error("{0}")]
    Invalid(String),
    /// The response rule failed.
    #[error(transparent)]
    Response(Box<response::JobError>),
    /// Writing the output failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Collects several plans in one query, so a scan they share is read once.
///
/// # Errors
/// A polars error.
pub fn collect_all(plans: Vec<LazyFrame>) -> Result<Vec<DataFrame>, AnalyticsError> {
    let plans = plans.into_iter().map(|lf| lf.logical_plan).collect();
    Ok(LazyFrame::collect_all_with_engine(
        plans,
        Engine::Auto,
        OptFlags::default(),
    )?)
}

/// Collects one plan with the streaming engine, which holds only what its operators keep
/// (a group-by its groups) instead of every row its scan reads.
///
/// # Errors
/// A polars error.
pub(crate) fn collect_streaming(plan: LazyFrame) -> Result<DataFrame, AnalyticsError> {
    LazyFrame::collect_all_with_engine(
        vec![plan.logical_plan],
        Engine::Streaming,
        OptFlags::default(),
    )?
    .pop()
    .ok_or_else(|| AnalyticsError::Invalid("the streaming collect returned no frame".into()))
}
