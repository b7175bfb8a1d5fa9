//! The HTTP API's modules; [`crate::server`] assembles them into the router.
//!
//! Each module depends only on those listed before it (leaf modules first), so the handlers
//! never reach back to the router that calls them:
//! - [`error`]: [`error::ApiError`], the one error type and its JSON shape.
//! - [`params`]: declared, checked query parameters.
//! - [`auth`]: bearer tokens, roles, station scope and the guard middleware.
//! - [`limits`]: per-token slots and store reads that stop with their request.
//! - [`reference`]: the jurisdiction's fleet and layers as served.
//! - [`table`]: the `format` parameter and the CSV, Parquet and Arrow answers.
//! - [`openapi`]: each route's documentation ([`openapi::RouteDoc`]) and the generated
//!   OpenAPI document.
//! - [`hub`]: the live fan-out to SSE clients, the event log and the units cache.
//! - [`answers`]: the analytics answers cache and job slots.
//! - [`state`]: [`state::AppState`], what every handler is given.
//! - [`history`]: route replay, "who was here" and the base layers.
//! - [`live`]: live units, the SSE stream and the event log.
//! - [`analytics`]: the analytics jobs over HTTP.
//! - `page`: the embedded command-room map.

pub mod analytics;
pub mod answers;
pub mod auth;
pub mod error;
pub mod history;
pub mod hub;
pub mod limits;
pub mod live;
pub mod openapi;
pub(crate) mod page;
pub mod params;
pub mod reference;
pub mod state;
pub mod table;
