//! What the stream protocols' fuzz targets share: the server's read loop, with its
//! invariants checked.

use ingest::gateway::{Cut, Reply, StreamProtocol};

/// Cuts and decodes every whole frame in `buf` as the gateway's read loop does, checking
/// that each cut lies within the bytes held, that no frame is longer than `max_left` bytes,
/// that fewer than `max_left` bytes stay uncut and
/// that every fix is on the globe; returns the replies of the frames decoded.
pub fn drain<P: StreamProtocol>(session: &mut P, buf: &mut Vec<u8>, max_left: usize) -> Vec<Reply> {
    let mut replies = Vec::new();
    loop {
        match session.cut(buf) {
            Cut::Need => {
                assert!(buf.len() < max_left, "{} bytes left uncut", buf.len());
                return replies;
            }
            Cut::Skip(n) => {
                assert!(n >= 1 && n <= buf.len(), "skip {n} of {}", buf.len());
                buf.drain(..n);
            }
            Cut::Frame(n) => {
                assert!(n > 0 && n <= buf.len(), "frame {n} of {}", buf.len());
                assert!(n <= max_left, "a frame of {n} bytes");
                if let Ok(reply) = session.frame(&buf[..n]) {
                    for fix in &reply.fixes {
                        assert!(fix.lat.abs() <= 90.0 && fix.lon.abs() <= 180.0);
                    }
                    replies.push(reply);
                }
                buf.drain(..n);
            }
        }
    }
}
