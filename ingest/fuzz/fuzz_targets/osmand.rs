//! Arbitrary bytes through the OsmAnd query/form and JSON parsers.
#![no_main]

use ingest::gateway::osmand::{parse, parse_json};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for fix in [
        parse_json(data).ok(),
        std::str::from_utf8(data).ok().and_then(|s| parse(s).ok()),
    ]
    .into_iter()
    .flatten()
    {
        assert!(fix.lat.abs() <= 90.0 && fix.lon.abs() <= 180.0);
        assert!(!fix.device.trim().is_empty());
        assert!(fix.course_deg.is_none_or(|c| (0.0..360.0).contains(&c)));
        assert!(fix.speed_kmh.is_none_or(|s| s >= 0.0 && s.is_finite()));
    }
    // What the device encoder writes for a parsed fix parses back to the same position.
    if let Some(fix) = std::str::from_utf8(data).ok().and_then(|s| parse(s).ok()) {
        let again = parse(&ingest::gateway::device::osmand::query(&fix));
        assert_eq!(again.map(|f| (f.lat, f.lon)).ok(), Some((fix.lat, fix.lon)));
    }
});
