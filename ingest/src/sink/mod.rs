//! Sinks at the end of the pipeline. The durable store sink lives in [`crate::pipeline`] (it is
//! a thread around [`crate::store::Store`]); [`live`] keeps what the command room sees and
//! sweeps silent units offline.

pub mod live;
