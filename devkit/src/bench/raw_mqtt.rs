//! A minimal MQTT 5 client for the benchmarks: only CONNECT, PUBLISH (QoS 1), PUBACK, SUBSCRIBE
//! and DISCONNECT, over plain TCP. It writes as many packets per `write` as it has ready, which
//! is what a gateway relaying many devices' pings does and what rumqttc (one `write` per packet)
//! does not.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::due;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Semaphore;

/// Any failure of the raw client (I/O, a refused CONNECT, a closed connection).
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Appends `n` as an MQTT variable byte integer (7 bits a byte, high bit = more).
pub fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n % 128) as u8;
        n /= 128;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Appends `s` as an MQTT string: its length in two bytes, big-endian, then the bytes.
pub fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// Appends a packet of type byte `first` with `body` as its remaining part.
pub fn put_packet(out: &mut Vec<u8>, first: u8, body: &[u8]) {
    out.push(first);
    put_varint(out, body.len());
    out.extend_from_slice(body);
}

fn connect_packet(client_id: &str, receive_maximum: Option<u16>) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(&mut body, b"MQTT");
    body.push(5);
    body.push(0x02); // clean start
    body.extend_from_slice(&60u16.to_be_bytes());
    match receive_maximum {
        Some(n) => {
            body.push(3);
            body.push(0x21);
            body.extend_from_slice(&n.to_be_bytes());
        }
        None => body.push(0),
    }
    put_str(&mut body, client_id.as_bytes());
    let mut out = Vec::new();
    put_packet(&mut out, 0x10, &body);
    out
}

fn publish_packet(out: &mut Vec<u8>, topic: &[u8], pkid: u16, payload: &[u8]) {
    let mut body = Vec::with_capacity(topic.len() + payload.len() + 5);
    put_str(&mut body, topic);
    body.extend_from_slice(&pkid.to_be_bytes());
    body.push(0); // no properties
    body.extend_from_slice(payload);
    put_packet(out, 0x32, &body);
}

/// Reads MQTT packets from a socket: `(first byte, remaining bytes)`.
pub struct Frames {
    read: OwnedReadHalf,
    /// The bytes read so far; a packet's body is the range [`Frames::next`] returns.
    pub buf: Vec<u8>,
    start: usize,
}

impl Frames {
    fn new(read: OwnedReadHalf) -> Self {
        Frames {
            read,
            buf: Vec::with_capacity(1 << 16),
            start: 0,
        }
    }

    /// The next complete packet already buffered, without reading the socket.
    pub fn buffered(&mut self) -> Option<(u8, std::ops::Range<usize>)> {
        let data = &self.buf[self.start..];
        let (mut len, mut shift, mut at) = (0usize, 0, 1);
        loop {
            let byte = *data.get(at)?;
            len |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            at += 1;
            if byte & 0x80 == 0 {
                break;
            }
        }
        if data.len() < at + len {
            return None;
        }
        let first = data[0];
        let body = self.start + at..self.start + at + len;
        self.start += at + len;
        Some((first, body))
    }

    /// Reads more bytes from the socket (at least one, or an error at end of stream).
    async fn fill(&mut self) -> Result<(), Error> {
        self.buf.drain(..self.start);
        self.start = 0;
        let old = self.buf.len();
        self.buf.resize(old + (1 << 16), 0);
        let n = self.read.read(&mut self.buf[old..]).await?;
        self.buf.truncate(old + n);
        if n == 0 {
            return Err("broker closed the connection".into());
        }
        Ok(())
    }

    /// The next packet, reading the socket as needed.
    ///
    /// # Errors
    /// When the socket fails or the broker closes the connection.
    pub async fn next(&mut self) -> Result<(u8, std::ops::Range<usize>), Error> {
        loop {
            if let Some(p) = self.buffered() {
                return Ok(p);
            }
            self.fill().await?;
        }
    }
}

/// Connects with a clean start and waits for a successful CONNACK.
///
/// # Errors
/// When the connection fails or the broker refuses the client.
pub async fn connect(
    broker: SocketAddr,
    client_id: &str,
    receive_maximum: Option<u16>,
) -> Result<(Frames, OwnedWriteHalf), Error> {
    let stream = TcpStream::connect(broker).await?;
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    write
        .write_all(&connect_packet(client_id, receive_maximum))
        .await?;
    let mut frames = Frames::new(read);
    let (first, body) = frames.next().await?;
    if first != 0x20 || frames.buf.get(body.start + 1) != Some(&0) {
        return Err(format!("broker refused {client_id}").into());
    }
    Ok((frames, write))
}

/// What a raw publisher sends: `count` QoS 1 messages, at most `window` of them
/// unacknowledged, at `rate` per second or as fast as the window allows.
pub struct RawPublish {
    /// The broker's address.
    pub broker: SocketAddr,
    /// The MQTT client id.
    pub client_id: String,
    /// How many messages to send.
    pub count: usize,
    /// Messages per second, or `None` for as fast as the window allows.
    pub rate: Option<f64>,
    /// The most messages unacknowledged at once.
    pub window: usize,
}

/// Publishes message `k` as `message(k)` = (topic, payload), writing every message that is
/// due and fits in the window in one `write`; returns once all are acknowledged.
///
/// # Errors
/// When the connection fails or drops before every message is acknowledged.
pub async fn publish(
    p: RawPublish,
    mut message: impl FnMut(usize) -> (String, Vec<u8>),
) -> Result<(), Error> {
    const BATCH: usize = 64;
    let (mut frames, mut write) = connect(p.broker, &p.client_id, None).await?;
    let window = Arc::new(Semaphore::new(p.window));
    let acks = window.clone();
    let count = p.count;
    let reader = tokio::spawn(async move {
        let mut acked = 0;
        while acked < count {
            let (first, _) = frames.next().await?;
            if first >> 4 == 4 {
                acked += 1;
                acks.add_permits(1);
            }
        }
        Ok::<(), Error>(())
    });
    let mut buf = Vec::with_capacity(BATCH * 200);
    let t0 = Instant::now();
    let mut k = 0;
    while k < count {
        // Paced: sleep until the next message is due, then send what is due by now.
        let limit = match p.rate {
            Some(r) => {
                tokio::time::sleep_until(due(t0, k, r).into()).await;
                let due_now = (t0.elapsed().as_secs_f64() * r) as usize + 1;
                due_now.min(count).saturating_sub(k).max(1)
            }
            None => count - k,
        }
        .min(BATCH);
        window.acquire().await?.forget();
        let mut n = 1;
        while n < limit && window.try_acquire().map(|p| p.forget()).is_ok() {
            n += 1;
        }
        buf.clear();
        for i in k..k + n {
            let (topic, payload) = message(i);
            publish_packet(
                &mut buf,
                topic.as_bytes(),
                (i % 65_535 + 1) as u16,
                &payload,
            );
        }
        write.write_all(&buf).await?;
        k += n;
    }
    reader.await??;
    write.write_all(&[0xe0, 0]).await?; // DISCONNECT
    Ok(())
}
