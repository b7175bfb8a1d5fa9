//! Arbitrary bytes as an NMEA feed datagram: never a panic, at least one result, every fix
//! in range, finite, and within a day of the receive time.
#![no_main]

use ingest::gateway::DatagramProtocol;
use ingest::gateway::nmea::NmeaFeed;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let recv_ms = 1_772_323_320_000;
    let out = NmeaFeed.datagram(data, recv_ms);
    assert!(!out.is_empty());
    for fix in out.iter().flatten() {
        assert!(fix.lat.abs() <= 90.0 && fix.lon.abs() <= 180.0);
        assert!(fix.speed_kmh.is_none_or(|s| s.is_finite() && s >= 0.0));
        assert!(!fix.device.is_empty());
        assert!(fix.time_ms <= recv_ms + 86_400_000);
    }
});
