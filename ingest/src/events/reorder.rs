//! The per-unit reorder buffer: fixes wait until the unit's newest fix is a window ahead, then
//! leave in fix-time order.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ping::EpochMillis;

use super::snapshot::{Reader, Writer};

/// What [`EventEngine::push`](super::EventEngine::push) did with a fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Buffered; it reaches the state machine in fix-time order.
    Buffered,
    /// Older than the unit's newest fix by more than the reorder window, older than a fix the
    /// machine has already seen, or flagged `LATE`: stored, but no events.
    Late,
    /// Same fix time as a buffered or the last processed fix of the unit: ignored.
    Duplicate,
}

/// Fixes of one unit keyed by fix time.
#[derive(Debug, Clone)]
pub(super) struct Reorder<T> {
    buffer: BTreeMap<EpochMillis, T>,
    newest: Option<EpochMillis>,
    /// Fix time of the last fix released.
    released_upto: Option<EpochMillis>,
}

impl<T> Default for Reorder<T> {
    fn default() -> Self {
        Self {
            buffer: BTreeMap::new(),
            newest: None,
            released_upto: None,
        }
    }
}

impl<T> Reorder<T> {
    /// Buffers `item` taken at `t`, unless it is a duplicate or late for `window_ms`.
    pub(super) fn admit(&mut self, t: EpochMillis, item: T, window_ms: EpochMillis) -> Disposition {
        if self.released_upto == Some(t) || self.buffer.contains_key(&t) {
            return Disposition::Duplicate;
        }
        let too_old = self.newest.is_some_and(|n| t < n.saturating_sub(window_ms));
        if too_old || self.released_upto.is_some_and(|r| t < r) {
            return Disposition::Late;
        }
        self.buffer.insert(t, item);
        self.newest = Some(self.newest.map_or(t, |n| n.max(t)));
        Disposition::Buffered
    }

    /// The newest fix time admitted.
    pub(super) const fn newest(&self) -> Option<EpochMillis> {
        self.newest
    }

    /// Removes and returns, oldest first, every buffered item taken at or before `upto`.
    pub(super) fn release(&mut self, upto: EpochMillis) -> Vec<T> {
        let keep = self.buffer.split_off(&upto.saturating_add(1));
        let ready = std::mem::replace(&mut self.buffer, keep);
        if let Some(&last) = ready.keys().next_back() {
            self.released_upto = Some(last);
        }
        ready.into_values().collect()
    }

    /// Removes and returns every buffered item, oldest first.
    pub(super) fn release_all(&mut self) -> Vec<T> {
        let all = std::mem::take(&mut self.buffer);
        if let Some(&last) = all.keys().next_back() {
            self.released_upto = Some(last);
        }
        all.into_values().collect()
    }
}

impl<T> Reorder<T> {
    /// Writes the buffer with `item` writing each buffered item.
    pub(super) fn encode(&self, w: &mut Writer, mut item: impl FnMut(&mut Writer, &T)) {
        w.opt(self.newest, Writer::i64);
        w.opt(self.released_upto, Writer::i64);
        w.len(self.buffer.len());
        for (t, it) in &self.buffer {
            w.i64(*t);
            item(w, it);
        }
    }

    /// Reads a buffer written by [`Reorder::encode`], with `item` reading each item.
    pub(super) fn decode(
        r: &mut Reader<'_>,
        mut item: impl FnMut(&mut Reader<'_>) -> Option<T>,
    ) -> Option<Self> {
        let newest = r.opt(Reader::i64)?;
        let released_upto = r.opt(Reader::i64)?;
        let mut buffer = BTreeMap::new();
        for _ in 0..r.len()? {
            let t = r.i64()?;
            buffer.insert(t, item(r)?);
        }
        Some(Self {
            buffer,
            newest,
            released_upto,
        })
    }
}
