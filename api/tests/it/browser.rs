//! The map page in headless Chromium, driven over the DevTools protocol (see [`crate::cdp`]):
//! `patrol demo` runs, the page opens with the demo's token, units move, a unit's replay
//! opens, the layers switch, screenshots are saved under `target/browser-test/`, and the
//! console stays clean.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use devkit::testkit::{artifacts, fixtures, free_port, free_port_run, poll_until, wait_listening};
use serde_json::{Value, json};

use crate::cdp::{Browser, chromium};
use crate::support::{Reaper, patrol};

#[test]
#[ignore = "needs chromium"]
fn map_page_shows_live_units_replay_and_layers() {
    let chrome = chromium();
    // The real demo: embedded broker, simulator, ingest and the API.
    let data = tempfile::tempdir().unwrap();
    let (http, mqtt) = (free_port(), free_port());
    let mut demo = patrol()
        .args(["demo", "--data"])
        .arg(data.path())
        .arg("--fixtures")
        .arg(fixtures())
        .args(["--http", &format!("127.0.0.1:{http}")])
        .args(["--mqtt-port", &mqtt.to_string()])
        .args(["--gateway-port", &free_port_run(6).to_string()])
        .args(["--speedup", "10"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Keep reading the demo's output to the end: a closed pipe would fail its next print.
    let out = BufReader::new(demo.stdout.take().unwrap());
    let _demo = Reaper(demo);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let prefix = format!("http://127.0.0.1:{http}/#token=");
    let mut url = None;
    while url.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the demo prints its URLs");
        url = line.find(&prefix).map(|i| line[i..].trim().to_owned());
    }
    let url = url.expect("the demo prints the map URL with a token");
    wait_listening(http, Duration::from_secs(90));

    let mut browser = Browser::launch(&chrome, 1400, 900);
    let page = &mut browser.page;
    // A navigation right after the server came up has once failed; try again until it works.
    let mut last = Value::Null;
    let navigated = poll_until(Duration::from_secs(10), || {
        last = page.call("Page.navigate", json!({"url": url}));
        last.get("errorText").is_none()
    });
    assert!(navigated, "navigating to {url}: {last}");

    // Units appear, then move within 10 s.
    page.wait(
        "units on the map",
        "window.patrol && window.patrol.stats().units >= 5",
        Duration::from_secs(30),
    );
    page.wait(
        "layers loaded",
        "window.patrol.state.layers.length > 20",
        Duration::from_secs(10),
    );
    let before = page.eval(
        "JSON.stringify([...window.patrol.state.units.values()].map(u => [u.data.unit, u.x, u.y]))",
    );
    let start = Instant::now();
    page.wait(
        "a unit to move",
        &format!("(() => {{ const b = new Map(JSON.parse({before}).map(([k, x, y]) => [k, x + ',' + y])); \
                  return [...window.patrol.state.units.values()].some(u => b.has(u.data.unit) && b.get(u.data.unit) !== u.x + ',' + u.y); }})()"),
        Duration::from_secs(10),
    );
    eprintln!(
        "a unit moved {:.1} s after the first look",
        start.elapsed().as_secs_f64()
    );
    let shots = artifacts("browser-test");
    page.screenshot(&shots.join("01-live.png"));
    // Zoom into the county town with the mouse wheel, where most units are.
    let town = page.eval(
        "(() => { const c = document.getElementById('map').getBoundingClientRect(); \
          const s = window.patrol.state.layers.find(f => f.properties.layer === 'station' && f.properties.id === 'ST1'); \
          const u = [...window.patrol.state.units.values()].find(u => u.data.station === 'ST1') || {sx: c.width / 2, sy: c.height / 2}; \
          return {x: c.left + u.sx, y: c.top + u.sy, station: !!s}; })()",
    );
    let (x, y) = (town["x"].as_f64().unwrap(), town["y"].as_f64().unwrap());
    let scale = page.eval("window.patrol.view.scale").as_f64().unwrap();
    for _ in 0..8 {
        page.call(
            "Input.dispatchMouseEvent",
            json!({"type": "mouseWheel", "x": x, "y": y, "deltaX": 0, "deltaY": -120}),
        );
    }
    page.wait(
        "the wheel zoom",
        &format!("window.patrol.view.scale > {} * 4", scale),
        Duration::from_secs(5),
    );
    page.frames_drawn();
    page.screenshot(&shots.join("02-town.png"));

    // Click a moving unit's marker (a real mouse event at its screen position).
    let target = page.eval(
        "(() => { const c = document.getElementById('map').getBoundingClientRect(); \
          const us = [...window.patrol.state.units.values()].filter(u => u.data.status === 'moving' && u.sx > 20 && u.sy > 20 && u.sx < c.width - 20 && u.sy < c.height - 20); \
          const u = us[0] || [...window.patrol.state.units.values()][0]; \
          return {unit: u.data.unit, x: c.left + u.sx, y: c.top + u.sy}; })()",
    );
    page.click(target["x"].as_f64().unwrap(), target["y"].as_f64().unwrap());
    page.wait(
        "the unit panel",
        "window.patrol.stats().selected !== null && !document.getElementById('unit').hidden",
        Duration::from_secs(5),
    );
    let selected = page.eval("window.patrol.stats().selected");
    eprintln!("clicked {target}, selected {selected}");

    // Its replay: stored fixes (the demo flushes to Parquet every 5 s) and the time slider.
    page.wait(
        "a replay with fixes",
        "(async () => { document.getElementById('replay').click(); await new Promise(r => setTimeout(r, 1500)); return window.patrol.stats().trackPoints > 1; })()",
        Duration::from_secs(40),
    );
    let n = page
        .eval("window.patrol.stats().trackPoints")
        .as_u64()
        .unwrap();
    page.eval(&format!(
        "(() => {{ const s = document.getElementById('slider'); s.value = {}; s.dispatchEvent(new Event('input')); return true; }})()",
        n / 2
    ));
    let time = page.eval("document.getElementById('replay-time').textContent");
    assert!(
        time.as_str().is_some_and(|t| !t.is_empty()),
        "the slider shows a time"
    );
    page.screenshot(&shots.join("03-replay.png"));

    // Layers: roads and zones off and on again; the gap layer on when the server offers it.
    page.eval("(() => { for (const l of ['road', 'zone']) { const c = document.querySelector(`[data-layer=${l}]`); c.click(); c.click(); } return true; })()");
    let gaps_offered =
        page.eval("!document.getElementById('layer-gaps').disabled") == Value::Bool(true);
    if gaps_offered {
        // A week of the fixture incidents (the demo's own pings are from today).
        page.eval("document.getElementById('week').value = '2026-W46', true");
        page.eval("document.getElementById('layer-gaps').click(), true");
        page.wait(
            "the gap layer",
            "window.patrol.stats().analysis.includes('gaps')",
            Duration::from_secs(90),
        );
        let cells = page.eval("window.patrol.state.analysis.get('gaps').features.length");
        let note = page.eval("document.getElementById('analysis-note').textContent");
        eprintln!("gap layer: {cells} cells ({note})");
        assert!(
            cells.as_u64().unwrap_or(0) > 0,
            "the gap layer drew no cells: {note}"
        );
    } else {
        let note = page.eval("document.getElementById('analysis-note').textContent");
        assert!(
            note.as_str().is_some_and(|n| n.contains("gaps")),
            "the page says gaps are unavailable: {note}"
        );
        eprintln!("the server offers no gap analysis yet: {note}");
    }
    // Zoom back out over the county to see the layer whole.
    for _ in 0..5 {
        page.call(
            "Input.dispatchMouseEvent",
            json!({"type": "mouseWheel", "x": x, "y": y, "deltaX": 0, "deltaY": 120}),
        );
    }
    page.frames_drawn();
    page.screenshot(&shots.join("04-layers.png"));
    eprintln!("screenshots in {}", shots.display());

    // Drain pending events, then no console errors anywhere.
    page.eval("true");
    assert!(page.errors.is_empty(), "console errors: {:#?}", page.errors);
}
