//! Catalog checks behind `patrol fences check`: repairs, beat overlaps and coverage gaps.
//!
//! Areas are geodesic (WGS84 ellipsoid), in m². Overlaps and gap pieces smaller than
//! [`SLIVER_TOLERANCE_M2`] are digitising noise along shared edges and are counted, not listed.

use std::fmt;

use geo::{BooleanOps, BoundingRect, Intersects, MultiPolygon, Polygon, unary_union};

use model::fences::{Catalog, Repair, area_m2};

/// Overlaps and gap pieces below this area (m²) are ignored as slivers.
pub const SLIVER_TOLERANCE_M2: f64 = 1.0;

/// Two beats that share area.
#[derive(Debug, Clone, PartialEq)]
pub struct Overlap {
    /// Id of the beat that comes first in the catalog.
    pub a: String,
    /// Id of the other beat.
    pub b: String,
    /// Shared area, m².
    pub area_m2: f64,
}

/// What the gaps were measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapScope {
    /// The jurisdiction boundary (e.g. `county.geojson`): any of it not covered by a beat.
    Boundary,
    /// No boundary given: the holes enclosed by the union of all beats.
    BeatUnion,
}

/// Area not covered by any beat.
#[derive(Debug, Clone, PartialEq)]
pub struct Gaps {
    /// What the gaps were measured against.
    pub scope: GapScope,
    /// Number of uncovered pieces at or above the sliver tolerance.
    pub pieces: usize,
    /// Their total area, m².
    pub area_m2: f64,
}

/// The result of [`check_catalog`]; `Display` renders it as a readable report.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    /// Catalog version.
    pub version: u32,
    /// Number of beats.
    pub beats: usize,
    /// Number of zones.
    pub zones: usize,
    /// Fences repaired while loading.
    pub repairs: Vec<Repair>,
    /// Beat pairs overlapping by at least [`SLIVER_TOLERANCE_M2`].
    pub overlaps: Vec<Overlap>,
    /// Beat pairs overlapping by less than the tolerance.
    pub sliver_overlaps: usize,
    /// Uncovered area.
    pub gaps: Gaps,
}

impl CheckReport {
    /// True when nothing needed repair and there are no overlaps or gaps above the tolerance.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.repairs.is_empty() && self.overlaps.is_empty() && self.gaps.pieces == 0
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Catalog version {}: {} beats, {} zones",
            self.version, self.beats, self.zones
        )?;
        writeln!(f, "Repairs: {}", self.repairs.len())?;
        for r in &self.repairs {
            let problems: Vec<String> = r.problems.iter().map(ToString::to_string).collect();
            writeln!(
                f,
                "  {} {}: {} (area {:.0} m² -> {:.0} m²)",
                r.kind,
                r.fence,
                problems.join("; "),
                r.area_before_m2,
                r.area_after_m2
            )?;
        }
        writeln!(
            f,
            "Beat overlaps: {} (plus {} slivers under {} m²)",
            self.overlaps.len(),
            self.sliver_overlaps,
            SLIVER_TOLERANCE_M2
        )?;
        for o in &self.overlaps {
            writeln!(f, "  {} / {}: {:.1} m²", o.a, o.b, o.area_m2)?;
        }
        let scope = match self.gaps.scope {
            GapScope::Boundary => "jurisdiction boundary",
            GapScope::BeatUnion => "holes inside the beats (no boundary given)",
        };
        writeln!(
            f,
            "Gaps against {scope}: {} piece(s), {:.1} m²",
            self.gaps.pieces, self.gaps.area_m2
        )
    }
}

/// Checks a loaded catalog: lists its repairs, beat overlaps and the area of `boundary` (or,
/// without one, of the holes in the beats' union) that no beat covers.
#[must_use]
pub fn check_catalog(catalog: &Catalog, boundary: Option<&MultiPolygon<f64>>) -> CheckReport {
    let beats = &catalog.beats;
    let bboxes: Vec<_> = beats.iter().map(|b| b.geometry.bounding_rect()).collect();
    let mut overlaps = Vec::new();
    let mut sliver_overlaps = 0;
    for (i, a) in beats.iter().enumerate() {
        for (j, b) in beats.iter().enumerate().skip(i + 1) {
            let (Some(ra), Some(rb)) = (bboxes[i], bboxes[j]) else {
                continue;
            };
            if !ra.intersects(&rb) {
                continue;
            }
            let area_m2 = area_m2(&a.geometry.intersection(&b.geometry));
            if area_m2 >= SLIVER_TOLERANCE_M2 {
                overlaps.push(Overlap {
                    a: a.id.clone(),
                    b: b.id.clone(),
                    area_m2,
                });
            } else if area_m2 > 0.0 {
                sliver_overlaps += 1;
            }
        }
    }

    let union = unary_union(beats.iter().map(|b| &b.geometry));
    let (scope, uncovered): (GapScope, Vec<Polygon<f64>>) = match boundary {
        Some(boundary) => (GapScope::Boundary, boundary.difference(&union).0),
        None => (
            GapScope::BeatUnion,
            union
                .iter()
                .flat_map(|p| p.interiors().iter())
                .map(|ring| Polygon::new(ring.clone(), Vec::new()))
                .collect(),
        ),
    };
    let areas: Vec<f64> = uncovered
        .iter()
        .map(|p| area_m2(&MultiPolygon::new(vec![p.clone()])))
        .filter(|&a| a >= SLIVER_TOLERANCE_M2)
        .collect();
    CheckReport {
        version: catalog.version,
        beats: beats.len(),
        zones: catalog.zones.len(),
        repairs: catalog.repairs.clone(),
        overlaps,
        sliver_overlaps,
        gaps: Gaps {
            scope,
            pieces: areas.len(),
            area_m2: areas.iter().fold(0.0, |sum, a| sum + a),
        },
    }
}

#[cfg(test)]
mod tests {
    use geo::polygon;

    use super::*;
    use model::fences::{Fence, FenceKind};

    fn beat(id: &str, x0: f64, x1: f64) -> Fence {
        Fence {
            id: id.to_owned(),
            name: id.to_owned(),
            station: "1".to_owned(),
            kind: FenceKind::Beat,
            geometry: MultiPolygon::new(vec![polygon![
                (x: x0, y: 41.80), (x: x1, y: 41.80), (x: x1, y: 41.81), (x: x0, y: 41.81),
            ]]),
        }
    }

    #[test]
    fn overlaps_and_gaps_are_measured() {
        // a and b overlap by 0.001° of longitude; c leaves a 0.001° gap after b.
        let catalog = Catalog {
            version: 2,
            beats: vec![
                beat("a", -87.70, -87.69),
                beat("b", -87.691, -87.68),
                beat("c", -87.679, -87.67),
            ],
            zones: Vec::new(),
            repairs: Vec::new(),
        };
        let boundary = MultiPolygon::new(vec![polygon![
            (x: -87.70, y: 41.80), (x: -87.67, y: 41.80), (x: -87.67, y: 41.81), (x: -87.70, y: 41.81),
        ]]);
        let report = check_catalog(&catalog, Some(&boundary));
        // 0.001° × 0.01° at 41.8° N is about 83 m × 1112 m.
        let strip = 83.0 * 1112.0;
        assert_eq!(report.overlaps.len(), 1);
        assert_eq!(
            (report.overlaps[0].a.as_str(), report.overlaps[0].b.as_str()),
            ("a", "b")
        );
        assert!(
            (report.overlaps[0].area_m2 / strip - 1.0).abs() < 0.01,
            "{report}"
        );
        assert_eq!(report.gaps.pieces, 1);
        assert!((report.gaps.area_m2 / strip - 1.0).abs() < 0.01, "{report}");
        assert!(!report.is_clean());
        let text = report.to_string();
        assert!(text.contains("a / b") && text.contains("Gaps against jurisdiction boundary: 1"));

        // Without a boundary the gap between b and c is not enclosed, so it is not reported.
        let report = check_catalog(&catalog, None);
        assert_eq!(report.gaps.scope, GapScope::BeatUnion);
        assert_eq!(report.gaps.pieces, 0);
    }
}
