//! Helpers shared by the integration tests of `api`: the `patrol` binary, its `serve` command
//! and its child processes, `/ready` and `/metrics`. The workspace's test kit
//! (`devkit::testkit`) has the rest.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use devkit::testkit::http::get_blocking;
use devkit::testkit::{fixtures, wait_for, wait_until};

/// Kills a child process on drop, so a failed test leaves none behind.
pub(crate) struct Reaper(pub(crate) Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `patrol` binary built for these tests.
pub(crate) fn patrol() -> Command {
    Command::new(env!("CARGO_BIN_EXE_patrol"))
}

/// The value of the Prometheus counter or gauge `name` in `/metrics` of the server on `port`,
/// read with the admin `token`; `None` while the server does not answer.
pub(crate) fn metric(port: u16, token: &str, name: &str) -> Option<u64> {
    let r = get_blocking(port, "/metrics", Some(token)).ok()?;
    r.body
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Waits until `patrol serve` on `port` says it is ready (`/ready` 200: connected to the
/// broker, its subscriptions granted, the store taking writes), so that what is published
/// from then on reaches it.
pub(crate) fn wait_ready(port: u16, limit: Duration) {
    wait_until(limit, &format!("/ready on port {port}"), || {
        get_blocking(port, "/ready", None).is_ok_and(|r| r.status == 200)
    });
}

/// Waits until `child` exits and returns its status.
pub(crate) fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    wait_for(limit, "the process to exit", || child.try_wait().unwrap())
}

/// Sends SIGTERM to `child` (a clean stop) and returns its exit status.
pub(crate) fn terminate(child: &mut Child) -> ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM {}", child.id());
    wait_exit(child, Duration::from_secs(30))
}

/// `patrol serve` with `config` on the fixture county, `store` and HTTP on `http`, logging
/// warnings; the caller sets its output and spawns it.
pub(crate) fn serve_command(config: &Path, store: &Path, http: u16) -> Command {
    let mut cmd = patrol();
    cmd.args(["serve", "--config"])
        .arg(config)
        .arg("--fixtures")
        .arg(fixtures())
        .arg("--store")
        .arg(store)
        .args(["--http", &format!("127.0.0.1:{http}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    cmd
}
