//! Arbitrary bytes through the JT/T 808 cutter and decoder, whole and in small reads.
#![no_main]

use ingest::gateway::jt808::Jt808;
use ingest::gateway::{Cut, StreamProtocol};

/// Cuts and decodes everything in `buf` that forms frames, checking the cut invariants.
fn drain(session: &mut Jt808, buf: &mut Vec<u8>) {
    loop {
        match session.cut(buf) {
            Cut::Need => {
                assert!(buf.len() < ingest::gateway::jt808::MAX_FRAME);
                return;
            }
            Cut::Skip(n) => {
                assert!(n >= 1 && n <= buf.len(), "skip {n} of {}", buf.len());
                buf.drain(..n);
            }
            Cut::Frame(n) => {
                assert!(n > 0 && n <= buf.len(), "frame {n} of {}", buf.len());
                if let Ok(reply) = session.frame(&buf[..n]) {
                    for fix in &reply.fixes {
                        assert!(fix.lat.abs() <= 90.0 && fix.lon.abs() <= 180.0);
                    }
                }
                buf.drain(..n);
            }
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut session = Jt808::default();
    let mut buf = data.to_vec();
    drain(&mut session, &mut buf);

    // The same bytes arriving in reads of 7.
    let mut session = Jt808::default();
    let mut buf = Vec::new();
    for chunk in data.chunks(7) {
        buf.extend_from_slice(chunk);
        drain(&mut session, &mut buf);
    }
});
