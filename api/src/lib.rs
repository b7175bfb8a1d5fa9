//! The `patrol` binary's library: command line, HTTP API, simulator, demo wiring.
//!
//! # Layout
//! - [`cli`]: the command line; [`commands`]: what each subcommand does; [`analyze`]: the
//!   patrol analytics jobs behind `patrol analyze`.
//! - [`config`]: the `serve` config file.
//! - [`server`]: the axum router and route table; [`http`]: its handlers, auth, errors,
//!   OpenAPI and the embedded map page.
//! - [`sim`]: fleet simulator and bulk generator.
//! - [`county`]: the generator of the demo jurisdiction.
//! - [`report`]: the weekly intelligence report (`patrol report`).
//! - [`wiring`]: jurisdiction → stages → pipeline → API, shared by `demo` and `serve`.

pub mod analyze;
pub mod cli;
pub mod commands;
pub mod config;
pub mod county;
pub mod http;
pub mod report;
pub mod server;
pub mod sim;
pub mod wiring;

/// Runs one command.
///
/// # Errors
/// Any failure, with context naming the file, flag or key involved.
pub fn run(cli: cli::Cli) -> anyhow::Result<()> {
    commands::run(cli.command)
}
