//! Arbitrary bytes through the GT06 cutter and decoder, whole and in small reads, with and
//! without a login first.
#![no_main]

use ingest::gateway::gt06::{Gt06, MAX_EXTENDED_LEN};
use ingest::gateway::{Cut, StreamProtocol};

/// Cuts and decodes everything in `buf` that forms frames, checking the cut invariants.
fn drain(session: &mut Gt06, buf: &mut Vec<u8>) {
    loop {
        match session.cut(buf) {
            Cut::Need => {
                assert!(buf.len() < MAX_EXTENDED_LEN + 6);
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
    let mut session = Gt06::default();
    let mut buf = data.to_vec();
    drain(&mut session, &mut buf);

    // Logged in first, the same bytes arriving in reads of 5.
    let mut session = Gt06::default();
    let mut buf = ingest::gateway::device::gt06::login("359339075003821", 1);
    drain(&mut session, &mut buf);
    for chunk in data.chunks(5) {
        buf.extend_from_slice(chunk);
        drain(&mut session, &mut buf);
    }
});
