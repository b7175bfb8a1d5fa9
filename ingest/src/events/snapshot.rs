//! The byte format of an engine snapshot ([`EventEngine::snapshot`](super::EventEngine::snapshot)):
//! little-endian integers, floats by their bits (so positions come back exactly), strings
//! and lists prefixed by their length. Fences, checkpoints and shifts are written by id
//! (fence id, checkpoint id, shift start), never by their position in the catalog or the
//! roster, so a snapshot still applies after beats are redrawn or the roster gains rows; an
//! id that no longer exists is dropped on restore.

use crate::ping::EpochMillis;

/// Why a snapshot could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Written by another version of the format.
    #[error("snapshot format {found}, this build reads {FORMAT}")]
    Format {
        /// The version byte found.
        found: u8,
    },
    /// Cut short or not a snapshot.
    #[error("snapshot is truncated or corrupt")]
    Corrupt,
}

/// Version of the byte format; bump it when the layout changes.
pub(super) const FORMAT: u8 = 1;

/// Appends values to a snapshot.
#[derive(Debug, Default)]
pub(crate) struct Writer(Vec<u8>);

impl Writer {
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.0
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(crate) fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    pub(crate) fn i64(&mut self, v: EpochMillis) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }
    pub(crate) fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    /// A presence byte, then the value written by `f` when present.
    pub(crate) fn opt<T>(&mut self, v: Option<T>, f: impl FnOnce(&mut Self, T)) {
        self.bool(v.is_some());
        if let Some(v) = v {
            f(self, v);
        }
    }
}

/// Reads values back in the order they were written; `None` when the bytes run out.
#[derive(Debug)]
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) const fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }
    pub(crate) const fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }
    pub(crate) fn bool(&mut self) -> Option<bool> {
        self.u8().map(|b| b != 0)
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }
    pub(crate) fn len(&mut self) -> Option<usize> {
        self.u32().map(|n| n as usize)
    }
    pub(crate) fn i64(&mut self) -> Option<EpochMillis> {
        self.take().map(i64::from_le_bytes)
    }
    pub(crate) fn f64(&mut self) -> Option<f64> {
        self.take().map(|b| f64::from_bits(u64::from_le_bytes(b)))
    }
    pub(crate) fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.len()?;
        if self.0.len() < n {
            return None;
        }
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(b)
    }
    pub(crate) fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
    /// Reads a presence byte, then the value with `f` when present.
    pub(crate) fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.bool()? {
            f(self).map(Some)
        } else {
            Some(None)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn values_come_back_exactly_and_short_input_is_refused() {
        let mut w = Writer::default();
        w.u8(7);
        w.i64(-1_795_000_000_123);
        w.f64(41.805_000_000_000_01);
        w.str("BT03");
        w.opt(Some(5_i64), Writer::i64);
        w.opt(None::<i64>, Writer::i64);
        let bytes = w.into_bytes();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8(), Some(7));
        assert_eq!(r.i64(), Some(-1_795_000_000_123));
        assert_eq!(
            r.f64().unwrap().to_bits(),
            41.805_000_000_000_01_f64.to_bits()
        );
        assert_eq!(r.str(), Some("BT03"));
        assert_eq!(r.opt(Reader::i64), Some(Some(5)));
        assert_eq!(r.opt(Reader::i64), Some(None));
        assert!(r.is_empty());
        // The string's length says 4 bytes; only 2 are left.
        let mut short = Reader::new(&bytes[..1 + 8 + 8 + 4 + 2]);
        short.u8();
        short.i64();
        short.f64();
        assert_eq!(short.str(), None);
        assert_eq!(Reader::new(&bytes[..4]).i64(), None);
    }
}
