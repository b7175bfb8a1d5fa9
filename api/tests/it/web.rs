//! Helpers for the HTTP API tests: an in-process server (embedded broker, real ingest, real
//! axum on a free port) with a token per role and scope, a device publisher, and a small
//! HTTP/1.1 client.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use api::config::TokenConfig;
use api::http::auth::{self, Role, Tokens};
use api::wiring::{self, ApiSettings, IngestSettings};
use devkit::broker;
use devkit::testkit::{fixtures, free_port};
use ingest::source::mqtt::{MqttSourceConfig, Publisher, PublisherConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A running in-process `patrol` (broker + ingest + API).
pub(crate) struct Server {
    pub(crate) http: u16,
    pub(crate) mqtt: u16,
    /// Token by name: a role (`chief`) for county-wide tokens, `role@ST2` for scoped ones.
    pub(crate) tokens: HashMap<String, String>,
    _store: tempfile::TempDir,
    tracker: TaskTracker,
    token: CancellationToken,
}

impl Server {
    /// Starts everything on free ports, with a fast WAL flush so history sees pings quickly.
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
                fixtures: fixtures(),
                store: store.path().to_owned(),
                mqtt: MqttSourceConfig::new("127.0.0.1", mqtt, &format!("it-{mqtt}")),
                flush_interval: Duration::from_millis(300),
                retention: None,
                node: None,
                channels: ingest::pipeline::ChannelConfig::DEFAULT,
                sweep_every: ingest::sink::live::SWEEP_EVERY,
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
        let bound = wiring::serve_http(([127, 0, 0, 1], 0).into(), api, &running, &tracker, &token)
            .await
            .unwrap();
        // The source subscribes right after connecting; give it a moment.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Server {
            http: bound.port(),
            mqtt,
            tokens: names,
            _store: store,
            tracker,
            token,
        }
    }

    /// The token called `name`.
    pub(crate) fn tok(&self, name: &str) -> &str {
        &self.tokens[name]
    }

    /// GET with the token called `name` (or none).
    pub(crate) async fn get(&self, path: &str, name: Option<&str>) -> Resp {
        get(self.http, path, name.map(|n| self.tok(n))).await
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

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    wiring::now_ms()
}

/// An OwnTracks location payload.
pub(crate) fn location(lat: f64, lon: f64, t_ms: i64, vel_kmh: u32) -> Vec<u8> {
    format!(
        r#"{{"_type":"location","lat":{lat},"lon":{lon},"tst":{},"acc":8,"vel":{vel_kmh}}}"#,
        t_ms / 1000
    )
    .into_bytes()
}

/// Polls `f` until it returns `Some`, or fails after `limit`.
pub(crate) async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A response.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    /// Header lines, lower-cased names.
    pub(crate) headers: HashMap<String, String>,
    /// The body as text (invalid UTF-8 replaced).
    pub(crate) body: String,
    /// The body as sent (for Parquet and Arrow answers).
    pub(crate) bytes: Vec<u8>,
}

impl Resp {
    /// The body as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

async fn send(port: u16, path: &str, token: Option<&str>) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    s
}

/// The status and the headers (names lower-cased) of an HTTP/1.1 response head.
pub(crate) fn parse_head(head: &str) -> (u16, HashMap<String, String>) {
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers)
}

/// GET `path`, reading the whole response (not for streams).
pub(crate) async fn get(port: u16, path: &str, token: Option<&str>) -> Resp {
    let mut s = send(port, path, token).await;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut raw))
        .await
        .expect("response within 30 s")
        .unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let (status, headers) = parse_head(&String::from_utf8_lossy(&raw[..split]));
    let body = raw.get(split + 4..).unwrap_or_default();
    let bytes = if headers
        .get("transfer-encoding")
        .is_some_and(|v| v == "chunked")
    {
        dechunk(body)
    } else {
        body.to_vec()
    };
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        bytes,
    }
}

fn dechunk(mut s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = s.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&s[..eol]);
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        let rest = &s[eol + 2..];
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        s = rest[n..].strip_prefix(b"\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// An open Server-Sent Events stream.
pub(crate) struct Sse {
    stream: TcpStream,
    pub(crate) status: u16,
    pub(crate) headers: HashMap<String, String>,
    buf: String,
}

impl Sse {
    /// Opens `path` and reads the response head (the body stays open).
    pub(crate) async fn open(port: u16, path: &str, token: Option<&str>) -> Sse {
        let mut stream = send(port, path, token).await;
        let mut raw = Vec::new();
        let mut byte = [0u8; 1];
        while !raw.ends_with(b"\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte))
                .await
                .expect("response head within 10 s")
                .unwrap();
            assert!(n > 0, "connection closed before the head");
            raw.push(byte[0]);
        }
        let (status, headers) = parse_head(&String::from_utf8_lossy(&raw));
        Sse {
            stream,
            status,
            headers,
            buf: String::new(),
        }
    }

    /// The next `(event, data)` within `limit`, or `None` on timeout or close.
    pub(crate) async fn next(&mut self, limit: Duration) -> Option<(String, String)> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            // Events end with a blank line; chunk framing lines are skipped by the parser.
            if let Some(ev) = self.take_event() {
                return Some(ev);
            }
            let mut chunk = [0u8; 8192];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    }

    fn take_event(&mut self) -> Option<(String, String)> {
        let (mut event, mut data) = (None, None);
        let mut consumed = 0;
        for line in self.buf.split_inclusive('\n') {
            consumed += line.len();
            let l = line.trim_end_matches(['\r', '\n']);
            if let Some(e) = l.strip_prefix("event:") {
                event = Some(e.trim().to_owned());
            } else if let Some(d) = l.strip_prefix("data:") {
                data = Some(d.trim().to_owned());
            } else if l.is_empty() && data.is_some() && line.ends_with('\n') {
                self.buf.drain(..consumed);
                return Some((
                    event.unwrap_or_else(|| "message".into()),
                    data.unwrap_or_default(),
                ));
            }
        }
        None
    }

    /// The next event named `kind` whose data contains `needle`.
    pub(crate) async fn wait_for(
        &mut self,
        kind: &str,
        needle: &str,
        limit: Duration,
    ) -> Option<String> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            match self.next(deadline - Instant::now()).await {
                Some((k, d)) if k == kind && d.contains(needle) => return Some(d),
                Some(_) => {}
                None => return None,
            }
        }
        None
    }
}
