//! The graph core: CSR arrays, pruning to the largest strongly connected component (iterative
//! Tarjan), Dijkstra over ordered `f64` bits, and a uniform grid for nearest-node lookups.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Range;

use super::{Direction, RawWay, RoadsError};
use crate::distance::{EARTH_RADIUS_M, haversine_m};

/// Metres per degree of latitude (and of longitude at the equator).
const M_PER_DEG: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

/// Marks an unset `u32` slot (no node, no predecessor, unvisited).
const NONE: u32 = u32::MAX;

/// A directed edge before it is placed in a [`Csr`].
#[derive(Debug, Clone, Copy)]
struct RawEdge {
    from: u32,
    to: u32,
    length_m: f64,
    time_s: f64,
}

/// Compressed sparse row adjacency: the edges leaving node `v` are
/// `offsets[v]..offsets[v + 1]` in the parallel edge arrays.
#[derive(Debug, Clone)]
pub(crate) struct Csr {
    offsets: Vec<u32>,
    targets: Vec<u32>,
    length_m: Vec<f64>,
    time_s: Vec<f64>,
}

impl Csr {
    /// Places edges by a counting sort on their tail. Callers check that the edge count fits
    /// in `u32`.
    fn from_edges(nodes: usize, edges: impl Iterator<Item = RawEdge> + Clone) -> Self {
        let mut offsets = vec![0u32; nodes + 1];
        for e in edges.clone() {
            offsets[e.from as usize + 1] += 1;
        }
        for v in 0..nodes {
            offsets[v + 1] += offsets[v];
        }
        let total = offsets[nodes] as usize;
        let mut next = offsets.clone();
        let (mut targets, mut length_m, mut time_s) =
            (vec![0; total], vec![0.0; total], vec![0.0; total]);
        for e in edges {
            let slot = next[e.from as usize] as usize;
            next[e.from as usize] += 1;
            targets[slot] = e.to;
            length_m[slot] = e.length_m;
            time_s[slot] = e.time_s;
        }
        Self {
            offsets,
            targets,
            length_m,
            time_s,
        }
    }

    fn node_count(&self) -> usize {
        self.offsets.len() - 1
    }

    pub(crate) fn edge_count(&self) -> usize {
        self.targets.len()
    }

    /// Edge slots leaving `v`; empty for an unknown node.
    fn range(&self, v: u32) -> Range<usize> {
        let v = v as usize;
        match (self.offsets.get(v), self.offsets.get(v + 1)) {
            (Some(&a), Some(&b)) => a as usize..b as usize,
            _ => 0..0,
        }
    }

    /// `(to, length_m, time_s)` of the edges leaving `v`.
    pub(crate) fn edges(&self, v: u32) -> impl Iterator<Item = (u32, f64, f64)> + '_ {
        self.range(v)
            .map(|e| (self.targets[e], self.length_m[e], self.time_s[e]))
    }

    fn raw_edges(&self) -> impl Iterator<Item = RawEdge> + Clone + '_ {
        (0..self.node_count() as u32).flat_map(move |from| {
            self.range(from).map(move |e| RawEdge {
                from,
                to: self.targets[e],
                length_m: self.length_m[e],
                time_s: self.time_s[e],
            })
        })
    }

    /// The same edges with every direction flipped.
    pub(crate) fn reversed(&self) -> Self {
        let flipped = self.raw_edges().map(|e| RawEdge {
            from: e.to,
            to: e.from,
            ..e
        });
        Self::from_edges(self.node_count(), flipped)
    }
}

/// The pruned graph and what pruning found.
#[derive(Debug)]
pub(crate) struct Built {
    pub(crate) coords: Vec<(f64, f64)>,
    pub(crate) forward: Csr,
    pub(crate) dropped_nodes: usize,
    pub(crate) components: usize,
}

/// Builds the directed graph of `ways` over `coords` and keeps its largest strongly connected
/// component. Only nodes that end up on some segment become graph nodes.
pub(crate) fn build(coords: &[(f64, f64)], ways: &[RawWay]) -> Result<Built, RoadsError> {
    let mut dense = vec![NONE; coords.len()];
    let mut dense_coords = Vec::new();
    let mut edges = Vec::new();
    let mut id = |raw: u32| -> Result<u32, RoadsError> {
        let slot = &mut dense[raw as usize];
        if *slot == NONE {
            *slot = u32::try_from(dense_coords.len()).map_err(|_| RoadsError::TooLarge)?;
            dense_coords.push(coords[raw as usize]);
        }
        Ok(*slot)
    };
    for way in ways {
        let mps = way.kmh / 3.6;
        for pair in way.nodes.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if a == b {
                continue;
            }
            let ((lat1, lon1), (lat2, lon2)) = (coords[a as usize], coords[b as usize]);
            let length_m = haversine_m(lat1, lon1, lat2, lon2);
            let time_s = length_m / mps;
            let (a, b) = (id(a)?, id(b)?);
            if way.direction != Direction::Backward {
                edges.push(RawEdge {
                    from: a,
                    to: b,
                    length_m,
                    time_s,
                });
            }
            if way.direction != Direction::Forward {
                edges.push(RawEdge {
                    from: b,
                    to: a,
                    length_m,
                    time_s,
                });
            }
        }
    }
    if u32::try_from(edges.len()).is_err() {
        return Err(RoadsError::TooLarge);
    }
    let all = Csr::from_edges(dense_coords.len(), edges.iter().copied());
    let (component, components) = strongly_connected(&all);
    let mut sizes = vec![0usize; components];
    for &c in &component {
        sizes[c as usize] += 1;
    }
    let largest = (0..components)
        .max_by_key(|&c| (sizes[c], Reverse(c)))
        .unwrap_or(0) as u32;

    let mut remap = vec![NONE; dense_coords.len()];
    let mut kept_coords = Vec::with_capacity(sizes.get(largest as usize).copied().unwrap_or(0));
    for (v, &c) in component.iter().enumerate() {
        if c == largest {
            remap[v] = kept_coords.len() as u32;
            kept_coords.push(dense_coords[v]);
        }
    }
    let kept_edges = edges.iter().filter_map(|e| {
        let (from, to) = (remap[e.from as usize], remap[e.to as usize]);
        (from != NONE && to != NONE).then_some(RawEdge { from, to, ..*e })
    });
    let forward = Csr::from_edges(kept_coords.len(), kept_edges);
    if forward.edge_count() == 0 {
        return Err(RoadsError::NoRoads);
    }
    Ok(Built {
        dropped_nodes: dense_coords.len() - kept_coords.len(),
        coords: kept_coords,
        forward,
        components,
    })
}

/// Iterative Tarjan state in flat arrays, with an explicit call stack instead of recursion.
struct Tarjan {
    index: Vec<u32>,
    low: Vec<u32>,
    on_stack: Vec<bool>,
    stack: Vec<u32>,
    /// Call stack frames: (node, next edge slot to look at).
    calls: Vec<(u32, usize)>,
    counter: u32,
}

impl Tarjan {
    fn visit(&mut self, v: u32, first_slot: usize) {
        self.index[v as usize] = self.counter;
        self.low[v as usize] = self.counter;
        self.counter += 1;
        self.on_stack[v as usize] = true;
        self.stack.push(v);
        self.calls.push((v, first_slot));
    }
}

/// The strongly connected component of every node and the number of components.
fn strongly_connected(csr: &Csr) -> (Vec<u32>, usize) {
    let n = csr.node_count();
    let mut t = Tarjan {
        index: vec![NONE; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        calls: Vec::new(),
        counter: 0,
    };
    let mut component = vec![NONE; n];
    let mut components = 0u32;
    for root in 0..n as u32 {
        if t.index[root as usize] != NONE {
            continue;
        }
        t.visit(root, csr.range(root).start);
        while let Some(&mut (v, ref mut slot)) = t.calls.last_mut() {
            let vi = v as usize;
            if *slot < csr.range(v).end {
                let w = csr.targets[*slot];
                *slot += 1;
                if t.index[w as usize] == NONE {
                    t.visit(w, csr.range(w).start);
                } else if t.on_stack[w as usize] {
                    t.low[vi] = t.low[vi].min(t.index[w as usize]);
                }
                continue;
            }
            t.calls.pop();
            if let Some(&(parent, _)) = t.calls.last() {
                t.low[parent as usize] = t.low[parent as usize].min(t.low[vi]);
            }
            if t.low[vi] == t.index[vi] {
                while let Some(w) = t.stack.pop() {
                    t.on_stack[w as usize] = false;
                    component[w as usize] = components;
                    if w == v {
                        break;
                    }
                }
                components += 1;
            }
        }
    }
    (component, components as usize)
}

/// Dijkstra state over one graph, reusable arrays sized to the node count.
///
/// Times are non-negative finite `f64`s, so their IEEE bits order like the values and the heap
/// can hold `u64` keys.
#[derive(Debug)]
pub(crate) struct Search {
    time: Vec<f64>,
    dist: Vec<f64>,
    origin: Vec<u32>,
    pred: Vec<u32>,
    heap: BinaryHeap<Reverse<(u64, u32)>>,
}

impl Search {
    pub(crate) fn new(nodes: usize) -> Self {
        Self {
            time: vec![f64::INFINITY; nodes],
            dist: vec![f64::INFINITY; nodes],
            origin: vec![NONE; nodes],
            pred: vec![NONE; nodes],
            heap: BinaryHeap::new(),
        }
    }

    /// Runs from `starts` (node, start time >= 0), stopping early once `target` is settled.
    /// Callers check that the nodes exist.
    pub(crate) fn run(&mut self, csr: &Csr, starts: &[(u32, f64)], target: Option<u32>) {
        for (i, &(v, t)) in starts.iter().enumerate() {
            // `+ 0.0` turns -0.0 into +0.0, whose bits sort first.
            let t = t + 0.0;
            if t < self.time[v as usize] {
                self.time[v as usize] = t;
                self.dist[v as usize] = 0.0;
                self.origin[v as usize] = i as u32;
                self.heap.push(Reverse((t.to_bits(), v)));
            }
        }
        while let Some(Reverse((bits, v))) = self.heap.pop() {
            let t = f64::from_bits(bits);
            let vi = v as usize;
            if t > self.time[vi] {
                continue;
            }
            if target == Some(v) {
                break;
            }
            for e in csr.range(v) {
                let w = csr.targets[e] as usize;
                let tw = t + csr.time_s[e];
                if tw < self.time[w] {
                    self.time[w] = tw;
                    self.dist[w] = self.dist[vi] + csr.length_m[e];
                    self.origin[w] = self.origin[vi];
                    self.pred[w] = v;
                    self.heap.push(Reverse((tw.to_bits(), w as u32)));
                }
            }
        }
        self.heap.clear();
    }

    pub(crate) fn time(&self, v: u32) -> f64 {
        self.time[v as usize]
    }

    pub(crate) fn dist(&self, v: u32) -> f64 {
        self.dist[v as usize]
    }

    pub(crate) fn origin(&self, v: u32) -> u32 {
        self.origin[v as usize]
    }

    pub(crate) fn pred(&self, v: u32) -> Option<u32> {
        Some(self.pred[v as usize]).filter(|&p| p != NONE)
    }
}

/// A uniform lat/lon grid of node indices, with cells about as many as nodes (never smaller
/// than 50 m), searched in growing square rings around the query's cell.
#[derive(Debug, Clone)]
pub(crate) struct NodeGrid {
    min_lat: f64,
    min_lon: f64,
    cell_lat: f64,
    cell_lon: f64,
    rows: usize,
    cols: usize,
    max_abs_lat: f64,
    /// Nodes of cell `r * cols + c` are `cell_nodes[cell_offsets[i]..cell_offsets[i + 1]]`.
    cell_offsets: Vec<u32>,
    cell_nodes: Vec<u32>,
}

impl NodeGrid {
    pub(crate) fn new(coords: &[(f64, f64)]) -> Self {
        let (mut min_lat, mut max_lat) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut min_lon, mut max_lon) = (f64::INFINITY, f64::NEG_INFINITY);
        for &(lat, lon) in coords {
            (min_lat, max_lat) = (min_lat.min(lat), max_lat.max(lat));
            (min_lon, max_lon) = (min_lon.min(lon), max_lon.max(lon));
        }
        if coords.is_empty() {
            (min_lat, max_lat, min_lon, max_lon) = (0.0, 0.0, 0.0, 0.0);
        }
        let cos_mid = ((min_lat + max_lat) / 2.0).to_radians().cos().max(0.01);
        let height_m = (max_lat - min_lat) * M_PER_DEG;
        let width_m = (max_lon - min_lon) * M_PER_DEG * cos_mid;
        let side_m = (height_m * width_m / coords.len().max(1) as f64)
            .sqrt()
            .max(50.0);
        let cell_lat = side_m / M_PER_DEG;
        let cell_lon = side_m / (M_PER_DEG * cos_mid);
        let rows = ((max_lat - min_lat) / cell_lat) as usize + 1;
        let cols = ((max_lon - min_lon) / cell_lon) as usize + 1;
        let mut grid = Self {
            min_lat,
            min_lon,
            cell_lat,
            cell_lon,
            rows,
            cols,
            max_abs_lat: min_lat.abs().max(max_lat.abs()),
            cell_offsets: vec![0; rows * cols + 1],
            cell_nodes: vec![0; coords.len()],
        };
        let cells: Vec<usize> = coords
            .iter()
            .map(|&(lat, lon)| grid.cell_index(lat, lon))
            .collect();
        for &c in &cells {
            grid.cell_offsets[c + 1] += 1;
        }
        for c in 0..rows * cols {
            grid.cell_offsets[c + 1] += grid.cell_offsets[c];
        }
        let mut next = grid.cell_offsets.clone();
        for (v, &c) in cells.iter().enumerate() {
            grid.cell_nodes[next[c] as usize] = v as u32;
            next[c] += 1;
        }
        grid
    }

    /// Row and column of the cell containing (or, outside the grid, nearest to) a point.
    fn cell_of(&self, lat: f64, lon: f64) -> (usize, usize) {
        let r = ((lat - self.min_lat) / self.cell_lat)
            .floor()
            .clamp(0.0, (self.rows - 1) as f64);
        let c = ((lon - self.min_lon) / self.cell_lon)
            .floor()
            .clamp(0.0, (self.cols - 1) as f64);
        (r as usize, c as usize)
    }

    fn cell_index(&self, lat: f64, lon: f64) -> usize {
        let (r, c) = self.cell_of(lat, lon);
        r * self.cols + c
    }

    /// The nearest of `coords` (the same slice the grid was built from) and its distance.
    pub(crate) fn nearest(&self, coords: &[(f64, f64)], lat: f64, lon: f64) -> Option<(u32, f64)> {
        let (r0, c0) = self.cell_of(lat, lon);
        // Any cell k rings out is at least (k - 1) cell sides away; 1% slack covers the gap
        // between the flat cell geometry and haversine distances.
        let cos = lat.abs().max(self.max_abs_lat).to_radians().cos();
        let side_m = (self.cell_lat * M_PER_DEG).min(self.cell_lon * M_PER_DEG * cos) * 0.99;
        let last_ring = r0.max(self.rows - 1 - r0).max(c0).max(self.cols - 1 - c0);
        let mut best: Option<(u32, f64)> = None;
        let scan = |r: usize, c: usize, best: &mut Option<(u32, f64)>| {
            let cell = r * self.cols + c;
            let span = self.cell_offsets[cell] as usize..self.cell_offsets[cell + 1] as usize;
            for &v in &self.cell_nodes[span] {
                let (nlat, nlon) = coords[v as usize];
                let d = haversine_m(lat, lon, nlat, nlon);
                if best.is_none_or(|(_, bd)| d < bd) {
                    *best = Some((v, d));
                }
            }
        };
        for ring in 0..=last_ring {
            let (rlo, rhi) = (r0.saturating_sub(ring), (r0 + ring).min(self.rows - 1));
            let (clo, chi) = (c0.saturating_sub(ring), (c0 + ring).min(self.cols - 1));
            for r in rlo..=rhi {
                if r.abs_diff(r0) == ring {
                    (clo..=chi).for_each(|c| scan(r, c, &mut best));
                } else {
                    // Inner rows of the ring: only its left and right columns.
                    if c0 >= ring {
                        scan(r, c0 - ring, &mut best);
                    }
                    if ring > 0 && c0 + ring < self.cols {
                        scan(r, c0 + ring, &mut best);
                    }
                }
            }
            if best.is_some_and(|(_, bd)| bd <= ring as f64 * side_m) {
                break;
            }
        }
        best
    }
}
