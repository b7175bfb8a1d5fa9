//! The report's figures, drawn as SVG: hexagon heatmaps over the jurisdiction's outline and
//! beats, failing-area maps, and the hour-of-week grid of dynamic coverage.
//!
//! Maps use an equirectangular projection scaled by the cosine of the view's middle latitude,
//! which is true to within a fraction of a percent over a county. Every map carries context
//! from the jurisdiction's road file ([`Basemap`]): roads by class under the data, beat, place
//! and major road names over it (a label that would overlap another is left out), a scale bar
//! and a north arrow. Values are binned into classes by quantile (the usual choice for crime
//! maps, where a few cells dwarf the rest), or where ties leave quantiles fewer than three
//! classes by quantiles of the distinct values ([`classes`]); every map of one layer shares
//! its classes, so windows compare at a glance.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use geo::{BoundingRect, InteriorPoint, MultiPolygon, Point, Rect, coord};
use h3o::CellIndex;

use super::basemap::{Basemap, PlaceKind, RoadClass};

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Sequential palettes, light to dark, one per layer.
pub(crate) const REDS: [&str; 5] = ["#fcbba1", "#fc9272", "#fb6a4a", "#de2d26", "#a50f15"];
/// Patrol presence.
pub(crate) const BLUES: [&str; 5] = ["#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c"];
/// Gaps.
pub(crate) const PURPLES: [&str; 5] = ["#dadaeb", "#bcbddc", "#9e9ac8", "#756bb1", "#54278f"];

/// Opacity of the heat cells (and their legend boxes), so the roads under them show.
const CELL_OPACITY: f64 = 0.8;

/// Metres on the ground per degree of latitude (mean Earth radius, 6,371,008.8 m).
const METRES_PER_DEGREE: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;

/// Maps finer than this many metres a pixel (a town, the busiest beats) also draw minor
/// roads, hamlets and points of interest; coarser ones would be cluttered by them.
const DETAIL_METRES_PER_PX: f64 = 60.0;

/// A map frame: the geographic extent and its pixel size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View {
    min_lon: f64,
    max_lat: f64,
    /// Pixels per degree of longitude (latitude is this over the cosine).
    scale: f64,
    kx: f64,
    pub(crate) width: f64,
    pub(crate) height: f64,
}

impl View {
    /// A view of `extent` `width` pixels wide, with a 3 % margin.
    pub(crate) fn new(extent: Rect<f64>, width: f64) -> Self {
        let (w, h) = (extent.width(), extent.height());
        let pad = 0.03 * w.max(h);
        let (min_lon, max_lon) = (extent.min().x - pad, extent.max().x + pad);
        let (min_lat, max_lat) = (extent.min().y - pad, extent.max().y + pad);
        let kx = ((min_lat + max_lat) / 2.0).to_radians().cos();
        let scale = width / ((max_lon - min_lon) * kx).max(1e-9);
        let height = (max_lat - min_lat) * scale;
        Self {
            min_lon,
            max_lat,
            scale,
            kx,
            width,
            height,
        }
    }

    /// Pixel coordinates of a longitude and latitude.
    pub(crate) fn xy(&self, lon: f64, lat: f64) -> (f64, f64) {
        (
            (lon - self.min_lon) * self.kx * self.scale,
            (self.max_lat - lat) * self.scale,
        )
    }

    /// Metres on the ground per pixel, across and down (exact at the middle latitude).
    pub(crate) fn metres_per_px(&self) -> f64 {
        METRES_PER_DEGREE / self.scale
    }

    /// Whether a point falls inside the frame.
    fn shows(&self, lon: f64, lat: f64) -> bool {
        let (x, y) = self.xy(lon, lat);
        (0.0..=self.width).contains(&x) && (0.0..=self.height).contains(&y)
    }

    /// Whether the box around `line` meets the frame.
    fn meets(&self, line: &[(f64, f64)]) -> bool {
        let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for (lon, lat) in line {
            let (x, y) = self.xy(*lon, *lat);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
        x1 >= 0.0 && x0 <= self.width && y1 >= 0.0 && y0 <= self.height
    }

    /// An SVG path `d` for closed rings of (lon, lat).
    fn path<'a>(&self, rings: impl IntoIterator<Item = &'a [(f64, f64)]>) -> String {
        let mut d = String::new();
        for ring in rings {
            self.line(&mut d, ring);
            d.push('Z');
        }
        d
    }

    /// Appends the SVG path commands of an open line of (lon, lat) to `d`.
    fn line(&self, d: &mut String, line: &[(f64, f64)]) {
        for (i, (lon, lat)) in line.iter().enumerate() {
            let (x, y) = self.xy(*lon, *lat);
            let _ = write!(d, "{}{x:.1},{y:.1}", if i == 0 { "M" } else { "L" });
        }
    }

    fn multipolygon(&self, mp: &MultiPolygon<f64>) -> String {
        let rings: Vec<Vec<(f64, f64)>> = mp
            .iter()
            .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
            .map(|r| r.coords().map(|c| (c.x, c.y)).collect())
            .collect();
        self.path(rings.iter().map(Vec::as_slice))
    }
}

/// The smallest rectangle around `shapes`, if any has a point.
pub(crate) fn extent<'a>(
    shapes: impl IntoIterator<Item = &'a MultiPolygon<f64>>,
) -> Option<Rect<f64>> {
    shapes
        .into_iter()
        .filter_map(BoundingRect::bounding_rect)
        .reduce(|a, b| {
            Rect::new(
                coord! { x: a.min().x.min(b.min().x), y: a.min().y.min(b.min().y) },
                coord! { x: a.max().x.max(b.max().x), y: a.max().y.max(b.max().y) },
            )
        })
}

/// How a layer's values were split into classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// Quantiles: about as many cells in each class.
    Quantile,
    /// Quantiles of the distinct values (each value counted once), used when ties leave
    /// quantiles fewer than three classes.
    DistinctQuantile,
    /// Three equal steps from the smallest value to the largest, used when there are only
    /// two distinct values.
    EqualInterval,
}

impl Scheme {
    /// What the legend says about the classes.
    fn describe(self) -> &'static str {
        match self {
            Self::Quantile => "quantile classes: about as many cells in each",
            Self::DistinctQuantile => "classes by rank of the distinct values (many ties)",
            Self::EqualInterval => "equal-interval classes: only two distinct values",
        }
    }
}

/// A layer's classes: the upper bound of each class (a value belongs to the first class whose
/// bound it does not exceed) and how they were chosen.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Classes {
    pub(crate) breaks: Vec<f64>,
    pub(crate) scheme: Scheme,
}

/// Class breaks: the upper bounds of up to five quantile classes of the positive `values`.
fn quantile_breaks(sorted: &[f64]) -> Vec<f64> {
    let mut breaks: Vec<f64> = (1..=5)
        .filter_map(|k| {
            sorted
                .get((sorted.len() * k / 5).saturating_sub(1))
                .copied()
        })
        .collect();
    breaks.dedup();
    breaks
}

/// The classes of the positive `values`: five quantiles where they give at least three
/// distinct classes; else, where ties collapse them, quantiles of the distinct values; else
/// (two distinct values) three equal intervals between them. A layer with a single value has
/// one class.
pub(crate) fn classes(values: impl IntoIterator<Item = f64>) -> Classes {
    let mut v: Vec<f64> = values.into_iter().filter(|x| *x > 0.0).collect();
    v.sort_by(f64::total_cmp);
    let breaks = quantile_breaks(&v);
    let mut distinct = v.clone();
    distinct.dedup();
    match (distinct.as_slice(), breaks.len()) {
        (_, 3..) | ([] | [_], _) => Classes {
            breaks,
            scheme: Scheme::Quantile,
        },
        (&[lo, hi], _) => Classes {
            breaks: vec![lo + (hi - lo) / 3.0, lo + (hi - lo) * 2.0 / 3.0, hi],
            scheme: Scheme::EqualInterval,
        },
        (_, _) => Classes {
            breaks: quantile_breaks(&distinct),
            scheme: Scheme::DistinctQuantile,
        },
    }
}

/// The class of `value` under `breaks`: the first break it does not exceed.
fn class_of(value: f64, breaks: &[f64]) -> usize {
    breaks
        .iter()
        .position(|b| value <= *b)
        .unwrap_or(breaks.len().saturating_sub(1))
}

/// Colour of class `k` of `n` classes: the palette's darkest `n` steps.
fn colour(palette: &[&'static str; 5], k: usize, n: usize) -> &'static str {
    palette[(5 - n.clamp(1, 5)) + k.min(4)]
}

/// The base a map is drawn on: the jurisdiction outline, its beats, roads and places.
#[derive(Debug)]
pub(crate) struct Base<'a> {
    /// The jurisdiction.
    pub(crate) outline: &'a MultiPolygon<f64>,
    /// Beats with their ids.
    pub(crate) beats: &'a [(String, MultiPolygon<f64>)],
    /// Roads and named places.
    pub(crate) map: &'a Basemap,
}

/// One heatmap: values per H3 cell over the base.
#[derive(Debug)]
pub(crate) struct Heatmap<'a> {
    /// The frame.
    pub(crate) view: View,
    /// Heading inside the figure.
    pub(crate) title: &'a str,
    /// The cells and their values (cells outside the frame are skipped).
    pub(crate) cells: &'a [(CellIndex, f64)],
    /// The layer's classes (see [`classes`]).
    pub(crate) classes: &'a Classes,
    /// The layer's palette.
    pub(crate) palette: &'a [&'static str; 5],
    /// What the values are, with their unit, above the legend.
    pub(crate) measure: &'a str,
}

/// The start of a map's document: `extra_height` pixels under the map are for its legend;
/// the map itself is clipped to its frame (`#frame`).
fn open(view: &View, extra_height: f64) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w:.0} {h:.0}\" width=\"{w:.0}\" \
         height=\"{h:.0}\" font-family=\"sans-serif\" font-size=\"12\">\
         <defs><clipPath id=\"frame\"><rect width=\"{w:.1}\" height=\"{fh:.1}\"/></clipPath></defs>\
         <rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>",
        w = view.width,
        h = view.height + extra_height,
        fh = view.height,
    )
}

/// The ground under the data: the jurisdiction filled, and its roads by class (minor roads
/// only on detailed maps).
fn ground(svg: &mut String, view: &View, b: &Base<'_>) {
    let _ = write!(
        svg,
        "<path d=\"{}\" fill=\"#f4f4f0\" stroke=\"none\"/>",
        view.multipolygon(b.outline)
    );
    let detailed = view.metres_per_px() <= DETAIL_METRES_PER_PX;
    for (class, name, stroke, width) in [
        (RoadClass::Minor, "minor", "#d4d4d4", 0.5),
        (RoadClass::Secondary, "secondary", "#b4b4b4", 0.9),
        (RoadClass::Major, "major", "#8c8c8c", 1.8),
    ] {
        if class == RoadClass::Minor && !detailed {
            continue;
        }
        let mut d = String::new();
        for road in b.map.roads.iter().filter(|r| r.class == class) {
            if view.meets(&road.line) {
                view.line(&mut d, &road.line);
            }
        }
        if !d.is_empty() {
            let _ = write!(
                svg,
                "<path class=\"road {name}\" d=\"{d}\" fill=\"none\" stroke=\"{stroke}\" \
                 stroke-width=\"{width}\" stroke-linecap=\"round\" stroke-linejoin=\"round\"/>"
            );
        }
    }
}

/// Beat lines and the jurisdiction's outline, over the data.
fn borders(svg: &mut String, view: &View, b: &Base<'_>) {
    for (_, beat) in b.beats {
        let _ = write!(
            svg,
            "<path d=\"{}\" fill=\"none\" stroke=\"#777\" stroke-width=\"0.6\"/>",
            view.multipolygon(beat)
        );
    }
    let _ = write!(
        svg,
        "<path d=\"{}\" fill=\"none\" stroke=\"#555\" stroke-width=\"1.2\"/>",
        view.multipolygon(b.outline)
    );
}

/// Boxes (x0, y0, x1, y1) already taken on a map, so labels overlap neither each other nor
/// the title, the north arrow or the scale bar.
struct Taken {
    width: f64,
    height: f64,
    boxes: Vec<[f64; 4]>,
}

impl Taken {
    fn new(view: &View) -> Self {
        Self {
            width: view.width,
            height: view.height,
            boxes: Vec::new(),
        }
    }

    /// Takes `b` if it lies inside the map and clear of every box taken.
    fn take(&mut self, b: [f64; 4]) -> bool {
        let inside = b[0] >= 0.0 && b[1] >= 0.0 && b[2] <= self.width && b[3] <= self.height;
        let clear = self
            .boxes
            .iter()
            .all(|o| b[2] < o[0] || o[2] < b[0] || b[3] < o[1] || o[3] < b[1]);
        if inside && clear {
            self.boxes.push(b);
        }
        inside && clear
    }
}

/// The box of `text` in `size` pixels drawn at (x, y), baseline y, for an anchor of `start`,
/// `middle` or `end` (sans-serif letters are about 0.6 of the size wide).
fn text_box(x: f64, y: f64, text: &str, size: f64, anchor: &str) -> [f64; 4] {
    let w = 0.6 * size * text.chars().count() as f64;
    let x0 = match anchor {
        "middle" => x - w / 2.0,
        "end" => x - w,
        _ => x,
    };
    [x0 - 1.0, y - 0.8 * size, x0 + w + 1.0, y + 0.25 * size]
}

/// Where a beat's label goes: a point inside it, away from its edges where it can be (geo's
/// interior point, which unlike the centroid or the box's centre never falls in a hole or
/// outside a concave beat).
pub(crate) fn label_point(beat: &MultiPolygon<f64>) -> Option<Point<f64>> {
    beat.interior_point()
}

/// The labels over the data: beat ids first, then places (most important first), then the
/// names of major roads, each left out where it would overlap one already placed.
fn labels(svg: &mut String, view: &View, b: &Base<'_>, taken: &mut Taken) {
    for (id, beat) in b.beats {
        let Some(c) = label_point(beat) else {
            continue;
        };
        // A label needs room: beats narrower than 36 pixels go unlabelled.
        let wide = beat.bounding_rect().is_some_and(|r| {
            view.xy(r.max().x, r.min().y).0 - view.xy(r.min().x, r.min().y).0 >= 36.0
        });
        let (x, y) = view.xy(c.x(), c.y());
        if wide && taken.take(text_box(x, y + 4.0, id, 11.0, "middle")) {
            let _ = write!(
                svg,
                "<text class=\"beat\" x=\"{x:.1}\" y=\"{y:.1}\" dy=\"4\" text-anchor=\"middle\" \
                 font-size=\"11\" fill=\"#444\" stroke=\"#fff\" stroke-width=\"2.5\" \
                 paint-order=\"stroke\">{}</text>",
                escape(id)
            );
        }
    }
    places(svg, view, b.map, taken);
    road_names(svg, view, b.map, taken);
}

fn places(svg: &mut String, view: &View, map: &Basemap, taken: &mut Taken) {
    let detailed = view.metres_per_px() <= DETAIL_METRES_PER_PX;
    let mut places: Vec<_> = map
        .places
        .iter()
        .filter(|p| (p.kind >= PlaceKind::Village || detailed) && view.shows(p.lon, p.lat))
        .collect();
    places.sort_by_key(|p| std::cmp::Reverse(p.kind));
    for p in places {
        let (size, weight, r) = match p.kind {
            PlaceKind::City | PlaceKind::Town => (13.0, "bold", 3.0),
            PlaceKind::Village => (11.5, "bold", 2.5),
            PlaceKind::Hamlet | PlaceKind::Poi => (10.0, "normal", 2.0),
        };
        let (x, y) = view.xy(p.lon, p.lat);
        let dot = [x - r, y - r, x + r, y + r];
        // Right of the dot, else left of it, else above it.
        let spots = [
            (x + r + 2.0, y + 0.35 * size, "start"),
            (x - r - 2.0, y + 0.35 * size, "end"),
            (x, y - r - 2.0, "middle"),
        ];
        for (tx, ty, anchor) in spots {
            let label = text_box(tx, ty, &p.name, size, anchor);
            let both = [
                label[0].min(dot[0]),
                label[1].min(dot[1]),
                label[2].max(dot[2]),
                label[3].max(dot[3]),
            ];
            if taken.take(both) {
                let _ = write!(
                    svg,
                    "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r}\" fill=\"#222\" stroke=\"#fff\" \
                     stroke-width=\"1\"/><text class=\"place\" x=\"{tx:.1}\" y=\"{ty:.1}\" \
                     text-anchor=\"{anchor}\" font-size=\"{size}\" font-weight=\"{weight}\" \
                     fill=\"#222\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\">{}</text>",
                    escape(&p.name)
                );
                break;
            }
        }
    }
}

/// A point `at` pixels along a polyline of pixel points.
fn along(points: &[(f64, f64)], at: f64) -> Option<(f64, f64)> {
    let mut left = at;
    for pair in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        let len = (x1 - x0).hypot(y1 - y0);
        if left <= len && len > 0.0 {
            let t = left / len;
            return Some((x0 + t * (x1 - x0), y0 + t * (y1 - y0)));
        }
        left -= len;
    }
    None
}

/// Joins lines that meet end to end (either way round) into longer lines.
fn chain(mut lines: Vec<Vec<(f64, f64)>>) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    while let Some(mut line) = lines.pop() {
        while let (Some(&first), Some(&last)) = (line.first(), line.last()) {
            let meets = |l: &Vec<(f64, f64)>| {
                [first, last].contains(&l[0]) || [first, last].contains(&l[l.len() - 1])
            };
            let Some(i) = lines.iter().position(|l| !l.is_empty() && meets(l)) else {
                break;
            };
            let mut next = lines.swap_remove(i);
            if next[next.len() - 1] == last || next[0] == first {
                next.reverse();
            }
            if next[0] == last {
                line.extend(next.into_iter().skip(1));
            } else {
                next.extend(line.into_iter().skip(1));
                line = next;
            }
        }
        out.push(line);
    }
    out
}

/// A named road on the map: its name, its points in pixels and its length in pixels.
type PixelRoad<'a> = (&'a str, Vec<(f64, f64)>, f64);

/// Names of major roads, each once, along a straight enough stretch in the frame; a road's
/// ways are joined end to end first, and the longest roads are tried first.
fn road_names(svg: &mut String, view: &View, map: &Basemap, taken: &mut Taken) {
    const SIZE: f64 = 9.5;
    let mut by_name: BTreeMap<&str, Vec<Vec<(f64, f64)>>> = BTreeMap::new();
    for road in map.roads.iter().filter(|r| r.class == RoadClass::Major) {
        if let Some(name) = road.name.as_deref() {
            by_name.entry(name).or_default().push(road.line.clone());
        }
    }
    let mut ways: Vec<PixelRoad<'_>> = by_name
        .into_iter()
        .flat_map(|(name, lines)| chain(lines).into_iter().map(move |line| (name, line)))
        .map(|(name, line)| {
            let pts: Vec<(f64, f64)> = line.iter().map(|(lon, lat)| view.xy(*lon, *lat)).collect();
            let len = pts
                .windows(2)
                .map(|p| (p[1].0 - p[0].0).hypot(p[1].1 - p[0].1))
                .sum();
            (name, pts, len)
        })
        .collect();
    ways.sort_by(|a, b| b.2.total_cmp(&a.2));
    let mut named: BTreeSet<&str> = BTreeSet::new();
    for (name, pts, len) in &ways {
        let text = 0.6 * SIZE * name.chars().count() as f64 + 6.0;
        if named.contains(name) || *len < text {
            continue;
        }
        // Try the middle of the way first, then further out.
        for f in [0.5, 0.35, 0.65, 0.2, 0.8] {
            let mid = f * len;
            let (Some(a), Some(b)) = (along(pts, mid - text / 2.0), along(pts, mid + text / 2.0))
            else {
                continue;
            };
            let (dx, dy) = (b.0 - a.0, b.1 - a.1);
            // Straight enough: the chord is nearly as long as the stretch.
            if dx.hypot(dy) < 0.95 * text {
                continue;
            }
            let mut angle = dy.atan2(dx).to_degrees();
            if angle > 90.0 {
                angle -= 180.0;
            } else if angle < -90.0 {
                angle += 180.0;
            }
            let (cx, cy) = ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
            let (sin, cos) = angle.to_radians().sin_cos();
            let (hw, hh) = (
                (text * cos.abs() + SIZE * sin.abs()) / 2.0,
                (text * sin.abs() + SIZE * cos.abs()) / 2.0,
            );
            if taken.take([cx - hw, cy - hh, cx + hw, cy + hh]) {
                let _ = write!(
                    svg,
                    "<text class=\"road-name\" transform=\"translate({cx:.1},{cy:.1}) \
                     rotate({angle:.1})\" dy=\"3.2\" text-anchor=\"middle\" font-size=\"{SIZE}\" \
                     font-style=\"italic\" fill=\"#444\" stroke=\"#fff\" stroke-width=\"2.5\" \
                     paint-order=\"stroke\">{}</text>",
                    escape(name)
                );
                named.insert(name);
                break;
            }
        }
    }
}

/// A round ground length for the scale bar: 1, 2 or 5 times a power of ten metres, the
/// longest such not over a quarter of the map's width. Returns metres and pixels.
fn scale_length(view: &View) -> (f64, f64) {
    let mpp = view.metres_per_px();
    let most = view.width / 4.0 * mpp;
    let decade = 10f64.powf(most.log10().floor());
    let metres = [5.0, 2.0, 1.0]
        .iter()
        .map(|k| k * decade)
        .find(|m| *m <= most)
        .unwrap_or(decade);
    (metres, metres / mpp)
}

/// The scale bar at the map's bottom left, on a light backing.
fn scale_bar(svg: &mut String, view: &View, taken: &mut Taken) {
    let (metres, px) = scale_length(view);
    let label = if metres >= 1000.0 {
        format!("{} km", short(metres / 1000.0))
    } else {
        format!("{metres:.0} m")
    };
    let (x0, y) = (10.0, view.height - 9.0);
    let x1 = x0 + px;
    let back = [
        x0 - 4.0,
        y - 14.0,
        x1 + 8.0 + 6.6 * label.len() as f64,
        y + 5.0,
    ];
    taken.boxes.push(back);
    let _ = write!(
        svg,
        "<g class=\"scale\"><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
         fill=\"#fff\" fill-opacity=\"0.8\"/><path class=\"scale-bar\" d=\"M{x0:.2},{y:.2}H{x1:.2}\" \
         stroke=\"#222\" stroke-width=\"3\"/><path d=\"M{x0:.2},{y:.1}v-6M{xm:.2},{y:.1}v-4\
         M{x1:.2},{y:.1}v-6\" stroke=\"#222\" stroke-width=\"1\"/><text class=\"scale-label\" \
         x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{label}</text></g>",
        back[0],
        back[1],
        back[2] - back[0],
        back[3] - back[1],
        x1 + 5.0,
        y + 4.0,
        xm = x0 + px / 2.0,
    );
}

/// The north arrow at the map's top right (north is up in this projection).
fn north_arrow(svg: &mut String, view: &View, taken: &mut Taken) {
    let (x, y) = (view.width - 16.0, 6.0);
    taken.boxes.push([x - 9.0, y - 2.0, x + 9.0, y + 32.0]);
    let _ = write!(
        svg,
        "<g class=\"north-arrow\"><path d=\"M{x:.1},{y:.1}l6,17l-6,-5l-6,5Z\" fill=\"#222\" \
         stroke=\"#fff\" stroke-width=\"0.8\"/><text x=\"{x:.1}\" y=\"{:.1}\" \
         text-anchor=\"middle\" font-size=\"11\" font-weight=\"bold\" stroke=\"#fff\" \
         stroke-width=\"2.5\" paint-order=\"stroke\">N</text></g>",
        y + 29.0
    );
}

/// What every map draws over its data: borders, labels, the scale bar and the north arrow,
/// with the title at the top left when there is one;
/// `reserved` are boxes other marks take (so no label covers them).
fn overlay(
    svg: &mut String,
    view: &View,
    b: &Base<'_>,
    title: Option<&str>,
    reserved: &[[f64; 4]],
) {
    borders(svg, view, b);
    let mut taken = Taken::new(view);
    taken.boxes.extend_from_slice(reserved);
    north_arrow(svg, view, &mut taken);
    scale_bar(svg, view, &mut taken);
    if let Some(title) = title {
        let b = text_box(8.0, 18.0, title, 15.0, "start");
        taken.boxes.push(b);
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#fff\" \
             fill-opacity=\"0.8\"/><text x=\"8\" y=\"18\" font-size=\"15\" \
             font-weight=\"bold\">{}</text>",
            b[0] - 2.0,
            b[1] - 2.0,
            b[2] - b[0] + 4.0,
            b[3] - b[1] + 4.0,
            escape(title)
        );
    }
    labels(svg, view, b, &mut taken);
}

fn hexagon(view: &View, cell: CellIndex) -> String {
    let ring: Vec<(f64, f64)> = cell
        .boundary()
        .iter()
        .map(|ll| (ll.lng(), ll.lat()))
        .collect();
    view.path([ring.as_slice()])
}

/// Height of a heatmap's legend, under the map.
const LEGEND_HEIGHT: f64 = 68.0;

/// Draws a heatmap with its legend underneath.
pub(crate) fn heatmap(map: &Heatmap<'_>, b: &Base<'_>) -> String {
    let view = &map.view;
    let mut svg = open(view, LEGEND_HEIGHT);
    svg.push_str("<g clip-path=\"url(#frame)\">");
    ground(&mut svg, view, b);
    let breaks = &map.classes.breaks;
    let n = breaks.len();
    let _ = write!(svg, "<g fill-opacity=\"{CELL_OPACITY}\">");
    for (cell, v) in map.cells {
        let ll = h3o::LatLng::from(*cell);
        if *v <= 0.0 || n == 0 || !view.shows(ll.lng(), ll.lat()) {
            continue;
        }
        let _ = write!(
            svg,
            "<path d=\"{}\" fill=\"{}\" stroke=\"none\"/>",
            hexagon(view, *cell),
            colour(map.palette, class_of(*v, breaks), n)
        );
    }
    svg.push_str("</g>");
    overlay(&mut svg, view, b, Some(map.title), &[]);
    svg.push_str("</g>");
    legend(&mut svg, view.height + 6.0, map);
    svg.push_str("</svg>");
    svg
}

/// The legend: what the values are, a box per class with the bounds between them, and how
/// the classes were chosen.
fn legend(svg: &mut String, y: f64, map: &Heatmap<'_>) {
    let _ = write!(
        svg,
        "<text class=\"legend-measure\" x=\"8\" y=\"{:.0}\" font-size=\"11\" fill=\"#222\">{}</text>",
        y + 11.0,
        escape(map.measure)
    );
    let breaks = &map.classes.breaks;
    let n = breaks.len();
    if n == 0 {
        let _ = write!(
            svg,
            "<text x=\"8\" y=\"{:.0}\" fill=\"#555\">nothing in this span</text>",
            y + 32.0
        );
        return;
    }
    // One box per class; under each box's right edge, the class's upper bound.
    let w = ((map.view.width - 24.0) / n as f64).min(56.0);
    let _ = write!(
        svg,
        "<text x=\"8\" y=\"{:.0}\" font-size=\"11\">0</text>",
        y + 44.0
    );
    for (k, upper) in breaks.iter().enumerate() {
        let x = 8.0 + k as f64 * w;
        let _ = write!(
            svg,
            "<rect class=\"legend-class\" x=\"{x:.1}\" y=\"{:.0}\" width=\"{w:.1}\" height=\"14\" \
             fill=\"{}\" fill-opacity=\"{CELL_OPACITY}\" stroke=\"#888\" stroke-width=\"0.5\"/>\
             <text x=\"{:.1}\" y=\"{:.0}\" text-anchor=\"end\" font-size=\"11\">{}</text>",
            y + 18.0,
            colour(map.palette, k, n),
            x + w,
            y + 44.0,
            short(*upper),
        );
    }
    let _ = write!(
        svg,
        "<text class=\"legend-scheme\" x=\"8\" y=\"{:.0}\" font-size=\"10\" fill=\"#555\">{}</text>",
        y + 59.0,
        map.classes.scheme.describe()
    );
}

/// A number in at most about four characters (whole numbers without decimals, one decimal
/// from 1 to 100, two below).
pub(crate) fn short(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 100.0 || (v.fract() == 0.0 && a < 1e6) {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else if a >= 0.01 {
        format!("{v:.2}")
    } else {
        format!("{v:.1e}")
    }
}

/// A map of failing areas (filled) and the response sources (dots) over the base.
pub(crate) fn failing_map(
    view: &View,
    b: &Base<'_>,
    areas: &[MultiPolygon<f64>],
    sources: &[(String, f64, f64)],
) -> String {
    let mut svg = open(view, 24.0);
    svg.push_str("<g clip-path=\"url(#frame)\">");
    ground(&mut svg, view, b);
    for a in areas {
        let _ = write!(
            svg,
            "<path d=\"{}\" fill=\"#de2d26\" fill-opacity=\"0.7\" stroke=\"#a50f15\" \
             stroke-width=\"0.8\"/>",
            view.multipolygon(a)
        );
    }
    let mut stations = String::new();
    let mut reserved = Vec::new();
    for (id, lat, lon) in sources {
        let (x, y) = view.xy(*lon, *lat);
        reserved.push([x - 4.0, y - 4.0, x + 4.0, y + 4.0]);
        reserved.push(text_box(x + 6.0, y - 4.0, id, 11.0, "start"));
        let _ = write!(
            stations,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"#08519c\" stroke=\"#fff\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" stroke=\"#fff\" stroke-width=\"2.5\" \
             paint-order=\"stroke\">{}</text>",
            x + 6.0,
            y - 4.0,
            escape(id)
        );
    }
    overlay(&mut svg, view, b, None, &reserved);
    svg.push_str(&stations);
    svg.push_str("</g>");
    let _ = write!(
        svg,
        "<rect x=\"8\" y=\"{y:.0}\" width=\"16\" height=\"14\" fill=\"#de2d26\"/>\
         <text x=\"30\" y=\"{t:.0}\">fails 30 km / 30 min</text>\
         <circle cx=\"190\" cy=\"{c:.0}\" r=\"4\" fill=\"#08519c\"/>\
         <text x=\"200\" y=\"{t:.0}\">station</text>",
        y = view.height + 4.0,
        t = view.height + 16.0,
        c = view.height + 11.0,
    );
    svg.push_str("</svg>");
    svg
}

/// The hour-of-week grid: one row per weekday (Monday first), one column per hour, each
/// square shaded by the share of the area passing the rule from units on duty (`None`: no
/// sample that hour).
pub(crate) fn week_grid(shares: &[[Option<f64>; 24]; 7]) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let (cell, left, top) = (24.0, 40.0, 20.0);
    let width = left + 24.0 * cell + 10.0;
    let height = top + 7.0 * cell + 40.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width:.0} {height:.0}\" \
         width=\"{width:.0}\" height=\"{height:.0}\" font-family=\"sans-serif\" font-size=\"11\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>"
    );
    for h in (0..24).step_by(3) {
        let _ = write!(
            svg,
            "<text x=\"{:.0}\" y=\"14\">{h:02}</text>",
            left + f64::from(h) * cell + 4.0
        );
    }
    for (d, row) in shares.iter().enumerate() {
        let y = top + d as f64 * cell;
        let _ = write!(
            svg,
            "<text x=\"4\" y=\"{:.0}\">{}</text>",
            y + 16.0,
            DAYS[d]
        );
        for (h, share) in row.iter().enumerate() {
            let x = left + h as f64 * cell;
            let fill = share.map_or("#dddddd", |s| {
                // Five steps of the passing share: under 50 %, 50-70, 70-85, 85-95, 95 and up.
                let k = [0.5, 0.7, 0.85, 0.95]
                    .iter()
                    .position(|b| s < *b)
                    .unwrap_or(4);
                ["#a50f15", "#fb6a4a", "#fcbba1", "#c7e9c0", "#31a354"][k]
            });
            let _ = write!(
                svg,
                "<rect x=\"{x:.0}\" y=\"{y:.0}\" width=\"{w:.0}\" height=\"{w:.0}\" fill=\"{fill}\" \
                 stroke=\"#fff\"><title>{} {h:02}:00 {}</title></rect>",
                DAYS[d],
                share.map_or_else(|| "no data".into(), |s| format!("{:.1} %", s * 100.0)),
                w = cell,
            );
        }
    }
    let y = top + 7.0 * cell + 12.0;
    for (k, (fill, label)) in [
        ("#a50f15", "&lt;50 %"),
        ("#fb6a4a", "50-70"),
        ("#fcbba1", "70-85"),
        ("#c7e9c0", "85-95"),
        ("#31a354", "≥95 %"),
        ("#dddddd", "no units"),
    ]
    .iter()
    .enumerate()
    {
        let x = left + k as f64 * 80.0;
        let _ = write!(
            svg,
            "<rect x=\"{x:.0}\" y=\"{y:.0}\" width=\"14\" height=\"14\" fill=\"{fill}\"/>\
             <text x=\"{:.0}\" y=\"{:.0}\">{label}</text>",
            x + 18.0,
            y + 11.0
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use geo::{Contains, Polygon, polygon};

    use super::*;
    use crate::report::basemap::{Place, Road};

    /// The longitude and latitude of a pixel: `View::xy` undone.
    fn lonlat(v: &View, x: f64, y: f64) -> (f64, f64) {
        (v.min_lon + x / (v.kx * v.scale), v.max_lat - y / v.scale)
    }

    /// The value of attribute `name` in the first element of `svg` with `class="{class}"`.
    fn attr<'a>(svg: &'a str, class: &str, name: &str) -> &'a str {
        let at = svg.find(&format!("class=\"{class}\"")).expect(class);
        let rest = &svg[at..];
        let from = rest.find(&format!(" {name}=\"")).expect(name) + name.len() + 3;
        &rest[from..from + rest[from..].find('"').unwrap()]
    }

    /// The text of the first element with `class="{class}"`.
    fn text<'a>(svg: &'a str, class: &str) -> &'a str {
        let at = svg.find(&format!("class=\"{class}\"")).expect(class);
        let rest = &svg[at..];
        let from = rest.find('>').unwrap() + 1;
        &rest[from..rest.find('<').unwrap()]
    }

    fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> Polygon<f64> {
        polygon![(x: x0, y: y0), (x: x1, y: y0), (x: x1, y: y1), (x: x0, y: y1)]
    }

    /// A U-shaped beat open to the north: its centroid and its box's centre fall in the gap.
    fn u_beat() -> MultiPolygon<f64> {
        MultiPolygon(vec![polygon![
            (x: -89.0, y: 40.0), (x: -88.8, y: 40.0), (x: -88.8, y: 40.2), (x: -88.82, y: 40.2),
            (x: -88.82, y: 40.02), (x: -88.98, y: 40.02), (x: -88.98, y: 40.2), (x: -89.0, y: 40.2),
        ]])
    }

    fn draw(view: View, base: &Base<'_>, values: &[f64]) -> String {
        let cells: Vec<(CellIndex, f64)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let ll = h3o::LatLng::new(40.05 + 0.01 * i as f64, -88.9).unwrap();
                (ll.to_cell(h3o::Resolution::Eight), *v)
            })
            .collect();
        heatmap(
            &Heatmap {
                view,
                title: "all hours",
                cells: &cells,
                classes: &classes(values.iter().copied()),
                palette: &REDS,
                measure: "incidents per cell per week",
            },
            base,
        )
    }

    #[test]
    fn classes_fall_back_to_equal_intervals_on_ties() {
        let c = classes((1..=10).map(f64::from).chain([0.0, -1.0]));
        assert_eq!(c.breaks, vec![2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(c.scheme, Scheme::Quantile);
        assert_eq!(class_of(1.0, &c.breaks), 0);
        assert_eq!(class_of(4.5, &c.breaks), 2);
        assert_eq!(class_of(10.0, &c.breaks), 4);
        // Mostly ones: quantiles give two classes, so classes of the distinct values.
        let c = classes([1.0; 8].into_iter().chain([2.0, 3.0, 9.0]));
        assert_eq!(c.scheme, Scheme::DistinctQuantile);
        assert_eq!(c.breaks, vec![1.0, 2.0, 3.0, 9.0]);
        // Two values make three equal classes.
        let c = classes([1.0, 1.0, 1.0, 4.0]);
        assert_eq!(c.scheme, Scheme::EqualInterval);
        assert_eq!(c.breaks, vec![2.0, 3.0, 4.0]);
        assert_eq!([1.0, 4.0].map(|v| class_of(v, &c.breaks)), [0, 2]);
        // One value is one class, coloured by the darkest step.
        let c = classes([3.0; 8]);
        assert_eq!(c.breaks, vec![3.0]);
        assert_eq!(colour(&REDS, class_of(3.0, &c.breaks), 1), REDS[4]);
        assert!(classes([0.0, 0.0]).breaks.is_empty());
    }

    #[test]
    fn legends_show_every_class_with_units_and_scheme() {
        let outline = MultiPolygon(vec![square(-89.0, 40.0, -88.8, 40.2)]);
        let map = Basemap::default();
        let base = Base {
            outline: &outline,
            beats: &[],
            map: &map,
        };
        let view = View::new(extent([&outline]).unwrap(), 340.0);
        let svg = draw(view, &base, &[1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 5.0]);
        assert_eq!(svg.matches("class=\"legend-class\"").count(), 3, "{svg}");
        assert_eq!(text(&svg, "legend-measure"), "incidents per cell per week");
        assert!(text(&svg, "legend-scheme").starts_with("classes by rank"));
        let svg = draw(view, &base, &[1.0, 1.0, 4.0]);
        assert_eq!(svg.matches("class=\"legend-class\"").count(), 3);
        assert!(text(&svg, "legend-scheme").starts_with("equal-interval"));
        let svg = draw(view, &base, &[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(svg.matches("class=\"legend-class\"").count(), 5);
        assert!(text(&svg, "legend-scheme").starts_with("quantile"));
    }

    #[test]
    fn view_keeps_the_aspect_of_the_ground() {
        // One degree square at 60° N is half as wide as it is tall on the ground.
        let r = Rect::new(coord! { x: 10.0, y: 59.5 }, coord! { x: 11.0, y: 60.5 });
        let v = View::new(r, 500.0);
        assert!((v.height / v.width - 2.0).abs() < 0.01, "{v:?}");
        let (x0, y0) = v.xy(10.0, 60.5);
        let (x1, y1) = v.xy(11.0, 59.5);
        assert!(x0 > 0.0 && y0 > 0.0 && x1 < v.width && y1 < v.height);
        assert!(v.shows(10.5, 60.0) && !v.shows(12.0, 60.0));
    }

    #[test]
    fn the_scale_bar_matches_the_projection() {
        let empty = Basemap::default();
        for (lon, lat, span, width) in [
            (-88.9, 40.1, 0.7, 340.0),
            (-88.9, 40.1, 0.7, 700.0),
            (-88.9, 40.1, 0.03, 340.0),
            (10.7, 60.0, 0.2, 340.0),
            (-58.4, -34.6, 2.0, 500.0),
        ] {
            let outline = MultiPolygon(vec![square(lon, lat, lon + span, lat + span / 2.0)]);
            let base = Base {
                outline: &outline,
                beats: &[],
                map: &empty,
            };
            let view = View::new(extent([&outline]).unwrap(), width);
            let svg = draw(view, &base, &[]);
            let d = attr(&svg, "scale-bar", "d");
            let (start, x1) = d[1..].split_once('H').unwrap();
            let (x0, y) = start.split_once(',').unwrap();
            let (x0, x1, y): (f64, f64, f64) =
                (x0.parse().unwrap(), x1.parse().unwrap(), y.parse().unwrap());
            let label = text(&svg, "scale-label");
            let (n, unit) = label.split_once(' ').unwrap();
            let metres = n.parse::<f64>().unwrap() * if unit == "km" { 1000.0 } else { 1.0 };
            // The ground under the bar, measured on the sphere at the bar's latitude.
            let (lon0, lat0) = lonlat(&view, x0, y);
            let (lon1, lat1) = lonlat(&view, x1, y);
            let a = h3o::LatLng::new(lat0, lon0).unwrap();
            let ground = a.distance_m(h3o::LatLng::new(lat1, lon1).unwrap());
            assert!(
                (ground / metres - 1.0).abs() < 0.01,
                "{label}: the bar covers {ground:.0} m at {lat} N, {width} px"
            );
            assert!(
                x1 - x0 > 0.1 * width && x1 - x0 <= 0.25 * width + 0.1,
                "{d}"
            );
            let first = label.chars().next().unwrap();
            assert!(matches!(first, '1' | '2' | '5'), "a round length: {label}");
            assert!(svg.contains("class=\"north-arrow\""));
        }
    }

    #[test]
    fn beat_labels_sit_inside_their_beats() {
        let u = u_beat();
        let centroid = geo::Centroid::centroid(&u).unwrap();
        assert!(!u.contains(&centroid), "the centroid falls in the gap");
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
        let j = model::jurisdiction::Jurisdiction::load(&fixtures).unwrap();
        let mut beats: Vec<(String, MultiPolygon<f64>)> = j
            .catalog()
            .beats
            .iter()
            .map(|f| (f.id.clone(), f.geometry.clone()))
            .collect();
        beats.push(("U".into(), u));
        for (id, beat) in &beats {
            let p = label_point(beat).unwrap();
            assert!(beat.contains(&p), "{id}: {p:?}");
        }
        // The drawn labels' anchors, projected back, are inside their beats too.
        let map = Basemap::default();
        let outline = j.county().clone();
        let base = Base {
            outline: &outline,
            beats: &beats,
            map: &map,
        };
        // The county, and the town's five beats.
        let town = extent(beats.iter().take(5).map(|(_, b)| b)).unwrap();
        for extent in [extent([&outline]).unwrap(), town] {
            let view = View::new(extent, 700.0);
            let svg = draw(view, &base, &[]);
            let mut drawn = 0;
            for at in svg.match_indices("<text class=\"beat\"").map(|(i, _)| i) {
                let el = &svg[at..];
                let x: f64 = attr(el, "beat", "x").parse().unwrap();
                let y: f64 = attr(el, "beat", "y").parse().unwrap();
                let id = text(el, "beat");
                let beat = &beats.iter().find(|(b, _)| b == id).unwrap().1;
                let (lon, lat) = lonlat(&view, x, y);
                // Drawn to a tenth of a pixel: test a point as close as that.
                let near = Point::new(lon, lat);
                let tol = view.metres_per_px() * 0.1 / METRES_PER_DEGREE;
                let inside = beat.contains(&near)
                    || [(tol, 0.0), (-tol, 0.0), (0.0, tol), (0.0, -tol)]
                        .iter()
                        .all(|(dx, dy)| beat.contains(&Point::new(lon + dx, lat + dy)));
                assert!(inside, "{id} at {x},{y}");
                drawn += 1;
            }
            assert!(drawn >= 3, "{svg}");
        }
    }

    #[test]
    fn chain_joins_ways_end_to_end() {
        let lines = vec![
            vec![(0.0, 0.0), (1.0, 0.0)],
            vec![(2.0, 0.0), (1.0, 0.0)],
            vec![(2.0, 0.0), (3.0, 0.0)],
            vec![(9.0, 9.0), (9.5, 9.0)],
        ];
        let mut out = chain(lines);
        out.sort_by_key(Vec::len);
        assert_eq!(out[0], [(9.0, 9.0), (9.5, 9.0)]);
        let xs: Vec<f64> = out[1].iter().map(|p| p.0).collect();
        assert!(
            xs == [0.0, 1.0, 2.0, 3.0] || xs == [3.0, 2.0, 1.0, 0.0],
            "{xs:?}"
        );
    }

    #[test]
    fn roads_and_places_are_drawn_and_labels_do_not_overlap() {
        let outline = MultiPolygon(vec![square(-89.0, 40.0, -88.0, 40.4)]);
        let road = |class, name: &str, lat: f64| Road {
            class,
            name: Some(name.into()),
            line: vec![(-89.0, lat), (-88.5, lat), (-88.0, lat)],
        };
        let place = |name: &str, kind| Place {
            name: name.into(),
            kind,
            lon: -88.5,
            lat: 40.3,
        };
        let map = Basemap {
            roads: vec![
                road(RoadClass::Major, "US 51", 40.05),
                road(RoadClass::Major, "US 51", 40.15),
                road(RoadClass::Secondary, "Mill Rd", 40.22),
                road(RoadClass::Minor, "Elm St", 40.11),
            ],
            // Two places at one spot: only the more important is labelled.
            places: vec![
                place("Oakley", PlaceKind::Village),
                place("Ashford", PlaceKind::Town),
            ],
        };
        let base = Base {
            outline: &outline,
            beats: &[],
            map: &map,
        };
        let view = View::new(extent([&outline]).unwrap(), 340.0);
        assert!(view.metres_per_px() > DETAIL_METRES_PER_PX);
        let svg = draw(view, &base, &[2.0]);
        assert!(svg.contains("class=\"road major\"") && svg.contains("class=\"road secondary\""));
        assert!(
            !svg.contains("class=\"road minor\""),
            "no minor roads at county scale"
        );
        // The roads are under the cells.
        assert!(svg.find("class=\"road major\"") < svg.find("fill-opacity=\"0.8\""));
        assert_eq!(
            svg.matches("class=\"road-name\"").count(),
            1,
            "one name per road"
        );
        assert!(svg.contains(">US 51</text>") && !svg.contains(">Mill Rd</text>"));
        assert!(svg.contains(">Ashford</text>") && !svg.contains(">Oakley</text>"));
        // Minor roads show on a detailed map.
        let town = View::new(Rect::new((-88.51, 40.105), (-88.49, 40.115)), 340.0);
        assert!(draw(town, &base, &[]).contains("class=\"road minor\""));
    }
}
