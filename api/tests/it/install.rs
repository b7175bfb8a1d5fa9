//! `patrol` as a station installs it: the binary started outside the repository. The demo
//! finds no `./fixtures` there and runs on the fixture county built into it.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use devkit::testkit::{free_port, free_port_run};

use crate::support::patrol;

#[test]
fn demo_runs_from_any_directory_on_the_built_in_county() {
    let cwd = tempfile::tempdir().unwrap();
    let data = cwd.path().join("data");
    let (http, mqtt) = (free_port(), free_port());
    let mut child = patrol()
        .current_dir(cwd.path())
        .args(["demo", "--duration", "3", "--data"])
        .arg(&data)
        .args(["--http", &format!("127.0.0.1:{http}")])
        .args(["--mqtt-port", &mqtt.to_string()])
        .args(["--gateway-port", &free_port_run(6).to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .collect();
    let status = child.wait().unwrap();
    let text = lines.join("\n");
    assert!(status.success(), "{status}: {text}");
    assert!(
        text.contains("running on the built-in fixture county"),
        "{text}"
    );
    assert!(
        text.contains(&format!("API http://127.0.0.1:{http}/")),
        "{text}"
    );
    // What it ran on is the committed county, loaded by the one validator.
    let j = model::jurisdiction::Jurisdiction::load(&data.join("fixtures")).unwrap();
    assert!(j.units().len() > 30, "{} units", j.units().len());
    assert!(!cwd.path().join("fixtures").exists());
}
