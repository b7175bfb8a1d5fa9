//! The store's Parquet schema as analytics reads it: the one module that mirrors
//! `ingest/src/store/schema.rs` (`analytics` may not depend on `ingest`).
//!
//! Only the columns the jobs use are named here, with the polars dtype a hive-partitioned
//! `scan_parquet` gives them. `api/tests/it/analyze.rs` reads a store written by the real
//! ingest code and checks every column below, so a change on either side fails a test.

use std::path::Path;

use polars::prelude::*;

use crate::AnalyticsError;

/// Folder of the pings table under the store root (`pings/date=YYYY-MM-DD/*.parquet`).
pub const PINGS_DIR: &str = "pings";

/// Unit id (utf8).
pub const UNIT: &str = "unit";
/// Station id (utf8).
pub const STATION: &str = "station";
/// Fix time (timestamp ms, UTC).
pub const FIX_TIME: &str = "fix_time";
/// Latitude, WGS-84 degrees (f64).
pub const LAT: &str = "lat";
/// Longitude, WGS-84 degrees (f64).
pub const LON: &str = "lon";
/// H3 cell at the jurisdiction's `store_res` (u64).
pub const CELL: &str = "cell";
/// Beat id, null outside every beat (utf8).
pub const BEAT: &str = "beat";
/// Zone id, null outside every zone (utf8).
pub const ZONE: &str = "zone";
/// Flag bits (i32): [`FLAG_LOW_ACCURACY`], [`FLAG_JUMP`], [`FLAG_LATE`].
pub const FLAGS: &str = "flags";

/// Flag bit: the fix is less accurate than `[validate] max_acc_m`.
pub const FLAG_LOW_ACCURACY: i32 = 1;
/// Flag bit: reaching the fix needs an implausible speed.
pub const FLAG_JUMP: i32 = 2;
/// Flag bit: the fix arrived after later fixes of its unit.
pub const FLAG_LATE: i32 = 4;

/// The columns above with the dtypes polars reads them as.
#[must_use]
pub fn pings_columns() -> Vec<(&'static str, DataType)> {
    vec![
        (UNIT, DataType::String),
        (STATION, DataType::String),
        (
            FIX_TIME,
            DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)),
        ),
        (LAT, DataType::Float64),
        (LON, DataType::Float64),
        (CELL, DataType::UInt64),
        (BEAT, DataType::String),
        (ZONE, DataType::String),
        (FLAGS, DataType::Int32),
    ]
}

/// A lazy scan of every pings file under `store` (hive partitions enabled, so files written by
/// arrow-rs and by polars read alike).
///
/// # Errors
/// [`AnalyticsError::NoPings`] when the store has no pings folder or no file in it, or a
/// polars error when the scan cannot be set up.
pub fn scan_pings(store: &Path) -> Result<LazyFrame, AnalyticsError> {
    let dir = store.join(PINGS_DIR);
    let has_files = std::fs::read_dir(&dir)
        .map(|days| {
            days.flatten().any(|d| {
                std::fs::read_dir(d.path()).is_ok_and(|files| {
                    files
                        .flatten()
                        .any(|f| f.path().extension().is_some_and(|e| e == "parquet"))
                })
            })
        })
        .unwrap_or(false);
    if !has_files {
        return Err(AnalyticsError::NoPings(dir));
    }
    let glob = format!("{}/**/*.parquet", dir.display());
    let args = ScanArgsParquet {
        hive_options: HiveOptions::new_enabled(),
        ..Default::default()
    };
    Ok(LazyFrame::scan_parquet(PlRefPath::new(glob), args)?)
}

/// Checks that `lf` has every column of [`pings_columns`] with its dtype.
///
/// # Errors
/// [`AnalyticsError::Schema`] naming the first missing or mistyped column.
pub fn check_pings_schema(lf: &mut LazyFrame) -> Result<(), AnalyticsError> {
    let schema = lf.collect_schema()?;
    for (name, dtype) in pings_columns() {
        match schema.get(name) {
            Some(found) if *found == dtype => {}
            Some(found) => {
                return Err(AnalyticsError::Schema(format!(
                    "column `{name}` is {found}, expected {dtype}"
                )));
            }
            None => return Err(AnalyticsError::Schema(format!("no column `{name}`"))),
        }
    }
    Ok(())
}
