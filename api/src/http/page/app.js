// The command-room map. Plain JavaScript, no libraries: the API gives GeoJSON layers and a
// Server-Sent Events stream; this draws them on a canvas with a Web Mercator projection.
"use strict";

(function () {
  // ---- token: from the URL fragment (#token=...), kept for the tab's session only ----
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) {
    sessionStorage.setItem("patrol-token", fromHash);
    history.replaceState(null, "", location.pathname);
  }
  let token = sessionStorage.getItem("patrol-token") || "";

  const $ = (id) => document.getElementById(id);
  const canvas = $("map");
  const ctx = canvas.getContext("2d");

  const state = {
    layers: [],          // base features from /api/fences
    units: new Map(),    // unit id -> {data, x, y, fromX, fromY, t0}
    selected: null,
    track: null,         // {unit, coords, times}
    replayIndex: -1,
    analysis: new Map(), // name -> FeatureCollection
    routes: new Set(),   // paths in the OpenAPI document
    stats: { positions: 0, events: 0, streamErrors: 0, connected: false },
    visible: { road: true, beat: true, zone: true, checkpoint: true },
    gcj: false,
  };
  window.patrol = { state, stats: () => ({ ...state.stats, units: state.units.size,
    selected: state.selected, trackPoints: state.track ? state.track.coords.length : 0,
    analysis: [...state.analysis.keys()] }) };

  // ---- HTTP ----
  async function api(path) {
    const r = await fetch(path, { headers: { Authorization: "Bearer " + token } });
    if (r.status === 401) { askToken(); throw new Error("unauthorized"); }
    const body = await r.json().catch(() => ({}));
    if (!r.ok) { const e = new Error(body.message || r.statusText); e.status = r.status; throw e; }
    return body;
  }

  function askToken() {
    $("login").hidden = false;
    $("login-form").onsubmit = (ev) => {
      ev.preventDefault();
      token = $("login-token").value.trim();
      sessionStorage.setItem("patrol-token", token);
      $("login").hidden = true;
      start();
    };
  }

  // ---- projection: WGS-84 (optionally shifted to GCJ-02) -> Web Mercator -> screen ----
  const view = { cx: 0.5, cy: 0.5, scale: 1024 }; // centre in world units [0,1], px per unit
  window.patrol.view = view;
  function mercator(lon, lat) {
    if (state.gcj) [lon, lat] = wgsToGcj(lon, lat);
    const s = Math.sin((Math.max(-85.05, Math.min(85.05, lat)) * Math.PI) / 180);
    return [(lon + 180) / 360, 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)];
  }
  function toScreen(lon, lat) {
    const [x, y] = mercator(lon, lat);
    return [(x - view.cx) * view.scale + canvas.width / 2, (y - view.cy) * view.scale + canvas.height / 2];
  }
  // Fits the view to points, showing at least `minSpan` degrees.
  function fitPoints(pts, minSpan) {
    const lons = pts.map((p) => p[0]), lats = pts.map((p) => p[1]);
    let [w, s, e, n] = [Math.min(...lons), Math.min(...lats), Math.max(...lons), Math.max(...lats)];
    if (e - w < minSpan) { const c = (e + w) / 2; w = c - minSpan / 2; e = c + minSpan / 2; }
    if (n - s < minSpan) { const c = (n + s) / 2; s = c - minSpan / 2; n = c + minSpan / 2; }
    fit([w, s, e, n]);
    redraw();
  }
  function fit(bounds) {
    const [x0, y0] = mercator(bounds[0], bounds[3]);
    const [x1, y1] = mercator(bounds[2], bounds[1]);
    view.cx = (x0 + x1) / 2; view.cy = (y0 + y1) / 2;
    view.scale = 0.92 * Math.min(canvas.width / (x1 - x0), canvas.height / (y1 - y0));
  }

  // GCJ-02 offset (the published approximation); identity outside mainland China.
  function wgsToGcj(lon, lat) {
    if (lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271) return [lon, lat];
    const a = 6378245.0, ee = 0.00669342162296594323;
    const x = lon - 105.0, y = lat - 35.0;
    let dLat = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    dLat += ((20 * Math.sin(6 * x * Math.PI) + 20 * Math.sin(2 * x * Math.PI)) * 2) / 3;
    dLat += ((20 * Math.sin(y * Math.PI) + 40 * Math.sin((y / 3) * Math.PI)) * 2) / 3;
    dLat += ((160 * Math.sin((y / 12) * Math.PI) + 320 * Math.sin((y * Math.PI) / 30)) * 2) / 3;
    let dLon = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    dLon += ((20 * Math.sin(6 * x * Math.PI) + 20 * Math.sin(2 * x * Math.PI)) * 2) / 3;
    dLon += ((20 * Math.sin(x * Math.PI) + 40 * Math.sin((x / 3) * Math.PI)) * 2) / 3;
    dLon += ((150 * Math.sin((x / 12) * Math.PI) + 300 * Math.sin((x / 30) * Math.PI)) * 2) / 3;
    const rad = (lat / 180) * Math.PI;
    let magic = Math.sin(rad); magic = 1 - ee * magic * magic;
    const sq = Math.sqrt(magic);
    dLat = (dLat * 180) / (((a * (1 - ee)) / (magic * sq)) * Math.PI);
    dLon = (dLon * 180) / ((a / sq) * Math.cos(rad) * Math.PI);
    return [lon + dLon, lat + dLat];
  }

  // ---- drawing ----
  const STATUS = { moving: "#16a34a", idle: "#d97706", offline: "#6b7280" };
  const ZONE = "rgba(37, 99, 235, 0.10)";
  let dirty = true;
  function redraw() { dirty = true; }

  function path(coords) {
    coords.forEach(([lon, lat], i) => {
      const [x, y] = toScreen(lon, lat);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
  }
  function polygons(g) {
    if (!g) return [];
    if (g.type === "Polygon") return [g.coordinates];
    if (g.type === "MultiPolygon") return g.coordinates;
    return [];
  }
  function drawPolys(g) {
    ctx.beginPath();
    for (const poly of polygons(g)) for (const ring of poly) { path(ring); ctx.closePath(); }
  }
  function centroid(g) {
    const ring = polygons(g)[0]?.[0] || [];
    let sx = 0, sy = 0;
    ring.forEach(([lon, lat]) => { sx += lon; sy += lat; });
    return ring.length ? [sx / ring.length, sy / ring.length] : null;
  }

  function draw() {
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    ctx.clearRect(0, 0, w, h);
    const by = (layer) => state.layers.filter((f) => f.properties.layer === layer);
    for (const f of by("county")) { drawPolys(f.geometry); ctx.fillStyle = "#fbfaf5"; ctx.fill("evenodd"); ctx.strokeStyle = "#444"; ctx.lineWidth = 2; ctx.stroke(); }
    if (state.visible.zone) for (const f of by("zone")) { drawPolys(f.geometry); ctx.fillStyle = ZONE; ctx.fill("evenodd"); ctx.strokeStyle = "#2563eb"; ctx.lineWidth = 1; ctx.setLineDash([4, 3]); ctx.stroke(); ctx.setLineDash([]); }
    drawAnalysis();
    if (state.visible.road) for (const f of by("road")) {
      ctx.beginPath();
      for (const line of f.geometry.coordinates) path(line);
      ctx.strokeStyle = "#c9c2b0"; ctx.lineWidth = 1; ctx.stroke();
    }
    if (state.visible.beat) for (const f of by("beat")) {
      drawPolys(f.geometry); ctx.strokeStyle = "#7c3aed"; ctx.lineWidth = 1.5; ctx.stroke();
      const c = centroid(f.geometry);
      if (c && view.scale > 3000) { const [x, y] = toScreen(c[0], c[1]); ctx.fillStyle = "#5b21b6"; ctx.font = "11px system-ui"; ctx.fillText(f.properties.id, x - 12, y); }
    }
    if (state.visible.checkpoint) for (const f of by("checkpoint")) {
      const [x, y] = toScreen(...f.geometry.coordinates);
      ctx.beginPath(); ctx.moveTo(x, y - 5); ctx.lineTo(x + 5, y); ctx.lineTo(x, y + 5); ctx.lineTo(x - 5, y); ctx.closePath();
      ctx.fillStyle = f.properties.kind === "entry" ? "#0891b2" : "#db2777"; ctx.fill();
    }
    for (const f of by("station")) {
      const [x, y] = toScreen(...f.geometry.coordinates);
      ctx.fillStyle = "#111827"; ctx.fillRect(x - 6, y - 6, 12, 12);
      ctx.fillStyle = "#fff"; ctx.font = "bold 9px system-ui"; ctx.fillText("P", x - 3, y + 3);
    }
    drawTrack();
    drawUnits();
  }

  function drawTrack() {
    const t = state.track;
    if (!t || t.coords.length === 0) return;
    ctx.beginPath(); path(t.coords); ctx.strokeStyle = "#e11d48"; ctx.lineWidth = 2.5; ctx.stroke();
    const i = state.replayIndex;
    if (i >= 0 && i < t.coords.length) {
      const [x, y] = toScreen(...t.coords[i]);
      ctx.beginPath(); ctx.arc(x, y, 7, 0, 2 * Math.PI); ctx.fillStyle = "#e11d48"; ctx.fill();
      ctx.strokeStyle = "#fff"; ctx.lineWidth = 2; ctx.stroke();
    }
  }

  function unitXY(u, now) {
    const k = Math.min(1, (now - u.t0) / 800);
    return [u.fromX + (u.x - u.fromX) * k, u.fromY + (u.y - u.fromY) * k];
  }

  function drawUnits() {
    const now = performance.now();
    for (const u of state.units.values()) {
      const [lon, lat] = unitXY(u, now);
      const [x, y] = toScreen(lon, lat);
      u.sx = x; u.sy = y;
      ctx.fillStyle = STATUS[u.data.status] || "#6b7280";
      ctx.strokeStyle = u.data.unit === state.selected ? "#e11d48" : "#fff";
      ctx.lineWidth = u.data.unit === state.selected ? 3 : 1.5;
      ctx.beginPath();
      const r = 6;
      switch (u.data.kind) {
        case "bike": ctx.moveTo(x, y - r); ctx.lineTo(x + r, y + r); ctx.lineTo(x - r, y + r); ctx.closePath(); break;
        case "ebike": ctx.moveTo(x, y - r); ctx.lineTo(x + r, y); ctx.lineTo(x, y + r); ctx.lineTo(x - r, y); ctx.closePath(); break;
        case "foot": ctx.rect(x - r + 1, y - r + 1, 2 * r - 2, 2 * r - 2); break;
        default: ctx.arc(x, y, r, 0, 2 * Math.PI);
      }
      ctx.fill(); ctx.stroke();
      if (view.scale > 6000) { ctx.fillStyle = "#111"; ctx.font = "10px system-ui"; ctx.fillText(u.data.unit, x + 8, y + 3); }
    }
  }

  // Analysis layers: GeoJSON features with a numeric `value` property (0..1 after scaling).
  function drawAnalysis() {
    for (const [name, fc] of state.analysis) {
      const feats = fc.features || [];
      const values = feats.map((f) => Number(f.properties?.value ?? 1));
      const max = Math.max(1e-9, ...values);
      feats.forEach((f, i) => {
        const v = values[i] / max;
        const colour = name === "gaps" ? `rgba(220, 38, 38, ${0.25 + 0.5 * v})`
          : name === "coverage" ? `rgba(234, 88, 12, ${0.25 + 0.5 * v})`
          : name === "hotspots" ? `rgba(190, 18, 60, ${0.2 + 0.6 * v})`
          : `rgba(22, 163, 74, ${0.15 + 0.6 * v})`;
        drawPolys(f.geometry); ctx.fillStyle = colour; ctx.fill("evenodd");
      });
    }
  }

  function frame() {
    const now = performance.now();
    let animating = false;
    for (const u of state.units.values()) if (now - u.t0 < 800) { animating = true; break; }
    if (dirty || animating) { dirty = false; draw(); }
    requestAnimationFrame(frame);
  }

  // ---- interaction: pan, zoom, click ----
  let drag = null;
  canvas.addEventListener("mousedown", (e) => { drag = { x: e.offsetX, y: e.offsetY, cx: view.cx, cy: view.cy, moved: false }; });
  window.addEventListener("mouseup", (e) => {
    if (drag && !drag.moved && e.target === canvas) pick(e.offsetX, e.offsetY);
    drag = null;
  });
  canvas.addEventListener("mousemove", (e) => {
    if (!drag) return;
    const dx = e.offsetX - drag.x, dy = e.offsetY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
    view.cx = drag.cx - dx / view.scale; view.cy = drag.cy - dy / view.scale; redraw();
  });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const k = e.deltaY < 0 ? 1.25 : 0.8;
    const wx = view.cx + (e.offsetX - canvas.width / 2) / view.scale;
    const wy = view.cy + (e.offsetY - canvas.height / 2) / view.scale;
    view.scale *= k;
    view.cx = wx - (e.offsetX - canvas.width / 2) / view.scale;
    view.cy = wy - (e.offsetY - canvas.height / 2) / view.scale;
    redraw();
  }, { passive: false });
  window.addEventListener("resize", redraw);

  function pick(x, y) {
    let best = null, bestD = 12;
    for (const u of state.units.values()) {
      const d = Math.hypot((u.sx ?? -99) - x, (u.sy ?? -99) - y);
      if (d < bestD) { best = u; bestD = d; }
    }
    if (best) select(best.data.unit);
  }

  // ---- unit panel ----
  function fmtTime(ms) { return new Date(ms).toLocaleString(); }
  function select(id) {
    state.selected = id; state.track = null; state.replayIndex = -1;
    $("unit").hidden = false; $("replay-box").hidden = true; $("unit-note").textContent = "";
    showUnit();
    loadUnitEvents(id);
    redraw();
  }
  function showUnit() {
    const u = state.units.get(state.selected);
    if (!u) return;
    const d = u.data;
    $("unit-title").textContent = `${d.unit} (${d.kind || "unit"}, ${d.station})`;
    const rows = [
      ["status", d.status], ["crew", d.crew ?? "?"], ["beat", d.beat || "none"], ["zone", d.zone || "none"],
      ["speed", d.speed_kmh != null ? d.speed_kmh.toFixed(0) + " km/h" : "?"],
      ["last fix", fmtTime(d.fix_time) + ` (${Math.max(0, (Date.now() - d.fix_time) / 1000).toFixed(0)} s ago)`],
      ["position", `${d.lat.toFixed(5)}, ${d.lon.toFixed(5)}`],
    ];
    const t = $("unit-props"); t.textContent = "";
    for (const [k, v] of rows) { const tr = t.insertRow(); tr.insertCell().textContent = k; tr.insertCell().textContent = v; }
  }
  async function loadUnitEvents(id) {
    const ul = $("unit-events"); ul.textContent = "";
    try {
      const evs = await api(`/api/events?unit=${encodeURIComponent(id)}`);
      if (evs.length === 0) ul.innerHTML = "<li class='note'>no events since the server started</li>";
      for (const e of evs.slice(-50).reverse()) addLine(ul, e);
    } catch (e) { ul.innerHTML = ""; const li = document.createElement("li"); li.className = "note"; li.textContent = e.message; ul.append(li); }
  }
  $("replay").addEventListener("click", async () => {
    const id = state.selected;
    if (!id) return;
    const to = Date.now(), from = to - 2 * 3600 * 1000;
    $("unit-note").textContent = "loading track…";
    try {
      const f = await api(`/api/units/${encodeURIComponent(id)}/track?from=${from}&to=${to}`);
      if (state.selected !== id) return;
      state.track = { unit: id, coords: f.geometry.coordinates, times: f.properties.times };
      const n = state.track.coords.length;
      $("unit-note").textContent = n ? `${n} fixes` : "no stored fixes in the last 2 h yet";
      $("replay-box").hidden = n === 0;
      const s = $("slider"); s.max = Math.max(0, n - 1); s.value = s.max;
      if (n) fitPoints(state.track.coords, 0.01);
      setReplay(n - 1);
    } catch (e) { $("unit-note").textContent = "track: " + e.message; }
  });
  $("slider").addEventListener("input", (e) => setReplay(Number(e.target.value)));
  function setReplay(i) {
    state.replayIndex = i;
    const t = state.track;
    $("replay-time").textContent = t && t.times[i] ? fmtTime(t.times[i]) : "";
    redraw();
  }

  // ---- alerts and events ----
  function describe(e) {
    const when = e.at ?? e.time_ms ?? e.fix_time;
    const what = e.type === "offline" ? "went offline" : (e.type || "event") + (e.fence ? " " + e.fence : "");
    return `${when ? new Date(when).toLocaleTimeString() : ""} ${e.unit || ""} ${what}`;
  }
  function addLine(ul, e) {
    const li = document.createElement("li");
    li.className = "alert-" + (e.type || "event");
    li.textContent = describe(e);
    if (e.unit) li.addEventListener("click", () => state.units.has(e.unit) && select(e.unit));
    ul.append(li);
  }
  // A provisional enter or exit (sent before the reorder window has passed) is shown at once
  // and marked; its durable twin (same unit, type, layer, fence and time) then confirms that
  // line instead of adding another.
  function alertKey(e) { return [e.unit, e.type, e.layer, e.fence, e.time_ms].join("|"); }
  function alert(e) {
    const ul = $("alert-list");
    const key = alertKey(e);
    const pending = !e.provisional && [...ul.children].find((li) => li.dataset.provisional === key);
    if (pending) {
      delete pending.dataset.provisional;
      pending.classList.remove("provisional");
      pending.textContent = describe(e);
      return;
    }
    const li = document.createElement("li");
    li.className = "alert-" + (e.type || "event");
    li.textContent = describe(e) + (e.provisional ? " (provisional)" : "");
    if (e.provisional) { li.dataset.provisional = key; li.classList.add("provisional"); }
    if (e.unit) li.addEventListener("click", () => state.units.has(e.unit) && select(e.unit));
    ul.prepend(li);
    while (ul.children.length > 200) ul.lastChild.remove();
  }

  // ---- live data ----
  function upsert(d) {
    const prev = state.units.get(d.unit);
    const now = performance.now();
    if (prev) {
      const [fx, fy] = unitXY(prev, now);
      prev.fromX = fx; prev.fromY = fy; prev.x = d.lon; prev.y = d.lat; prev.t0 = now;
      prev.data = { ...prev.data, ...d };
    } else {
      state.units.set(d.unit, { data: d, x: d.lon, y: d.lat, fromX: d.lon, fromY: d.lat, t0: 0 });
    }
    if (d.unit === state.selected) showUnit();
  }
  function counts() {
    const by = { moving: 0, idle: 0, offline: 0 };
    for (const u of state.units.values()) by[u.data.status] = (by[u.data.status] || 0) + 1;
    $("counts").textContent = `${state.units.size} units · ${by.moving} moving · ${by.idle} idle · ${by.offline} offline`;
  }

  async function stream() {
    for (;;) {
      try {
        const r = await fetch("/api/live", { headers: { Authorization: "Bearer " + token, Accept: "text/event-stream" } });
        if (r.status === 401) { askToken(); return; }
        if (!r.ok || !r.body) throw new Error("live stream: HTTP " + r.status);
        state.stats.connected = true;
        $("status").textContent = "live"; $("status").className = "pill live";
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            handle(buf.slice(0, cut)); buf = buf.slice(cut + 2);
          }
        }
      } catch (e) {
        state.stats.streamErrors++;
        $("status").textContent = "reconnecting"; $("status").className = "pill error";
      }
      state.stats.connected = false;
      await new Promise((ok) => setTimeout(ok, 2000));
    }
  }
  function handle(block) {
    let event = "message", data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data += line.slice(5).trim();
    }
    if (!data || event === "hello") return;
    let msg;
    try { msg = JSON.parse(data); } catch (_) { return; }
    if (event === "position") {
      state.stats.positions++;
      upsert(msg);
    } else {
      state.stats.events++;
      if (event === "offline" && state.units.has(msg.unit)) upsert({ ...state.units.get(msg.unit).data, status: "offline" });
      alert(msg);
    }
    counts(); redraw();
  }

  // ---- layers and analysis ----
  document.querySelectorAll("[data-layer]").forEach((cb) => cb.addEventListener("change", () => {
    state.visible[cb.dataset.layer] = cb.checked; redraw();
  }));
  $("gcj").addEventListener("change", (e) => { state.gcj = e.target.checked; redraw(); });

  // An analysis layer is offered when the server documents its endpoint.
  function analysisRoute(name) { return `/api/analytics/${name}`; }
  function setupAnalysis() {
    const missing = [];
    document.querySelectorAll("[data-analysis]").forEach((cb) => {
      const name = cb.dataset.analysis;
      const available = state.routes.has(analysisRoute(name));
      cb.disabled = !available;
      cb.parentElement.classList.toggle("disabled", !available);
      if (!available) missing.push(name);
      cb.addEventListener("change", () => toggleAnalysis(name, cb.checked));
    });
    $("analysis-note").textContent = missing.length
      ? `not available on this server yet: ${missing.join(", ")}` : "";
    const now = new Date();
    const onejan = new Date(Date.UTC(now.getUTCFullYear(), 0, 4));
    const wk = 1 + Math.round(((now - onejan) / 86400000 - 3 + ((onejan.getUTCDay() + 6) % 7)) / 7);
    $("week").value = `${now.getUTCFullYear()}-W${String(wk).padStart(2, "0")}`;
  }
  // The ISO week in the picker as [Monday, next Monday] local dates (YYYY-MM-DD).
  function weekSpan() {
    const m = /^(\d{4})-W(\d{2})$/.exec($("week").value);
    if (!m) return null;
    const jan4 = new Date(Date.UTC(Number(m[1]), 0, 4));
    const monday = new Date(jan4.getTime() - ((jan4.getUTCDay() + 6) % 7) * 86400000 + (Number(m[2]) - 1) * 7 * 86400000);
    const day = (d) => d.toISOString().slice(0, 10);
    return [day(monday), day(new Date(monday.getTime() + 7 * 86400000))];
  }
  // The rows of the chosen window ("" = all hours): hot spot rows by their slot, other rows by
  // their window column. Rows of one cell (dosage has one per day and unit kind) become one
  // feature whose value is their sum.
  function forWindow(features, w) {
    const keep = (p) => p.slot_kind !== undefined
      ? (w ? p.slot_kind === "window" && p.slot === w : p.slot_kind === "all")
      : (!w || !p.window || p.window === w);
    const byCell = new Map();
    const out = [];
    for (const f of features) {
      if (!f.geometry || !keep(f.properties)) continue;
      const cell = f.properties.cell;
      const seen = cell !== undefined && byCell.get(cell);
      if (seen) {
        seen.properties.value = (seen.properties.value || 0) + (f.properties.value || 0);
        continue;
      }
      const copy = { ...f, properties: { ...f.properties } };
      if (cell !== undefined) byCell.set(cell, copy);
      out.push(copy);
    }
    return out;
  }
  async function toggleAnalysis(name, on) {
    if (!on) { state.analysis.delete(name); redraw(); return; }
    const span = weekSpan();
    if (!span) { $("analysis-note").textContent = "choose a week"; return; }
    $("analysis-note").textContent = `${name}: running…`;
    try {
      const fc = await api(`${analysisRoute(name)}?from=${span[0]}&to=${span[1]}`);
      const feats = forWindow(fc.features || [], $("window").value);
      state.analysis.set(name, { type: "FeatureCollection", features: feats });
      $("analysis-note").textContent = `${name}: ${feats.length} cells`;
    } catch (e) { $("analysis-note").textContent = `${name}: ${e.message}`; }
    redraw();
  }
  $("window").addEventListener("change", () => {
    for (const name of [...state.analysis.keys()]) toggleAnalysis(name, true);
  });

  async function start() {
    if (!token) { askToken(); return; }
    try {
      const doc = await api("/api/openapi.json");
      state.routes = new Set(Object.keys(doc.paths || {}));
      setupAnalysis();
      const fences = await api("/api/fences");
      state.layers = fences.features;
      const pts = [];
      for (const f of state.layers) {
        if (f.properties.layer !== "county" && f.properties.layer !== "beat") continue;
        for (const poly of polygons(f.geometry)) for (const ring of poly) pts.push(...ring);
      }
      if (pts.length) {
        canvas.width = canvas.clientWidth; canvas.height = canvas.clientHeight;
        fitPoints(pts, 0);
      }
      for (const u of await api("/api/units")) upsert(u);
      counts(); redraw();
      stream();
    } catch (e) {
      $("status").textContent = e.message; $("status").className = "pill error";
    }
  }

  requestAnimationFrame(frame);
  start();
})();
