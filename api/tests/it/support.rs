//! Helpers shared by the integration tests: paths, a private Mosquitto, child processes.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository's fixture county.
pub(crate) fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// The `patrol` binary built for these tests.
pub(crate) fn patrol() -> Command {
    Command::new(env!("CARGO_BIN_EXE_patrol"))
}

/// A free loopback port.
pub(crate) fn free_port() -> u16 {
    devkit::broker::free_port().unwrap()
}

/// Waits until something listens on `port`.
pub(crate) fn wait_listening(port: u16, limit: Duration) {
    let deadline = Instant::now() + limit;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listening on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A Mosquitto process on its own port, killed on drop.
pub(crate) struct Mosquitto {
    child: Child,
    pub(crate) port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `mosquitto` (from `PATROL_TEST_MOSQUITTO_BIN`, or `mosquitto` on the PATH) with
/// `extra` config lines after a listener on a free port.
pub(crate) fn mosquitto(extra: &str) -> Mosquitto {
    let port = free_port();
    mosquitto_with_config(port, &format!("listener {port} 127.0.0.1\n{extra}\n"))
}

/// Starts `mosquitto` with the whole config `text`, which must listen on `port`.
pub(crate) fn mosquitto_with_config(port: u16, text: &str) -> Mosquitto {
    let bin = std::env::var("PATROL_TEST_MOSQUITTO_BIN").unwrap_or_else(|_| "mosquitto".into());
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(&conf, text).unwrap();
    let child = Command::new(&bin)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e} (install mosquitto)"));
    wait_listening(port, Duration::from_secs(10));
    Mosquitto {
        child,
        port,
        _dir: dir,
    }
}

impl Mosquitto {
    /// Kills the broker with SIGKILL (no shutdown save) and waits for it to die.
    pub(crate) fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts the broker again with the same config file (so the same port and persistence
    /// directory) after [`Mosquitto::kill9`], and waits until it listens.
    pub(crate) fn restart(&mut self) {
        let bin = std::env::var("PATROL_TEST_MOSQUITTO_BIN").unwrap_or_else(|_| "mosquitto".into());
        self.child = Command::new(&bin)
            .arg("-c")
            .arg(self._dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        wait_listening(self.port, Duration::from_secs(10));
    }
}

/// The value of the Prometheus counter or gauge `name` in `/metrics` of the server on `port`,
/// read with the admin `token`; `None` while the server does not answer.
pub(crate) fn metric(port: u16, token: &str, name: &str) -> Option<u64> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
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
