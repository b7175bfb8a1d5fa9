//! The OpenAPI 3.1 document at `/api/openapi.json`, generated from the route table the router
//! is built from ([`crate::server::routes`]) so that it cannot list a route the router lacks or
//! miss one,
//! with every parameter's limits and every status each route can answer.

use serde_json::{Map, Value, json};

use crate::http::auth::Access;
use crate::http::params::{EARLIEST, In, Kind, LATEST, MAX_VALUE};
use crate::http::table;
use std::time::Duration;

use crate::http::params::ParamDoc;

/// One route of the API, as documented.
#[derive(Debug, Clone, Copy)]
pub struct RouteDoc {
    /// Path, axum syntax (`/api/units/{id}/track`).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// One line for the OpenAPI document.
    pub summary: &'static str,
    /// Its parameters.
    pub params: &'static [ParamDoc],
    /// Content type of a successful answer.
    pub content: &'static str,
    /// Whether `format` also offers the tables of [`table`](crate::http::table) (CSV,
    /// Parquet, Arrow).
    pub tables: bool,
    /// How long the route may take to its response head; past it the work is dropped (and
    /// stopped, see [`limits`](crate::http::limits)) and the answer is 504.
    pub deadline: Duration,
    /// The error statuses this route answers besides those every route of its access class
    /// answers (see [`openapi`](crate::http::openapi)).
    pub errors: &'static [u16],
}

impl RouteDoc {
    /// The same route, also answering tables.
    pub(crate) const fn with_tables(self) -> RouteDoc {
        RouteDoc {
            tables: true,
            ..self
        }
    }

    /// The same route, also answering the error statuses `errors`.
    pub(crate) const fn with_errors(self, errors: &'static [u16]) -> RouteDoc {
        RouteDoc { errors, ..self }
    }
}

/// The schema of a parameter of kind `kind`, with the limits [`Params`](crate::http::params::Params)
/// enforces.
fn schema(kind: Kind) -> Value {
    match kind {
        Kind::Text => json!({"type": "string", "maxLength": MAX_VALUE}),
        Kind::OneOf(words) => json!({"type": "string", "enum": words}),
        Kind::ListOf(words) => {
            let word = words.join("|");
            json!({
                "type": "string",
                "maxLength": MAX_VALUE,
                "pattern": format!("^({word})(,({word}))*$"),
                "description": format!("comma-separated, of: {}", words.join(", ")),
            })
        }
        Kind::Number { min, max } => json!({"type": "number", "minimum": min, "maximum": max}),
        Kind::Integer { min, max } => json!({"type": "integer", "minimum": min, "maximum": max}),
        Kind::Time => json!({"anyOf": [
            {"type": "integer", "minimum": EARLIEST, "maximum": LATEST,
             "description": "ms since the epoch"},
            {"type": "string", "format": "date-time",
             "description": "RFC 3339, from 2000-01-01 to 2100-01-01"},
            {"type": "string", "format": "date",
             "description": "local midnight in the jurisdiction's time zone"},
        ]}),
    }
}

/// What each error status means, for the document.
fn meaning(status: u16) -> &'static str {
    match status {
        400 => {
            "A parameter is unknown, repeated, missing or out of its limits; the message names it."
        }
        401 => "No valid bearer token.",
        403 => "The token's role or station does not cover this request.",
        404 => "No such object, or nothing stored to answer from.",
        414 => "The request target is too long.",
        429 => {
            "The token holds as many of this resource (open streams, running jobs) as it may; see Retry-After."
        }
        431 => "The request headers are too large.",
        500 => "Internal error (logged, not shown).",
        503 => "Busy with other callers' work; see Retry-After.",
        504 => "The work did not finish within the route's deadline and was stopped.",
        _ => "Error.",
    }
}

/// The error statuses route `d` can answer, in order.
pub fn error_statuses(d: &RouteDoc) -> Vec<u16> {
    // Every request is checked for its size before routing.
    let mut out = vec![414, 431];
    if !d.params.is_empty() {
        out.push(400);
    }
    if d.access != Access::Public {
        // The guard, any handler's internal failure, and the deadline.
        out.extend([401, 403, 500, 504]);
    }
    out.extend(d.errors);
    out.sort_unstable();
    out.dedup();
    out
}

/// The document of the routes `routes`.
pub fn document<'a>(routes: impl IntoIterator<Item = &'a RouteDoc>) -> Value {
    let mut paths = Map::new();
    for d in routes {
        let params: Vec<Value> = d
            .params
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "in": match p.location { In::Query => "query", In::Path => "path" },
                    "required": p.required,
                    "description": p.description,
                    "schema": schema(p.kind),
                })
            })
            .collect();
        let mut responses = Map::new();
        let mut content = Map::new();
        content.insert(d.content.into(), json!({}));
        if d.tables {
            for t in table::CONTENT {
                content.insert(t.into(), json!({}));
            }
        }
        responses.insert(
            "200".into(),
            json!({"description": "OK", "content": content}),
        );
        for status in error_statuses(d) {
            let mut r = json!({
                "description": meaning(status),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            });
            if matches!(status, 429 | 503) {
                r["headers"] = json!({"Retry-After": {
                    "description": "Seconds after which asking again may succeed.",
                    "schema": {"type": "integer", "minimum": 0},
                }});
            }
            responses.insert(status.to_string(), r);
        }
        let mut op = json!({
            "summary": d.summary,
            "parameters": params,
        });
        if d.access == Access::Public {
            op["security"] = json!([]);
        } else {
            op["security"] = json!([{"bearer": []}]);
            op["x-roles"] = json!(
                d.access
                    .roles()
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
            );
            op["x-deadline-seconds"] = json!(d.deadline.as_secs());
        }
        op["responses"] = Value::Object(responses);
        paths.insert(d.path.to_owned(), json!({"get": op}));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "patrol",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Live units, events, history and the map of the patrol pipeline. \
                Every route but the public ones needs `Authorization: Bearer <token>`; `x-roles` \
                lists the roles allowed, and a station-scoped token sees only its station. \
                Every error, whatever its status, is `{error, message}`; each route lists the \
                statuses it answers, and `x-deadline-seconds` how long its work may take.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {
                "type": "object",
                "required": ["error", "message"],
                "additionalProperties": false,
                "properties": {
                    "error": {"type": "string", "description": "A code: bad_parameter, unauthorized, forbidden, not_found, ..."},
                    "message": {"type": "string", "description": "What went wrong; a bad parameter is named."},
                },
            }},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    })
}
