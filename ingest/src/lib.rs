//! Ingest: everything between a device's report (MQTT, or a device gateway) and a durable,
//! queryable record.
//!
//! # Layout
//! - [`ping`]: the validated `Ping`, its flags, and the `Rejection` record.
//! - [`decode`] and [`validate`]: pure functions from bytes to `Ping` or `Rejection`.
//! - [`geofence`]: the H3-indexed `GeofenceIndex` over `model`'s fence catalog, catalog checks.
//! - [`events`]: per-unit enter/exit, crossing, checkpoint and duty events from fixes.
//! - [`import`]: GPX and CSV track files for backfill.
//! - [`store`]: the write-ahead log and the Parquet store (its schema is `model::schema`).
//! - [`source`]: the intake every source hands its inputs to, and the MQTT source (the only
//!   module that names rumqttc).
//! - [`gateway`]: device protocols (JT/T 808, GT06, Teltonika, OsmAnd, TETRA LIP, NMEA) and
//!   their TCP/UDP servers, into the same intake.
//! - [`sink`]: live per-unit state for the API.
//! - [`channels`]: the bounded channels between the stages: capacities and full-channel
//!   policies.
//! - [`pipeline`]: the wiring of source, stages and sinks.

pub mod channels;
pub mod decode;
pub mod events;
pub mod gateway;
pub mod geofence;
pub mod import;
pub mod ping;
pub mod pipeline;
pub mod sink;
pub mod source;
pub mod store;
pub mod validate;
