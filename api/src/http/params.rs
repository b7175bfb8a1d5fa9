//! Query parameters: each route declares its parameters once ([`ParamDoc`]); the same list
//! checks requests (unknown names are refused, values are parsed with errors that name the
//! parameter) and documents the route in OpenAPI.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::DateTime;

use crate::http::error::ApiError;

/// The type of a parameter, as documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text.
    Text,
    /// A decimal number.
    Number,
    /// An integer.
    Integer,
    /// An RFC 3339 time or milliseconds since the epoch.
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

/// A request's query parameters, checked against a route's [`ParamDoc`]s.
#[derive(Debug)]
pub struct Params {
    values: HashMap<String, String>,
}

impl Params {
    /// Parses `query` and refuses parameters the route does not declare, repeated ones and
    /// missing required ones.
    ///
    /// # Errors
    /// [`ApiError::BadParam`] naming the first offending parameter.
    pub fn parse(query: Option<&str>, docs: &[ParamDoc]) -> Result<Params, ApiError> {
        let mut values = HashMap::new();
        for (k, v) in form_pairs(query.unwrap_or("")) {
            if !docs.iter().any(|d| d.location == In::Query && d.name == k) {
                let known: Vec<&str> = docs
                    .iter()
                    .filter(|d| d.location == In::Query)
                    .map(|d| d.name)
                    .collect();
                return Err(ApiError::param(
                    &k,
                    format!(
                        "unknown parameter (this endpoint takes: {})",
                        known.join(", ")
                    ),
                ));
            }
            if values.insert(k.clone(), v).is_some() {
                return Err(ApiError::param(&k, "given more than once"));
            }
        }
        for d in docs {
            if d.required && d.location == In::Query && !values.contains_key(d.name) {
                return Err(ApiError::param(d.name, "required"));
            }
        }
        Ok(Params { values })
    }

    /// The raw text of `name`, if given and not empty.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// `name` parsed as `T`.
    ///
    /// # Errors
    /// [`ApiError::BadParam`] when it does not parse.
    pub fn get<T: FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.text(name)
            .map(|s| {
                s.parse::<T>()
                    .map_err(|_| ApiError::param(name, format!("cannot parse {s:?}")))
            })
            .transpose()
    }

    /// A finite number in `[lo, hi]`.
    ///
    /// # Errors
    /// [`ApiError::BadParam`] when it does not parse or lies outside the range.
    pub fn number(&self, name: &str, lo: f64, hi: f64) -> Result<Option<f64>, ApiError> {
        match self.get::<f64>(name)? {
            Some(v) if !(v.is_finite() && (lo..=hi).contains(&v)) => {
                Err(ApiError::param(name, format!("{v} is outside {lo}..={hi}")))
            }
            v => Ok(v),
        }
    }

    /// A time: RFC 3339 (`2026-11-02T08:30:00Z`) or integer milliseconds since the epoch.
    ///
    /// # Errors
    /// [`ApiError::BadParam`] when it is neither.
    pub fn time(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.text(name).map(|s| parse_time(name, s)).transpose()
    }

    /// `from` and `to` (both optional, `to` defaulting to `now` and `from` to `to - default`),
    /// checked to be ordered and at most `max_ms` apart.
    ///
    /// # Errors
    /// [`ApiError::BadParam`] naming `from` or `to`.
    pub fn range(&self, now: i64, default_ms: i64, max_ms: i64) -> Result<(i64, i64), ApiError> {
        let to = self.time("to")?.unwrap_or(now);
        let from = self.time("from")?.unwrap_or(to - default_ms);
        if from > to {
            return Err(ApiError::param("from", "is after `to`"));
        }
        if to - from > max_ms {
            return Err(ApiError::param(
                "to",
                format!("the range may span at most {} hours", max_ms / 3_600_000),
            ));
        }
        Ok((from, to))
    }
}

fn parse_time(name: &str, s: &str) -> Result<i64, ApiError> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            ApiError::param(
                name,
                format!("{s:?} is neither RFC 3339 nor milliseconds since the epoch"),
            )
        })
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

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCS: &[ParamDoc] = &[
        ParamDoc::required("lat", Kind::Number, "latitude"),
        ParamDoc::query("from", Kind::Time, "start"),
        ParamDoc::query("to", Kind::Time, "end"),
        ParamDoc::query("unit", Kind::Text, "unit"),
    ];

    fn bad(q: &str) -> String {
        Params::parse(Some(q), DOCS).unwrap_err().to_string()
    }

    #[test]
    fn parameters_are_checked_by_name() {
        assert!(bad("lat=1&bogus=2").contains("`bogus`"));
        assert!(bad("unit=C01").contains("`lat`: required"));
        assert!(bad("lat=1&lat=2").contains("more than once"));
        let p =
            Params::parse(Some("lat=40.5&unit=C%2001&from=2026-11-02T08:30:00Z"), DOCS).unwrap();
        assert_eq!(p.number("lat", -90.0, 90.0).unwrap(), Some(40.5));
        assert_eq!(p.text("unit"), Some("C 01"));
        assert_eq!(p.time("from").unwrap(), Some(1_793_608_200_000));
        let p = Params::parse(Some("lat=abc&from=yesterday"), DOCS).unwrap();
        assert!(
            p.number("lat", -90.0, 90.0)
                .unwrap_err()
                .to_string()
                .contains("`lat`")
        );
        assert!(p.time("from").unwrap_err().to_string().contains("`from`"));
        let p = Params::parse(Some("lat=91&from=10&to=5"), DOCS).unwrap();
        assert!(p.number("lat", -90.0, 90.0).is_err());
        assert!(
            p.range(0, 1, 100)
                .unwrap_err()
                .to_string()
                .contains("`from`")
        );
        let p = Params::parse(Some("lat=1&from=0&to=7200001"), DOCS).unwrap();
        assert!(
            p.range(0, 1, 7_200_000)
                .unwrap_err()
                .to_string()
                .contains("`to`")
        );
        assert_eq!(decode("a%2"), "a%2");
    }
}
