//! Analytics: jobs over the patrol store and the jurisdiction files.
//!
//! This crate depends on neither `ingest` nor `api`: its inputs are the store's Parquet schema
//! and the jurisdiction's files on disk.
//!
//! # Layout
//! - [`roads`]: road network loading (OSM XML, GeoJSON) and routing.

pub mod roads;
