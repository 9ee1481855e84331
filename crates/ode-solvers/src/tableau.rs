//! Explicit Runge-Kutta methods as data: Butcher tableaus, error estimators and dense output.
//!
//! Every method of the one engine in [`crate::RkIntegrator`] is a [`Tableau`]. Coefficients are stored
//! as `f64`, each table citing where it comes from; [`Tableau::check`] validates them (row
//! sums, order conditions up to order 4, consistency of the interpolant) and the test suite
//! measures the orders of every method and interpolant.
//!
//! Dense output is stored uniformly as polynomials: over a step from `(t0, y0)` with size
//! `h`, `y(t0 + θh) = y0 + h Σ_j B_j(θ) k_j`, where `k_j` runs over the method's stages
//! followed by any extra stages the interpolant needs (DOP853 evaluates three, methods
//! without their own interpolant one: `f(t1, y1)` for cubic Hermite). `B_j` is kept as
//! power-basis coefficients, derived here from the form in which each paper publishes it.

use std::sync::OnceLock;

/// How a method estimates its local error.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorEstimate {
    /// No estimate: a fixed-step method.
    None,
    /// An embedded pair: `err = h Σ_j e_j k_j` with `e = b - b̂`.
    Embedded {
        /// Order of the embedded solution `b̂`.
        order: u32,
        /// The weights `b - b̂`, one per stage.
        weights: Vec<f64>,
    },
    /// Hairer's combined estimator of DOP853 (Hairer, Nørsett & Wanner, *Solving ODEs I*,
    /// §II.10): with `N5 = ‖h Σ e5_j k_j‖` and `N3 = ‖h Σ e3_j k_j‖`,
    /// `err = N5² / sqrt(N5² + 0.01 N3²)`, which behaves like an order-7 estimate.
    Dop853 {
        /// Fifth-order error weights.
        e5: Vec<f64>,
        /// Third-order error weights.
        e3: Vec<f64>,
    },
}

/// A continuous extension (interpolant) over each step.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseOutput {
    /// Order `q` of the interpolant: its local error over a step is `O(h^(q+1))`.
    pub order: u32,
    /// `c` of the extra stages, evaluated only when dense output is needed.
    pub extra_c: Vec<f64>,
    /// Rows of `a` of the extra stages; row `i` covers all earlier stages.
    pub extra_a: Vec<Vec<f64>>,
    /// `weights[j][d]`: coefficient of `θ^d` in `B_j(θ)`, `j` over all stages (main, then
    /// extra).
    pub weights: Vec<Vec<f64>>,
}

/// An explicit Runge-Kutta method.
#[derive(Debug, Clone, PartialEq)]
pub struct Tableau {
    /// Short name, as in [`crate::Method`].
    pub name: &'static str,
    /// Where the coefficients come from.
    pub reference: &'static str,
    /// Order of the propagated solution.
    pub order: u32,
    /// Nodes `c_i`.
    pub c: Vec<f64>,
    /// Strictly lower-triangular `a`: row `i` has `i` entries.
    pub a: Vec<Vec<f64>>,
    /// Weights `b_i` of the propagated solution.
    pub b: Vec<f64>,
    /// The error estimator.
    pub error: ErrorEstimate,
    /// The interpolant.
    pub dense: DenseOutput,
}

impl Tableau {
    /// Number of stages (including a first-same-as-last stage).
    pub fn stages(&self) -> usize {
        self.c.len()
    }

    /// First same as last: the last stage is evaluated at `(t + h, y_{n+1})`, so it is the
    /// first stage of the next step and costs nothing there.
    pub fn is_fsal(&self) -> bool {
        let s = self.stages();
        s > 1
            && self.c[s - 1] == 1.0
            && self.b.get(s - 1) == Some(&0.0)
            && self.a.get(s - 1).is_some_and(|row| row.iter().zip(&self.b).all(|(a, b)| a == b))
    }

    /// Order used by the step-size controller's exponent `1 / (q + 1)`.
    pub fn error_order(&self) -> Option<u32> {
        match &self.error {
            ErrorEstimate::None => None,
            ErrorEstimate::Embedded { order, .. } => Some(*order),
            ErrorEstimate::Dop853 { .. } => Some(7),
        }
    }

    /// Evaluates the dense-output weights `B_j(θ)` into `out`, whose length must be the
    /// number of weights (all stages, extra dense stages included).
    pub fn dense_weights(&self, theta: f64, out: &mut [f64]) -> Result<(), crate::Error> {
        if out.len() != self.dense.weights.len() {
            return Err(crate::Error::DimensionMismatch {
                what: "tableau dense weights",
                expected: self.dense.weights.len(),
                got: out.len(),
            });
        }
        for (o, w) in out.iter_mut().zip(&self.dense.weights) {
            *o = w.iter().rev().fold(0.0, |acc, &c| acc * theta + c);
        }
        Ok(())
    }

    /// Validates the tableau: shapes, `Σ_j a_ij = c_i`, the order conditions up to
    /// `min(order, 4)` for `b` (and for `b̂` of an embedded pair), and that the interpolant
    /// starts at `y0` and ends at `y1`. Returns a description of the first failure.
    pub fn check(&self) -> Result<(), String> {
        let s = self.stages();
        let tol = 1e-12;
        if self.a.len() != s || self.b.len() != s {
            return Err(format!("{}: a or b has the wrong number of rows", self.name));
        }
        for (i, row) in self.a.iter().enumerate() {
            if row.len() != i {
                return Err(format!("{}: row {i} of a has {} entries", self.name, row.len()));
            }
            let sum: f64 = row.iter().sum();
            if (sum - self.c[i]).abs() > tol {
                return Err(format!(
                    "{}: row {i} of a sums to {sum}, c = {}",
                    self.name, self.c[i]
                ));
            }
        }
        let weights_len = |w: &[f64], what: &str| {
            if w.len() == s {
                Ok(())
            } else {
                Err(format!("{}: {what} has {} entries for {s} stages", self.name, w.len()))
            }
        };
        match &self.error {
            ErrorEstimate::None => {}
            ErrorEstimate::Embedded { weights, .. } => weights_len(weights, "the error weights")?,
            ErrorEstimate::Dop853 { e5, e3 } => {
                weights_len(e5, "e5")?;
                weights_len(e3, "e3")?;
            }
        }
        if self.dense.extra_a.len() != self.dense.extra_c.len() {
            return Err(format!(
                "{}: {} extra stage rows for {} extra nodes",
                self.name,
                self.dense.extra_a.len(),
                self.dense.extra_c.len()
            ));
        }
        order_conditions(&self.a, &self.c, &self.b, self.order.min(4))
            .map_err(|e| format!("{}: b: {e}", self.name))?;
        if let ErrorEstimate::Embedded { order, weights } = &self.error {
            let bhat: Vec<f64> = self.b.iter().zip(weights).map(|(b, e)| b - e).collect();
            order_conditions(&self.a, &self.c, &bhat, (*order).min(4))
                .map_err(|e| format!("{}: b̂: {e}", self.name))?;
        }
        let total = s + self.dense.extra_c.len();
        if self.dense.weights.len() != total {
            return Err(format!("{}: dense weights cover the wrong number of stages", self.name));
        }
        for (i, row) in self.dense.extra_a.iter().enumerate() {
            let sum: f64 = row.iter().sum();
            if row.len() != s + i || (sum - self.dense.extra_c[i]).abs() > tol {
                return Err(format!("{}: extra stage {i} is inconsistent", self.name));
            }
        }
        let mut w = vec![0.0; total];
        self.dense_weights(0.0, &mut w).map_err(|e| format!("{}: {e}", self.name))?;
        if w.iter().any(|x| x.abs() > tol) {
            return Err(format!("{}: the interpolant does not start at y0", self.name));
        }
        self.dense_weights(1.0, &mut w).map_err(|e| format!("{}: {e}", self.name))?;
        let b_ext = self.b.iter().chain(std::iter::repeat(&0.0));
        if w.iter().zip(b_ext).any(|(x, b)| (x - b).abs() > 1e-10) {
            return Err(format!("{}: the interpolant does not end at y1", self.name));
        }
        Ok(())
    }
}

/// Checks the order conditions (rooted trees up to order 4) for weights `b`.
fn order_conditions(a: &[Vec<f64>], c: &[f64], b: &[f64], order: u32) -> Result<(), String> {
    let s = c.len();
    let av = |v: &[f64]| -> Vec<f64> {
        (0..s).map(|i| a[i].iter().zip(v).map(|(x, y)| x * y).sum()).collect()
    };
    let dot = |u: &[f64], v: &[f64]| -> f64 { u.iter().zip(v).map(|(x, y)| x * y).sum() };
    let pw = |k: i32| -> Vec<f64> { c.iter().map(|x| x.powi(k)).collect() };
    let ones = vec![1.0; s];
    let ac = av(c);
    let cac: Vec<f64> = c.iter().zip(&ac).map(|(x, y)| x * y).collect();
    let conditions: [(u32, &str, f64, f64); 8] = [
        (1, "Σb = 1", dot(b, &ones), 1.0),
        (2, "Σbc = 1/2", dot(b, c), 0.5),
        (3, "Σbc² = 1/3", dot(b, &pw(2)), 1.0 / 3.0),
        (3, "Σbac = 1/6", dot(b, &ac), 1.0 / 6.0),
        (4, "Σbc³ = 1/4", dot(b, &pw(3)), 0.25),
        (4, "Σbcac = 1/8", dot(b, &cac), 0.125),
        (4, "Σbac² = 1/12", dot(b, &av(&pw(2))), 1.0 / 12.0),
        (4, "Σbaac = 1/24", dot(b, &av(&ac)), 1.0 / 24.0),
    ];
    for (p, name, got, want) in conditions {
        if p <= order && (got - want).abs() > 1e-12 {
            return Err(format!("order condition {name} fails: {got}"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Building interpolants.

/// A polynomial in θ whose coefficients are stage-weight vectors: `p[d][j]`.
type StagePoly = Vec<Vec<f64>>;

fn unit(n: usize, j: usize) -> Vec<f64> {
    let mut v = vec![0.0; n];
    v[j] = 1.0;
    v
}

fn lin(terms: &[(f64, &[f64])]) -> Vec<f64> {
    let n = terms.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    let mut out = vec![0.0; n];
    for (k, v) in terms {
        for (o, x) in out.iter_mut().zip(v.iter()) {
            *o += k * x;
        }
    }
    out
}

/// Multiplies by `θ` (`one_minus = false`) or by `1 - θ`.
fn mul_theta(p: &StagePoly, one_minus: bool) -> StagePoly {
    let n = p[0].len();
    let mut out = vec![vec![0.0; n]; p.len() + 1];
    for (d, coeffs) in p.iter().enumerate() {
        for (j, &x) in coeffs.iter().enumerate() {
            out[d + 1][j] += if one_minus { -x } else { x };
            if one_minus {
                out[d][j] += x;
            }
        }
    }
    out
}

/// Converts the nested form of Hairer's DOPRI codes,
/// `y - y0 = θ(F0 + (1-θ)(F1 + θ(F2 + (1-θ)(F3 + ...))))`, with each `F_i` a vector of
/// weights of `h k_j`, into per-stage power-basis weights `[j][d]`.
fn nested_to_weights(fs: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = fs[0].len();
    let last = fs.len() - 1;
    let mut p: StagePoly = vec![fs[last].clone()];
    for i in (0..last).rev() {
        p = mul_theta(&p, (i + 1) % 2 == 1);
        for (o, x) in p[0].iter_mut().zip(&fs[i]) {
            *o += x;
        }
    }
    let p = mul_theta(&p, false);
    (0..n).map(|j| p.iter().map(|row| row[j]).collect()).collect()
}

/// The three leading terms of the nested form: cubic Hermite interpolation between
/// `(y0, f0)` and `(y1, f1)`. `f1_stage` is the index of the stage equal to `f(t1, y1)`.
fn hermite_terms(b: &[f64], n: usize, f1_stage: usize) -> Vec<Vec<f64>> {
    let mut delta = b.to_vec();
    delta.resize(n, 0.0);
    let e0 = unit(n, 0);
    let e1 = unit(n, f1_stage);
    vec![
        delta.clone(),
        lin(&[(1.0, &e0), (-1.0, &delta)]),
        lin(&[(2.0, &delta), (-1.0, &e0), (-1.0, &e1)]),
    ]
}

/// Cubic Hermite dense output for a method without an interpolant of its own; costs one
/// extra evaluation `f(t1, y1)` per step where it is used, none for FSAL methods.
fn hermite_dense(c: &[f64], b: &[f64], fsal: bool, order: u32) -> DenseOutput {
    let s = c.len();
    let (extra_c, extra_a, f1) =
        if fsal { (vec![], vec![], s - 1) } else { (vec![1.0], vec![b.to_vec()], s) };
    let n = s + extra_c.len();
    DenseOutput {
        order: order.min(3),
        extra_c,
        extra_a,
        weights: nested_to_weights(&hermite_terms(b, n, f1)),
    }
}

/// Expands a product of polynomials (each given by power-basis coefficients) times a
/// constant.
fn poly_product(k: f64, factors: &[&[f64]]) -> Vec<f64> {
    let mut out = vec![k];
    for f in factors {
        let mut next = vec![0.0; out.len() + f.len() - 1];
        for (i, x) in out.iter().enumerate() {
            for (j, y) in f.iter().enumerate() {
                next[i + j] += x * y;
            }
        }
        out = next;
    }
    out
}

fn sparse(n: usize, entries: &[(usize, f64)]) -> Vec<f64> {
    let mut v = vec![0.0; n];
    for &(i, x) in entries {
        v[i] = x;
    }
    v
}

// ---------------------------------------------------------------------------------------
// The methods.

fn fixed(
    name: &'static str,
    reference: &'static str,
    order: u32,
    c: Vec<f64>,
    a: Vec<Vec<f64>>,
    b: Vec<f64>,
) -> Tableau {
    let dense = hermite_dense(&c, &b, false, order);
    Tableau { name, reference, order, c, a, b, error: ErrorEstimate::None, dense }
}

fn euler() -> Tableau {
    fixed(
        "Euler",
        "L. Euler, Institutionum calculi integralis (1768)",
        1,
        vec![0.0],
        vec![vec![]],
        vec![1.0],
    )
}

fn midpoint() -> Tableau {
    fixed(
        "Midpoint",
        "C. Runge, Math. Ann. 46 (1895); Hairer, Nørsett & Wanner, Solving ODEs I, §II.1",
        2,
        vec![0.0, 0.5],
        vec![vec![], vec![0.5]],
        vec![0.0, 1.0],
    )
}

fn heun() -> Tableau {
    fixed(
        "Heun",
        "K. Heun, Z. Math. Phys. 45 (1900) (explicit trapezoidal rule)",
        2,
        vec![0.0, 1.0],
        vec![vec![], vec![1.0]],
        vec![0.5, 0.5],
    )
}

fn rk4() -> Tableau {
    fixed(
        "Rk4",
        "W. Kutta, Z. Math. Phys. 46 (1901): the classic fourth-order method",
        4,
        vec![0.0, 0.5, 0.5, 1.0],
        vec![vec![], vec![0.5], vec![0.0, 0.5], vec![0.0, 0.0, 1.0]],
        vec![1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0],
    )
}

fn heun_euler() -> Tableau {
    // Continuous extension of order 2: b1(θ) = θ - θ²/2, b2(θ) = θ²/2.
    Tableau {
        name: "HeunEuler",
        reference:
            "Heun's method with embedded Euler (Hairer, Nørsett & Wanner, Solving ODEs I, §II.4)",
        order: 2,
        c: vec![0.0, 1.0],
        a: vec![vec![], vec![1.0]],
        b: vec![0.5, 0.5],
        error: ErrorEstimate::Embedded { order: 1, weights: vec![-0.5, 0.5] },
        dense: DenseOutput {
            order: 2,
            extra_c: vec![],
            extra_a: vec![],
            weights: vec![vec![0.0, 1.0, -0.5], vec![0.0, 0.0, 0.5]],
        },
    }
}

fn bosh3() -> Tableau {
    let c = vec![0.0, 0.5, 0.75, 1.0];
    let b = vec![2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0, 0.0];
    let bhat = [7.0 / 24.0, 0.25, 1.0 / 3.0, 0.125];
    let dense = hermite_dense(&c, &b, true, 3);
    Tableau {
        name: "Bosh3",
        reference: "P. Bogacki & L. F. Shampine, Appl. Math. Lett. 2 (1989) 321-325; cubic Hermite interpolant",
        order: 3,
        a: vec![vec![], vec![0.5], vec![0.0, 0.75], vec![2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0]],
        error: ErrorEstimate::Embedded {
            order: 2,
            weights: b.iter().zip(bhat).map(|(b, bh)| b - bh).collect(),
        },
        c,
        b,
        dense,
    }
}

fn dopri5() -> Tableau {
    let b =
        vec![35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0, 0.0];
    // Dense output: Hairer's DOPRI5 code (contd5), coefficients d_i from Hairer, Nørsett &
    // Wanner, Solving ODEs I, §II.6, table of the continuous extension (order 4).
    let d = vec![
        -12715105075.0 / 11282082432.0,
        0.0,
        87487479700.0 / 32700410799.0,
        -10690763975.0 / 1880347072.0,
        701980252875.0 / 199316789632.0,
        -1453857185.0 / 822651844.0,
        69997945.0 / 29380423.0,
    ];
    let mut fs = hermite_terms(&b, 7, 6);
    fs.push(d);
    Tableau {
        name: "Dopri5",
        reference: "J. R. Dormand & P. J. Prince, J. Comput. Appl. Math. 6 (1980) 19-26; dense output of Hairer, Nørsett & Wanner, Solving ODEs I, §II.6",
        order: 5,
        c: vec![0.0, 0.2, 0.3, 0.8, 8.0 / 9.0, 1.0, 1.0],
        a: vec![
            vec![],
            vec![0.2],
            vec![3.0 / 40.0, 9.0 / 40.0],
            vec![44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
            vec![19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0],
            vec![9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0],
            b[..6].to_vec(),
        ],
        // The embedded fourth-order solution is torchdiffeq's and diffrax's (torchdiffeq's
        // `_DORMAND_PRINCE_SHAMPINE_TABLEAU`, diffrax's `_dopri5_tableau`: b̂ = 1951/21600,
        // 0, 22642/50085, 451/720, -12231/42400, 649/6300, 1/60). Its error vector is
        // exactly 2/3 of the one from Hairer's DOPRI5 code (b̂ = 5179/57600, …, 1/40), so
        // at the same `rtol` this takes the peers' steps, not (3/2)^(1/5) ≈ 8% more.
        error: ErrorEstimate::Embedded {
            order: 4,
            weights: vec![
                71.0 / 86400.0,
                0.0,
                -142.0 / 50085.0,
                71.0 / 2880.0,
                -5751.0 / 169600.0,
                44.0 / 1575.0,
                -1.0 / 60.0,
            ],
        },
        dense: DenseOutput { order: 4, extra_c: vec![], extra_a: vec![], weights: nested_to_weights(&fs) },
        b,
    }
}

fn tsit5() -> Tableau {
    // Coefficients to the digits of Tsitouras (2011), Table 1, as transcribed in diffrax's
    // `_solver/tsit5.py`; the interpolant is the paper's continuous extension (order 4).
    let b = vec![
        0.09646076681806523,
        0.01,
        0.4798896504144996,
        1.379008574103742,
        -3.290069515436081,
        2.324710524099774,
        0.0,
    ];
    let bhat = [
        0.09468075576583945,
        0.009183565540343254,
        0.4877705284247616,
        1.234297566930479,
        -2.7077123499835256,
        1.866628418170587,
        1.0 / 66.0,
    ];
    let t = [0.0, 1.0];
    let sq = |p: f64, q: f64| [q, p, 1.0]; // θ² + pθ + q
    let lin1 = |r: f64| [-r, 1.0]; // θ - r
    let tt = [0.0, 0.0, 1.0];
    let weights = vec![
        poly_product(
            -1.0530884977290216,
            &[&t, &lin1(1.3299890189751412), &sq(-1.4364028541716351, 0.7139816917074209)],
        ),
        poly_product(0.1017, &[&tt, &sq(-2.1966568338249754, 1.2949852507374631)]),
        poly_product(2.490627285651252793, &[&tt, &sq(-2.38535645472061657, 1.57803468208092486)]),
        poly_product(
            -16.54810288924490272,
            &[&lin1(1.21712927295533244), &lin1(0.61620406037800089), &tt],
        ),
        poly_product(
            47.37952196281928122,
            &[&lin1(1.203071208372362603), &lin1(0.658047292653547382), &tt],
        ),
        poly_product(-34.87065786149660974, &[&lin1(1.2), &lin1(0.666666666666666667), &tt]),
        poly_product(2.5, &[&lin1(1.0), &lin1(0.6), &tt]),
    ];
    Tableau {
        name: "Tsit5",
        reference: "Ch. Tsitouras, Comput. Math. Appl. 62 (2011) 770-775",
        order: 5,
        c: vec![0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0],
        a: vec![
            vec![],
            vec![0.161],
            vec![-0.008480655492356989, 0.335480655492357],
            vec![2.897153057105493, -6.359448489975075, 4.3622954328695815],
            vec![5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525],
            vec![
                5.86145544294642,
                -12.92096931784711,
                8.159367898576159,
                -0.071584973281401,
                -0.028269050394068383,
            ],
            b[..6].to_vec(),
        ],
        error: ErrorEstimate::Embedded {
            order: 4,
            weights: b.iter().zip(bhat).map(|(b, bh)| b - bh).collect(),
        },
        dense: DenseOutput { order: 4, extra_c: vec![], extra_a: vec![], weights },
        b,
    }
}

fn dop853() -> Tableau {
    // Hairer's DOP853 (Hairer, Nørsett & Wanner, Solving ODEs I, §II.10, and the Fortran
    // code dop853.f), coefficients as transcribed in SciPy's
    // `scipy/integrate/_ivp/dop853_coefficients.py`. Stage 13 is f(t + h, y1) (FSAL);
    // stages 14-16 exist only for the 7th-order interpolant.
    let c = vec![
        0.0,
        0.526001519587677318785587544488e-01,
        0.789002279381515978178381316732e-01,
        0.118350341907227396726757197510,
        0.281649658092772603273242802490,
        0.333333333333333333333333333333,
        0.25,
        0.307692307692307692307692307692,
        0.651282051282051282051282051282,
        0.6,
        0.857142857142857142857142857142,
        1.0,
        1.0,
    ];
    let b_entries = [
        (0, 5.42937341165687622380535766363e-2),
        (5, 4.45031289275240888144113950566),
        (6, 1.89151789931450038304281599044),
        (7, -5.8012039600105847814672114227),
        (8, 3.1116436695781989440891606237e-1),
        (9, -1.52160949662516078556178806805e-1),
        (10, 2.01365400804030348374776537501e-1),
        (11, 4.47106157277725905176885569043e-2),
    ];
    let a = vec![
        vec![],
        sparse(1, &[(0, 5.26001519587677318785587544488e-2)]),
        sparse(
            2,
            &[(0, 1.97250569845378994544595329183e-2), (1, 5.91751709536136983633785987549e-2)],
        ),
        sparse(
            3,
            &[(0, 2.95875854768068491816892993775e-2), (2, 8.87627564304205475450678981324e-2)],
        ),
        sparse(
            4,
            &[
                (0, 2.41365134159266685502369798665e-1),
                (2, -8.84549479328286085344864962717e-1),
                (3, 9.24834003261792003115737966543e-1),
            ],
        ),
        sparse(
            5,
            &[
                (0, 3.7037037037037037037037037037e-2),
                (3, 1.70828608729473871279604482173e-1),
                (4, 1.25467687566822425016691814123e-1),
            ],
        ),
        sparse(
            6,
            &[
                (0, 3.7109375e-2),
                (3, 1.70252211019544039314978060272e-1),
                (4, 6.02165389804559606850219397283e-2),
                (5, -1.7578125e-2),
            ],
        ),
        sparse(
            7,
            &[
                (0, 3.70920001185047927108779319836e-2),
                (3, 1.70383925712239993810214054705e-1),
                (4, 1.07262030446373284651809199168e-1),
                (5, -1.53194377486244017527936158236e-2),
                (6, 8.27378916381402288758473766002e-3),
            ],
        ),
        sparse(
            8,
            &[
                (0, 6.24110958716075717114429577812e-1),
                (3, -3.36089262944694129406857109825),
                (4, -8.68219346841726006818189891453e-1),
                (5, 2.75920996994467083049415600797e1),
                (6, 2.01540675504778934086186788979e1),
                (7, -4.34898841810699588477366255144e1),
            ],
        ),
        sparse(
            9,
            &[
                (0, 4.77662536438264365890433908527e-1),
                (3, -2.48811461997166764192642586468),
                (4, -5.90290826836842996371446475743e-1),
                (5, 2.12300514481811942347288949897e1),
                (6, 1.52792336328824235832596922938e1),
                (7, -3.32882109689848629194453265587e1),
                (8, -2.03312017085086261358222928593e-2),
            ],
        ),
        sparse(
            10,
            &[
                (0, -9.3714243008598732571704021658e-1),
                (3, 5.18637242884406370830023853209),
                (4, 1.09143734899672957818500254654),
                (5, -8.14978701074692612513997267357),
                (6, -1.85200656599969598641566180701e1),
                (7, 2.27394870993505042818970056734e1),
                (8, 2.49360555267965238987089396762),
                (9, -3.0467644718982195003823669022),
            ],
        ),
        sparse(
            11,
            &[
                (0, 2.27331014751653820792359768449),
                (3, -1.05344954667372501984066689879e1),
                (4, -2.00087205822486249909675718444),
                (5, -1.79589318631187989172765950534e1),
                (6, 2.79488845294199600508499808837e1),
                (7, -2.85899827713502369474065508674),
                (8, -8.87285693353062954433549289258),
                (9, 1.23605671757943030647266201528e1),
                (10, 6.43392746015763530355970484046e-1),
            ],
        ),
        sparse(12, &b_entries),
    ];
    let b = sparse(13, &b_entries);
    let mut e3 = b.clone();
    e3[0] -= 0.244094488188976377952755905512;
    e3[8] -= 0.733846688281611857341361741547;
    e3[11] -= 0.220588235294117647058823529412e-1;
    let e5 = sparse(
        13,
        &[
            (0, 0.1312004499419488073250102996e-1),
            (5, -0.1225156446376204440720569753e1),
            (6, -0.4957589496572501915214079952),
            (7, 0.1664377182454986536961530415e1),
            (8, -0.3503288487499736816886487290),
            (9, 0.3341791187130174790297318841),
            (10, 0.8192320648511571246570742613e-1),
            (11, -0.2235530786388629525884427845e-1),
        ],
    );
    let extra_c = vec![0.1, 0.2, 0.777777777777777777777777777778];
    let extra_a = vec![
        sparse(
            13,
            &[
                (0, 5.61675022830479523392909219681e-2),
                (6, 2.53500210216624811088794765333e-1),
                (7, -2.46239037470802489917441475441e-1),
                (8, -1.24191423263816360469010140626e-1),
                (9, 1.5329179827876569731206322685e-1),
                (10, 8.20105229563468988491666602057e-3),
                (11, 7.56789766054569976138603589584e-3),
                (12, -8.298e-3),
            ],
        ),
        sparse(
            14,
            &[
                (0, 3.18346481635021405060768473261e-2),
                (5, 2.83009096723667755288322961402e-2),
                (6, 5.35419883074385676223797384372e-2),
                (7, -5.49237485713909884646569340306e-2),
                (10, -1.08347328697249322858509316994e-4),
                (11, 3.82571090835658412954920192323e-4),
                (12, -3.40465008687404560802977114492e-4),
                (13, 1.41312443674632500278074618366e-1),
            ],
        ),
        sparse(
            15,
            &[
                (0, -4.28896301583791923408573538692e-1),
                (5, -4.69762141536116384314449447206),
                (6, 7.68342119606259904184240953878),
                (7, 4.06898981839711007970213554331),
                (8, 3.56727187455281109270669543021e-1),
                (12, -1.39902416515901462129418009734e-3),
                (13, 2.9475147891527723389556272149),
                (14, -9.15095847217987001081870187138),
            ],
        ),
    ];
    let d = [
        sparse(
            16,
            &[
                (0, -0.84289382761090128651353491142e1),
                (5, 0.56671495351937776962531783590),
                (6, -0.30689499459498916912797304727e1),
                (7, 0.23846676565120698287728149680e1),
                (8, 0.21170345824450282767155149946e1),
                (9, -0.87139158377797299206789907490),
                (10, 0.22404374302607882758541771650e1),
                (11, 0.63157877876946881815570249290),
                (12, -0.88990336451333310820698117400e-1),
                (13, 0.18148505520854727256656404962e2),
                (14, -0.91946323924783554000451984436e1),
                (15, -0.44360363875948939664310572000e1),
            ],
        ),
        sparse(
            16,
            &[
                (0, 0.10427508642579134603413151009e2),
                (5, 0.24228349177525818288430175319e3),
                (6, 0.16520045171727028198505394887e3),
                (7, -0.37454675472269020279518312152e3),
                (8, -0.22113666853125306036270938578e2),
                (9, 0.77334326684722638389603898808e1),
                (10, -0.30674084731089398182061213626e2),
                (11, -0.93321305264302278729567221706e1),
                (12, 0.15697238121770843886131091075e2),
                (13, -0.31139403219565177677282850411e2),
                (14, -0.93529243588444783865713862664e1),
                (15, 0.35816841486394083752465898540e2),
            ],
        ),
        sparse(
            16,
            &[
                (0, 0.19985053242002433820987653617e2),
                (5, -0.38703730874935176555105901742e3),
                (6, -0.18917813819516756882830838328e3),
                (7, 0.52780815920542364900561016686e3),
                (8, -0.11573902539959630126141871134e2),
                (9, 0.68812326946963000169666922661e1),
                (10, -0.10006050966910838403183860980e1),
                (11, 0.77771377980534432092869265740),
                (12, -0.27782057523535084065932004339e1),
                (13, -0.60196695231264120758267380846e2),
                (14, 0.84320405506677161018159903784e2),
                (15, 0.11992291136182789328035130030e2),
            ],
        ),
        sparse(
            16,
            &[
                (0, -0.25693933462703749003312586129e2),
                (5, -0.15418974869023643374053993627e3),
                (6, -0.23152937917604549567536039109e3),
                (7, 0.35763911791061412378285349910e3),
                (8, 0.93405324183624310003907691704e2),
                (9, -0.37458323136451633156875139351e2),
                (10, 0.10409964950896230045147246184e3),
                (11, 0.29840293426660503123344363579e2),
                (12, -0.43533456590011143754432175058e2),
                (13, 0.96324553959188282948394950600e2),
                (14, -0.39177261675615439165231486172e2),
                (15, -0.14972683625798562581422125276e3),
            ],
        ),
    ];
    let mut fs = hermite_terms(&b, 16, 12);
    fs.extend(d);
    Tableau {
        name: "Dop853",
        reference: "E. Hairer, S. P. Nørsett & G. Wanner, Solving ODEs I (2nd ed., 1993), §II.10: DOP853 of Dormand & Prince with 7th-order dense output",
        order: 8,
        c,
        a,
        b,
        error: ErrorEstimate::Dop853 { e5, e3 },
        dense: DenseOutput { order: 7, extra_c, extra_a, weights: nested_to_weights(&fs) },
    }
}

macro_rules! cached {
    ($name:ident, $build:ident) => {
        pub(crate) fn $name() -> &'static Tableau {
            static CELL: OnceLock<Tableau> = OnceLock::new();
            CELL.get_or_init($build)
        }
    };
}

cached!(euler_tableau, euler);
cached!(midpoint_tableau, midpoint);
cached!(heun_tableau, heun);
cached!(rk4_tableau, rk4);
cached!(heun_euler_tableau, heun_euler);
cached!(bosh3_tableau, bosh3);
cached!(dopri5_tableau, dopri5);
cached!(tsit5_tableau, tsit5);
cached!(dop853_tableau, dop853);

#[cfg(test)]
mod tests {
    use crate::Method;

    #[test]
    fn every_tableau_passes_its_checks() {
        for m in Method::all() {
            if let Some(t) = m.tableau() {
                assert_eq!(t.check(), Ok(()), "{}", t.name);
            }
        }
    }

    #[test]
    fn fsal_is_detected_where_the_tableau_allows() {
        let fsal: Vec<_> = Method::all()
            .into_iter()
            .filter_map(|m| m.tableau().filter(|t| t.is_fsal()).map(|t| t.name))
            .collect();
        assert_eq!(fsal, ["Bosh3", "Dopri5", "Tsit5", "Dop853"]);
    }

    #[test]
    fn hermite_weights_match_the_textbook_form() {
        // Euler + Hermite: B_0(θ) = θ²(3-2θ) + θ(θ-1)² , B_1(θ) = θ²(θ-1).
        let t = Method::Euler.tableau().map(|t| t.dense.weights.clone());
        let th: f64 = 0.3;
        let w = t.unwrap_or_default();
        let eval = |c: &Vec<f64>| c.iter().rev().fold(0.0, |acc, &x| acc * th + x);
        assert!(
            (eval(&w[0]) - (th * th * (3.0 - 2.0 * th) + th * (th - 1.0).powi(2))).abs() < 1e-15
        );
        assert!((eval(&w[1]) - th * th * (th - 1.0)).abs() < 1e-15);
    }
}
