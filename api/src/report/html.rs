//! The report page: headline figures with their week-over-week change, heatmaps, the top gaps,
//! compliance and the response rule, as one HTML document with its figures inlined.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use base64::Engine as _;
use geo::{ChamberlainDuquetteArea, Contains, Point, Rect};
use h3o::{CellIndex, Resolution};
use serde_json::json;

use super::rows::ForecastCheck;
use super::svg::{self, Base, Heatmap, View, escape};
use super::week::{self, Figures, Layer, Setting, TOP_GAPS, WeekData, layers, nearest_checkpoint};
use analytics::compliance::{CheckpointStatus, DataStatus};

/// An `<img>` of an SVG document, inlined as a `data:` URI.
fn img(svg: &str, alt: &str, class: &str) -> String {
    format!(
        "<img class=\"{class}\" alt=\"{}\" src=\"data:image/svg+xml;base64,{}\">",
        escape(alt),
        base64::engine::general_purpose::STANDARD.encode(svg)
    )
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{} %", fixed(v * 100.0, 1)))
}

/// `v` with `decimals` decimals, a value that rounds to zero written without a sign (never
/// "-0.0").
fn fixed(v: f64, decimals: usize) -> String {
    let text = format!("{v:.decimals$}");
    match text.strip_prefix('-') {
        Some(unsigned) if unsigned.chars().all(|c| c == '0' || c == '.') => unsigned.to_owned(),
        _ => text,
    }
}

const STYLE: &str = r"
body{font-family:sans-serif;margin:24px;color:#222;font-size:15px}
h1{font-size:26px;margin:0 0 4px} h2{font-size:21px;border-bottom:2px solid #ccc;margin-top:32px}
h3{font-size:17px;margin:18px 0 6px} .meta{color:#555}
table{border-collapse:collapse;margin:6px 0 12px} th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f0f0f0} td.l,th.l{text-align:left} .bad{color:#a50f15;font-weight:bold} .good{color:#237b3c}
.maps{display:grid;grid-template-columns:repeat(5,minmax(0,1fr));gap:8px;max-width:1800px} .maps figure{margin:0} .map{width:100%;height:auto;border:1px solid #ddd}
.wide{max-width:100%;height:auto;border:1px solid #ddd} figcaption{font-size:13px;color:#555}
.miss{background:#fcbba1;color:#a50f15} .ok{background:#e5f5e0} .off{color:#777}
.nodata{background:#eee;color:#555} .warn{border-left:4px solid #d94801;padding:4px 10px;background:#fff5eb}
@page{size:A4 landscape;margin:12mm}
@media print{body{margin:0} h2{break-before:page} #headline{break-before:auto}
h1,h2,h3,.meta{break-after:avoid} figure,.maps,tr{break-inside:avoid}
.wide{max-height:130mm;width:auto} table.gaps{font-size:9px}}
";

/// The whole page.
pub(crate) fn page(
    ctx: &Setting,
    this: &WeekData,
    before: Option<&WeekData>,
    check: &(Vec<ForecastCheck>, Vec<String>),
) -> String {
    let now = Figures::of(this);
    let prev = before.map(Figures::of);
    let pweek = this.week.previous().label();
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{name} — weekly report {week}</title><style>{STYLE}</style>\
         <script type=\"application/json\" id=\"figures\">{figures}</script></head><body>\
         <h1>{name}: weekly intelligence report, {week}</h1>\
         <p class=\"meta\">Local week {from} to {to} (Monday to Sunday), compared with {pweek}{missing}. \
         Made {made} from the patrol store and the jurisdiction files; every figure is an \
         output of <code>patrol analyze</code> for the same week.</p>",
        name = escape(&ctx.name),
        week = now.week,
        missing = if prev.is_none() {
            " (no figures for it: see the report's log)"
        } else {
            ""
        },
        from = this.week.monday,
        to = this.week.end() - chrono::Days::new(1),
        made = ctx.made.format("%Y-%m-%d %H:%M UTC"),
        figures = json!({"this": now, "before": prev}),
    );
    headline(&mut h, &now, prev.as_ref());
    completeness(&mut h, this, &now, prev.as_ref());
    heatmaps(&mut h, ctx, this);
    gaps(&mut h, ctx, this);
    forecasts(&mut h, check);
    compliance(&mut h, this);
    response(&mut h, ctx, this, &now);
    h.push_str(
        "<h2 id=\"method\">How the figures are made</h2><p>Patrol presence (dosage) is the time \
         between consecutive trusted fixes of a unit, spread over the H3 cells between them; \
         fixes further apart than the gap cap count as no data. A gap is a cell and window \
         whose share of the week's incidents exceeds its share of patrol presence; neighbouring \
         gap cells form patrol boxes, a box needs enough incidents to be a hot spot, and the \
         visits of 10 to 15 minutes recommended fit the window and the share of the rostered \
         minutes directed to hot spots, ranked by the forecast incidents they would meet. \
         Forecasts come from the method the backtest chose. Checkpoints count as visited when \
         a unit stays within their radius for their \
         dwell time in their night window; a night no unit of the checkpoint's station was \
         rostered, or none sent complete data, is not a miss. A rostered patrol is judged (out in \
         zone, cut short, force) only when the store has data over its whole shift and its unit \
         reported; the others are counted under Data completeness. The response rule asks that \
         every place be reached within 30 km and 30 minutes of driving on the road network.</p>\
         </body></html>",
    );
    h
}

fn headline(h: &mut String, now: &Figures, prev: Option<&Figures>) {
    h.push_str(
        "<h2 id=\"headline\">Headline figures</h2><table><tr><th class=\"l\">Figure</th>\
         <th>This week</th><th>Week before</th><th>Change</th></tr>",
    );
    let count = |v: f64| fixed(v, 0);
    let hours = |v: f64| format!("{} h", fixed(v, 1));
    let rows: Vec<Row<'_>> = vec![
        row_num(
            "incidents",
            "Incidents",
            now.incidents,
            prev.map(|p| p.incidents),
            count,
            false,
        ),
        row_num(
            "incidents_in_windows",
            "Incidents in patrol windows",
            now.incidents_in_windows,
            prev.map(|p| p.incidents_in_windows),
            count,
            false,
        ),
        row_num(
            "patrol_hours",
            "Patrol presence",
            now.patrol_hours,
            prev.map(|p| p.patrol_hours),
            hours,
            true,
        ),
        row_num(
            "patrol_hours_in_windows",
            "Patrol presence in windows",
            now.patrol_hours_in_windows,
            prev.map(|p| p.patrol_hours_in_windows),
            hours,
            true,
        ),
        row_num(
            "no_data_hours",
            "Time without data (gaps between fixes)",
            now.no_data_hours,
            prev.map(|p| p.no_data_hours),
            hours,
            false,
        ),
        row_num(
            "gaps",
            "Cell-windows with a patrol gap",
            now.gaps as f64,
            prev.map(|p| p.gaps as f64),
            count,
            false,
        ),
        row_share(
            "top_gaps_incident_share",
            "Incident share in the top 10 gaps",
            Some(now.top_gaps_incident_share),
            prev.map(|p| p.top_gaps_incident_share),
            false,
        ),
        row_num(
            "checkpoints_missed",
            "Checkpoint-nights missed",
            now.checkpoints_missed as f64,
            prev.map(|p| p.checkpoints_missed as f64),
            count,
            false,
        ),
        row_num(
            "patrols_without_data",
            "Rostered patrols without complete data (not judged)",
            (now.patrols - now.patrols_with_data) as f64,
            prev.map(|p| (p.patrols - p.patrols_with_data) as f64),
            count,
            false,
        ),
        row_share(
            "on_patrol_share",
            "Rostered patrols with data out in their zone",
            now.on_patrol_share,
            prev.and_then(|p| p.on_patrol_share),
            true,
        ),
        row_num(
            "cut_short",
            "Patrols with data cut short",
            now.cut_short as f64,
            prev.map(|p| p.cut_short as f64),
            count,
            false,
        ),
        row_num(
            "groups_under_two",
            "Patrols with fewer than two officers",
            now.groups_under_two as f64,
            prev.map(|p| p.groups_under_two as f64),
            count,
            false,
        ),
        row_share(
            "force_ok_share",
            "Zone-windows at their patrol level",
            now.force_ok_share,
            prev.and_then(|p| p.force_ok_share),
            true,
        ),
        row_share(
            "response_area_share",
            "Area within 30 km / 30 min of a station",
            now.response_area_share,
            prev.and_then(|p| p.response_area_share),
            true,
        ),
        row_share(
            "response_incident_share",
            "Incidents within 30 km / 30 min of a station",
            now.response_incident_share,
            prev.and_then(|p| p.response_incident_share),
            true,
        ),
        row_share(
            "dynamic_area_share",
            "Area within the rule from units on duty (mean hour)",
            now.dynamic_area_share,
            prev.and_then(|p| p.dynamic_area_share),
            true,
        ),
    ];
    for (key, label, a, b, change, up_is_good) in rows {
        let (class, change) = match change {
            None => ("", "—".to_owned()),
            Some((0.0, text)) => ("", text),
            Some((c, text)) if (c > 0.0) == up_is_good => ("good", text),
            Some((_, text)) => ("bad", text),
        };
        let _ = write!(
            h,
            "<tr data-figure=\"{key}\"><td class=\"l\">{label}</td><td>{a}</td><td>{b}</td>\
             <td class=\"{class}\">{change}</td></tr>"
        );
    }
    h.push_str("</table>");
}

/// A headline row: key, label, this week, the week before, and the change (its value as
/// shown, rounded, and its text), `None` without a week before.
type Row<'a> = (
    &'a str,
    &'a str,
    String,
    String,
    Option<(f64, String)>,
    bool,
);

/// The change from `prev` to `now` as `show` writes it, with a sign; its value is that of the
/// text, so a change that rounds to nothing is neither good nor bad.
fn change(now: f64, prev: f64, show: impl Fn(f64) -> String) -> (f64, String) {
    let text = show(now - prev);
    let value: f64 = text
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap_or(now - prev);
    if value == 0.0 {
        (0.0, format!("±{}", show(0.0)))
    } else {
        (
            value,
            format!("{}{text}", if value > 0.0 { "+" } else { "" }),
        )
    }
}

fn row_num<'a>(
    key: &'a str,
    label: &'a str,
    now: f64,
    prev: Option<f64>,
    show: impl Fn(f64) -> String,
    up_is_good: bool,
) -> Row<'a> {
    (
        key,
        label,
        show(now),
        prev.map_or_else(|| "—".into(), &show),
        prev.map(|p| change(now, p, &show)),
        up_is_good,
    )
}

fn row_share<'a>(
    key: &'a str,
    label: &'a str,
    now: Option<f64>,
    prev: Option<f64>,
    up_is_good: bool,
) -> Row<'a> {
    let points = |v: f64| format!("{} pt", fixed(v, 1));
    let delta = now
        .zip(prev)
        .map(|(a, b)| change(a * 100.0, b * 100.0, points));
    (key, label, pct(now), pct(prev), delta, up_is_good)
}

/// The coarsest H3 resolution, no finer than `finest`, whose hexagons are at least five
/// pixels across in `view`.
fn display_res(view: &View, finest: Resolution) -> Resolution {
    let metres_per_px = view.metres_per_px();
    let mut res = finest;
    while res.edge_length_m() * 2.0 < 5.0 * metres_per_px {
        match res.pred() {
            Some(coarser) => res = coarser,
            None => break,
        }
    }
    res
}

/// The busy core: the extent of the beats whose incident density is above the jurisdiction's,
/// when those beats cover less than a quarter of it (else the county view says it all).
fn core_extent(ctx: &Setting, points: &[(f64, f64, f64)]) -> Option<Rect<f64>> {
    let area = |mp: &geo::MultiPolygon<f64>| mp.chamberlain_duquette_unsigned_area();
    let total_area = area(&ctx.outline);
    let total: f64 = points.iter().map(|p| p.2).sum();
    if total <= 0.0 || total_area <= 0.0 {
        return None;
    }
    let dense: Vec<&geo::MultiPolygon<f64>> = ctx
        .beats
        .iter()
        .filter(|(_, b)| {
            let n: f64 = points
                .iter()
                .filter(|(lat, lon, _)| b.contains(&Point::new(*lon, *lat)))
                .map(|p| p.2)
                .sum();
            n / area(b) > total / total_area
        })
        .map(|(_, b)| b)
        .collect();
    let dense_area: f64 = dense.iter().map(|b| area(b)).sum();
    (!dense.is_empty() && dense_area < total_area / 4.0)
        .then(|| svg::extent(dense))
        .flatten()
}

fn heatmaps(h: &mut String, ctx: &Setting, w: &WeekData) {
    h.push_str(
        "<h2 id=\"heatmaps\">Heatmaps: incidents, patrol presence and gaps</h2><p>Each row \
         shares one colour scale, so windows compare directly: quantile classes (about as many \
         cells in each), or where ties among the week's values leave quantiles fewer than \
         three classes, quantiles of the distinct values (equal intervals when there are only \
         two); each legend says which. Hexagons are H3 cells, merged into \
         larger cells where the map is too small to show them. Roads (major ones thicker) and \
         place names come from the jurisdiction's road file.</p>",
    );
    let base = Base {
        outline: &ctx.outline,
        beats: &ctx.beats,
        map: &ctx.basemap,
    };
    let Some(county) = svg::extent([&ctx.outline]) else {
        return;
    };
    let incident_points: Vec<(f64, f64, f64)> = w
        .hotspots
        .iter()
        .filter(|r| r.slot_kind == "all")
        .map(|r| (r.lat, r.lon, r.incidents))
        .collect();
    let mut views = vec![("county", "the county", county)];
    if let Some(core) = core_extent(ctx, &incident_points) {
        views.push(("core", "the busiest beats", core));
    }
    let finest = w
        .dosage
        .iter()
        .filter_map(|r| r.cell)
        .chain(w.gaps.iter().map(|r| r.cell))
        .find_map(week::cell)
        .map_or(Resolution::Nine, CellIndex::resolution);
    let mut windows: Vec<(Option<String>, String)> = vec![(None, "all hours".into())];
    windows.extend(ctx.windows.iter().map(|win| {
        (
            Some(win.name.clone()),
            format!(
                "{} {}–{}",
                win.name,
                win.start.format("%H:%M"),
                win.end.format("%H:%M")
            ),
        )
    }));
    let titles = [
        (
            "incidents",
            "Incidents",
            svg::REDS,
            "incidents per cell per week",
        ),
        (
            "dosage",
            "Patrol presence",
            svg::BLUES,
            "patrol minutes per cell per week",
        ),
        (
            "gaps",
            "Gaps (incident share − presence share)",
            svg::PURPLES,
            "gap: incident share − dosage share, % points",
        ),
    ];
    for (key, what, view_extent) in views {
        let view = View::new(view_extent, 340.0);
        let res = display_res(&view, finest);
        let layers = layers(w, res);
        for ((id, title, palette, measure), layer) in titles.iter().zip(&layers) {
            let _ = write!(
                h,
                "<h3>{title} over {what} <small>(cells of about {area} km²)</small></h3>\
                 <div class=\"maps\" data-layer=\"{id}\" data-view=\"{key}\">",
                area = svg::short(res.area_km2()),
            );
            let classes = svg::classes(layer.values().flat_map(|m| m.values().copied()));
            for (window, label) in &windows {
                let cells = cells_of(layer, window);
                let map = svg::heatmap(
                    &Heatmap {
                        view,
                        title: label,
                        cells: &cells,
                        classes: &classes,
                        palette,
                        measure,
                    },
                    &base,
                );
                let _ = write!(
                    h,
                    "<figure>{}</figure>",
                    img(&map, &format!("{title}, {label}, {what}"), "map")
                );
            }
            h.push_str("</div>");
        }
    }
}

fn cells_of(layer: &Layer, window: &Option<String>) -> Vec<(CellIndex, f64)> {
    let mut cells: Vec<(CellIndex, f64)> = layer
        .get(window)
        .map(|m| m.iter().map(|(c, v)| (*c, *v)).collect())
        .unwrap_or_default();
    cells.sort_by_key(|(c, _)| *c);
    cells
}

/// Farthest a named street, place or checkpoint may be to name where a gap is: a walk of
/// about ten minutes.
const NEAR_M: f64 = 800.0;

fn gaps(h: &mut String, ctx: &Setting, w: &WeekData) {
    let times: HashMap<&str, String> = ctx
        .windows
        .iter()
        .map(|win| {
            (
                win.name.as_str(),
                format!("{}–{}", win.start.format("%H:%M"), win.end.format("%H:%M")),
            )
        })
        .collect();
    h.push_str(
        "<h2 id=\"gaps\">Next week's key patrol times and places: the top 10 gaps</h2>\
         <p>Ranked by the incidents the added visits would meet next week: the \
         cell's forecast incidents in the window × the added minutes / the window's minutes. \
         Neighbouring cells of one window form a patrol box (B1, B2, ...); a box with fewer \
         incidents than a hot spot needs and no forecast hot spot is not listed. The minutes \
         asked are what the incident share alone asks; the minutes recommended fit the window, \
         one visit an hour, and the share of the rostered patrol minutes the station directs \
         to hot spots: the <em>limit</em> column names the one that cut it.</p>\
         <table class=\"gaps\"><tr><th>#</th><th class=\"l\">Box</th><th class=\"l\">Beat</th>\
         <th class=\"l\">Near</th><th class=\"l\">Window</th><th>Incidents (box)</th>\
         <th>Forecast next week</th><th>Presence now (min/week)</th><th>Asked (min/week)</th>\
         <th>Recommended (min/week)</th><th class=\"l\">Visits</th><th class=\"l\">Limit</th>\
         <th>Incidents met/week</th></tr>",
    );
    for r in w.gaps.iter().take(TOP_GAPS) {
        let near = ctx
            .basemap
            .nearest_name(r.lat, r.lon, NEAR_M)
            .or_else(|| {
                nearest_checkpoint(&ctx.checkpoints, r.lat, r.lon).filter(|(_, d)| *d <= NEAR_M)
            })
            .map_or_else(
                || "—".into(),
                |(name, d)| format!("{} ({:.0} m)", escape(&name), d),
            );
        let window = r.window.as_deref().unwrap_or_default();
        let visits = if r.visits_week > 0.0 {
            format!("{:.0} × {:.0} min", r.visits_week, r.visit_minutes)
        } else {
            "none left".into()
        };
        let _ = write!(
            h,
            "<tr data-gap-cell=\"{cell}\"><td>{rank}</td><td class=\"l\">{pbox} ({cells} cells)</td>\
             <td class=\"l\">{beat}</td><td class=\"l\">{near}</td>\
             <td class=\"l\">{wname} {wtime}</td><td>{n:.0} ({bn:.0})</td><td>{forecast:.1}</td>\
             <td>{dose:.0}</td><td>{asked:.0}</td><td>{extra:.0}</td><td class=\"l\">{visits}</td>\
             <td class=\"l\">{limit}</td><td>{met:.2}</td></tr>",
            cell = r.cell,
            rank = r.rank,
            pbox = escape(&r.patrol_box),
            cells = r.box_cells,
            beat = escape(r.beat.as_deref().unwrap_or("—")),
            wname = escape(window),
            wtime = times.get(window).map_or("", String::as_str),
            n = r.incidents,
            bn = r.box_incidents,
            forecast = r.forecast_week,
            dose = r.dosage_minutes_week,
            asked = r.asked_minutes_week,
            extra = r.extra_minutes_week,
            limit = r.cap.as_deref().map_or("—", limit_name),
            met = r.prevented_week,
        );
    }
    if w.gaps.is_empty() {
        h.push_str(
            "<tr><td colspan=\"13\" class=\"l\">No patrol box has more incident share than \
             patrol presence and enough incidents to be a hot spot.</td></tr>",
        );
    }
    h.push_str("</table>");
}

/// The backtest of the weeks up to this one: the method chosen per slot against the naive
/// baseline.
fn forecasts(h: &mut String, (rows, notes): &(Vec<ForecastCheck>, Vec<String>)) {
    let _ = write!(
        h,
        "<h2 id=\"forecasts\">How well the hot-spot forecasts did</h2><p>Each of the last {} \
         weeks was forecast from the weeks before it by every method, and the top 5 % of the \
         county's cells scored on the week's incidents (PAI: share of the incidents over share \
         of the area; the naive forecast counts last weeks' incidents per cell). The chosen \
         method draws next week's hot spots and ranks the gaps.</p>\
         <table data-table=\"forecasts\"><tr><th class=\"l\">Slot</th>\
         <th class=\"l\">Chosen method</th><th>Weeks scored</th><th>Mean PAI</th>\
         <th>Naive mean PAI</th><th>Weeks above naive</th></tr>",
        week::CHECK_WEEKS
    );
    for c in rows.iter().filter(|c| c.chosen) {
        let naive = rows
            .iter()
            .find(|n| n.slot == c.slot && n.method == "naive")
            .and_then(|n| n.mean_pai);
        let show = |v: Option<f64>| v.map_or_else(|| "undefined".into(), |v| fixed(v, 2));
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{:.0}</td><td>{}</td>\
             <td>{}</td><td>{:.0} of {:.0}</td></tr>",
            escape(&c.slot),
            escape(&c.method),
            c.weeks,
            show(c.mean_pai),
            show(naive),
            c.beats_naive,
            c.weeks,
        );
    }
    if !rows.iter().any(|c| c.chosen) {
        h.push_str(
            "<tr><td colspan=\"6\" class=\"l\">No week could be scored: the incidents do not \
             reach far enough back.</td></tr>",
        );
    }
    h.push_str("</table>");
    for n in notes {
        let _ = write!(h, "<p class=\"meta\">{}</p>", escape(n));
    }
}

/// What a gap's `cap` means, in the table's words.
fn limit_name(cap: &str) -> &'static str {
    match cap {
        "window" => "window full",
        "visits" => "one visit an hour",
        "force" => "directed minutes used up",
        _ => "other",
    }
}

/// What the store lacks for the week: days without data, units that sent nothing, shifts
/// after the data ends; the compliance rates leave all of these out. A week before with
/// patrols lacking data gets a line too, since the changes compare with it.
fn completeness(h: &mut String, w: &WeekData, now: &Figures, prev: Option<&Figures>) {
    h.push_str("<h2 id=\"data\">Data completeness</h2>");
    if let Some(p) = prev.filter(|p| p.patrols_with_data < p.patrols) {
        let _ = write!(
            h,
            "<p class=\"warn\">The week before, {} of {} rostered patrols lacked complete data{}; \
             the changes above compare with what data it has.</p>",
            p.patrols - p.patrols_with_data,
            p.patrols,
            if p.days_without_data.is_empty() {
                String::new()
            } else {
                format!(
                    " (days with no data at all: {})",
                    escape(&p.days_without_data.join(", "))
                )
            },
        );
    }
    let without = now.patrols - now.patrols_with_data;
    if without == 0 {
        h.push_str(
            "<p>Every rostered patrol this week has data from its unit over its whole shift.</p>",
        );
        return;
    }
    let _ = write!(
        h,
        "<p class=\"warn\" data-warning=\"incomplete\"><b>The data is incomplete:</b> \
         {without} of {patrols} rostered patrols lack complete data and are left out of the \
         compliance rates (out in zone, cut short, force), which are over the other \
         {with_data}. {store} had no data from any unit (a feed outage), {unit} no data from \
         their own unit, {partial} an hour without data from any unit, and {after} run past \
         the end of the data. Presence, gaps and the units on duty count the time without \
         data as no patrol.</p>",
        patrols = now.patrols,
        with_data = now.patrols_with_data,
        store = now.no_store_data,
        unit = now.no_unit_data,
        partial = now.partial_data,
        after = now.after_data_end,
    );
    if !now.days_without_data.is_empty() {
        let _ = write!(
            h,
            "<p>Days with no data at all: <span data-days-without-data>{}</span>.</p>",
            escape(&now.days_without_data.join(", "))
        );
    }
    // Per date: (rostered, then the count per status that is not complete).
    let statuses = [
        (DataStatus::NoStoreData, "No data from any unit"),
        (DataStatus::NoUnitData, "No data from the unit"),
        (DataStatus::Partial, "An hour without data"),
        (DataStatus::AfterDataEnd, "After the end of the data"),
    ];
    let mut days: BTreeMap<&str, (usize, [usize; 4])> = BTreeMap::new();
    for r in &w.patrols {
        let day = days.entry(r.date.as_str()).or_default();
        day.0 += 1;
        if let Some(k) = statuses.iter().position(|(s, _)| r.data == s.name()) {
            day.1[k] += 1;
        }
    }
    h.push_str(
        "<table data-table=\"data-days\"><tr><th class=\"l\">Date</th><th>Rostered patrols</th>",
    );
    for (_, label) in &statuses {
        let _ = write!(h, "<th>{label}</th>");
    }
    h.push_str("</tr>");
    for (date, (rostered, counts)) in days.iter().filter(|(_, (_, c))| c.iter().any(|n| *n > 0)) {
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td>{rostered}</td>",
            escape(date)
        );
        for n in counts {
            let _ = write!(h, "<td>{n}</td>");
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
    // Units that sent nothing through a shift while others reported: a finding of its own.
    let mut silent: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in w
        .patrols
        .iter()
        .filter(|r| r.data == DataStatus::NoUnitData.name())
    {
        silent
            .entry(r.unit.as_str())
            .or_default()
            .push(format!("{} {}", r.date, r.window));
    }
    if !silent.is_empty() {
        h.push_str(
            "<h3>Units that sent no data during a shift</h3><p>Other units reported meanwhile, \
             so the device was off or the unit did not go out; these are not counted as cut \
             short.</p><table data-table=\"silent-units\"><tr><th class=\"l\">Unit</th>\
             <th>Shifts</th><th class=\"l\">When</th></tr>",
        );
        for (unit, shifts) in &silent {
            let _ = write!(
                h,
                "<tr><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
                escape(unit),
                shifts.len(),
                escape(&shifts.join(", "))
            );
        }
        h.push_str("</table>");
    }
}

fn compliance(h: &mut String, w: &WeekData) {
    h.push_str(
        "<h2 id=\"compliance\">Compliance with the roster</h2><h3>Checkpoints, night by night</h3>",
    );
    // Checkpoint -> date -> status.
    let mut grid: BTreeMap<(String, String), BTreeMap<String, &str>> = BTreeMap::new();
    let mut dates = BTreeSet::new();
    for r in &w.checkpoints {
        dates.insert(r.date.clone());
        grid.entry((r.checkpoint.clone(), r.name.clone()))
            .or_default()
            .insert(r.date.clone(), r.status.as_str());
    }
    h.push_str("<table data-table=\"checkpoints\"><tr><th class=\"l\">Checkpoint</th>");
    for d in &dates {
        let _ = write!(h, "<th>{}</th>", escape(d));
    }
    h.push_str("<th>Missed</th></tr>");
    for ((id, name), nights) in &grid {
        let _ = write!(
            h,
            "<tr><td class=\"l\">{} {}</td>",
            escape(id),
            escape(name)
        );
        for d in &dates {
            let status = nights.get(d).copied().unwrap_or_default();
            let _ = if status == CheckpointStatus::Visited.name() {
                write!(h, "<td class=\"ok\">✓</td>")
            } else if status == CheckpointStatus::Missed.name() {
                write!(h, "<td class=\"miss\">missed</td>")
            } else if status == CheckpointStatus::NotRostered.name() {
                write!(h, "<td class=\"off\">not rostered</td>")
            } else if status == CheckpointStatus::NoData.name() {
                write!(h, "<td class=\"nodata\">no data</td>")
            } else {
                write!(h, "<td></td>")
            };
        }
        let missed = nights
            .values()
            .filter(|v| **v == CheckpointStatus::Missed.name())
            .count();
        let _ = write!(h, "<td>{missed}</td></tr>");
    }
    h.push_str(
        "</table><p>Only nights a unit of the checkpoint's station was rostered, with data from \
         it, can be missed: <i>not rostered</i> nights had no such unit on duty, <i>no data</i> \
         nights had no complete data from any unit rostered for them.</p>",
    );

    h.push_str(
        "<h3>Patrol windows and levels per zone</h3><p>Out in zone, the share of shift in zone \
         and cut short are over the patrols with complete data; the others are counted apart \
         (see Data completeness).</p><table data-table=\"zones\"><tr>\
         <th class=\"l\">Zone</th><th>Rostered patrols</th><th>Without data</th>\
         <th>Out in zone</th><th>Mean share of shift in zone</th><th>Cut short</th>\
         <th>Windows at level</th></tr>",
    );
    #[derive(Default)]
    struct Zone {
        patrols: usize,
        with_data: usize,
        on: usize,
        share: f64,
        short: usize,
        windows: usize,
        told: usize,
        ok: usize,
    }
    let mut zones: BTreeMap<String, Zone> = BTreeMap::new();
    for r in &w.patrols {
        let z = zones.entry(r.zone.clone()).or_default();
        z.patrols += 1;
        if r.complete() {
            z.with_data += 1;
            z.on += usize::from(r.on_patrol == Some(true));
            z.share += r.in_zone_share.unwrap_or_default();
            z.short += usize::from(r.cut_short == Some(true));
        }
    }
    for r in &w.force {
        let z = zones.entry(r.zone.clone()).or_default();
        z.windows += 1;
        z.told += usize::from(r.ok.is_some());
        z.ok += usize::from(r.ok == Some(true));
    }
    for (id, z) in &zones {
        let share = |n: usize, of: usize| pct((of > 0).then(|| n as f64 / of as f64));
        let open = z.windows - z.told;
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td{}>{}</td><td>{} of {} ({}){}</td></tr>",
            escape(id),
            z.patrols,
            z.patrols - z.with_data,
            share(z.on, z.with_data),
            pct((z.with_data > 0).then(|| z.share / z.with_data as f64)),
            if z.short > 0 { " class=\"bad\"" } else { "" },
            z.short,
            z.ok,
            z.told,
            share(z.ok, z.told),
            if open > 0 {
                format!("; {open} without data")
            } else {
                String::new()
            },
        );
    }
    h.push_str("</table><h3>Patrols with fewer than two officers</h3>");
    // Per unit: its rostered crew, how many patrols went under two, and where and when.
    /// Patrols under two of one unit: how many, in which zones and windows.
    #[derive(Default)]
    struct Under {
        patrols: usize,
        zones: BTreeSet<String>,
        windows: BTreeSet<String>,
    }
    let mut units: BTreeMap<(String, String, String), Under> = BTreeMap::new();
    for r in w.patrols.iter().filter(|r| !r.group_ok) {
        let key = (r.unit.clone(), r.kind.clone(), r.crew.to_string());
        let e = units.entry(key).or_default();
        e.patrols += 1;
        e.zones.insert(r.zone.clone());
        e.windows.insert(r.window.clone());
    }
    if units.is_empty() {
        h.push_str("<p>None: every bike and foot patrol went out in a group of at least two.</p>");
        return;
    }
    h.push_str(
        "<table data-table=\"groups\"><tr><th class=\"l\">Unit</th><th class=\"l\">Kind</th>\
         <th>Crew</th><th>Patrols</th><th class=\"l\">Zones</th><th class=\"l\">Windows</th></tr>",
    );
    let join = |s: &BTreeSet<String>| escape(&s.iter().cloned().collect::<Vec<_>>().join(", "));
    for ((unit, kind, crew), u) in &units {
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td>\
             <td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
            escape(unit),
            escape(kind),
            escape(crew),
            u.patrols,
            join(&u.zones),
            join(&u.windows),
        );
    }
    h.push_str("</table>");
}

fn response(h: &mut String, ctx: &Setting, w: &WeekData, now: &Figures) {
    let s = &w.response;
    let inc = &s.incidents;
    let _ = write!(
        h,
        "<h2 id=\"response\">The 30 km / 30 minute rule</h2><p>From the stations, \
         <b>{area}</b> of the area ({passing} of {cells} cells) and <b>{incidents}</b> of the \
         week's incidents lie within 30 km and 30 minutes of driving; {failing} failing \
         areas, the worst place {worst} minutes away. From the units actually on duty, the mean \
         hour covers {dynamic} of the area; of {received} incidents, {reached} had a unit \
         available and {pass} of those were within the rule.</p>",
        area = pct(now.response_area_share),
        passing = s.passing_cells,
        cells = s.cells,
        incidents = pct(now.response_incident_share),
        failing = now.failing_areas,
        worst = format_args!("{:.1}", s.worst_time_min),
        dynamic = pct(now.dynamic_area_share),
        received = inc.received,
        reached = inc.with_unit_available,
        pass = pct(inc.passing_share),
    );
    if let Some(county) = svg::extent([&ctx.outline]) {
        let base = Base {
            outline: &ctx.outline,
            beats: &ctx.beats,
            map: &ctx.basemap,
        };
        let map = svg::failing_map(&View::new(county, 700.0), &base, &w.failing, &w.sources);
        let _ = write!(
            h,
            "<figure>{}<figcaption>Failing areas (red) and the stations the rule is measured \
             from.</figcaption></figure>",
            img(&map, "Areas failing the 30/30 rule", "wide")
        );
    }
    let _ = write!(
        h,
        "<figure>{}<figcaption>Share of the area within the rule from units on duty, by hour \
         of the week (local time); hours left blank had no data from any unit on a day without \
         data.</figcaption></figure>",
        img(
            &svg::week_grid(&w.week_hours),
            "Hourly dynamic coverage",
            "wide"
        )
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_that_rounds_to_zero_has_no_sign() {
        assert_eq!(fixed(-0.0, 1), "0.0");
        assert_eq!(fixed(-0.04, 1), "0.0");
        assert_eq!(fixed(-0.4, 0), "0");
        assert_eq!(fixed(-0.05, 1), "-0.1");
        assert_eq!(pct(Some(-0.0)), "0.0 %");
    }
}
