//! The `patrol` binary: parses the command line and hands over to [`api::run`].

use std::process::ExitCode;

use clap::Parser;

/// jemalloc rather than the system allocator: on a week of 9.8M pings the coverage job peaked
/// at 2.6 GB instead of 3.4 GB in the same time (BENCHMARKS.md, "Analytics"). Its settings can be
/// changed at start through `_RJEM_MALLOC_CONF`.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Makes jemalloc keep the pages it frees for reuse instead of handing them back to the kernel
/// after its 10 s decay, in the arenas it has and those it makes later. `patrol analyze` frees
/// and allocates a pass's buffers again and again, and faulting them back in made the 100M-ping
/// week 1.6 times slower (BENCHMARKS.md, "Analytics"); its memory stays at the largest pass's
/// peak, which `--pass-fixes` bounds. The other commands keep the decay: `patrol generate`
/// peaked at 3.6 GB instead of 2.0 GB for a day of 8,000 units without it. A process started
/// with `_RJEM_MALLOC_CONF` set keeps what that says.
fn keep_freed_pages() {
    use tikv_jemalloc_ctl::{Access, AsName};
    if std::env::var_os("_RJEM_MALLOC_CONF").is_some() {
        return;
    }
    let keep = |name: &str| name.as_bytes().name().write(-1isize);
    let mut failed = None;
    // The defaults of the arenas made from now on.
    for name in ["arenas.dirty_decay_ms\0", "arenas.muzzy_decay_ms\0"] {
        failed = keep(name).err().or(failed);
    }
    // The arenas made so far (those not yet made refuse the setting).
    let arenas: u32 = b"arenas.narenas\0".name().read().unwrap_or(0);
    for i in 0..arenas {
        for decay in ["dirty", "muzzy"] {
            let _unmade = keep(&format!("arena.{i}.{decay}_decay_ms\0"));
        }
    }
    if let Some(error) = failed {
        tracing::warn!(%error, "jemalloc decay not turned off");
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rumqttd=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = api::cli::Cli::parse();
    if matches!(cli.command, api::cli::Command::Analyze(_)) {
        keep_freed_pages();
    }
    match api::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
