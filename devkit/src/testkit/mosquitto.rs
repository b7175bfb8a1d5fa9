//! A Mosquitto process of a test's own, on a free port, for the tests that kill or restart
//! the broker or give it a config of their own (the shared one at `PATROL_TEST_MOSQUITTO`
//! serves the rest).
//!
//! The binary is `PATROL_TEST_MOSQUITTO_BIN`, or `mosquitto` on the `PATH`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_listening};

/// How long a starting broker may take to listen.
const START_LIMIT: Duration = Duration::from_secs(10);

/// The Mosquitto binary the tests run.
pub fn binary() -> PathBuf {
    std::env::var_os("PATROL_TEST_MOSQUITTO_BIN").map_or_else(|| "mosquitto".into(), PathBuf::from)
}

/// A running Mosquitto, killed on drop.
#[derive(Debug)]
pub struct Mosquitto {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Mosquitto with a listener on a free port followed by the config lines `extra`.
///
/// # Panics
/// When it cannot be started or does not listen within 10 s.
pub fn mosquitto(extra: &str) -> Mosquitto {
    let port = free_port();
    mosquitto_with_config(port, &format!("listener {port} 127.0.0.1\n{extra}\n"))
}

/// Starts Mosquitto with the whole config `text`, which must listen on `port`.
///
/// # Panics
/// When it cannot be started or does not listen within 10 s.
pub fn mosquitto_with_config(port: u16, text: &str) -> Mosquitto {
    let dir = tempfile::tempdir().expect("a temporary folder for the broker's config");
    std::fs::write(dir.path().join("mosquitto.conf"), text).expect("the broker's config written");
    let child = spawn(&dir.path().join("mosquitto.conf"));
    wait_listening(port, START_LIMIT);
    Mosquitto { child, port, dir }
}

fn spawn(conf: &Path) -> Child {
    let bin = binary();
    Command::new(&bin)
        .arg("-c")
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (install mosquitto or set PATROL_TEST_MOSQUITTO_BIN)",
                bin.display()
            )
        })
}

impl Mosquitto {
    /// Kills the broker with SIGKILL (it saves nothing on the way out) and waits for it to
    /// die.
    ///
    /// # Panics
    /// When the process cannot be killed or waited for.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL to the broker");
        self.child.wait().expect("the killed broker reaped");
    }

    /// Starts the broker again with the same config file (so the same port and persistence
    /// folder) after [`Mosquitto::kill9`], and waits until it listens.
    ///
    /// # Panics
    /// When it cannot be started or does not listen within 10 s.
    pub fn restart(&mut self) {
        self.child = spawn(&self.dir.path().join("mosquitto.conf"));
        wait_listening(self.port, START_LIMIT);
    }
}
