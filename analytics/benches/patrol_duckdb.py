"""DuckDB side of the analytics benchmark (BENCHMARKS.md, "Analytics").

Runs the same aggregations as `patrol analyze dosage`, `coverage` and `gaps` (a polars read of
each pass, then the on-duty walk of `analytics/src/duty.rs`) over the same Parquet store, and
prints the wall time of each job's query set. The H3 grid-path
split, the fence polyfill and the ranking that the Rust jobs do after their walk are not
repeated here (DuckDB has no H3 without an extension); the Rust side's figures include them.
Like the Rust jobs, only on-duty time counts: intervals whose first fix lies in one of the unit's
shifts from `roster.csv` (merged where they overlap; a clone `<id>-<n>` works the shifts of `<id>`),
ending at the next fix, the shift's end or the span's end, whichever comes first (here an ASOF
join finds the last shift starting at or before each fix).

Usage: python patrol_duckdb.py STORE FIXTURES FROM_MS TO_MS OFFSET_MS [RES] [THREADS]
OFFSET_MS is the zone's UTC offset over the span (the span must not contain a DST change).
"""

import csv
import sys
import time
from datetime import date, timedelta

import duckdb

store, fixtures, from_ms, to_ms, offset = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
res = int(sys.argv[6]) if len(sys.argv) > 6 else 9
threads = int(sys.argv[7]) if len(sys.argv) > 7 else 2
store_res, cap = 11, 120_000
windows = [("day", 510, 680), ("afternoon", 780, 1050), ("evening", 1200, 1350), ("night", 1380, 300)]

low = 3 * (15 - res)
unit = 1 << low
drop = (store_res - res) << 52
DAY = 86_400_000


def in_window(tod, start, end):
    s, e = start * 60_000, end * 60_000
    if e <= s:
        return f"({tod} >= {s} OR {tod} < {e})"
    return f"({tod} >= {s} AND {tod} < {e})"


def window_case(tod):
    arms = " ".join(f"WHEN {in_window(tod, s, e)} THEN '{n}'" for n, s, e in windows)
    return f"CASE {arms} ELSE NULL END"


def day_case(lt, tod):
    arms = " ".join(
        f"WHEN {in_window(tod, s, e)} THEN {lt} // {DAY}" + (f" - CASE WHEN {tod} < {e * 60_000} THEN 1 ELSE 0 END" if e <= s else "")
        for n, s, e in windows
    )
    return f"CASE {arms} ELSE {lt} // {DAY} END"


def shifts():
    """The roster's shifts as UTC ms, merged per unit (the zone's offset is fixed over the span)."""
    def utc(d, hhmm):
        local = (d - date(1970, 1, 1)).days * DAY + (int(hhmm[:2]) * 60 + int(hhmm[3:])) * 60_000
        return local - offset
    spans = {}
    with open(f"{fixtures}/roster.csv", newline="") as f:
        for r in csv.DictReader(f):
            d = date.fromisoformat(r["date"])
            end_day = d + timedelta(days=1) if r["end"] <= r["start"] else d
            spans.setdefault(r["unit"], []).append((utc(d, r["start"]), utc(end_day, r["end"])))
    rows = []
    for unit, v in spans.items():
        merged = []
        for s, e in sorted(v):
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        rows += [(unit, s, e) for s, e in merged]
    return rows


con = duckdb.connect()
con.execute(f"SET threads = {threads}")
con.execute(f"CREATE TEMP TABLE units AS SELECT unit, kind FROM read_csv('{fixtures}/units.csv', header = true)")
con.execute("CREATE TEMP TABLE shifts (unit VARCHAR, s BIGINT, e BIGINT)")
con.executemany("INSERT INTO shifts VALUES (?, ?, ?)", shifts())

intervals = f"""
WITH p AS (
  SELECT unit, epoch_ms(fix_time) AS t, cell, lat, lon, beat, zone
  FROM read_parquet('{store}/pings/**/*.parquet', hive_partitioning = true)
  WHERE epoch_ms(fix_time) >= {from_ms} AND epoch_ms(fix_time) < {to_ms} AND flags % 4 = 0
), q AS (
  SELECT unit, t, lead(t) OVER w AS t_b, cell AS a, lead(cell) OVER w AS b,
         lat, lon, lead(lat) OVER w AS lat_b, lead(lon) OVER w AS lon_b, beat, zone
  FROM p WINDOW w AS (PARTITION BY unit ORDER BY t)
), u AS (
  SELECT unit, regexp_extract(unit, '^(.+)-[0-9]+$', 1) AS base FROM (SELECT DISTINCT unit FROM q)
), k AS (
  SELECT u.unit, coalesce(k1.kind, k2.kind, 'unknown') AS kind,
         CASE WHEN u.unit IN (SELECT unit FROM shifts) THEN u.unit ELSE u.base END AS duty_unit
  FROM u LEFT JOIN units k1 ON k1.unit = u.unit LEFT JOIN units k2 ON k2.unit = u.base
), d AS (
  SELECT q.*, k.kind, s.e
  FROM q JOIN k ON k.unit = q.unit ASOF JOIN shifts s ON s.unit = k.duty_unit AND q.t >= s.s
  WHERE q.t < s.e
)
SELECT unit, kind, t, t_b - t AS dt, least(coalesce(t_b, {to_ms}), e, {to_ms}) - t AS ms,
       (a // {unit}) * {unit} + {unit - 1} - {drop} AS cell_a,
       (b // {unit}) * {unit} + {unit - 1} - {drop} AS cell_b,
       lat, lon, lat_b, lon_b, beat, zone,
       {window_case(f"((t + {offset}) % {DAY})")} AS win,
       {day_case(f"(t + {offset})", f"((t + {offset}) % {DAY})")} AS day,
       coalesce(t_b - t <= {cap}, false) AS tracked
FROM d
"""

def dosage(src):
    return f"""
SELECT day, win, kind,
       CASE WHEN tracked THEN cell_a END AS ca, CASE WHEN tracked THEN cell_b END AS cb, sum(ms) AS ms
FROM {src}
GROUP BY ALL
"""


def fence(src, column):
    return f"""
SELECT {column} AS fence, day, win, sum(ms) AS ms,
       sum(sqrt(pow((lon_b - lon) * pi() / 180 * cos((lat + lat_b) * pi() / 360), 2)
                + pow((lat_b - lat) * pi() / 180, 2)) * 6371008.8) AS distance_m,
       count(DISTINCT unit) AS units, count(DISTINCT t // 60000) AS visible_minutes
FROM {src} WHERE tracked AND win IS NOT NULL AND {column} IS NOT NULL
GROUP BY ALL
"""


incidents = f"""
SELECT count(*) FROM read_csv('{fixtures}/incidents.csv', header = true)
WHERE epoch_ms(received) >= {from_ms} AND epoch_ms(received) < {to_ms}
"""

# Coverage computes the intervals once into a temporary table, as the Rust job walks them once for
# its three aggregations.
inline = f"({intervals})"
jobs = {
    "dosage": [dosage(inline)],
    "coverage": [f"CREATE OR REPLACE TEMP TABLE iv AS {intervals}", dosage("iv"), fence("iv", "beat"), fence("iv", "zone")],
    "gaps": [dosage(inline), incidents],
}
total = 0.0
for name, queries in jobs.items():
    started = time.perf_counter()
    rows = [len(con.execute(q).fetchall()) for q in queries]
    took = time.perf_counter() - started
    total += took
    print(f"duckdb {name}: {took:.2f} s, rows {rows}", flush=True)
con.execute("DROP TABLE iv")
print(f"duckdb total: {total:.2f} s", flush=True)
# Cross-check with the Rust job's output: all minutes, and those with a cell.
all_ms, tracked_ms = con.execute(f"SELECT sum(ms), sum(ms) FILTER (WHERE ca IS NOT NULL) FROM ({dosage(inline)})").fetchone()
print(f"duckdb dosage ms: all {all_ms}, tracked {tracked_ms}", flush=True)
