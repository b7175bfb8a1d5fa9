//! Writing a job's table: Parquet, CSV or JSON (an array of row objects), by file extension.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// The table every job returns, for callers that do not depend on polars themselves.
pub use polars::prelude::DataFrame;
use polars::prelude::*;

use crate::AnalyticsError;

fn io(path: &Path) -> impl Fn(std::io::Error) -> AnalyticsError + '_ {
    move |source| AnalyticsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The output formats, by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.parquet`.
    Parquet,
    /// `.csv`.
    Csv,
    /// `.json`: an array of row objects, keys in column order.
    Json,
}

/// The format `path`'s extension names.
///
/// # Errors
/// [`AnalyticsError::Invalid`] for any other extension.
pub fn format_of(path: &Path) -> Result<Format, AnalyticsError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("parquet") => Ok(Format::Parquet),
        Some("csv") => Ok(Format::Csv),
        Some("json") => Ok(Format::Json),
        _ => Err(AnalyticsError::Invalid(format!(
            "{}: the output must end in .parquet, .csv or .json",
            path.display()
        ))),
    }
}

/// Writes `df` to `path` in the format of [`format_of`].
///
/// # Errors
/// [`AnalyticsError::Invalid`] for another extension, [`AnalyticsError::Io`] or a polars
/// error when writing fails.
pub fn write_table(df: &mut DataFrame, path: &Path) -> Result<(), AnalyticsError> {
    let format = format_of(path)?;
    let file = || File::create(path).map_err(io(path));
    match format {
        Format::Parquet => {
            ParquetWriter::new(file()?).finish(df)?;
        }
        Format::Csv => {
            CsvWriter::new(BufWriter::new(file()?)).finish(df)?;
        }
        Format::Json => {
            let mut w = BufWriter::new(file()?);
            write_json(df, &mut w).map_err(io(path))?;
            w.flush().map_err(io(path))?;
        }
    }
    Ok(())
}

fn json_value(v: AnyValue<'_>) -> serde_json::Value {
    use serde_json::Value;
    match v {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(b),
        AnyValue::String(s) => Value::String(s.to_owned()),
        AnyValue::StringOwned(s) => Value::String(s.to_string()),
        AnyValue::UInt8(x) => x.into(),
        AnyValue::UInt16(x) => x.into(),
        AnyValue::UInt32(x) => x.into(),
        AnyValue::UInt64(x) => x.into(),
        AnyValue::Int8(x) => x.into(),
        AnyValue::Int16(x) => x.into(),
        AnyValue::Int32(x) => x.into(),
        AnyValue::Int64(x) => x.into(),
        AnyValue::Float32(x) => {
            serde_json::Number::from_f64(f64::from(x)).map_or(Value::Null, Value::Number)
        }
        AnyValue::Float64(x) => serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number),
        other => Value::String(other.to_string().trim_matches('"').to_owned()),
    }
}

/// Row `i` of `df` as a JSON object.
fn json_row(
    names: &[String],
    columns: &[Column],
    i: usize,
) -> serde_json::Map<String, serde_json::Value> {
    names
        .iter()
        .zip(columns)
        .map(|(name, c)| {
            let v = c.get(i).map_or(serde_json::Value::Null, json_value);
            (name.clone(), v)
        })
        .collect()
}

fn column_names(df: &DataFrame) -> Vec<String> {
    df.get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect()
}

/// The rows of `df` as JSON objects (keys sorted, as `serde_json::Map` keeps them), values as
/// [`write_table`] writes them to `.json`.
#[must_use]
pub fn json_rows(df: &DataFrame) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let names = column_names(df);
    (0..df.height())
        .map(|i| json_row(&names, df.columns(), i))
        .collect()
}

/// The rows of `df` where `keep` is true.
///
/// # Errors
/// A polars error when `keep` is not one flag per row.
pub fn filter_rows(df: &DataFrame, keep: &[bool]) -> Result<DataFrame, AnalyticsError> {
    Ok(df.filter(&BooleanChunked::from_slice(PlSmallStr::from("keep"), keep))?)
}

/// `df` as the bytes of a Parquet file (zstd).
///
/// # Errors
/// A polars error when encoding fails.
pub fn parquet_bytes(df: &mut DataFrame) -> Result<Vec<u8>, AnalyticsError> {
    let mut out = Vec::new();
    ParquetWriter::new(&mut out)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(df)?;
    Ok(out)
}

/// `df` as a JSON array of objects, one per row, keys in column order (a
/// `serde_json::Map` would sort them).
fn write_json(df: &DataFrame, w: &mut impl Write) -> std::io::Result<()> {
    let names = column_names(df);
    let columns = df.columns();
    w.write_all(b"[")?;
    for i in 0..df.height() {
        if i > 0 {
            w.write_all(b",")?;
        }
        w.write_all(b"\n{")?;
        for (k, (name, c)) in names.iter().zip(columns).enumerate() {
            if k > 0 {
                w.write_all(b",")?;
            }
            let v = c.get(i).map_or(serde_json::Value::Null, json_value);
            serde_json::to_writer(&mut *w, name)?;
            w.write_all(b":")?;
            serde_json::to_writer(&mut *w, &v)?;
        }
        w.write_all(b"}")?;
    }
    w.write_all(b"\n]\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn frame() -> DataFrame {
        DataFrame::new_infer_height(vec![
            Column::new("cell".into(), vec![Some(617_700_169_958_293_503u64), None]),
            Column::new("window".into(), vec![Some("night"), None]),
            Column::new("minutes".into(), vec![1.5, 2.0]),
        ])
        .unwrap()
    }

    #[test]
    fn writes_each_format_by_extension() {
        let dir = tempfile::tempdir().unwrap();
        for ext in ["parquet", "csv", "json"] {
            let path = dir.path().join(format!("out.{ext}"));
            write_table(&mut frame(), &path).unwrap();
            assert!(path.metadata().unwrap().len() > 0);
        }
        let text = std::fs::read_to_string(dir.path().join("out.json")).unwrap();
        assert!(
            text.contains(r#"{"cell":617700169958293503,"window":"night","minutes":1.5}"#),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"cell": 617_700_169_958_293_503u64, "window": "night", "minutes": 1.5},
                {"cell": null, "window": null, "minutes": 2.0}
            ])
        );
        let csv = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
        assert_eq!(
            csv,
            "cell,window,minutes\n617700169958293503,night,1.5\n,,2.0\n"
        );
        let back = LazyFrame::scan_parquet(
            PlRefPath::new(dir.path().join("out.parquet").to_string_lossy().as_ref()),
            ScanArgsParquet::default(),
        )
        .unwrap()
        .collect()
        .unwrap();
        assert!(back.equals_missing(&frame()));
        let err = write_table(&mut frame(), &dir.path().join("out.xlsx")).unwrap_err();
        assert!(err.to_string().contains(".parquet, .csv or .json"), "{err}");
    }
}
