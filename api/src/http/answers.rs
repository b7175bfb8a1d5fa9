//! The analytics routes' memory: answers cached by (job, parameters, store version), bounded
//! by their estimated size ([`CACHE_BYTES`]) and evicted least recently used first, and the
//! slots that let one job run at a time and one per token ([`JOBS_PER_TOKEN`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use analytics::output::DataFrame;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::http::limits::PerToken;

/// Estimated memory the cached answers may hold together.
pub const CACHE_BYTES: usize = 256 << 20;
/// Jobs one token may have running or waiting.
pub const JOBS_PER_TOKEN: usize = 1;
/// A job's answer as the routes keep it.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The job's main table.
    pub(crate) frame: DataFrame,
    /// The response rule's map features (cells, then failing areas); `None` for the other jobs,
    /// whose JSON rows are the table's.
    pub(crate) features: Option<Vec<Value>>,
}

impl Answer {
    /// Estimated bytes held.
    fn weight(&self) -> usize {
        self.frame.estimated_size() + self.features.iter().flatten().map(weight).sum::<usize>()
    }
}

/// A cached answer, or the reason there is nothing to analyse (also an answer for this store
/// version).
pub(crate) type Rows = Arc<Result<Answer, String>>;

/// The cache of analytics answers and the limits on running jobs.
#[derive(Debug)]
pub struct AnalyticsCache {
    answers: Mutex<Answers>,
    /// Why a semaphore of one: a job uses both cores, so jobs run one after the other; the
    /// permit moves into the job, so a job whose request went away still holds it.
    pub(crate) run: Arc<Semaphore>,
    /// Jobs running or waiting, per token.
    pub(crate) per_token: PerToken,
}

impl Default for AnalyticsCache {
    fn default() -> Self {
        AnalyticsCache {
            answers: Mutex::new(Answers::new(CACHE_BYTES)),
            run: Arc::new(Semaphore::new(1)),
            per_token: PerToken::new(JOBS_PER_TOKEN),
        }
    }
}

impl AnalyticsCache {
    pub(crate) fn get(&self, key: u64) -> Option<Rows> {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
    }

    pub(crate) fn put(&self, key: u64, rows: Rows) {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(key, rows);
    }
}

/// Answers by key, with their estimated sizes, evicted least recently used first.
#[derive(Debug)]
struct Answers {
    map: HashMap<u64, Cached>,
    /// Sum of the entries' sizes.
    bytes: usize,
    /// Most bytes held.
    cap: usize,
    /// Advances with every use; an entry's `used` is the tick of its last use.
    tick: u64,
}

#[derive(Debug)]
struct Cached {
    rows: Rows,
    bytes: usize,
    used: u64,
}

impl Answers {
    fn new(cap: usize) -> Answers {
        Answers {
            map: HashMap::new(),
            bytes: 0,
            cap,
            tick: 0,
        }
    }

    fn get(&mut self, key: u64) -> Option<Rows> {
        self.tick += 1;
        let e = self.map.get_mut(&key)?;
        e.used = self.tick;
        Some(e.rows.clone())
    }

    /// Keeps `rows` unless they alone would take more than a quarter of the cap (so one
    /// answer cannot flush every other), evicting the least recently used until they fit.
    fn put(&mut self, key: u64, rows: Rows) {
        let bytes = match rows.as_ref() {
            Ok(answer) => answer.weight(),
            Err(why) => why.len(),
        };
        if bytes > self.cap / 4 {
            return;
        }
        if let Some(old) = self.map.remove(&key) {
            self.bytes -= old.bytes;
        }
        while self.bytes + bytes > self.cap {
            let Some(oldest) = self.map.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| *k) else {
                break;
            };
            if let Some(e) = self.map.remove(&oldest) {
                self.bytes -= e.bytes;
            }
        }
        self.tick += 1;
        self.bytes += bytes;
        self.map.insert(
            key,
            Cached {
                rows,
                bytes,
                used: self.tick,
            },
        );
    }
}

/// Estimated heap and inline bytes of a JSON value: each node's own size, its strings' bytes,
/// and a map entry's key and bookkeeping.
fn weight(v: &Value) -> usize {
    const NODE: usize = std::mem::size_of::<Value>();
    NODE + match v {
        Value::String(s) => s.len(),
        Value::Array(a) => a.iter().map(weight).sum(),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| std::mem::size_of::<String>() + k.len() + weight(v))
            .sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(n: usize) -> Rows {
        Arc::new(Ok(Answer {
            frame: DataFrame::default(),
            features: Some((0..n).map(|i| json!({"cell": i, "beat": "BT01"})).collect()),
        }))
    }

    /// The cache holds answers up to its byte cap, evicting the least recently used; an answer
    /// too large for a quarter of the cap is not kept at all.
    #[test]
    fn the_cache_is_bounded_by_bytes() {
        let sample = rows(100);
        let one: usize = sample.as_ref().as_ref().map_or(0, Answer::weight);
        assert!(one > 100 * 32, "every row counts its nodes: {one}");
        let mut cache = Answers::new(4 * one);
        for key in 0..4 {
            cache.put(key, rows(100));
        }
        assert_eq!((cache.map.len(), cache.bytes), (4, 4 * one));
        // Key 0 is used again, so key 1 is the least recently used when key 4 needs room.
        assert!(cache.get(0).is_some());
        cache.put(4, rows(100));
        assert_eq!((cache.map.len(), cache.bytes), (4, 4 * one));
        assert!(cache.get(1).is_none() && cache.get(0).is_some() && cache.get(4).is_some());
        // Two answers' worth in one is over a quarter of the cap: answered, never cached.
        cache.put(5, rows(200));
        assert!(cache.get(5).is_none());
        assert!(cache.bytes <= cache.cap);
        // Replacing a key does not count it twice.
        cache.put(4, rows(100));
        assert_eq!(cache.bytes, 4 * one);
    }
}
