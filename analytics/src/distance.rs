//! Distances between WGS-84 positions (degrees) on the sphere of the mean Earth radius: the
//! great-circle length through geo's [`Haversine`], and the equirectangular approximation the
//! on-duty walk and the compliance plan use for short segments, as numbers or as polars
//! expressions.

use std::f64::consts::PI;

use geo::{Distance, Haversine, Point};
use polars::prelude::{Expr, lit};

/// Mean Earth radius (GRS80 R1, the IUGG's recommendation), m: geo's [`Haversine`] sphere.
pub(crate) const EARTH_RADIUS_M: f64 = Haversine.radius();

/// Great-circle distance in metres.
///
/// geo's formula leaves the arcsine unclamped, so two nearly antipodal points can come out
/// NaN by rounding; the minimum with half the circumference gives those (and NaN input) the
/// half circumference, as a clamped formula does.
pub(crate) fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    Haversine
        .distance(Point::new(lon1, lat1), Point::new(lon2, lat2))
        .min(PI * EARTH_RADIUS_M)
}

/// Distance (m) between two WGS-84 positions in degrees, as expressions (`num` makes a
/// constant) or as numbers: equirectangular at the mean latitude, with the cosine as its Taylor
/// series to the x¹⁰ term (error below 2e-6 up to 70° of latitude).
fn equirectangular_m<T>(lat1: T, lon1: T, lat2: T, lon2: T, num: impl Fn(f64) -> T) -> T
where
    T: Clone + std::ops::Add<Output = T> + std::ops::Sub<Output = T> + std::ops::Mul<Output = T>,
{
    let rad = PI / 180.0;
    let x = (lat1.clone() + lat2.clone()) * num(0.5 * rad);
    let x2 = x.clone() * x;
    let mut cos = num(1.0) - x2.clone() * num(1.0 / 90.0);
    for k in [56.0, 30.0, 12.0, 2.0] {
        cos = num(1.0) - x2.clone() * num(1.0 / k) * cos;
    }
    let dy = (lat2 - lat1) * num(rad);
    let dx = (lon2 - lon1) * num(rad) * cos;
    dx.clone() * dx + dy.clone() * dy
}

/// [`distance_m`] as a polars expression over four columns or constants.
pub(crate) fn distance_m_expr(lat1: Expr, lon1: Expr, lat2: Expr, lon2: Expr) -> Expr {
    equirectangular_m(lat1, lon1, lat2, lon2, lit).sqrt() * lit(EARTH_RADIUS_M)
}

/// Distance (m) between two WGS-84 positions in degrees: equirectangular at the mean latitude
/// (within 0.01 % of the great-circle length for segments under 10 km).
pub(crate) fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    equirectangular_m(lat1, lon1, lat2, lon2, |x| x).sqrt() * EARTH_RADIUS_M
}
