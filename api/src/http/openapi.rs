//! The OpenAPI 3.1 document at `/api/openapi.json`, generated from the route table
//! ([`crate::server::routes`]) so that it cannot list a route the router lacks or miss one.

use axum::Json;
use serde_json::{Map, Value, json};

use crate::http::auth::Access;
use crate::http::params::{In, Kind};
use crate::http::table;
use crate::server::routes;

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for (d, _) in routes() {
        let params: Vec<Value> = d
            .params
            .iter()
            .map(|p| {
                let schema = match p.kind {
                    Kind::Text => json!({"type": "string"}),
                    Kind::Number => json!({"type": "number"}),
                    Kind::Integer => json!({"type": "integer"}),
                    Kind::Time => json!({"oneOf": [
                        {"type": "string", "format": "date-time"},
                        {"type": "integer", "description": "ms since the epoch"}
                    ]}),
                };
                json!({
                    "name": p.name,
                    "in": match p.location { In::Query => "query", In::Path => "path" },
                    "required": p.required,
                    "description": p.description,
                    "schema": schema,
                })
            })
            .collect();
        let error = json!({"$ref": "#/components/responses/Error"});
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
        if !params.is_empty() {
            responses.insert("400".into(), error.clone());
        }
        let mut op = json!({
            "summary": d.summary,
            "parameters": params,
        });
        if d.access == Access::Public {
            op["security"] = json!([]);
        } else {
            responses.insert("401".into(), error.clone());
            responses.insert("403".into(), error.clone());
            op["security"] = json!([{"bearer": []}]);
            op["x-roles"] = json!(
                d.access
                    .roles()
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
            );
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
                lists the roles allowed, and a station-scoped token sees only its station.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Error": {
                "description": "An error: `error` is a code, `message` says what went wrong (a bad parameter is named).",
                "content": {"application/json": {"schema": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
                }}},
            }},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    })
}

/// `GET /api/openapi.json`.
pub(crate) async fn handler() -> Json<Value> {
    Json(document())
}
