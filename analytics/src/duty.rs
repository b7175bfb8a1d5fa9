//! The on-duty walk: the on-duty intervals of [`crate::context`] (its module doc defines them),
//! computed in one pass over each unit's fixes instead of as a polars plan.
//!
//! Per pass of [`JobContext::passes`]: polars reads the pass's trusted fixes (one plan: the scan,
//! the span and trust filters, seven columns, one collect on the streaming engine); the pass is
//! then prepared ([`Prepared`]): its units, beats and zones numbered, its fixes ordered by unit
//! with a stable counting sort and by time within a unit (merged files already hold them by
//! time, so that sort usually only checks), the cells lifted to the run's resolution and each
//! segment's length computed; finally the walk follows each unit's shifts alongside its fixes
//! and hands every on-duty interval to the job's aggregation. Reading, preparing and walking
//! run on three threads, each on its own pass. The plan this replaced joined the fixes to the
//! shifts by hour, sorted the pass by unit and time, joined a table of minutes for the window
//! and day and grouped on string keys: 27.8 s for `patrol analyze presence` over 100M pings,
//! most of it in those steps (BENCHMARKS.md, "Analytics").

use polars::prelude::*;
use rustc_hash::FxHashMap;

use crate::AnalyticsError;
use crate::context::{JobContext, Pass};
use crate::distance::distance_m;
use crate::shifts::{UNKNOWN_KIND, base_unit};
use crate::store::{BEAT, CELL, LAT, LON, UNIT, ZONE};

/// [`Interval::beat`] or [`Interval::zone`] of a fix stored outside every fence.
pub(crate) const NO_FENCE: u32 = u32::MAX;

/// One on-duty interval.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Interval {
    /// The unit, numbered in the order the walk meets units (passes in order, units in byte
    /// order within a pass), so that no two units of one walk share a number.
    pub(crate) unit: u32,
    /// Index in [`Walk::kinds`].
    pub(crate) kind: u16,
    /// First fix, UTC epoch ms.
    pub(crate) t: i64,
    /// On-duty length, ms.
    pub(crate) ms: i64,
    /// The next fix came within the gap cap.
    pub(crate) tracked: bool,
    /// Cell of the first fix at the run's resolution (0 when the fix has none).
    pub(crate) cell_a: u64,
    /// Cell of the next fix at the run's resolution; meaningful when `tracked`.
    pub(crate) cell_b: u64,
    /// Local day of the window instance (of the local date outside windows).
    pub(crate) day: i64,
    /// Index in [`JobContext::windows`], or [`NO_WINDOW`](crate::clock::NO_WINDOW).
    pub(crate) window: u8,
    /// Index in [`Walk::beats`] of the first fix's stored beat, or [`NO_FENCE`].
    pub(crate) beat: u32,
    /// Index in [`Walk::zones`], or [`NO_FENCE`].
    pub(crate) zone: u32,
    /// Length of the segment to the next fix, m ([`distance_m`]); 0 when
    /// not `tracked`.
    pub(crate) distance_m: f64,
}

/// Values by key, in order of first sight, with the key last asked for kept at hand: the walk
/// asks for one key many times in a row (a unit's consecutive intervals mostly share their
/// cells, window and fence), and then hashes it once.
pub(crate) struct Tally<K, V> {
    index: FxHashMap<K, usize>,
    values: Vec<(K, V)>,
    last: Option<(K, usize)>,
}

impl<K, V> Default for Tally<K, V> {
    fn default() -> Self {
        Self {
            index: FxHashMap::default(),
            values: Vec::new(),
            last: None,
        }
    }
}

impl<K: Copy + Eq + std::hash::Hash, V: Default> Tally<K, V> {
    /// The value of `key`, the default at first.
    pub(crate) fn get(&mut self, key: K) -> &mut V {
        let slot = match self.last {
            Some((k, slot)) if k == key => slot,
            _ => {
                let values = &mut self.values;
                let slot = *self.index.entry(key).or_insert_with(|| {
                    values.push((key, V::default()));
                    values.len() - 1
                });
                self.last = Some((key, slot));
                slot
            }
        };
        &mut self.values[slot].1
    }

    /// The keys and values, in order of first sight.
    pub(crate) fn into_iter(self) -> impl Iterator<Item = (K, V)> {
        self.values.into_iter()
    }
}

/// Strings numbered in order of first sight.
#[derive(Debug, Default)]
pub(crate) struct Names {
    pub(crate) names: Vec<String>,
    index: FxHashMap<String, u32>,
}

impl Names {
    fn code(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = u32::try_from(self.names.len()).unwrap_or(NO_FENCE - 1);
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), i);
        i
    }
}

/// The walk over the passes of one job run: the kinds and fence names it has met so far.
pub(crate) struct Walk<'a> {
    ctx: &'a JobContext,
    /// `units.csv`: unit -> kind.
    kind_of: FxHashMap<String, String>,
    /// The unit kinds [`Interval::kind`] indexes.
    pub(crate) kinds: Names,
    /// The beat ids [`Interval::beat`] indexes.
    pub(crate) beats: Names,
    /// The zone ids [`Interval::zone`] indexes.
    pub(crate) zones: Names,
    /// Number of the first unit of the next pass.
    next_unit: u32,
}

/// The values of a numeric column of one chunk, nulls as the type's default.
fn values<T>(column: &ChunkedArray<T>) -> Vec<T::Native>
where
    T: PolarsNumericType,
{
    if column.null_count() > 0 {
        return column.iter().map(Option::unwrap_or_default).collect();
    }
    let mut out = Vec::with_capacity(column.len());
    for chunk in column.downcast_iter() {
        out.extend_from_slice(chunk.values().as_slice());
    }
    out
}

/// Codes of a string column: each value through `code`, nulls as [`NO_FENCE`]. A run of equal
/// values is looked up once, and told apart by its arrow view (length, prefix and place, or
/// the whole value when short), so most rows cost a 16-byte comparison. Views are compared only
/// within a chunk: those of two chunks may point at the same place in different buffers.
fn codes(column: &StringChunked, mut code: impl FnMut(&str) -> u32) -> Vec<u32> {
    let mut out = Vec::with_capacity(column.len());
    for chunk in column.downcast_iter() {
        let mut last: Option<(u128, &str, u32)> = None;
        for (v, view) in chunk.iter().zip(chunk.views().iter()) {
            let c = match (v, last) {
                (None, _) => NO_FENCE,
                (Some(_), Some((l, _, c))) if l == view.as_u128() => c,
                (Some(v), Some((_, s, c))) if s == v => {
                    last = Some((view.as_u128(), s, c));
                    c
                }
                (Some(v), _) => {
                    let c = code(v);
                    last = Some((view.as_u128(), v, c));
                    c
                }
            };
            out.push(c);
        }
    }
    out
}

impl<'a> Walk<'a> {
    /// A walk for `ctx`; `units` has columns `unit` and `kind` ([`crate::dosage::units_table`]).
    ///
    /// # Errors
    /// A polars error collecting `units`.
    pub(crate) fn new(ctx: &'a JobContext, units: &LazyFrame) -> Result<Self, AnalyticsError> {
        let df = units.clone().collect()?;
        let (unit, kind) = (df.column(UNIT)?.str()?, df.column("kind")?.str()?);
        let kind_of = unit
            .iter()
            .zip(kind.iter())
            .filter_map(|(u, k)| Some((u?.to_owned(), k?.to_owned())))
            .collect();
        Ok(Self {
            ctx,
            kind_of,
            kinds: Names::default(),
            beats: Names::default(),
            zones: Names::default(),
            next_unit: 0,
        })
    }

    /// The kind of `unit`: its own, else that of `<id>` for a clone `<id>-<n>`, else
    /// [`UNKNOWN_KIND`].
    fn kind(&mut self, unit: &str) -> u16 {
        let kind = self
            .kind_of
            .get(unit)
            .or_else(|| base_unit(unit).and_then(|b| self.kind_of.get(b)))
            .map_or(UNKNOWN_KIND, String::as_str);
        u16::try_from(self.kinds.code(kind)).unwrap_or(u16::MAX)
    }

    /// Hands every on-duty interval of `passes` to `visit`, pass by pass, unit by unit (in the
    /// order of [`Pass::units`]) and by time within a unit. Three threads work on three passes
    /// at once: one reads a pass, one prepares ([`Prepared`]) the pass read before, and this one
    /// walks the pass prepared before that.
    ///
    /// # Errors
    /// A polars error from the scan.
    pub(crate) fn passes(
        &mut self,
        passes: Vec<Pass>,
        mut visit: impl FnMut(&Interval),
    ) -> Result<(), AnalyticsError> {
        let ctx = self.ctx;
        std::thread::scope(|scope| {
            // Handing over waits for the receiver: at most one pass waits between two threads.
            let (read_tx, read_rx) = std::sync::mpsc::sync_channel(0);
            let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(0);
            scope.spawn(move || {
                for pass in passes {
                    // The streaming engine hands over the row groups' chunks as they are; the
                    // in-memory one concatenated them, strings included (a third of its time).
                    let fixes = crate::collect_streaming(ctx.trusted_fixes(pass.pings));
                    let failed = fixes.is_err();
                    if read_tx.send(fixes.map(|f| (pass.units, f))).is_err() || failed {
                        break;
                    }
                }
            });
            scope.spawn(move || {
                for read in read_rx {
                    let ready = read.and_then(|(units, fixes)| Prepared::new(ctx, &units, &fixes));
                    let failed = ready.is_err();
                    if ready_tx.send(ready).is_err() || failed {
                        break;
                    }
                }
            });
            for ready in ready_rx {
                self.walk(&ready?, &mut visit);
            }
            Ok(())
        })
    }

    /// Hands the on-duty intervals of one prepared pass to `visit`.
    fn walk(&mut self, pass: &Prepared, visit: &mut impl FnMut(&Interval)) {
        let ctx = self.ctx;
        let kinds: Vec<u16> = pass.units.iter().map(|u| self.kind(u)).collect();
        let beats: Vec<u32> = pass.beats.iter().map(|b| self.beats.code(b)).collect();
        let zones: Vec<u32> = pass.zones.iter().map(|z| self.zones.code(z)).collect();
        let fence =
            |names: &[u32], local: u32| names.get(local as usize).copied().unwrap_or(NO_FENCE);
        let first = self.next_unit;
        self.next_unit = first.saturating_add(u32::try_from(kinds.len()).unwrap_or(u32::MAX));
        let t = &pass.t;
        for (u, w) in pass.starts.windows(2).enumerate() {
            let shifts = ctx.shifts_of(&pass.units[u]);
            let unit = first + u32::try_from(u).unwrap_or(u32::MAX);
            // The unit's fixes (positions in the pass's order) inside a shift or its grace,
            // each with its shift.
            let mut k = 0;
            let mut kept = (w[0]..w[1]).filter_map(|p| {
                while k < shifts.len() && shifts[k].g <= t[p] {
                    k += 1;
                }
                shifts.get(k).filter(|s| t[p] >= s.s).map(|s| (p, *s))
            });
            let mut here = kept.next();
            while let Some((p, shift)) = here {
                let next = kept.next();
                let at = t[p];
                if at < shift.e {
                    let (window, day) = ctx.window_and_day(at);
                    let stop = shift.e.min(ctx.to_ms);
                    let (end, tracked, cell_b, distance_m) = match next {
                        Some((n, _)) => {
                            // A tracked interval joins neighbours in this order: any fix
                            // between the two lies before `e` plus the gap cap, so in the
                            // shift's grace or in the next shift, and would have been kept.
                            let tracked = t[n] - at <= ctx.gap_cap_ms;
                            let d = if tracked { pass.step_m[p] } else { 0.0 };
                            (t[n].min(stop), tracked, pass.cell[n], d)
                        }
                        None => (stop, false, 0, 0.0),
                    };
                    visit(&Interval {
                        unit,
                        kind: kinds[u],
                        t: at,
                        ms: end - at,
                        tracked,
                        cell_a: pass.cell[p],
                        cell_b,
                        day,
                        window,
                        beat: fence(&beats, pass.beat[p]),
                        zone: fence(&zones, pass.zone[p]),
                        distance_m,
                    });
                }
                here = next;
            }
        }
    }
}

/// A pass's trusted fixes ready to walk: ordered by unit (in the order of [`Pass::units`]) and
/// by time within a unit, one column per field.
struct Prepared {
    /// The pass's units.
    units: Vec<String>,
    /// Where each unit's fixes start; one more entry than units.
    starts: Vec<usize>,
    /// Fix time, UTC epoch ms.
    t: Vec<i64>,
    /// Cell at the run's resolution (0: none).
    cell: Vec<u64>,
    /// Length of the segment from each fix to the next one in this order, m.
    step_m: Vec<f64>,
    /// Stored beat, as an index in `beats` ([`NO_FENCE`] for none).
    beat: Vec<u32>,
    beats: Vec<String>,
    /// Stored zone, as an index in `zones`.
    zone: Vec<u32>,
    zones: Vec<String>,
}

impl Prepared {
    /// Orders `fixes` (columns of [`JobContext::trusted_fixes`]) of the units listed in `units`
    /// ([`Pass::units`]).
    fn new(ctx: &JobContext, units: &DataFrame, fixes: &DataFrame) -> Result<Self, AnalyticsError> {
        let listed: Vec<String> = units
            .column(UNIT)?
            .str()?
            .iter()
            .map(|u| u.unwrap_or_default().to_owned())
            .collect();
        let number: FxHashMap<&str, u32> = listed
            .iter()
            .enumerate()
            .map(|(i, u)| (u.as_str(), u32::try_from(i).unwrap_or(u32::MAX)))
            .collect();
        let unit = codes(fixes.column(UNIT)?.str()?, |u| {
            number.get(u).copied().unwrap_or(NO_FENCE)
        });
        let (mut beats, mut zones) = (Names::default(), Names::default());
        let beat = codes(fixes.column(BEAT)?.str()?, |b| beats.code(b));
        let zone = codes(fixes.column(ZONE)?.str()?, |z| zones.code(z));
        let t = values(fixes.column("t")?.i64()?);
        let order = by_unit_and_time(&unit, &t, listed.len());
        let (beat, zone) = (order.gather(&beat), order.gather(&zone));
        let lat = order.gather(&values(fixes.column(LAT)?.f64()?));
        let lon = order.gather(&values(fixes.column(LON)?.f64()?));
        let mut cell = order.gather(&values(fixes.column(CELL)?.u64()?));
        for c in &mut cell {
            *c = ctx.parent(*c);
        }
        let t = order.gather(&t);
        let step_m = (0..lat.len())
            .map(|p| match (lat.get(p + 1), lon.get(p + 1)) {
                (Some(&la), Some(&lo)) => distance_m(lat[p], lon[p], la, lo),
                _ => 0.0,
            })
            .collect();
        Ok(Self {
            units: listed,
            starts: order.starts,
            t,
            cell,
            step_m,
            beat,
            beats: beats.names,
            zone,
            zones: zones.names,
        })
    }
}

/// Row numbers grouped by unit (in unit order), by time within each unit.
struct Order {
    rows: Vec<u32>,
    /// Where each unit's rows start in `rows`; one more entry than units.
    starts: Vec<usize>,
}

impl Order {
    /// `column`'s values in this order.
    fn gather<T: Copy>(&self, column: &[T]) -> Vec<T> {
        self.rows.iter().map(|&r| column[r as usize]).collect()
    }
}

/// Counting sort of the rows by unit (rows of an unknown unit, [`NO_FENCE`], are left out),
/// stable, then each unit's rows sorted by time where they are not already.
fn by_unit_and_time(unit: &[u32], t: &[i64], units: usize) -> Order {
    let mut starts = vec![0usize; units + 1];
    for &u in unit {
        if let Some(n) = starts.get_mut(u as usize + 1) {
            *n += 1;
        }
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut fill = starts.clone();
    let mut rows = vec![0u32; starts[units]];
    for (r, &u) in unit.iter().enumerate() {
        if let Some(at) = fill.get_mut(u as usize)
            && (u as usize) < units
        {
            rows[*at] = u32::try_from(r).unwrap_or(u32::MAX);
            *at += 1;
        }
    }
    for w in starts.windows(2) {
        let slice = &mut rows[w[0]..w[1]];
        if !slice.is_sorted_by_key(|&r| t[r as usize]) {
            slice.sort_by_key(|&r| t[r as usize]);
        }
    }
    Order { rows, starts }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn tallies_sum_interleaved_keys() {
        let mut tally: Tally<u8, i64> = Tally::default();
        for (k, v) in [(1, 10), (1, 5), (2, 7), (1, 1), (3, 2), (2, 3)] {
            *tally.get(k) += v;
        }
        assert_eq!(
            tally.into_iter().collect::<Vec<_>>(),
            [(1, 16), (2, 10), (3, 2)]
        );
    }

    #[test]
    fn string_codes_follow_values_across_chunks() {
        // Values longer than 12 bytes live in the chunk's buffers: the first value of each
        // chunk below has the same length, prefix, buffer and offset, hence the same view,
        // but they differ. Equal values in two chunks get one code.
        let long = "beat-0001-north-side";
        let other = "beat-0002-north-side";
        let mut column = StringChunked::new("b".into(), [Some(long)]);
        let second = [Some(other), None, Some(long), Some("B1"), Some("B1")];
        column
            .append(&StringChunked::new("b".into(), second))
            .unwrap();
        assert_eq!(column.chunks().len(), 2);
        let mut names = Names::default();
        let got = codes(&column, |v| names.code(v));
        assert_eq!(got, [0, 1, NO_FENCE, 0, 2, 2]);
        assert_eq!(names.names, [long, other, "B1"]);
    }

    #[test]
    fn rows_are_grouped_by_unit_then_ordered_by_time() {
        // Units 1, 0, 1, 0, unknown, 1 at times 5, 9, 3, 2, 1, 4.
        let unit = [1, 0, 1, 0, NO_FENCE, 1];
        let t = [5, 9, 3, 2, 1, 4];
        let order = by_unit_and_time(&unit, &t, 3);
        assert_eq!(order.rows, [3, 1, 2, 5, 0]);
        assert_eq!(order.starts, [0, 2, 5, 5]);
    }
}
