//! Reference problems shared by the tests, benchmarks, `cargo xtask demo` and users.

/// A named initial-value problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Name for reports.
    pub name: &'static str,
    /// Initial state.
    pub y0: Vec<f64>,
    /// Integration interval.
    pub t_span: (f64, f64),
}

/// Whether `y` or `dy` is not of length `n`; if so, `dy` is filled with NaN.
#[inline(always)]
fn wrong_len(n: usize, y: &[f64], dy: &mut [f64]) -> bool {
    let wrong = y.len() != n || dy.len() != n;
    if wrong {
        dy.fill(f64::NAN);
    }
    wrong
}

/// Lotka-Volterra with α = 1.5, β = 1, γ = 3, δ = 1.
///
/// A state or derivative buffer that is not of length 2 gets NaN derivatives, so a solve
/// stops with [`crate::Error::NonFinite`] at its first evaluation (the same for the other
/// problems here, each with its own length).
pub fn lotka_volterra_rhs(_t: f64, y: &[f64], dy: &mut [f64]) {
    if wrong_len(2, y, dy) {
        return;
    }
    dy[0] = 1.5 * y[0] - y[0] * y[1];
    dy[1] = -3.0 * y[1] + y[0] * y[1];
}

/// Lotka-Volterra from `(1, 1)` over `[0, 10]`.
pub fn lotka_volterra() -> Problem {
    Problem { name: "Lotka-Volterra", y0: vec![1.0, 1.0], t_span: (0.0, 10.0) }
}

/// Mass ratio of the restricted three-body problem of the Arenstorf orbit.
pub const ARENSTORF_MU: f64 = 0.012277471;
/// Period of the Arenstorf orbit (Hairer, Nørsett & Wanner, Solving ODEs I, §II.0).
pub const ARENSTORF_PERIOD: f64 = 17.065_216_560_157_962_558_891_720_624_9;

/// The restricted three-body problem, state `(x, y, x', y')`.
pub fn arenstorf_rhs(_t: f64, u: &[f64], du: &mut [f64]) {
    if wrong_len(4, u, du) {
        return;
    }
    let mu = ARENSTORF_MU;
    let mup = 1.0 - mu;
    let (x, y, vx, vy) = (u[0], u[1], u[2], u[3]);
    // r³ as r²·√r²: the same value as `powf(1.5)` to an ulp, without libm's `pow`.
    let (r1, r2) = ((x + mu).powi(2) + y * y, (x - mup).powi(2) + y * y);
    let (d1, d2) = (r1 * r1.sqrt(), r2 * r2.sqrt());
    du[0] = vx;
    du[1] = vy;
    du[2] = x + 2.0 * vy - mup * (x + mu) / d1 - mu * (x - mup) / d2;
    du[3] = y - 2.0 * vx - mup * y / d1 - mu * y / d2;
}

/// One period of the Arenstorf orbit: the exact solution returns to `y0` at the end.
pub fn arenstorf() -> Problem {
    Problem {
        name: "Arenstorf",
        y0: vec![0.994, 0.0, 0.0, -2.001_585_106_379_082_522_405_378_622_24],
        t_span: (0.0, ARENSTORF_PERIOD),
    }
}

/// The Van der Pol oscillator `x'' = μ(1 - x²)x' - x`.
pub fn van_der_pol(mu: f64) -> impl Fn(f64, &[f64], &mut [f64]) + Sync + Copy {
    move |_t, y, dy| {
        if wrong_len(2, y, dy) {
            return;
        }
        dy[0] = y[1];
        dy[1] = mu * (1.0 - y[0] * y[0]) * y[1] - y[0];
    }
}

/// The nonlinear, time-dependent test problem of the order measurements: the Hopf limit
/// cycle `r' = r(1 - r²)` with an accelerating rotation `φ' = ω(1 + t)`, in Cartesian
/// coordinates, `r(0) = 1/2`. Returns the right-hand side and the exact solution
/// `y(t) = r(t)(cos φ(t), sin φ(t))`, `r(t) = (1 + 3e^{-2t})^{-1/2}`, `φ(t) = ω(t + t²/2)`.
pub fn limit_cycle(
    omega: f64,
) -> (impl Fn(f64, &[f64], &mut [f64]) + Sync + Copy, impl Fn(f64) -> Vec<f64> + Copy) {
    let f = move |t: f64, y: &[f64], dy: &mut [f64]| {
        if wrong_len(2, y, dy) {
            return;
        }
        let g = 1.0 - y[0] * y[0] - y[1] * y[1];
        let w = omega * (1.0 + t);
        dy[0] = -w * y[1] + y[0] * g;
        dy[1] = w * y[0] + y[1] * g;
    };
    let exact = move |t: f64| {
        let r = 1.0 / (1.0 + 3.0 * (-2.0 * t).exp()).sqrt();
        let phi = omega * (t + 0.5 * t * t);
        vec![r * phi.cos(), r * phi.sin()]
    };
    (f, exact)
}
