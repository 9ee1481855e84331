//! Irregularly sampled series: each with its own times and a mask of missing entries;
//! examples (what an encoder sees, what is to be predicted); the long-format CSV; and the
//! datasets (Chen's spirals, Rubanova's periodic toy, Theophylline, ChickWeight, CO2).

use std::path::Path;

use crate::autodiff::Rng;
use crate::Error;

fn bad(what: &'static str, detail: String) -> Error {
    Error::InvalidArgument { what, detail }
}

/// One series: strictly increasing times, and at each time `dim` values of which any may
/// be missing.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Its name (a CSV's `series` column).
    pub id: String,
    /// Values per time.
    pub dim: usize,
    /// Observation times, strictly increasing.
    pub times: Vec<f64>,
    /// `times.len() × dim`, row-major; 0 where missing.
    pub values: Vec<f64>,
    /// Which of `values` are observed.
    pub mask: Vec<bool>,
}

impl Series {
    /// A series from rows of optional values (`None` is a missing entry). Times must be
    /// finite and strictly increasing, values finite, every row `dim` long.
    pub fn new(
        id: &str,
        dim: usize,
        times: Vec<f64>,
        rows: &[Vec<Option<f64>>],
    ) -> Result<Series, Error> {
        if dim == 0 {
            return Err(bad("series", format!("'{id}': dim must be at least 1")));
        }
        if rows.len() != times.len() {
            return Err(bad(
                "series",
                format!("'{id}': {} rows for {} times", rows.len(), times.len()),
            ));
        }
        let mut values = Vec::with_capacity(rows.len() * dim);
        let mut mask = Vec::with_capacity(rows.len() * dim);
        for (i, r) in rows.iter().enumerate() {
            if r.len() != dim {
                return Err(bad(
                    "series",
                    format!("'{id}': row {i} has {} values, expected {dim}", r.len()),
                ));
            }
            for v in r {
                values.push(v.unwrap_or(0.0));
                mask.push(v.is_some());
            }
        }
        let s = Series { id: id.to_string(), dim, times, values, mask };
        s.check()?;
        Ok(s)
    }

    /// A fully observed series from rows of values.
    pub fn dense(id: &str, times: Vec<f64>, rows: &[Vec<f64>]) -> Result<Series, Error> {
        let dim = rows.first().map_or(1, Vec::len);
        let rows: Vec<Vec<Option<f64>>> =
            rows.iter().map(|r| r.iter().map(|&v| Some(v)).collect()).collect();
        Series::new(id, dim, times, &rows)
    }

    /// An empty series (nothing to predict).
    pub fn empty(id: &str, dim: usize) -> Series {
        Series { id: id.to_string(), dim, times: vec![], values: vec![], mask: vec![] }
    }

    /// Checks the invariants (for series built field by field).
    pub fn check(&self) -> Result<(), Error> {
        let id = &self.id;
        if self.dim == 0 {
            return Err(bad("series", format!("'{id}': dim must be at least 1")));
        }
        let n = self.times.len().checked_mul(self.dim).ok_or_else(|| {
            bad(
                "series",
                format!("'{id}': {} times × {} values overflow", self.times.len(), self.dim),
            )
        })?;
        if self.values.len() != n || self.mask.len() != n {
            return Err(bad(
                "series",
                format!(
                    "'{id}': {} values and {} mask entries for {} times × {}",
                    self.values.len(),
                    self.mask.len(),
                    self.times.len(),
                    self.dim
                ),
            ));
        }
        if let Some(i) = self.times.iter().position(|t| !t.is_finite()) {
            return Err(bad("series", format!("'{id}': time {i} is {}", self.times[i])));
        }
        if let Some(i) = (1..self.times.len()).find(|&i| self.times[i] <= self.times[i - 1]) {
            return Err(bad(
                "series",
                format!(
                    "'{id}': times must increase strictly; {} at row {i} follows {}",
                    self.times[i],
                    self.times[i - 1]
                ),
            ));
        }
        if let Some(i) = self.values.iter().position(|v| !v.is_finite()) {
            return Err(bad(
                "series",
                format!(
                    "'{id}': value {} of row {} is {}",
                    i % self.dim,
                    i / self.dim,
                    self.values[i]
                ),
            ));
        }
        Ok(())
    }

    /// Number of times.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// Whether it has no times.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// Number of observed entries.
    pub fn observed(&self) -> usize {
        self.mask.iter().filter(|&&m| m).count()
    }

    /// Entry `j` at row `i`, if observed (`None` past the rows or the columns).
    pub fn get(&self, i: usize, j: usize) -> Option<f64> {
        if j >= self.dim {
            return None;
        }
        let k = i.checked_mul(self.dim)?.checked_add(j)?;
        if !self.mask.get(k).copied().unwrap_or(false) {
            return None;
        }
        self.values.get(k).copied()
    }

    /// The rows `keep` (indices into the times, increasing) as a new series.
    pub fn select(&self, keep: &[usize]) -> Result<Series, Error> {
        let mut s = Series::empty(&self.id, self.dim);
        for &i in keep {
            if i >= self.len() {
                return Err(bad("row index", format!("{i} of {} in '{}'", self.len(), self.id)));
            }
            s.times.push(self.times[i]);
            s.values.extend_from_slice(&self.values[i * self.dim..(i + 1) * self.dim]);
            s.mask.extend_from_slice(&self.mask[i * self.dim..(i + 1) * self.dim]);
        }
        s.check()?;
        Ok(s)
    }
}

/// What a model conditions on (`obs`) and what it is asked to predict and is scored on
/// (`target`), for one series. Training reconstructs `obs` and, where given, `target`.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Seen by the encoder (at least one time).
    pub obs: Series,
    /// To be predicted; may be empty.
    pub target: Series,
}

impl Example {
    /// Checks both parts: the same id and dim, each a valid series, `obs` not empty.
    pub fn check(&self) -> Result<(), Error> {
        self.obs.check()?;
        self.target.check()?;
        if self.obs.is_empty() {
            return Err(bad("example", format!("'{}' has no observations", self.obs.id)));
        }
        if self.obs.dim != self.target.dim {
            return Err(bad(
                "example",
                format!(
                    "'{}': observations have {} values, targets {}",
                    self.obs.id, self.obs.dim, self.target.dim
                ),
            ));
        }
        Ok(())
    }

    /// Observation `obs` with nothing to predict.
    pub fn observed(obs: Series) -> Example {
        let target = Series::empty(&obs.id, obs.dim);
        Example { obs, target }
    }
}

/// Parses the long format, one observation per row: `series,t,role,x0,x1,...` where
/// `role` is `obs` or `target` and an empty value cell is missing. A header line
/// starting with `series` is skipped; rows may come in any order; series keep the order
/// in which they first appear.
pub fn parse_long_csv(text: &str) -> Result<Vec<Example>, Error> {
    struct Rows {
        id: String,
        obs: Vec<(f64, Vec<Option<f64>>)>,
        target: Vec<(f64, Vec<Option<f64>>)>,
    }
    let mut all: Vec<Rows> = Vec::new();
    let mut index = std::collections::HashMap::new();
    let mut dim: Option<usize> = None;
    for (ln, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (ln == 0 && line.starts_with("series")) {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let at = |detail: String| bad("CSV row", format!("line {}: {detail}", ln + 1));
        if cells.len() < 4 {
            return Err(at(format!("{} cells; expected series,t,role,x0,...", cells.len())));
        }
        let d = cells.len() - 3;
        match dim {
            None => dim = Some(d),
            Some(d0) if d0 != d => return Err(at(format!("{d} values, earlier rows have {d0}"))),
            _ => {}
        }
        let t: f64 =
            cells[1].parse().map_err(|_| at(format!("time '{}' is not a number", cells[1])))?;
        if !t.is_finite() {
            return Err(at(format!("time {t} is not finite")));
        }
        let mut vals = Vec::with_capacity(d);
        for (j, c) in cells[3..].iter().enumerate() {
            vals.push(if c.is_empty() {
                None
            } else {
                let v: f64 =
                    c.parse().map_err(|_| at(format!("value x{j} '{c}' is not a number")))?;
                if !v.is_finite() {
                    return Err(at(format!("value x{j} = {v} is not finite")));
                }
                Some(v)
            });
        }
        let k = *index.entry(cells[0].to_string()).or_insert_with(|| {
            all.push(Rows { id: cells[0].to_string(), obs: vec![], target: vec![] });
            all.len() - 1
        });
        match cells[2] {
            "obs" => all[k].obs.push((t, vals)),
            "target" => all[k].target.push((t, vals)),
            r => return Err(at(format!("role '{r}' must be obs or target"))),
        }
    }
    let dim = dim.ok_or_else(|| bad("CSV", "no data rows".into()))?;
    let build = |id: &str, mut rows: Vec<(f64, Vec<Option<f64>>)>| -> Result<Series, Error> {
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        let times = rows.iter().map(|r| r.0).collect();
        let vals: Vec<Vec<Option<f64>>> = rows.into_iter().map(|r| r.1).collect();
        Series::new(id, dim, times, &vals)
    };
    all.into_iter()
        .map(|r| {
            let ex = Example { obs: build(&r.id, r.obs)?, target: build(&r.id, r.target)? };
            ex.check()?;
            Ok(ex)
        })
        .collect()
}

/// Reads a long-format CSV file (see [`parse_long_csv`]).
pub fn read_long_csv(path: &Path) -> Result<Vec<Example>, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad("CSV file", format!("{}: {e}", path.display())))?;
    parse_long_csv(&text).map_err(|e| match e {
        Error::InvalidArgument { what, detail } => {
            Error::InvalidArgument { what, detail: format!("{}: {detail}", path.display()) }
        }
        e => e,
    })
}

/// Writes examples in the long format (the inverse of [`parse_long_csv`]).
pub fn long_csv(examples: &[Example]) -> String {
    let dim = examples.first().map_or(1, |e| e.obs.dim);
    let mut out = String::from("series,t,role");
    for j in 0..dim {
        out.push_str(&format!(",x{j}"));
    }
    out.push('\n');
    for ex in examples {
        for (role, s) in [("obs", &ex.obs), ("target", &ex.target)] {
            for i in 0..s.len() {
                out.push_str(&format!("{},{},{role}", s.id, s.times[i]));
                for j in 0..s.dim {
                    match s.get(i, j) {
                        Some(v) => out.push_str(&format!(",{v}")),
                        None => out.push(','),
                    }
                }
                out.push('\n');
            }
        }
    }
    out
}

/// An affine rescaling of times and values, fitted on training series, so networks see
/// values of unit scale: `t' = t / time_scale`, `x'_j = (x_j − mean_j) / std_j`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaling {
    /// Divides times.
    pub time_scale: f64,
    /// Per-value means.
    pub mean: Vec<f64>,
    /// Per-value standard deviations (positive).
    pub std: Vec<f64>,
}

impl Scaling {
    /// Fitted on the observed entries of `series`: means, standard deviations, and the
    /// largest time span as the time scale (1 where there is nothing to fit).
    pub fn fit(series: &[&Series]) -> Result<Scaling, Error> {
        let dim =
            series.first().map(|s| s.dim).ok_or_else(|| bad("scaling", "no series".into()))?;
        let (mut n, mut sum, mut sq) = (vec![0.0; dim], vec![0.0; dim], vec![0.0; dim]);
        let mut span: f64 = 0.0;
        for s in series {
            if s.dim != dim {
                return Err(bad("scaling", format!("'{}' has {} values, not {dim}", s.id, s.dim)));
            }
            if let (Some(a), Some(b)) = (s.times.first(), s.times.last()) {
                span = span.max(b - a);
            }
            for i in 0..s.len() {
                for j in 0..dim {
                    if let Some(v) = s.get(i, j) {
                        n[j] += 1.0;
                        sum[j] += v;
                        sq[j] += v * v;
                    }
                }
            }
        }
        let mean: Vec<f64> =
            (0..dim).map(|j| if n[j] > 0.0 { sum[j] / n[j] } else { 0.0 }).collect();
        let std = (0..dim)
            .map(|j| {
                let var =
                    if n[j] > 1.0 { (sq[j] / n[j] - mean[j] * mean[j]).max(0.0) } else { 0.0 };
                if var > 0.0 {
                    var.sqrt()
                } else {
                    1.0
                }
            })
            .collect();
        Ok(Scaling { time_scale: if span > 0.0 { span } else { 1.0 }, mean, std })
    }

    /// Checks a scaling (its fields are public) for series of `dim` values: one mean and
    /// one standard deviation per value, all finite, deviations and the time scale
    /// positive.
    pub fn check(&self, dim: usize) -> Result<(), Error> {
        if self.mean.len() != dim || self.std.len() != dim {
            return Err(bad(
                "scaling",
                format!(
                    "{} means and {} deviations for {dim} values",
                    self.mean.len(),
                    self.std.len()
                ),
            ));
        }
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(bad("scaling", format!("time scale {} must be positive", self.time_scale)));
        }
        if let Some(j) = (0..dim)
            .find(|&j| !(self.mean[j].is_finite() && self.std[j].is_finite() && self.std[j] > 0.0))
        {
            return Err(bad(
                "scaling",
                format!(
                    "value {j}: mean {} and deviation {} (finite, positive)",
                    self.mean[j], self.std[j]
                ),
            ));
        }
        Ok(())
    }

    /// The series rescaled (an error when the scaling was not made for its values).
    pub fn apply(&self, s: &Series) -> Result<Series, Error> {
        s.check()?;
        self.check(s.dim)?;
        let mut out = s.clone();
        for t in &mut out.times {
            *t /= self.time_scale;
        }
        for (k, v) in out.values.iter_mut().enumerate() {
            let j = k % s.dim;
            if out.mask[k] {
                *v = (*v - self.mean[j]) / self.std[j];
            }
        }
        Ok(out)
    }

    /// Both parts of an example rescaled.
    pub fn apply_example(&self, e: &Example) -> Result<Example, Error> {
        Ok(Example { obs: self.apply(&e.obs)?, target: self.apply(&e.target)? })
    }

    /// A prediction made on scaled series back in the data's units (times and values);
    /// an error, leaving `p` untouched, when its rows are not this scaling's width.
    pub fn invert(&self, p: &mut crate::Prediction) -> Result<(), Error> {
        self.check(self.mean.len())?;
        let width = self.mean.len();
        for rows in [&p.mean, &p.lower, &p.upper] {
            if let Some(r) = rows.iter().find(|r| r.len() != width) {
                return Err(bad(
                    "prediction",
                    format!("a row of {} values for a scaling of {width}", r.len()),
                ));
            }
        }
        for t in &mut p.times {
            *t *= self.time_scale;
        }
        for rows in [&mut p.mean, &mut p.lower, &mut p.upper] {
            for r in rows.iter_mut() {
                for (j, v) in r.iter_mut().enumerate() {
                    *v = self.value(j, *v)?;
                }
            }
        }
        Ok(())
    }

    /// A scaled value of column `j` back in the data's units; a column past the scaling's
    /// width is an error.
    pub fn value(&self, j: usize, v: f64) -> Result<f64, Error> {
        match (self.mean.get(j), self.std.get(j)) {
            (Some(m), Some(s)) => Ok(v * s + m),
            _ => Err(bad(
                "scaling",
                format!(
                    "column {j} past a scaling of {} values",
                    self.mean.len().min(self.std.len())
                ),
            )),
        }
    }
}

/// Splits a series' rows at random: each row is held out as a target with probability
/// `fraction` (at least one row stays observed), the rest observed.
pub fn hold_out(s: &Series, fraction: f64, rng: &mut Rng) -> Result<Example, Error> {
    if !(0.0..1.0).contains(&fraction) {
        return Err(bad("hold-out fraction", format!("{fraction} must be in [0, 1)")));
    }
    if s.is_empty() {
        return Err(bad("series", format!("'{}' is empty", s.id)));
    }
    let mut held: Vec<bool> = (0..s.len()).map(|_| rng.uniform() < fraction).collect();
    if held.iter().all(|&h| h) {
        held[0] = false;
    }
    let keep: Vec<usize> = (0..s.len()).filter(|&i| !held[i]).collect();
    let out: Vec<usize> = (0..s.len()).filter(|&i| held[i]).collect();
    Ok(Example { obs: s.select(&keep)?, target: s.select(&out)? })
}

/// `k` distinct indices of `0..n`, increasing, drawn uniformly (a partial shuffle).
pub fn subsample(n: usize, k: usize, rng: &mut Rng) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    let k = k.min(n);
    for i in 0..k {
        let j = i + (rng.uniform() * (n - i) as f64) as usize;
        idx.swap(i, j.min(n - 1));
    }
    let mut out = idx[..k].to_vec();
    out.sort_unstable();
    out
}

/// One of Chen et al.'s spirals: the observed noisy window, the 100 grid points after
/// it (noise-free, to predict), and the noise-free curve over both for plots.
#[derive(Debug, Clone, PartialEq)]
pub struct Spiral {
    /// Observations (`n_obs` of the window's 100 points, noisy) and the next 100 points.
    pub example: Example,
    /// The noise-free curve at the window's and the next 100 grid times.
    pub truth: Series,
    /// Its direction.
    pub clockwise: bool,
}

/// Chen et al. 2018's bi-directional spirals (torchdiffeq `examples/latent_ode.py`):
/// 1000 grid times on `[0, 6π]`; clockwise `z = 6π + 1 − t`, `r = 0.3·50/z`, point
/// `(r cos z − 5, r sin z)`; counter-clockwise `z = t`, `r = 0.3 z`, `(r cos z + 5, r sin z)`.
/// Each spiral picks a direction with probability ½ and a start index uniform on
/// `{100, …, 800}` (so that the 100 points after its window stay on the grid; the
/// example's own range ends at 899 and never uses the points after); its window is the
/// curve at `start … start+99` with times `grid[0..100]` and `N(0, noise²)` noise, of which
/// `n_obs` points (sorted, without replacement) are observed.
pub fn spirals(
    count: usize,
    n_obs: usize,
    noise: f64,
    rng: &mut Rng,
) -> Result<Vec<Spiral>, Error> {
    spiral_set(count, n_obs, noise, false, 800, rng)
}

/// Training windows drawn as torchdiffeq's example draws them: the start index uniform on
/// `{100, …, 899}`, so the windows cover the curve up to index 998 (with [`spirals`]'
/// range, which keeps 100 grid points after every window to score, no training window
/// reaches past index 899 and a late test window's extrapolation runs where training never
/// looked). Only the observed windows: the points after a late window run off the grid.
/// `irregular` draws the observation times as [`irregular_spirals`] does.
pub fn spiral_windows(
    count: usize,
    n_obs: usize,
    noise: f64,
    irregular: bool,
    rng: &mut Rng,
) -> Result<Vec<Series>, Error> {
    Ok(spiral_set(count, n_obs, noise, irregular, 899, rng)?
        .into_iter()
        .map(|s| s.example.obs)
        .collect())
}

/// Training spirals for an extrapolation objective (Rubanova et al. 2019's extrapolation
/// setting): [`spirals`] whose targets, the 100 grid points after each window, carry the
/// same `N(0, noise²)` noise as the window, as a training set would have recorded them. An
/// [`Example`]'s targets are reconstructed in training from the encoding of its
/// observations, so a model trained on these learns to continue a window, not only to
/// reproduce it. The test spirals stay [`spirals`]' (noise-free targets to score).
pub fn extrapolation_spirals(
    count: usize,
    n_obs: usize,
    noise: f64,
    rng: &mut Rng,
) -> Result<Vec<Example>, Error> {
    let set = spiral_set(count, n_obs, noise, false, 800, rng)?;
    Ok(set
        .into_iter()
        .map(|s| {
            let mut ex = s.example;
            for v in &mut ex.target.values {
                *v += noise * rng.normal();
            }
            ex
        })
        .collect())
}

/// [`spirals`] with each spiral's `n_obs` observation times drawn uniformly on the
/// window's span `[0, grid[99]]` (sorted) instead of from its 100 grid points, so no two
/// series share a time: the case where a union-of-times batch stops at every series'
/// times. The targets are the same 100 grid points after the window.
pub fn irregular_spirals(
    count: usize,
    n_obs: usize,
    noise: f64,
    rng: &mut Rng,
) -> Result<Vec<Spiral>, Error> {
    spiral_set(count, n_obs, noise, true, 800, rng)
}

/// The curve at time `t` (on the 1000-point grid's scale `[0, 6π]`).
fn spiral_point(cw: bool, t: f64) -> [f64; 2] {
    if cw {
        let z = 6.0 * std::f64::consts::PI + 1.0 - t;
        let r = 0.3 * 50.0 / z;
        [r * z.cos() - 5.0, r * z.sin()]
    } else {
        let r = 0.3 * t;
        [r * t.cos() + 5.0, r * t.sin()]
    }
}

/// Spirals whose start index is uniform on `{100, …, last_start}`; the targets (and the
/// truth past the window) only where the 100 points after the window are on the grid.
fn spiral_set(
    count: usize,
    n_obs: usize,
    noise: f64,
    irregular: bool,
    last_start: usize,
    rng: &mut Rng,
) -> Result<Vec<Spiral>, Error> {
    if !(1..=100).contains(&n_obs) {
        return Err(bad("observed points", format!("{n_obs} must be in 1..=100")));
    }
    if !(noise.is_finite() && noise >= 0.0) {
        return Err(bad("noise", format!("{noise} must be finite and non-negative")));
    }
    let n_total = 1000;
    let step = 6.0 * std::f64::consts::PI / (n_total - 1) as f64;
    let grid = |i: usize| i as f64 * step;
    let point = |cw: bool, i: usize| -> [f64; 2] { spiral_point(cw, grid(i)) };
    (0..count)
        .map(|k| {
            let cw = rng.uniform() < 0.5;
            let span = last_start - 99;
            let start = 100 + ((rng.uniform() * span as f64) as usize).min(span - 1);
            let id = format!("spiral{k}");
            let obs = if irregular {
                let mut ts: Vec<f64> = (0..n_obs).map(|_| rng.uniform() * grid(99)).collect();
                ts.sort_by(f64::total_cmp);
                ts.dedup();
                let rows: Vec<Vec<f64>> = ts
                    .iter()
                    .map(|&t| {
                        let p = spiral_point(cw, grid(start) + t);
                        vec![p[0] + noise * rng.normal(), p[1] + noise * rng.normal()]
                    })
                    .collect();
                Series::dense(&id, ts, &rows)?
            } else {
                let window: Vec<Vec<f64>> = (0..100)
                    .map(|i| {
                        let p = point(cw, start + i);
                        vec![p[0] + noise * rng.normal(), p[1] + noise * rng.normal()]
                    })
                    .collect();
                let keep = subsample(100, n_obs, rng);
                let rows: Vec<Vec<f64>> = keep.iter().map(|&i| window[i].clone()).collect();
                Series::dense(&id, keep.iter().map(|&i| grid(i)).collect(), &rows)?
            };
            // The grid ends at index 999: a late window keeps its window as truth only.
            let after = if start + 200 <= n_total { 200 } else { 100 };
            let target = if after == 200 {
                let next: Vec<Vec<f64>> =
                    (100..200).map(|i| point(cw, start + i).to_vec()).collect();
                Series::dense(&id, (100..200).map(grid).collect(), &next)?
            } else {
                Series::empty(&id, 2)
            };
            let all: Vec<Vec<f64>> = (0..after).map(|i| point(cw, start + i).to_vec()).collect();
            let truth = Series::dense(&id, (0..after).map(grid).collect(), &all)?;
            Ok(Spiral { example: Example { obs, target }, truth, clockwise: cw })
        })
        .collect()
}

/// Rubanova et al. 2019's periodic toy (`generate_timeseries.py`): 100 times shared by all
/// series (0 and 99 draws of U(0, 5), sorted); per series a frequency `f ~ U(0.4, 0.8)`,
/// `z0 = 1 + N(0, 0.1²)`, values `sin(2π f t) + z0`, plus `0.01·U[0,1)` noise on every
/// point but the first.
pub fn periodic(count: usize, rng: &mut Rng) -> Result<Vec<Series>, Error> {
    let mut times: Vec<f64> = (0..99).map(|_| 5.0 * rng.uniform()).collect();
    times.push(0.0);
    times.sort_by(f64::total_cmp);
    times.dedup();
    (0..count)
        .map(|k| {
            let f = 0.4 + 0.4 * rng.uniform();
            let z0 = 1.0 + 0.1 * rng.normal();
            let rows: Vec<Vec<f64>> = times
                .iter()
                .enumerate()
                .map(|(i, &t)| {
                    let noise = if i == 0 { 0.0 } else { 0.01 * rng.uniform() };
                    vec![(2.0 * std::f64::consts::PI * f * t).sin() + z0 + noise]
                })
                .collect();
            Series::dense(&format!("periodic{k}"), times.clone(), &rows)
        })
        .collect()
}

/// The first `fraction` of a series' times observed, the rest to predict (extrapolation).
pub fn split_at_fraction(s: &Series, fraction: f64) -> Result<Example, Error> {
    if !(fraction > 0.0 && fraction <= 1.0) {
        return Err(bad("split fraction", format!("{fraction} must be in (0, 1]")));
    }
    let cut = ((s.len() as f64 * fraction).round() as usize).clamp(1, s.len().max(1));
    let ex = Example {
        obs: s.select(&(0..cut).collect::<Vec<_>>())?,
        target: s.select(&(cut..s.len()).collect::<Vec<_>>())?,
    };
    ex.check()?;
    Ok(ex)
}

fn read_table(path: &Path) -> Result<(Vec<String>, Vec<Vec<String>>), Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad("data file", format!("{}: {e}", path.display())))?;
    let mut lines = text.lines();
    let header = lines
        .next()
        .ok_or_else(|| bad("data file", format!("{}: empty", path.display())))?
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_string())
        .collect::<Vec<_>>();
    let rows = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(|c| c.trim().trim_matches('"').to_string()).collect())
        .collect();
    Ok((header, rows))
}

fn column(header: &[String], name: &str, path: &Path) -> Result<usize, Error> {
    header
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| bad("data file", format!("{}: no column '{name}'", path.display())))
}

fn number(cell: Option<&String>, path: &Path, line: usize) -> Result<f64, Error> {
    let c =
        cell.ok_or_else(|| bad("data file", format!("{}: line {line} is short", path.display())))?;
    let v: f64 = c.parse().map_err(|_| {
        bad("data file", format!("{}: line {line}: '{c}' is not a number", path.display()))
    })?;
    if !v.is_finite() {
        return Err(bad(
            "data file",
            format!("{}: line {line}: {v} is not finite", path.display()),
        ));
    }
    Ok(v)
}

/// Series from a long table with an id column, a time column and one value column, in
/// the order ids first appear (Theophylline: `Subject, Time, conc`; ChickWeight: `Chick,
/// Time, weight`).
pub fn read_grouped(path: &Path, id: &str, time: &str, value: &str) -> Result<Vec<Series>, Error> {
    let (header, rows) = read_table(path)?;
    let (ci, ct, cv) =
        (column(&header, id, path)?, column(&header, time, path)?, column(&header, value, path)?);
    let mut order: Vec<String> = Vec::new();
    let mut groups: std::collections::HashMap<String, Vec<(f64, f64)>> = Default::default();
    for (k, r) in rows.iter().enumerate() {
        let line = k + 2;
        let name = r.get(ci).cloned().unwrap_or_default();
        let t = number(r.get(ct), path, line)?;
        let v = number(r.get(cv), path, line)?;
        if !groups.contains_key(&name) {
            order.push(name.clone());
        }
        groups.entry(name).or_default().push((t, v));
    }
    order
        .iter()
        .map(|name| {
            let mut pts = groups.remove(name).unwrap_or_default();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let rows: Vec<Vec<f64>> = pts.iter().map(|p| vec![p.1]).collect();
            Series::dense(name, pts.iter().map(|p| p.0).collect(), &rows)
                .map_err(|e| bad("data file", format!("{}: {e}", path.display())))
        })
        .collect()
}

/// Mauna Loa weekly CO2 (`date` as YYYYMMDD, `co2` in ppmv, empty where missing) cut into
/// windows of `weeks` consecutive weeks, one series each, times in years from the
/// window's start; the missing weeks are simply absent (natural gaps).
pub fn read_co2(path: &Path, weeks: usize) -> Result<Vec<Series>, Error> {
    if weeks < 2 {
        return Err(bad("window", format!("{weeks} weeks; at least 2")));
    }
    let (header, rows) = read_table(path)?;
    let (cd, cc) = (column(&header, "date", path)?, column(&header, "co2", path)?);
    let mut out = Vec::new();
    for (w, chunk) in rows.chunks(weeks).enumerate() {
        if chunk.len() < weeks {
            break;
        }
        let (mut times, mut vals) = (Vec::new(), Vec::new());
        for (i, r) in chunk.iter().enumerate() {
            let line = w * weeks + i + 2;
            let _date = number(r.get(cd), path, line)?;
            match r.get(cc).map(String::as_str) {
                None | Some("") => {}
                Some(_) => {
                    vals.push(vec![number(r.get(cc), path, line)?]);
                    times.push(i as f64 * 7.0 / 365.25);
                }
            }
        }
        if times.len() >= 2 {
            let first = chunk.first().and_then(|r| r.get(cd)).cloned().unwrap_or_default();
            out.push(Series::dense(&format!("co2-{first}"), times, &vals)?);
        }
    }
    Ok(out)
}
