//! What the protocol modules' tests share: hex test vectors, times, and the mutated-stream
//! check every stream protocol's `cut` and `frame` must pass.

use super::{Cut, StreamProtocol};

/// Bytes of a hex string (whitespace ignored); a bad pair gives `0xee`, which fails the test
/// that reads it.
pub(crate) fn unhex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap_or("zz"), 16).unwrap_or(0xee))
        .collect()
}

/// An RFC 3339 time as unix ms (`i64::MIN` if it does not parse, failing the test).
pub(crate) fn ms(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .unwrap_or(i64::MIN)
}

/// A small deterministic generator for the mutation tests.
pub(crate) fn lcg(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    *state >> 33
}

/// 3,000 streams of up to three `seeds` frames with up to five mutations each (bit flips,
/// inserted and removed bytes), each fed to a fresh session (given `login` first) in reads of
/// 1 to 40 bytes: every `Skip` and `Frame` lies within the bytes held, and fewer than
/// `max_left` bytes stay uncut. Returns the fixes decoded.
pub(crate) fn mutated_streams<P: StreamProtocol + Default>(
    seeds: &[Vec<u8>],
    login: Option<&[u8]>,
    max_left: usize,
) -> usize {
    let mut rng = 7u64;
    let mut fixes = 0;
    for round in 0..3000 {
        let mut stream = Vec::new();
        for _ in 0..(lcg(&mut rng) % 4) {
            let pick = usize::try_from(lcg(&mut rng)).unwrap_or(0) % seeds.len();
            stream.extend_from_slice(&seeds[pick]);
        }
        for _ in 0..(lcg(&mut rng) % 6) {
            let len = stream.len().max(1);
            let at = usize::try_from(lcg(&mut rng)).unwrap_or(0) % len;
            let byte = u8::try_from(lcg(&mut rng) % 256).unwrap_or(0);
            match lcg(&mut rng) % 3 {
                0 if at < stream.len() => stream[at] ^= 1 << (byte % 8),
                1 => stream.insert(at.min(stream.len()), byte),
                _ if at < stream.len() => {
                    stream.remove(at);
                }
                _ => {}
            }
        }
        let chunk = 1 + usize::try_from(lcg(&mut rng)).unwrap_or(0) % 40;
        let mut s = P::default();
        if let Some(login) = login {
            let _ = s.frame(login);
        }
        let mut buf = Vec::new();
        for piece in stream.chunks(chunk) {
            buf.extend_from_slice(piece);
            loop {
                match s.cut(&buf) {
                    Cut::Need => break,
                    Cut::Skip(n) => {
                        assert!(n >= 1 && n <= buf.len(), "round {round}");
                        buf.drain(..n);
                    }
                    Cut::Frame(n) => {
                        assert!(n > 0 && n <= buf.len(), "round {round}");
                        if let Ok(r) = s.frame(&buf[..n]) {
                            fixes += r.fixes.len();
                        }
                        buf.drain(..n);
                    }
                }
            }
        }
        assert!(
            buf.len() < max_left,
            "round {round}: {} bytes left",
            buf.len()
        );
    }
    fixes
}
