//! The store's pings table as analytics reads it: the columns the jobs use, with the polars
//! dtype a hive-partitioned `scan_parquet` gives them.
//!
//! Names and types come from `model::schema`, the schema ingest writes with; only the mapping
//! of Arrow types to polars dtypes is analytics' own. `api/tests/it/analyze.rs` reads a store
//! written by the real ingest code and checks every column below.

use std::path::Path;

use arrow_schema::{DataType as ArrowType, TimeUnit as ArrowUnit};
use model::schema::PINGS_SCHEMA;
pub use model::schema::{BEAT, CELL, FIX_TIME, FLAGS, LAT, LON, PINGS, STATION, UNIT, ZONE};
use polars::prelude::*;

use crate::AnalyticsError;

/// Flag bit: the fix is less accurate than `[validate] max_acc_m`.
pub const FLAG_LOW_ACCURACY: i32 = model::schema::FLAG_LOW_ACCURACY as i32;
/// Flag bit: reaching the fix needs an implausible speed.
pub const FLAG_JUMP: i32 = model::schema::FLAG_JUMP as i32;
/// Flag bit: the fix arrived after later fixes of its unit.
pub const FLAG_LATE: i32 = model::schema::FLAG_LATE as i32;

/// The pings columns the jobs read.
const READ: [&str; 9] = [UNIT, STATION, FIX_TIME, LAT, LON, CELL, BEAT, ZONE, FLAGS];

/// The polars dtype a Parquet column of this Arrow type is read as; `None` for a type the
/// store does not use.
fn polars_dtype(arrow: &ArrowType) -> Option<DataType> {
    Some(match arrow {
        ArrowType::Utf8 => DataType::String,
        ArrowType::Float64 => DataType::Float64,
        ArrowType::Float32 => DataType::Float32,
        ArrowType::Int32 => DataType::Int32,
        ArrowType::UInt32 => DataType::UInt32,
        ArrowType::UInt64 => DataType::UInt64,
        ArrowType::Binary => DataType::Binary,
        ArrowType::Timestamp(ArrowUnit::Millisecond, Some(tz)) if tz.as_ref() == "UTC" => {
            DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
        }
        _ => return None,
    })
}

/// The columns the jobs read, in file order, with the dtypes polars reads them as.
#[must_use]
pub fn pings_columns() -> Vec<(&'static str, DataType)> {
    READ.iter()
        .filter_map(|name| {
            let field = PINGS_SCHEMA.field_with_name(name).ok()?;
            Some((*name, polars_dtype(field.data_type())?))
        })
        .collect()
}

/// A lazy scan of every pings file under `store` (hive partitions enabled, so files written by
/// arrow-rs and by polars read alike).
///
/// # Errors
/// [`AnalyticsError::NoPings`] when the store has no pings folder or no file in it, or a
/// polars error when the scan cannot be set up.
pub fn scan_pings(store: &Path) -> Result<LazyFrame, AnalyticsError> {
    let dir = store.join(PINGS);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_read_is_in_the_schema_with_a_polars_dtype() {
        let names: Vec<&str> = pings_columns().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, READ);
        assert!(pings_columns().contains(&(
            FIX_TIME,
            DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
        )));
    }
}
