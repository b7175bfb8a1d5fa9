//! What the handlers share: [`AppState`], built once by the wiring and cloned into every
//! request, and the request latency histogram it carries.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use ingest::pipeline::IngestStats;
use ingest::sink::live::LiveState;
use ingest::source::mqtt::SourceStats;
use tokio_util::sync::CancellationToken;

use crate::gateways::RunningGateway;
use crate::http::answers::AnalyticsCache;
use crate::http::auth::Tokens;
use crate::http::hub::LiveHub;
use crate::http::reference::Reference;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Live units.
    pub live: Arc<LiveState>,
    /// Serialised live events for SSE clients, and the recent event log.
    pub hub: Arc<LiveHub>,
    /// Pipeline counters.
    pub ingest: Arc<IngestStats>,
    /// Source counters.
    pub source: Arc<SourceStats>,
    /// The device gateways' counters.
    pub gateways: Arc<[RunningGateway]>,
    /// Configured bearer tokens.
    pub tokens: Arc<Tokens>,
    /// Fleet and base layers.
    pub reference: Arc<Reference>,
    /// Store directory (history reads its Parquet files).
    pub store: PathBuf,
    /// Jurisdiction directory (analytics jobs read it).
    pub fixtures: PathBuf,
    /// Cached analytics answers.
    pub analytics: Arc<AnalyticsCache>,
    /// Request latencies for `/metrics`.
    pub http: Arc<HttpStats>,
    /// Ends open streams on shutdown.
    pub shutdown: CancellationToken,
}

/// Upper bounds of the latency histogram's buckets, seconds.
pub(crate) const BUCKETS: [f64; 10] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Request latency histogram (time to the response head; a stream's lifetime is not counted).
#[derive(Debug, Default)]
pub struct HttpStats {
    pub(crate) buckets: [AtomicU64; BUCKETS.len()],
    pub(crate) count: AtomicU64,
    pub(crate) sum_us: AtomicU64,
}

impl HttpStats {
    pub(crate) fn observe(&self, seconds: f64) {
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add((seconds * 1e6) as u64, Relaxed);
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
    }
}
