//! Tables out of the API: the `format` parameter and its tabular answers.
//!
//! Routes whose answer is a table (the analytics jobs' rows, a unit's track, who was near a
//! place, the events) offer `format=csv`, `format=parquet` and `format=arrow` (an Arrow IPC
//! stream) besides their own JSON or GeoJSON. A handler builds one Arrow [`RecordBatch`] of
//! its rows, typed straight from its fixes or inferred from its JSON rows by [`from_rows`],
//! and [`respond`] writes it. The columns and values are those of the JSON answer: times stay
//! milliseconds since the epoch, and a value that is neither a number, a boolean nor a string
//! (a list, an object) is its JSON text.

use std::sync::Arc;

use anyhow::Context;
use arrow::array::{ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::{Map, Value};

use crate::http::error::{ApiError, ApiResult};
use crate::http::params::Params;

/// Content type of Parquet answers.
pub const PARQUET: &str = "application/vnd.apache.parquet";
/// Content type of Arrow IPC stream answers.
pub const ARROW: &str = "application/vnd.apache.arrow.stream";
/// Content types of the tabular answers, for the OpenAPI document.
pub const CONTENT: [&str; 3] = ["text/csv", PARQUET, ARROW];

/// A tabular answer's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// CSV with a header line.
    Csv,
    /// A Parquet file (zstd).
    Parquet,
    /// An Arrow IPC stream.
    Arrow,
}

/// What `format` asks for: one of the route's own JSON forms, or a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// GeoJSON.
    GeoJson,
    /// Plain JSON.
    Json,
    /// A table.
    Table(Table),
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::GeoJson => "geojson",
            Format::Json => "json",
            Format::Table(Table::Csv) => "csv",
            Format::Table(Table::Parquet) => "parquet",
            Format::Table(Table::Arrow) => "arrow",
        }
    }

    /// The `format` parameter: one of the words its [`ParamDoc`](crate::http::params::ParamDoc)
    /// lists (already checked by [`Params::parse`]), the first being the default.
    ///
    /// # Errors
    /// [`ApiError::Internal`] when the route documents a format this module cannot write.
    pub fn param(p: &Params) -> Result<Format, ApiError> {
        let offered = p.choices("format");
        let asked = p.text("format").or(offered.first().copied());
        [Format::GeoJson, Format::Json]
            .into_iter()
            .chain([Table::Csv, Table::Parquet, Table::Arrow].map(Format::Table))
            .find(|f| Some(f.name()) == asked)
            .ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!("no writer for the format {asked:?}"))
            })
    }
}

/// The `format` words of a route whose own answer is `own`: it, then the three tables.
pub const fn formats(own: &'static str) -> [&'static str; 4] {
    [own, "csv", "parquet", "arrow"]
}

/// The type a column of JSON values gets: the narrowest that holds every non-null value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Only nulls so far.
    Empty,
    Bool,
    Int,
    Float,
    /// Strings, or a mix of kinds: every value as text.
    Text,
}

impl Kind {
    fn widen(self, v: &Value) -> Kind {
        let this = match v {
            Value::Null => return self,
            Value::Bool(_) => Kind::Bool,
            Value::Number(n) if n.is_i64() => Kind::Int,
            Value::Number(_) => Kind::Float,
            _ => Kind::Text,
        };
        match (self, this) {
            (Kind::Empty, k) => k,
            (a, b) if a == b => a,
            (Kind::Int, Kind::Float) | (Kind::Float, Kind::Int) => Kind::Float,
            _ => Kind::Text,
        }
    }
}

/// One column of `rows`, every row's value for `name` (missing is null) in the column's kind.
fn column(rows: &[&Map<String, Value>], name: &str) -> (DataType, ArrayRef) {
    let kind = rows
        .iter()
        .filter_map(|r| r.get(name))
        .fold(Kind::Empty, Kind::widen);
    let values = rows.iter().map(|r| r.get(name).filter(|v| !v.is_null()));
    match kind {
        Kind::Bool => {
            let mut b = BooleanBuilder::with_capacity(rows.len());
            values.for_each(|v| b.append_option(v.and_then(Value::as_bool)));
            (DataType::Boolean, Arc::new(b.finish()))
        }
        Kind::Int => {
            let mut b = Int64Builder::with_capacity(rows.len());
            values.for_each(|v| b.append_option(v.and_then(Value::as_i64)));
            (DataType::Int64, Arc::new(b.finish()))
        }
        Kind::Float => {
            let mut b = Float64Builder::with_capacity(rows.len());
            values.for_each(|v| b.append_option(v.and_then(Value::as_f64)));
            (DataType::Float64, Arc::new(b.finish()))
        }
        Kind::Empty | Kind::Text => {
            let mut b = StringBuilder::new();
            for v in values {
                match v {
                    None => b.append_null(),
                    Some(Value::String(s)) => b.append_value(s),
                    Some(other) => b.append_value(other.to_string()),
                }
            }
            (DataType::Utf8, Arc::new(b.finish()))
        }
    }
}

/// A table of JSON objects: one column per key found in any row (in the order first seen),
/// typed by [`Kind`], null where a row lacks the key.
///
/// # Errors
/// Only if Arrow refuses the columns, which would be a bug here.
pub fn from_rows(rows: &[&Map<String, Value>]) -> anyhow::Result<RecordBatch> {
    let mut names: Vec<&str> = Vec::new();
    for r in rows {
        for k in r.keys() {
            if !names.contains(&k.as_str()) {
                names.push(k);
            }
        }
    }
    let (fields, columns): (Vec<Field>, Vec<ArrayRef>) = names
        .iter()
        .map(|name| {
            let (dtype, array) = column(rows, name);
            (Field::new(*name, dtype, true), array)
        })
        .unzip();
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows.len())),
    )
    .context("building the answer's table")
}

/// CSV with a header line; nulls are empty, text with a comma, quote or line break is quoted.
fn csv(batch: &RecordBatch) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut w = arrow::csv::WriterBuilder::new()
        .with_header(true)
        .build(&mut out);
    w.write(batch).context("formatting the answer as CSV")?;
    drop(w);
    Ok(out)
}

/// An analytics job's table as one Arrow batch, with the job's own column types. Polars and
/// this crate's Arrow are separate implementations, so the table crosses as a Parquet file.
///
/// # Errors
/// If either side refuses the file, which would be a bug.
pub fn from_frame(frame: &mut analytics::output::DataFrame) -> anyhow::Result<RecordBatch> {
    let bytes = axum::body::Bytes::from(
        analytics::output::parquet_bytes(frame).context("encoding the answer's table")?,
    );
    // The Parquet logical types, not polars' own Arrow types (string views, large lists),
    // which not every Arrow reader takes.
    let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
    let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(bytes, options)
        .context("reading the answer's table")?;
    let schema = reader.schema().clone();
    let batches = reader
        .build()
        .context("reading the answer's table")?
        .collect::<Result<Vec<_>, _>>()
        .context("reading the answer's table")?;
    arrow::compute::concat_batches(&schema, &batches).context("joining the answer's table")
}

fn parquet(batch: &RecordBatch) -> anyhow::Result<Vec<u8>> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, batch.schema(), Some(props))?;
    w.write(batch)?;
    w.close()?;
    Ok(out)
}

fn arrow_stream(batch: &RecordBatch) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, &batch.schema())?;
    w.write(batch)?;
    w.finish()?;
    drop(w);
    Ok(out)
}

/// `batch` written as `table`, with its content type.
///
/// # Errors
/// [`ApiError::Internal`] when encoding fails.
pub fn respond(batch: &RecordBatch, table: Table) -> ApiResult<Response> {
    let (content, body) = match table {
        Table::Csv => ("text/csv", csv(batch)?),
        Table::Parquet => (PARQUET, parquet(batch).context("writing Parquet")?),
        Table::Arrow => (ARROW, arrow_stream(batch).context("writing Arrow IPC")?),
    };
    Ok(([(header::CONTENT_TYPE, content)], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Float64Array, Int64Array, StringArray};
    use serde_json::json;

    fn rows(v: &Value) -> Vec<&Map<String, Value>> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_object().unwrap())
            .collect()
    }

    #[test]
    fn columns_take_the_narrowest_kind_that_holds_every_value() {
        let v = json!([
            {"unit": "C01", "n": 1, "x": 1, "ok": true, "mixed": 1, "list": [1, 2]},
            {"unit": "C02", "n": null, "x": 2.5, "ok": false, "mixed": "a,b", "late": "only here"},
        ]);
        let b = from_rows(&rows(&v)).unwrap();
        let types: Vec<(&str, &DataType)> = b
            .schema_ref()
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type()))
            .collect();
        assert_eq!(
            types,
            vec![
                ("list", &DataType::Utf8),
                ("mixed", &DataType::Utf8),
                ("n", &DataType::Int64),
                ("ok", &DataType::Boolean),
                ("unit", &DataType::Utf8),
                ("x", &DataType::Float64),
                ("late", &DataType::Utf8),
            ]
        );
        let n = b.column_by_name("n").unwrap();
        let n = n.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!((n.value(0), n.is_null(1)), (1, true));
        let x = b.column_by_name("x").unwrap();
        let x = x.as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!((x.value(0), x.value(1)), (1.0, 2.5));
        let list = b.column_by_name("list").unwrap();
        let list = list.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(list.value(0), "[1,2]");
        assert!(list.is_null(1));
        let text = String::from_utf8(csv(&b).unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "list,mixed,n,ok,unit,x,late");
        assert_eq!(lines[1], "\"[1,2]\",1,1,true,C01,1.0,");
        assert_eq!(lines[2], ",\"a,b\",,false,C02,2.5,only here");
    }

    #[test]
    fn parquet_and_arrow_read_back_and_an_empty_answer_is_a_table_too() {
        let v = json!([{"cell": 617_700_169_958_293_503_i64, "gap": 0.25}]);
        let b = from_rows(&rows(&v)).unwrap();
        let bytes = axum::body::Bytes::from(parquet(&b).unwrap());
        let back: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, vec![b.clone()]);
        let stream = arrow_stream(&b).unwrap();
        let back: Vec<RecordBatch> =
            arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(stream), None)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        assert_eq!(back, vec![b]);
        let empty = from_rows(&[]).unwrap();
        assert_eq!((empty.num_rows(), empty.num_columns()), (0, 0));
        assert!(!parquet(&empty).unwrap().is_empty());
        assert!(!arrow_stream(&empty).unwrap().is_empty());
        // A header without columns is one empty field, quoted so that it is not a blank line.
        assert_eq!(csv(&empty).unwrap(), b"\"\"\n");
    }
}
