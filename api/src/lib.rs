//! The `patrol` binary's library: command line, HTTP API, simulator, demo wiring.
//!
//! # Layout
//! - [`cli`]: the command line; [`commands`]: what each subcommand does.
//! - [`config`]: the `serve` config file.
//! - [`server`]: the axum router.
//! - [`sim`]: fleet simulator and bulk generator.
//! - [`county`]: the generator of the demo jurisdiction.
//! - [`wiring`]: jurisdiction → stages → pipeline → API, shared by `demo` and `serve`.

pub mod cli;
pub mod commands;
pub mod config;
pub mod county;
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
