//! A DevTools client for headless Chromium: a few JSON-RPC calls over a minimal WebSocket
//! (RFC 6455) written here on a std `TcpStream`, so the tests add no dependency. Tests that
//! need a browser are `#[ignore = "needs chromium"]` (CI's extended step runs them) and fail
//! when no Chromium is installed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use devkit::testkit::http::{get_blocking, split_head};
use devkit::testkit::{poll_until, wait_for, wait_listening};
use serde_json::{Value, json};

use crate::support::Reaper;

/// A WebSocket client, just enough for DevTools: text frames out (masked), frames in.
struct Ws {
    s: TcpStream,
}

impl Ws {
    fn connect(url: &str) -> Ws {
        let rest = url.strip_prefix("ws://").expect("a ws:// URL");
        let (host, path) = rest.split_once('/').unwrap();
        let mut s = TcpStream::connect(host).unwrap();
        write!(
            s,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: cGF0cm9sLWJyb3dzZXJ0ZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        // Byte by byte: what follows the head is the WebSocket's, not HTTP's.
        let mut raw = Vec::new();
        let mut b = [0u8; 1];
        let head = loop {
            if let Some((head, _)) = split_head(&raw).unwrap() {
                break head;
            }
            s.read_exact(&mut b).unwrap();
            raw.push(b[0]);
        };
        assert_eq!(head.status, 101, "WebSocket upgrade refused: {head:?}");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Ws { s }
    }

    fn send(&mut self, text: &str) {
        let data = text.as_bytes();
        let mut frame = vec![0x81u8];
        match data.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n < 65536 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x5a, 0x13, 0xc7, 0x2e];
        frame.extend_from_slice(&mask);
        frame.extend(data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.s.write_all(&frame).unwrap();
    }

    /// The next complete text message.
    fn recv(&mut self) -> String {
        let mut message = Vec::new();
        loop {
            let mut h = [0u8; 2];
            self.s.read_exact(&mut h).unwrap();
            let (fin, opcode) = (h[0] & 0x80 != 0, h[0] & 0x0f);
            let len = match h[1] & 0x7f {
                126 => {
                    let mut l = [0u8; 2];
                    self.s.read_exact(&mut l).unwrap();
                    u64::from(u16::from_be_bytes(l))
                }
                127 => {
                    let mut l = [0u8; 8];
                    self.s.read_exact(&mut l).unwrap();
                    u64::from_be_bytes(l)
                }
                n => u64::from(n),
            };
            let mut payload = vec![0u8; len as usize];
            self.s.read_exact(&mut payload).unwrap();
            match opcode {
                0x9 => continue, // ping: DevTools does not send them; ignore
                0x8 => panic!("DevTools closed the connection"),
                _ => message.extend_from_slice(&payload),
            }
            if fin {
                return String::from_utf8(message).unwrap();
            }
        }
    }
}

/// A DevTools session on one page, collecting console errors as they arrive.
pub(crate) struct Page {
    ws: Ws,
    next_id: u64,
    /// Console errors and uncaught exceptions seen so far.
    pub(crate) errors: Vec<String>,
}

impl Page {
    pub(crate) fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.ws
            .send(&json!({"id": id, "method": method, "params": params}).to_string());
        loop {
            let msg: Value = serde_json::from_str(&self.ws.recv()).unwrap();
            if msg["id"] == id {
                assert!(msg.get("error").is_none(), "{method}: {msg}");
                return msg["result"].clone();
            }
            self.note(&msg);
        }
    }

    fn note(&mut self, msg: &Value) {
        let p = &msg["params"];
        match msg["method"].as_str() {
            Some("Runtime.exceptionThrown") => self
                .errors
                .push(format!("exception: {}", p["exceptionDetails"])),
            Some("Runtime.consoleAPICalled") if p["type"] == "error" => {
                self.errors.push(format!("console.error: {}", p["args"]));
            }
            Some("Log.entryAdded") if p["entry"]["level"] == "error" => {
                self.errors.push(format!("log: {}", p["entry"]));
            }
            _ => {}
        }
    }

    /// Evaluates `expr` in the page and returns its value.
    pub(crate) fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Polls `expr` until it is `true`; on time-out, says what the page shows.
    pub(crate) fn wait(&mut self, what: &str, expr: &str, limit: Duration) {
        if !poll_until(limit, || self.eval(expr) == Value::Bool(true)) {
            let stats = self.eval(
                "JSON.stringify({href: location.href, ready: document.readyState, \
                 status: document.getElementById('status') && document.getElementById('status').textContent, \
                 stats: window.patrol && window.patrol.stats()})",
            );
            panic!("timed out: {what}; page {stats}; errors {:#?}", self.errors);
        }
    }

    /// Waits until the page has drawn two more animation frames: what the last input
    /// changed is on the canvas (for a screenshot).
    pub(crate) fn frames_drawn(&mut self) {
        self.eval(
            "new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))",
        );
    }

    pub(crate) fn screenshot(&mut self, path: &Path) {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64_decode(r["data"].as_str().unwrap());
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(path, png).unwrap();
    }

    pub(crate) fn click(&mut self, x: f64, y: f64) {
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }
}

pub(crate) fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = s
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let v: Vec<u32> = chunk.iter().map(|c| u32::from(val(*c))).collect();
        let n = v
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, x)| acc | x << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// A DevTools JSON answer (DevTools keeps the connection open: the client reads
/// `Content-Length` bytes).
fn http_json(port: u16, path: &str) -> Value {
    get_blocking(port, path, None).unwrap().json()
}

/// The Chromium binary (`PATROL_CHROMIUM`, or `chromium` on the PATH).
///
/// # Panics
/// When there is none: a test that needs the browser fails rather than passing unchecked.
pub(crate) fn chromium() -> PathBuf {
    api::report::chromium().unwrap_or_else(|| {
        panic!(
            "this test needs Chromium: install it (apt-get install -y chromium) or set \
             PATROL_CHROMIUM to its binary"
        )
    })
}

/// A running headless Chromium and a DevTools session on its page.
pub(crate) struct Browser {
    /// The page.
    pub(crate) page: Page,
    _browser: Reaper,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts `chrome` headless with a window of `width` x `height` and opens DevTools on its
    /// blank page (runtime, log and page domains enabled).
    pub(crate) fn launch(chrome: &Path, width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let browser = Command::new(chrome)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                &format!("--window-size={width},{height}"),
                "--remote-allow-origins=*",
                // Port 0: Chromium picks one and writes it to DevToolsActivePort (no port race).
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let browser = Reaper(browser);
        let active = profile.path().join("DevToolsActivePort");
        let devtools: u16 = wait_for(Duration::from_secs(90), "Chromium's DevTools port", || {
            let text = std::fs::read_to_string(&active).ok()?;
            text.lines().next()?.trim().parse().ok()
        });
        wait_listening(devtools, Duration::from_secs(30));
        let ws_url = wait_for(Duration::from_secs(30), "a page target", || {
            let targets = http_json(devtools, "/json/list");
            let page = targets.as_array()?.iter().find(|t| t["type"] == "page")?;
            Some(page["webSocketDebuggerUrl"].as_str()?.to_owned())
        });
        let mut page = Page {
            ws: Ws::connect(&ws_url),
            next_id: 0,
            errors: Vec::new(),
        };
        page.call("Runtime.enable", json!({}));
        page.call("Log.enable", json!({}));
        page.call("Page.enable", json!({}));
        Browser {
            page,
            _browser: browser,
            _profile: profile,
        }
    }
}
