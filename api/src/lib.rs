//! The `patrol` binary's library: command line, HTTP API, simulator, demo wiring.
//!
//! # Layout
//! - [`cli`]: the command line; [`commands`]: what each subcommand does; [`analyze`]: the
//!   patrol analytics jobs behind `patrol analyze`.
//! - [`config`]: the `serve` config file.
//! - [`gateways`]: the device gateways' addresses and the OsmAnd HTTP gateway.
//! - [`server`]: the axum router and route table; [`http`]: its handlers, auth, errors,
//!   OpenAPI and the embedded map page.
//! - `kit` (the default `demo` feature): `patrol demo`, `simulate` and `generate`, on the
//!   `demo` crate's simulator and fixture county.
//! - [`report`]: the weekly intelligence report (`patrol report`).
//! - [`plan`]: next week's roster and directed visits (`patrol plan`).
//! - [`wiring`]: jurisdiction → stages → pipeline → API, shared by `demo` and `serve`.

pub mod analyze;
pub mod cli;
pub mod commands;
pub mod config;
pub mod gateways;
pub mod http;
#[cfg(feature = "demo")]
mod kit;
pub mod plan;
pub mod report;
pub mod server;
pub mod wiring;

/// Runs one command.
///
/// # Errors
/// Any failure, with context naming the file, flag or key involved.
pub fn run(cli: cli::Cli) -> anyhow::Result<()> {
    commands::run(cli.command)
}
