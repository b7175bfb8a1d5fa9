//! Arbitrary bytes as a LIP feed datagram: never a panic, at least one result, every fix in
//! range with its ISSI as device and a time no later than 5 minutes after receipt.
#![no_main]

use ingest::gateway::DatagramProtocol;
use ingest::gateway::lip::LipFeed;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let recv_ms = 1_772_323_320_000;
    let out = LipFeed.datagram(data, recv_ms);
    assert!(!out.is_empty());
    for fix in out.iter().flatten() {
        assert!(fix.lat.abs() <= 90.0 && fix.lon.abs() <= 180.0);
        assert!(!fix.device.is_empty() && fix.device.bytes().all(|b| b.is_ascii_digit()));
        assert!(fix.time_ms <= recv_ms + 5 * 60 * 1000);
    }
});
