//! The development kit: what the demo, the tests and the benchmarks need and the product does
//! not. It depends on no other crate of the workspace, so that every crate's tests may depend
//! on it.
//!
//! # Layout
//!
//! - [`broker`]: the embedded MQTT broker (rumqttd) of `patrol demo` and of the tests.
//! - [`bench`]: what the MQTT benchmarks share (a raw coalescing MQTT 5 client, pacing, CPU
//!   time, percentiles).
//! - [`testkit`]: the tests' paths (the fixture county, the public data in `../shared/data`),
//!   waits on a condition, an HTTP/1.1 client and a Server-Sent Events reader, and a private
//!   Mosquitto.

pub mod bench;
pub mod broker;
pub mod testkit;
