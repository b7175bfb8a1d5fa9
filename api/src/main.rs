//! The `patrol` binary: parses the command line and hands over to [`api::run`].

use std::process::ExitCode;

use clap::Parser;

/// jemalloc rather than the system allocator: on a week of 9.8M pings the coverage job peaked
/// at 2.6 GB instead of 3.4 GB in the same time (BENCHMARKS.md, "Analytics"). It is built to keep
/// freed pages for reuse (`.cargo/config.toml`), which made the 100M-ping week two to four
/// times faster; its settings can be changed at start through `_RJEM_MALLOC_CONF`.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rumqttd=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = api::cli::Cli::parse();
    match api::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
