//! What the workspace's tests, benchmarks and examples share: where the repository's files
//! are, waits on a condition instead of sleeps, an HTTP/1.1 client ([`http`]), a Server-Sent
//! Events reader ([`sse`]) and a private Mosquitto ([`mosquitto`]).
//!
//! The helpers panic with a message that says what was missing or awaited: they run inside
//! tests, where a panic is the test's failure.

pub mod http;
pub mod mosquitto;
pub mod sse;

use std::future::Future;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often the waits look at their condition.
const POLL: Duration = Duration::from_millis(50);

/// The repository's root (the workspace folder).
///
/// # Panics
/// Never in practice: this crate's folder always has a parent.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("devkit sits in the workspace folder")
        .to_owned()
}

/// The fixture county, `fixtures/` (the demo jurisdiction every test loads).
pub fn fixtures() -> PathBuf {
    repo().join("fixtures")
}

/// The public data set `name` in `../shared/data` beside the repository (its `README.md`
/// describes each folder).
///
/// Tests on real data are `#[ignore = "needs ../shared/data"]`, so the plain `cargo test` does
/// not run them and CI's extended step (`-- --ignored`) requires them: a missing folder fails
/// the test here rather than letting it pass having checked nothing.
///
/// # Panics
/// When the folder does not exist.
pub fn shared_data(name: &str) -> PathBuf {
    let dir = repo()
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_owned)
        .join("shared/data")
        .join(name);
    assert!(
        dir.is_dir(),
        "this test needs the public data {} (../shared/data beside the repository), which is \
         missing",
        dir.display()
    );
    dir
}

/// The `osmium` binary (Debian's `osmium-tool`), for the tests that write `.osm.pbf` files.
/// They are `#[ignore = "needs osmium"]` (or `"needs ../shared/data and osmium"`): CI's
/// extended step installs it and runs them.
///
/// # Panics
/// When it is not installed: the test fails rather than passing having checked nothing.
pub fn osmium() -> &'static str {
    let found = std::process::Command::new("osmium")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "this test needs osmium: install it (apt-get install -y osmium-tool)"
    );
    "osmium"
}

/// Where a test writes what a person may want to look at afterwards (screenshots, rendered
/// reports): `target/<name>/`, created if needed.
///
/// # Panics
/// When the folder cannot be created.
pub fn artifacts(name: &str) -> PathBuf {
    let dir = repo().join("target").join(name);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// A free loopback port (bound, then released).
///
/// # Panics
/// When the OS refuses to bind port 0.
pub fn free_port() -> u16 {
    crate::broker::free_port().unwrap_or_else(|e| panic!("{e}"))
}

/// The first of `n` consecutive loopback ports free for both TCP and UDP (each bound, then
/// released), for a program that lays its listeners out from a base port.
///
/// The run lies below the kernel's ephemeral range (`ip_local_port_range`), where no
/// outgoing connection is given a port: a program restarted on the same ports (a crash test)
/// finds them still free, which a run among the ephemeral ports does not promise.
///
/// # Panics
/// When no such run is found in 200 tries.
pub fn free_port_run(n: u16) -> u16 {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let (low, high) = (10_000u16, ephemeral_low.saturating_sub(n));
    assert!(low < high, "no room below the ephemeral ports");
    // A start that differs between processes and calls, so parallel tests spread out.
    let mut x = u64::from(std::process::id())
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    for _ in 0..200 {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let base = low + ((x >> 33) % u64::from(high - low)) as u16;
        let free = (base..base + n).all(|p| {
            std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
                && std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok()
        });
        if free {
            return base;
        }
    }
    panic!("no {n} consecutive free loopback ports in 200 tries");
}

/// Looks at `condition` every 50 ms until it holds (`true`) or `limit` has passed (`false`).
/// For callers that explain a time-out themselves; the others call [`wait_until`].
pub fn poll_until(limit: Duration, condition: impl FnMut() -> bool) -> bool {
    poll_every(POLL, limit, condition)
}

/// [`poll_until`] looking every `interval`, for a condition that costs something to look at
/// (a scan of a store on disk).
pub fn poll_every(
    interval: Duration,
    limit: Duration,
    mut condition: impl FnMut() -> bool,
) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(interval);
    }
}

/// Waits until `condition` holds, looking every 50 ms.
///
/// `limit` only guards against a hang: it measures nothing, so make it generous.
///
/// # Panics
/// After `limit`, naming `what` was awaited.
pub fn wait_until(limit: Duration, what: &str, condition: impl FnMut() -> bool) {
    assert!(
        poll_until(limit, condition),
        "timed out after {limit:?} waiting for {what}"
    );
}

/// Waits until `f` gives a value, looking every 50 ms, and returns it.
///
/// # Panics
/// After `limit`, naming `what` was awaited.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let mut found = None;
    wait_until(limit, what, || {
        found = f();
        found.is_some()
    });
    found.expect("wait_until returned, so the value was found")
}

/// [`poll_until`] inside a tokio runtime: sleeps without blocking the runtime's thread.
pub async fn poll_until_async(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// [`wait_until`] inside a tokio runtime: sleeps without blocking the runtime's thread.
///
/// # Panics
/// After `limit`, naming `what` was awaited.
pub async fn wait_until_async(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    wait_for_async(limit, what, || {
        std::future::ready(condition().then_some(()))
    })
    .await;
}

/// Waits until the future `f` makes gives a value, looking every 50 ms, and returns it.
///
/// # Panics
/// After `limit`, naming `what` was awaited.
pub async fn wait_for_async<T, F: Future<Output = Option<T>>>(
    limit: Duration,
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until something accepts connections on the loopback `port`.
///
/// # Panics
/// After `limit`.
pub fn wait_listening(port: u16, limit: Duration) {
    wait_until(limit, &format!("a listener on port {port}"), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_is_the_fixture_county() {
        assert!(fixtures().join("jurisdiction.toml").is_file());
    }

    #[test]
    #[should_panic(expected = "no-such-data-set")]
    fn missing_shared_data_fails_the_test() {
        shared_data("no-such-data-set");
    }

    #[test]
    fn wait_for_returns_the_value_once_it_appears() {
        let mut calls = 0;
        let v = wait_for(Duration::from_secs(10), "the third call", || {
            calls += 1;
            (calls == 3).then_some(calls * 10)
        });
        assert_eq!(v, 30);
    }

    #[test]
    #[should_panic(expected = "waiting for a condition that never holds")]
    fn wait_until_fails_after_its_limit() {
        wait_until(
            Duration::from_millis(120),
            "a condition that never holds",
            || false,
        );
    }

    #[test]
    fn poll_until_says_whether_the_condition_held() {
        assert!(!poll_until(Duration::from_millis(60), || false));
        let mut n = 0;
        assert!(poll_until(Duration::from_secs(10), || {
            n += 1;
            n > 2
        }));
    }
}
