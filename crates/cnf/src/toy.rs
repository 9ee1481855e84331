//! FFJORD's eight 2-D toy densities (`rtqichen/ffjord`, `lib/toy_data.py`), generated from
//! a seed, with the true log-density of the six that have one in closed form or as a
//! fine average (for the true entropy a model's NLL is compared with).

use std::f64::consts::PI;

use crate::autodiff::Rng;
use crate::Error;

/// The toys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Toy {
    /// A swiss roll: `t = 1.5π(1 + 2U)`, `(t cos t, t sin t) + n(0, 1)`, all ÷ 5.
    Swissroll,
    /// Two circles (radii 3 and 1.5) with noise σ = 0.24.
    Circles,
    /// Four rings (radii 3, 2.25, 1.5, 0.75) with noise σ = 0.08.
    Rings,
    /// Two interleaved half moons, noise 0.1, then `2x + (-1, -0.2)`.
    Moons,
    /// Eight Gaussians (σ = 0.5/1.414) at the compass points of radius 4/1.414.
    EightGaussians,
    /// Five pinwheel arms.
    Pinwheel,
    /// Two spirals.
    TwoSpirals,
    /// A checkerboard: uniform on 8 squares of side 2 in [-4, 4]².
    Checkerboard,
}

impl Toy {
    /// Every toy.
    pub const ALL: [Toy; 8] = [
        Toy::Swissroll,
        Toy::Circles,
        Toy::Rings,
        Toy::Moons,
        Toy::EightGaussians,
        Toy::Pinwheel,
        Toy::TwoSpirals,
        Toy::Checkerboard,
    ];

    /// FFJORD's name.
    pub fn name(self) -> &'static str {
        match self {
            Toy::Swissroll => "swissroll",
            Toy::Circles => "circles",
            Toy::Rings => "rings",
            Toy::Moons => "moons",
            Toy::EightGaussians => "8gaussians",
            Toy::Pinwheel => "pinwheel",
            Toy::TwoSpirals => "2spirals",
            Toy::Checkerboard => "checkerboard",
        }
    }

    /// `n` samples as rows `(x, y)`.
    pub fn sample(self, n: usize, rng: &mut Rng) -> Vec<[f64; 2]> {
        let mut out = Vec::with_capacity(n);
        match self {
            Toy::Swissroll => {
                for _ in 0..n {
                    let t = 1.5 * PI * (1.0 + 2.0 * rng.uniform());
                    let (x, y) = (t * t.cos() + rng.normal(), t * t.sin() + rng.normal());
                    out.push([x / 5.0, y / 5.0]);
                }
            }
            Toy::Circles => {
                let outer = n / 2;
                let inner = n - outer;
                for (count, r) in [(outer, 1.0), (inner, 0.5)] {
                    for i in 0..count {
                        let a = 2.0 * PI * i as f64 / count as f64;
                        out.push([r * a.cos(), r * a.sin()]);
                    }
                }
                shuffle(&mut out, rng);
                for p in &mut out {
                    p[0] = 3.0 * (p[0] + 0.08 * rng.normal());
                    p[1] = 3.0 * (p[1] + 0.08 * rng.normal());
                }
            }
            Toy::Rings => {
                let q = n / 4;
                for (k, r) in [3.0, 2.25, 1.5, 0.75].into_iter().enumerate() {
                    let count = if k == 3 { n - 3 * q } else { q };
                    for i in 0..count {
                        let a = 2.0 * PI * i as f64 / count as f64;
                        out.push([r * a.cos(), r * a.sin()]);
                    }
                }
                shuffle(&mut out, rng);
                for p in &mut out {
                    p[0] += 0.08 * rng.normal();
                    p[1] += 0.08 * rng.normal();
                }
            }
            Toy::Moons => {
                let upper = n / 2;
                let lower = n - upper;
                let angle =
                    |i: usize, m: usize| if m > 1 { PI * i as f64 / (m - 1) as f64 } else { 0.0 };
                for i in 0..upper {
                    let a = angle(i, upper);
                    out.push([a.cos(), a.sin()]);
                }
                for i in 0..lower {
                    let a = angle(i, lower);
                    out.push([1.0 - a.cos(), 1.0 - a.sin() - 0.5]);
                }
                shuffle(&mut out, rng);
                for p in &mut out {
                    p[0] = 2.0 * (p[0] + 0.1 * rng.normal()) - 1.0;
                    p[1] = 2.0 * (p[1] + 0.1 * rng.normal()) - 0.2;
                }
            }
            Toy::EightGaussians => {
                let centres = eight_centres();
                for _ in 0..n {
                    let k = ((rng.uniform() * 8.0) as usize).min(7);
                    let (cx, cy) = centres[k];
                    let x = 4.0 * cx + 0.5 * rng.normal();
                    let y = 4.0 * cy + 0.5 * rng.normal();
                    out.push([x / 1.414, y / 1.414]);
                }
            }
            Toy::Pinwheel => {
                let arms = 5;
                let per = n / arms;
                for k in 0..arms {
                    for _ in 0..per {
                        let f0 = 0.3 * rng.normal() + 1.0;
                        let f1 = 0.1 * rng.normal();
                        let a = 2.0 * PI * k as f64 / arms as f64 + 0.25 * f0.exp();
                        out.push([
                            2.0 * (f0 * a.cos() + f1 * a.sin()),
                            2.0 * (-f0 * a.sin() + f1 * a.cos()),
                        ]);
                    }
                }
                shuffle(&mut out, rng);
            }
            Toy::TwoSpirals => {
                let m = n / 2;
                let mut half = Vec::with_capacity(m);
                for _ in 0..m {
                    let r = 3.0 * PI * rng.uniform().sqrt();
                    let x = -r.cos() * r + 0.5 * rng.uniform();
                    let y = r.sin() * r + 0.5 * rng.uniform();
                    half.push([x, y]);
                }
                for p in &half {
                    out.push(*p);
                }
                for p in &half {
                    out.push([-p[0], -p[1]]);
                }
                for p in &mut out {
                    p[0] = p[0] / 3.0 + 0.1 * rng.normal();
                    p[1] = p[1] / 3.0 + 0.1 * rng.normal();
                }
            }
            Toy::Checkerboard => {
                for _ in 0..n {
                    let x1 = 4.0 * rng.uniform() - 2.0;
                    let bern = if rng.uniform() < 0.5 { 1.0 } else { 0.0 };
                    let x2 = rng.uniform() - 2.0 * bern + (x1.floor().rem_euclid(2.0));
                    out.push([2.0 * x1, 2.0 * x2]);
                }
            }
        }
        out
    }

    /// The true log-density at `p`, where it is known (`None` for pinwheel and 2spirals).
    pub fn log_density(self, p: [f64; 2]) -> Option<f64> {
        let gauss = |dx: f64, dy: f64, s: f64| {
            -(dx * dx + dy * dy) / (2.0 * s * s) - (2.0 * PI * s * s).ln()
        };
        let ring = |r0: f64, s: f64| {
            // p_r(x) = exp(-(|x|-r)²/(2σ²)) I0e(|x| r/σ²) / (2πσ²), in logs.
            let rho = (p[0] * p[0] + p[1] * p[1]).sqrt();
            -(rho - r0).powi(2) / (2.0 * s * s) + i0e(rho * r0 / (s * s)).ln()
                - (2.0 * PI * s * s).ln()
        };
        Some(match self {
            Toy::EightGaussians => {
                let centres = eight_centres();
                let sigma = 0.5 / 1.414;
                let logs: Vec<f64> = centres
                    .iter()
                    .map(|&(cx, cy)| gauss(p[0] - 4.0 * cx / 1.414, p[1] - 4.0 * cy / 1.414, sigma))
                    .collect();
                log_mean_exp(&logs)
            }
            Toy::Circles => log_mean_exp(&[ring(3.0, 0.24), ring(1.5, 0.24)]),
            Toy::Rings => log_mean_exp(&[
                ring(3.0, 0.08),
                ring(2.25, 0.08),
                ring(1.5, 0.08),
                ring(0.75, 0.08),
            ]),
            Toy::Moons => {
                // The two arcs, each point of a fine grid of θ, mapped by 2x + (-1, -0.2)
                // (noise σ = 0.1 before the map, so 0.2 after).
                let m = 2000;
                let mut logs = Vec::with_capacity(2 * m);
                for i in 0..m {
                    let a = PI * (i as f64 + 0.5) / m as f64;
                    let upper = (2.0 * a.cos() - 1.0, 2.0 * a.sin() - 0.2);
                    let lower = (2.0 * (1.0 - a.cos()) - 1.0, 2.0 * (1.0 - a.sin() - 0.5) - 0.2);
                    logs.push(gauss(p[0] - upper.0, p[1] - upper.1, 0.2));
                    logs.push(gauss(p[0] - lower.0, p[1] - lower.1, 0.2));
                }
                log_mean_exp(&logs)
            }
            Toy::Swissroll => {
                let m = 4000;
                let logs: Vec<f64> = (0..m)
                    .map(|i| {
                        let t = 1.5 * PI * (1.0 + 2.0 * (i as f64 + 0.5) / m as f64);
                        gauss(p[0] - t * t.cos() / 5.0, p[1] - t * t.sin() / 5.0, 0.2)
                    })
                    .collect();
                log_mean_exp(&logs)
            }
            Toy::Checkerboard => {
                let (x1, x2) = (p[0] / 2.0, p[1] / 2.0);
                let inside = (-2.0..2.0).contains(&x1) && (-2.0..2.0).contains(&x2);
                let band = x1.floor().rem_euclid(2.0);
                // x2 ∈ [band, band + 1) or [band - 2, band - 1).
                let on = inside
                    && ((band..band + 1.0).contains(&x2) || (band - 2.0..band - 1.0).contains(&x2));
                if on {
                    -(32.0f64).ln()
                } else {
                    f64::NEG_INFINITY
                }
            }
            Toy::Pinwheel | Toy::TwoSpirals => return None,
        })
    }
}

impl std::str::FromStr for Toy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Toy::ALL.into_iter().find(|t| t.name().eq_ignore_ascii_case(s)).ok_or_else(|| {
            Error::InvalidArgument {
                what: "toy",
                detail: format!(
                    "'{s}'; valid: {}",
                    Toy::ALL.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
                ),
            }
        })
    }
}

/// The unit compass points of 8gaussians (scaled by 4, then the data by 1/1.414).
fn eight_centres() -> [(f64, f64); 8] {
    let s = 1.0 / 2f64.sqrt();
    [(1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0), (s, s), (s, -s), (-s, s), (-s, -s)]
}

fn shuffle(v: &mut [[f64; 2]], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = ((rng.uniform() * (i + 1) as f64) as usize).min(i);
        v.swap(i, j);
    }
}

fn log_mean_exp(v: &[f64]) -> f64 {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + (v.iter().map(|x| (x - m).exp()).sum::<f64>() / v.len() as f64).ln()
}

/// `e^{-x} I0(x)` for `x ≥ 0` (Abramowitz & Stegun 9.8.1 and 9.8.2; relative error below
/// 2e-7).
pub fn i0e(x: f64) -> f64 {
    let x = x.abs();
    if x <= 3.75 {
        let t = (x / 3.75).powi(2);
        let i0 = 1.0
            + t * (3.5156229
                + t * (3.0899424
                    + t * (1.2067492 + t * (0.2659732 + t * (0.0360768 + t * 0.0045813)))));
        i0 * (-x).exp()
    } else {
        let t = 3.75 / x;
        let p = 0.39894228
            + t * (0.01328592
                + t * (0.00225319
                    + t * (-0.00157565
                        + t * (0.00916281
                            + t * (-0.02057706
                                + t * (0.02635537 + t * (-0.01647633 + t * 0.00392377)))))));
        p / x.sqrt()
    }
}
