//! The HTTP API's modules; [`crate::server`] assembles them into the router.
//!
//! - [`analytics`]: the analytics jobs over HTTP, cached.
//! - [`auth`]: bearer tokens, roles, station scope and the guard middleware.
//! - [`error`]: [`error::ApiError`], the one error type and its JSON shape.
//! - [`params`]: declared, checked query parameters.
//! - [`limits`]: per-token slots and store reads that stop with their request.
//! - [`live`]: live units, the SSE stream and the event log.
//! - [`history`]: route replay, "who was here" and the base layers.
//! - [`reference`]: the jurisdiction's fleet and layers as served.
//! - [`openapi`]: the generated OpenAPI document.
//! - [`table`]: the `format` parameter and the CSV, Parquet and Arrow answers.
//! - `page`: the embedded command-room map.

pub mod analytics;
pub mod auth;
pub mod error;
pub mod history;
pub mod limits;
pub mod live;
pub mod openapi;
pub(crate) mod page;
pub mod params;
pub mod reference;
pub mod table;
