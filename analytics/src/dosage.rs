//! Job 1, dosage: time-weighted patrol presence per H3 cell, window instance and unit kind.
//!
//! Definitions (see [`crate::context`] for intervals, flags, gaps, windows and time on duty):
//! - only on-duty intervals count: a unit's time off its rostered shifts (`roster.csv`), such
//!   as a car reporting while parked at its station, adds no dosage, and neither does a unit
//!   that is not on the roster;
//! - a tracked interval's on-duty milliseconds are split equally among the cells of the H3 grid path
//!   from the cell of its first fix to the cell of its second (h3o `grid_path_cells`; both
//!   ends included, so an interval inside one cell gives it everything and one between two
//!   neighbours gives each half). Where no grid path exists (across a pentagon) the two end
//!   cells share it. Integer milliseconds are split with the remainder going one by one to the
//!   first cells of the path, so nothing is lost to rounding;
//! - an interval longer than the gap cap, or after the shift's last fix, is not bridged: its
//!   on-duty length is reported as *no data* (a row whose `cell` is null) of the unit's kind,
//!   window and day;
//! - minutes are conserved: the rows of a run add up to the on-duty length of every on-duty
//!   interval (from each trusted fix inside a shift to the unit's next trusted fix, the shift's
//!   end or the span's end, whichever comes first), and the rows with a cell to the part of
//!   that whose next fix came within the gap cap;
//! - `kind` comes from `units.csv`; a unit `<id>-<n>` not listed there (the clones
//!   `patrol generate --units` adds) has the kind of `<id>`; any other unlisted unit is of kind
//!   `unknown`;
//! - `window` is null for time outside every patrol window; `date` is the local date the window
//!   instance starts (for time outside windows, the local date).

use std::collections::BTreeMap;

use h3o::CellIndex;
use polars::prelude::*;

use crate::AnalyticsError;
use crate::context::JobContext;
use crate::duty::{Interval, Tally, Walk};
use crate::store::UNIT;

/// The `unit`, `kind` table the jobs take their units' kinds from.
///
/// # Errors
/// A polars error.
pub fn units_table(units: &[model::jurisdiction::Unit]) -> Result<LazyFrame, AnalyticsError> {
    Ok(DataFrame::new_infer_height(vec![
        Column::new(
            UNIT.into(),
            units.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "kind".into(),
            units.iter().map(|u| u.kind.as_str()).collect::<Vec<_>>(),
        ),
    ])?
    .lazy())
}

/// Key of a dosage row: local day, window, kind, cell (None = no data).
pub(crate) type DosageKey = (i64, Option<String>, String, Option<u64>);

/// The cells an interval between `a` and `b` is spread over.
pub(crate) fn path_cells(a: u64, b: u64) -> Vec<u64> {
    if a == b {
        return vec![a];
    }
    let (Ok(ca), Ok(cb)) = (CellIndex::try_from(a), CellIndex::try_from(b)) else {
        return vec![a, b];
    };
    ca.grid_path_cells(cb)
        .ok()
        .and_then(|path| path.collect::<Result<Vec<_>, _>>().ok())
        .map_or_else(|| vec![a, b], |p| p.into_iter().map(u64::from).collect())
}

/// Splits `ms` over `cells` exactly: each gets `ms / n`, the first `ms % n` one more.
pub(crate) fn split_ms(ms: i64, n: usize) -> impl Iterator<Item = i64> {
    let n = n.max(1) as i64;
    let (q, r) = (ms.div_euclid(n), ms.rem_euclid(n));
    (0..n).map(move |i| q + i64::from(i < r))
}

/// Key of the dosage by end-cell pair: local day, window, kind, the two end cells (None, None for
/// no data).
pub(crate) type PairKey = (i64, Option<String>, String, Option<u64>, Option<u64>);

/// Dosage by end-cell pair as the walk sums it: day, window index, kind index, the two end
/// cells (0, 0 for no data).
type PairCode = (i64, u8, u16, u64, u64);

/// The on-duty intervals' ms summed by end-cell pair ([`PairKey`]), before the grid-path
/// split ([`spread`]).
#[derive(Default)]
pub(crate) struct PairSums(Tally<PairCode, i64>);

impl PairSums {
    /// Adds one interval.
    pub(crate) fn add(&mut self, i: &Interval) {
        let (a, b) = if i.tracked {
            (i.cell_a, i.cell_b)
        } else {
            (0, 0)
        };
        *self.0.get((i.day, i.window, i.kind, a, b)) += i.ms;
    }

    /// The sums by [`PairKey`], names from `walk` and `ctx`.
    pub(crate) fn finish(self, ctx: &JobContext, walk: &Walk<'_>) -> BTreeMap<PairKey, i64> {
        let cell = |c: u64| (c != 0).then_some(c);
        self.0
            .into_iter()
            .map(|((day, w, kind, a, b), ms)| {
                let key = (
                    day,
                    ctx.window_name(w).map(str::to_owned),
                    walk.kinds.names[usize::from(kind)].clone(),
                    cell(a),
                    cell(b),
                );
                (key, ms)
            })
            .collect()
    }
}

/// Spreads the dosage by end-cell pair ([`PairSums`]) along the grid paths.
pub(crate) fn spread(pairs: BTreeMap<PairKey, i64>) -> BTreeMap<DosageKey, i64> {
    let mut out: BTreeMap<DosageKey, i64> = BTreeMap::new();
    for ((day, window, kind, a, b), ms) in pairs {
        match (a, b) {
            (Some(a), Some(b)) => {
                let cells = path_cells(a, b);
                for (cell, part) in cells.iter().zip(split_ms(ms, cells.len())) {
                    *out.entry((day, window.clone(), kind.clone(), Some(*cell)))
                        .or_default() += part;
                }
            }
            _ => *out.entry((day, window, kind, None)).or_default() += ms,
        }
    }
    out
}

/// The dosage table: `date` (local date of the window instance), `window` (null outside
/// windows), `kind`, `cell` (u64 H3 index at the run's resolution; null = no data), `ms`
/// (i64, exact) and `minutes` (f64), sorted by those keys.
///
/// # Errors
/// A polars error.
pub(crate) fn dosage_frame(rows: &BTreeMap<DosageKey, i64>) -> Result<DataFrame, AnalyticsError> {
    let n = rows.len();
    let (mut date, mut window, mut kind, mut cell, mut ms) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for ((d, w, k, c), v) in rows {
        date.push(i32::try_from(*d).unwrap_or(i32::MAX));
        window.push(w.clone());
        kind.push(k.clone());
        cell.push(*c);
        ms.push(*v);
    }
    let minutes: Vec<f64> = ms.iter().map(|&m| m as f64 / 60_000.0).collect();
    Ok(DataFrame::new_infer_height(vec![
        Column::new("date".into(), date).cast(&DataType::Date)?,
        Column::new("window".into(), window),
        Column::new("kind".into(), kind),
        Column::new("cell".into(), cell),
        Column::new("ms".into(), ms),
        Column::new("minutes".into(), minutes),
    ])?)
}

/// The dosage of `pings` spread along the grid paths: the on-duty intervals of every pass of
/// [`JobContext::passes`] summed by [`PairSums`], then [`spread`].
///
/// # Errors
/// A polars error from the scan.
pub(crate) fn spread_dosage(
    ctx: &JobContext,
    pings: LazyFrame,
    units: &LazyFrame,
) -> Result<BTreeMap<DosageKey, i64>, AnalyticsError> {
    let mut walk = Walk::new(ctx, units)?;
    let mut pairs = PairSums::default();
    walk.passes(ctx.passes(pings)?, |i| pairs.add(i))?;
    Ok(spread(pairs.finish(ctx, &walk)))
}

/// Runs the dosage job: [`spread_dosage`] as a table.
///
/// # Errors
/// A polars error from the scan or the plan.
pub fn dosage(
    ctx: &JobContext,
    pings: LazyFrame,
    units: LazyFrame,
) -> Result<DataFrame, AnalyticsError> {
    dosage_frame(&spread_dosage(ctx, pings, &units)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use std::collections::BTreeMap;

    use h3o::{LatLng, Resolution};
    use model::jurisdiction::RosterEntry;
    use proptest::prelude::*;

    use super::*;
    use crate::store::{FLAG_JUMP, FLAG_LATE, FLAG_LOW_ACCURACY};
    use crate::testing::{Fix, cells9, ms, pings, shift, units, windows};

    fn ctx(from: &str, to: &str, roster: &[RosterEntry]) -> JobContext {
        JobContext::new(
            chrono_tz::America::Chicago,
            windows(),
            (ms(from), ms(to)),
            (9, 11),
            120,
        )
        .unwrap()
        .with_roster(roster)
        .unwrap()
    }

    /// (date, window, kind, cell) -> ms of a dosage frame.
    fn rows(df: &DataFrame) -> BTreeMap<(String, Option<String>, String, Option<u64>), i64> {
        let date = df.column("date").unwrap().cast(&DataType::String).unwrap();
        let date = date.str().unwrap();
        let window = df.column("window").unwrap().str().unwrap();
        let kind = df.column("kind").unwrap().str().unwrap();
        let cell = df.column("cell").unwrap().u64().unwrap();
        let ms = df.column("ms").unwrap().i64().unwrap();
        let minutes = df.column("minutes").unwrap().f64().unwrap();
        (0..df.height())
            .map(|i| {
                assert_eq!(
                    minutes.get(i).unwrap(),
                    ms.get(i).unwrap() as f64 / 60_000.0
                );
                (
                    (
                        date.get(i).unwrap().to_owned(),
                        window.get(i).map(str::to_owned),
                        kind.get(i).unwrap().to_owned(),
                        cell.get(i),
                    ),
                    ms.get(i).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn hand_computed_dosage() {
        let (x, y, z) = cells9();
        let far = u64::from(LatLng::new(41.1, -88.9).unwrap().to_cell(Resolution::Nine));
        let t0 = ms("2026-11-02T15:00:00Z"); // 09:00 CST: the day window
        let n0 = ms("2026-11-03T07:00:00Z"); // 01:00 CST on the 3rd: Monday's night window
        let s = 1000;
        let fixes = vec![
            // C01's shift ends at t0 + 300 s.
            Fix::at("C01", t0, x),
            Fix::at("C01", t0 + 60 * s, x),
            Fix::at("C01", t0 + 90 * s, far).flags(FLAG_JUMP),
            Fix::at("C01", t0 + 120 * s, y),
            Fix::at("C01", t0 + 130 * s, far).flags(FLAG_LOW_ACCURACY),
            // Late fixes are kept and sorted into place; these two are off duty.
            Fix::at("C01", t0 + 460 * s, y).flags(FLAG_LATE),
            Fix::at("C01", t0 + 400 * s, y),
            // C02's shift ends at t0 + 60 s, inside its second interval.
            Fix::at("C02", t0, x),
            Fix::at("C02", t0 + 50 * s, x),
            Fix::at("C02", t0 + 100 * s, y),
            Fix::at("C02", t0 + 500 * s, y),
            // F01 is on duty until 11:20 and stops reporting at t0 + 211 s.
            Fix::at("F01", t0, x),
            Fix::at("F01", t0 + 90 * s, z),
            Fix::at("F01", t0 + 211 * s, z),
            // Q9 is on no roster.
            Fix::at("Q9", t0, x),
            Fix::at("Q9", t0 + 120 * s, x),
            // A clone of B01 works B01's night shift (until 05:00 CST = n0 + 4 h).
            Fix::at("B01-0002", n0, x),
            Fix::at("B01-0002", n0 + 60 * s, x),
        ];
        let roster = [
            shift("C01", "2026-11-02", (8, 30), (9, 5)),
            shift("C02", "2026-11-02", (8, 30), (9, 1)),
            shift("F01", "2026-11-02", (8, 30), (11, 20)),
            shift("B01", "2026-11-02", (23, 0), (5, 0)),
        ];
        let c = ctx("2026-11-02T06:00:00Z", "2026-11-04T06:00:00Z", &roster);
        let units = units(&[
            ("C01", "car"),
            ("C02", "car"),
            ("F01", "foot"),
            ("B01", "bike"),
        ]);
        let got = rows(&dosage(&c, pings(&fixes), units).unwrap());
        let path = path_cells(x, z);
        assert_eq!(path.len(), 3);
        assert_eq!((path[0], path[2]), (x, z));
        let row = |window: &str, kind: &str, cell: Option<u64>, v: i64| {
            (
                (
                    "2026-11-02".to_owned(),
                    Some(window.to_owned()),
                    kind.to_owned(),
                    cell,
                ),
                v,
            )
        };
        let want: BTreeMap<_, _> = [
            // C01: x→x 60 s, x→y 60 s halved, then 280 s without data cut at the shift's end
            // (180 s); C02: x→x 50 s, then 50 s to y of which 10 s on duty, halved.
            row("day", "car", Some(x), 60_000 + 30_000 + 50_000 + 5_000),
            row("day", "car", Some(y), 30_000 + 5_000),
            row("day", "car", None, 180_000),
            // F01: x→z 90 s over three cells, 121 s without data, then silence until 11:20.
            row("day", "foot", Some(x), 30_000),
            row("day", "foot", Some(path[1]), 30_000),
            row("day", "foot", Some(z), 30_000),
            row("day", "foot", None, 121_000 + (8_400 - 211) * 1000),
            // The clone: 60 s in x, then silence until 05:00.
            row("night", "bike", Some(x), 60_000),
            row("night", "bike", None, (14_400 - 60) * 1000),
        ]
        .into_iter()
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn fixes_outside_the_span_and_time_outside_windows() {
        let (x, _, _) = cells9();
        let t0 = ms("2026-11-02T13:00:00Z"); // 07:00 CST: no window
        let fixes = vec![
            Fix::at("C01", t0 - 60_000, x),
            Fix::at("C01", t0, x),
            Fix::at("C01", t0 + 30_000, x),
        ];
        // On duty 06:00 to 09:00 CST; the span ends at 08:00 CST.
        let roster = [shift("C01", "2026-11-02", (6, 0), (9, 0))];
        let c = ctx("2026-11-02T13:00:00Z", "2026-11-02T14:00:00Z", &roster);
        let got = rows(&dosage(&c, pings(&fixes), units(&[("C01", "car")])).unwrap());
        let key = |cell| ("2026-11-02".to_owned(), None, "car".to_owned(), cell);
        let want: BTreeMap<_, _> = [(key(Some(x)), 30_000), (key(None), 3_570_000)]
            .into_iter()
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn nobody_is_on_duty_without_a_roster() {
        let (x, _, _) = cells9();
        let t0 = ms("2026-11-02T15:00:00Z");
        let fixes = vec![Fix::at("C01", t0, x), Fix::at("C01", t0 + 60_000, x)];
        let c = ctx("2026-11-02T06:00:00Z", "2026-11-03T06:00:00Z", &[]);
        let df = dosage(&c, pings(&fixes), units(&[("C01", "car")])).unwrap();
        assert_eq!(df.height(), 0);
    }

    #[test]
    fn overlapping_and_touching_shifts_merge() {
        let tz = chrono_tz::America::Chicago;
        let roster = [
            shift("C01", "2026-11-02", (8, 0), (9, 0)),
            shift("C01", "2026-11-02", (8, 30), (10, 0)),
            shift("C01", "2026-11-02", (10, 0), (11, 0)),
            shift("C01", "2026-11-02", (12, 0), (13, 0)),
        ];
        let got = crate::context::duty_spans(&roster, tz).unwrap();
        let at = |t: &str| ms(&format!("2026-11-02T{t}:00-06:00"));
        assert_eq!(
            got["C01"],
            [(at("08:00"), at("11:00")), (at("12:00"), at("13:00"))]
        );
    }

    #[test]
    fn the_parent_expression_matches_h3o() {
        let cells: Vec<u64> = [
            (40.1, -88.9),
            (37.77, -122.42),
            (-33.9, 151.2),
            (64.1, -21.9),
        ]
        .iter()
        .map(|(lat, lon)| u64::from(LatLng::new(*lat, *lon).unwrap().to_cell(Resolution::Eleven)))
        .collect();
        for res in 7..=11u8 {
            let c = JobContext::new(chrono_tz::UTC, vec![], (0, 1), (res, 11), 120).unwrap();
            let df = DataFrame::new_infer_height(vec![Column::new("c".into(), cells.clone())])
                .unwrap()
                .lazy()
                .select([c.parent_expr(col("c"))])
                .collect()
                .unwrap();
            let got: Vec<u64> = df
                .column("c")
                .unwrap()
                .u64()
                .unwrap()
                .into_no_null_iter()
                .collect();
            let want: Vec<u64> = cells
                .iter()
                .map(|&cell| {
                    let r = Resolution::try_from(res).unwrap();
                    u64::from(CellIndex::try_from(cell).unwrap().parent(r).unwrap())
                })
                .collect();
            assert_eq!(got, want, "resolution {res}");
        }
    }

    #[test]
    fn split_is_exact() {
        assert_eq!(split_ms(10, 3).collect::<Vec<_>>(), [4, 3, 3]);
        assert_eq!(split_ms(9, 3).collect::<Vec<_>>(), [3, 3, 3]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// All rows add up to the on-duty length of every on-duty interval, the rows with a cell
        /// to those whose next fix came within the gap cap.
        #[test]
        fn dosage_conserves_on_duty_minutes(
            tracks in proptest::collection::vec(
                proptest::collection::vec((1i64..300, -3i32..=3, -3i32..=3, 0usize..6), 1..40),
                1..4,
            ),
            shifts in proptest::collection::vec((0usize..2, 0u32..300, 1u32..150), 0..5),
        ) {
            // The third unit is a clone of the first and works its shifts.
            let names = ["C01", "B02", "C01-0003"];
            let flags = [0, 0, 0, FLAG_LOW_ACCURACY, FLAG_JUMP, FLAG_LATE];
            let t0 = ms("2026-11-02T14:00:00Z"); // 08:00 CST
            let roster: Vec<RosterEntry> = shifts
                .iter()
                .map(|&(u, start, len)| {
                    let hm = |m: u32| (8 + m / 60, m % 60);
                    shift(names[u], "2026-11-02", hm(start), hm(start + len))
                })
                .collect();
            let (from, to) = (ms("2026-11-02T06:00:00Z"), ms("2026-11-03T06:00:00Z"));
            // Each unit's shifts as UTC spans, from the roster's own rows.
            let spans_of = |u: usize| -> Vec<(i64, i64)> {
                let id = names[u % 2];
                shifts
                    .iter()
                    .filter(|(k, _, _)| names[*k] == id)
                    .map(|&(_, start, len)| {
                        let a = t0 + i64::from(start) * 60_000;
                        (a, a + i64::from(len) * 60_000)
                    })
                    .collect()
            };
            let mut fixes = Vec::new();
            let (mut want_total, mut want_tracked) = (0i64, 0i64);
            for (u, steps) in tracks.iter().enumerate() {
                let (mut t, mut lat, mut lon) = (t0, 40.10, -88.90);
                let mut trusted = Vec::new();
                for &(dt, dlat, dlon, f) in steps {
                    t += dt * 1000;
                    lat += f64::from(dlat) * 0.002;
                    lon += f64::from(dlon) * 0.002;
                    let cell = u64::from(LatLng::new(lat, lon).unwrap().to_cell(Resolution::Eleven));
                    fixes.push(Fix::at(names[u], t, cell).flags(flags[f]));
                    if flags[f] & (FLAG_LOW_ACCURACY | FLAG_JUMP) == 0 {
                        trusted.push(t);
                    }
                }
                let spans = spans_of(u);
                for (i, &t) in trusted.iter().enumerate() {
                    if !spans.iter().any(|&(a, b)| a <= t && t < b) {
                        continue;
                    }
                    // The end of the union of shifts that holds t.
                    let mut end = t;
                    while let Some(&(_, b)) = spans.iter().find(|&&(a, b)| a <= end && end < b) {
                        end = b;
                    }
                    let next = trusted.get(i + 1).copied();
                    let length = next.unwrap_or(i64::MAX).min(end).min(to) - t;
                    want_total += length;
                    if next.is_some_and(|n| n - t <= 120_000) {
                        want_tracked += length;
                    }
                }
            }
            let c = ctx("2026-11-02T06:00:00Z", "2026-11-03T06:00:00Z", &roster);
            prop_assert_eq!((c.from_ms, c.to_ms), (from, to));
            let df = dosage(&c, pings(&fixes), units(&[("C01", "car")])).unwrap();
            let cell = df.column("cell").unwrap().u64().unwrap();
            let msv = df.column("ms").unwrap().i64().unwrap();
            let (mut total, mut tracked) = (0, 0);
            for i in 0..df.height() {
                total += msv.get(i).unwrap();
                if cell.get(i).is_some() {
                    tracked += msv.get(i).unwrap();
                }
            }
            prop_assert_eq!(total, want_total);
            prop_assert_eq!(tracked, want_tracked);
        }
    }
}
