//! The fence catalog: beats and zones read from GeoJSON, repaired or refused.
//!
//! Each GeoJSON feature becomes one [`Fence`]. Features that share an id (Chicago's beat "3100" is
//! three polygons) are merged into one fence. Geometry problems are fixed when the intent is clear
//! (unclosed rings, repeated points, ring orientation, self-intersections) and recorded as a
//! [`Repair`]; anything else refuses the whole file with every refused feature named.
//!
//! The repair lives here, beside the other jurisdiction files, so that ingest's geofence index
//! and the analytics jobs work on the same polygons: an invalid polygon that one side repaired
//! and the other read as drawn would put a fix in a beat for one and outside it for the other.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use geo::bool_ops::FillRule;
use geo::orient::Direction;
use geo::{
    BooleanOps, Coord, GeodesicArea, LineString, MultiPolygon, Orient, Polygon, Validation, Winding,
};
use geojson::{FeatureCollection, GeometryValue, JsonObject, PolygonType};
use serde_json::Value;

/// Whether a fence is a patrol beat (the partition of the jurisdiction) or a zone.
///
/// Beats are expected to tile the jurisdiction without overlaps; zones are free-form areas
/// (schools, events) that may overlap anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FenceKind {
    /// A patrol beat or district.
    Beat,
    /// Any other named area.
    Zone,
}

impl fmt::Display for FenceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Beat => "beat",
            Self::Zone => "zone",
        })
    }
}

/// One named area, with valid, counter-clockwise oriented geometry in WGS84 (x = lon, y = lat).
#[derive(Debug, Clone, PartialEq)]
pub struct Fence {
    /// Stable identifier from the source file (numbers are written without a fraction).
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// The station responsible for the area.
    pub station: String,
    /// Beat or zone.
    pub kind: FenceKind,
    /// Valid geometry (OGC rules), exteriors counter-clockwise and holes clockwise.
    pub geometry: MultiPolygon<f64>,
}

/// All fences of a jurisdiction. Indices into `beats` and `zones` are stable for its lifetime.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    /// The `version` key of `jurisdiction.toml`.
    pub version: u32,
    /// Patrol beats, in file order (merged features at the position of their first part).
    pub beats: Vec<Fence>,
    /// Zones, in file order.
    pub zones: Vec<Fence>,
    /// Every fence whose geometry was changed while loading, and why.
    pub repairs: Vec<Repair>,
}

/// Which GeoJSON properties hold a fence's id, name and station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyMap {
    /// Property holding the id (string or number).
    pub id: String,
    /// Property holding the display name.
    pub name: String,
    /// Property holding the station.
    pub station: String,
}

impl Default for PropertyMap {
    /// The fixture convention: `id`, `name`, `station`.
    fn default() -> Self {
        Self {
            id: "id".to_owned(),
            name: "name".to_owned(),
            station: "station".to_owned(),
        }
    }
}

/// A geometry problem found in a feature.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// A ring's last position differs from its first.
    UnclosedRing,
    /// Consecutive identical positions (count removed).
    RepeatedPoints(usize),
    /// A hole wound the same way as its exterior.
    WrongOrientation,
    /// A hole with fewer than 3 distinct points (dropped).
    DegenerateHole,
    /// An exterior ring with fewer than 3 distinct points.
    TooFewPoints,
    /// A position that is not two finite numbers.
    BadPosition,
    /// The geometry is not a Polygon or MultiPolygon (its GeoJSON type).
    UnsupportedGeometry(&'static str),
    /// The feature has no geometry.
    MissingGeometry,
    /// An OGC validity failure reported by geo (self-intersection, overlapping parts...).
    Invalid(String),
    /// Repairing left no area at all.
    EmptyAfterRepair,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnclosedRing => f.write_str("unclosed ring"),
            Self::RepeatedPoints(n) => write!(f, "{n} repeated point(s)"),
            Self::WrongOrientation => f.write_str("wrong ring orientation"),
            Self::DegenerateHole => f.write_str("hole with fewer than 3 distinct points"),
            Self::TooFewPoints => f.write_str("exterior ring with fewer than 3 distinct points"),
            Self::BadPosition => f.write_str("position is not two finite numbers"),
            Self::UnsupportedGeometry(t) => write!(f, "unsupported geometry type {t}"),
            Self::MissingGeometry => f.write_str("no geometry"),
            Self::Invalid(reason) => write!(f, "invalid: {reason}"),
            Self::EmptyAfterRepair => f.write_str("no area left after repair"),
        }
    }
}

/// A fence whose geometry was changed while loading.
#[derive(Debug, Clone, PartialEq)]
pub struct Repair {
    /// Beat or zone.
    pub kind: FenceKind,
    /// The fence id.
    pub fence: String,
    /// What was wrong.
    pub problems: Vec<Problem>,
    /// Geodesic area before repair, m² (meaningless for self-intersecting input, shown for scale).
    pub area_before_m2: f64,
    /// Geodesic area after repair, m².
    pub area_after_m2: f64,
}

/// A feature that could not be repaired.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The feature's id, or `#n` (0-based position in the file) when it has none.
    pub feature: String,
    /// Why it was refused.
    pub problem: Problem,
}

/// Errors from loading a catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file is not a GeoJSON FeatureCollection.
    #[error("{source_name} is not a GeoJSON FeatureCollection")]
    GeoJson {
        /// The file or label.
        source_name: String,
        /// The cause.
        #[source]
        source: Box<geojson::Error>,
    },
    /// A feature lacks a mapped property, or its value is not a string or number.
    #[error("{source_name}: feature #{feature} has no string or number property `{property}`")]
    MissingProperty {
        /// The file or label.
        source_name: String,
        /// 0-based feature position.
        feature: usize,
        /// The property name.
        property: String,
    },
    /// Some features could not be repaired.
    #[error("{source_name}: refused {}", list_refusals(refusals))]
    Refused {
        /// The file or label.
        source_name: String,
        /// Every refused feature.
        refusals: Vec<Refusal>,
    },
}

fn list_refusals(refusals: &[Refusal]) -> String {
    refusals
        .iter()
        .map(|r| format!("{} ({})", r.feature, r.problem))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fences read from one file, with the repairs made.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadedFences {
    /// The fences, merged by id, in file order.
    pub fences: Vec<Fence>,
    /// Repairs made to them.
    pub repairs: Vec<Repair>,
}

impl Catalog {
    /// Assembles a catalog from already parsed beats and zones.
    #[must_use]
    pub fn from_parts(version: u32, beats: LoadedFences, zones: LoadedFences) -> Self {
        let mut repairs = beats.repairs;
        repairs.extend(zones.repairs);
        Self {
            version,
            beats: beats.fences,
            zones: zones.fences,
            repairs,
        }
    }
}

/// Reads a fence file (`beats.geojson`, `zones.geojson`) with the default [`PropertyMap`].
///
/// # Errors
/// IO errors, and as [`parse_fences`].
pub fn load_fences(path: &Path, kind: FenceKind) -> Result<LoadedFences, CatalogError> {
    parse_fences(&read(path)?, &label(path), kind, &PropertyMap::default())
}

/// Reads the boundary of a jurisdiction (`county.geojson`): the union of all its features'
/// geometry, repaired like fences.
///
/// # Errors
/// IO errors, and as [`parse_fences`]; a file without any polygon is refused.
pub fn load_boundary(path: &Path) -> Result<MultiPolygon<f64>, CatalogError> {
    let text = read(path)?;
    let source_name = label(path);
    let collection: FeatureCollection = parse_collection(&text, &source_name)?;
    let mut polygons = Vec::new();
    let mut refusals = Vec::new();
    for (n, feature) in collection.features.iter().enumerate() {
        match feature_polygons(feature.geometry.as_ref().map(|g| &g.value)) {
            Ok(mut parts) => polygons.append(&mut parts.polygons),
            Err(problem) => refusals.push(Refusal {
                feature: format!("#{n}"),
                problem,
            }),
        }
    }
    if !refusals.is_empty() {
        return Err(CatalogError::Refused {
            source_name,
            refusals,
        });
    }
    if polygons.is_empty() {
        return Err(CatalogError::Refused {
            source_name,
            refusals: vec![Refusal {
                feature: "boundary".to_owned(),
                problem: Problem::MissingGeometry,
            }],
        });
    }
    let merged = MultiPolygon::new(polygons);
    match make_valid(&merged) {
        Ok((geometry, _)) => Ok(geometry),
        Err(problem) => Err(CatalogError::Refused {
            source_name,
            refusals: vec![Refusal {
                feature: "boundary".to_owned(),
                problem,
            }],
        }),
    }
}

/// Parses a GeoJSON FeatureCollection of Polygon/MultiPolygon features into fences of `kind`.
///
/// `source_name` labels errors (usually the file name). Ids may be strings or numbers; features
/// with the same id are merged into one fence, keeping the first feature's name and station.
///
/// # Errors
/// [`CatalogError::GeoJson`] for malformed input, [`CatalogError::MissingProperty`] when a mapped
/// property is absent, [`CatalogError::Refused`] listing every feature that could not be repaired.
pub fn parse_fences(
    text: &str,
    source_name: &str,
    kind: FenceKind,
    map: &PropertyMap,
) -> Result<LoadedFences, CatalogError> {
    let collection = parse_collection(text, source_name)?;
    // id -> (position in `drafts`)
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut drafts: Vec<(Fence, Vec<Problem>)> = Vec::new();
    let mut refusals = Vec::new();
    for (n, feature) in collection.features.iter().enumerate() {
        let props = feature.properties.as_ref();
        let prop = |property: &str| {
            props
                .and_then(|p| property_text(p, property))
                .ok_or_else(|| CatalogError::MissingProperty {
                    source_name: source_name.to_owned(),
                    feature: n,
                    property: property.to_owned(),
                })
        };
        let id = prop(&map.id)?;
        let name = prop(&map.name)?;
        let station = prop(&map.station)?;
        let parts = match feature_polygons(feature.geometry.as_ref().map(|g| &g.value)) {
            Ok(parts) => parts,
            Err(problem) => {
                refusals.push(Refusal {
                    feature: id,
                    problem,
                });
                continue;
            }
        };
        if let Some(&at) = by_id.get(&id) {
            let (fence, problems) = &mut drafts[at];
            fence.geometry.0.extend(parts.polygons);
            problems.extend(parts.problems);
        } else {
            by_id.insert(id.clone(), drafts.len());
            let fence = Fence {
                id,
                name,
                station,
                kind,
                geometry: MultiPolygon::new(parts.polygons),
            };
            drafts.push((fence, parts.problems));
        }
    }

    let mut fences = Vec::with_capacity(drafts.len());
    let mut repairs = Vec::new();
    for (mut fence, mut problems) in drafts {
        let area_before_m2 = area_m2(&fence.geometry);
        match make_valid(&fence.geometry) {
            Ok((geometry, mut found)) => {
                problems.append(&mut found);
                if !problems.is_empty() {
                    repairs.push(Repair {
                        kind,
                        fence: fence.id.clone(),
                        problems,
                        area_before_m2,
                        area_after_m2: area_m2(&geometry),
                    });
                }
                fence.geometry = geometry;
                fences.push(fence);
            }
            Err(problem) => refusals.push(Refusal {
                feature: fence.id,
                problem,
            }),
        }
    }
    if refusals.is_empty() {
        Ok(LoadedFences { fences, repairs })
    } else {
        Err(CatalogError::Refused {
            source_name: source_name.to_owned(),
            refusals,
        })
    }
}

fn read(path: &Path) -> Result<String, CatalogError> {
    std::fs::read_to_string(path).map_err(|source| CatalogError::Io {
        path: path.to_owned(),
        source,
    })
}

fn label(path: &Path) -> String {
    path.display().to_string()
}

fn parse_collection(text: &str, source_name: &str) -> Result<FeatureCollection, CatalogError> {
    text.parse().map_err(|source| CatalogError::GeoJson {
        source_name: source_name.to_owned(),
        source: Box::new(source),
    })
}

/// A string property, or a number written without a spurious fraction (`1.0` becomes `1`).
fn property_text(props: &JsonObject, key: &str) -> Option<String> {
    match props.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            // Below 2^53 every integer is exact in f64, so the cast is lossless.
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
                (f as i64).to_string()
            }
            _ => n.to_string(),
        }),
        _ => None,
    }
}

/// Polygons read from one feature, after ring-level fixes.
struct FeatureParts {
    polygons: Vec<Polygon<f64>>,
    problems: Vec<Problem>,
}

fn feature_polygons(geometry: Option<&GeometryValue>) -> Result<FeatureParts, Problem> {
    let rings_list: Vec<&PolygonType> = match geometry {
        None => return Err(Problem::MissingGeometry),
        Some(GeometryValue::Polygon { coordinates }) => vec![coordinates],
        Some(GeometryValue::MultiPolygon { coordinates }) => coordinates.iter().collect(),
        Some(other) => return Err(Problem::UnsupportedGeometry(other.type_name())),
    };
    let mut problems = Vec::new();
    let mut polygons = Vec::with_capacity(rings_list.len());
    for rings in rings_list {
        let mut rings = rings.iter();
        let Some(exterior) = rings.next() else {
            return Err(Problem::TooFewPoints);
        };
        let exterior = clean_ring(exterior, &mut problems)?.ok_or(Problem::TooFewPoints)?;
        let mut holes = Vec::new();
        for hole in rings {
            match clean_ring(hole, &mut problems)? {
                Some(ring) => holes.push(ring),
                None => problems.push(Problem::DegenerateHole),
            }
        }
        // Either winding is fine as long as holes turn the other way from their exterior
        // (pre-RFC 7946 files are clockwise); both are normalised to RFC 7946 below.
        if holes.iter().any(|h| h.is_ccw() == exterior.is_ccw()) {
            problems.push(Problem::WrongOrientation);
        }
        polygons.push(Polygon::new(exterior, holes).orient(Direction::Default));
    }
    Ok(FeatureParts { polygons, problems })
}

/// Drops repeated points and closes the ring; `None` if fewer than 3 distinct points remain.
fn clean_ring(
    positions: &[geojson::Position],
    problems: &mut Vec<Problem>,
) -> Result<Option<LineString<f64>>, Problem> {
    let mut coords: Vec<Coord<f64>> = Vec::with_capacity(positions.len() + 1);
    let mut repeated = 0;
    for position in positions {
        let &[x, y, ..] = position.as_slice() else {
            return Err(Problem::BadPosition);
        };
        if !x.is_finite() || !y.is_finite() {
            return Err(Problem::BadPosition);
        }
        let c = Coord { x, y };
        if coords.last() == Some(&c) {
            repeated += 1;
        } else {
            coords.push(c);
        }
    }
    match (coords.first(), coords.last()) {
        (Some(first), Some(last)) if first != last => problems.push(Problem::UnclosedRing),
        // Closed: keep the closing point out while counting distinct points.
        (Some(_), Some(_)) if coords.len() > 1 => {
            coords.pop();
        }
        _ => {}
    }
    if repeated > 0 {
        problems.push(Problem::RepeatedPoints(repeated));
    }
    if coords.len() < 3 {
        return Ok(None);
    }
    coords.push(coords[0]);
    Ok(Some(LineString::new(coords)))
}

/// Geodesic area in m², whatever the winding. (geo's unsigned geodesic area reads a clockwise
/// ring as the rest of the globe, and boolean-op output can hold clockwise slivers.)
pub fn area_m2(geometry: &MultiPolygon<f64>) -> f64 {
    geometry
        .iter()
        .map(|p| p.geodesic_area_signed().abs())
        .sum()
}

/// Returns valid, oriented geometry and the validity problems found, or why it can't be repaired.
///
/// Invalid geometry is rebuilt with a non-zero-winding union (i_overlay through geo's
/// `BooleanOps`): with exteriors counter-clockwise and holes clockwise this keeps both lobes of a
/// bow-tie, merges overlapping parts and still subtracts holes.
fn make_valid(geometry: &MultiPolygon<f64>) -> Result<(MultiPolygon<f64>, Vec<Problem>), Problem> {
    let errors = geometry.validation_errors();
    if errors.is_empty() {
        return Ok((geometry.clone(), Vec::new()));
    }
    let mut problems: Vec<Problem> = errors
        .iter()
        .map(|e| Problem::Invalid(e.to_string()))
        .collect();
    problems.dedup();
    let repaired = geometry
        .union_with_fill_rule(&MultiPolygon::new(Vec::new()), FillRule::NonZero)
        .orient(Direction::Default);
    if repaired.0.is_empty() {
        return Err(Problem::EmptyAfterRepair);
    }
    if let Some(e) = repaired.validation_errors().first() {
        return Err(Problem::Invalid(e.to_string()));
    }
    Ok((repaired, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collection(features: &[&str]) -> String {
        format!(
            r#"{{"type":"FeatureCollection","features":[{}]}}"#,
            features.join(",")
        )
    }

    fn feature(id: &str, geometry: &str) -> String {
        format!(
            r#"{{"type":"Feature","properties":{{"id":{id},"name":"Name","station":"S"}},"geometry":{geometry}}}"#
        )
    }

    fn polygon(rings: &str) -> String {
        format!(r#"{{"type":"Polygon","coordinates":{rings}}}"#)
    }

    const SQUARE: &str = "[[[0,0],[1,0],[1,1],[0,1],[0,0]]]";

    fn parse(text: &str) -> Result<LoadedFences, CatalogError> {
        parse_fences(text, "test", FenceKind::Beat, &PropertyMap::default())
    }

    #[test]
    fn valid_feature_needs_no_repair() {
        let loaded = parse(&collection(&[&feature("\"a\"", &polygon(SQUARE))])).unwrap();
        assert!(loaded.repairs.is_empty());
        assert_eq!(loaded.fences[0].id, "a");
        assert_eq!(loaded.fences[0].name, "Name");
    }

    #[test]
    fn ring_problems_are_repaired() {
        // Clockwise, unclosed, with a repeated point; the hole is clockwise too.
        let rings =
            "[[[0,0],[0,1],[0,1],[1,1],[1,0]],[[0.2,0.2],[0.2,0.4],[0.4,0.4],[0.4,0.2],[0.2,0.2]]]";
        let loaded = parse(&collection(&[&feature("1", &polygon(rings))])).unwrap();
        let repair = &loaded.repairs[0];
        assert_eq!(
            repair.problems,
            [
                Problem::UnclosedRing,
                Problem::RepeatedPoints(1),
                Problem::WrongOrientation
            ]
        );
        let geometry = &loaded.fences[0].geometry;
        assert!(geometry.is_valid());
        assert!(geometry.0[0].exterior().is_ccw());
        assert!(geometry.0[0].interiors()[0].is_cw());
        assert!((repair.area_after_m2 - repair.area_before_m2).abs() < 1.0);
    }

    #[test]
    fn bow_tie_is_split_and_degenerate_hole_dropped() {
        let rings = "[[[0,0],[1,1],[1,0],[0,1],[0,0]],[[0.1,0.5],[0.2,0.5],[0.1,0.5]]]";
        let loaded = parse(&collection(&[&feature("2", &polygon(rings))])).unwrap();
        let repair = &loaded.repairs[0];
        assert!(repair.problems.contains(&Problem::DegenerateHole));
        assert!(
            repair
                .problems
                .iter()
                .any(|p| matches!(p, Problem::Invalid(r) if r.contains("self-intersection")))
        );
        let geometry = &loaded.fences[0].geometry;
        assert_eq!(geometry.0.len(), 2);
        assert!(geometry.is_valid());
    }

    #[test]
    fn features_with_one_id_merge_and_numbers_lose_fractions() {
        let other = polygon("[[[2,0],[3,0],[3,1],[2,1],[2,0]]]");
        let text = collection(&[&feature("7", &polygon(SQUARE)), &feature("7.0", &other)]);
        let loaded = parse(&text).unwrap();
        assert_eq!(loaded.fences.len(), 1);
        assert_eq!(loaded.fences[0].id, "7");
        assert_eq!(loaded.fences[0].geometry.0.len(), 2);
    }

    #[test]
    fn overlapping_parts_of_one_fence_are_unioned() {
        let other = polygon("[[[0.5,0],[1.5,0],[1.5,1],[0.5,1],[0.5,0]]]");
        let text = collection(&[&feature("8", &polygon(SQUARE)), &feature("8", &other)]);
        let loaded = parse(&text).unwrap();
        assert_eq!(loaded.fences[0].geometry.0.len(), 1);
        assert_eq!(loaded.repairs.len(), 1);
    }

    #[test]
    fn unrepairable_features_are_refused_by_name() {
        let line = r#"{"type":"LineString","coordinates":[[0,0],[1,1]]}"#;
        let text = collection(&[
            &feature("\"ok\"", &polygon(SQUARE)),
            &feature("\"flat\"", &polygon("[[[0,0],[1,1],[0,0]]]")),
            &feature("\"line\"", line),
        ]);
        let Err(CatalogError::Refused { refusals, .. }) = parse(&text) else {
            panic!("expected a refusal");
        };
        assert_eq!(
            refusals,
            [
                Refusal {
                    feature: "flat".to_owned(),
                    problem: Problem::TooFewPoints
                },
                Refusal {
                    feature: "line".to_owned(),
                    problem: Problem::UnsupportedGeometry("LineString")
                }
            ]
        );
    }

    #[test]
    fn property_map_and_missing_properties() {
        let text = r#"{"type":"FeatureCollection","features":[{"type":"Feature",
            "properties":{"DISTRICT":"PARK"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}]}"#;
        assert!(matches!(
            parse(text),
            Err(CatalogError::MissingProperty { feature: 0, ref property, .. }) if property == "id"
        ));
        let map = PropertyMap {
            id: "DISTRICT".to_owned(),
            name: "DISTRICT".to_owned(),
            station: "DISTRICT".to_owned(),
        };
        let loaded = parse_fences(text, "sf", FenceKind::Zone, &map).unwrap();
        assert_eq!(loaded.fences[0].station, "PARK");
        assert_eq!(loaded.fences[0].kind, FenceKind::Zone);
    }

    #[test]
    fn boundary_is_repaired_and_must_hold_a_polygon() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("county.geojson");
        let bow_tie = polygon("[[[0,0],[1,1],[1,0],[0,1],[0,0]]]");
        std::fs::write(&path, collection(&[&feature("1", &bow_tie)])).unwrap();
        let outline = load_boundary(&path).unwrap();
        assert!(outline.is_valid());
        assert_eq!(outline.0.len(), 2);
        std::fs::write(&path, collection(&[])).unwrap();
        assert!(matches!(
            load_boundary(&path),
            Err(CatalogError::Refused { .. })
        ));
        assert!(matches!(
            load_boundary(&dir.path().join("none.geojson")),
            Err(CatalogError::Io { .. })
        ));
    }
}
