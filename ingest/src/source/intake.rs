//! The pipeline's one way in, shared by every source: the MQTT source and the device
//! gateways.
//!
//! # Sequence numbers and acks
//! The store reports durability as one number: every input numbered up to it is durable.
//! That holds only if inputs reach the stage in the order of their numbers, so
//! [`Intake`] numbers an input and puts it in the channel under one lock, with a send that
//! never waits (a permit reserved before). Sources then acknowledge in their own ways: the
//! MQTT source acks in arrival order as the durable number passes its messages; a gateway
//! connection waits for [`Intake::durable`] of its last input and then answers its device.

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};

use crate::decode::RawPing;
use crate::ping::{EpochMillis, Rejection};

/// One input, numbered in the order the stage receives it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Sequence number; the store's durable number covers every input up to it.
    pub seq: u64,
    /// What arrived.
    pub body: Body,
    /// Receive time.
    pub recv_time: EpochMillis,
}

/// What a source hands to the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// An MQTT message as received (OwnTracks JSON), decoded by the stage.
    Mqtt {
        /// The topic.
        topic: String,
        /// The payload as received.
        payload: Vec<u8>,
    },
    /// A device gateway's position, decoded and mapped to its unit; validated by the stage.
    Fix {
        /// The position, with the unit and station of the device.
        raw: Box<RawPing>,
        /// Where it came from, `<protocol>/<device>`: a rejection's topic.
        origin: String,
        /// The frame it came in, kept if the stage refuses the position.
        frame: Vec<u8>,
    },
    /// A frame a gateway refused, to keep with its reason.
    Reject(Rejection),
}

/// The pipeline went away (shutdown): nothing more is taken, nothing more becomes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ingest is shutting down")]
pub struct Closed;

/// The sending side of the pipeline's input, for any number of sources (cheap to clone).
#[derive(Debug, Clone)]
pub struct Intake {
    tx: mpsc::Sender<Delivery>,
    /// The last number given; held while the numbered input enters the channel.
    last: Arc<Mutex<u64>>,
    durable: watch::Receiver<u64>,
}

impl Intake {
    /// An intake over the pipeline's input channel and the store's durable number.
    #[must_use]
    pub fn new(tx: mpsc::Sender<Delivery>, durable: watch::Receiver<u64>) -> Self {
        let last = *durable.borrow();
        Intake {
            tx,
            last: Arc::new(Mutex::new(last)),
            durable,
        }
    }

    /// Hands `body` to the pipeline, waiting while its channel is full; returns its number.
    ///
    /// # Errors
    /// [`Closed`] when the pipeline has stopped.
    pub async fn submit(&self, body: Body, recv_time: EpochMillis) -> Result<u64, Closed> {
        let permit = self.tx.reserve().await.map_err(|_| Closed)?;
        Ok(self.send(permit, body, recv_time))
    }

    /// Hands `body` to the pipeline if its channel has room, else gives it back.
    ///
    /// # Errors
    /// The body, when the channel is full or closed.
    pub fn try_submit(&self, body: Body, recv_time: EpochMillis) -> Result<u64, Body> {
        match self.tx.try_reserve() {
            Ok(permit) => Ok(self.send(permit, body, recv_time)),
            Err(_) => Err(body),
        }
    }

    /// Waits until the channel has room, for [`Intake::send`].
    ///
    /// # Errors
    /// [`Closed`] when the pipeline has stopped.
    pub async fn reserve(&self) -> Result<mpsc::Permit<'_, Delivery>, Closed> {
        self.tx.reserve().await.map_err(|_| Closed)
    }

    /// Numbers `body` and sends it with a permit [`Intake::reserve`] gave; never waits.
    pub fn send(
        &self,
        permit: mpsc::Permit<'_, Delivery>,
        body: Body,
        recv_time: EpochMillis,
    ) -> u64 {
        // A poisoned lock still holds a valid number: the send under it cannot panic.
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *last += 1;
        permit.send(Delivery {
            seq: *last,
            body,
            recv_time,
        });
        *last
    }

    /// Waits until input `seq` is durable.
    ///
    /// # Errors
    /// [`Closed`] when the store stopped before it was.
    pub async fn durable(&self, seq: u64) -> Result<(), Closed> {
        let mut rx = self.durable.clone();
        rx.wait_for(|&d| d >= seq)
            .await
            .map(|_| ())
            .map_err(|_| Closed)
    }

    /// The store's durable number, for a source that acks by watching it.
    #[must_use]
    pub fn durable_watch(&self) -> watch::Receiver<u64> {
        self.durable.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mqtt(n: u8) -> Body {
        Body::Mqtt {
            topic: "owntracks/ST1/C01".into(),
            payload: vec![n],
        }
    }

    /// Many sources at once: the stage receives the numbers in order, each once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inputs_from_many_tasks_arrive_in_the_order_of_their_numbers() {
        let (tx, mut rx) = mpsc::channel(4);
        let (_durable_tx, durable_rx) = watch::channel(0);
        let intake = Intake::new(tx, durable_rx);
        let mut tasks = Vec::new();
        for t in 0..8u8 {
            let intake = intake.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..500 {
                    if intake.try_submit(mqtt(t), 0).is_err() {
                        intake.submit(mqtt(t), 0).await.map_err(|_| "closed")?;
                    }
                }
                Ok::<_, &str>(())
            }));
        }
        drop(intake);
        let mut seen = Vec::new();
        while let Some(d) = rx.recv().await {
            seen.push(d.seq);
        }
        for t in tasks {
            assert_eq!(t.await.ok(), Some(Ok(())));
        }
        assert_eq!(seen, (1..=4000).collect::<Vec<u64>>());
    }

    #[tokio::test]
    async fn durable_waits_for_the_store_and_fails_when_it_stops() {
        let (tx, _rx) = mpsc::channel(4);
        let (durable_tx, durable_rx) = watch::channel(0);
        let intake = Intake::new(tx, durable_rx);
        let seq = intake.submit(mqtt(1), 0).await;
        assert_eq!(seq, Ok(1));
        let waiting = tokio::spawn({
            let intake = intake.clone();
            async move { intake.durable(1).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        durable_tx.send_replace(1);
        assert_eq!(waiting.await.ok(), Some(Ok(())));
        drop(durable_tx);
        assert_eq!(intake.durable(2).await, Err(Closed));
    }
}
