//! The rows of the job tables the report reads, as typed structs.
//!
//! Each struct names the columns the report reads and nothing else; [`rows`] fills it from a
//! job's table and fails, naming the table and column, when a column is missing or of another
//! type. A nullable column is read through [`nullable`], which keeps it required: serde would
//! otherwise take a missing `Option` field for a null one, and a renamed column would read as
//! empty.

use analytics::compliance::DataStatus;
use analytics::jobs::{Output, TableKind};
use anyhow::Context;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A column that must be there but may hold nulls.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

/// The rows of the `kind` table of `out`.
pub(crate) fn rows<T: DeserializeOwned>(out: &Output, kind: TableKind) -> anyhow::Result<Vec<T>> {
    let frame = out.table(kind)?;
    analytics::output::json_rows(frame)
        .into_iter()
        .map(|row| serde_json::from_value(Value::Object(row)))
        .collect::<Result<Vec<T>, _>>()
        .with_context(|| format!("the {} job's {} table", out.job, kind.name()))
}

/// Patrol minutes: `dosage`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Dosage {
    /// Null for time between fixes too far apart to bridge.
    #[serde(deserialize_with = "nullable")]
    pub(crate) cell: Option<u64>,
    /// Null outside the patrol windows.
    #[serde(deserialize_with = "nullable")]
    pub(crate) window: Option<String>,
    pub(crate) minutes: f64,
}

/// Incidents per cell and slot: `hotspots`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Hotspot {
    /// `all`, `window`, ...
    pub(crate) slot_kind: String,
    /// The window's name for slots of kind `window`.
    #[serde(deserialize_with = "nullable")]
    pub(crate) slot: Option<String>,
    pub(crate) cell: u64,
    pub(crate) lat: f64,
    pub(crate) lon: f64,
    pub(crate) incidents: f64,
}

/// A hot cell-window patrols rarely reach: `gaps`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Gap {
    pub(crate) rank: f64,
    pub(crate) cell: u64,
    #[serde(deserialize_with = "nullable")]
    pub(crate) beat: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) window: Option<String>,
    pub(crate) lat: f64,
    pub(crate) lon: f64,
    pub(crate) incidents: f64,
    pub(crate) incident_share: f64,
    pub(crate) gap: f64,
    pub(crate) dosage_minutes_week: f64,
    pub(crate) extra_minutes_week: f64,
    pub(crate) visits_week: f64,
    pub(crate) visit_minutes: f64,
    #[serde(rename = "box")]
    pub(crate) patrol_box: String,
    pub(crate) box_cells: f64,
    pub(crate) box_incidents: f64,
    pub(crate) forecast_week: f64,
    pub(crate) asked_minutes_week: f64,
    #[serde(deserialize_with = "nullable")]
    pub(crate) cap: Option<String>,
    pub(crate) prevented_week: f64,
}

/// A rostered patrol: compliance `patrols`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Patrol {
    pub(crate) date: String,
    pub(crate) unit: String,
    pub(crate) kind: String,
    pub(crate) crew: u64,
    pub(crate) zone: String,
    pub(crate) window: String,
    /// Null when the entry's data is not complete.
    #[serde(deserialize_with = "nullable")]
    pub(crate) on_patrol: Option<bool>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) in_zone_share: Option<f64>,
    /// Null when the entry's data is not complete.
    #[serde(deserialize_with = "nullable")]
    pub(crate) cut_short: Option<bool>,
    pub(crate) group_ok: bool,
    /// `complete`, `partial`, `no_unit_data`, `no_store_data` or `after_data_end`.
    pub(crate) data: String,
}

impl Patrol {
    /// The entry's data is complete, so it is judged.
    pub(crate) fn complete(&self) -> bool {
        self.data == DataStatus::Complete.name()
    }
}

/// A zone-window's force against its level: compliance `force`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Force {
    pub(crate) zone: String,
    /// Null when entries without data leave it open.
    #[serde(deserialize_with = "nullable")]
    pub(crate) ok: Option<bool>,
}

/// A checkpoint-night: compliance `checkpoints`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Checkpoint {
    pub(crate) checkpoint: String,
    pub(crate) name: String,
    pub(crate) date: String,
    /// `visited`, `missed`, `not_rostered` or `no_data`.
    pub(crate) status: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_missing_nullable_column_is_an_error_and_a_null_one_is_not() {
        let null: Dosage =
            serde_json::from_value(json!({"cell": null, "window": null, "minutes": 2.0})).unwrap();
        assert_eq!((null.cell, null.window, null.minutes), (None, None, 2.0));
        let err = serde_json::from_value::<Dosage>(json!({"cell": 1, "minutes": 2.0}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `window`"), "{err}");
    }
}

/// One forecast method over the backtest's weeks: backtest `summary`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ForecastCheck {
    pub(crate) slot: String,
    pub(crate) method: String,
    pub(crate) weeks: f64,
    #[serde(deserialize_with = "nullable")]
    pub(crate) mean_pai: Option<f64>,
    pub(crate) beats_naive: f64,
    pub(crate) chosen: bool,
}
