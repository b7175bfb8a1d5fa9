use std::path::Path;

use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::America::Chicago;
use devkit::testkit::fixtures;
use geo::Validation;

use super::*;

fn t(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

fn entry(date: (i32, u32, u32), start: NaiveTime, end: NaiveTime) -> RosterEntry {
    RosterEntry {
        date: NaiveDate::from_ymd_opt(date.0, date.1, date.2).unwrap(),
        unit: "B01".into(),
        zone: "Z1".into(),
        window: "night".into(),
        start,
        end,
        crew: 2,
        level: 3,
    }
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

/// Copies the committed jurisdiction files into a temporary folder for editing.
fn fixture_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "jurisdiction.toml",
        "units.csv",
        "roster.csv",
        "stations.geojson",
        "checkpoints.geojson",
        "beats.geojson",
        "zones.geojson",
        "county.geojson",
    ] {
        std::fs::copy(fixtures().join(name), dir.path().join(name)).unwrap();
    }
    dir
}

/// Rewrites `name` in `dir` with `edit` applied to its text.
fn edit(dir: &Path, name: &str, edit: impl FnOnce(String) -> String) {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, edit(text)).unwrap();
}

fn load_error(dir: &Path) -> String {
    Jurisdiction::load(dir).unwrap_err().to_string()
}

#[test]
fn loads_committed_fixtures() {
    let j = Jurisdiction::load(&fixtures()).unwrap();
    let s = j.settings();
    assert_eq!(j.timezone(), Chicago);
    assert_eq!(
        (s.h3.store_res, s.h3.fence_res, s.h3.analysis_res),
        (11, 9, 9)
    );
    assert_eq!(
        s.response,
        ResponseSettings {
            max_minutes: 30.0,
            max_km: 30.0,
            offroad_kmh: 15.0
        }
    );
    assert_eq!(s.dosage.gap_cap_s, 120);
    assert_eq!(s.levels.share(2), Some(0.5));
    assert_eq!(
        s.validate.max_age_s,
        7 * 24 * 3600,
        "the default, the key is absent"
    );
    assert_eq!(s.speeds_kmh.get("residential"), Some(&40.0));
    assert_eq!(s.windows.len(), 4);
    assert!(j.window("night").unwrap().crosses_midnight());
    assert!(!j.window("day").unwrap().crosses_midnight());

    let ids: Vec<_> = j.stations().iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["ST1", "ST2", "ST3", "ST4"]);
    assert_eq!(j.station("ST1").unwrap().kind, StationKind::Central);

    let cps = j.checkpoints();
    assert_eq!(cps.len(), 17);
    let patrol: Vec<_> = cps
        .iter()
        .filter(|c| c.kind == CheckpointKind::Patrol)
        .collect();
    assert_eq!(patrol.len(), 13);
    assert!(patrol.iter().all(|c| c.window == Some((t(23, 0), t(5, 0)))));
    assert_eq!(
        (cps[0].id.as_str(), cps[0].radius_m, cps[0].min_dwell_s),
        ("CP01", 50.0, 210)
    );
    assert!(
        cps.iter()
            .filter(|c| c.kind == CheckpointKind::Entry)
            .all(|c| c.window.is_none())
    );

    let units = j.units();
    assert_eq!(units.len(), 44);
    assert_eq!(j.unit("C01").map(|u| u.kind), Some(UnitKind::Car));
    assert!(
        units
            .iter()
            .any(|u| u.kind == UnitKind::Foot && u.crew == 1)
    );

    assert_eq!(j.roster().len(), 1572);
    let first = j.roster().first().unwrap();
    assert_eq!(first.date, NaiveDate::from_ymd_opt(2026, 11, 2).unwrap());
    assert!(j.roster().iter().all(|r| {
        j.window(&r.window)
            .is_some_and(|w| (w.start, w.end) == (r.start, r.end))
    }));

    let catalog = j.catalog();
    assert_eq!(catalog.version, 1);
    assert_eq!(catalog.beats.len(), 12);
    // BT05 is a MultiPolygon; BT02 has a hole.
    assert_eq!(catalog.beats[4].geometry.0.len(), 2);
    assert_eq!(catalog.beats[1].geometry.0[0].interiors().len(), 1);
    assert_eq!(
        catalog
            .zones
            .iter()
            .map(|z| z.id.as_str())
            .collect::<Vec<_>>(),
        ["Z1", "Z2", "Z3", "Z4", "Z5", "Z6"]
    );
    assert_eq!(j.county().0.len(), 1);
    assert_eq!(j.roads_path(), Some(fixtures().join("roads.osm")));
    assert_eq!(j.population_path(), None);
}

#[test]
fn incidents_load() {
    let incidents = load_incidents(&fixtures().join("incidents.csv")).unwrap();
    assert_eq!(incidents.len(), 6000);
    let first = &incidents[0];
    assert_eq!(first.id, "IN00001");
    assert_eq!(first.received.to_rfc3339(), "2025-11-23T06:21:15+00:00");
    assert!(
        incidents
            .iter()
            .any(|i| i.unit.is_some() && i.arrived.is_some())
    );
}

/// Quoted fields are CSV (RFC 4180): a comma, a doubled quote and a line break inside quotes
/// belong to the field, and the rows after a field over two lines keep their own line
/// numbers in errors.
#[test]
fn quoted_fields_are_read_and_lines_still_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("incidents.csv");
    let head = INCIDENTS_HEADER.join(",");
    std::fs::write(
        &path,
        format!(
            "{head}\n\
             \"IN1, \"\"north\"\"\",2025-11-23T00:21:15-06:00,40.09,-88.91,\"theft\nfrom car\",3,,,\n\
             \n\
             IN2 , 2025-11-23T00:41:55-06:00 ,40.1,-88.9,vandalism,3,,,\n"
        ),
    )
    .unwrap();
    let rows = load_incidents(&path).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].id, "IN1, \"north\"");
    assert_eq!(rows[0].category, "theft\nfrom car");
    assert_eq!((rows[1].id.as_str(), rows[1].lat), ("IN2", 40.1));

    // Line 5 (the quoted field spans lines 2 and 3, line 4 is blank) has a bad priority.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("vandalism,3", "vandalism,high")).unwrap();
    let err = load_incidents(&path).unwrap_err().to_string();
    assert!(
        err.contains("incidents.csv:5:") && err.contains("`priority`") && err.contains("high"),
        "{err}"
    );
    // So do CRLF line ends after a blank line.
    std::fs::write(
        &path,
        format!("{head}\r\n\r\nIN4,2025-11-23T00:41:55-06:00,40.1,-88.9,x,high,,,\r\n"),
    )
    .unwrap();
    let err = load_incidents(&path).unwrap_err().to_string();
    assert!(err.contains("incidents.csv:3:"), "{err}");
    // A row with a field too many names its line too.
    std::fs::write(
        &path,
        format!("{head}\nIN3,2025-11-23T00:41:55-06:00,40.1,-88.9,x,3,,,,\n"),
    )
    .unwrap();
    let err = load_incidents(&path).unwrap_err().to_string();
    assert!(
        err.contains("incidents.csv:2:") && err.contains("expected 9 fields, found 10"),
        "{err}"
    );
}

#[test]
fn population_rows_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("population.csv");
    std::fs::write(&path, "lat,lon,population\n41.8,-87.6,120\n").unwrap();
    assert_eq!(load_population(&path).unwrap(), [(41.8, -87.6, 120.0)]);
    std::fs::write(&path, "lat,lon,population\n41.8,-87.6,-1\n").unwrap();
    let err = load_population(&path).unwrap_err().to_string();
    assert!(err.contains(":2:") && err.contains("population"), "{err}");
    std::fs::write(&path, "lat,lon,population\n141.8,-87.6,1\n").unwrap();
    assert!(load_population(&path).is_err());
}

#[test]
fn validate_max_age_is_read() {
    let dir = fixture_copy();
    edit(dir.path(), "jurisdiction.toml", |s| {
        s.replace("live_window_s = 0", "live_window_s = 0\nmax_age_s = 3600")
    });
    let j = Jurisdiction::load(dir.path()).unwrap();
    assert_eq!(j.settings().validate.max_age_s, 3600);
}

/// Drift: analytics left unknown keys "to other readers"; now there is one reader, and a
/// misspelt key is an error wherever the file is read.
#[test]
fn unknown_toml_key_is_named_with_file_and_line() {
    let dir = fixture_copy();
    edit(dir.path(), "jurisdiction.toml", |s| {
        s.replace("gap_cap_s = 120", "gap_cap_s = 120\ngap_cap_seconds = 5")
    });
    let text = std::fs::read_to_string(dir.path().join("jurisdiction.toml")).unwrap();
    let err = Jurisdiction::load(dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, JurisdictionError::Toml { .. }), "{msg}");
    assert!(
        msg.contains("jurisdiction.toml") && msg.contains("gap_cap_seconds"),
        "{msg}"
    );
    let line = text
        .lines()
        .position(|l| l.starts_with("gap_cap_seconds"))
        .unwrap()
        + 1;
    assert!(msg.contains(&format!(":{line}:")), "{msg}");
}

#[test]
fn missing_toml_key_is_named() {
    let dir = fixture_copy();
    edit(dir.path(), "jurisdiction.toml", |s| {
        s.replace("offline_after_s = 180\n", "")
    });
    let msg = load_error(dir.path());
    assert!(msg.contains("offline_after_s"), "{msg}");
}

/// Drift: the fence catalog read `version` on its own and took 1 when the key was absent,
/// while the settings required it. One rule now: the key is required, and the catalog's
/// version is the settings' version.
#[test]
fn version_is_required_and_is_the_catalogs() {
    let dir = fixture_copy();
    edit(dir.path(), "jurisdiction.toml", |s| {
        s.replace("version = 1\n", "version = 4\n")
    });
    let j = Jurisdiction::load(dir.path()).unwrap();
    assert_eq!((j.settings().version, j.catalog().version), (4, 4));
    edit(dir.path(), "jurisdiction.toml", |s| {
        s.replace("version = 4\n", "")
    });
    let msg = load_error(dir.path());
    assert!(
        msg.contains("jurisdiction.toml") && msg.contains("`version`"),
        "{msg}"
    );
    edit(dir.path(), "jurisdiction.toml", |s| {
        format!("version = -1\n{s}")
    });
    assert!(load_error(dir.path()).contains("jurisdiction.toml:1:"));
}

#[test]
fn bad_values_are_named() {
    for (from, to, named) in [
        (
            "offroad_kmh = 15",
            "offroad_kmh = 0",
            "response.offroad_kmh",
        ),
        ("residential = 40", "footpath = 5", "speeds_kmh.footpath"),
        (
            "residential = 40",
            "residential = -4",
            "speeds_kmh.residential",
        ),
        ("analysis_res = 9", "analysis_res = 16", "h3.analysis_res"),
        ("America/Chicago", "America/Ashford", "America/Ashford"),
    ] {
        let dir = fixture_copy();
        edit(dir.path(), "jurisdiction.toml", |s| {
            assert!(s.contains(from), "{from}");
            s.replace(from, to)
        });
        let msg = load_error(dir.path());
        assert!(
            msg.contains("jurisdiction.toml") && msg.contains(named),
            "{msg}"
        );
    }
}

#[test]
fn csv_errors_name_file_line_and_column() {
    let dir = fixture_copy();
    edit(dir.path(), "units.csv", |s| {
        s.replacen(",car,", ",tank,", 1)
    });
    let msg = load_error(dir.path());
    assert!(
        msg.contains("units.csv:2:") && msg.contains("`kind`") && msg.contains("tank"),
        "{msg}"
    );

    let dir = fixture_copy();
    edit(dir.path(), "roster.csv", |s| {
        format!("{}\n2026-11-03,X99,Z1,day,08:30,11:20,2,3\n", s.trim_end())
    });
    let msg = load_error(dir.path());
    assert!(msg.contains("roster.csv") && msg.contains("X99"), "{msg}");
}

/// Drift: analytics read a roster time that names no instant as epoch 0 (1970), so the
/// shift silently covered half a century; ingest refused it. Samoa skipped 30 December 2011
/// whole, so noon that day exists neither as it is nor an hour later.
#[test]
fn nonexistent_local_time_is_an_error_not_epoch_zero() {
    let apia = chrono_tz::Pacific::Apia;
    let skipped = entry((2011, 12, 30), t(12, 0), t(14, 0));
    let noon = NaiveDate::from_ymd_opt(2011, 12, 30)
        .unwrap()
        .and_time(t(12, 0));
    assert_eq!(skipped.utc_interval(apia), Err(NonexistentLocalTime(noon)));
    assert_eq!(skipped.utc_ms(apia), Err(NonexistentLocalTime(noon)));
    assert!(local_to_utc(apia, noon).is_err());

    let dir = fixture_copy();
    edit(dir.path(), "jurisdiction.toml", |s| {
        s.replace("America/Chicago", "Pacific/Apia")
    });
    edit(dir.path(), "roster.csv", |s| {
        format!("{}\n2011-12-30,C01,Z1,day,08:30,11:20,2,3\n", s.trim_end())
    });
    let msg = load_error(dir.path());
    assert!(
        msg.contains("roster.csv:") && msg.contains("column `start`") && msg.contains("2011-12-30"),
        "{msg}"
    );
}

/// Drift: analytics read beats and zones as drawn, ingest's catalog repaired them, so a
/// self-intersecting beat held a fix for one and not the other. The jurisdiction's fences
/// are the repaired ones.
#[test]
fn fences_are_repaired_for_every_reader() {
    let dir = fixture_copy();
    let bow_tie = r#"{"type":"FeatureCollection","features":[{"type":"Feature",
        "properties":{"id":"BT01","name":"Bow tie","station":"ST1"},
        "geometry":{"type":"Polygon","coordinates":[[[0,0],[1,1],[1,0],[0,1],[0,0]]]}}]}"#;
    std::fs::write(dir.path().join("beats.geojson"), bow_tie).unwrap();
    let j = Jurisdiction::load(dir.path()).unwrap();
    let beat = &j.catalog().beats[0];
    assert!(beat.geometry.is_valid());
    assert_eq!(beat.geometry.0.len(), 2, "both lobes kept");
    assert_eq!(j.catalog().repairs.len(), 1);
}

#[test]
fn night_shift_crosses_midnight() {
    let (from, to) = entry((2026, 11, 2), t(23, 0), t(5, 0))
        .utc_interval(Chicago)
        .unwrap();
    assert_eq!(
        (from, to),
        (utc(2026, 11, 3, 5, 0), utc(2026, 11, 3, 11, 0))
    );
    let (from, to) = entry((2026, 11, 2), t(8, 30), t(11, 20))
        .utc_ms(Chicago)
        .unwrap();
    assert_eq!(
        (from, to),
        (
            utc(2026, 11, 2, 14, 30).timestamp_millis(),
            utc(2026, 11, 2, 17, 20).timestamp_millis()
        )
    );
}

#[test]
fn night_shift_over_daylight_saving_changes() {
    // Spring forward at 02:00 on 2026-03-08: 23:00 CST to 05:00 CDT is five hours.
    let (from, to) = entry((2026, 3, 7), t(23, 0), t(5, 0))
        .utc_interval(Chicago)
        .unwrap();
    assert_eq!((from, to), (utc(2026, 3, 8, 5, 0), utc(2026, 3, 8, 10, 0)));
    // Fall back at 02:00 on 2026-11-01: 23:00 CDT to 05:00 CST is seven hours.
    let (from, to) = entry((2026, 10, 31), t(23, 0), t(5, 0))
        .utc_interval(Chicago)
        .unwrap();
    assert_eq!(
        (from, to),
        (utc(2026, 11, 1, 4, 0), utc(2026, 11, 1, 11, 0))
    );
    // 02:30 does not exist on 2026-03-08 and is read as 03:30 CDT.
    let (from, _) = entry((2026, 3, 8), t(2, 30), t(4, 0))
        .utc_interval(Chicago)
        .unwrap();
    assert_eq!(from, utc(2026, 3, 8, 8, 30));
}

#[test]
fn unit_kinds_round_trip_and_bound_speed() {
    for kind in [
        UnitKind::Car,
        UnitKind::Bike,
        UnitKind::Ebike,
        UnitKind::Foot,
    ] {
        assert_eq!(kind.as_str().parse::<UnitKind>(), Ok(kind));
    }
    assert_eq!(UnitKind::Car.max_speed_kmh(), 200.0);
    assert_eq!(UnitKind::Foot.max_speed_kmh(), 25.0);
    assert!("horse".parse::<UnitKind>().is_err());
}

#[test]
fn device_columns_are_optional_in_any_order_and_checked() {
    let j = Jurisdiction::load(&fixtures()).unwrap();
    let c01 = j.unit("C01").unwrap();
    assert_eq!(c01.devices.device.as_deref(), Some("13900000001"));
    assert_eq!(c01.devices.imei.as_deref(), Some("350000000000014"));
    assert_eq!(c01.devices.issi.as_deref(), Some("2001001"));

    // Without the device columns: the fleet loads, no unit has a device.
    let dir = fixture_copy();
    edit(dir.path(), "units.csv", |s| {
        s.lines()
            .map(|l| l.splitn(5, ',').take(4).collect::<Vec<_>>().join(","))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let j = Jurisdiction::load(dir.path()).unwrap();
    assert!(j.units().iter().all(|u| u.devices == DeviceIds::default()));

    // Only `issi`, and an empty cell: that unit has none.
    let dir = fixture_copy();
    edit(dir.path(), "units.csv", |s| {
        s.lines()
            .enumerate()
            .map(|(i, l)| {
                let f: Vec<&str> = l.split(',').collect();
                let issi = if i == 1 { "" } else { f[6] };
                format!("{},{issi}", f[..4].join(","))
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    let j = Jurisdiction::load(dir.path()).unwrap();
    assert_eq!(j.unit("C01").unwrap().devices, DeviceIds::default());
    assert_eq!(
        j.unit("C02").unwrap().devices.issi.as_deref(),
        Some("2001002")
    );

    let refused = |edit_text: &dyn Fn(String) -> String, needles: &[&str]| {
        let dir = fixture_copy();
        edit(dir.path(), "units.csv", edit_text);
        let msg = load_error(dir.path());
        assert!(needles.iter().all(|n| msg.contains(n)), "{msg}");
    };
    refused(
        &|s| s.replacen("350000000000022", "350000000000014", 1),
        &["units.csv:3:", "`imei`", "repeated"],
    );
    refused(
        &|s| s.replacen("350000000000014", "35000", 1),
        &["units.csv:2:", "`imei`", "15 digits"],
    );
    refused(
        &|s| s.replacen(",2001001", ",16777216", 1),
        &["units.csv:2:", "`issi`"],
    );
    refused(
        &|s| s.replacen("13900000001", "139 000", 1),
        &["units.csv:2:", "`device`"],
    );
    refused(
        &|s| s.replacen("device,imei,issi", "device,imei,msisdn", 1),
        &["units.csv:1:", "`msisdn`"],
    );
    refused(
        &|s| s.replacen("device,imei,issi", "device,imei,device", 1),
        &["units.csv:1:", "`device`"],
    );
}
