//! Arbitrary bytes through the JT/T 808 cutter and decoder, whole and in small reads.
#![no_main]

use ingest::gateway::jt808::{Jt808, MAX_FRAME};
use ingest_fuzz::drain;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    drain(&mut Jt808::default(), &mut data.to_vec(), MAX_FRAME);

    // The same bytes arriving in reads of 7.
    let mut session = Jt808::default();
    let mut buf = Vec::new();
    for chunk in data.chunks(7) {
        buf.extend_from_slice(chunk);
        drain(&mut session, &mut buf, MAX_FRAME);
    }
});
