//! Write-ahead log: the durability point of ingest.
//!
//! A record is durable once the segment holding it has been written and `fdatasync`ed; only
//! then is the MQTT message acknowledged. Segments are numbered; a segment is deleted only after
//! every record in it is in Parquet files named after the segment, so replaying a segment after
//! a crash rewrites the same files (idempotent) instead of adding rows.
//!
//! Frame format, little endian: `len: u32, crc32(payload): u32, payload[len]`. A torn frame at
//! the tail (short read or CRC mismatch) ends replay of that segment: it was never synced, so it
//! was never acknowledged.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::record::WalEntry;

/// Largest frame accepted on replay; anything bigger is a torn or corrupt length. The big
/// frames are the stage's snapshots (about 1 KB per unit).
const MAX_FRAME: u32 = 256 * 1024 * 1024;

/// An open segment being appended to.
#[derive(Debug)]
pub(crate) struct WalWriter {
    dir: PathBuf,
    segment: u64,
    file: File,
    buf: Vec<u8>,
    /// Bytes of the segment that were written and synced: the durable prefix. A failed commit
    /// cuts the file back to it.
    len: u64,
    /// A failed commit could not cut the file back (the file system refused even that); the
    /// next commit does it first.
    torn: bool,
}

pub(crate) fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:010}.wal"))
}

/// Segment numbers present in `dir`, ascending.
pub(crate) fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name.strip_suffix(".wal").and_then(|s| s.parse().ok()) {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

impl WalWriter {
    /// Creates (or truncates) segment `segment` in `dir`.
    pub(crate) fn create(dir: &Path, segment: u64) -> io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(segment_path(dir, segment))?;
        sync_dir(dir)?;
        Ok(WalWriter {
            dir: dir.to_owned(),
            segment,
            file,
            buf: Vec::with_capacity(1 << 20),
            len: 0,
            torn: false,
        })
    }

    /// The segment number.
    pub(crate) fn segment(&self) -> u64 {
        self.segment
    }

    /// Encodes an entry into the pending buffer (nothing is written yet).
    pub(crate) fn stage(&mut self, entry: &WalEntry) {
        frame(&mut self.buf, entry);
    }

    /// Writes the staged records and syncs them to disk (the group commit).
    ///
    /// On failure (a full disk, a file system remounted read-only, an IO error) nothing staged
    /// is kept: the buffer is emptied and the file cut back to what earlier commits synced, so
    /// the caller can stage the same entries again later and replay never meets a torn frame
    /// before good ones. A segment file that is no longer the one in the WAL directory (the
    /// directory was deleted or replaced) is an error too: what is written to it would be lost
    /// with the file.
    pub(crate) fn commit(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = self.write_synced();
        self.buf.clear();
        if result.is_err() {
            self.torn = self.cut_back().is_err();
        }
        result
    }

    fn write_synced(&mut self) -> io::Result<()> {
        if self.torn {
            self.cut_back()?;
            self.torn = false;
        }
        self.file.write_all(&self.buf)?;
        self.file.sync_data()?;
        self.check_linked()?;
        self.len += self.buf.len() as u64;
        Ok(())
    }

    /// Truncates the file to its durable prefix and puts the write position there.
    fn cut_back(&mut self) -> io::Result<()> {
        self.file.set_len(self.len)?;
        self.file.seek(SeekFrom::Start(self.len))?;
        self.file.sync_data()
    }

    /// Fails when the open file is not the segment's file in the directory any more.
    fn check_linked(&self) -> io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let path = segment_path(&self.dir, self.segment);
        let on_disk = fs::metadata(&path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("WAL segment {} vanished: {e}", path.display()),
            )
        })?;
        let open = self.file.metadata()?;
        if (on_disk.dev(), on_disk.ino()) != (open.dev(), open.ino()) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("WAL segment {} was replaced", path.display()),
            ));
        }
        Ok(())
    }

    /// Starts the next segment; the caller deletes the old one once it is in Parquet.
    pub(crate) fn rotate(&mut self) -> io::Result<u64> {
        self.commit()?;
        let old = self.segment;
        *self = WalWriter::create(&self.dir, old + 1)?;
        Ok(old)
    }
}

/// Appends `entry` to `buf` as one frame.
pub(crate) fn frame(buf: &mut Vec<u8>, entry: &WalEntry) {
    let start = buf.len();
    buf.extend_from_slice(&[0; 8]);
    entry.encode(buf);
    let payload = &buf[start + 8..];
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let crc = crc32fast::hash(payload);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Reads every intact entry of a segment, stopping at the first torn frame.
pub(crate) fn read_segment(path: &Path) -> io::Result<Vec<WalEntry>> {
    read_frames(BufReader::new(File::open(path)?))
}

/// Reads frames until the end or the first torn frame.
pub(crate) fn read_frames(mut reader: impl Read) -> io::Result<Vec<WalEntry>> {
    let mut out = Vec::new();
    let mut header = [0u8; 8];
    loop {
        match reader.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len > MAX_FRAME {
            break;
        }
        let mut payload = vec![0u8; len as usize];
        match reader.read_exact(&mut payload) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        if crc32fast::hash(&payload) != crc {
            break;
        }
        match WalEntry::decode(&payload) {
            Some(r) => out.push(r),
            None => break,
        }
    }
    Ok(out)
}

/// Makes a directory entry change (create, rename, delete) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ping::{Extras, Flags, Ping, RejectReason, Rejection};
    use crate::store::record::{Record, StoredEvent, StoredPing};

    fn ping(t: i64) -> WalEntry {
        let p = Ping::new(
            "C01",
            "central",
            t,
            t + 5,
            40.1,
            -88.9,
            Extras::default(),
            Flags::JUMP,
        )
        .unwrap();
        WalEntry::Record(Record::Ping(StoredPing {
            ping: p,
            cell: 42,
            beat: Some("B1".into()),
            zone: None,
            fence_version: 3,
        }))
    }

    #[test]
    fn round_trip_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WalWriter::create(dir.path(), 7).unwrap();
        let reject = WalEntry::Record(Record::Reject(Rejection {
            recv_time: 9,
            topic: "owntracks/a/b".into(),
            reason: RejectReason::MalformedJson,
            detail: "eof".into(),
            payload: b"{".to_vec(),
        }));
        let event = WalEntry::Record(Record::Event(StoredEvent {
            unit: "C01".into(),
            time_ms: 1500,
            kind: "exit".into(),
            layer: Some("beat".into()),
            fence: None,
            catalog_version: 3,
            detail: "{}".into(),
        }));
        let tick = WalEntry::Tick(1_795_000_000_000);
        let snapshot = WalEntry::Snapshot {
            closed: true,
            state: vec![1, 2, 3],
        };
        w.stage(&ping(1000));
        w.stage(&reject);
        w.stage(&event);
        w.stage(&tick);
        w.stage(&snapshot);
        w.commit().unwrap();
        w.stage(&ping(2000));
        w.commit().unwrap();
        let path = segment_path(dir.path(), 7);
        let got = read_segment(&path).unwrap();
        assert_eq!(
            got,
            vec![ping(1000), reject, event, tick, snapshot, ping(2000)]
        );

        // Cut the last frame in half: replay keeps the first five entries only.
        let len = fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 10).unwrap();
        assert_eq!(read_segment(&path).unwrap().len(), 5);
        assert_eq!(list_segments(dir.path()).unwrap(), vec![7]);
    }
}
