//! Test support: small pings frames with the store's columns and dtypes, built in memory, and
//! cells near the fixture county's centre.

use h3o::{CellIndex, LatLng, Resolution};
use polars::prelude::*;

use crate::store::{BEAT, CELL, FIX_TIME, FLAGS, LAT, LON, STATION, UNIT, ZONE};
use model::jurisdiction::{RosterEntry, Unit, Window};

/// One fix of a test track.
#[derive(Debug, Clone)]
pub(crate) struct Fix {
    pub(crate) unit: &'static str,
    pub(crate) t_ms: i64,
    pub(crate) cell: u64,
    pub(crate) flags: i32,
    pub(crate) beat: Option<&'static str>,
    pub(crate) zone: Option<&'static str>,
}

impl Fix {
    /// A trusted fix at the centre of `cell` (any resolution up to 11).
    pub(crate) fn at(unit: &'static str, t_ms: i64, cell: u64) -> Self {
        Self {
            unit,
            t_ms,
            cell,
            flags: 0,
            beat: None,
            zone: None,
        }
    }

    pub(crate) fn flags(mut self, flags: i32) -> Self {
        self.flags = flags;
        self
    }

    pub(crate) fn beat(mut self, beat: &'static str) -> Self {
        self.beat = Some(beat);
        self
    }

    pub(crate) fn zone(mut self, zone: &'static str) -> Self {
        self.zone = Some(zone);
        self
    }
}

/// The centre of a cell.
pub(crate) fn centre(cell: u64) -> LatLng {
    LatLng::from(CellIndex::try_from(cell).unwrap())
}

/// A pings frame as the store holds it (cells at resolution 11).
pub(crate) fn pings(fixes: &[Fix]) -> LazyFrame {
    let r11 = Resolution::Eleven;
    let ll: Vec<LatLng> = fixes.iter().map(|f| centre(f.cell)).collect();
    DataFrame::new_infer_height(vec![
        Column::new(
            UNIT.into(),
            fixes.iter().map(|f| f.unit).collect::<Vec<_>>(),
        ),
        Column::new(
            STATION.into(),
            fixes.iter().map(|_| "ST1").collect::<Vec<_>>(),
        ),
        Column::new(
            FIX_TIME.into(),
            fixes.iter().map(|f| f.t_ms).collect::<Vec<_>>(),
        )
        .cast(&DataType::Datetime(
            TimeUnit::Milliseconds,
            Some(TimeZone::UTC),
        ))
        .unwrap(),
        Column::new(LAT.into(), ll.iter().map(|l| l.lat()).collect::<Vec<_>>()),
        Column::new(LON.into(), ll.iter().map(|l| l.lng()).collect::<Vec<_>>()),
        Column::new(
            CELL.into(),
            ll.iter()
                .map(|l| u64::from(l.to_cell(r11)))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            BEAT.into(),
            fixes.iter().map(|f| f.beat).collect::<Vec<_>>(),
        ),
        Column::new(
            ZONE.into(),
            fixes.iter().map(|f| f.zone).collect::<Vec<_>>(),
        ),
        Column::new(
            FLAGS.into(),
            fixes.iter().map(|f| f.flags).collect::<Vec<_>>(),
        ),
    ])
    .unwrap()
    .lazy()
}

/// The fixture county's windows.
pub(crate) fn windows() -> Vec<Window> {
    let w = |name: &str, s: (u32, u32), e: (u32, u32)| Window {
        name: name.into(),
        start: chrono::NaiveTime::from_hms_opt(s.0, s.1, 0).unwrap(),
        end: chrono::NaiveTime::from_hms_opt(e.0, e.1, 0).unwrap(),
    };
    vec![
        w("day", (8, 30), (11, 20)),
        w("afternoon", (13, 0), (17, 30)),
        w("evening", (20, 0), (22, 30)),
        w("night", (23, 0), (5, 0)),
    ]
}

/// A units table.
pub(crate) fn units(list: &[(&str, &str)]) -> LazyFrame {
    let units: Vec<Unit> = list
        .iter()
        .map(|(id, kind)| Unit {
            id: (*id).into(),
            kind: kind.parse().unwrap(),
            station: "ST1".into(),
            crew: 1,
            devices: Default::default(),
        })
        .collect();
    crate::dosage::units_table(&units).unwrap()
}

/// A roster entry: `unit` on local `date` (`YYYY-MM-DD`) from `start` to `end` (local hours
/// and minutes; an end not after the start is the next day).
pub(crate) fn shift(unit: &str, date: &str, start: (u32, u32), end: (u32, u32)) -> RosterEntry {
    let hm = |(h, m): (u32, u32)| chrono::NaiveTime::from_hms_opt(h, m, 0).unwrap();
    RosterEntry {
        date: chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap(),
        unit: unit.into(),
        zone: "Z1".into(),
        window: "day".into(),
        start: hm(start),
        end: hm(end),
        crew: 1,
        level: 3,
    }
}

/// UTC epoch ms of an RFC 3339 time.
pub(crate) fn ms(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .timestamp_millis()
}

/// The resolution-9 cell at the county centre and cells at grid distance 1 and 2 from it.
pub(crate) fn cells9() -> (u64, u64, u64) {
    let x = LatLng::new(40.10, -88.90)
        .unwrap()
        .to_cell(Resolution::Nine);
    let ring: Vec<(CellIndex, u32)> = x.grid_disk_distances(2);
    let at = |d: u32| {
        ring.iter()
            .find(|(_, k)| *k == d)
            .map(|(c, _)| u64::from(*c))
            .unwrap()
    };
    (u64::from(x), at(1), at(2))
}
