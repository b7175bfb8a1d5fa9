//! A Server-Sent Events reader for tests of a live stream: [`EventParser`] turns the
//! `text/event-stream` body into events as bytes arrive (the WHATWG HTML rules: `event`,
//! `data` lines joined with newlines, `id`, comments and `retry` skipped, an event dispatched
//! at a blank line), and [`SseStream`] reads one over a loopback connection, chunks decoded.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::http::{Dechunker, HttpError, Request, split_head};

/// One event of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event's type: its `event` field, `message` without one.
    pub kind: String,
    /// Its `data` lines, joined with `\n`.
    pub data: String,
    /// The last `id` seen on the stream, if any.
    pub id: Option<String>,
}

/// Parses a `text/event-stream` body from bytes as they arrive.
#[derive(Debug, Default)]
pub struct EventParser {
    /// The current line so far.
    line: Vec<u8>,
    /// The previous byte was a CR, so a LF right after it ends nothing more.
    after_cr: bool,
    kind: Option<String>,
    data: Option<String>,
    id: Option<String>,
}

impl EventParser {
    /// Takes the next bytes of the body and returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        for &b in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
            match b {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    let line =
                        String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
                    out.extend(self.line_done(&line));
                }
                _ => self.line.push(b),
            }
        }
        out
    }

    fn line_done(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            let kind = self.kind.take();
            let data = self.data.take()?;
            return Some(Event {
                kind: kind.unwrap_or_else(|| "message".into()),
                data,
                id: self.id.clone(),
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.kind = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {}
        }
        None
    }
}

/// An open event stream: the response head, then events as they come.
#[derive(Debug)]
pub struct SseStream {
    stream: TcpStream,
    /// The response's status.
    pub status: u16,
    /// The response's header fields, by lower-cased name.
    pub headers: HashMap<String, String>,
    dechunker: Option<Dechunker>,
    parser: EventParser,
    ready: VecDeque<Event>,
}

impl SseStream {
    /// Opens `GET path` on `127.0.0.1:port` (with the bearer token if given) and reads the
    /// response head; the body stays open.
    ///
    /// # Errors
    /// When the connection fails or the head does not come, whole and well formed, within
    /// `limit`.
    pub async fn open(
        port: u16,
        path: &str,
        token: Option<&str>,
        limit: Duration,
    ) -> Result<SseStream, HttpError> {
        let deadline = Instant::now() + limit;
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let request = Request::get(path).bearer_opt(token).to_bytes(port);
        tokio::io::AsyncWriteExt::write_all(&mut stream, &request).await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let (head, start) = loop {
            if let Some(found) = split_head(&buf)? {
                break found;
            }
            let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
                .await
                .map_err(|_| HttpError::TimedOut(limit))??;
            if n == 0 {
                return Err(HttpError::Truncated("no response head"));
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let mut me = SseStream {
            stream,
            status: head.status,
            dechunker: head.is_chunked().then(Dechunker::default),
            headers: head.headers,
            parser: EventParser::default(),
            ready: VecDeque::new(),
        };
        me.take(&buf[start..])?;
        Ok(me)
    }

    fn take(&mut self, bytes: &[u8]) -> Result<(), HttpError> {
        let data = match &mut self.dechunker {
            Some(d) => d.push(bytes)?,
            None => bytes.to_vec(),
        };
        self.ready.extend(self.parser.push(&data));
        Ok(())
    }

    /// The next event within `limit`; `None` when none came in time or the stream ended (or
    /// broke its framing).
    pub async fn next(&mut self, limit: Duration) -> Option<Event> {
        let deadline = Instant::now() + limit;
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(ev) = self.ready.pop_front() {
                return Some(ev);
            }
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.take(&chunk[..n]).ok()?;
        }
    }

    /// The data of the next event of type `kind` whose data contains `needle`, skipping
    /// others; `None` when none came within `limit`.
    pub async fn wait_for(&mut self, kind: &str, needle: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            let ev = self
                .next(deadline.saturating_duration_since(Instant::now()))
                .await?;
            if ev.kind == kind && ev.data.contains(needle) {
                return Some(ev.data);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, data: &str) -> Event {
        Event {
            kind: kind.into(),
            data: data.into(),
            id: None,
        }
    }

    #[test]
    fn events_end_at_a_blank_line_with_any_line_ending() {
        let body = b"event: position\ndata: {\"unit\":\"C01\"}\n\n\
                     event:offline\r\ndata:{}\r\n\r\n\
                     data: plain\r\r";
        let want = vec![
            event("position", "{\"unit\":\"C01\"}"),
            event("offline", "{}"),
            event("message", "plain"),
        ];
        // Whatever the pieces the bytes come in, a CR LF split between two included.
        for step in 1..=body.len() {
            let mut p = EventParser::default();
            let got: Vec<Event> = body.chunks(step).flat_map(|c| p.push(c)).collect();
            assert_eq!(got, want, "pieces of {step}");
        }
    }

    #[test]
    fn data_lines_join_and_comments_and_empty_events_dispatch_nothing() {
        let mut p = EventParser::default();
        let got = p.push(b": keep-alive\n\nevent: x\n\ndata: a\ndata:\ndata:  b\nretry: 5\n\n");
        // The `event: x` block has no data: nothing, and its type does not leak onward.
        assert_eq!(got, vec![event("message", "a\n\n b")]);
    }

    #[test]
    fn an_unfinished_event_waits_for_its_blank_line() {
        let mut p = EventParser::default();
        assert!(p.push(b"event: position\ndata: 1\n").is_empty());
        assert_eq!(p.push(b"\n"), vec![event("position", "1")]);
    }

    #[test]
    fn the_last_id_stays_with_later_events() {
        let mut p = EventParser::default();
        let got = p.push(b"id: 7\ndata: a\n\ndata: b\n\n");
        assert_eq!(got[0].id.as_deref(), Some("7"));
        assert_eq!(got[1].id.as_deref(), Some("7"));
    }

    #[test]
    fn a_chunked_stream_is_decoded_before_it_is_parsed() {
        // The chunk boundaries fall inside a field name and inside a CR LF.
        let mut d = Dechunker::default();
        let mut p = EventParser::default();
        let wire = b"3\r\neve\r\n16\r\nnt: position\r\ndata: 1\r\r\n3\r\n\n\r\n\r\n";
        let got: Vec<Event> = wire
            .chunks(5)
            .flat_map(|c| p.push(&d.push(c).unwrap()))
            .collect();
        assert_eq!(got, vec![event("position", "1")]);
    }
}
