//! Helpers shared by the integration tests of `api`: the `patrol` binary and its `serve`
//! command, and `/metrics` values. The workspace's test kit (`devkit::testkit`) has the rest.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};

use devkit::testkit::fixtures;

/// The `patrol` binary built for these tests.
pub(crate) fn patrol() -> Command {
    Command::new(env!("CARGO_BIN_EXE_patrol"))
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
