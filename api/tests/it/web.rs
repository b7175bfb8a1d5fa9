//! Helpers for the HTTP API tests: an in-process `patrol` (embedded broker, real ingest, the
//! real router) with a token per role and scope, and a device publisher. Requests go to the
//! router in-process (`tower::ServiceExt::oneshot`); a test of what happens on the wire (the
//! live stream, hyper's framing, per-connection limits) serves it on a socket with
//! [`Server::listen`] and talks to it with the test kit's HTTP/SSE client.

use std::collections::HashMap;
use std::time::Duration;

use api::http::auth::TokenConfig;
use api::http::auth::{self, Role, Tokens};
use api::wiring::{self, ApiSettings, IngestSettings};
use axum::Router;
use axum::body::Body;
use devkit::broker;
use devkit::testkit::http::Response;
use devkit::testkit::sse::SseStream;
use devkit::testkit::{fixtures, free_port, wait_until_async};
use ingest::source::mqtt::{Publisher, PublisherConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// A running in-process `patrol` (broker + ingest + the API's router).
pub(crate) struct Server {
    router: Router,
    pub(crate) mqtt: u16,
    /// Token by name: a role (`chief`) for county-wide tokens, `role@ST2` for scoped ones.
    pub(crate) tokens: HashMap<String, String>,
    _store: tempfile::TempDir,
    tracker: TaskTracker,
    token: CancellationToken,
}

impl Server {
    /// Starts everything, with a fast WAL flush so history sees pings quickly, and returns
    /// once ingest's subscription is in place (what devices publish from then on arrives).
    pub(crate) async fn start() -> Server {
        Server::start_with(&[]).await
    }

    /// Like [`Server::start`], with the store first filled by `patrol generate ARGS`.
    pub(crate) async fn start_with(generate: &[&str]) -> Server {
        let mqtt = free_port();
        broker::start_embedded(([127, 0, 0, 1], mqtt).into(), 1000).unwrap();
        let store = tempfile::tempdir().unwrap();
        if !generate.is_empty() {
            let out = crate::support::patrol()
                .arg("generate")
                .arg("--fixtures")
                .arg(fixtures())
                .arg("--store")
                .arg(store.path())
                .args(generate)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let tracker = TaskTracker::new();
        let token = CancellationToken::new();
        let running = wiring::start_ingest(
            IngestSettings {
                // Parquet soon after the WAL, so history routes see what was just sent.
                flush_interval: Duration::from_millis(300),
                ..IngestSettings::local(
                    fixtures(),
                    store.path().to_owned(),
                    mqtt,
                    &format!("it-{mqtt}"),
                )
            },
            &tracker,
            &token,
        )
        .unwrap();
        let mut names = HashMap::new();
        let mut cfg = Vec::new();
        for role in Role::ALL {
            for station in [None, Some("ST2")] {
                let (t, hash) = auth::new_token();
                let name = match station {
                    None => role.to_string(),
                    Some(s) => format!("{role}@{s}"),
                };
                cfg.push(TokenConfig {
                    hash,
                    role,
                    station: station.map(Into::into),
                    name: Some(name.clone()),
                });
                names.insert(name, t);
            }
        }
        let tokens = Tokens::from_config(&cfg, &["ST1", "ST2", "ST3", "ST4"]).unwrap();
        let api = ApiSettings {
            tokens,
            store: store.path().to_owned(),
        };
        let router = wiring::router(api, &running, &tracker, &token).unwrap();
        let source = running.source.clone();
        wait_until_async(
            Duration::from_secs(30),
            "ingest's subscription at the embedded broker",
            || source.subscribed.load(std::sync::atomic::Ordering::Relaxed),
        )
        .await;
        Server {
            router,
            mqtt,
            tokens: names,
            _store: store,
            tracker,
            token,
        }
    }

    /// Serves the router on a free loopback port until [`Server::stop`], and returns the
    /// port.
    pub(crate) async fn listen(&self) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (app, stop) = (self.router.clone(), self.token.clone());
        self.tracker.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
                .unwrap();
        });
        port
    }

    /// The token called `name`.
    pub(crate) fn tok(&self, name: &str) -> &str {
        &self.tokens[name]
    }

    /// The router's answer to `GET path` with the bearer token `bearer` (or none), its body
    /// (a stream, for `/api/live`) not read yet.
    async fn call(&self, path: &str, bearer: Option<&str>) -> axum::response::Response {
        let mut req = axum::http::Request::get(path);
        if let Some(t) = bearer {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = req.body(Body::empty()).unwrap();
        self.router.clone().oneshot(req).await.unwrap()
    }

    /// The status of `GET path` with the token called `name` (or none), reading only the
    /// head (for streams).
    pub(crate) async fn status(&self, path: &str, name: Option<&str>) -> u16 {
        let bearer = name.map(|n| self.tok(n));
        self.call(path, bearer).await.status().as_u16()
    }

    /// The router's whole answer to `GET path` with the token called `name` (or none).
    pub(crate) async fn get(&self, path: &str, name: Option<&str>) -> Response {
        self.get_bearer(path, name.map(|n| self.tok(n))).await
    }

    /// The router's whole answer to `GET path` with the bearer token `bearer`, configured or
    /// not.
    pub(crate) async fn get_bearer(&self, path: &str, bearer: Option<&str>) -> Response {
        let resp = self.call(path, bearer).await;
        let mut headers: HashMap<String, String> = HashMap::new();
        for (k, v) in resp.headers() {
            let v = v.to_str().unwrap_or_default();
            headers
                .entry(k.as_str().to_owned())
                .and_modify(|have| {
                    have.push_str(", ");
                    have.push_str(v);
                })
                .or_insert_with(|| v.to_owned());
        }
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        Response::new(status, headers, bytes.to_vec())
    }

    /// A device publisher connected to the embedded broker.
    pub(crate) fn device(&self, id: &str) -> Publisher {
        let (p, _task) = Publisher::connect(&PublisherConfig {
            host: "127.0.0.1".into(),
            port: self.mqtt,
            client_id: id.into(),
            last_will: None,
            credentials: None,
            queue: 100,
        });
        p
    }

    /// Stops ingest and the server.
    pub(crate) async fn stop(self) {
        wiring::stop(&self.tracker, &self.token).await.unwrap();
    }
}

/// Opens the live stream `path` on the server at `port` with `token`, and reads its head.
pub(crate) async fn sse(port: u16, path: &str, token: &str) -> SseStream {
    SseStream::open(port, path, Some(token), Duration::from_secs(10))
        .await
        .unwrap()
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    model::now_ms()
}

/// An OwnTracks location payload.
pub(crate) fn location(lat: f64, lon: f64, t_ms: i64, vel_kmh: u32) -> Vec<u8> {
    format!(
        r#"{{"_type":"location","lat":{lat},"lon":{lon},"tst":{},"acc":8,"vel":{vel_kmh}}}"#,
        t_ms / 1000
    )
    .into_bytes()
}
