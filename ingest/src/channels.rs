//! The pipeline's bounded channels: their capacities (`[pipeline]` in the serve config) and
//! what a sender does when one is full. Each edge's policy is fixed by what the pipeline
//! promises, so it is a named constant here rather than a setting.

/// What the sender on a full bounded channel does (the policy vector names `WhenFull`). Each
/// edge's policy is fixed by what the pipeline promises, so it is named here, next to the
/// capacities ([`ChannelConfig::FORWARD_WHEN_FULL`] and the others), not chosen in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// The sender waits for room: the edge passes backpressure upstream.
    Block,
    /// The sender never waits: a receiver that falls behind loses the oldest items and skips
    /// ahead to the newest.
    DropOldest,
}

/// Capacities of the pipeline's bounded channels (`[pipeline]` in the serve config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Messages from the source to the stage; `None` leaves room for the source's whole
    /// receive window, and at least 16 ([`ChannelConfig::forward_capacity`]), so the source
    /// rarely holds messages itself.
    pub forward: Option<usize>,
    /// Most messages the stage takes from the forward channel at once.
    pub batch: usize,
    /// Batches queued for the store sink.
    pub store_queue: usize,
    /// Live events a slow subscriber may fall behind by before it skips ahead.
    pub live: usize,
}

impl ChannelConfig {
    /// The defaults: forward channel sized by the receive window, batches of 1024 messages,
    /// 8 batches queued for the store, 4096 live events.
    pub const DEFAULT: ChannelConfig = ChannelConfig {
        forward: None,
        batch: 1024,
        store_queue: 8,
        live: 4096,
    };

    /// Source → stage. The source never waits on it, though: it holds what does not fit, at
    /// most one receive window, and stops polling while that is full, so the broker's receive
    /// maximum carries the backpressure without stalling keep-alives and acks.
    pub const FORWARD_WHEN_FULL: WhenFull = WhenFull::Block;

    /// Stage → store sink: the stage waits. The one place ingest slows down.
    pub const STORE_WHEN_FULL: WhenFull = WhenFull::Block;

    /// Stage → live subscribers (a broadcast): live state never slows ingest.
    pub const LIVE_WHEN_FULL: WhenFull = WhenFull::DropOldest;

    /// The forward channel's capacity for a source with this receive maximum.
    #[must_use]
    pub fn forward_capacity(&self, receive_maximum: u16) -> usize {
        self.forward
            .unwrap_or_else(|| usize::from(receive_maximum).max(16))
            .max(1)
    }
}
