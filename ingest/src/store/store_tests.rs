use super::*;
use crate::ping::{Extras, Flags, Ping, RejectReason};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_763_800_000_000; // 2025-11-22

fn ping(unit: &str, t: i64) -> Record {
    ping_at(unit, t, 40.1)
}

fn ping_at(unit: &str, t: i64, lat: f64) -> Record {
    let p = Ping::new(
        unit,
        "central",
        t,
        t + 1000,
        lat,
        -88.9,
        Extras::default(),
        Flags::empty(),
    )
    .unwrap();
    Record::Ping(StoredPing {
        ping: p,
        cell: 1,
        beat: Some("B1".into()),
        zone: None,
        fence_version: 1,
    })
}

fn reject(payload: &[u8], t: i64) -> Record {
    Record::Reject(Rejection {
        recv_time: t,
        topic: "owntracks/central/C01".into(),
        reason: RejectReason::MalformedJson,
        detail: "expected value".into(),
        payload: payload.to_vec(),
    })
}

fn cfg(root: &Path) -> StoreConfig {
    StoreConfig {
        flush_records: 1000,
        ..StoreConfig::new(root)
    }
}

/// Counts rows and `(unit, fix_time)` keys of the pings table by reading the Parquet files.
fn stored_pings(root: &Path) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for day in files::partitions(root, PINGS).unwrap() {
        files::ping_keys(&partition_dir(root, PINGS, day), |u, t, _, _| {
            out.push((u.to_owned(), t))
        })
        .unwrap();
    }
    out.sort();
    out
}

fn stored_rejects(root: &Path) -> usize {
    let mut n = 0;
    for day in files::partitions(root, REJECTS).unwrap() {
        files::reject_keys(&partition_dir(root, REJECTS, day), |_, _| n += 1).unwrap();
    }
    n
}

#[test]
fn dedupes_within_and_across_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(cfg(dir.path())).unwrap();
    let out = s
        .append(vec![
            ping("C01", T0),
            ping("C01", T0),
            ping("C02", T0),
            reject(b"{", T0),
        ])
        .unwrap();
    assert_eq!(
        out,
        AppendOutcome {
            pings: 2,
            rejects: 1,
            events: 0,
            duplicates: 1,
            conflicts: 0,
        }
    );
    let out = s
        .append(vec![ping("C02", T0), reject(b"{", T0), reject(b"[", T0)])
        .unwrap();
    assert_eq!(
        out,
        AppendOutcome {
            pings: 0,
            rejects: 1,
            events: 0,
            duplicates: 2,
            conflicts: 0,
        }
    );
    s.flush().unwrap();
    assert_eq!(stored_pings(dir.path()).len(), 2);
    assert_eq!(stored_rejects(dir.path()), 2);
}

#[test]
fn replays_unflushed_wal_after_a_crash_and_dedupes_redelivery() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Store::open(cfg(dir.path())).unwrap();
        s.append(vec![ping("C01", T0), ping("C01", T0 + DAY)])
            .unwrap();
        // Dropped without flush: the crash.
    }
    assert!(stored_pings(dir.path()).is_empty());
    let mut s = Store::open(cfg(dir.path())).unwrap();
    assert_eq!(stored_pings(dir.path()).len(), 2, "replay wrote both days");
    // The broker redelivers what was never acknowledged: it is recognised from Parquet.
    let out = s
        .append(vec![ping("C01", T0), ping("C01", T0 + 5)])
        .unwrap();
    assert_eq!(out.duplicates, 1);
    assert_eq!(out.pings, 1);
    s.flush().unwrap();
    assert_eq!(stored_pings(dir.path()).len(), 3);
}

#[test]
fn replay_after_partial_flush_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Store::open(cfg(dir.path())).unwrap();
        s.append(vec![ping("C01", T0), ping("C02", T0)]).unwrap();
        // Crash after the Parquet rename but before the segment is deleted: write the part
        // file by hand, keep the WAL segment.
        write_segment(dir.path(), &s.cfg.node, s.wal.segment(), &s.pending).unwrap();
    }
    let s = Store::open(cfg(dir.path())).unwrap();
    drop(s);
    assert_eq!(stored_pings(dir.path()).len(), 2);
}

#[test]
fn flushes_by_size_compacts_and_purges() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.flush_records = 10;
    c.compact_min_files = 3;
    let mut s = Store::open(c).unwrap();
    for batch in 0..5 {
        let recs = (0..10).map(|i| ping("C01", T0 + batch * 100 + i)).collect();
        s.append(recs).unwrap();
    }
    assert_eq!(s.pending(), 0);
    // A flush by size runs in the background; `flush` waits for it (and has nothing left).
    s.flush().unwrap();
    let dirp = partition_dir(dir.path(), PINGS, files::day_of(T0));
    assert!(
        files::data_files(&dirp).unwrap().len() < 3,
        "compaction merged the parts"
    );
    assert_eq!(stored_pings(dir.path()).len(), 50);
    s.append(vec![ping("C01", T0 + 3 * DAY)]).unwrap();
    assert_eq!(s.purge_before(T0 + DAY).unwrap(), 1);
    assert_eq!(
        stored_pings(dir.path()),
        vec![("C01".to_owned(), T0 + 3 * DAY)]
    );
    // Segment numbers keep increasing across restarts even with no WAL left.
    drop(s);
    let s = Store::open(cfg(dir.path())).unwrap();
    assert!(s.wal.segment() >= 6);
}

#[test]
fn merged_files_are_sorted_by_unit_in_row_groups_that_prune() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(cfg(dir.path())).unwrap();
    // Two parts whose units interleave, each more than half a row group; the same unit and
    // time twice in a part would be one ping, so every row has a time of its own.
    let n = files::COMPACT_ROW_GROUP_ROWS * 3 / 4;
    for part in 0..2 {
        let recs: Vec<Record> = (0..n)
            .map(|i| {
                let unit = format!("U{}", (i * 7 + part) % 10);
                ping(&unit, T0 + (part * n + i) as i64)
            })
            .collect();
        s.write_bulk(&recs).unwrap();
    }
    assert_eq!(s.compact_all().unwrap(), 2);
    let p = partition_dir(dir.path(), PINGS, files::day_of(T0));
    let merged = files::data_files(&p).unwrap();
    assert_eq!(merged.len(), 1);
    let file = fs::File::open(&merged[0].0).unwrap();
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let meta = reader.metadata().clone();
    assert_eq!(meta.num_row_groups(), 2);
    assert_eq!(
        meta.row_group(0).num_rows(),
        files::COMPACT_ROW_GROUP_ROWS as i64
    );
    let mut rows: Vec<(String, i64)> = Vec::new();
    files::ping_keys(&p, |u, t, _, _| rows.push((u.to_owned(), t))).unwrap();
    assert_eq!(rows.len(), 2 * n);
    assert!(
        rows.windows(2).all(|w| w[0] <= w[1]),
        "merged rows are in unit, fix time order"
    );
    // The row groups' `unit` statistics (column 0) then cover disjoint ranges, give or take
    // the unit they meet at, which is what lets a reader of a range of units skip the others.
    let range = |g: usize| match meta.row_group(g).column(0).statistics() {
        Some(parquet::file::statistics::Statistics::ByteArray(st)) => (
            st.min_opt().unwrap().as_utf8().unwrap().to_owned(),
            st.max_opt().unwrap().as_utf8().unwrap().to_owned(),
        ),
        other => panic!("no unit statistics: {other:?}"),
    };
    let ((min0, max0), (min1, max1)) = (range(0), range(1));
    assert_eq!((min0.as_str(), max1.as_str()), ("U0", "U9"));
    assert!(max0 <= min1, "{max0} > {min1}");
}

#[test]
fn covered_parts_are_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(cfg(dir.path())).unwrap();
    s.append(vec![ping("C01", T0)]).unwrap();
    s.flush().unwrap();
    s.append(vec![ping("C01", T0 + 1)]).unwrap();
    s.flush().unwrap();
    let p = partition_dir(dir.path(), PINGS, files::day_of(T0));
    // Merge by hand but "crash" before deleting the inputs: copy them back.
    let before: Vec<_> = files::data_files(&p).unwrap();
    let saved: Vec<_> = before
        .iter()
        .map(|(path, _)| (path.clone(), fs::read(path).unwrap()))
        .collect();
    files::compact_partition(&p, &cfg(dir.path()).node, 2).unwrap();
    for (path, bytes) in saved {
        fs::write(path, bytes).unwrap();
    }
    assert_eq!(
        stored_pings(dir.path()).len(),
        4,
        "duplicated on disk before cleanup"
    );
    drop(s);
    let _s = Store::open(cfg(dir.path())).unwrap();
    assert_eq!(stored_pings(dir.path()).len(), 2);
}

#[test]
fn fnv_is_stable() {
    assert_eq!(fnv1a(&[b"a", b"b"]), fnv1a(&[b"a", b"b"]));
    assert_ne!(fnv1a(&[b"ab", b""]), fnv1a(&[b"a", b"b"]));
}

fn event(unit: &str, t: i64, fence: &str) -> Record {
    use crate::events::{Event, EventKind, Layer};
    Record::Event(StoredEvent::from_event(&Event {
        unit: unit.into(),
        time_ms: t,
        catalog_version: 4,
        provisional: false,
        kind: EventKind::Enter {
            layer: Layer::Beat,
            fence: fence.into(),
            confirmed_ms: t + 30_000,
        },
    }))
}

#[test]
fn events_are_stored_once_by_day_and_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Store::open(cfg(dir.path())).unwrap();
        let out = s
            .append(vec![
                ping("C01", T0),
                event("C01", T0, "B1"),
                event("C01", T0, "B1"),
                event("C02", T0 + DAY, "B2"),
            ])
            .unwrap();
        assert_eq!((out.pings, out.events, out.duplicates), (1, 2, 1));
        // Dropped without flush: the crash; the WAL holds the events.
    }
    let mut s = Store::open(cfg(dir.path())).unwrap();
    let all = scan_events(dir.path(), T0 - DAY, T0 + 2 * DAY).unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(
        all[0],
        match event("C01", T0, "B1") {
            Record::Event(e) => e,
            _ => unreachable!(),
        }
    );
    assert_eq!(
        (
            all[1].unit.as_str(),
            all[1].fence.as_deref(),
            all[1].catalog_version
        ),
        ("C02", Some("B2"), 4)
    );
    // The same event again is known from Parquet; the time range is half open.
    let out = s.append(vec![event("C01", T0, "B1")]).unwrap();
    assert_eq!((out.events, out.duplicates), (0, 1));
    assert_eq!(scan_events(dir.path(), T0, T0 + DAY).unwrap().len(), 1);
    assert!(dir.path().join("events/date=2025-11-22").is_dir());
    // Retention removes event partitions as well.
    assert_eq!(s.purge_before(T0 + DAY).unwrap(), 2);
    assert_eq!(
        scan_events(dir.path(), T0 - DAY, T0 + 2 * DAY)
            .unwrap()
            .len(),
        1
    );
}

fn snapshot(closed: bool, state: &[u8]) -> WalEntry {
    WalEntry::Snapshot {
        closed,
        state: state.to_vec(),
    }
}

fn input(rec: Record) -> Input {
    match rec {
        Record::Ping(p) => Input::Ping(p),
        other => panic!("not a ping: {other:?}"),
    }
}

/// The stage's resume point: a crash (dropping the store without a flush) and a clean flush
/// and reopen both keep it, duplicates do not enter it, a flush in the middle of a run keeps
/// collecting in the next segment, and nothing appended after a closed snapshot or by a store
/// that saw no snapshot (an import) counts as an engine input.
#[test]
fn the_resume_point_survives_crashes_and_rotations_and_ignores_imports() {
    let dir = tempfile::tempdir().unwrap();
    let entries = |recs: Vec<Record>| recs.into_iter().map(WalEntry::Record).collect::<Vec<_>>();
    let mut want = Resume {
        snapshot: Some(vec![1]),
        inputs: vec![input(ping("C01", T0)), Input::Tick(T0 + 5)],
    };
    {
        let mut s = Store::open(cfg(dir.path())).unwrap();
        assert_eq!(s.resume(), Resume::default());
        let mut batch = vec![snapshot(false, &[1])];
        batch.extend(entries(vec![ping("C01", T0)]));
        batch.push(WalEntry::Tick(T0 + 5));
        batch.extend(entries(vec![ping("C01", T0), reject(b"{", T0)]));
        let out = s.append_entries(&mut batch).unwrap();
        assert_eq!((out.pings, out.duplicates), (1, 1));
        assert_eq!(s.resume(), want);
    }
    // Crash: only the WAL holds it.
    {
        let mut s = Store::open(cfg(dir.path())).unwrap();
        assert_eq!(s.resume(), want);
        assert_eq!(stored_pings(dir.path()).len(), 1);
        // This store saw no snapshot: its pings are not engine inputs.
        s.append(vec![ping("C01", T0 + 60_000)]).unwrap();
        assert_eq!(s.resume(), want);
        s.flush().unwrap();
    }
    // A run that flushes in the middle, then crashes.
    {
        let mut s = Store::open(cfg(dir.path())).unwrap();
        assert_eq!(s.resume(), want);
        let mut batch = vec![snapshot(false, &[2])];
        batch.extend(entries(vec![ping("C01", T0 + 1000)]));
        s.append_entries(&mut batch).unwrap();
        s.flush().unwrap();
        s.append_entries(&mut entries(vec![ping("C02", T0)]))
            .unwrap();
        s.append_entries(&mut vec![WalEntry::Tick(T0 + 9)]).unwrap();
        want = Resume {
            snapshot: Some(vec![2]),
            inputs: vec![
                input(ping("C01", T0 + 1000)),
                input(ping("C02", T0)),
                Input::Tick(T0 + 9),
            ],
        };
        assert_eq!(s.resume(), want);
    }
    {
        let mut s = Store::open(cfg(dir.path())).unwrap();
        assert_eq!(s.resume(), want);
        // A clean end: the closing snapshot, then an import.
        s.append_entries(&mut vec![snapshot(false, &[3]), snapshot(true, &[4])])
            .unwrap();
        s.append(vec![ping("C03", T0)]).unwrap();
    }
    for _ in 0..2 {
        let mut s = Store::open(cfg(dir.path())).unwrap();
        assert_eq!(
            s.resume(),
            Resume {
                snapshot: Some(vec![4]),
                inputs: vec![]
            }
        );
        s.flush().unwrap();
    }
    assert_eq!(stored_pings(dir.path()).len(), 5);
}

#[test]
fn a_second_position_for_the_same_fix_time_is_kept_as_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(cfg(dir.path())).unwrap();
    s.append(vec![ping_at("C01", T0, 40.1)]).unwrap();
    // Within one batch and across batches, before and after the flush and a reopen.
    let out = s
        .append(vec![ping_at("C01", T0, 40.2), ping_at("C01", T0, 40.2)])
        .unwrap();
    assert_eq!((out.pings, out.rejects, out.conflicts), (0, 1, 2));
    s.flush().unwrap();
    drop(s);
    let mut s = Store::open(cfg(dir.path())).unwrap();
    let out = s
        .append(vec![ping_at("C01", T0, 40.1), ping_at("C01", T0, 40.3)])
        .unwrap();
    assert_eq!(
        (out.pings, out.duplicates, out.rejects, out.conflicts),
        (0, 1, 1, 1)
    );
    s.flush().unwrap();
    assert_eq!(stored_pings(dir.path()), vec![("C01".to_owned(), T0)]);
    let rejects = scan_reject_keys(dir.path()).unwrap();
    assert_eq!(rejects.len(), 2, "{rejects:?}");
    assert!(rejects.iter().all(|(topic, _)| topic == "central/C01"));
    let payloads: Vec<String> = rejects
        .iter()
        .map(|(_, p)| String::from_utf8(p.clone()).unwrap())
        .collect();
    assert!(payloads.iter().any(|p| p.contains("40.2")), "{payloads:?}");
    assert!(payloads.iter().any(|p| p.contains("40.3")), "{payloads:?}");
}

#[test]
fn a_second_open_of_the_same_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(cfg(dir.path())).unwrap();
    let err = Store::open(cfg(dir.path())).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("in use by another process")
            && msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    drop(s);
    Store::open(cfg(dir.path())).unwrap();
}

#[test]
fn node_names_keep_the_files_of_several_nodes_apart() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let node = |root: &Path, name: &str| StoreConfig {
        node: name.to_owned(),
        compact_min_files: 2,
        ..cfg(root)
    };
    assert!(matches!(
        Store::open(node(&a, "bad-name")),
        Err(StoreError::BadNode(_))
    ));
    for (root, name, unit) in [(&a, "a", "C01"), (&b, "b", "C02")] {
        let mut s = Store::open(node(root, name)).unwrap();
        s.append(vec![ping(unit, T0)]).unwrap();
        s.flush().unwrap();
    }
    // Both nodes wrote segment 0 of the same day: merged into one tree, the names differ.
    let day = partition_dir(&a, PINGS, files::day_of(T0));
    for entry in fs::read_dir(partition_dir(&b, PINGS, files::day_of(T0))).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), day.join(entry.file_name())).unwrap();
    }
    let mut s = Store::open(node(&a, "a")).unwrap();
    assert_eq!(files::data_files(&day).unwrap().len(), 2);
    // Node a merges only its own files, and another node's copy is a duplicate to it.
    s.append(vec![ping("C01", T0 + 1), ping("C02", T0)])
        .unwrap();
    s.flush().unwrap();
    let mut names: Vec<String> = fs::read_dir(&day)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "compact-0000000000-0000000002-a.parquet",
            "part-0000000000-b.parquet"
        ]
    );
    assert_eq!(
        scan_ping_keys(&a).unwrap(),
        [
            ("C01".to_owned(), T0),
            ("C01".to_owned(), T0 + 1),
            ("C02".to_owned(), T0)
        ]
    );
}

#[test]
fn a_vanished_wal_is_a_permanent_error_and_nothing_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let mut s = Store::open(cfg(&root)).unwrap();
    s.append(vec![ping("C01", T0)]).unwrap();
    fs::remove_dir_all(&root).unwrap();
    let mut batch = vec![WalEntry::Record(ping("C01", T0 + 1))];
    let err = s.append_entries(&mut batch).unwrap_err();
    assert!(err.is_permanent(), "{err}");
    assert_eq!(batch.len(), 1, "the batch is handed back");
}

#[test]
fn file_names_parse_with_and_without_a_node() {
    assert_eq!(
        files::file_range("part-0000000007.parquet"),
        Some(("", (7, 7)))
    );
    assert_eq!(
        files::file_range("part-0000000007-n_1.parquet"),
        Some(("n_1", (7, 7)))
    );
    assert_eq!(
        files::file_range("compact-0000000001-0000000009-x.parquet"),
        Some(("x", (1, 9)))
    );
    assert_eq!(files::file_range("part-7.parquet"), None);
    assert_eq!(
        files::file_name("x", 1, 9),
        "compact-0000000001-0000000009-x.parquet"
    );
    assert_eq!(files::file_name("", 3, 3), "part-0000000003.parquet");
}
