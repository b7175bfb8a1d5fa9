//! The single integration test binary of `ingest`; one module per area.

// Test helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod events;
mod fuzz;
mod geofence;
mod mqtt;
mod restart;
