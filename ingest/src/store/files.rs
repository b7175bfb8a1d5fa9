//! Parquet files of the store: writing a partition atomically, reading keys back for
//! deduplication, and merging small files.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, Float32Array, Float64Array, Int32Array, RecordBatch, StringArray,
    TimestampMillisecondArray, UInt32Array, UInt64Array,
};
use arrow::compute::interleave_record_batch;
use arrow::datatypes::SchemaRef;
use model::schema::{
    CATALOG_VERSION, DETAIL, EVENTS_SCHEMA, FENCE, FIX_TIME, KIND, LAT, LAYER, LON, PAYLOAD,
    PINGS_SCHEMA, RECV_TIME, REJECTS_SCHEMA, TIME, TOPIC, UNIT,
};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::StoreError;
use super::record::{StoredEvent, StoredPing};
use super::wal::sync_dir;
use crate::ping::Rejection;

const DAY_MS: i64 = 86_400_000;

/// Days since the Unix epoch of a UTC millisecond time: the partition key.
pub(crate) fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// `YYYY-MM-DD` of a day number.
pub(crate) fn day_name(day: i64) -> String {
    chrono::DateTime::from_timestamp_millis(day * DAY_MS)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| format!("day{day}"))
}

/// Parses a `date=YYYY-MM-DD` directory name back to a day number.
pub(crate) fn parse_partition(name: &str) -> Option<i64> {
    let date = chrono::NaiveDate::parse_from_str(name.strip_prefix("date=")?, "%Y-%m-%d").ok()?;
    let ms = date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis();
    Some(day_of(ms))
}

pub(crate) fn partition_dir(root: &Path, table: &str, day: i64) -> PathBuf {
    root.join(table).join(format!("date={}", day_name(day)))
}

/// The node and the WAL segment range a data file covers, from its name:
/// `part-<n>-<node>` or `compact-<a>-<b>-<node>`. Files written before nodes were named
/// (`part-<n>`, `compact-<a>-<b>`) belong to the node `""`.
pub(crate) fn file_range(name: &str) -> Option<(&str, (u64, u64))> {
    let stem = name.strip_suffix(".parquet")?;
    let number = |s: &str| -> Option<u64> {
        (s.len() == 10 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    // `<n>` or `<n>-<node>`.
    let split_node = |s| {
        let (n, node) = split_dash(s);
        Some((number(n)?, node))
    };
    if let Some(rest) = stem.strip_prefix("part-") {
        let (n, node) = split_node(rest)?;
        return Some((node, (n, n)));
    }
    let (a, rest) = stem.strip_prefix("compact-")?.split_once('-')?;
    let (b, node) = split_node(rest)?;
    Some((node, (number(a)?, b)))
}

/// `s` split at its first `-`, or all of it and `""`.
fn split_dash(s: &str) -> (&str, &str) {
    s.split_once('-').unwrap_or((s, ""))
}

/// The name of the data file of `node` holding WAL segments `first..=last`.
pub(crate) fn file_name(node: &str, first: u64, last: u64) -> String {
    let suffix = if node.is_empty() {
        String::new()
    } else {
        format!("-{node}")
    };
    if first == last {
        format!("part-{first:010}{suffix}.parquet")
    } else {
        format!("compact-{first:010}-{last:010}{suffix}.parquet")
    }
}

/// A data file with the inclusive range of WAL segments it holds.
pub(crate) type DataFile = (PathBuf, (u64, u64));

/// Data files of one partition, of every node, with their segment ranges, sorted by range.
pub(crate) fn data_files(dir: &Path) -> Result<Vec<DataFile>, StoreError> {
    Ok(named_files(dir)?
        .into_iter()
        .map(|(path, _, range)| (path, range))
        .collect())
}

/// The data files of one partition that `node` wrote, sorted by range. Only these are the
/// node's to merge and clean up: segment numbers are counted per node.
pub(crate) fn node_files(dir: &Path, node: &str) -> Result<Vec<DataFile>, StoreError> {
    Ok(named_files(dir)?
        .into_iter()
        .filter(|(_, n, _)| n == node)
        .map(|(path, _, range)| (path, range))
        .collect())
}

/// A data file with the node that wrote it and its segment range.
type NamedFile = (PathBuf, String, (u64, u64));

fn named_files(dir: &Path) -> Result<Vec<NamedFile>, StoreError> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some((node, range)) = file_range(&name) {
            out.push((entry.path(), node.to_owned(), range));
        }
    }
    out.sort_by(|a, b| (a.2, &a.1).cmp(&(b.2, &b.1)));
    Ok(out)
}

fn props() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build()
}

/// Writes `batch` to `dir/name` through a temporary file and a rename, then syncs the
/// directory, so a reader sees the whole file or none of it.
pub(crate) fn write_atomic(dir: &Path, name: &str, batch: &RecordBatch) -> Result<(), StoreError> {
    write_batches(dir, name, &batch.schema(), props(), |w| Ok(w.write(batch)?))
}

/// [`write_atomic`] for a file whose batches `write` hands to the writer one by one.
fn write_batches(
    dir: &Path,
    name: &str,
    schema: &SchemaRef,
    props: WriterProperties,
    write: impl FnOnce(&mut ArrowWriter<File>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let file = File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props))?;
    write(&mut writer)?;
    let file = writer.into_inner()?;
    file.sync_all().map_err(|e| StoreError::io(&tmp, e))?;
    let dest = dir.join(name);
    fs::rename(&tmp, &dest).map_err(|e| StoreError::io(&dest, e))?;
    sync_dir(dir).map_err(|e| StoreError::io(dir, e))
}

fn opt_f32(v: impl Iterator<Item = Option<f32>>) -> ArrayRef {
    Arc::new(v.collect::<Float32Array>())
}

/// Builds the `pings` batch, sorted by unit then fix time.
pub(crate) fn pings_batch(rows: &mut [&StoredPing]) -> Result<RecordBatch, StoreError> {
    rows.sort_by(|a, b| {
        (a.ping.unit(), a.ping.fix_time()).cmp(&(b.ping.unit(), b.ping.fix_time()))
    });
    let p = || rows.iter().map(|r| &r.ping);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(p().map(|p| Some(p.unit())).collect::<StringArray>()),
        Arc::new(p().map(|p| Some(p.station())).collect::<StringArray>()),
        Arc::new(
            TimestampMillisecondArray::from_iter_values(p().map(|p| p.fix_time()))
                .with_timezone("UTC"),
        ),
        Arc::new(
            TimestampMillisecondArray::from_iter_values(p().map(|p| p.recv_time()))
                .with_timezone("UTC"),
        ),
        Arc::new(Float64Array::from_iter_values(p().map(|p| p.lat()))),
        Arc::new(Float64Array::from_iter_values(p().map(|p| p.lon()))),
        opt_f32(p().map(|p| p.extras().acc)),
        opt_f32(p().map(|p| p.extras().speed_kmh)),
        opt_f32(p().map(|p| p.extras().heading)),
        opt_f32(p().map(|p| p.extras().alt)),
        Arc::new(
            p().map(|p| p.extras().batt.map(i32::from))
                .collect::<Int32Array>(),
        ),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.cell))),
        Arc::new(
            rows.iter()
                .map(|r| r.beat.as_deref())
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.zone.as_deref())
                .collect::<StringArray>(),
        ),
        Arc::new(UInt32Array::from_iter_values(
            rows.iter().map(|r| r.fence_version),
        )),
        Arc::new(Int32Array::from_iter_values(
            p().map(|p| i32::from(p.flags().bits())),
        )),
    ];
    Ok(RecordBatch::try_new(PINGS_SCHEMA.clone(), cols)?)
}

/// Builds the `rejects` batch in arrival order.
pub(crate) fn rejects_batch(rows: &[&Rejection]) -> Result<RecordBatch, StoreError> {
    let cols: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.recv_time))
                .with_timezone("UTC"),
        ),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.topic.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.reason.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.detail.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.payload.as_slice()))
                .collect::<BinaryArray>(),
        ),
    ];
    Ok(RecordBatch::try_new(REJECTS_SCHEMA.clone(), cols)?)
}

/// Builds the `events` batch, sorted by unit then time (ties keep their order).
pub(crate) fn events_batch(rows: &mut [&StoredEvent]) -> Result<RecordBatch, StoreError> {
    rows.sort_by(|a, b| (a.unit.as_str(), a.time_ms).cmp(&(b.unit.as_str(), b.time_ms)));
    let strings = |f: fn(&StoredEvent) -> Option<&str>| -> ArrayRef {
        Arc::new(rows.iter().map(|r| f(r)).collect::<StringArray>())
    };
    let cols: Vec<ArrayRef> = vec![
        strings(|r| Some(r.unit.as_str())),
        Arc::new(
            TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.time_ms))
                .with_timezone("UTC"),
        ),
        strings(|r| Some(r.kind.as_str())),
        strings(|r| r.layer.as_deref()),
        strings(|r| r.fence.as_deref()),
        Arc::new(UInt32Array::from_iter_values(
            rows.iter().map(|r| r.catalog_version),
        )),
        strings(|r| Some(r.detail.as_str())),
    ];
    Ok(RecordBatch::try_new(EVENTS_SCHEMA.clone(), cols)?)
}

/// The dedupe keys `(unit, detail)` of every event file in a partition.
pub(crate) fn event_keys(dir: &Path, mut visit: impl FnMut(&str, &str)) -> Result<(), StoreError> {
    for (path, _) in data_files(dir)? {
        for batch in read_columns(&path, &[UNIT, DETAIL])? {
            let units = column::<StringArray>(&batch, UNIT, &path)?;
            let details = column::<StringArray>(&batch, DETAIL, &path)?;
            for i in 0..batch.num_rows() {
                visit(units.value(i), details.value(i));
            }
        }
    }
    Ok(())
}

/// Every row of every event file in a partition.
pub(crate) fn event_rows(dir: &Path, out: &mut Vec<StoredEvent>) -> Result<(), StoreError> {
    let names = [UNIT, TIME, KIND, LAYER, FENCE, CATALOG_VERSION, DETAIL];
    for (path, _) in data_files(dir)? {
        for batch in read_columns(&path, &names)? {
            let text = |name| column::<StringArray>(&batch, name, &path);
            let (units, kinds, layers, fences, details) = (
                text(UNIT)?,
                text(KIND)?,
                text(LAYER)?,
                text(FENCE)?,
                text(DETAIL)?,
            );
            let times = column::<TimestampMillisecondArray>(&batch, TIME, &path)?;
            let versions = column::<UInt32Array>(&batch, CATALOG_VERSION, &path)?;
            let opt = |a: &StringArray, i| (!a.is_null(i)).then(|| a.value(i).to_owned());
            for i in 0..batch.num_rows() {
                out.push(StoredEvent {
                    unit: units.value(i).to_owned(),
                    time_ms: times.value(i),
                    kind: kinds.value(i).to_owned(),
                    layer: opt(layers, i),
                    fence: opt(fences, i),
                    catalog_version: versions.value(i),
                    detail: details.value(i).to_owned(),
                });
            }
        }
    }
    Ok(())
}

/// The batches of a store's Parquet file with only `columns` read (those it has), as they
/// are decoded: readers that stop between batches (the HTTP API's) read no further.
///
/// # Errors
/// The file is not Parquet.
pub fn projected_reader(
    file: File,
    columns: &[&str],
) -> Result<ParquetRecordBatchReader, parquet::errors::ParquetError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    let schema = builder.parquet_schema();
    let indices: Vec<usize> = columns
        .iter()
        .filter_map(|c| schema.columns().iter().position(|d| d.name() == *c))
        .collect();
    let mask = ProjectionMask::leaves(schema, indices);
    builder.with_projection(mask).build()
}

/// Reads the named columns of one file.
pub(crate) fn read_columns(path: &Path, columns: &[&str]) -> Result<Vec<RecordBatch>, StoreError> {
    let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
    let reader = projected_reader(file, columns)?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

/// The dedupe keys `(unit, fix_time)` of every ping file in a partition, with the position
/// stored under each (`lat`, `lon`).
pub(crate) fn ping_keys(
    dir: &Path,
    mut visit: impl FnMut(&str, i64, f64, f64),
) -> Result<(), StoreError> {
    for (path, _) in data_files(dir)? {
        for batch in read_columns(&path, &[UNIT, FIX_TIME, LAT, LON])? {
            let units = column::<StringArray>(&batch, UNIT, &path)?;
            let times = column::<TimestampMillisecondArray>(&batch, FIX_TIME, &path)?;
            let lats = column::<Float64Array>(&batch, LAT, &path)?;
            let lons = column::<Float64Array>(&batch, LON, &path)?;
            for i in 0..batch.num_rows() {
                visit(units.value(i), times.value(i), lats.value(i), lons.value(i));
            }
        }
    }
    Ok(())
}

/// The dedupe keys `(topic, payload)` of every reject file in a partition.
pub(crate) fn reject_keys(
    dir: &Path,
    mut visit: impl FnMut(&str, &[u8]),
) -> Result<(), StoreError> {
    for (path, _) in data_files(dir)? {
        for batch in read_columns(&path, &[TOPIC, PAYLOAD])? {
            let topics = column::<StringArray>(&batch, TOPIC, &path)?;
            let payloads = column::<BinaryArray>(&batch, PAYLOAD, &path)?;
            for i in 0..batch.num_rows() {
                visit(topics.value(i), payloads.value(i));
            }
        }
    }
    Ok(())
}

fn column<'a, T: Array + 'static>(
    batch: &'a RecordBatch,
    name: &str,
    path: &Path,
) -> Result<&'a T, StoreError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| StoreError::Corrupt {
            path: path.to_owned(),
            detail: format!("column {name} missing or of the wrong type"),
        })
}

/// Rows per row group of a merged file. Its rows are sorted by unit (see [`compact_partition`]),
/// so a reader that wants a range of units skips the row groups whose `unit` statistics lie
/// outside it; a day of 8,000 units has some 100 of them.
pub(crate) const COMPACT_ROW_GROUP_ROWS: usize = 131_072;

/// Merges every data file `node` wrote in a partition into one `compact-<first>-<last>-<node>`
/// file, then deletes the inputs. A crash between the two leaves covered files that [`remove_covered`] deletes.
/// The merged rows are sorted as each part is (pings and events by unit then time, rejects by
/// arrival; ties keep the order of the files' segments), in row groups of
/// [`COMPACT_ROW_GROUP_ROWS`]. Returns the number of files merged (0 when there was nothing
/// to do).
pub(crate) fn compact_partition(
    dir: &Path,
    node: &str,
    min_files: usize,
) -> Result<usize, StoreError> {
    let files = node_files(dir, node)?;
    if files.len() < min_files.max(2) {
        return Ok(0);
    }
    let first = files.iter().map(|(_, r)| r.0).min().unwrap_or(0);
    let last = files.iter().map(|(_, r)| r.1).max().unwrap_or(0);
    let mut batches = Vec::new();
    for (path, _) in &files {
        let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)?.build()?;
        for b in reader {
            batches.push(b?);
        }
    }
    let Some(schema) = batches.first().map(RecordBatch::schema) else {
        return Ok(0);
    };
    let order = merged_order(dir, &batches, &schema)?;
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(COMPACT_ROW_GROUP_ROWS))
        .build();
    write_batches(dir, &file_name(node, first, last), &schema, props, |w| {
        for chunk in order.chunks(COMPACT_ROW_GROUP_ROWS) {
            w.write(&interleave_record_batch(&refs, chunk)?)?;
        }
        Ok(())
    })?;
    remove_covered(dir, node)?;
    Ok(files.len())
}

/// The rows of `batches` as (batch, row) in the order of a merged file: by `unit` then the
/// time column for the tables that have a unit, by `recv_time` for the others. The sort is
/// stable and the parts are each sorted already, so it merges runs.
fn merged_order(
    dir: &Path,
    batches: &[RecordBatch],
    schema: &SchemaRef,
) -> Result<Vec<(usize, usize)>, StoreError> {
    let has = |c: &str| schema.column_with_name(c).is_some();
    let time = [FIX_TIME, TIME, RECV_TIME]
        .into_iter()
        .find(|c| has(c))
        .unwrap_or(RECV_TIME);
    let mut keys: Vec<(&str, i64, usize, usize)> = Vec::new();
    for (b, batch) in batches.iter().enumerate() {
        let times = column::<TimestampMillisecondArray>(batch, time, dir)?;
        let units = if has(UNIT) {
            Some(column::<StringArray>(batch, UNIT, dir)?)
        } else {
            None
        };
        for i in 0..batch.num_rows() {
            keys.push((units.map_or("", |u| u.value(i)), times.value(i), b, i));
        }
    }
    keys.sort_by(|x, y| (x.0, x.1).cmp(&(y.0, y.1)));
    Ok(keys.into_iter().map(|(_, _, b, i)| (b, i)).collect())
}

/// Deletes data files of `node` whose segment range lies inside another of its files' range,
/// and leftover temporary files.
pub(crate) fn remove_covered(dir: &Path, node: &str) -> Result<(), StoreError> {
    let files = node_files(dir, node)?;
    for (path, (a, b)) in &files {
        let covered = files
            .iter()
            .any(|(p, (c, d))| p != path && c <= a && b <= d && (c, d) != (a, b));
        if covered {
            fs::remove_file(path).map_err(|e| StoreError::io(path, e))?;
        }
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let ours = name
                .to_string_lossy()
                .strip_prefix('.')
                .and_then(|n| n.strip_suffix(".tmp"))
                .and_then(file_range)
                .is_some_and(|(n, _)| n == node);
            if ours {
                let path = entry.path();
                fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
            }
        }
    }
    Ok(())
}

/// Partition day numbers present for a table.
pub(crate) fn partitions(root: &Path, table: &str) -> Result<Vec<i64>, StoreError> {
    let dir = root.join(table);
    let mut days = Vec::new();
    if let Ok(entries) = fs::read_dir(&dir) {
        for entry in entries.flatten() {
            if let Some(d) = parse_partition(&entry.file_name().to_string_lossy()) {
                days.push(d);
            }
        }
    }
    days.sort_unstable();
    Ok(days)
}
