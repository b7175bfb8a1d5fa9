//! A small HTTP/1.1 client for tests against a loopback server: one request per connection
//! (`Connection: close`), the answer read until its framing says it is whole (a
//! `Content-Length`, the last chunk of a chunked body, or the end of the connection), so it
//! also reads servers that keep the connection open, such as Chromium's DevTools.
//!
//! The parsers ([`split_head`], [`Dechunker`], [`ResponseParser`]) work on bytes as they
//! arrive and are shared with the Server-Sent Events reader ([`super::sse`]); the transports
//! ([`Request::send`], [`Request::send_blocking`]) only move bytes.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a request may take before the client gives up: a guard against a hang, not a
/// measure (an analytics job of a debug build on a busy two-core machine takes tens of
/// seconds).
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(120);

/// Why a request got no whole response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The connection failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The server sent something that is not HTTP/1.1.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The connection ended before the response was whole.
    #[error("the connection closed before the response was whole: {0}")]
    Truncated(&'static str),
    /// No whole response within [`GIVE_UP_AFTER`].
    #[error("no whole response within {0:?}")]
    TimedOut(Duration),
}

/// A response's status line and header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// Header fields by lower-cased name; a repeated field's values joined with `, `.
    pub headers: HashMap<String, String>,
}

impl Head {
    /// Whether the body is chunked (`Transfer-Encoding: chunked`).
    pub fn is_chunked(&self) -> bool {
        self.headers
            .get("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }
}

/// The head at the start of `buf` and where the body starts, once the blank line that ends
/// the head has arrived (`None` before).
///
/// # Errors
/// [`HttpError::Malformed`] when the status line is not `HTTP/1.x NNN ...` or a field line
/// has no colon.
pub fn split_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HttpError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end])
        .map_err(|_| HttpError::Malformed("the head is not UTF-8".into()))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = match status_line.split(' ').collect::<Vec<_>>()[..] {
        [version, code, ..] if version.starts_with("HTTP/1.") && code.len() == 3 => code
            .parse()
            .map_err(|_| HttpError::Malformed(format!("status line `{status_line}`")))?,
        _ => return Err(HttpError::Malformed(format!("status line `{status_line}`"))),
    };
    let mut headers: HashMap<String, String> = HashMap::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| HttpError::Malformed(format!("header line `{line}`")))?;
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        headers
            .entry(name)
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(value);
            })
            .or_insert_with(|| value.to_owned());
    }
    Ok(Some((Head { status, headers }, end + 4)))
}

/// Where the decoder of a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Before a chunk's size line.
    Size,
    /// Inside a chunk, this many bytes to go.
    Data(usize),
    /// After a chunk's data, before its CRLF.
    DataEnd,
    /// After the last (empty) chunk: trailer lines until a blank one.
    Trailers,
    /// The body is whole.
    Done,
}

/// Decodes a chunked body (RFC 9112, section 7.1) from bytes as they arrive; chunk
/// extensions and trailer fields are read and dropped.
#[derive(Debug, Clone)]
pub struct Dechunker {
    pending: Vec<u8>,
    state: ChunkState,
}

impl Default for Dechunker {
    fn default() -> Self {
        Dechunker {
            pending: Vec::new(),
            state: ChunkState::Size,
        }
    }
}

impl Dechunker {
    /// Takes the next bytes of the body and returns the data they complete.
    ///
    /// # Errors
    /// [`HttpError::Malformed`] for a size line that is not hexadecimal or a chunk not
    /// followed by CRLF.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<u8>, HttpError> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let rest = &self.pending[at..];
            match self.state {
                ChunkState::Size | ChunkState::Trailers => {
                    let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
                        break;
                    };
                    let line = String::from_utf8_lossy(&rest[..eol]).into_owned();
                    at += eol + 2;
                    if self.state == ChunkState::Trailers {
                        if line.is_empty() {
                            self.state = ChunkState::Done;
                        }
                        continue;
                    }
                    let size = line.split(';').next().unwrap_or_default().trim();
                    let n = usize::from_str_radix(size, 16)
                        .map_err(|_| HttpError::Malformed(format!("chunk size line `{line}`")))?;
                    self.state = if n == 0 {
                        ChunkState::Trailers
                    } else {
                        ChunkState::Data(n)
                    };
                }
                ChunkState::Data(n) => {
                    if rest.is_empty() {
                        break;
                    }
                    let take = n.min(rest.len());
                    out.extend_from_slice(&rest[..take]);
                    at += take;
                    self.state = if take == n {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(n - take)
                    };
                }
                ChunkState::DataEnd => {
                    if rest.len() < 2 {
                        break;
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(HttpError::Malformed("a chunk not followed by CRLF".into()));
                    }
                    at += 2;
                    self.state = ChunkState::Size;
                }
                ChunkState::Done => break,
            }
        }
        self.pending.drain(..at);
        Ok(out)
    }

    /// Whether the last chunk and the trailer have arrived.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header fields by lower-cased name.
    pub headers: HashMap<String, String>,
    /// The body as sent (decoded from chunks), for binary answers (Parquet, Arrow).
    pub bytes: Vec<u8>,
    /// The body as text (invalid UTF-8 replaced), what most assertions read.
    pub body: String,
}

impl Response {
    /// A response of `status` with header fields by lower-cased name and body `bytes` (for
    /// answers that did not cross a socket, such as a router called in-process).
    pub fn new(status: u16, headers: HashMap<String, String>, bytes: Vec<u8>) -> Response {
        Response {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
        }
    }

    fn from_head(head: Head, bytes: Vec<u8>) -> Response {
        Response::new(head.status, head.headers, bytes)
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// When it is not JSON, showing the status and the body.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

/// How the body's end is found.
#[derive(Debug, Clone)]
enum Framing {
    Chunked(Dechunker),
    Length(usize),
    UntilClose,
}

/// Reads one response from bytes as they arrive: [`ResponseParser::push`] returns it once
/// whole; [`ResponseParser::finish`] at the end of the connection.
#[derive(Debug, Default)]
pub struct ResponseParser {
    /// The bytes of the head so far (until it is whole).
    head_bytes: Vec<u8>,
    head: Option<(Head, Framing)>,
    /// The body so far, decoded.
    body: Vec<u8>,
}

impl ResponseParser {
    /// Takes the next bytes; returns the response once its framing says it is whole.
    ///
    /// # Errors
    /// A malformed head or chunk, or a `Content-Length` that is not a number.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Option<Response>, HttpError> {
        if self.head.is_some() {
            return self.take_body(bytes);
        }
        self.head_bytes.extend_from_slice(bytes);
        let Some((head, start)) = split_head(&self.head_bytes)? else {
            return Ok(None);
        };
        let framing = if head.is_chunked() {
            Framing::Chunked(Dechunker::default())
        } else if let Some(len) = head.headers.get("content-length") {
            Framing::Length(
                len.parse()
                    .map_err(|_| HttpError::Malformed(format!("Content-Length `{len}`")))?,
            )
        } else if matches!(head.status, 100..=199 | 204 | 304) {
            Framing::Length(0)
        } else {
            Framing::UntilClose
        };
        self.head = Some((head, framing));
        let rest = std::mem::take(&mut self.head_bytes).split_off(start);
        self.take_body(&rest)
    }

    fn take_body(&mut self, bytes: &[u8]) -> Result<Option<Response>, HttpError> {
        let Some((head, framing)) = &mut self.head else {
            return Ok(None);
        };
        let whole = match framing {
            Framing::Chunked(d) => {
                let data = d.push(bytes)?;
                self.body.extend_from_slice(&data);
                d.is_done()
            }
            Framing::Length(n) => {
                let take = bytes.len().min(n.saturating_sub(self.body.len()));
                self.body.extend_from_slice(&bytes[..take]);
                self.body.len() >= *n
            }
            Framing::UntilClose => {
                self.body.extend_from_slice(bytes);
                false
            }
        };
        Ok(whole.then(|| Response::from_head(head.clone(), std::mem::take(&mut self.body))))
    }

    /// The response when the connection has ended: whole if its body runs to the end.
    ///
    /// # Errors
    /// [`HttpError::Truncated`] when the head, the last chunk or `Content-Length` bytes are
    /// missing.
    pub fn finish(self) -> Result<Response, HttpError> {
        match self.head {
            None => Err(HttpError::Truncated("no response head")),
            Some((head, Framing::UntilClose)) => Ok(Response::from_head(head, self.body)),
            Some((_, Framing::Chunked(_))) => Err(HttpError::Truncated("no last chunk")),
            Some((_, Framing::Length(_))) => {
                Err(HttpError::Truncated("body shorter than its length"))
            }
        }
    }
}

/// A request to a loopback server: a method and a target, a bearer token and header fields.
/// It is sent with `Host` and `Connection: close`.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Request {
    /// `GET target`.
    pub fn get(target: &str) -> Request {
        Request {
            method: "GET".into(),
            target: target.into(),
            headers: Vec::new(),
        }
    }

    /// Adds `Authorization: Bearer token`.
    #[must_use]
    pub fn bearer(self, token: &str) -> Request {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// Adds `Authorization: Bearer token` when there is a token.
    #[must_use]
    pub fn bearer_opt(self, token: Option<&str>) -> Request {
        match token {
            Some(t) => self.bearer(t),
            None => self,
        }
    }

    /// Adds a header field.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The request's bytes for the server on `port`.
    pub fn to_bytes(&self, port: u16) -> Vec<u8> {
        let mut out = format!(
            "{} {} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n",
            self.method, self.target
        );
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("Connection: close\r\n\r\n");
        out.into_bytes()
    }

    /// Sends the request to `127.0.0.1:port` and reads the response.
    ///
    /// # Errors
    /// When the connection fails, the answer is not HTTP, or no whole answer comes within
    /// [`GIVE_UP_AFTER`].
    pub async fn send(&self, port: u16) -> Result<Response, HttpError> {
        let exchange = async {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            s.write_all(&self.to_bytes(port)).await?;
            let mut parser = ResponseParser::default();
            let mut chunk = vec![0u8; 1 << 16];
            loop {
                let n = s.read(&mut chunk).await?;
                if n == 0 {
                    return parser.finish();
                }
                if let Some(r) = parser.push(&chunk[..n])? {
                    return Ok(r);
                }
            }
        };
        tokio::time::timeout(GIVE_UP_AFTER, exchange)
            .await
            .unwrap_or(Err(HttpError::TimedOut(GIVE_UP_AFTER)))
    }

    /// [`Request::send`] on the calling thread, for tests without a runtime.
    ///
    /// # Errors
    /// As [`Request::send`].
    pub fn send_blocking(&self, port: u16) -> Result<Response, HttpError> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(GIVE_UP_AFTER))?;
        s.write_all(&self.to_bytes(port))?;
        let mut parser = ResponseParser::default();
        let mut chunk = vec![0u8; 1 << 16];
        loop {
            let n = match s.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return Err(HttpError::TimedOut(GIVE_UP_AFTER));
                }
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                return parser.finish();
            }
            if let Some(r) = parser.push(&chunk[..n])? {
                return Ok(r);
            }
        }
    }
}

/// `GET path` from `127.0.0.1:port`, with a bearer token if given.
///
/// # Errors
/// As [`Request::send`].
pub async fn get(port: u16, path: &str, token: Option<&str>) -> Result<Response, HttpError> {
    Request::get(path).bearer_opt(token).send(port).await
}

/// [`get`] on the calling thread.
///
/// # Errors
/// As [`Request::send`].
pub fn get_blocking(port: u16, path: &str, token: Option<&str>) -> Result<Response, HttpError> {
    Request::get(path).bearer_opt(token).send_blocking(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `raw` to a parser in pieces of `step` bytes, then ends the connection.
    fn parse_in_pieces(raw: &[u8], step: usize) -> Result<Response, HttpError> {
        let mut p = ResponseParser::default();
        for piece in raw.chunks(step) {
            if let Some(r) = p.push(piece)? {
                return Ok(r);
            }
        }
        p.finish()
    }

    #[test]
    fn head_fields_are_lower_cased_and_repeated_ones_joined() {
        let raw =
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\nVary: a\r\nvary: b\r\n\r\nrest";
        let (head, start) = split_head(raw).unwrap().unwrap();
        assert_eq!(head.status, 429);
        assert_eq!(head.headers["retry-after"], "5");
        assert_eq!(head.headers["vary"], "a, b");
        assert_eq!(&raw[start..], b"rest");
        assert!(
            split_head(b"HTTP/1.1 200 OK\r\nA: b\r\n")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_status_line_that_is_not_http_is_refused() {
        for raw in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        ] {
            assert!(
                matches!(split_head(raw), Err(HttpError::Malformed(_))),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn content_length_ends_the_body_on_an_open_connection() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello, and bytes that follow";
        for step in [1, 3, raw.len()] {
            let mut p = ResponseParser::default();
            let r = raw
                .chunks(step)
                .find_map(|piece| p.push(piece).unwrap())
                .expect("whole before the connection ends");
            assert_eq!((r.status, r.body.as_str()), (200, "hello"));
        }
    }

    #[test]
    fn chunked_bodies_are_decoded_whatever_the_pieces() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                    4;ext=1\r\nWiki\r\n6\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\n";
        for step in 1..=raw.len() {
            let r = parse_in_pieces(raw, step).unwrap();
            assert_eq!(r.body, "Wikipedia in \r\n\r\nchunks.", "pieces of {step}");
        }
    }

    #[test]
    fn a_body_cut_short_is_an_error_not_a_shorter_body() {
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel";
        assert!(matches!(
            parse_in_pieces(chunked, 7),
            Err(HttpError::Truncated(_))
        ));
        let sized = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello";
        assert!(matches!(
            parse_in_pieces(sized, 7),
            Err(HttpError::Truncated(_))
        ));
        assert!(matches!(
            parse_in_pieces(b"HTTP/1.1 200", 4),
            Err(HttpError::Truncated(_))
        ));
    }

    #[test]
    fn without_length_the_body_runs_to_the_end_of_the_connection() {
        let r = parse_in_pieces(b"HTTP/1.1 200 OK\r\n\r\nall of it", 4).unwrap();
        assert_eq!(r.body, "all of it");
        let r = parse_in_pieces(b"HTTP/1.1 204 No Content\r\n\r\n", 100).unwrap();
        assert!(r.bytes.is_empty());
    }

    #[test]
    fn malformed_chunks_are_refused() {
        let mut d = Dechunker::default();
        assert!(matches!(d.push(b"zz\r\n"), Err(HttpError::Malformed(_))));
        let mut d = Dechunker::default();
        assert!(matches!(
            d.push(b"2\r\nabX\r\n"),
            Err(HttpError::Malformed(_))
        ));
    }

    #[test]
    fn requests_carry_host_token_fields_and_close() {
        let bytes = Request::get("/api/units?x=1")
            .bearer("ptk_t")
            .header("X-H1", "v")
            .to_bytes(8080);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "GET /api/units?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Bearer ptk_t\r\n\
             X-H1: v\r\nConnection: close\r\n\r\n"
        );
    }
}
