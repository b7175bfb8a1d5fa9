//! The report page: headline figures with their week-over-week change, heatmaps, the top gaps,
//! compliance and the response rule, as one HTML document with its figures inlined.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use base64::Engine as _;
use geo::{ChamberlainDuquetteArea, Contains, Point, Rect};
use h3o::{CellIndex, Resolution};
use serde_json::json;

use super::svg::{self, Base, Heatmap, View, escape};
use super::week::{self, Figures, Layer, Setting, TOP_GAPS, WeekData, layers, nearest_checkpoint};

/// An `<img>` of an SVG document, inlined as a `data:` URI.
fn img(svg: &str, alt: &str, class: &str) -> String {
    format!(
        "<img class=\"{class}\" alt=\"{}\" src=\"data:image/svg+xml;base64,{}\">",
        escape(alt),
        base64::engine::general_purpose::STANDARD.encode(svg)
    )
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{:.1} %", v * 100.0))
}

const STYLE: &str = r"
body{font-family:sans-serif;margin:24px;color:#222;font-size:15px}
h1{font-size:26px;margin:0 0 4px} h2{font-size:21px;border-bottom:2px solid #ccc;margin-top:32px}
h3{font-size:17px;margin:18px 0 6px} .meta{color:#555}
table{border-collapse:collapse;margin:6px 0 12px} th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f0f0f0} td.l,th.l{text-align:left} .bad{color:#a50f15;font-weight:bold} .good{color:#237b3c}
.maps{display:grid;grid-template-columns:repeat(5,minmax(0,1fr));gap:8px;max-width:1800px} .maps figure{margin:0} .map{width:100%;height:auto;border:1px solid #ddd}
.wide{max-width:100%;height:auto;border:1px solid #ddd} figcaption{font-size:13px;color:#555}
.miss{background:#fcbba1;color:#a50f15} .ok{background:#e5f5e0}
@page{size:A4 landscape;margin:12mm}
@media print{body{margin:0} h2{break-before:page} #headline{break-before:auto}
h1,h2,h3,.meta{break-after:avoid} figure,.maps,tr{break-inside:avoid}
.wide{max-height:130mm;width:auto}}
";

/// The whole page.
pub(crate) fn page(ctx: &Setting, this: &WeekData, before: Option<&WeekData>) -> String {
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
    heatmaps(&mut h, ctx, this);
    gaps(&mut h, ctx, this);
    compliance(&mut h, this);
    response(&mut h, ctx, this, &now);
    h.push_str(
        "<h2 id=\"method\">How the figures are made</h2><p>Patrol presence (dosage) is the time \
         between consecutive trusted fixes of a unit, spread over the H3 cells between them; \
         fixes further apart than the gap cap count as no data. A gap is a cell and window \
         whose share of the week's incidents exceeds its share of patrol presence; the \
         recommended visits bring presence up to the incident share in visits of 10 to 15 \
         minutes. Checkpoints count as visited when a unit stays within their radius for their \
         dwell time in their night window. The response rule asks that every place be reached \
         within 30 km and 30 minutes of driving on the road network.</p></body></html>",
    );
    h
}

fn headline(h: &mut String, now: &Figures, prev: Option<&Figures>) {
    h.push_str(
        "<h2 id=\"headline\">Headline figures</h2><table><tr><th class=\"l\">Figure</th>\
         <th>This week</th><th>Week before</th><th>Change</th></tr>",
    );
    let count = |v: f64| format!("{v:.0}");
    let hours = |v: f64| format!("{v:.1} h");
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
        row_share(
            "on_patrol_share",
            "Rostered patrols out in their zone",
            now.on_patrol_share,
            prev.and_then(|p| p.on_patrol_share),
            true,
        ),
        row_num(
            "cut_short",
            "Patrols cut short",
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
    let points = |v: f64| format!("{v:.1} pt");
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
         <table><tr><th>#</th><th class=\"l\">Beat</th><th class=\"l\">Near</th>\
         <th class=\"l\">Window</th><th>Incidents</th><th>Incident share</th>\
         <th>Presence now (min/week)</th><th>Extra (min/week)</th><th class=\"l\">Visits</th></tr>",
    );
    for r in w.gaps.iter().take(TOP_GAPS) {
        let near = nearest_checkpoint(&ctx.checkpoints, r.lat, r.lon).map_or_else(
            || "—".into(),
            |(name, d)| format!("{} ({:.0} m)", escape(&name), d),
        );
        let window = r.window.as_deref().unwrap_or_default();
        let _ = write!(
            h,
            "<tr data-gap-cell=\"{cell}\"><td>{rank}</td><td class=\"l\">{beat}</td>\
             <td class=\"l\">{near}</td><td class=\"l\">{wname} {wtime}</td><td>{n:.0}</td>\
             <td>{share}</td><td>{dose:.0}</td><td>{extra:.0}</td>\
             <td class=\"l\">{visits:.0} × {each:.0} min</td></tr>",
            cell = r.cell,
            rank = r.rank,
            beat = escape(r.beat.as_deref().unwrap_or("—")),
            wname = escape(window),
            wtime = times.get(window).map_or("", String::as_str),
            n = r.incidents,
            share = pct(Some(r.incident_share)),
            dose = r.dosage_minutes_week,
            extra = r.extra_minutes_week,
            visits = r.visits_week,
            each = r.visit_minutes,
        );
    }
    if w.gaps.is_empty() {
        h.push_str("<tr><td colspan=\"9\" class=\"l\">No cell-window has more incident share than patrol presence.</td></tr>");
    }
    h.push_str("</table>");
}

fn compliance(h: &mut String, w: &WeekData) {
    h.push_str(
        "<h2 id=\"compliance\">Compliance with the roster</h2><h3>Checkpoints, night by night</h3>",
    );
    // Checkpoint -> date -> visited.
    let mut grid: BTreeMap<(String, String), BTreeMap<String, bool>> = BTreeMap::new();
    let mut dates = BTreeSet::new();
    for r in &w.checkpoints {
        dates.insert(r.date.clone());
        grid.entry((r.checkpoint.clone(), r.name.clone()))
            .or_default()
            .insert(r.date.clone(), r.visited);
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
            let _ = match nights.get(d) {
                Some(true) => write!(h, "<td class=\"ok\">✓</td>"),
                Some(false) => write!(h, "<td class=\"miss\">missed</td>"),
                None => write!(h, "<td></td>"),
            };
        }
        let missed = nights.values().filter(|v| !**v).count();
        let _ = write!(h, "<td>{missed}</td></tr>");
    }
    h.push_str("</table>");

    h.push_str(
        "<h3>Patrol windows and levels per zone</h3><table data-table=\"zones\"><tr>\
         <th class=\"l\">Zone</th><th>Rostered patrols</th><th>Out in zone</th>\
         <th>Mean share of shift in zone</th><th>Cut short</th><th>Windows at level</th></tr>",
    );
    #[derive(Default)]
    struct Zone {
        patrols: usize,
        on: usize,
        share: f64,
        short: usize,
        windows: usize,
        ok: usize,
    }
    let mut zones: BTreeMap<String, Zone> = BTreeMap::new();
    for r in &w.patrols {
        let z = zones.entry(r.zone.clone()).or_default();
        z.patrols += 1;
        z.on += usize::from(r.on_patrol);
        z.share += r.in_zone_share.unwrap_or_default();
        z.short += usize::from(r.cut_short);
    }
    for r in &w.force {
        let z = zones.entry(r.zone.clone()).or_default();
        z.windows += 1;
        z.ok += usize::from(r.ok);
    }
    for (id, z) in &zones {
        let share = |n: usize, of: usize| pct((of > 0).then(|| n as f64 / of as f64));
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td{}>{}</td>\
             <td>{} of {} ({})</td></tr>",
            escape(id),
            z.patrols,
            share(z.on, z.patrols),
            pct((z.patrols > 0).then(|| z.share / z.patrols as f64)),
            if z.short > 0 { " class=\"bad\"" } else { "" },
            z.short,
            z.ok,
            z.windows,
            share(z.ok, z.windows),
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
         of the week (local time).</figcaption></figure>",
        img(
            &svg::week_grid(&w.week_hours),
            "Hourly dynamic coverage",
            "wide"
        )
    );
}
