//! Arbitrary bytes through a Teltonika session's `cut` + `frame`, as the server's read loop
//! does: never a panic, every cut in bounds, every acknowledgement 4 bytes.
#![no_main]

use ingest::gateway::teltonika::{MAX_PACKET_LEN, TeltonikaSession};
use ingest_fuzz::drain;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut session = TeltonikaSession::default();
    for reply in drain(&mut session, &mut data.to_vec(), MAX_PACKET_LEN + 1) {
        assert!(reply.durable.is_empty() || reply.durable.len() == 4);
        assert!(reply.now.is_empty());
    }
});
