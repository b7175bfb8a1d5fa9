//! [`GeofenceIndex`]: H3 cells to fences, with an exact fallback on boundary cells.
//!
//! # Boundary rule
//! A fence holds a point when the point is strictly inside it (geo `Contains`): a point exactly on
//! a fence's boundary is not in that fence, so a point on an edge shared by two beats gets no
//! beat. Where fences overlap, the lowest catalog index wins. The brute-force reference is
//! therefore "the first fence, in catalog order, whose geometry `contains` the point".
//!
//! # How it works
//! Each fence is tiled with h3o in `Covers` mode at the index resolution, which annotates every
//! cell touching it with "fully contained or not". h3o tests cells by their boundary drawn as a
//! straight-edged polygon, while `to_cell` uses the true (gnomonic) cell shape; the two differ by
//! far less than a cell. So a cell is answered without geometry only when it *and its six
//! neighbours* are fully inside the same single fence; any other cell near a fence keeps the
//! fences seen in its 1-disk as candidates for an exact test. Cells farther away hold no fence.
//!
//! # The fast path
//! Most of the cost of an assignment is h3o's `to_cell`. Over the catalog's bounding box the
//! index also keeps its cells by their address on the icosahedron face plane
//! ([`super::faceplane`]), so a point there is projected, rounded to its hexagon and looked up:
//! the same cell h3o gives, without h3o's per-resolution digit loop. The stored cell one
//! resolution finer is the looked-up cell with its last digit set (rotated as the base cell
//! requires; pentagon base cells are left to h3o). Points outside the box, and the rare point
//! whose projection is too close to a hexagon edge to call, take h3o's path.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};

use geo::indexed::IntervalTreeMultiPolygon;
use geo::{BoundingRect, Contains, Coord, Intersects, Rect};
use h3o::geom::{ContainmentMode, TilerBuilder};
use h3o::{CellIndex, LatLng, Resolution};

use super::faceplane::FacePlane;
use model::fences::{Catalog, Fence};

/// A fence's position in [`Catalog::beats`] or [`Catalog::zones`] (which one depends on the
/// [`Assignment`] field it came from).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FenceIdx(u32);

impl FenceIdx {
    /// The index into the catalog's vector.
    #[must_use]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// Where a point falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Assignment {
    /// The point's H3 cell at the requested resolution; `None` for non-finite coordinates.
    pub cell: Option<CellIndex>,
    /// The beat strictly containing the point (see the module's boundary rule).
    pub beat: Option<FenceIdx>,
    /// The lowest-index zone strictly containing the point.
    pub zone: Option<FenceIdx>,
}

/// Errors from building a [`GeofenceIndex`].
#[derive(Debug, thiserror::Error)]
pub enum GeofenceError {
    /// h3o rejected a fence's geometry.
    #[error("cannot tile fence {fence}")]
    Tiling {
        /// The fence id.
        fence: String,
        /// The cause.
        #[source]
        source: h3o::error::InvalidGeometry,
    },
    /// More fences of one kind than a [`FenceIdx`] can hold.
    #[error("too many fences ({0})")]
    TooManyFences(usize),
}

/// What a cell knows about one kind of fence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// No fence near this cell.
    Empty,
    /// The cell and its neighbours lie strictly inside this fence only.
    Inside(FenceIdx),
    /// Test the point against `candidates[start..start + len]` (ascending fence index).
    Check { start: u32, len: u32 },
}

/// Beat and zone slots of one cell, looked up together.
#[derive(Debug, Clone, Copy)]
struct CellEntry {
    beat: Slot,
    zone: Slot,
}

/// Exact point-in-fence test: bounding box, then an interval tree over the fence's edges.
struct FenceTest {
    bbox: Option<Rect<f64>>,
    tree: IntervalTreeMultiPolygon<f64>,
}

impl FenceTest {
    fn new(fence: &Fence) -> Self {
        Self {
            bbox: fence.geometry.bounding_rect(),
            tree: IntervalTreeMultiPolygon::new(&fence.geometry),
        }
    }

    fn contains(&self, coord: Coord<f64>) -> bool {
        self.bbox.is_some_and(|b| b.intersects(&coord)) && self.tree.contains(&coord)
    }
}

/// Hashes an H3 index (a well-spread u64) with one multiply and a fold of the high half.
#[derive(Default)]
struct CellHasher(u64);

impl Hasher for CellHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0 ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        let x = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 32);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type CellMap<V> = HashMap<CellIndex, V, BuildHasherDefault<CellHasher>>;

/// One index cell on the fast path.
#[derive(Debug, Clone, Copy)]
struct PlaneCell {
    cell: CellIndex,
    /// Counter-clockwise 60° turns from a raw aperture-7 digit to the child's digit in the
    /// index; `None` where h3o's own path is needed (pentagon base cells, unconfirmed cells).
    child_turns: Option<u8>,
    entry: CellEntry,
}

/// The index cells of the catalog's bounding box, keyed by their face-plane address.
struct PlaneCells {
    plane: FacePlane,
    /// The plane one resolution finer, for the stored cell; `None` at resolution 15.
    child_plane: Option<FacePlane>,
    cells: HashMap<u64, PlaneCell, BuildHasherDefault<CellHasher>>,
}

/// Bounding boxes with more index cells than this get no fast path (memory over speed).
const MAX_PLANE_CELLS: usize = 2_000_000;

/// Beats and zones indexed by H3 cell, built once at startup; [`GeofenceIndex::assign`] is pure.
///
/// # Example
/// ```
/// use geo::{MultiPolygon, polygon};
/// use h3o::Resolution;
/// use ingest::geofence::{Catalog, Fence, FenceKind, GeofenceIndex};
///
/// let square = polygon![
///     (x: -87.70, y: 41.80), (x: -87.69, y: 41.80), (x: -87.69, y: 41.81), (x: -87.70, y: 41.81),
/// ];
/// let beat = Fence {
///     id: "0711".into(),
///     name: "Beat 711".into(),
///     station: "007".into(),
///     kind: FenceKind::Beat,
///     geometry: MultiPolygon::new(vec![square]),
/// };
/// let catalog = Catalog { version: 1, beats: vec![beat], zones: vec![], repairs: vec![] };
/// let index = GeofenceIndex::build(&catalog, Resolution::Ten)?;
///
/// let hit = index.assign_with_cell(41.805, -87.695, Resolution::Eleven);
/// assert_eq!(hit.beat.and_then(|b| index.beat(b)).map(|f| f.id.as_str()), Some("0711"));
/// assert_eq!(hit.cell.map(|c| c.resolution()), Some(Resolution::Eleven));
/// // On the boundary: in no beat.
/// assert_eq!(index.assign(41.805, -87.69).beat, None);
/// # Ok::<(), ingest::geofence::GeofenceError>(())
/// ```
pub struct GeofenceIndex {
    resolution: Resolution,
    catalog: Catalog,
    cells: CellMap<CellEntry>,
    /// Candidate lists of all `Slot::Check` cells, interned (identical lists share a range).
    candidates: Vec<FenceIdx>,
    beat_tests: Vec<FenceTest>,
    zone_tests: Vec<FenceTest>,
    plane: Option<PlaneCells>,
}

impl GeofenceIndex {
    /// Tiles every fence of `catalog` at `resolution` (10 or 11 suit city beats).
    ///
    /// # Errors
    /// [`GeofenceError::Tiling`] if h3o rejects a geometry, [`GeofenceError::TooManyFences`]
    /// beyond `u32::MAX` fences of one kind.
    pub fn build(catalog: &Catalog, resolution: Resolution) -> Result<Self, GeofenceError> {
        let beat_slots = slots(&catalog.beats, resolution)?;
        let zone_slots = slots(&catalog.zones, resolution)?;
        let mut candidates = Vec::new();
        let mut interned: HashMap<Vec<FenceIdx>, (u32, u32)> = HashMap::new();
        let mut intern = |list: Vec<FenceIdx>| -> Slot {
            let (start, len) = *interned.entry(list).or_insert_with_key(|list| {
                let range = (candidates.len() as u32, list.len() as u32);
                candidates.extend_from_slice(list);
                range
            });
            Slot::Check { start, len }
        };
        let empty = CellEntry {
            beat: Slot::Empty,
            zone: Slot::Empty,
        };
        let mut cells: CellMap<CellEntry> = CellMap::default();
        for (cell, near) in beat_slots {
            cells.entry(cell).or_insert(empty).beat = near.into_slot(&mut intern);
        }
        for (cell, near) in zone_slots {
            cells.entry(cell).or_insert(empty).zone = near.into_slot(&mut intern);
        }
        cells.shrink_to_fit();
        let plane = plane_cells(catalog, resolution, &cells);
        Ok(Self {
            resolution,
            catalog: catalog.clone(),
            cells,
            candidates,
            beat_tests: catalog.beats.iter().map(FenceTest::new).collect(),
            zone_tests: catalog.zones.iter().map(FenceTest::new).collect(),
            plane,
        })
    }

    /// Assigns a WGS84 point; `Assignment::cell` is at the index resolution.
    #[must_use]
    pub fn assign(&self, lat: f64, lon: f64) -> Assignment {
        self.assign_with_cell(lat, lon, self.resolution)
    }

    /// Assigns a WGS84 point and returns its cell at `cell_resolution` (e.g. the store's res 11).
    ///
    /// When `cell_resolution` is at or finer than the index resolution the point is converted
    /// once (`to_cell(cell_resolution)`) and the index cell is its cheap `parent`; otherwise a
    /// second `to_cell` is needed.
    #[must_use]
    pub fn assign_with_cell(&self, lat: f64, lon: f64, cell_resolution: Resolution) -> Assignment {
        let Some((latlng, coord)) = locate(lat, lon) else {
            return Assignment::default();
        };
        if let Some((cell, entry)) = self.plane_lookup(latlng, cell_resolution) {
            return Assignment {
                cell: Some(cell),
                beat: self.resolve(entry.beat, coord, &self.beat_tests),
                zone: self.resolve(entry.zone, coord, &self.zone_tests),
            };
        }
        let cell = latlng.to_cell(cell_resolution);
        let index_cell = if cell_resolution >= self.resolution {
            cell.parent(self.resolution)
        } else {
            Some(latlng.to_cell(self.resolution))
        };
        let Some(entry) = index_cell.and_then(|c| self.cells.get(&c)) else {
            return Assignment {
                cell: Some(cell),
                ..Assignment::default()
            };
        };
        Assignment {
            cell: Some(cell),
            beat: self.resolve(entry.beat, coord, &self.beat_tests),
            zone: self.resolve(entry.zone, coord, &self.zone_tests),
        }
    }

    /// The fast path: the point's cell at `cell_resolution` (the index resolution or one finer)
    /// and its index entry, or `None` to ask h3o.
    fn plane_lookup(
        &self,
        ll: LatLng,
        cell_resolution: Resolution,
    ) -> Option<(CellIndex, CellEntry)> {
        let plane = self.plane.as_ref()?;
        if cell_resolution == self.resolution {
            let hit = plane.cells.get(&plane.plane.key(ll)?)?;
            return Some((hit.cell, hit.entry));
        }
        let child_plane = plane.child_plane.as_ref()?;
        if child_plane.resolution() != cell_resolution {
            return None;
        }
        let (key, raw) = child_plane.parent_key_and_digit(ll)?;
        let hit = plane.cells.get(&key)?;
        // A hexagon's children are listed in digit order.
        let digit = turn_ccw(raw, hit.child_turns?);
        Some((
            hit.cell.child_at(u64::from(digit), cell_resolution)?,
            hit.entry,
        ))
    }

    fn resolve(&self, slot: Slot, coord: Coord<f64>, tests: &[FenceTest]) -> Option<FenceIdx> {
        match slot {
            Slot::Empty => None,
            Slot::Inside(idx) => Some(idx),
            Slot::Check { start, len } => {
                let range = start as usize..(start + len) as usize;
                self.candidates.get(range)?.iter().copied().find(|idx| {
                    tests
                        .get(idx.index())
                        .is_some_and(|test| test.contains(coord))
                })
            }
        }
    }

    /// The index resolution.
    #[must_use]
    pub const fn resolution(&self) -> Resolution {
        self.resolution
    }

    /// The catalog the index was built from.
    #[must_use]
    pub const fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The beat behind an [`Assignment::beat`] index.
    #[must_use]
    pub fn beat(&self, idx: FenceIdx) -> Option<&Fence> {
        self.catalog.beats.get(idx.index())
    }

    /// The zone behind an [`Assignment::zone`] index.
    #[must_use]
    pub fn zone(&self, idx: FenceIdx) -> Option<&Fence> {
        self.catalog.zones.get(idx.index())
    }

    /// The index of the beat whose id is `id`.
    #[must_use]
    pub fn beat_idx(&self, id: &str) -> Option<FenceIdx> {
        position_of(&self.catalog.beats, id)
    }

    /// The index of the zone whose id is `id`.
    #[must_use]
    pub fn zone_idx(&self, id: &str) -> Option<FenceIdx> {
        position_of(&self.catalog.zones, id)
    }

    /// Number of indexed cells (covered cells plus their neighbours).
    #[must_use]
    pub fn cell_count(&self) -> usize {
        self.cells.len()
    }
}

/// The position of the fence with id `id` in `fences`.
fn position_of(fences: &[Fence], id: &str) -> Option<FenceIdx> {
    let i = fences.iter().position(|f| f.id == id)?;
    u32::try_from(i).ok().map(FenceIdx)
}

/// The only conversion between the caller's (lat, lon), h3o's `LatLng` and geo's (x = lon,
/// y = lat). `None` for non-finite input.
fn locate(lat: f64, lon: f64) -> Option<(LatLng, Coord<f64>)> {
    let latlng = LatLng::new(lat, lon).ok()?;
    Some((latlng, Coord { x: lon, y: lat }))
}

/// H3 digits (K=1, J=2, JK=3, I=4, IK=5, IJ=6) after one counter-clockwise 60° turn.
const CCW_DIGIT: [u8; 7] = [0, 5, 3, 1, 6, 4, 2];

/// `digit` turned counter-clockwise `turns` times.
fn turn_ccw(digit: usize, turns: u8) -> u8 {
    let mut d = digit % 7;
    for _ in 0..turns {
        d = usize::from(CCW_DIGIT[d]);
    }
    d as u8
}

/// The fast-path table over the catalog's bounding box (see the module docs), or `None` for an
/// empty catalog or a box too large to keep.
fn plane_cells(
    catalog: &Catalog,
    resolution: Resolution,
    cells: &CellMap<CellEntry>,
) -> Option<PlaneCells> {
    let bbox = catalog
        .beats
        .iter()
        .chain(&catalog.zones)
        .filter_map(|f| f.geometry.bounding_rect())
        .reduce(|a, b| {
            Rect::new(
                Coord {
                    x: a.min().x.min(b.min().x),
                    y: a.min().y.min(b.min().y),
                },
                Coord {
                    x: a.max().x.max(b.max().x),
                    y: a.max().y.max(b.max().y),
                },
            )
        })?;
    let mut tiler = TilerBuilder::new(resolution)
        .containment_mode(ContainmentMode::Covers)
        .build();
    tiler.add(bbox.to_polygon()).ok()?;
    let region: Vec<CellIndex> = tiler.into_coverage().collect();
    if region.len() > MAX_PLANE_CELLS {
        return None;
    }
    let plane = FacePlane::new(resolution);
    let child_res = resolution.succ();
    let child_plane = child_res.map(FacePlane::new);
    let empty = CellEntry {
        beat: Slot::Empty,
        zone: Slot::Empty,
    };
    let mut table = HashMap::with_capacity_and_hasher(region.len(), BuildHasherDefault::default());
    for cell in region {
        // A cell's centre is far from its edges: its key is the one every point of the cell's
        // hexagon on this face projects to.
        let Some(key) = plane.key(LatLng::from(cell)) else {
            continue;
        };
        let child_turns = child_res
            .zip(child_plane.as_ref())
            .and_then(|(res, child_plane)| child_turns(cell, key, res, child_plane));
        table.insert(
            key,
            PlaneCell {
                cell,
                child_turns,
                entry: cells.get(&cell).copied().unwrap_or(empty),
            },
        );
    }
    Some(PlaneCells {
        plane,
        child_plane,
        cells: table,
    })
}

/// The turns that map every child's raw digit (as projected from its centre) onto its digit in
/// h3o's index, checked on all seven children; `None` for pentagons or any disagreement.
fn child_turns(
    cell: CellIndex,
    key: u64,
    child_res: Resolution,
    child_plane: &FacePlane,
) -> Option<u8> {
    if cell.base_cell().is_pentagon() {
        return None;
    }
    let pairs: Vec<(usize, u8)> = cell
        .children(child_res)
        .map(|child| {
            let (parent_key, raw) = child_plane.parent_key_and_digit(LatLng::from(child))?;
            let digit = u8::from(child.direction_at(child_res)?);
            (parent_key == key).then_some((raw, digit))
        })
        .collect::<Option<_>>()?;
    (0..6).find(|&turns| {
        pairs
            .iter()
            .all(|&(raw, digit)| turn_ccw(raw, turns) == digit)
    })
}

/// The fences seen around one cell.
struct Near {
    /// Fences touching the cell's 1-disk, ascending.
    fences: Vec<FenceIdx>,
    /// Some(fence) while every cell of the 1-disk is fully inside that fence and no other.
    inside: Option<FenceIdx>,
}

impl Near {
    fn into_slot(self, intern: &mut impl FnMut(Vec<FenceIdx>) -> Slot) -> Slot {
        match (self.inside, self.fences.is_empty()) {
            (Some(idx), _) => Slot::Inside(idx),
            (None, true) => Slot::Empty,
            (None, false) => intern(self.fences),
        }
    }
}

/// Per cell, the fences near it (see the module docs for why the 1-disk).
fn slots(fences: &[Fence], resolution: Resolution) -> Result<CellMap<Near>, GeofenceError> {
    if u32::try_from(fences.len()).is_err() {
        return Err(GeofenceError::TooManyFences(fences.len()));
    }
    // cell -> [(fence, fully contained)] in fence order.
    let mut coverage: CellMap<Vec<(FenceIdx, bool)>> = CellMap::default();
    for (i, fence) in fences.iter().enumerate() {
        let idx = FenceIdx(i as u32);
        let mut tiler = TilerBuilder::new(resolution)
            .containment_mode(ContainmentMode::Covers)
            .build();
        for polygon in &fence.geometry {
            tiler
                .add(polygon.clone())
                .map_err(|source| GeofenceError::Tiling {
                    fence: fence.id.clone(),
                    source,
                })?;
        }
        for annotated in tiler.into_annotated_coverage() {
            coverage
                .entry(annotated.cell)
                .or_default()
                .push((idx, annotated.is_fully_contained));
        }
    }
    let mut near: CellMap<Near> = CellMap::default();
    for &covered in coverage.keys() {
        for cell in covered.grid_disk::<Vec<_>>(1) {
            let Entry::Vacant(slot) = near.entry(cell) else {
                continue;
            };
            let mut fences = Vec::new();
            let mut inside = None;
            let mut pure = true;
            for neighbour in cell.grid_disk::<Vec<_>>(1) {
                match coverage.get(&neighbour).map(Vec::as_slice) {
                    Some(&[(idx, true)]) if inside.is_none_or(|i| i == idx) => {
                        inside = Some(idx);
                    }
                    _ => pure = false,
                }
                if let Some(list) = coverage.get(&neighbour) {
                    fences.extend(list.iter().map(|&(idx, _)| idx));
                }
            }
            fences.sort_unstable();
            fences.dedup();
            slot.insert(Near {
                fences,
                inside: inside.filter(|_| pure),
            });
        }
    }
    Ok(near)
}

#[cfg(test)]
mod tests {
    use geo::{MultiPolygon, Polygon, polygon};

    use super::*;
    use model::fences::FenceKind;

    fn fence(id: &str, kind: FenceKind, polygons: Vec<Polygon<f64>>) -> Fence {
        Fence {
            id: id.to_owned(),
            name: id.to_owned(),
            station: "7".to_owned(),
            kind,
            geometry: MultiPolygon::new(polygons),
        }
    }

    /// Beat "a" (with a hole) and beat "b" share the edge lon = -87.69; zone "z" is two squares;
    /// beat "c" overlaps the eastern half of "b".
    fn catalog() -> Catalog {
        let a = polygon!(
            exterior: [
                (x: -87.70, y: 41.80), (x: -87.69, y: 41.80),
                (x: -87.69, y: 41.81), (x: -87.70, y: 41.81),
            ],
            interiors: [[
                (x: -87.697, y: 41.803), (x: -87.697, y: 41.807),
                (x: -87.693, y: 41.807), (x: -87.693, y: 41.803),
            ]],
        );
        let b = polygon![
            (x: -87.69, y: 41.80), (x: -87.68, y: 41.80),
            (x: -87.68, y: 41.81), (x: -87.69, y: 41.81),
        ];
        let c = polygon![
            (x: -87.685, y: 41.80), (x: -87.675, y: 41.80),
            (x: -87.675, y: 41.81), (x: -87.685, y: 41.81),
        ];
        let z1 = polygon![
            (x: -87.699, y: 41.801), (x: -87.698, y: 41.801),
            (x: -87.698, y: 41.802), (x: -87.699, y: 41.802),
        ];
        let z2 = polygon![
            (x: -87.689, y: 41.808), (x: -87.688, y: 41.808),
            (x: -87.688, y: 41.809), (x: -87.689, y: 41.809),
        ];
        Catalog {
            version: 1,
            beats: vec![
                fence("a", FenceKind::Beat, vec![a]),
                fence("b", FenceKind::Beat, vec![b]),
                fence("c", FenceKind::Beat, vec![c]),
            ],
            zones: vec![fence("z", FenceKind::Zone, vec![z1, z2])],
            repairs: Vec::new(),
        }
    }

    /// (beat id, zone id) for a point.
    fn check(index: &GeofenceIndex, lat: f64, lon: f64, expect: (Option<&str>, Option<&str>)) {
        let got = index.assign(lat, lon);
        let beat = got.beat.and_then(|b| index.beat(b)).map(|f| f.id.as_str());
        let zone = got.zone.and_then(|z| index.zone(z)).map(|f| f.id.as_str());
        assert_eq!((beat, zone), expect, "at ({lat}, {lon})");
    }

    #[test]
    fn hole_multipolygon_edges_overlap_and_outside() {
        let index = GeofenceIndex::build(&catalog(), Resolution::Ten).unwrap();
        check(&index, 41.8095, -87.6995, (Some("a"), None));
        // In the hole of "a".
        check(&index, 41.805, -87.695, (None, None));
        // On the hole's edge: the boundary of "a", so not in "a".
        check(&index, 41.805, -87.697, (None, None));
        // On the edge shared by "a" and "b": in neither.
        check(&index, 41.805, -87.69, (None, None));
        // On the outer corner of "a".
        check(&index, 41.80, -87.70, (None, None));
        check(&index, 41.805, -87.6875, (Some("b"), None));
        // "b" and "c" overlap: the lower index wins.
        check(&index, 41.805, -87.682, (Some("b"), None));
        check(&index, 41.805, -87.677, (Some("c"), None));
        // Both parts of the zone, and between them.
        check(&index, 41.8015, -87.6985, (Some("a"), Some("z")));
        check(&index, 41.8085, -87.6885, (Some("b"), Some("z")));
        check(&index, 41.8050, -87.6990, (Some("a"), None));
        // Outside everything, near and far.
        check(&index, 41.8101, -87.695, (None, None));
        check(&index, 40.0, -80.0, (None, None));
    }

    #[test]
    fn cells_at_index_and_store_resolution() {
        let index = GeofenceIndex::build(&catalog(), Resolution::Ten).unwrap();
        let plain = index.assign(41.8095, -87.6995);
        let fine = index.assign_with_cell(41.8095, -87.6995, Resolution::Eleven);
        let coarse = index.assign_with_cell(41.8095, -87.6995, Resolution::Nine);
        let cell = plain.cell.unwrap();
        assert_eq!(cell.resolution(), Resolution::Ten);
        assert_eq!(fine.cell.unwrap().parent(Resolution::Ten), Some(cell));
        assert_eq!(cell.parent(Resolution::Nine), coarse.cell);
        assert_eq!((fine.beat, fine.zone), (plain.beat, plain.zone));
        assert_eq!((coarse.beat, coarse.zone), (plain.beat, plain.zone));
        assert_eq!(index.assign(f64::NAN, -87.69), Assignment::default());
        assert_eq!(index.assign(41.8, f64::INFINITY), Assignment::default());
    }

    #[test]
    fn the_fast_path_answers_inside_the_box_with_h3o_cells() {
        use rand::{Rng, SeedableRng};
        let index = GeofenceIndex::build(&catalog(), Resolution::Ten).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (mut inside_box, mut fast) = (0, 0);
        for _ in 0..50_000 {
            let (lat, lon) = (
                rng.random_range(41.795..41.815),
                rng.random_range(-87.705..-87.67),
            );
            let ll = LatLng::new(lat, lon).unwrap();
            let in_box = (41.8005..41.8095).contains(&lat) && (-87.6995..-87.6755).contains(&lon);
            for res in [Resolution::Ten, Resolution::Eleven] {
                assert_eq!(
                    index.assign_with_cell(lat, lon, res).cell,
                    Some(ll.to_cell(res))
                );
                if in_box {
                    inside_box += 1;
                    fast += usize::from(index.plane_lookup(ll, res).is_some());
                }
            }
        }
        // Every point well inside the catalog's box is answered by the table.
        assert!(inside_box > 20_000);
        assert_eq!(fast, inside_box);
        // A resolution the table does not hold is left to h3o.
        let ll = LatLng::new(41.805, -87.695).unwrap();
        assert!(index.plane_lookup(ll, Resolution::Twelve).is_none());
        assert_eq!(
            index
                .assign_with_cell(41.805, -87.695, Resolution::Twelve)
                .cell,
            Some(ll.to_cell(Resolution::Twelve))
        );
    }

    #[test]
    fn interior_cells_skip_the_exact_test() {
        let index = GeofenceIndex::build(&catalog(), Resolution::Eleven).unwrap();
        let inside = index
            .cells
            .values()
            .filter(|e| matches!(e.beat, Slot::Inside(_)))
            .count();
        assert!(inside > 0 && inside < index.cell_count());
        // No cell of "a"'s hole or of the b/c overlap is answered without a test.
        for (cell, entry) in &index.cells {
            let ll = LatLng::from(*cell);
            let in_hole =
                (41.803..41.807).contains(&ll.lat()) && (-87.697..-87.693).contains(&ll.lng());
            let in_overlap = (-87.685..-87.68).contains(&ll.lng());
            if in_hole || in_overlap {
                assert!(!matches!(entry.beat, Slot::Inside(_)), "{cell}");
            }
        }
    }
}
