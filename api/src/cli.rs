//! The `patrol` command line: one binary, one subcommand per job.
//!
//! Flags override the config file; errors name the bad flag, key or file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// GPS patrol tracking and geofence analytics for police stations.
#[derive(Debug, Parser)]
#[command(name = "patrol", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    #[cfg(feature = "demo")]
    /// Run everything on this machine: embedded broker, fleet simulator, ingest and the API.
    Demo(DemoArgs),
    /// Run ingest and the API against a real broker.
    Serve(ServeArgs),
    #[cfg(feature = "demo")]
    /// Publish simulated patrol pings over MQTT.
    Simulate(SimulateArgs),
    #[cfg(feature = "demo")]
    /// Write simulated tracks straight into a store (fast; for benchmarks and analysis).
    Generate(GenerateArgs),
    /// Load GPX or CSV track files into a store (backfill).
    Import(ImportArgs),
    /// Check a fence catalog, or assign points to beats and zones.
    #[command(subcommand)]
    Fences(FencesCommand),
    #[cfg(feature = "demo")]
    /// Write the demo jurisdiction files (the fixture county).
    Fixtures(FixturesArgs),
    /// Run an analytics job over a store.
    Analyze(AnalyzeArgs),
    /// Build the weekly intelligence report.
    Report(ReportArgs),
    /// Plan next week's roster and directed hot-spot visits from the forecast.
    Plan(PlanArgs),
    /// Manage API bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

/// `patrol token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new random token and the `[[tokens]]` lines (with its hash) for the config.
    New {
        /// command (live and events), analyst (analytics and history), chief (all reads) or
        /// admin (all reads and /metrics).
        #[arg(long)]
        role: crate::http::auth::Role,
        /// Station the token is limited to; omit for the whole county.
        #[arg(long)]
        station: Option<String>,
        /// A label for logs (who holds the token).
        #[arg(long)]
        name: Option<String>,
    },
}

#[cfg(feature = "demo")]
/// Arguments of `patrol demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo keeps its store.
    #[arg(long, default_value = "data/demo")]
    pub data: PathBuf,
    /// Jurisdiction directory (default: `./fixtures` when it holds one, else the fixture county
    /// built into the binary, written to `<data>/fixtures`).
    #[arg(long)]
    pub fixtures: Option<PathBuf>,
    /// HTTP listen address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// Port of the embedded MQTT broker (on 127.0.0.1; not 1883, which a local Mosquitto may hold).
    #[arg(long, default_value_t = 11883)]
    pub mqtt_port: u16,
    /// First port of the device gateways on 127.0.0.1, one after another: OsmAnd (HTTP),
    /// JT/T 808, GT06, Teltonika, TETRA LIP (UDP and TCP) and NMEA (UDP and TCP); the
    /// simulated units report through them and MQTT in turn. 0 turns them off (all MQTT).
    #[arg(long, default_value_t = 15055)]
    pub gateway_port: u16,
    /// Above 1, the fleet starts a little in the past (within the reorder window, so every
    /// fix arrives live) and catches up at this many simulated seconds per real second, then
    /// runs at real time: devices never report the future.
    #[arg(long, default_value_t = 1.0)]
    pub speedup: f64,
    /// Stop after this many seconds (runs until Ctrl-C when absent).
    #[arg(long)]
    pub duration: Option<u64>,
}

/// Arguments of `patrol serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML config file; flags override it.
    #[arg(long, env = "PATROL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Broker URL, e.g. mqtt://127.0.0.1:1883.
    #[arg(long, env = "PATROL_MQTT")]
    pub mqtt: Option<String>,
    /// Store directory.
    #[arg(long, env = "PATROL_STORE")]
    pub store: Option<PathBuf>,
    /// Jurisdiction directory.
    #[arg(long, env = "PATROL_FIXTURES")]
    pub fixtures: Option<PathBuf>,
    /// HTTP listen address.
    #[arg(long, env = "PATROL_HTTP")]
    pub http: Option<SocketAddr>,
    /// Purge pings and rejections older than this many days (officer locations are sensitive).
    #[arg(long, env = "PATROL_RETENTION_DAYS")]
    pub retention_days: Option<u32>,
}

#[cfg(feature = "demo")]
/// Arguments of `patrol simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Broker URL, e.g. mqtt://127.0.0.1:1883.
    #[arg(long)]
    pub broker: String,
    /// Jurisdiction directory.
    #[arg(long)]
    pub fixtures: PathBuf,
    /// Above 1, the fleet starts a little in the past (within the reorder window, so every
    /// fix arrives live) and catches up at this many simulated seconds per real second, then
    /// runs at real time: devices never report the future.
    #[arg(long, default_value_t = 1.0)]
    pub speedup: f64,
    /// Stop after this many real seconds (runs until Ctrl-C when absent).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Scale of the fault rates (0 = clean data, 1 = the documented defaults).
    #[arg(long, default_value_t = 1.0)]
    pub faults: f64,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// First port of `patrol serve`'s device gateways on the broker's host, laid out as
    /// `patrol demo --gateway-port` lays them out; the units then report through them and
    /// MQTT in turn. Without it every unit reports over MQTT.
    #[arg(long)]
    pub gateway_port: Option<u16>,
}

#[cfg(feature = "demo")]
/// Arguments of `patrol generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Jurisdiction directory.
    #[arg(long)]
    pub fixtures: PathBuf,
    /// Store directory to write.
    #[arg(long)]
    pub store: PathBuf,
    /// Number of days, starting at --start.
    #[arg(long)]
    pub days: u32,
    /// Number of units (defaults to the jurisdiction's fleet; more are cloned from it).
    #[arg(long)]
    pub units: Option<u32>,
    /// First day (local date), default the first roster day.
    #[arg(long)]
    pub start: Option<chrono::NaiveDate>,
    /// Seconds between pings of each unit (default: by kind, 5-30 s).
    #[arg(long)]
    pub interval: Option<u32>,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Arguments of `patrol import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Store directory.
    #[arg(long)]
    pub store: PathBuf,
    /// Jurisdiction directory.
    #[arg(long)]
    pub fixtures: PathBuf,
    /// Unit id for files that do not name one.
    #[arg(long)]
    pub unit: Option<String>,
    /// Station id for the imported unit (default: from units.csv).
    #[arg(long)]
    pub station: Option<String>,
    /// GPX or CSV files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// `patrol fences ...`.
#[derive(Debug, Subcommand)]
pub enum FencesCommand {
    /// Validate a jurisdiction's beats and zones and print a report.
    Check {
        /// Jurisdiction directory.
        dir: PathBuf,
    },
    /// Assign points (CSV with id, lat, lon) to beats and zones.
    Assign {
        /// Jurisdiction directory.
        #[arg(long)]
        fixtures: PathBuf,
        /// Input CSV.
        #[arg(long)]
        points: PathBuf,
        /// Output CSV.
        #[arg(long)]
        out: PathBuf,
    },
}

#[cfg(feature = "demo")]
/// Arguments of `patrol fixtures`.
#[derive(Debug, Args)]
pub struct FixturesArgs {
    /// Directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Random seed (the committed fixtures use 7).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// Arguments of `patrol analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Job: dosage, coverage, hotspots, gaps, koper, compliance (also writes `<out>-force` and
    /// `<out>-checkpoints`), incidents (response per incident, straight line), response,
    /// presence (dosage, coverage and gaps from one read of the pings: dosage in `<out>`,
    /// the others in `<out>-coverage` and `<out>-gaps`), backtest (forecast methods scored
    /// week by week: `<out>` and `<out>-summary`; saves the chosen methods in the store).
    pub job: analytics::jobs::Job,
    /// Store directory.
    #[arg(long)]
    pub store: PathBuf,
    /// Jurisdiction directory.
    #[arg(long)]
    pub fixtures: PathBuf,
    /// Start: RFC 3339, or YYYY-MM-DD for local midnight.
    #[arg(long)]
    pub from: String,
    /// End (excluded), in the same forms.
    #[arg(long)]
    pub to: String,
    /// H3 resolution.
    #[arg(long)]
    pub res: Option<u8>,
    /// Output file (.parquet, .csv or .json; response also writes .geojson).
    #[arg(long)]
    pub out: PathBuf,
    /// Incidents file in the columns of the jurisdiction's incidents.csv (default: that file).
    #[arg(long)]
    pub incidents: Option<PathBuf>,
    /// gaps, presence: how many gaps to list.
    #[arg(long, default_value_t = analytics::jobs::DEFAULT_TOP)]
    pub top: usize,
    /// dosage, coverage, gaps, presence: most fixes read in one pass; more are analysed in
    /// passes over groups of units, which bounds memory (three passes are in memory at once;
    /// presence peaked at about 430 bytes per fix of a pass).
    #[arg(long, default_value_t = analytics::context::DEFAULT_PASS_FIXES)]
    pub pass_fixes: u64,
    /// response: a new station at LAT,LON (repeatable; named NEW1, NEW2, ...).
    #[arg(long, value_name = "LAT,LON")]
    pub add_station: Vec<String>,
    /// response: move station ID to LAT,LON (repeatable).
    #[arg(long, value_name = "ID=LAT,LON")]
    pub move_station: Vec<String>,
    /// response: a unit posted at LAT,LON (repeatable; named POST1, POST2, ...).
    #[arg(long, value_name = "LAT,LON")]
    pub post_unit: Vec<String>,
}

/// Arguments of `patrol report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Store directory.
    #[arg(long)]
    pub store: PathBuf,
    /// Jurisdiction directory.
    #[arg(long)]
    pub fixtures: PathBuf,
    /// ISO week, e.g. 2026-W47.
    #[arg(long)]
    pub week: String,
    /// Output HTML file.
    #[arg(long)]
    pub out: PathBuf,
    /// Also print the report to this PDF file with headless Chromium (`PATROL_CHROMIUM`, or
    /// `chromium` on the PATH).
    #[arg(long)]
    pub pdf: Option<PathBuf>,
}

/// Arguments of `patrol plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Store directory (the forecast methods the backtest saved).
    #[arg(long)]
    pub store: PathBuf,
    /// Jurisdiction directory.
    #[arg(long)]
    pub fixtures: PathBuf,
    /// ISO week to plan, e.g. 2026-W48; the forecast learns from the weeks before it.
    #[arg(long)]
    pub week: String,
    /// Output roster (the columns of roster.csv); the directed stops go beside it as
    /// `<out>-visits.csv`.
    #[arg(long)]
    pub out: PathBuf,
    /// Incidents file in the jurisdiction's format (default: its incidents.csv).
    #[arg(long)]
    pub incidents: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_flag_is_named() {
        let err = Cli::try_parse_from(["patrol", "simulate", "--broker", "x", "--bogus"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--bogus"), "{err}");
    }
}
