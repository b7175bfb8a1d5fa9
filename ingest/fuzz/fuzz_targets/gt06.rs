//! Arbitrary bytes through the GT06 cutter and decoder, whole and in small reads, with and
//! without a login first.
#![no_main]

use ingest::gateway::gt06::{Gt06, MAX_EXTENDED_LEN};
use ingest_fuzz::drain;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let max_left = MAX_EXTENDED_LEN + 6;
    drain(&mut Gt06::default(), &mut data.to_vec(), max_left);

    // Logged in first, the same bytes arriving in reads of 5.
    let mut session = Gt06::default();
    let mut buf = ingest::gateway::device::gt06::login("359339075003821", 1);
    drain(&mut session, &mut buf, max_left);
    for chunk in data.chunks(5) {
        buf.extend_from_slice(chunk);
        drain(&mut session, &mut buf, max_left);
    }
});
