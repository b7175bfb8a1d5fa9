//! The report's figures, drawn as SVG: hexagon heatmaps over the jurisdiction's outline and
//! beats, failing-area maps, and the hour-of-week grid of dynamic coverage.
//!
//! Maps use an equirectangular projection scaled by the cosine of the view's middle latitude,
//! which is true to within a fraction of a percent over a county. Values are binned into
//! classes by quantile (the usual choice for crime maps, where a few cells dwarf the rest);
//! every map of one layer shares its classes, so windows compare at a glance.

use std::fmt::Write as _;

use geo::{BoundingRect, MultiPolygon, Rect, coord};
use h3o::CellIndex;

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

    /// Whether a point falls inside the frame.
    fn shows(&self, lon: f64, lat: f64) -> bool {
        let (x, y) = self.xy(lon, lat);
        (0.0..=self.width).contains(&x) && (0.0..=self.height).contains(&y)
    }

    /// An SVG path `d` for closed rings of (lon, lat).
    fn path<'a>(&self, rings: impl IntoIterator<Item = &'a [(f64, f64)]>) -> String {
        let mut d = String::new();
        for ring in rings {
            for (i, (lon, lat)) in ring.iter().enumerate() {
                let (x, y) = self.xy(*lon, *lat);
                let _ = write!(d, "{}{x:.1},{y:.1}", if i == 0 { "M" } else { "L" });
            }
            d.push('Z');
        }
        d
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

/// Class breaks: the upper bounds of up to five quantile classes of the positive `values`.
pub(crate) fn quantile_breaks(values: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| *x > 0.0).collect();
    v.sort_by(f64::total_cmp);
    let mut breaks: Vec<f64> = (1..=5)
        .filter_map(|k| v.get((v.len() * k / 5).saturating_sub(1)).copied())
        .collect();
    breaks.dedup();
    breaks
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

/// The base a map is drawn on: the jurisdiction outline and its beats.
#[derive(Debug)]
pub(crate) struct Base<'a> {
    /// The jurisdiction.
    pub(crate) outline: &'a MultiPolygon<f64>,
    /// Beats with their ids.
    pub(crate) beats: &'a [(String, MultiPolygon<f64>)],
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
    /// The layer's class breaks (see [`quantile_breaks`]).
    pub(crate) breaks: &'a [f64],
    /// The layer's palette.
    pub(crate) palette: &'a [&'static str; 5],
    /// How a break is written in the legend.
    pub(crate) unit: &'a str,
}

fn open(view: &View, extra_height: f64) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w:.0} {h:.0}\" width=\"{w:.0}\" \
         height=\"{h:.0}\" font-family=\"sans-serif\" font-size=\"12\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>",
        w = view.width,
        h = view.height + extra_height
    )
}

fn base(svg: &mut String, view: &View, b: &Base<'_>) {
    let _ = write!(
        svg,
        "<path d=\"{}\" fill=\"#f4f4f0\" stroke=\"#555\" stroke-width=\"1.2\"/>",
        view.multipolygon(b.outline)
    );
    for (_, beat) in b.beats {
        let _ = write!(
            svg,
            "<path d=\"{}\" fill=\"none\" stroke=\"#999\" stroke-width=\"0.6\"/>",
            view.multipolygon(beat)
        );
    }
}

/// Beat ids at their centroids, drawn last so cells do not hide them.
fn labels(svg: &mut String, view: &View, b: &Base<'_>) {
    for (id, beat) in b.beats {
        let Some(c) = geo::Centroid::centroid(beat) else {
            continue;
        };
        // A label needs room: beats narrower than 36 pixels go unlabelled.
        let wide = beat.bounding_rect().is_some_and(|r| {
            view.xy(r.max().x, r.min().y).0 - view.xy(r.min().x, r.min().y).0 >= 36.0
        });
        if wide && view.shows(c.x(), c.y()) {
            let (x, y) = view.xy(c.x(), c.y());
            let _ = write!(
                svg,
                "<text x=\"{x:.0}\" y=\"{y:.0}\" text-anchor=\"middle\" fill=\"#333\" \
                 stroke=\"#fff\" stroke-width=\"2.5\" paint-order=\"stroke\">{}</text>",
                escape(id)
            );
        }
    }
}

fn hexagon(view: &View, cell: CellIndex) -> String {
    let ring: Vec<(f64, f64)> = cell
        .boundary()
        .iter()
        .map(|ll| (ll.lng(), ll.lat()))
        .collect();
    view.path([ring.as_slice()])
}

/// Draws a heatmap with its legend underneath.
pub(crate) fn heatmap(map: &Heatmap<'_>, b: &Base<'_>) -> String {
    let legend_h = 44.0;
    let view = &map.view;
    let mut svg = open(view, legend_h);
    base(&mut svg, view, b);
    let n = map.breaks.len();
    for (cell, v) in map.cells {
        let ll = h3o::LatLng::from(*cell);
        if *v <= 0.0 || n == 0 || !view.shows(ll.lng(), ll.lat()) {
            continue;
        }
        let _ = write!(
            svg,
            "<path d=\"{}\" fill=\"{}\" stroke=\"none\"/>",
            hexagon(view, *cell),
            colour(map.palette, class_of(*v, map.breaks), n)
        );
    }
    labels(&mut svg, view, b);
    let _ = write!(
        svg,
        "<text x=\"8\" y=\"18\" font-size=\"15\" font-weight=\"bold\">{}</text>",
        escape(map.title)
    );
    legend(&mut svg, view.height + 8.0, map);
    svg.push_str("</svg>");
    svg
}

fn legend(svg: &mut String, y: f64, map: &Heatmap<'_>) {
    let n = map.breaks.len();
    if n == 0 {
        let _ = write!(
            svg,
            "<text x=\"8\" y=\"{:.0}\" fill=\"#555\">nothing in this span</text>",
            y + 16.0
        );
        return;
    }
    // One box per class; under each box's right edge, the class's upper bound.
    let w = ((map.view.width - 90.0) / n as f64).min(50.0);
    let _ = write!(
        svg,
        "<text x=\"8\" y=\"{:.0}\" font-size=\"11\">0</text>",
        y + 30.0
    );
    for (k, upper) in map.breaks.iter().enumerate() {
        let x = 8.0 + k as f64 * w;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{y:.0}\" width=\"{w:.1}\" height=\"14\" fill=\"{}\" \
             stroke=\"#888\" stroke-width=\"0.5\"/><text x=\"{:.1}\" y=\"{:.0}\" \
             text-anchor=\"end\" font-size=\"11\">{}</text>",
            colour(map.palette, k, n),
            x + w,
            y + 30.0,
            short(*upper),
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.0}\" font-size=\"11\" fill=\"#555\">{}</text>",
        12.0 + n as f64 * w,
        y + 12.0,
        escape(map.unit)
    );
}

/// A number in at most about four characters (whole numbers without decimals).
pub(crate) fn short(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 100.0 || (v.fract() == 0.0 && a < 1e6) {
        format!("{v:.0}")
    } else if a >= 10.0 {
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
    base(&mut svg, view, b);
    for a in areas {
        let _ = write!(
            svg,
            "<path d=\"{}\" fill=\"#de2d26\" fill-opacity=\"0.75\" stroke=\"#a50f15\" \
             stroke-width=\"0.8\"/>",
            view.multipolygon(a)
        );
    }
    for (id, lat, lon) in sources {
        let (x, y) = view.xy(*lon, *lat);
        let _ = write!(
            svg,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"#08519c\" stroke=\"#fff\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" stroke=\"#fff\" stroke-width=\"2.5\" \
             paint-order=\"stroke\">{}</text>",
            x + 6.0,
            y - 4.0,
            escape(id)
        );
    }
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
    use super::*;

    #[test]
    fn quantile_breaks_are_increasing_upper_bounds() {
        let b = quantile_breaks((1..=10).map(f64::from).chain([0.0, -1.0]));
        assert_eq!(b, vec![2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(class_of(1.0, &b), 0);
        assert_eq!(class_of(4.5, &b), 2);
        assert_eq!(class_of(10.0, &b), 4);
        // Repeated values collapse into fewer classes, coloured by the darkest steps.
        let b = quantile_breaks([3.0; 8]);
        assert_eq!(b, vec![3.0]);
        assert_eq!(colour(&REDS, class_of(3.0, &b), b.len()), REDS[4]);
        assert!(quantile_breaks([0.0, 0.0]).is_empty());
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
}
