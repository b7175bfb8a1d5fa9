//! What the store holds: an enriched ping, a rejection or an event, and their WAL encoding.

use crate::events::Event;
use crate::ping::{EpochMillis, Extras, Flags, InvalidPing, Ping, RejectReason, Rejection};

/// A ping with what the geofence stage added.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPing {
    /// The validated fix.
    pub ping: Ping,
    /// H3 cell at the store resolution, as `u64`.
    pub cell: u64,
    /// Beat id, if inside one.
    pub beat: Option<String>,
    /// Patrol zone id, if inside one.
    pub zone: Option<String>,
    /// Catalog version that made the assignment.
    pub fence_version: u32,
}

/// An [`Event`] as a row of the `events` table (see
/// [`EVENTS_SCHEMA`](model::schema::EVENTS_SCHEMA)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Unit id.
    pub unit: String,
    /// [`Event::time_ms`].
    pub time_ms: EpochMillis,
    /// [`EventKind::name`](crate::events::EventKind::name).
    pub kind: String,
    /// `beat` or `zone` for fence events.
    pub layer: Option<String>,
    /// Fence, checkpoint or zone id ([`EventKind::subject`](crate::events::EventKind::subject)).
    pub fence: Option<String>,
    /// [`Event::catalog_version`].
    pub catalog_version: u32,
    /// The whole event as JSON, as `/api/live` sends it.
    pub detail: String,
}

impl StoredEvent {
    /// The row of `event`.
    ///
    /// # Example
    /// ```
    /// use ingest::events::{Event, EventKind, Layer};
    /// use ingest::store::StoredEvent;
    /// let e = Event {
    ///     unit: "B12".into(), time_ms: 1_000, catalog_version: 3, provisional: false,
    ///     kind: EventKind::Enter { layer: Layer::Beat, fence: "0711".into(), confirmed_ms: 31_000 },
    /// };
    /// let row = StoredEvent::from_event(&e);
    /// assert_eq!((row.kind.as_str(), row.layer.as_deref(), row.fence.as_deref()), ("enter", Some("beat"), Some("0711")));
    /// assert!(row.detail.contains(r#""confirmed_ms":31000"#));
    /// ```
    #[must_use]
    pub fn from_event(event: &Event) -> Self {
        let (layer, fence) = event.kind.subject();
        Self {
            unit: event.unit.clone(),
            time_ms: event.time_ms,
            kind: event.kind.name().to_owned(),
            layer: layer.map(|l| l.as_str().to_owned()),
            fence: fence.map(str::to_owned),
            catalog_version: event.catalog_version,
            // Plain structs, enums and strings: serialising them to a string cannot fail.
            detail: serde_json::to_string(event).unwrap_or_default(),
        }
    }
}

/// One WAL record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// An accepted ping.
    Ping(StoredPing),
    /// A refused message.
    Reject(Rejection),
    /// A geofence or duty event.
    Event(StoredEvent),
}

/// One frame of the WAL: a record of a table, or one of the two entries by which the
/// pipeline stage can resume its state after a restart (see [`Resume`](super::Resume)).
#[derive(Debug, Clone, PartialEq)]
pub enum WalEntry {
    /// A ping, rejection or event for the tables.
    Record(Record),
    /// The wall-clock time of an event engine tick that changed the engine's state: an input
    /// of the engine, like the pings, replayed in order on resume.
    Tick(EpochMillis),
    /// The stage's whole state at this point of the WAL (opaque bytes, see
    /// `pipeline::Stages::snapshot`). Pings and ticks after it are replayed on resume;
    /// `closed` says the stage shut down cleanly right after it, so that nothing appended
    /// later (an import, say) is taken for an input of the engine.
    Snapshot {
        /// Written at a clean shutdown.
        closed: bool,
        /// The state.
        state: Vec<u8>,
    },
}

const TAG_PING: u8 = 1;
const TAG_REJECT: u8 = 2;
const TAG_EVENT: u8 = 3;
const TAG_TICK: u8 = 4;
const TAG_SNAPSHOT: u8 = 5;

/// Every reason, so a stored name can be read back (the WAL holds reasons by name). A reason
/// missing here would make its rejections unreadable on replay.
pub const REASONS: [RejectReason; 18] = [
    RejectReason::MalformedJson,
    RejectReason::MissingField,
    RejectReason::BadTopic,
    RejectReason::BadCoordinates(InvalidPing::NonFinite),
    RejectReason::BadCoordinates(InvalidPing::OutOfRange),
    RejectReason::BadCoordinates(InvalidPing::NullIsland),
    RejectReason::BadCoordinates(InvalidPing::BadUnit),
    RejectReason::BadTimestamp,
    RejectReason::FutureTimestamp,
    RejectReason::TooOld,
    RejectReason::Oversize,
    RejectReason::UnknownUnit,
    RejectReason::StationMismatch,
    RejectReason::IgnoredType,
    RejectReason::ConflictingFix,
    RejectReason::BadFrame,
    RejectReason::NoFix,
    RejectReason::UnknownDevice,
];

/// Looks a reason up by its stored name.
pub fn reason_from_str(s: &str) -> Option<RejectReason> {
    REASONS.iter().copied().find(|r| r.as_str() == s)
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(b);
}

fn put_opt_f32(out: &mut Vec<u8>, v: Option<f32>) {
    // NaN marks "absent": Ping never holds a non-finite extra.
    out.extend_from_slice(&v.unwrap_or(f32::NAN).to_le_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(s) => {
            out.push(1);
            put_bytes(out, s.as_bytes());
        }
        None => out.push(0),
    }
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn arr<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).and_then(|b| b.try_into().ok())
    }
    fn i64(&mut self) -> Option<i64> {
        self.arr().map(i64::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.arr().map(u64::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.arr().map(u32::from_le_bytes)
    }
    fn f64(&mut self) -> Option<f64> {
        self.arr().map(f64::from_le_bytes)
    }
    fn opt_f32(&mut self) -> Option<Option<f32>> {
        self.arr()
            .map(f32::from_le_bytes)
            .map(|v| (!v.is_nan()).then_some(v))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Option<String> {
        std::str::from_utf8(self.bytes()?).ok().map(str::to_owned)
    }
    fn opt_string(&mut self) -> Option<Option<String>> {
        match self.u8()? {
            0 => Some(None),
            1 => self.string().map(Some),
            _ => None,
        }
    }
}

impl WalEntry {
    /// Appends the binary form of the entry to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            WalEntry::Record(r) => r.encode(out),
            WalEntry::Tick(t) => {
                out.push(TAG_TICK);
                out.extend_from_slice(&t.to_le_bytes());
            }
            WalEntry::Snapshot { closed, state } => {
                out.push(TAG_SNAPSHOT);
                out.push(u8::from(*closed));
                put_bytes(out, state);
            }
        }
    }

    /// Parses one entry; `None` when the bytes are not a whole, valid entry.
    pub(crate) fn decode(bytes: &[u8]) -> Option<WalEntry> {
        let mut c = Cursor(bytes);
        let entry = match c.u8()? {
            TAG_TICK => WalEntry::Tick(c.i64()?),
            TAG_SNAPSHOT => WalEntry::Snapshot {
                closed: match c.u8()? {
                    0 => false,
                    1 => true,
                    _ => return None,
                },
                state: c.bytes()?.to_vec(),
            },
            _ => return Record::decode(bytes).map(WalEntry::Record),
        };
        c.0.is_empty().then_some(entry)
    }
}

impl Record {
    /// Appends the binary form of the record to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Record::Ping(s) => {
                let p = &s.ping;
                let x = p.extras();
                out.push(TAG_PING);
                put_bytes(out, p.unit().as_bytes());
                put_bytes(out, p.station().as_bytes());
                out.extend_from_slice(&p.fix_time().to_le_bytes());
                out.extend_from_slice(&p.recv_time().to_le_bytes());
                out.extend_from_slice(&p.lat().to_le_bytes());
                out.extend_from_slice(&p.lon().to_le_bytes());
                put_opt_f32(out, x.acc);
                put_opt_f32(out, x.speed_kmh);
                put_opt_f32(out, x.heading);
                put_opt_f32(out, x.alt);
                out.push(x.batt.unwrap_or(u8::MAX));
                out.push(p.flags().bits());
                out.extend_from_slice(&s.cell.to_le_bytes());
                put_opt_str(out, s.beat.as_deref());
                put_opt_str(out, s.zone.as_deref());
                out.extend_from_slice(&s.fence_version.to_le_bytes());
            }
            Record::Reject(r) => {
                out.push(TAG_REJECT);
                out.extend_from_slice(&r.recv_time.to_le_bytes());
                put_bytes(out, r.topic.as_bytes());
                put_bytes(out, r.reason.as_str().as_bytes());
                put_bytes(out, r.detail.as_bytes());
                put_bytes(out, &r.payload);
            }
            Record::Event(e) => {
                out.push(TAG_EVENT);
                put_bytes(out, e.unit.as_bytes());
                out.extend_from_slice(&e.time_ms.to_le_bytes());
                put_bytes(out, e.kind.as_bytes());
                put_opt_str(out, e.layer.as_deref());
                put_opt_str(out, e.fence.as_deref());
                out.extend_from_slice(&e.catalog_version.to_le_bytes());
                put_bytes(out, e.detail.as_bytes());
            }
        }
    }

    /// Parses one record; `None` when the bytes are not a whole, valid record.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Record> {
        let mut c = Cursor(bytes);
        let rec = match c.u8()? {
            TAG_PING => {
                let unit = c.string()?;
                let station = c.string()?;
                let fix_time = c.i64()?;
                let recv_time = c.i64()?;
                let lat = c.f64()?;
                let lon = c.f64()?;
                let extras = Extras {
                    acc: c.opt_f32()?,
                    speed_kmh: c.opt_f32()?,
                    heading: c.opt_f32()?,
                    alt: c.opt_f32()?,
                    batt: Some(c.u8()?).filter(|b| *b != u8::MAX),
                };
                let flags = Flags::from_bits(c.u8()?);
                let ping = Ping::new(
                    &unit, &station, fix_time, recv_time, lat, lon, extras, flags,
                )
                .ok()?;
                Record::Ping(StoredPing {
                    ping,
                    cell: c.u64()?,
                    beat: c.opt_string()?,
                    zone: c.opt_string()?,
                    fence_version: c.u32()?,
                })
            }
            TAG_REJECT => Record::Reject(Rejection {
                recv_time: c.i64()?,
                topic: c.string()?,
                reason: reason_from_str(&c.string()?)?,
                detail: c.string()?,
                payload: c.bytes()?.to_vec(),
            }),
            TAG_EVENT => Record::Event(StoredEvent {
                unit: c.string()?,
                time_ms: c.i64()?,
                kind: c.string()?,
                layer: c.opt_string()?,
                fence: c.opt_string()?,
                catalog_version: c.u32()?,
                detail: c.string()?,
            }),
            _ => return None,
        };
        c.0.is_empty().then_some(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails to compile when a reason is added without a place in [`REASONS`]'s count, and
    /// fails when one is listed twice or not read back by its name.
    #[test]
    fn every_reason_reads_back_by_name() {
        let place = |r: RejectReason| match r {
            RejectReason::MalformedJson
            | RejectReason::MissingField
            | RejectReason::BadTopic
            | RejectReason::BadCoordinates(_)
            | RejectReason::BadTimestamp
            | RejectReason::FutureTimestamp
            | RejectReason::TooOld
            | RejectReason::Oversize
            | RejectReason::UnknownUnit
            | RejectReason::StationMismatch
            | RejectReason::IgnoredType
            | RejectReason::ConflictingFix
            | RejectReason::BadFrame
            | RejectReason::NoFix
            | RejectReason::UnknownDevice => r.as_str(),
        };
        let names: std::collections::BTreeSet<&str> = REASONS.iter().map(|r| place(*r)).collect();
        assert_eq!(names.len(), REASONS.len());
        for r in REASONS {
            assert_eq!(reason_from_str(r.as_str()), Some(r));
        }
    }
}
