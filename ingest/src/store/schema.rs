//! The store's on-disk schema: the one place that names its tables, columns and types.
//!
//! **API Boundary:** `analytics` and the notebooks read these Parquet files directly; a change
//! here is a change to their input and must be mirrored in `analytics::schema`.
//!
//! Layout under the store root (Hive partitions, so polars, DuckDB and pyarrow read the
//! `date` column from the path):
//! ```text
//! wal/<segment>.wal                                  write-ahead log segments
//! pings/date=YYYY-MM-DD/part-<segment>-<node>.parquet   one file per WAL segment and date
//! pings/date=YYYY-MM-DD/compact-<first>-<last>-<node>.parquet   merged parts
//! rejects/date=YYYY-MM-DD/part-<segment>-<node>.parquet
//! events/date=YYYY-MM-DD/part-<segment>-<node>.parquet  geofence and duty events
//! ```
//! `date` is the UTC date of `fix_time` for pings, of `recv_time` for rejects and of `time`
//! for events. Every table is written the same way (WAL first, then one file per segment and
//! date, renamed into place) and compacted the same way.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Table of accepted pings.
pub const PINGS: &str = "pings";
/// Table of refused messages.
pub const REJECTS: &str = "rejects";
/// Table of geofence and duty events.
pub const EVENTS: &str = "events";

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// Columns of the `pings` table, in file order.
///
/// | column | type | meaning |
/// |---|---|---|
/// | unit | utf8 | unit id (last topic level) |
/// | station | utf8 | station id (middle topic level) |
/// | fix_time | timestamp(ms, UTC) | time of the fix, from the device |
/// | recv_time | timestamp(ms, UTC) | time the system received it |
/// | lat, lon | f64 | WGS-84 degrees |
/// | acc | f32, null | accuracy radius, m |
/// | speed_kmh | f32, null | speed over ground, km/h |
/// | heading | f32, null | course over ground, degrees |
/// | alt | f32, null | altitude, m |
/// | batt | i32, null | battery, percent |
/// | cell | u64 | H3 cell at the jurisdiction's `store_res` |
/// | beat, zone | utf8, null | fence ids; null outside every fence |
/// | fence_version | u32 | catalog version that assigned beat and zone |
/// | flags | i32 | bit 0 low accuracy, bit 1 jump, bit 2 late |
pub static PINGS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("unit", DataType::Utf8, false),
        Field::new("station", DataType::Utf8, false),
        Field::new("fix_time", ts(), false),
        Field::new("recv_time", ts(), false),
        Field::new("lat", DataType::Float64, false),
        Field::new("lon", DataType::Float64, false),
        Field::new("acc", DataType::Float32, true),
        Field::new("speed_kmh", DataType::Float32, true),
        Field::new("heading", DataType::Float32, true),
        Field::new("alt", DataType::Float32, true),
        Field::new("batt", DataType::Int32, true),
        Field::new("cell", DataType::UInt64, false),
        Field::new("beat", DataType::Utf8, true),
        Field::new("zone", DataType::Utf8, true),
        Field::new("fence_version", DataType::UInt32, false),
        Field::new("flags", DataType::Int32, false),
    ]))
});

/// Columns of the `rejects` table: `recv_time`, `topic`, `reason` (see
/// [`RejectReason::as_str`](crate::ping::RejectReason::as_str)), `detail`, and `payload`
/// (the bytes exactly as received).
pub static REJECTS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("recv_time", ts(), false),
        Field::new("topic", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("detail", DataType::Utf8, false),
        Field::new("payload", DataType::Binary, false),
    ]))
});

/// Columns of the `events` table, in file order; rows are sorted by unit, then time.
///
/// | column | type | meaning |
/// |---|---|---|
/// | unit | utf8 | unit id |
/// | time | timestamp(ms, UTC) | when it happened (see each kind's `time_ms`) |
/// | kind | utf8 | `enter`, `exit`, `crossing`, `checkpoint_visit`, `out_of_zone`, `idle`, `offline`, `crew_below_minimum` |
/// | layer | utf8, null | `beat` or `zone` for `enter`, `exit` and `crossing`; null otherwise |
/// | fence | utf8, null | the fence id for `enter`, `exit` and `crossing`, the checkpoint id for `checkpoint_visit`, the rostered zone for `out_of_zone` and `crew_below_minimum`; null otherwise |
/// | catalog_version | u32 | version of the fence and checkpoint catalog behind the event |
/// | detail | utf8 | the whole event as the JSON object `/api/live` sends (every field of its kind) |
///
/// Events of one beat are the rows with `layer = 'beat'` and `fence` = the beat id.
pub static EVENTS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("unit", DataType::Utf8, false),
        Field::new("time", ts(), false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("layer", DataType::Utf8, true),
        Field::new("fence", DataType::Utf8, true),
        Field::new("catalog_version", DataType::UInt32, false),
        Field::new("detail", DataType::Utf8, false),
    ]))
});
