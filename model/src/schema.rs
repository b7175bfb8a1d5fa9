//! The store's on-disk schema: the one place that names its tables, columns and types.
//!
//! **API Boundary:** ingest writes these Parquet files, and `analytics`, the HTTP API and the
//! notebooks read them directly; every Rust reader takes the names and types from here.
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

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Table of accepted pings.
pub const PINGS: &str = "pings";
/// Table of refused messages.
pub const REJECTS: &str = "rejects";
/// Table of geofence and duty events.
pub const EVENTS: &str = "events";

/// Unit id (`pings`, `events`).
pub const UNIT: &str = "unit";
/// Station id (`pings`).
pub const STATION: &str = "station";
/// Time of the fix, from the device (`pings`).
pub const FIX_TIME: &str = "fix_time";
/// Time the system received the message (`pings`, `rejects`).
pub const RECV_TIME: &str = "recv_time";
/// WGS-84 latitude, degrees (`pings`).
pub const LAT: &str = "lat";
/// WGS-84 longitude, degrees (`pings`).
pub const LON: &str = "lon";
/// Accuracy radius, m (`pings`).
pub const ACC: &str = "acc";
/// Speed over ground, km/h (`pings`).
pub const SPEED_KMH: &str = "speed_kmh";
/// Course over ground, degrees (`pings`).
pub const HEADING: &str = "heading";
/// Altitude, m (`pings`).
pub const ALT: &str = "alt";
/// Battery, percent (`pings`).
pub const BATT: &str = "batt";
/// H3 cell at the jurisdiction's `store_res` (`pings`).
pub const CELL: &str = "cell";
/// Beat id, null outside every beat (`pings`).
pub const BEAT: &str = "beat";
/// Zone id, null outside every zone (`pings`).
pub const ZONE: &str = "zone";
/// Catalog version that assigned beat and zone (`pings`).
pub const FENCE_VERSION: &str = "fence_version";
/// Flag bits (`pings`): [`FLAG_LOW_ACCURACY`], [`FLAG_JUMP`], [`FLAG_LATE`].
pub const FLAGS: &str = "flags";
/// MQTT topic, `file:<path>` of an import, or `<protocol>/<device or peer>` of a device
/// gateway's frame (`rejects`).
pub const TOPIC: &str = "topic";
/// Why the message was refused (`rejects`).
pub const REASON: &str = "reason";
/// Details of a rejection, or the whole event as JSON (`rejects`, `events`).
pub const DETAIL: &str = "detail";
/// The message's (or the gateway frame's) bytes exactly as received (`rejects`).
pub const PAYLOAD: &str = "payload";
/// When an event happened (`events`).
pub const TIME: &str = "time";
/// Event kind (`events`).
pub const KIND: &str = "kind";
/// `beat` or `zone` (`events`).
pub const LAYER: &str = "layer";
/// Fence or checkpoint id (`events`).
pub const FENCE: &str = "fence";
/// Catalog version behind an event (`events`).
pub const CATALOG_VERSION: &str = "catalog_version";

/// Flag bit: the fix is less accurate than `[validate] max_acc_m`.
pub const FLAG_LOW_ACCURACY: u8 = 1;
/// Flag bit: reaching the fix needs an implausible speed.
pub const FLAG_JUMP: u8 = 1 << 1;
/// Flag bit: the fix arrived after later fixes of its unit.
pub const FLAG_LATE: u8 = 1 << 2;

/// The type of every time column: milliseconds since the epoch, in UTC.
#[must_use]
pub fn timestamp() -> DataType {
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
        Field::new(UNIT, DataType::Utf8, false),
        Field::new(STATION, DataType::Utf8, false),
        Field::new(FIX_TIME, timestamp(), false),
        Field::new(RECV_TIME, timestamp(), false),
        Field::new(LAT, DataType::Float64, false),
        Field::new(LON, DataType::Float64, false),
        Field::new(ACC, DataType::Float32, true),
        Field::new(SPEED_KMH, DataType::Float32, true),
        Field::new(HEADING, DataType::Float32, true),
        Field::new(ALT, DataType::Float32, true),
        Field::new(BATT, DataType::Int32, true),
        Field::new(CELL, DataType::UInt64, false),
        Field::new(BEAT, DataType::Utf8, true),
        Field::new(ZONE, DataType::Utf8, true),
        Field::new(FENCE_VERSION, DataType::UInt32, false),
        Field::new(FLAGS, DataType::Int32, false),
    ]))
});

/// Columns of the `rejects` table: `recv_time`, `topic`, `reason` (ingest's
/// `RejectReason::as_str`), `detail`, and `payload` (the bytes exactly as received).
pub static REJECTS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(RECV_TIME, timestamp(), false),
        Field::new(TOPIC, DataType::Utf8, false),
        Field::new(REASON, DataType::Utf8, false),
        Field::new(DETAIL, DataType::Utf8, false),
        Field::new(PAYLOAD, DataType::Binary, false),
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
        Field::new(UNIT, DataType::Utf8, false),
        Field::new(TIME, timestamp(), false),
        Field::new(KIND, DataType::Utf8, false),
        Field::new(LAYER, DataType::Utf8, true),
        Field::new(FENCE, DataType::Utf8, true),
        Field::new(CATALOG_VERSION, DataType::UInt32, false),
        Field::new(DETAIL, DataType::Utf8, false),
    ]))
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_time_column_is_utc_milliseconds() {
        for (schema, column) in [
            (&*PINGS_SCHEMA, FIX_TIME),
            (&*PINGS_SCHEMA, RECV_TIME),
            (&*REJECTS_SCHEMA, RECV_TIME),
            (&*EVENTS_SCHEMA, TIME),
        ] {
            let field = schema.field_with_name(column);
            assert_eq!(field.map(|f| f.data_type().clone()).ok(), Some(timestamp()));
        }
    }
}
