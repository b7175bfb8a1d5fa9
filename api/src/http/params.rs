//! Query parameters: each route declares its parameters once ([`ParamDoc`]), with their type
//! and limits; the same list checks requests and documents the route in OpenAPI, so the
//! schema's enums, minima and maxima are the ones enforced.
//!
//! [`Params::parse`] checks everything up front: unknown, repeated and missing parameters,
//! over-long values, and every value against its [`Kind`] (numbers within their range, words
//! from their list, times within [`EARLIEST`]..[`LATEST`]); every refusal is a 400 naming the
//! parameter. The getters then only hand out the checked values, and [`Params::range`] works
//! on times that are bounded, so no arithmetic on them can overflow.
//!
//! Times take one grammar on every route: integer milliseconds since the epoch, RFC 3339
//! (`2026-11-02T08:30:00Z`), or a date `YYYY-MM-DD` meaning local midnight in the
//! jurisdiction's time zone (as `patrol analyze` reads it).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;

use crate::http::error::ApiError;

/// The earliest time any parameter may name: 2000-01-01T00:00:00Z (no patrol data is older,
/// and a bound keeps day loops and differences small).
pub const EARLIEST: i64 = 946_684_800_000;
/// The latest time any parameter may name: 2100-01-01T00:00:00Z.
pub const LATEST: i64 = 4_102_444_800_000;
/// Longest value (and name) read, in bytes; documented as `maxLength`.
pub const MAX_VALUE: usize = 1024;

/// The type of a parameter and its limits, as documented and enforced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Free text.
    Text,
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// A comma-separated list of these words.
    ListOf(&'static [&'static str]),
    /// A finite decimal number in `min..=max`.
    Number {
        /// Smallest accepted.
        min: f64,
        /// Largest accepted.
        max: f64,
    },
    /// An integer in `min..=max`.
    Integer {
        /// Smallest accepted.
        min: i64,
        /// Largest accepted.
        max: i64,
    },
    /// A time between [`EARLIEST`] and [`LATEST`]: epoch ms, RFC 3339 or `YYYY-MM-DD`.
    Time,
}

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum In {
    /// In the query string.
    Query,
    /// In the path (`{name}`).
    Path,
}

/// One documented parameter of a route.
#[derive(Debug, Clone, Copy)]
pub struct ParamDoc {
    /// Its name.
    pub name: &'static str,
    /// Query or path.
    pub location: In,
    /// Must it be given?
    pub required: bool,
    /// Its type.
    pub kind: Kind,
    /// What it means.
    pub description: &'static str,
}

impl ParamDoc {
    /// An optional query parameter.
    pub const fn query(name: &'static str, kind: Kind, description: &'static str) -> ParamDoc {
        ParamDoc {
            name,
            location: In::Query,
            required: false,
            kind,
            description,
        }
    }

    /// A required query parameter.
    pub const fn required(name: &'static str, kind: Kind, description: &'static str) -> ParamDoc {
        ParamDoc {
            name,
            location: In::Query,
            required: true,
            kind,
            description,
        }
    }

    /// A path parameter.
    pub const fn path(name: &'static str, description: &'static str) -> ParamDoc {
        ParamDoc {
            name,
            location: In::Path,
            required: true,
            kind: Kind::Text,
            description,
        }
    }
}

/// A checked value.
#[derive(Debug, Clone, PartialEq)]
enum Checked {
    Text(String),
    Number(f64),
    Integer(i64),
    /// Milliseconds since the epoch, within [`EARLIEST`]..=[`LATEST`].
    Time(i64),
}

/// A request's query parameters, checked against a route's [`ParamDoc`]s.
#[derive(Debug)]
pub struct Params {
    values: HashMap<&'static str, Checked>,
    docs: &'static [ParamDoc],
}

/// At most this many characters of a caller's text go into an error message.
const ECHO: usize = 64;

/// `s` cut to [`ECHO`] characters for an error message.
fn echo(s: &str) -> String {
    match s.char_indices().nth(ECHO) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

impl Params {
    /// Parses `query` against `docs`: refuses parameters the route does not declare, repeated
    /// ones, missing (or empty) required ones and values longer than [`MAX_VALUE`], and
    /// checks every value against its [`Kind`]. Dates (`YYYY-MM-DD`) are local midnight in
    /// `zone`.
    ///
    /// # Errors
    /// [`ApiError::BadParam`] naming the first offending parameter.
    pub fn parse(
        query: Option<&str>,
        docs: &'static [ParamDoc],
        zone: Tz,
    ) -> Result<Params, ApiError> {
        let mut values = HashMap::new();
        for (k, v) in form_pairs(query.unwrap_or("")) {
            let Some(doc) = docs.iter().find(|d| d.location == In::Query && d.name == k) else {
                let known: Vec<&str> = docs
                    .iter()
                    .filter(|d| d.location == In::Query)
                    .map(|d| d.name)
                    .collect();
                return Err(ApiError::param(
                    &echo(&k),
                    format!(
                        "unknown parameter (this endpoint takes: {})",
                        known.join(", ")
                    ),
                ));
            };
            if values.contains_key(doc.name) {
                return Err(ApiError::param(doc.name, "given more than once"));
            }
            if v.len() > MAX_VALUE {
                return Err(ApiError::param(
                    doc.name,
                    format!("longer than {MAX_VALUE} bytes"),
                ));
            }
            // An empty value is no value (`?station=` is the same as no `station`).
            if !v.is_empty() {
                values.insert(doc.name, check(doc, &v, zone)?);
            }
        }
        for d in docs {
            if d.required && d.location == In::Query && !values.contains_key(d.name) {
                return Err(ApiError::param(d.name, "required"));
            }
        }
        Ok(Params { values, docs })
    }

    /// The text of `name`, if given (any kind but numbers and times).
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.values.get(name) {
            Some(Checked::Text(s)) => Some(s),
            _ => None,
        }
    }

    /// The words `name` may take, as documented (empty unless it is [`Kind::OneOf`]).
    pub fn choices(&self, name: &str) -> &'static [&'static str] {
        match self.docs.iter().find(|d| d.name == name).map(|d| d.kind) {
            Some(Kind::OneOf(words)) => words,
            _ => &[],
        }
    }

    /// The number `name`, if given; within its documented range.
    pub fn number(&self, name: &str) -> Option<f64> {
        match self.values.get(name) {
            Some(Checked::Number(v)) => Some(*v),
            _ => None,
        }
    }

    /// The integer `name`, if given; within its documented range.
    pub fn integer(&self, name: &str) -> Option<i64> {
        match self.values.get(name) {
            Some(Checked::Integer(v)) => Some(*v),
            _ => None,
        }
    }

    /// The time `name` in epoch ms, if given; within [`EARLIEST`]..=[`LATEST`].
    pub fn time(&self, name: &str) -> Option<i64> {
        match self.values.get(name) {
            Some(Checked::Time(v)) => Some(*v),
            _ => None,
        }
    }

    /// `from` and `to` (both optional, `to` defaulting to `now` and `from` to `default_ms`
    /// before `to`), checked to be ordered and at most `max_ms` apart.
    ///
    /// # Errors
    /// [`ApiError::BadParam`] naming `from` or `to`.
    pub fn range(&self, now: i64, default_ms: i64, max_ms: i64) -> Result<(i64, i64), ApiError> {
        let to = self
            .time("to")
            .unwrap_or_else(|| now.clamp(EARLIEST, LATEST));
        let from = self
            .time("from")
            .unwrap_or_else(|| to.saturating_sub(default_ms).max(EARLIEST));
        if from > to {
            return Err(ApiError::param("from", "is after `to`"));
        }
        if to.checked_sub(from).is_none_or(|span| span > max_ms) {
            return Err(ApiError::param(
                "to",
                format!("the range may span at most {}", duration(max_ms)),
            ));
        }
        Ok((from, to))
    }
}

/// `ms` in words: days when whole days, else hours.
pub fn duration(ms: i64) -> String {
    const DAY: i64 = 86_400_000;
    if ms % DAY == 0 {
        format!("{} days", ms / DAY)
    } else {
        format!("{} hours", ms / 3_600_000)
    }
}

/// `raw` checked against `doc`'s kind.
fn check(doc: &ParamDoc, raw: &str, zone: Tz) -> Result<Checked, ApiError> {
    let name = doc.name;
    let cannot = || ApiError::param(name, format!("cannot parse {:?}", echo(raw)));
    match doc.kind {
        Kind::Text => Ok(Checked::Text(raw.to_owned())),
        Kind::OneOf(words) => {
            if words.contains(&raw) {
                Ok(Checked::Text(raw.to_owned()))
            } else {
                Err(ApiError::param(
                    name,
                    format!("{:?} is not one of {}", echo(raw), words.join(", ")),
                ))
            }
        }
        Kind::ListOf(words) => match raw.split(',').map(str::trim).find(|w| !words.contains(w)) {
            Some(bad) => Err(ApiError::param(
                name,
                format!(
                    "unknown {name} {:?} (known: {})",
                    echo(bad),
                    words.join(", ")
                ),
            )),
            None => Ok(Checked::Text(raw.to_owned())),
        },
        Kind::Number { min, max } => {
            let v: f64 = raw.trim().parse().map_err(|_| cannot())?;
            if v.is_finite() && (min..=max).contains(&v) {
                Ok(Checked::Number(v))
            } else {
                Err(ApiError::param(
                    name,
                    format!("{} is outside {min}..={max}", echo(raw)),
                ))
            }
        }
        Kind::Integer { min, max } => {
            let v: i64 = raw.trim().parse().map_err(|_| cannot())?;
            if (min..=max).contains(&v) {
                Ok(Checked::Integer(v))
            } else {
                Err(ApiError::param(
                    name,
                    format!("{v} is outside {min}..={max}"),
                ))
            }
        }
        Kind::Time => parse_time(name, raw, zone).map(Checked::Time),
    }
}

/// A time in one of the three forms, within [`EARLIEST`]..=[`LATEST`].
fn parse_time(name: &str, s: &str, zone: Tz) -> Result<i64, ApiError> {
    let ms = if let Ok(ms) = s.parse::<i64>() {
        ms
    } else if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        t.timestamp_millis()
    } else if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        day.and_hms_opt(0, 0, 0)
            .and_then(|d| d.and_local_timezone(zone).earliest())
            .map(|d| d.timestamp_millis())
            .ok_or_else(|| {
                ApiError::param(
                    name,
                    format!("local midnight of {s} does not exist in {zone}"),
                )
            })?
    } else {
        return Err(ApiError::param(
            name,
            format!(
                "{:?} is neither RFC 3339, a YYYY-MM-DD date nor milliseconds since the epoch",
                echo(s)
            ),
        ));
    };
    if (EARLIEST..=LATEST).contains(&ms) {
        Ok(ms)
    } else {
        Err(ApiError::param(
            name,
            format!(
                "{} is outside 2000-01-01..=2100-01-01 (epoch ms {EARLIEST}..={LATEST})",
                echo(s)
            ),
        ))
    }
}

/// `application/x-www-form-urlencoded` pairs, percent-decoded (`+` is a space).
fn form_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Percent-decoding; a `%` not followed by two hex digits stays as it is.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len()
                && b[i + 1].is_ascii_hexdigit()
                && b[i + 2].is_ascii_hexdigit() =>
            {
                out.push(hex(b[i + 1]) << 4 | hex(b[i + 2]));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of an ASCII hex digit.
fn hex(d: u8) -> u8 {
    match d {
        b'0'..=b'9' => d - b'0',
        b'a'..=b'f' => d - b'a' + 10,
        b'A'..=b'F' => d - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const DOCS: &[ParamDoc] = &[
        ParamDoc::required(
            "lat",
            Kind::Number {
                min: -90.0,
                max: 90.0,
            },
            "latitude",
        ),
        ParamDoc::query("from", Kind::Time, "start"),
        ParamDoc::query("to", Kind::Time, "end"),
        ParamDoc::query("unit", Kind::Text, "unit"),
        ParamDoc::query("res", Kind::Integer { min: 6, max: 10 }, "resolution"),
        ParamDoc::query("format", Kind::OneOf(&["json", "csv"]), "format"),
        ParamDoc::query("layer", Kind::ListOf(&["beat", "zone"]), "layers"),
    ];
    const ZONE: Tz = chrono_tz::America::Chicago;
    const DAY: i64 = 86_400_000;

    fn parse(q: &str) -> Result<Params, ApiError> {
        Params::parse(Some(q), DOCS, ZONE)
    }

    fn bad(q: &str) -> String {
        parse(q).unwrap_err().to_string()
    }

    #[test]
    fn parameters_are_checked_by_name() {
        assert!(bad("lat=1&bogus=2").contains("`bogus`"));
        assert!(bad("unit=C01").contains("`lat`: required"));
        assert!(
            bad("lat=&unit=C01").contains("`lat`: required"),
            "empty is missing"
        );
        assert!(bad("lat=1&lat=2").contains("more than once"));
        let p = parse("lat=40.5&unit=C%2001&from=2026-11-02T08:30:00Z").unwrap();
        assert_eq!(p.number("lat"), Some(40.5));
        assert_eq!(p.text("unit"), Some("C 01"));
        assert_eq!(p.time("from"), Some(1_793_608_200_000));
        assert!(bad("lat=abc").contains("`lat`"));
        assert!(bad("lat=1&from=yesterday").contains("`from`"));
        assert!(bad("lat=91").contains("`lat`"));
        assert!(bad("lat=NaN").contains("`lat`"));
        assert!(bad("lat=1&res=5").contains("`res`: 5 is outside 6..=10"));
        assert!(bad("lat=1&res=1e1").contains("`res`"));
        assert!(bad("lat=1&format=xml").contains("`format`"));
        assert!(bad("lat=1&layer=beat,moon").contains("\"moon\""));
        assert_eq!(
            parse("lat=1&layer=beat,%20zone").unwrap().text("layer"),
            Some("beat, zone")
        );
        let long = format!("lat=1&unit={}", "x".repeat(MAX_VALUE + 1));
        assert!(bad(&long).contains("longer than 1024"));
        // An unknown name is echoed only in part.
        let huge = format!("lat=1&{}=1", "y".repeat(5000));
        assert!(bad(&huge).len() < 300, "{}", bad(&huge).len());
        assert_eq!(decode("a%2"), "a%2");
        assert_eq!(decode("%+1%41"), "% 1A", "`%+1` is no escape");
    }

    #[test]
    fn one_time_grammar_within_bounds() {
        let t = |q: &str| parse(&format!("lat=0&from={q}")).map(|p| p.time("from"));
        // Epoch ms, RFC 3339 and a local date (midnight in Chicago is 06:00 UTC in November).
        assert_eq!(t("1793608200000").unwrap(), Some(1_793_608_200_000));
        assert_eq!(
            t("2026-11-02T08:30:00%2B00:00").unwrap(),
            Some(1_793_608_200_000)
        );
        assert_eq!(t("2026-11-02").unwrap(), Some(1_793_599_200_000));
        for hostile in [
            "-9223372036854775808",
            "9223372036854775807",
            "0",
            "10",
            "1999-12-31",
            "2100-01-02",
            "9999-12-31T23:59:59Z",
        ] {
            let e = t(hostile).unwrap_err();
            assert!(
                e.to_string().contains("`from`") && e.to_string().contains("outside"),
                "{hostile}: {e}"
            );
        }
        assert_eq!(t(&EARLIEST.to_string()).unwrap(), Some(EARLIEST));
        assert_eq!(t(&LATEST.to_string()).unwrap(), Some(LATEST));
    }

    #[test]
    fn ranges_are_ordered_and_bounded() {
        let p = parse("lat=1&from=2026-01-10&to=2026-01-05").unwrap();
        assert!(
            p.range(0, DAY, 7 * DAY)
                .unwrap_err()
                .to_string()
                .contains("`from`")
        );
        let p = parse("lat=1&from=2026-01-01&to=2026-01-09").unwrap();
        let e = p.range(0, DAY, 7 * DAY).unwrap_err().to_string();
        assert!(e.contains("`to`") && e.contains("7 days"), "{e}");
        // The request: the extremes of i64 are refused, not looped over.
        let e = bad("lat=1&from=-9223372036854775808&to=9223372036854775807");
        assert!(e.contains("`from`"), "{e}");
        // Defaults: `to` is now, `from` the default before it, never before EARLIEST.
        let p = parse("lat=1").unwrap();
        let now = 1_793_608_200_000;
        assert_eq!(p.range(now, DAY, 7 * DAY).unwrap(), (now - DAY, now));
        let p = parse(&format!("lat=1&to={}", EARLIEST + 5)).unwrap();
        assert_eq!(
            p.range(now, DAY, 7 * DAY).unwrap(),
            (EARLIEST, EARLIEST + 5)
        );
    }

    /// Any text for a parameter's value: digits of any size and sign, dates and times of any
    /// year, percent escapes, separators and unicode.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|v| v.to_string()),
            (EARLIEST - DAY..LATEST + DAY).prop_map(|v| v.to_string()),
            "[+-]?[0-9]{1,25}",
            "[0-9]{1,6}-[0-9]{1,2}-[0-9]{1,2}",
            "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|%2B[0-9]{2}:[0-9]{2}|\\.[0-9]{1,12}Z)",
            "-?[0-9]{0,5}(\\.[0-9]{0,5})?(e-?[0-9]{1,4})?|inf|-inf|NaN",
            "[a-z,% 0-9+]{0,12}",
            any::<String>(),
        ]
    }

    fn query() -> impl Strategy<Value = String> {
        let name = prop_oneof![
            Just("lat".to_owned()),
            Just("from".to_owned()),
            Just("to".to_owned()),
            Just("unit".to_owned()),
            Just("res".to_owned()),
            Just("format".to_owned()),
            Just("layer".to_owned()),
            "[a-z%=&]{0,6}",
        ];
        proptest::collection::vec((name, value()), 0..8).prop_map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// Whatever the query: no panic, no overflow; either a 400 naming a parameter, or
        /// values within their documented limits and a range that is ordered, within
        /// EARLIEST..=LATEST and no longer than asked.
        #[test]
        fn any_query_is_a_400_or_bounded(q in query(), now in any::<i64>(), default in 0..=365 * DAY, max in 0..=365 * DAY) {
            match parse(&q) {
                Err(e) => {
                    prop_assert_eq!(e.status().as_u16(), 400);
                    prop_assert!(e.to_string().starts_with("parameter `"), "{}", e);
                }
                Ok(p) => {
                    if let Some(lat) = p.number("lat") {
                        prop_assert!((-90.0..=90.0).contains(&lat));
                    }
                    if let Some(res) = p.integer("res") {
                        prop_assert!((6..=10).contains(&res));
                    }
                    if let Some(f) = p.text("format") {
                        prop_assert!(f == "json" || f == "csv");
                    }
                    for name in ["from", "to"] {
                        if let Some(t) = p.time(name) {
                            prop_assert!((EARLIEST..=LATEST).contains(&t));
                        }
                    }
                    match p.range(now, default, max) {
                        Ok((from, to)) => {
                            prop_assert!(EARLIEST <= from && from <= to && to <= LATEST);
                            prop_assert!(to - from <= max);
                        }
                        Err(e) => {
                            prop_assert_eq!(e.status().as_u16(), 400);
                            let m = e.to_string();
                            prop_assert!(m.starts_with("parameter `from`") || m.starts_with("parameter `to`"), "{}", m);
                        }
                    }
                }
            }
        }
    }
}
