//! The broker's own QoS 1 ceiling: publishers → MQTT broker → one QoS 1 subscriber that
//! acknowledges every message as soon as it arrives. No decode, no store.
//!
//! ```text
//! cargo run --release -p ingest --example bench_broker -- --broker HOST:PORT [--messages N]
//!     [--publishers P] [--rate MSGS_PER_S] [--pub rumqttc|raw] [--sub source|raw]
//!     [--broker-pid PID]
//! ```
//! The defaults use the project's own MQTT code: `--pub rumqttc` publishes with [`Publisher`]
//! (rumqttc, as the simulator does) and `--sub source` subscribes with [`mqtt::run`], told each
//! message is durable as soon as it arrives, so it is ingest's receive and ack path with a
//! store that costs nothing. `raw` speaks MQTT 5 directly over TCP and coalesces writes (many
//! PUBLISHes or PUBACKs per `write`), to see what the broker itself can do with cheap clients. Each payload
//! starts with its publish time in microseconds (`{"sent_us":...`) and is about the size of an
//! OwnTracks location.
//!
//! Prints one Markdown table row: publisher and subscriber client, publishers, offered rate,
//! messages received, messages/s (first publish to last receipt), publish-to-receipt p50, p99
//! and max in ms, the broker's and this process's CPU seconds over the run, and the run's
//! seconds. With `--broker-pid` the broker's CPU time over the run is read from
//! `/proc/PID/stat` and printed next to this process's own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use devkit::bench::raw_mqtt::{self, Error};
use devkit::bench::{self, cpu_seconds, now_us, percentile_ms};
use ingest::source::intake::{Body, Delivery, Intake};
use ingest::source::mqtt::{self, MqttSourceConfig, Publisher, PublisherConfig};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, PartialEq)]
enum Client {
    /// rumqttc through [`Publisher`] or [`mqtt::run`].
    Project,
    /// The coalescing MQTT 5 client of `devkit::bench::raw_mqtt`.
    Raw,
}

impl Client {
    fn name(self, project: &'static str) -> &'static str {
        match self {
            Client::Project => project,
            Client::Raw => "raw",
        }
    }
}

struct Args {
    broker: SocketAddr,
    messages: usize,
    publishers: usize,
    rate: Option<f64>,
    publisher: Client,
    subscriber: Client,
    broker_pid: Option<u32>,
}

fn args() -> Result<Args, Error> {
    let mut broker = None;
    let mut a = Args {
        broker: SocketAddr::from(([127, 0, 0, 1], 1883)),
        messages: 200_000,
        publishers: 4,
        rate: None,
        publisher: Client::Project,
        subscriber: Client::Project,
        broker_pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--broker" => broker = Some(value.parse()?),
            "--messages" => a.messages = value.parse()?,
            "--publishers" => a.publishers = value.parse()?,
            "--rate" => a.rate = Some(value.parse()?),
            "--broker-pid" => a.broker_pid = Some(value.parse()?),
            "--pub" | "--sub" => {
                let client = match value.as_str() {
                    "rumqttc" if flag == "--pub" => Client::Project,
                    "source" if flag == "--sub" => Client::Project,
                    "raw" => Client::Raw,
                    other => return Err(format!("{flag}: unknown client {other}").into()),
                };
                if flag == "--pub" {
                    a.publisher = client;
                } else {
                    a.subscriber = client;
                }
            }
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    a.broker = broker.ok_or("--broker HOST:PORT is required")?;
    if a.publishers == 0 || a.messages == 0 {
        return Err("--messages and --publishers must be positive".into());
    }
    Ok(a)
}

/// An OwnTracks-sized payload that starts with its publish time.
fn payload(i: usize) -> Vec<u8> {
    format!(
        r#"{{"sent_us":{},"_type":"location","lat":{:.6},"lon":{:.6},"tst":{},"acc":8,"vel":20}}"#,
        now_us(),
        40.08 + (i % 500) as f64 * 2e-5,
        -88.93 + (i % 700) as f64 * 2e-5,
        1_796_000_000 + i,
    )
    .into_bytes()
}

/// The publish time at the start of a payload made by [`payload`].
fn sent_us(payload: &[u8]) -> Option<i64> {
    let rest = payload.strip_prefix(b"{\"sent_us\":")?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// A raw publisher: keeps up to 1000 QoS 1 publishes unacknowledged and writes as many as the
/// window allows in one go.
async fn raw_publish(
    broker: SocketAddr,
    p: usize,
    count: usize,
    rate: Option<f64>,
) -> Result<(), Error> {
    let topic = format!("benchbroker/p{p}/u{}", p % 7);
    let job = raw_mqtt::RawPublish {
        broker,
        client_id: format!("bench-broker-pub-{}-{p}", std::process::id()),
        count,
        rate,
        window: 1000,
    };
    raw_mqtt::publish(job, |i| (topic.clone(), payload(i))).await
}

/// A raw subscriber: acknowledges every QoS 1 publish it has read, in one write per read.
async fn raw_subscribe(
    broker: SocketAddr,
    total: usize,
    ready: tokio::sync::oneshot::Sender<()>,
) -> Result<Vec<i64>, Error> {
    let (mut frames, mut write) = raw_mqtt::connect(
        broker,
        &format!("bench-broker-sub-{}", std::process::id()),
        Some(1000),
    )
    .await?;
    let mut body = Vec::new();
    body.extend_from_slice(&1u16.to_be_bytes());
    body.push(0);
    raw_mqtt::put_str(&mut body, b"benchbroker/+/+");
    body.push(0x01);
    let mut sub = Vec::new();
    raw_mqtt::put_packet(&mut sub, 0x82, &body);
    write.write_all(&sub).await?;
    loop {
        let (first, _) = frames.next().await?;
        if first == 0x90 {
            break;
        }
    }
    let _ = ready.send(());
    let mut lat = Vec::with_capacity(total);
    let mut acks = Vec::with_capacity(4 * 1000);
    while lat.len() < total {
        let (first, body) = frames.next().await?;
        let mut next = Some((first, body));
        while let Some((first, body)) = next {
            if first >> 4 == 3 {
                let b = &frames.buf[body];
                let topic_len = usize::from(u16::from_be_bytes([b[0], b[1]]));
                let mut at = 2 + topic_len;
                if (first >> 1) & 3 > 0 {
                    acks.extend_from_slice(&[0x40, 2, b[at], b[at + 1]]);
                    at += 2;
                }
                let (mut props, mut shift) = (0usize, 0);
                loop {
                    let byte = b[at];
                    at += 1;
                    props |= usize::from(byte & 0x7f) << shift;
                    shift += 7;
                    if byte & 0x80 == 0 {
                        break;
                    }
                }
                let now = now_us();
                if let Some(t) = sent_us(&b[at + props..]) {
                    lat.push(now - t);
                }
            }
            next = frames.buffered();
        }
        if !acks.is_empty() {
            write.write_all(&acks).await?;
            acks.clear();
        }
    }
    write.write_all(&[0xe0, 0]).await?;
    Ok(lat)
}

/// The project's source as subscriber: every delivery is reported durable as soon as it is
/// taken from the source's channel, so the source acks it right away.
async fn source_subscribe(
    broker: SocketAddr,
    total: usize,
    ready: tokio::sync::oneshot::Sender<()>,
) -> Result<Vec<i64>, Error> {
    let mut cfg = MqttSourceConfig::new(
        &broker.ip().to_string(),
        broker.port(),
        &format!("bench-broker-sub-{}", std::process::id()),
    );
    cfg.topics = vec!["benchbroker/+/+".into()];
    cfg.session_expiry_s = 0;
    let (tx, mut rx) = mpsc::channel::<Delivery>(1000);
    let (durable_tx, durable_rx) = watch::channel(0u64);
    let token = CancellationToken::new();
    let stats = Arc::new(mqtt::SourceStats::default());
    let source = tokio::spawn(mqtt::run(
        cfg,
        Intake::new(tx, durable_rx),
        stats.clone(),
        token.clone(),
    ));
    // The source subscribes right after CONNACK; give it that moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = ready.send(());
    let mut lat = Vec::with_capacity(total);
    let mut buf = Vec::with_capacity(1000);
    while lat.len() < total {
        if rx.recv_many(&mut buf, 1000).await == 0 {
            return Err("source stopped".into());
        }
        let now = now_us();
        let mut upto = 0;
        for d in buf.drain(..) {
            upto = d.seq;
            if let Body::Mqtt { payload, .. } = &d.body
                && let Some(t) = sent_us(payload)
            {
                lat.push(now - t);
            }
        }
        durable_tx.send_replace(upto);
    }
    // Let the last acks go out before the source disconnects.
    let deadline = Instant::now() + Duration::from_secs(5);
    while stats.acked.load(Relaxed) < total as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    token.cancel();
    let _ = source.await;
    Ok(lat)
}

async fn source_publish(
    broker: SocketAddr,
    p: usize,
    count: usize,
    rate: Option<f64>,
) -> Result<(), Error> {
    let (publisher, task) = Publisher::connect(&PublisherConfig {
        host: broker.ip().to_string(),
        port: broker.port(),
        client_id: format!("bench-broker-pub-{}-{p}", std::process::id()),
        last_will: None,
        credentials: None,
        queue: 1000,
    });
    let topic = format!("benchbroker/p{p}/u{}", p % 7);
    let t0 = Instant::now();
    for k in 0..count {
        publisher.publish(&topic, payload(k)).await?;
        if let Some(r) = rate {
            tokio::time::sleep_until(bench::due(t0, k + 1, r).into()).await;
        }
    }
    publisher.disconnect().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    task.abort();
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let a = args()?;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let subscriber = match a.subscriber {
        Client::Project => tokio::spawn(source_subscribe(a.broker, a.messages, ready_tx)),
        Client::Raw => tokio::spawn(raw_subscribe(a.broker, a.messages, ready_tx)),
    };
    ready_rx.await?;
    let broker_pid = a.broker_pid.map(|p| p.to_string());
    let broker_cpu0 = broker_pid.as_deref().and_then(cpu_seconds);
    let self_cpu0 = cpu_seconds("self");
    let started = Instant::now();
    let per = a.messages.div_ceil(a.publishers);
    let sent = Arc::new(AtomicUsize::new(0));
    let mut pubs = Vec::new();
    for p in 0..a.publishers {
        let count = per.min(a.messages.saturating_sub(p * per));
        let rate = a.rate.map(|r| r / a.publishers as f64);
        let sent = sent.clone();
        let broker = a.broker;
        let client = a.publisher;
        pubs.push(tokio::spawn(async move {
            match client {
                Client::Project => source_publish(broker, p, count, rate).await?,
                Client::Raw => raw_publish(broker, p, count, rate).await?,
            }
            sent.fetch_add(count, Relaxed);
            Ok::<(), Error>(())
        }));
    }
    let mut lat = tokio::time::timeout(Duration::from_secs(600), subscriber).await???;
    let elapsed = started.elapsed();
    let broker_cpu = broker_pid
        .as_deref()
        .and_then(cpu_seconds)
        .zip(broker_cpu0)
        .map(|(b, a)| b - a);
    let self_cpu = cpu_seconds("self").zip(self_cpu0).map(|(b, a)| b - a);
    for p in pubs {
        p.await??;
    }
    lat.sort_unstable();
    let cpu = |c: Option<f64>| c.map_or("?".to_owned(), |c| format!("{c:.2}"));
    println!(
        "| {} | {} | {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {} | {:.2} |",
        a.publisher.name("rumqttc"),
        a.subscriber.name("source"),
        a.publishers,
        a.rate.map_or("max".to_owned(), |r| format!("{r:.0}/s")),
        lat.len(),
        lat.len() as f64 / elapsed.as_secs_f64(),
        percentile_ms(&lat, 0.50),
        percentile_ms(&lat, 0.99),
        percentile_ms(&lat, 1.0),
        cpu(broker_cpu),
        cpu(self_cpu),
        elapsed.as_secs_f64(),
    );
    if lat.len() != a.messages || sent.load(Relaxed) != a.messages {
        return Err(format!("only {} of {} messages arrived", lat.len(), a.messages).into());
    }
    Ok(())
}
