//! The HTTP API over a real in-process ingest, its router called in-process (the SSE stream
//! on a socket): access control and the error shape on every documented route, the OpenAPI
//! document against the router, live units, the SSE stream, events, history and the fence
//! catalog, and the tabular answers (CSV, Parquet read back with polars, Arrow IPC read back
//! with arrow-rs) against the JSON ones.

use std::time::Duration;

use api::http::auth::Role;
use arrow::array::{
    Array, ArrayRef, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, StringArray,
    UInt32Array, UInt64Array,
};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use devkit::testkit::http::Response;
use devkit::testkit::wait_for_async;
use polars::prelude::{AnyValue, DataFrame, SerReader};
use serde_json::{Value, json};

use crate::web::{Server, location, now_ms, sse};

const PARQUET: &str = "application/vnd.apache.parquet";
const ARROW: &str = "application/vnd.apache.arrow.stream";

/// A Parquet answer, read back with polars.
fn parquet_frame(r: &Response) -> DataFrame {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["content-type"], PARQUET);
    polars::prelude::ParquetReader::new(std::io::Cursor::new(r.bytes.clone()))
        .finish()
        .unwrap()
}

/// Column `name` of a polars frame as JSON values.
fn frame_column(df: &DataFrame, name: &str) -> Vec<Value> {
    let col = df
        .column(name)
        .unwrap_or_else(|_| panic!("no column {name}"));
    (0..df.height())
        .map(|i| match col.get(i).unwrap() {
            AnyValue::Null => Value::Null,
            AnyValue::Boolean(b) => json!(b),
            AnyValue::Int32(v) => json!(v),
            AnyValue::Int64(v) => json!(v),
            AnyValue::UInt32(v) => json!(v),
            AnyValue::UInt64(v) => json!(v),
            AnyValue::Float32(v) => json!(v),
            AnyValue::Float64(v) => json!(v),
            AnyValue::String(v) => json!(v),
            AnyValue::StringOwned(v) => json!(v.as_str()),
            other => panic!("column {name}: unexpected value {other:?}"),
        })
        .collect()
}

/// An Arrow IPC stream answer, read back with arrow-rs, as one batch.
fn arrow_batch(r: &Response) -> RecordBatch {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["content-type"], ARROW);
    let reader =
        arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(r.bytes.clone()), None)
            .unwrap();
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
    arrow::compute::concat_batches(&schema, &batches).unwrap()
}

/// Column `name` of an Arrow batch as JSON values.
fn batch_column(b: &RecordBatch, name: &str) -> Vec<Value> {
    let col: &ArrayRef = b
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"));
    let any = col.as_any();
    (0..col.len())
        .map(|i| {
            if col.is_null(i) {
                return Value::Null;
            }
            match col.data_type() {
                DataType::Utf8 => json!(any.downcast_ref::<StringArray>().unwrap().value(i)),
                DataType::Int64 => json!(any.downcast_ref::<Int64Array>().unwrap().value(i)),
                DataType::Int32 => json!(any.downcast_ref::<Int32Array>().unwrap().value(i)),
                DataType::UInt64 => json!(any.downcast_ref::<UInt64Array>().unwrap().value(i)),
                DataType::UInt32 => json!(any.downcast_ref::<UInt32Array>().unwrap().value(i)),
                DataType::Float64 => json!(any.downcast_ref::<Float64Array>().unwrap().value(i)),
                DataType::Float32 => json!(any.downcast_ref::<Float32Array>().unwrap().value(i)),
                DataType::Boolean => json!(any.downcast_ref::<BooleanArray>().unwrap().value(i)),
                other => panic!("column {name}: unexpected type {other}"),
            }
        })
        .collect()
}

/// The table cell a JSON value becomes: lists and objects as their JSON text.
fn cell(v: &Value) -> Value {
    match v {
        Value::Array(_) | Value::Object(_) => Value::String(v.to_string()),
        other => other.clone(),
    }
}

/// Equal as table cells: numbers by value (an integer in a column of decimals is a decimal),
/// to the last bit but one: serde_json's default float parser does not always round the
/// shortest decimal of an `f64` back to that same `f64`.
fn same_cell(got: &Value, want: &Value) -> bool {
    match (got.as_f64(), want.as_f64()) {
        (Some(a), Some(b)) => a == b || (a - b).abs() <= 4.0 * f64::EPSILON * a.abs().max(b.abs()),
        _ => *got == cell(want),
    }
}

/// Every field of every JSON row equals its cell in the table, which has one row per JSON
/// row and one column per field name (`shape` = rows, columns).
fn assert_rows_match(rows: &[Value], shape: (usize, usize), column: impl Fn(&str) -> Vec<Value>) {
    let mut names: Vec<&str> = rows
        .iter()
        .flat_map(|r| r.as_object().unwrap().keys().map(String::as_str))
        .collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(shape, (rows.len(), names.len()), "{names:?}");
    for name in names {
        let col = column(name);
        for (i, row) in rows.iter().enumerate() {
            let want = row.get(name).unwrap_or(&Value::Null);
            assert!(
                same_cell(&col[i], want),
                "{name} of row {i}: {} against {want}",
                col[i]
            );
        }
    }
}

/// A concrete URL for a documented path (path parameters filled, required query parameters
/// given valid values).
fn url_for(path: &str, op: &Value, unit: &str) -> String {
    let mut url = path.replace("{id}", unit);
    let required: Vec<&str> = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "query" && p["required"] == true)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let value = |name: &str| match name {
        "lat" => "40.1".to_owned(),
        "lon" => "-88.9".to_owned(),
        "t" => now_ms().to_string(),
        "from" => "2026-11-02".to_owned(),
        "to" => "2026-11-03".to_owned(),
        other => panic!("no test value for required parameter {other}"),
    };
    let q: Vec<String> = required
        .iter()
        .map(|n| format!("{n}={}", value(n)))
        .collect();
    if !q.is_empty() {
        url = format!("{url}?{}", q.join("&"));
    }
    url
}

fn assert_error_shape(r: &Response, status: u16, code: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    let j = r.json();
    assert_eq!(j["error"], code, "{what}: {j}");
    assert!(
        j["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {j}"
    );
    assert_eq!(
        j.as_object().unwrap().len(),
        2,
        "{what}: only error and message: {j}"
    );
}

#[test]
fn every_route_answers_401_403_by_role_and_scope() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = Server::start().await;
        let doc = s.get("/api/openapi.json", Some("command")).await.json();
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.len() >= 12, "{paths:?}");
        for (path, item) in paths {
            let op = &item["get"];
            let url = url_for(path, op, "C01");
            let public = op["security"].as_array().is_some_and(|a| a.is_empty());
            if public {
                assert_eq!(s.status(&url, None).await, 200, "{url} is public");
                continue;
            }
            // No token, or a token nobody configured: 401 with the error shape.
            if url.starts_with("/api/live") {
                assert_eq!(s.status(&url, None).await, 401, "{url}");
            } else {
                assert_error_shape(&s.get(&url, None).await, 401, "unauthorized", &url);
                let forged = s.get_bearer(&url, Some("ptk_not-a-real-token")).await;
                assert_error_shape(&forged, 401, "unauthorized", &url);
            }
            let roles: Vec<&str> = op["x-roles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            for role in Role::ALL {
                let got = s.status(&url, Some(role.as_str())).await;
                if roles.contains(&role.as_str()) {
                    // Analytics over this empty store say so (404); everything else answers.
                    let ok = if path.starts_with("/api/analytics/") {
                        got == 200 || got == 404
                    } else {
                        got == 200
                    };
                    assert!(ok, "{url} as {role}: {got}");
                } else {
                    assert_eq!(got, 403, "{url} as {role}");
                    if !url.starts_with("/api/live") {
                        let r = s.get(&url, Some(role.as_str())).await;
                        assert_error_shape(&r, 403, "forbidden", &url);
                    }
                }
            }
            // Scope: a station token may not reach outside its station.
            let chief_st2 = Some("admin@ST2");
            let takes_station = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "station");
            if takes_station {
                let sep = if url.contains('?') { '&' } else { '?' };
                let other = format!("{url}{sep}station=ST1");
                assert_eq!(
                    s.status(&other, chief_st2).await,
                    403,
                    "{other} as admin@ST2"
                );
                let own = format!("{url}{sep}station=ST2");
                let got = s.status(&own, chief_st2).await;
                assert!(
                    got == 200 || (got == 404 && path.starts_with("/api/analytics/")),
                    "{own} as admin@ST2: {got}"
                );
            } else if path.contains("{id}") {
                // C01 belongs to ST1, C11 to ST2.
                assert_eq!(s.status(&url, chief_st2).await, 403, "{url} as admin@ST2");
                let own = url_for(path, op, "C11");
                assert_eq!(s.status(&own, chief_st2).await, 200, "{own} as admin@ST2");
            } else if path == "/metrics" {
                assert_eq!(
                    s.status(&url, chief_st2).await,
                    403,
                    "metrics need a county token"
                );
            } else {
                assert_eq!(s.status(&url, chief_st2).await, 200, "{url} as admin@ST2");
            }
        }
        s.stop().await;
    });
}

#[test]
fn openapi_matches_the_router() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = Server::start().await;
        let doc = s.get("/api/openapi.json", Some("analyst")).await.json();
        assert_eq!(doc["openapi"], "3.1.0");
        let documented: Vec<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
        // Every documented path is served (not the JSON 404 of unknown paths)...
        for path in &documented {
            let url = url_for(path, &doc["paths"][path]["get"], "C01");
            if url.starts_with("/api/live") {
                assert_eq!(s.status(&url, Some("admin")).await, 200, "{url}");
                continue;
            }
            // A 404 may mean "nothing there" (analytics of an empty store), never "no route".
            let r = s.get(&url, Some("admin")).await;
            assert!(
                r.status != 404 || !r.body.contains("no such endpoint"),
                "{url} is documented but not routed"
            );
        }
        // Every route documented with tabular answers gives them: a Parquet file and an Arrow
        // stream that read back, and CSV, all with the same number of rows (few here: the
        // store is empty, but hot spots come from the incidents file alone).
        let mut tabular = Vec::new();
        for path in &documented {
            let op = &doc["paths"][path]["get"];
            let content = op["responses"]["200"]["content"].as_object().unwrap();
            if !content.contains_key(PARQUET) {
                continue;
            }
            assert!(
                content.contains_key(ARROW) && content.contains_key("text/csv"),
                "{path}: {content:?}"
            );
            tabular.push(path.as_str());
            let url = url_for(path, op, "C01");
            let sep = if url.contains('?') { '&' } else { '?' };
            let parquet = s
                .get(&format!("{url}{sep}format=parquet"), Some("admin"))
                .await;
            if parquet.status == 404 && path.starts_with("/api/analytics/") {
                continue;
            }
            let rows = parquet_frame(&parquet).height();
            let arrow = s
                .get(&format!("{url}{sep}format=arrow"), Some("admin"))
                .await;
            assert_eq!(arrow_batch(&arrow).num_rows(), rows, "{url}");
            let csv = s.get(&format!("{url}{sep}format=csv"), Some("admin")).await;
            assert_eq!(csv.headers["content-type"], "text/csv", "{url}");
            assert_eq!(csv.body.lines().count(), rows + 1, "{url}");
            assert!(rows > 0 || !path.ends_with("/hotspots"), "{url}");
        }
        tabular.sort_unstable();
        assert_eq!(
            tabular,
            vec![
                "/api/analytics/compliance",
                "/api/analytics/coverage",
                "/api/analytics/dosage",
                "/api/analytics/gaps",
                "/api/analytics/hotspots",
                "/api/analytics/koper",
                "/api/analytics/response",
                "/api/at",
                "/api/events",
                "/api/units/{id}/track",
            ]
        );
        // ...and the router has no route the document lacks: the router is built from the
        // same table, and every entry of that table is documented.
        let routed: Vec<&str> = api::server::routes().iter().map(|(d, _)| d.path).collect();
        let mut a: Vec<&str> = documented.iter().map(String::as_str).collect();
        let mut b = routed.clone();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
        // Unknown paths and methods get the JSON error shape too.
        assert_error_shape(
            &s.get("/api/nope", Some("admin")).await,
            404,
            "not_found",
            "unknown path",
        );
        s.stop().await;
    });
}

#[test]
fn bad_parameters_are_400_and_named() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = Server::start().await;
        let cases = [
            ("/api/at?lat=abc&lon=-88.9&t=0", "`lat`"),
            ("/api/at?lat=40.1&lon=-88.9", "`t`"),
            ("/api/at?lat=95&lon=-88.9&t=0", "`lat`"),
            ("/api/at?lat=40.1&lon=-88.9&t=yesterday", "`t`"),
            (
                "/api/at?lat=40.1&lon=-88.9&t=2026-11-02&radius=1e9",
                "`radius`",
            ),
            ("/api/units?bogus=1", "`bogus`"),
            ("/api/events?from=2026-13-40", "`from`"),
            ("/api/events?from=10&to=5", "`from`"),
            ("/api/units/C01/track?from=0&to=999999999999", "`from`"),
            ("/api/units/C01/track?from=2026-11-01&to=2026-11-09", "`to`"),
            ("/api/units/C01/track?format=xml", "`format`"),
            ("/api/events?format=xlsx", "`format`"),
            (
                "/api/at?lat=40.1&lon=-88.9&t=2026-11-02&format=json",
                "`format`",
            ),
            (
                "/api/analytics/gaps?from=2026-11-02&to=2026-11-03&format=arrows",
                "`format`",
            ),
            ("/api/fences?layer=moon", "`layer`"),
        ];
        for (url, name) in cases {
            let r = s.get(url, Some("chief")).await;
            assert_error_shape(&r, 400, "bad_parameter", url);
            assert!(
                r.json()["message"].as_str().unwrap().contains(name),
                "{url}: {}",
                r.body
            );
        }
        let r = s.get("/api/units/NOPE/track", Some("chief")).await;
        assert_error_shape(&r, 404, "not_found", "unknown unit");
        s.stop().await;
    });
}

#[test]
fn live_units_stream_and_events_respect_scope() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = Server::start().await;
        let port = s.listen().await;
        let mut county = sse(port, "/api/live", s.tok("command")).await;
        assert_eq!(county.status, 200);
        assert!(county.headers["content-type"].starts_with("text/event-stream"));
        let mut st2 = sse(port, "/api/live", s.tok("command@ST2")).await;
        let mut c01_only = sse(port, "/api/live?unit=C01", s.tok("chief")).await;

        let c01 = s.device("dev-c01");
        let c11 = s.device("dev-c11");
        let t = now_ms() - 5_000;
        c01.publish("owntracks/ST1/C01", location(40.1, -88.9, t, 20))
            .await
            .unwrap();
        c11.publish("owntracks/ST2/C11", location(40.1, -89.1465, t, 20))
            .await
            .unwrap();

        // Both positions reach the county stream; only C11 the ST2 stream; only C01 the filtered one.
        assert!(
            county
                .wait_for("position", "\"C01\"", Duration::from_secs(20))
                .await
                .is_some()
        );
        let d = st2
            .wait_for("position", "\"C11\"", Duration::from_secs(20))
            .await
            .unwrap();
        let v: Value = serde_json::from_str(&d).unwrap();
        assert_eq!(
            (v["station"].as_str(), v["lat"].as_f64()),
            (Some("ST2"), Some(40.1))
        );
        assert!(
            c01_only
                .wait_for("position", "\"C01\"", Duration::from_secs(20))
                .await
                .is_some()
        );
        // A later C11 position must not reach the C01-only stream; a C01 one then arrives first.
        c11.publish("owntracks/ST2/C11", location(40.1, -89.146, t + 2000, 20))
            .await
            .unwrap();
        c01.publish("owntracks/ST1/C01", location(40.1, -88.8999, t + 2000, 20))
            .await
            .unwrap();
        let next = c01_only.next(Duration::from_secs(20)).await.unwrap().data;
        assert!(
            next.contains("\"C01\"") && !next.contains("\"C11\""),
            "{next}"
        );
        let next = st2.next(Duration::from_secs(20)).await.unwrap().data;
        assert!(next.contains("\"C11\""), "ST2 stream got {next}");

        // /api/units: the county sees both with kind and crew from units.csv, ST2 only its own.
        let all = wait_for_async(Duration::from_secs(20), "both units live", || async {
            let v = s.get("/api/units", Some("command")).await.json();
            (v.as_array()?.len() >= 2).then_some(v)
        })
        .await;
        let c01v = all
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["unit"] == "C01")
            .unwrap();
        assert_eq!(c01v["kind"], "car");
        assert_eq!(c01v["crew"], 1);
        assert_eq!(c01v["beat"], "BT01");
        assert!(c01v["age_s"].as_f64().unwrap() >= 3.0);
        let mine = s.get("/api/units", Some("command@ST2")).await.json();
        let ids: Vec<&str> = mine
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["unit"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec!["C11"]);
        let beat = s.get("/api/units?beat=BT01", Some("command")).await.json();
        assert_eq!(beat.as_array().unwrap().len(), 1);

        // The last will of C01 becomes an offline event on the stream and in /api/events.
        c01.publish("owntracks/ST1/C01", br#"{"_type":"lwt","tst":1}"#.to_vec())
            .await
            .unwrap();
        assert!(
            county
                .wait_for("offline", "\"C01\"", Duration::from_secs(20))
                .await
                .is_some()
        );
        let evs = wait_for_async(Duration::from_secs(10), "the offline event", || async {
            let v = s
                .get("/api/events?kind=offline&unit=C01", Some("command"))
                .await
                .json();
            (!v.as_array()?.is_empty()).then_some(v)
        })
        .await;
        assert_eq!(evs[0]["type"], "offline");
        assert_eq!(evs[0]["station"], "ST1");
        let none = s.get("/api/events", Some("command@ST2")).await.json();
        assert!(
            none.as_array()
                .unwrap()
                .iter()
                .all(|e| e["station"] == "ST2"),
            "{none}"
        );
        let units = s.get("/api/units?unit=C01", Some("chief")).await.json();
        assert_eq!(units[0]["status"], "offline");

        let metrics = s.get("/metrics", Some("admin")).await.body;
        assert!(metrics.contains("patrol_sse_clients 3"), "{metrics}");
        assert!(
            metrics.contains("patrol_http_request_duration_seconds_count"),
            "{metrics}"
        );
        assert!(metrics.contains("patrol_live_units 2"), "{metrics}");
        s.stop().await;
    });
}

#[test]
fn history_track_at_and_fences() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = Server::start().await;
        let dev = s.device("dev-c02");
        // Ten fixes ten seconds apart, heading east along Main Street into Downtown; recent
        // enough for the event engine (older fixes than its reorder window are late).
        let t0 = now_ms() - 110_000;
        for i in 0..10 {
            let lon = -88.91 + 0.001 * f64::from(i);
            dev.publish(
                "owntracks/ST1/C02",
                location(40.1, lon, t0 + i64::from(i) * 10_000, 30),
            )
            .await
            .unwrap();
        }
        let url = format!("/api/units/C02/track?from={}&to={}", t0 - 1000, now_ms());
        let track = wait_for_async(Duration::from_secs(20), "ten stored fixes", || async {
            let v = s.get(&url, Some("analyst")).await.json();
            (v["geometry"]["coordinates"].as_array()?.len() == 10).then_some(v)
        })
        .await;
        assert_eq!(track["geometry"]["type"], "LineString");
        let times = track["properties"]["times"].as_array().unwrap();
        assert_eq!(times[0].as_i64(), Some(t0 / 1000 * 1000));
        assert!(times.windows(2).all(|w| w[0].as_i64() < w[1].as_i64()));
        // A narrower window returns fewer fixes; CSV has a header and one line per fix.
        let part = s
            .get(
                &format!(
                    "/api/units/C02/track?from={}&to={}",
                    t0 + 25_000,
                    t0 + 55_000
                ),
                Some("analyst"),
            )
            .await
            .json();
        assert_eq!(part["geometry"]["coordinates"].as_array().unwrap().len(), 3);
        let csv = s.get(&format!("{url}&format=csv"), Some("chief")).await;
        assert_eq!(csv.headers["content-type"], "text/csv");
        assert_eq!(csv.body.lines().count(), 11);
        assert_eq!(
            csv.body.lines().next(),
            Some("unit,station,fix_time,lat,lon,speed_kmh,beat,zone,flags")
        );
        // The same fixes as Parquet (read with polars) and as an Arrow stream (read with
        // arrow-rs): the GeoJSON's times, coordinates, speeds, beats and flags, row by row.
        let coords = track["geometry"]["coordinates"].as_array().unwrap();
        let p = &track["properties"];
        let fixes: Vec<Value> = (0..coords.len())
            .map(|i| {
                json!({
                    "unit": "C02", "station": "ST1", "fix_time": p["times"][i],
                    "lon": coords[i][0], "lat": coords[i][1], "speed_kmh": p["speed_kmh"][i],
                    "beat": p["beat"][i], "flags": p["flags"][i],
                })
            })
            .collect();
        assert_eq!(fixes.len(), 10);
        // The tables also carry `zone`, which the GeoJSON does not.
        let df = parquet_frame(
            &s.get(&format!("{url}&format=parquet"), Some("analyst"))
                .await,
        );
        assert_eq!(frame_column(&df, "zone").len(), 10);
        assert_rows_match(&fixes, (df.height(), df.width() - 1), |n| {
            frame_column(&df, n)
        });
        let b = arrow_batch(&s.get(&format!("{url}&format=arrow"), Some("chief")).await);
        assert_eq!(
            b.schema().field_with_name("fix_time").unwrap().data_type(),
            &DataType::Int64
        );
        assert_rows_match(&fixes, (b.num_rows(), b.num_columns() - 1), |n| {
            batch_column(&b, n)
        });

        // Driving into Downtown (BT01) is an `enter` event of the engine, stored in the events
        // table and served by /api/events, filterable by beat; ST2 does not see it.
        let events_url = format!(
            "/api/events?unit=C02&kind=enter&beat=BT01&from={}",
            t0 - 1000
        );
        let entered = wait_for_async(Duration::from_secs(90), "the enter event", || async {
            let v = s.get(&events_url, Some("command")).await.json();
            (!v.as_array()?.is_empty()).then_some(v)
        })
        .await;
        assert_eq!(entered[0]["fence"], "BT01", "{entered}");
        assert_eq!(entered[0]["layer"], "beat");
        // The events as tables: a column per field, the same values.
        let rows = entered.as_array().unwrap();
        let df = parquet_frame(
            &s.get(&format!("{events_url}&format=parquet"), Some("command"))
                .await,
        );
        assert_rows_match(rows, (df.height(), df.width()), |n| frame_column(&df, n));
        let b = arrow_batch(
            &s.get(&format!("{events_url}&format=arrow"), Some("chief"))
                .await,
        );
        assert_rows_match(rows, (b.num_rows(), b.num_columns()), |n| {
            batch_column(&b, n)
        });
        let scoped = s
            .get("/api/events?unit=C02", Some("command@ST2"))
            .await
            .json();
        assert!(scoped.as_array().unwrap().is_empty(), "{scoped}");

        // Who was near the fifth fix at its time: C02, nobody else.
        let t = t0 + 4 * 10_000;
        let near = s
            .get(
                &format!("/api/at?lat=40.1&lon=-88.906&t={t}&radius=100&window=30"),
                Some("analyst"),
            )
            .await
            .json();
        let f = near["features"].as_array().unwrap();
        assert_eq!(f.len(), 1, "{near}");
        assert_eq!(f[0]["properties"]["unit"], "C02");
        assert_eq!(
            f[0]["properties"]["fix_time"].as_i64(),
            Some(t / 1000 * 1000)
        );
        // As a table: the properties plus the point's `lat` and `lon`.
        let mut row = f[0]["properties"].clone();
        row["lon"] = f[0]["geometry"]["coordinates"][0].clone();
        row["lat"] = f[0]["geometry"]["coordinates"][1].clone();
        let at_url = format!("/api/at?lat=40.1&lon=-88.906&t={t}&radius=100&window=30");
        let b = arrow_batch(
            &s.get(&format!("{at_url}&format=arrow"), Some("analyst"))
                .await,
        );
        assert_rows_match(&[row.clone()], (b.num_rows(), b.num_columns()), |n| {
            batch_column(&b, n)
        });
        let df = parquet_frame(
            &s.get(&format!("{at_url}&format=parquet"), Some("chief"))
                .await,
        );
        assert_rows_match(&[row], (df.height(), df.width()), |n| frame_column(&df, n));
        let far = s
            .get(
                &format!("/api/at?lat=40.2&lon=-88.5&t={t}"),
                Some("analyst"),
            )
            .await
            .json();
        assert!(far["features"].as_array().unwrap().is_empty());
        // An ST2 token does not see ST1's unit there.
        let scoped = s
            .get(
                &format!("/api/at?lat=40.1&lon=-88.906&t={t}&radius=100"),
                Some("analyst@ST2"),
            )
            .await
            .json();
        assert!(scoped["features"].as_array().unwrap().is_empty());

        // Fences: the county's layers; ST2 gets only its beats (plus shared county and roads).
        let all = s.get("/api/fences", Some("command")).await;
        assert_eq!(all.headers["content-type"], "application/geo+json");
        let count = |v: &Value, layer: &str| {
            v["features"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["properties"]["layer"] == layer)
                .count()
        };
        let all = all.json();
        assert_eq!(
            (
                count(&all, "beat"),
                count(&all, "zone"),
                count(&all, "station")
            ),
            (12, 6, 4)
        );
        let st2 = s.get("/api/fences", Some("command@ST2")).await.json();
        assert_eq!((count(&st2, "beat"), count(&st2, "station")), (2, 1));
        let beats = s.get("/api/fences?layer=beat", Some("chief")).await.json();
        assert_eq!(beats["features"].as_array().unwrap().len(), 12);
        s.stop().await;
    });
}

/// Runs `patrol token new` and returns (token, config lines).
fn token_new(args: &[&str]) -> (String, String) {
    let out = crate::support::patrol()
        .args(["token", "new"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .unwrap()
        .to_owned();
    let lines: String = text
        .lines()
        .filter(|l| !l.starts_with("token: "))
        .map(|l| format!("{l}\n"))
        .collect();
    (token, lines)
}

#[test]
fn token_new_prints_lines_that_serve_accepts() {
    let (chief, chief_lines) = token_new(&["--role", "chief", "--name", "county chief"]);
    let (analyst, analyst_lines) = token_new(&["--role", "analyst", "--station", "ST3"]);
    assert!(
        !chief_lines.contains(&chief),
        "the config holds the hash, not the token"
    );
    assert!(
        analyst_lines.contains("station = \"ST3\""),
        "{analyst_lines}"
    );
    let bad = crate::support::patrol()
        .args(["token", "new", "--role", "boss"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("boss"));

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, format!("{chief_lines}{analyst_lines}")).unwrap();
    let (http, mqtt) = (devkit::testkit::free_port(), devkit::testkit::free_port());
    let child = crate::support::patrol()
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--fixtures")
        .arg(devkit::testkit::fixtures())
        .arg("--store")
        .arg(dir.path().join("store"))
        .args(["--http", &format!("127.0.0.1:{http}")])
        .args(["--mqtt", &format!("mqtt://127.0.0.1:{mqtt}")])
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _child = crate::support::Reaper(child);
    devkit::testkit::wait_listening(http, Duration::from_secs(30));
    let get = |path: &str, t: &str| {
        devkit::testkit::http::get_blocking(http, path, Some(t))
            .unwrap()
            .status
    };
    assert_eq!(get("/api/units", &chief), 200);
    assert_eq!(
        get("/api/units", &analyst),
        403,
        "analysts get no live view"
    );
    assert_eq!(get("/api/fences?station=ST3", &analyst), 200);
    assert_eq!(get("/api/fences?station=ST1", &analyst), 403);
    assert_eq!(get("/api/units", "ptk_wrong"), 401);

    // A malformed hash is refused at startup, naming the entry.
    std::fs::write(&config, "[[tokens]]\nhash = \"abc\"\nrole = \"chief\"\n").unwrap();
    let out = crate::support::patrol()
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--fixtures")
        .arg(devkit::testkit::fixtures())
        .arg("--store")
        .arg(dir.path().join("store2"))
        .args([
            "--http",
            "127.0.0.1:0",
            "--mqtt",
            &format!("mqtt://127.0.0.1:{mqtt}"),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("entry 1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn analytics_answers_like_patrol_analyze_and_caches() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // Two days of the fixture fleet, written straight into the store.
        let s = Server::start_with(&["--days", "2", "--start", "2026-11-02"]).await;
        let url = "/api/analytics/gaps?from=2026-11-02&to=2026-11-04&top=10";
        let first = s.get(url, Some("analyst")).await;
        assert_eq!(first.status, 200, "{}", first.body);
        let fc = first.json();
        let features = fc["features"].as_array().unwrap();
        assert_eq!(features.len(), 10, "top=10 gaps");
        // Each gap is an H3 hexagon with the job's columns and the map's colour value.
        let f = &features[0];
        assert_eq!(f["geometry"]["type"], "Polygon");
        assert_eq!(f["geometry"]["coordinates"][0].as_array().unwrap().len(), 7);
        assert_eq!(f["properties"]["rank"], 1);
        assert!(f["properties"]["value"].is_number());
        // The same question again is the same answer (from the cache), in every format.
        let again = s.get(url, Some("chief")).await;
        assert_eq!(again.body, first.body);
        let rows = s
            .get(&format!("{url}&format=json"), Some("analyst"))
            .await
            .json();
        assert_eq!(rows.as_array().unwrap().len(), 10);
        let csv = s.get(&format!("{url}&format=csv"), Some("analyst")).await;
        assert_eq!(csv.body.lines().count(), 11);
        let header = csv::Reader::from_reader(csv.body.as_bytes())
            .headers()
            .unwrap()
            .clone();
        assert!(
            header.iter().any(|h| h == "rank") && header.iter().any(|h| h == "gap"),
            "{header:?}"
        );
        // Parquet (read with polars) and Arrow (read with arrow-rs) hold the JSON rows in the
        // job's own types: the H3 cell an unsigned integer, the gap a decimal.
        let json_rows = rows.as_array().unwrap();
        let df = parquet_frame(
            &s.get(&format!("{url}&format=parquet"), Some("analyst"))
                .await,
        );
        assert_rows_match(json_rows, (df.height(), df.width()), |n| {
            frame_column(&df, n)
        });
        assert_eq!(
            df.column("cell").unwrap().dtype(),
            &polars::prelude::DataType::UInt64
        );
        assert_eq!(
            df.column("gap").unwrap().dtype(),
            &polars::prelude::DataType::Float64
        );
        let b = arrow_batch(&s.get(&format!("{url}&format=arrow"), Some("chief")).await);
        assert_rows_match(json_rows, (b.num_rows(), b.num_columns()), |n| {
            batch_column(&b, n)
        });
        // A station sees only the gaps in its own beats.
        let st2 = s.get(url, Some("analyst@ST2")).await.json();
        for g in st2["features"].as_array().unwrap() {
            let beat = g["properties"]["beat"].as_str().unwrap_or("");
            assert!(beat == "BT08" || beat == "BT09", "ST2 saw {beat}");
        }
        // Bad spans are the caller's error, named.
        let r = s
            .get(
                "/api/analytics/gaps?from=2026-11-04&to=2026-11-02",
                Some("analyst"),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        let r = s
            .get(
                "/api/analytics/gaps?from=soon&to=2026-11-02",
                Some("analyst"),
            )
            .await;
        assert!(r.status == 400 && r.body.contains("`from`"), "{}", r.body);
        s.stop().await;
    });
}
