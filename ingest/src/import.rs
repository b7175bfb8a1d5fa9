//! Track files for backfill, parsed into [`TrackPoint`]s: GPX 1.1, CSV, and the plain-text
//! format of the San Francisco cabspotting traces.
//!
//! Parsing only, from `&str`: reading files and storing the result is the caller's job.
//! Points are not range-checked here; [`TrackPoint::into_raw`] turns them into [`RawPing`]s
//! so that imports go through the same `validate` path as live pings.
//! Every error names the 1-based line it was found on.

use std::borrow::Cow;

use chrono::DateTime;
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::decode::RawPing;
use crate::ping::EpochMillis;

/// Largest `|seconds|` accepted for a unix time, so that milliseconds fit an [`EpochMillis`].
const MAX_ABS_SECONDS: f64 = 9.0e15;

/// One fix read from a track file.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackPoint {
    /// Unit id, when the file names one per point (CSV `unit` column).
    pub unit: Option<String>,
    /// Fix time, ms since the epoch.
    pub time_ms: EpochMillis,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// Accuracy radius in metres.
    pub acc: Option<f64>,
    /// Speed in km/h.
    pub speed_kmh: Option<f64>,
    /// Course over ground in degrees.
    pub heading: Option<f64>,
    /// Altitude in metres (GPX `<ele>`, CSV `alt`).
    pub alt: Option<f64>,
}

impl TrackPoint {
    /// The point as a wire ping of `station`. The point's own unit wins; `unit` is the
    /// fallback for files without a unit column. The time is floored to whole seconds, the
    /// resolution of [`RawPing::tst`].
    pub fn into_raw(self, station: &str, unit: &str) -> RawPing {
        RawPing {
            station: station.to_owned(),
            unit: self.unit.unwrap_or_else(|| unit.to_owned()),
            lat: self.lat,
            lon: self.lon,
            tst: self.time_ms.div_euclid(1000),
            acc: self.acc,
            vel: self.speed_kmh,
            cog: self.heading,
            alt: self.alt,
            batt: None,
            tid: None,
        }
    }
}

/// A track file that could not be parsed, with the line of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct ImportError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub problem: ImportProblem,
}

/// What is wrong in a track file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportProblem {
    /// The XML is not well formed; holds the parser's message.
    #[error("XML error: {0}")]
    Xml(String),
    /// A `trkpt` lacks its `lat` or `lon` attribute.
    #[error("trkpt has no `{0}` attribute")]
    MissingAttribute(&'static str),
    /// A `trkpt` has no `<time>`.
    #[error("trkpt has no <time>")]
    MissingTime,
    /// The CSV has no header line.
    #[error("no header line")]
    NoHeader,
    /// The CSV header lacks a required column.
    #[error("header has no `{0}` column")]
    MissingColumn(&'static str),
    /// A row has a different number of fields than expected.
    #[error("expected {expected} fields, found {found}")]
    FieldCount {
        /// Fields in the header (or the format).
        expected: usize,
        /// Fields in this row.
        found: usize,
    },
    /// A value is not a number.
    #[error("`{field}` is not a number: {value:?}")]
    BadNumber {
        /// Field or attribute name.
        field: &'static str,
        /// The text found.
        value: String,
    },
    /// A value is not a usable time.
    #[error("`{field}` is not a valid time: {value:?}")]
    BadTime {
        /// Field or element name.
        field: &'static str,
        /// The text found.
        value: String,
    },
}

fn err(line: usize, problem: ImportProblem) -> ImportError {
    ImportError { line, problem }
}

fn number(field: &'static str, value: &str) -> Result<f64, ImportProblem> {
    value.trim().parse().map_err(|_| ImportProblem::BadNumber {
        field,
        value: value.to_owned(),
    })
}

fn bad_time(field: &'static str, value: &str) -> ImportProblem {
    ImportProblem::BadTime {
        field,
        value: value.to_owned(),
    }
}

fn rfc3339_ms(field: &'static str, value: &str) -> Result<EpochMillis, ImportProblem> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|_| bad_time(field, value))
}

/// Unix seconds (integer or decimal) to milliseconds.
fn unix_seconds_ms(field: &'static str, value: &str) -> Result<EpochMillis, ImportProblem> {
    let bad = || bad_time(field, value);
    let s: f64 = value.trim().parse().map_err(|_| bad())?;
    if !s.is_finite() || s.abs() > MAX_ABS_SECONDS {
        return Err(bad());
    }
    // Finite and within ±9e18 ms, so the cast is in range.
    Ok((s * 1000.0).round() as EpochMillis)
}

/// Parses the track points (`<trkpt lat lon>` with `<time>`, optional `<ele>`) of a GPX 1.1
/// document. Routes, waypoints and extensions are ignored; element names match with or
/// without a namespace prefix.
///
/// # Errors
/// [`ImportError`] for malformed XML, a `trkpt` without `lat`, `lon` or `<time>`, a
/// non-numeric coordinate or elevation, or a time that is not RFC 3339.
///
/// # Example
/// ```
/// let gpx = r#"<gpx version="1.1"><trk><trkseg>
///   <trkpt lat="40.1" lon="-88.9"><ele>220</ele><time>2026-11-02T08:00:00Z</time></trkpt>
/// </trkseg></trk></gpx>"#;
/// let points = ingest::import::parse_gpx(gpx).unwrap();
/// assert_eq!((points[0].lat, points[0].alt, points[0].time_ms), (40.1, Some(220.0), 1_793_606_400_000));
/// ```
pub fn parse_gpx(text: &str) -> Result<Vec<TrackPoint>, ImportError> {
    let mut reader = Reader::from_str(text);
    let mut points = Vec::new();
    let mut open: Option<OpenPoint> = None;
    loop {
        let event = reader.read_event().map_err(|e| {
            err(
                line_at(text, reader.error_position()),
                ImportProblem::Xml(e.to_string()),
            )
        })?;
        let line = || line_at(text, reader.buffer_position());
        match (event, open.as_mut()) {
            (Event::Start(e), None) if e.local_name().as_ref() == b"trkpt" => {
                let start = reader.buffer_position();
                open = Some(OpenPoint::start(&e, start).map_err(|p| err(line(), p))?);
            }
            (Event::Empty(e), None) if e.local_name().as_ref() == b"trkpt" => {
                return Err(err(line(), ImportProblem::MissingTime));
            }
            (Event::Start(e), Some(p)) => {
                p.depth += 1;
                if p.depth == 1 {
                    p.child = match e.local_name().as_ref() {
                        b"time" => Some(Child::Time),
                        b"ele" => Some(Child::Ele),
                        _ => None,
                    };
                    p.text.clear();
                }
            }
            (Event::Text(t), Some(p)) if p.capturing() => {
                p.text
                    .push_str(&t.decode().map_err(|e| xml_error(line(), e))?);
            }
            (Event::CData(t), Some(p)) if p.capturing() => {
                p.text
                    .push_str(&t.decode().map_err(|e| xml_error(line(), e))?);
            }
            (Event::GeneralRef(r), Some(p)) if p.capturing() => {
                let resolved = match r.resolve_char_ref().map_err(|e| xml_error(line(), e))? {
                    Some(c) => Cow::Owned(c.to_string()),
                    None => {
                        let name = r.decode().map_err(|e| xml_error(line(), e))?;
                        let entity = quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| {
                                err(
                                    line(),
                                    ImportProblem::Xml(format!("unknown entity &{name};")),
                                )
                            })?;
                        Cow::Borrowed(entity)
                    }
                };
                p.text.push_str(&resolved);
            }
            (Event::End(_), Some(p)) => {
                if p.depth == 0 {
                    let time_ms = p
                        .time_ms
                        .ok_or_else(|| err(line_at(text, p.start), ImportProblem::MissingTime))?;
                    points.push(TrackPoint {
                        unit: None,
                        time_ms,
                        lat: p.lat,
                        lon: p.lon,
                        acc: None,
                        speed_kmh: None,
                        heading: None,
                        alt: p.ele,
                    });
                    open = None;
                } else {
                    if p.depth == 1 {
                        p.finish_child().map_err(|problem| err(line(), problem))?;
                    }
                    p.depth -= 1;
                }
            }
            (Event::Eof, None) => return Ok(points),
            (Event::Eof, Some(p)) => {
                let problem = ImportProblem::Xml("the file ends inside a trkpt".into());
                return Err(err(line_at(text, p.start), problem));
            }
            _ => {}
        }
    }
}

fn xml_error(line: usize, e: impl std::fmt::Display) -> ImportError {
    err(line, ImportProblem::Xml(e.to_string()))
}

/// 1-based line of byte offset `pos` in `text`.
fn line_at(text: &str, pos: u64) -> usize {
    let end = usize::try_from(pos).map_or(text.len(), |p| p.min(text.len()));
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The direct children of `trkpt` that are read.
#[derive(Debug, Clone, Copy)]
enum Child {
    Time,
    Ele,
}

/// A `trkpt` whose end tag has not been seen yet.
struct OpenPoint {
    /// Byte offset of the start tag, for error lines.
    start: u64,
    lat: f64,
    lon: f64,
    time_ms: Option<EpochMillis>,
    ele: Option<f64>,
    /// Element depth below `trkpt`; 0 while directly inside it.
    depth: usize,
    /// The direct child being read, if it is one we keep.
    child: Option<Child>,
    text: String,
}

impl OpenPoint {
    /// Reads `lat` and `lon` of a `trkpt` start tag that ends at byte `start`.
    fn start(e: &BytesStart<'_>, start: u64) -> Result<Self, ImportProblem> {
        let attr = |name: &'static str| -> Result<f64, ImportProblem> {
            let value = e
                .try_get_attribute(name)
                .map_err(|x| ImportProblem::Xml(x.to_string()))?
                .ok_or(ImportProblem::MissingAttribute(name))?
                .unescape_value()
                .map_err(|x| ImportProblem::Xml(x.to_string()))?;
            number(name, &value)
        };
        Ok(OpenPoint {
            start,
            lat: attr("lat")?,
            lon: attr("lon")?,
            time_ms: None,
            ele: None,
            depth: 0,
            child: None,
            text: String::new(),
        })
    }

    fn capturing(&self) -> bool {
        self.depth == 1 && self.child.is_some()
    }

    fn finish_child(&mut self) -> Result<(), ImportProblem> {
        match self.child.take() {
            Some(Child::Time) => self.time_ms = Some(rfc3339_ms("time", &self.text)?),
            Some(Child::Ele) => self.ele = Some(number("ele", &self.text)?),
            None => {}
        }
        Ok(())
    }
}

/// Parses a CSV track: a header line naming the columns, then one point per line.
///
/// Required columns: `lat`, `lon`, and `time` (RFC 3339) or `tst` (unix seconds; `time` wins
/// when both are present). Optional: `unit`, `acc`, `speed_kmh`, `heading`, `alt`; other
/// columns are ignored. Columns may come in any order; header names are matched
/// case-insensitively. Fields are split on plain commas (no quoting), trimmed, and a
/// trailing `\r` is dropped. Blank lines are skipped; an empty optional field is `None`.
///
/// # Errors
/// [`ImportError`] for a missing header or column, a row with the wrong number of fields,
/// a non-numeric value, or a bad time.
///
/// # Example
/// ```
/// let csv = "tst,lat,lon,unit\r\n1793606400,40.1,-88.9,B12\r\n";
/// let points = ingest::import::parse_csv(csv).unwrap();
/// assert_eq!(points[0].unit.as_deref(), Some("B12"));
/// assert_eq!(points[0].time_ms, 1_793_606_400_000);
/// ```
pub fn parse_csv(text: &str) -> Result<Vec<TrackPoint>, ImportError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l));
    let (_, header) = lines
        .next()
        .filter(|(_, h)| !h.trim().is_empty())
        .ok_or(err(1, ImportProblem::NoHeader))?;
    let names: Vec<String> = header
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let col = |name: &str| names.iter().position(|n| n == name);
    let required = |name: &'static str| col(name).ok_or(err(1, ImportProblem::MissingColumn(name)));
    let (lat, lon) = (required("lat")?, required("lon")?);
    let time = match (col("time"), col("tst")) {
        (Some(i), _) => TimeColumn::Rfc3339(i),
        (None, Some(i)) => TimeColumn::UnixSeconds(i),
        (None, None) => return Err(err(1, ImportProblem::MissingColumn("time or tst"))),
    };
    let (unit, acc, speed, heading, alt) = (
        col("unit"),
        col("acc"),
        col("speed_kmh"),
        col("heading"),
        col("alt"),
    );

    let mut points = Vec::new();
    for (line, row) in lines {
        if row.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = row.split(',').map(str::trim).collect();
        if fields.len() != names.len() {
            return Err(err(
                line,
                ImportProblem::FieldCount {
                    expected: names.len(),
                    found: fields.len(),
                },
            ));
        }
        let optional = |i: Option<usize>, name: &'static str| match i.map(|i| fields[i]) {
            None | Some("") => Ok(None),
            Some(v) => number(name, v).map(Some),
        };
        let point = || -> Result<TrackPoint, ImportProblem> {
            Ok(TrackPoint {
                unit: unit
                    .map(|i| fields[i])
                    .filter(|u| !u.is_empty())
                    .map(str::to_owned),
                time_ms: match time {
                    TimeColumn::Rfc3339(i) => rfc3339_ms("time", fields[i])?,
                    TimeColumn::UnixSeconds(i) => unix_seconds_ms("tst", fields[i])?,
                },
                lat: number("lat", fields[lat])?,
                lon: number("lon", fields[lon])?,
                acc: optional(acc, "acc")?,
                speed_kmh: optional(speed, "speed_kmh")?,
                heading: optional(heading, "heading")?,
                alt: optional(alt, "alt")?,
            })
        };
        points.push(point().map_err(|problem| err(line, problem))?);
    }
    Ok(points)
}

/// Which CSV column holds the time, and in which form.
#[derive(Debug, Clone, Copy)]
enum TimeColumn {
    Rfc3339(usize),
    UnixSeconds(usize),
}

/// Parses a San Francisco cabspotting trace: one fix per line, `lat lon occupied epoch`
/// separated by spaces, no header. The occupied flag is dropped; `unit` is `None` (the file
/// name is the cab id). Blank lines are skipped.
///
/// # Errors
/// [`ImportError`] for a line without exactly four fields, a non-numeric coordinate, or a
/// time that is not integer unix seconds.
///
/// # Example
/// ```
/// let points = ingest::import::parse_cabspotting("37.75153 -122.39447 0 1211033530\n").unwrap();
/// assert_eq!((points[0].lat, points[0].time_ms), (37.75153, 1_211_033_530_000));
/// ```
pub fn parse_cabspotting(text: &str) -> Result<Vec<TrackPoint>, ImportError> {
    let mut points = Vec::new();
    for (i, row) in text.lines().enumerate() {
        let line = i + 1;
        let fields: Vec<&str> = row.split_whitespace().collect();
        let [lat, lon, _occupied, epoch] = fields[..] else {
            if fields.is_empty() {
                continue;
            }
            return Err(err(
                line,
                ImportProblem::FieldCount {
                    expected: 4,
                    found: fields.len(),
                },
            ));
        };
        let point = || -> Result<TrackPoint, ImportProblem> {
            Ok(TrackPoint {
                unit: None,
                time_ms: epoch
                    .parse::<i64>()
                    .ok()
                    .and_then(|s| s.checked_mul(1000))
                    .ok_or_else(|| bad_time("epoch", epoch))?,
                lat: number("lat", lat)?,
                lon: number("lon", lon)?,
                acc: None,
                speed_kmh: None,
                heading: None,
                alt: None,
            })
        };
        points.push(point().map_err(|problem| err(line, problem))?);
    }
    Ok(points)
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;
