//! Arbitrary bytes through a Teltonika session's `cut` + `frame`, as the server's read loop
//! does: never a panic, every cut in bounds, every acknowledgement 4 bytes.
#![no_main]

use ingest::gateway::teltonika::{MAX_PACKET_LEN, TeltonikaSession};
use ingest::gateway::{Cut, StreamProtocol};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut session = TeltonikaSession::default();
    let mut buf = data;
    while !buf.is_empty() {
        match session.cut(buf) {
            Cut::Need => break,
            Cut::Skip(n) => {
                assert!(n >= 1 && n <= buf.len(), "Skip({n}) of {}", buf.len());
                buf = &buf[n..];
            }
            Cut::Frame(n) => {
                assert!(n > 0 && n <= buf.len(), "Frame({n}) of {}", buf.len());
                assert!(n <= MAX_PACKET_LEN);
                if let Ok(reply) = session.frame(&buf[..n]) {
                    assert!(reply.durable.is_empty() || reply.durable.len() == 4);
                    assert!(reply.now.is_empty());
                    for fix in &reply.fixes {
                        assert!(fix.lat.abs() <= 90.0 && fix.lon.abs() <= 180.0);
                    }
                }
                buf = &buf[n..];
            }
        }
    }
});
