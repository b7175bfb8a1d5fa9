//! [`FacePlane`]: a point's H3 grid address on its icosahedron face, without h3o's digit loop.
//!
//! H3 finds a point's cell in two steps: project the point onto the plane of its nearest
//! icosahedron face (a gnomonic projection, then scaling to the resolution's hexagon grid) and
//! round it to the hexagon's integer `ijk` coordinates; then turn that `(face, ijk)` into the
//! cell's index, one aperture-7 step per resolution plus the base cell's rotation. The second
//! step is a pure function of `(face, ijk)`, so inside a known region its results can be looked
//! up instead of recomputed: [`super::GeofenceIndex`] keeps a table from `(face, ijk)` to cells
//! built from h3o's own answers.
//!
//! The first step here is computed with vectors rather than h3o's trigonometry: the tangent-plane
//! vector `v / (v·c) - c` has length `tan(r)` and the direction of the azimuth from the face
//! centre `c`, so two dot products with the face's (rotated) axes give the same `(x, y)` without
//! `acos`, `tan`, `atan2` or a second `sin_cos`. The two computations agree to within about 1e-10
//! of a hexagon; a point whose nearest face is not clear by [`FACE_MARGIN`], or which lies within
//! [`MARGIN`] of its hexagon's edge, is refused (`None`), and the caller falls back to h3o. So
//! whenever this module answers, its `(face, ijk)` is the one h3o computes for the point.
//!
//! The face centres and axis azimuths are the constants of the H3 grid (the icosahedron's
//! orientation), as published with H3 (Apache-2.0) and h3o (BSD-3-Clause).

use h3o::{LatLng, Resolution};

/// The smallest margin, in hexagon units, a decision may have; below it the point is refused.
/// The vector and trigonometric projections differ by about 1e-10 units.
const MARGIN: f64 = 1e-7;

/// The same margin for the squared distances that choose the nearest face.
const FACE_MARGIN: f64 = 1e-12;

/// Scale from the gnomonic plane to resolution 0 hexagon units (1 / 0.381966011250105).
const INV_RES0_U_GNOMONIC: f64 = 2.618_033_988_749_896;

/// Rotation between Class II and Class III axes, `asin(sqrt(3/28))`.
const AP7_ROT_RADS: f64 = 0.333_473_172_251_832_1;

/// `1 / sin(60°)`.
const RSIN60: f64 = 1.154_700_538_379_251_5;

/// `sin(60°)`.
const SQRT3_2: f64 = 0.866_025_403_784_438_6;

/// Bits per component in a packed key (each component must stay below 2^19).
const KEY_BITS: u32 = 19;

/// Icosahedron face centres on the unit sphere (x, y, z).
#[rustfmt::skip]
const FACE_CENTERS: [[f64; 3]; 20] = [
    [ 0.219_930_779_140_460_6,  0.658_369_178_027_499_6,  0.719_847_537_892_618_2],
    [-0.213_923_483_450_142_1,  0.147_817_182_955_070_3,  0.965_601_793_521_420_5],
    [ 0.109_262_527_878_479_7, -0.481_195_157_287_321,    0.869_777_512_128_725_3],
    [ 0.742_856_730_158_679_1, -0.359_394_167_827_802_8,  0.564_800_593_651_703_3],
    [ 0.811_253_470_914_096_9,  0.344_895_323_763_938_4,  0.472_138_773_641_393],
    [-0.105_549_814_961_392_1,  0.979_445_729_641_141_3,  0.171_887_461_000_936_5],
    [-0.807_540_757_997_009_2,  0.153_355_248_589_881_8,  0.569_526_199_488_268_8],
    [-0.284_614_806_978_790_7, -0.864_408_097_265_420_6,  0.414_479_255_247_353_9],
    [ 0.740_562_147_385_448_2, -0.667_329_956_456_552_4, -0.078_983_764_632_673_7],
    [ 0.851_230_398_647_429_3,  0.472_234_378_858_268_1, -0.228_913_738_868_780_8],
    [-0.740_562_147_385_448_1,  0.667_329_956_456_552_4,  0.078_983_764_632_673_7],
    [-0.851_230_398_647_429_2, -0.472_234_378_858_268_2,  0.228_913_738_868_780_8],
    [ 0.105_549_814_961_391_9, -0.979_445_729_641_141_3, -0.171_887_461_000_936_5],
    [ 0.807_540_757_997_009_2, -0.153_355_248_589_881_9, -0.569_526_199_488_268_8],
    [ 0.284_614_806_978_790_8,  0.864_408_097_265_420_4, -0.414_479_255_247_353_9],
    [-0.742_856_730_158_679_1,  0.359_394_167_827_802_7, -0.564_800_593_651_703_3],
    [-0.811_253_470_914_097,   -0.344_895_323_763_938_2, -0.472_138_773_641_393],
    [-0.219_930_779_140_460_7, -0.658_369_178_027_499_6, -0.719_847_537_892_618_2],
    [ 0.213_923_483_450_142,   -0.147_817_182_955_070_4, -0.965_601_793_521_420_5],
    [-0.109_262_527_878_479_6,  0.481_195_157_287_321,   -0.869_777_512_128_725_3],
];

/// Azimuth (radians) from each face centre to its vertex 0: the Class II `i` axis.
const FACE_AXES_AZ: [f64; 20] = [
    5.619_958_268_523_939_5,
    5.760_339_081_714_187_5,
    0.780_213_654_393_43,
    0.430_469_363_979_999_9,
    6.130_269_123_335_111,
    2.692_877_706_530_643,
    2.982_963_003_477_244,
    3.532_912_002_790_141,
    3.494_305_004_259_568,
    3.003_214_169_499_538_2,
    5.930_472_956_509_812,
    0.138_378_484_090_254_86,
    0.448_714_947_059_150_4,
    0.158_629_650_112_549_37,
    5.891_865_957_979_238,
    2.711_123_289_609_793,
    3.294_508_837_434_268,
    3.804_819_692_245_44,
    3.664_438_879_055_192_3,
    2.361_378_999_196_363,
];

/// One face's plane at one resolution: `x = p·u`, `y = p·w` for the tangent vector `p`.
#[derive(Debug, Clone, Copy)]
struct Axes {
    u: [f64; 3],
    w: [f64; 3],
}

/// A normalised `ijk` hexagon address on a face (the smallest component is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ijk {
    i: i32,
    j: i32,
    k: i32,
}

/// The projection of points onto H3 face planes at one resolution, and one aperture-7 step up.
#[derive(Debug, Clone)]
pub(crate) struct FacePlane {
    resolution: Resolution,
    axes: [Axes; 20],
}

impl FacePlane {
    /// The planes of all twenty faces at `resolution`.
    pub(crate) fn new(resolution: Resolution) -> Self {
        let class3 = u8::from(resolution) % 2 == 1;
        let scale = INV_RES0_U_GNOMONIC * 7_f64.sqrt().powi(i32::from(u8::from(resolution)));
        let axes = std::array::from_fn(|face| {
            let c = FACE_CENTERS[face];
            // h3o's tangent basis: north is the pole's direction in the tangent plane.
            let pole_dot = c[2];
            let mut north = [-pole_dot * c[0], -pole_dot * c[1], 1.0 - pole_dot * c[2]];
            let norm = dot(north, north).sqrt();
            north = north.map(|n| n / norm);
            let east = cross(north, c);
            let az = FACE_AXES_AZ[face] - if class3 { AP7_ROT_RADS } else { 0.0 };
            let (sin_a, cos_a) = az.sin_cos();
            let u = std::array::from_fn(|n| scale * (cos_a * north[n] + sin_a * east[n]));
            let w = std::array::from_fn(|n| scale * (sin_a * north[n] - cos_a * east[n]));
            Axes { u, w }
        });
        Self { resolution, axes }
    }

    /// The resolution of the plane.
    pub(crate) const fn resolution(&self) -> Resolution {
        self.resolution
    }

    /// The packed `(face, ijk)` key of `ll` at this resolution, or `None` when a decision is too
    /// close to call (then ask h3o).
    pub(crate) fn key(&self, ll: LatLng) -> Option<u64> {
        let (face, ijk) = self.locate(ll)?;
        pack(face, ijk)
    }

    /// The packed key of `ll`'s H3 parent one resolution up, and the raw aperture-7 digit (0..7)
    /// of the point's cell within it. `None` when too close to call.
    pub(crate) fn parent_key_and_digit(&self, ll: LatLng) -> Option<(u64, usize)> {
        let (face, ijk) = self.locate(ll)?;
        let (parent, digit) = up_step(ijk, u8::from(self.resolution) % 2 == 1)?;
        Some((pack(face, parent)?, digit))
    }

    fn locate(&self, ll: LatLng) -> Option<(usize, Ijk)> {
        let (sin_lat, cos_lat) = ll.lat_radians().sin_cos();
        let (sin_lng, cos_lng) = ll.lng_radians().sin_cos();
        let v = [cos_lng * cos_lat, sin_lng * cos_lat, sin_lat];
        // Nearest face centre, with the runner-up for the margin.
        let (mut best, mut best_d, mut second_d) = (0, f64::MAX, f64::MAX);
        for (face, c) in FACE_CENTERS.iter().enumerate() {
            let d = (v[0] - c[0]).powi(2) + (v[1] - c[1]).powi(2) + (v[2] - c[2]).powi(2);
            if d < best_d {
                second_d = best_d;
                best_d = d;
                best = face;
            } else if d < second_d {
                second_d = d;
            }
        }
        if second_d - best_d < FACE_MARGIN {
            return None;
        }
        let c = FACE_CENTERS[best];
        let cos_r = dot(v, c);
        let p = [
            v[0] / cos_r - c[0],
            v[1] / cos_r - c[1],
            v[2] / cos_r - c[2],
        ];
        let axes = &self.axes[best];
        hex_round(dot(p, axes.u), dot(p, axes.w)).map(|ijk| (best, ijk))
    }
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// H3's quantisation of a plane point to its hexagon (the DGGRID rule h3o uses), refusing a
/// point less than [`MARGIN`] from the edge of the hexagon it falls in: only there could h3o's
/// slightly different `(x, y)` land in another hexagon.
#[expect(
    clippy::cast_possible_truncation,
    reason = "bounded by the range check"
)]
fn hex_round(x: f64, y: f64) -> Option<Ijk> {
    const LIMIT: f64 = (1u32 << (KEY_BITS - 2)) as f64;
    let (a1, a2) = (x.abs(), y.abs());
    if !(a1 < LIMIT && a2 < LIMIT) {
        return None;
    }
    let x2 = a2 * RSIN60;
    let x1 = a1 + x2 / 2.0;
    let m1 = x1 as i32;
    let m2 = x2 as i32;
    let r1 = x1 - f64::from(m1);
    let r2 = x2 - f64::from(m2);
    let (mut i, mut j) = if r1 < 0.5 {
        if r1 < 1.0 / 3.0 {
            (m1, m2 + i32::from(r2 >= f64::midpoint(1.0, r1)))
        } else {
            (
                m1 + i32::from((1.0 - r1) <= r2 && r2 < (2.0 * r1)),
                m2 + i32::from(r2 >= (1.0 - r1)),
            )
        }
    } else if r1 < 2.0 / 3.0 {
        (
            m1 + i32::from((2.0 * r1 - 1.0) >= r2 || r2 >= (1.0 - r1)),
            m2 + i32::from(r2 >= (1.0 - r1)),
        )
    } else {
        (m1 + 1, m2 + i32::from(r2 >= (r1 / 2.0)))
    };
    if x < 0.0 {
        let offset = j % 2;
        let axis_i = i32::midpoint(j, offset);
        let diff = i - axis_i;
        i -= 2 * diff + offset;
    }
    if y < 0.0 {
        i -= (2 * j + 1) / 2;
        j = -j;
    }
    // The hexagon of centre (cx, cy) is where the offset's projections on the three directions
    // to neighbouring centres (0°, 60°, 120°) are all within half the spacing.
    let (cx, cy) = (f64::from(i) - 0.5 * f64::from(j), f64::from(j) * SQRT3_2);
    let (dx, dy) = (x - cx, y - cy);
    let reach = dx
        .abs()
        .max((0.5 * dx + SQRT3_2 * dy).abs())
        .max((-0.5 * dx + SQRT3_2 * dy).abs());
    (reach <= 0.5 - MARGIN).then(|| normalize(i, j, 0))
}

fn normalize(i: i32, j: i32, k: i32) -> Ijk {
    let min = i.min(j).min(k);
    Ijk {
        i: i - min,
        j: j - min,
        k: k - min,
    }
}

/// One aperture-7 step up, as H3 builds an index: the parent's `ijk` and the child's raw digit,
/// numbered `4i + 2j + k` of the unit offset. Class III resolutions rotate counter-clockwise.
#[expect(
    clippy::cast_possible_truncation,
    reason = "a seventh of a bounded integer"
)]
fn up_step(ijk: Ijk, class3: bool) -> Option<(Ijk, usize)> {
    let (i, j) = (ijk.i - ijk.k, ijk.j - ijk.k);
    let (pi, pj) = if class3 {
        (f64::from(3 * i - j) / 7.0, f64::from(i + 2 * j) / 7.0)
    } else {
        (f64::from(2 * i + j) / 7.0, f64::from(3 * j - i) / 7.0)
    };
    let parent = normalize(pi.round() as i32, pj.round() as i32, 0);
    // The parent's centre on the child grid.
    let [iv, jv, kv] = if class3 {
        [[3, 0, 1], [1, 3, 0], [0, 1, 3]]
    } else {
        [[3, 1, 0], [0, 3, 1], [1, 0, 3]]
    };
    let centre = normalize(
        iv[0] * parent.i + jv[0] * parent.j + kv[0] * parent.k,
        iv[1] * parent.i + jv[1] * parent.j + kv[1] * parent.k,
        iv[2] * parent.i + jv[2] * parent.j + kv[2] * parent.k,
    );
    let diff = normalize(ijk.i - centre.i, ijk.j - centre.j, ijk.k - centre.k);
    let unit = |c: i32| usize::try_from(c).ok().filter(|&c| c <= 1);
    Some((
        parent,
        4 * unit(diff.i)? + 2 * unit(diff.j)? + unit(diff.k)?,
    ))
}

/// `(face, ijk)` in one u64, or `None` if a component does not fit.
fn pack(face: usize, ijk: Ijk) -> Option<u64> {
    let part = |c: i32| u64::try_from(c).ok().filter(|&c| c < 1 << KEY_BITS);
    Some(
        (face as u64) << (3 * KEY_BITS)
            | part(ijk.i)? << (2 * KEY_BITS)
            | part(ijk.j)? << KEY_BITS
            | part(ijk.k)?,
    )
}

#[cfg(test)]
mod tests {
    use h3o::CellIndex;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// Within one face plane, a key names one cell: two points with the same key must have the
    /// same h3o cell, and points in different h3o cells must have different keys.
    fn keys_agree_with_h3o(points: &[(f64, f64)], res: Resolution) -> usize {
        let plane = FacePlane::new(res);
        let mut seen: std::collections::HashMap<u64, CellIndex> = Default::default();
        let mut by_cell: std::collections::HashMap<CellIndex, Vec<u64>> = Default::default();
        let mut refused = 0;
        for &(lat, lng) in points {
            let ll = LatLng::new(lat, lng).unwrap();
            let cell = ll.to_cell(res);
            let Some(key) = plane.key(ll) else {
                refused += 1;
                continue;
            };
            assert_eq!(
                *seen.entry(key).or_insert(cell),
                cell,
                "key {key:x} at {lat},{lng}"
            );
            let keys = by_cell.entry(cell).or_default();
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        // A cell has one key per face it is seen from (two only along a face edge).
        assert!(by_cell.values().all(|k| k.len() <= 2));
        refused
    }

    #[test]
    fn keys_match_h3o_cells_around_chicago_and_the_globe() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let local: Vec<(f64, f64)> = (0..200_000)
            .map(|_| {
                (
                    rng.random_range(41.6..42.1),
                    rng.random_range(-87.95..-87.5),
                )
            })
            .collect();
        for res in [Resolution::Nine, Resolution::Ten, Resolution::Eleven] {
            let refused = keys_agree_with_h3o(&local, res);
            assert!(refused < 10, "{refused} refused at {res}");
        }
        let globe: Vec<(f64, f64)> = (0..200_000)
            .map(|_| {
                (
                    rng.random_range(-89.9..89.9),
                    rng.random_range(-180.0..180.0),
                )
            })
            .collect();
        keys_agree_with_h3o(&globe, Resolution::Ten);
    }

    #[test]
    fn digit_and_parent_key_name_the_h3o_child_and_parent() {
        let child_plane = FacePlane::new(Resolution::Eleven);
        let parent_plane = FacePlane::new(Resolution::Ten);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut parents: std::collections::HashMap<u64, CellIndex> = Default::default();
        let mut children: std::collections::HashMap<(u64, usize), CellIndex> = Default::default();
        for _ in 0..200_000 {
            let ll = LatLng::new(
                rng.random_range(37.6..37.85),
                rng.random_range(-122.55..-122.3),
            )
            .unwrap();
            let child = ll.to_cell(Resolution::Eleven);
            let Some((pkey, digit)) = child_plane.parent_key_and_digit(ll) else {
                continue;
            };
            assert!(digit < 7);
            let parent = child.parent(Resolution::Ten).unwrap();
            assert_eq!(*parents.entry(pkey).or_insert(parent), parent);
            assert_eq!(*children.entry((pkey, digit)).or_insert(child), child);
            // The parent key is a key of the parent's grid: its centre projects to it.
            if let Some(centre_key) = parent_plane.key(LatLng::from(parent)) {
                assert_eq!(centre_key, pkey);
            }
        }
    }

    #[test]
    fn points_on_a_cell_edge_are_refused_or_agree() {
        let plane = FacePlane::new(Resolution::Eleven);
        let cell = LatLng::new(41.88, -87.63)
            .unwrap()
            .to_cell(Resolution::Eleven);
        let mut answered = std::collections::HashMap::new();
        for vertex in cell.boundary().iter() {
            for (dlat, dlng) in [(0.0, 0.0), (1e-13, 0.0), (0.0, -1e-13), (-1e-13, 1e-13)] {
                let ll = LatLng::new(vertex.lat() + dlat, vertex.lng() + dlng).unwrap();
                if let Some(key) = plane.key(ll) {
                    let h3 = ll.to_cell(Resolution::Eleven);
                    assert_eq!(*answered.entry(key).or_insert(h3), h3);
                }
            }
        }
    }
}
