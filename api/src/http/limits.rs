//! What keeps one caller from holding the server: slots counted per token (open live streams,
//! analytics jobs) and blocking store reads that stop once nobody waits for their answer.
//!
//! A request's work is time-limited by the deadline layer of [`crate::server::app`], which
//! drops the handler's future when the route's deadline passes; hyper drops it too when the
//! client closes the connection. Dropping a future cannot stop a thread of the blocking pool,
//! so [`blocking`] hands its work a [`Stop`] that the dropped future fires, and the readers'
//! loops check it between files and batches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

use crate::http::auth::TokenId;
use crate::http::error::{ApiError, ApiResult};

/// How many of a resource each token may hold at once.
#[derive(Debug)]
pub struct PerToken {
    limit: usize,
    held: Arc<Mutex<HashMap<usize, usize>>>,
}

impl PerToken {
    /// At most `limit` slots per token.
    pub fn new(limit: usize) -> PerToken {
        PerToken {
            limit,
            held: Arc::default(),
        }
    }

    /// The most slots one token may hold.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A slot for `token`, held until the [`Slot`] is dropped, or `None` when the token
    /// already holds [`PerToken::limit`] of them.
    pub fn try_acquire(&self, token: TokenId) -> Option<Slot> {
        // A panic while the map was locked leaves counts that are still counts.
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let n = held.entry(token.0).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(Slot {
            token: token.0,
            held: self.held.clone(),
        })
    }
}

/// One slot of a [`PerToken`], given back on drop.
#[derive(Debug)]
pub struct Slot {
    token: usize,
    held: Arc<Mutex<HashMap<usize, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = held.get_mut(&self.token) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.token);
            }
        }
    }
}

/// The answer of blocking work whose request went away (client gone or deadline passed).
#[derive(Debug, thiserror::Error)]
#[error("the request was stopped before its work finished")]
pub struct Stopped;

/// What blocking work checks between steps to learn that its request went away.
#[derive(Debug, Clone)]
pub struct Stop(CancellationToken);

impl Stop {
    /// `Err(Stopped)` once the request is gone.
    ///
    /// # Errors
    /// [`Stopped`] when the future of [`blocking`] was dropped.
    pub fn check(&self) -> Result<(), Stopped> {
        if self.0.is_cancelled() {
            Err(Stopped)
        } else {
            Ok(())
        }
    }
}

/// Runs `f` on the blocking pool. Dropping the returned future fires the [`Stop`] that `f`
/// receives, so a read nobody waits for ends at its next check instead of running on.
///
/// # Errors
/// [`ApiError::Internal`] when `f` fails or panics.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce(&Stop) -> anyhow::Result<T> + Send + 'static,
) -> ApiResult<T> {
    let token = CancellationToken::new();
    let stop = Stop(token.clone());
    let _stop_when_dropped = token.drop_guard();
    tokio::task::spawn_blocking(move || f(&stop))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("store reader panicked: {e}")))?
        .map_err(ApiError::Internal)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn slots_are_counted_per_token_and_given_back() {
        let slots = PerToken::new(2);
        let a1 = slots.try_acquire(TokenId(1)).unwrap();
        let _a2 = slots.try_acquire(TokenId(1)).unwrap();
        assert!(
            slots.try_acquire(TokenId(1)).is_none(),
            "a third for token 1"
        );
        let _b = slots.try_acquire(TokenId(2)).expect("token 2 has its own");
        drop(a1);
        assert!(
            slots.try_acquire(TokenId(1)).is_some(),
            "given back on drop"
        );
    }

    /// A read whose request is dropped (the deadline layer does that, and hyper when the
    /// client leaves) ends at its next check instead of running on in the blocking pool.
    #[test]
    fn dropped_requests_stop_their_blocking_work() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        rt.block_on(async {
            let work = blocking(move |stop| {
                let steps = (0u64..)
                    .take_while(|_| {
                        std::thread::sleep(Duration::from_millis(1));
                        stop.check().is_ok()
                    })
                    .count();
                let _ = done_tx.send(steps);
                Err(Stopped.into())
            });
            let r: Result<ApiResult<()>, _> =
                tokio::time::timeout(Duration::from_millis(50), work).await;
            assert!(r.is_err(), "the work never ends by itself");
        });
        let steps = done_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the blocking work stopped after its future was dropped");
        assert!(steps > 0, "it ran until the drop");
        // And work that is awaited to the end is not stopped.
        let r = rt.block_on(blocking(|stop| {
            std::thread::sleep(Duration::from_millis(20));
            Ok(stop.check().is_ok())
        }));
        assert!(r.unwrap());
    }
}
