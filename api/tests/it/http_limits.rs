//! The HTTP API under hostile and heavy requests (issue 17): ranges that used to pin a core,
//! analytics questions that cannot be answered in time, one time grammar on every route, the
//! error shape on every status (414 and 431 included), the security headers, and the per-token
//! caps on live streams and analytics jobs. What hyper and the socket take part in (the 414
//! and 431 refusals, the live streams) goes over a socket; the rest to the router in-process.

use std::collections::HashMap;
use std::time::Duration;

use devkit::testkit::http::{Request, Response};
use devkit::testkit::wait_for_async;
use serde_json::Value;

use crate::web::{Server, sse};

/// Sends `request` to the server on `port` and reads the whole answer.
async fn send(port: u16, request: Request) -> Response {
    request.send(port).await.unwrap()
}

/// `body` is the error shape with this code, and its message contains `needle`.
fn assert_error(status: u16, body: &str, want: u16, code: &str, needle: &str, what: &str) {
    assert_eq!(status, want, "{what}: {body}");
    let j: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: {e}: {body:?}"));
    assert_eq!(j["error"], code, "{what}: {j}");
    assert_eq!(j.as_object().unwrap().len(), 2, "{what}: {j}");
    let message = j["message"].as_str().unwrap();
    assert!(message.contains(needle), "{what}: {message}");
}

/// The requests of the issue came back only when the server was killed: the range's length
/// overflowed and the day loop ran over 2e11 days. Now each is a 400 naming the parameter,
/// answered at once.
#[test]
fn hostile_ranges_are_refused_at_once() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = Server::start().await;
        let min = i64::MIN;
        let max = i64::MAX;
        let cases = [
            (format!("/api/events?from={min}"), "command@ST2", "`from`"),
            (
                format!("/api/units/C01/track?from={min}&to={max}"),
                "analyst",
                "`from`",
            ),
            (format!("/api/units/C01/track?to={max}"), "chief", "`to`"),
            (format!("/api/events?to={min}"), "command", "`to`"),
            (
                format!("/api/at?lat=40.1&lon=-88.9&t={max}&window=3600"),
                "analyst",
                "`t`",
            ),
            (
                "/api/at?lat=40.1&lon=-88.9&t=2026-11-02&window=3601".to_owned(),
                "analyst",
                "`window`",
            ),
            (
                "/api/events?from=0001-01-01T00:00:00Z&to=2026-11-02".to_owned(),
                "command",
                "`from`",
            ),
            (
                format!("/api/analytics/gaps?from={min}&to={max}"),
                "analyst",
                "`from`",
            ),
            (
                "/api/units/C01/track?from=2026-11-01&to=2026-11-09".to_owned(),
                "analyst",
                "7 days",
            ),
            (
                "/api/events?from=2026-10-01&to=2026-11-02".to_owned(),
                "command",
                "31 days",
            ),
        ];
        // A refusal is an answer before any read starts; the old code never answered (the
        // limit only guards the test against that hang, it measures nothing).
        for (url, token, needle) in &cases {
            let r = tokio::time::timeout(Duration::from_secs(60), s.get(url, Some(token)))
                .await
                .unwrap_or_else(|_| panic!("{url}: no answer within 60 s"));
            assert_error(r.status, &r.body, 400, "bad_parameter", needle, url);
        }
        s.stop().await;
    });
}

/// Analytics questions that cannot be answered in time are refused before any job runs, with
/// a 400 naming the parameter and its limit; `from == to` and `res=0` were 500s, and `res=15`
/// was blamed on `from`.
#[test]
fn analytics_refuse_what_cannot_be_answered_in_time() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = Server::start().await;
        let cases = [
            (
                "/api/analytics/response?from=2026-11-02&to=2026-11-03&res=11",
                "`res`: 11 is outside 6..=9",
            ),
            (
                "/api/analytics/response?from=2026-11-02&to=2026-11-02",
                "`to`: must be after `from`",
            ),
            (
                "/api/analytics/response?from=2026-11-02&to=2026-11-03&res=0",
                "`res`: 0 is outside 6..=9",
            ),
            (
                "/api/analytics/gaps?from=2026-11-02&to=2026-11-03&res=15",
                "`res`: 15 is outside 6..=10",
            ),
            (
                "/api/analytics/dosage?from=2026-10-01&to=2026-11-03",
                "`to`: the span may be at most 31 days",
            ),
            (
                "/api/analytics/gaps?from=2026-11-02&to=2026-11-03&top=0",
                "`top`: 0 is outside 1..=1000",
            ),
            (
                "/api/analytics/koper?from=2026-11-02&to=2026-11-03&format=xlsx",
                "`format`",
            ),
        ];
        for (url, needle) in cases {
            let r = s.get(url, Some("analyst@ST2")).await;
            assert_error(r.status, &r.body, 400, "bad_parameter", needle, url);
        }
        // The limits are in the document, as schema limits.
        let doc = s.get("/api/openapi.json", Some("analyst")).await.json();
        let res = |path: &str| {
            doc["paths"][path]["get"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "res")
                .unwrap()["schema"]
                .clone()
        };
        assert_eq!(
            (
                res("/api/analytics/response")["minimum"].as_i64(),
                res("/api/analytics/response")["maximum"].as_i64()
            ),
            (Some(6), Some(9))
        );
        assert_eq!(res("/api/analytics/gaps")["maximum"].as_i64(), Some(10));
        s.stop().await;
    });
}

/// Times take one grammar on every route: epoch ms, RFC 3339 or a local date (events and
/// track refused dates).
#[test]
fn every_route_takes_the_same_times() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = Server::start().await;
        for t in ["2026-11-02", "2026-11-02T06:00:00Z", "1793599200000"] {
            for url in [
                format!("/api/events?from={t}&to=2026-11-03"),
                format!("/api/units/C01/track?from={t}&to=2026-11-03"),
                format!("/api/at?lat=40.1&lon=-88.9&t={t}"),
            ] {
                let r = s.get(&url, Some("chief")).await;
                assert_eq!(r.status, 200, "{url}: {}", r.body);
            }
        }
        // A local date is local midnight: Chicago is six hours behind UTC in November.
        let track = s
            .get(
                "/api/units/C01/track?from=2026-11-02&to=2026-11-03",
                Some("analyst"),
            )
            .await
            .json();
        assert_eq!(
            track["properties"]["from"].as_i64(),
            Some(1_793_599_200_000)
        );
        s.stop().await;
    });
}

/// Every status has the error shape, 414 and 431 included, and every answer carries the
/// security headers; answers with locations are never stored by a cache.
#[test]
fn error_shape_and_security_headers_on_every_answer() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = Server::start().await;
        let port = s.listen().await;
        let tok = s.tok("command").to_owned();
        let long = format!("/api/units?unit={}", "C01,".repeat(2500));
        let r = send(port, Request::get(&long).bearer(&tok)).await;
        assert_error(
            r.status,
            &r.body,
            414,
            "uri_too_long",
            "8192",
            "a 10 KB target",
        );
        let big = Request::get("/api/units")
            .bearer(&tok)
            .header("X-Padding", &"p".repeat(20_000));
        let r = send(port, big).await;
        assert_error(
            r.status,
            &r.body,
            431,
            "headers_too_large",
            "16384",
            "20 KB of headers",
        );
        let many = (0..70).fold(Request::get("/api/units").bearer(&tok), |r, i| {
            r.header(&format!("X-H{i}"), "v")
        });
        let r = send(port, many).await;
        assert_error(
            r.status,
            &r.body,
            431,
            "headers_too_large",
            "64 fields",
            "70 headers",
        );
        let r = send(
            port,
            Request::get("/api/units/%FF/track").bearer(s.tok("analyst")),
        )
        .await;
        assert_error(
            r.status,
            &r.body,
            400,
            "bad_parameter",
            "`id`",
            "a path that is not UTF-8",
        );

        let security = |h: &HashMap<String, String>, what: &str| {
            assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
            assert_eq!(h["x-frame-options"], "DENY", "{what}");
            assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
            let csp = &h["content-security-policy"];
            assert!(
                csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
                "{what}: {csp}"
            );
        };
        for (url, token) in [
            ("/api/units", "command"),
            ("/api/events", "command"),
            ("/api/units/C01/track", "analyst"),
            ("/api/at?lat=40.1&lon=-88.9&t=2026-11-02", "analyst"),
            (
                "/api/analytics/hotspots?from=2026-11-02&to=2026-11-03",
                "analyst",
            ),
            ("/api/units", "analyst"),
            ("/api/nope", "admin"),
        ] {
            let r = s.get(url, Some(token)).await;
            security(&r.headers, url);
            assert_eq!(r.headers["cache-control"], "no-store", "{url}");
        }
        let r = send(port, Request::get(&long).bearer(&tok)).await;
        security(&r.headers, "414");
        // The map page keeps its own caching, under the same policy.
        let page = s.get("/", None).await;
        security(&page.headers, "/");
        assert_eq!(page.headers["cache-control"], "no-cache");
        let live = sse(port, "/api/live", s.tok("command")).await;
        security(&live.headers, "/api/live");
        assert_eq!(live.headers["cache-control"], "no-store");

        // Each status seen above is documented for its route, with the error schema.
        let doc = s.get("/api/openapi.json", Some("admin")).await.json();
        let statuses = |path: &str| -> Vec<String> {
            doc["paths"][path]["get"]["responses"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        };
        for (path, want) in [
            ("/api/units", &["400", "401", "403", "414", "431", "504"][..]),
            ("/api/units/{id}/track", &["400", "404", "414", "431"]),
            ("/api/live", &["429"]),
            ("/api/analytics/gaps", &["404", "429", "503", "504"]),
            ("/health", &["414", "431"]),
        ] {
            let got = statuses(path);
            for w in want {
                assert!(got.iter().any(|g| g == w), "{path} lacks {w}: {got:?}");
            }
        }
        assert_eq!(
            doc["paths"]["/api/live"]["get"]["responses"]["429"]["content"]["application/json"]
                ["schema"]["$ref"],
            "#/components/schemas/Error"
        );
        s.stop().await;
    });
}

/// A token may hold at most 8 live streams; the ninth is a 429 with Retry-After, other tokens
/// are not affected, and a closed stream gives its slot back.
#[test]
fn live_streams_are_capped_per_token() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = Server::start().await;
        let port = s.listen().await;
        let mut open = Vec::new();
        for i in 0..8 {
            let stream = sse(port, "/api/live", s.tok("command")).await;
            assert_eq!(stream.status, 200, "stream {i}");
            open.push(stream);
        }
        let ninth = send(port, Request::get("/api/live").bearer(s.tok("command"))).await;
        assert_error(
            ninth.status,
            &ninth.body,
            429,
            "too_many_requests",
            "8 live streams",
            "ninth",
        );
        assert_eq!(ninth.headers["retry-after"], "5");
        let other = sse(port, "/api/live", s.tok("command@ST2")).await;
        assert_eq!(other.status, 200, "another token has its own streams");
        drop(open.pop());
        wait_for_async(
            Duration::from_secs(10),
            "the closed stream's slot",
            || async {
                let again = sse(port, "/api/live", s.tok("command")).await;
                (again.status == 200).then_some(again)
            },
        )
        .await;
        s.stop().await;
    });
}

/// One analytics job per token: two questions of one token at once (each a job of seconds)
/// get one answer and one 429 with Retry-After, not a place in the queue; asked again, the
/// refused one is answered, and the first comes from the cache.
#[test]
fn analytics_jobs_are_limited_per_token() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = Server::start_with(&["--days", "2", "--start", "2026-11-02"]).await;
        let urls = [
            "/api/analytics/gaps?from=2026-11-02&to=2026-11-04&top=3",
            "/api/analytics/coverage?from=2026-11-02&to=2026-11-04",
        ];
        // Both at once: the first to reach its handler takes the token's slot.
        let (a, b) = tokio::join!(
            s.get(urls[0], Some("analyst")),
            s.get(urls[1], Some("analyst"))
        );
        let (done, refused, url) = match (a.status, b.status) {
            (200, 429) => (a, b, urls[1]),
            (429, 200) => (b, a, urls[0]),
            other => panic!(
                "one answer and one 429 expected, got {other:?}: {} {}",
                a.body, b.body
            ),
        };
        assert_error(
            refused.status,
            &refused.body,
            429,
            "too_many_requests",
            "analytics job",
            url,
        );
        assert_eq!(refused.headers["retry-after"], "5");
        assert!(done.headers["content-type"].starts_with("application/geo+json"));
        let again = s.get(url, Some("analyst")).await;
        assert_eq!(again.status, 200, "{}", again.body);
        s.stop().await;
    });
}
