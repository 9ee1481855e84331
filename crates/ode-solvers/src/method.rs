//! The registry of methods: every solver the crate has, as one enum that tests, benches
//! and `xtask` iterate.

use crate::tableau::{self, Tableau};

/// A numerical method.
///
/// Runge-Kutta methods are [`Tableau`] data driving one engine; the Adams methods are a
/// fixed-step multistep engine started by RK4.
///
/// | method | order | adaptive | dense output order | stages (FSAL) |
/// |---|---|---|---|---|
/// | `Euler` | 1 | no | 1 (Hermite) | 1 |
/// | `Midpoint` | 2 | no | 2 (Hermite) | 2 |
/// | `Heun` | 2 | no | 2 (Hermite) | 2 |
/// | `Rk4` | 4 | no | 3 (Hermite) | 4 |
/// | `AdamsBashforth(k)`, k = 1..=5 | k | no | none | 1 evaluation per step |
/// | `AdamsBashforthMoulton(k)`, k = 1..=5 | k | no | none | 2 evaluations per step (PECE) |
/// | `HeunEuler` | 2(1) | yes | 2 | 2 |
/// | `Bosh3` | 3(2) | yes | 3 (Hermite) | 4 (FSAL) |
/// | `Dopri5` | 5(4) | yes | 4 | 7 (FSAL) |
/// | `Tsit5` | 5(4) | yes | 4 | 7 (FSAL) |
/// | `Dop853` | 8(5,3) | yes | 7 (3 extra stages) | 13 (FSAL) |
///
/// `Tsit5` is the recommended default for non-stiff problems at moderate tolerances,
/// `Dop853` for tight ones (`rtol` below about `1e-8`). `Euler` and `HeunEuler` exist for
/// teaching and testing; they are rarely the right choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Forward Euler, order 1.
    Euler,
    /// Explicit midpoint rule, order 2.
    Midpoint,
    /// Heun's method (explicit trapezoid), order 2.
    Heun,
    /// The classic Runge-Kutta method, order 4.
    Rk4,
    /// Adams-Bashforth with `k` steps (order `k`, `1 <= k <= 5`), fixed step.
    AdamsBashforth(u8),
    /// Adams-Bashforth-Moulton predictor-corrector (PECE) of order `k` (`1 <= k <= 5`).
    AdamsBashforthMoulton(u8),
    /// Heun-Euler 2(1), adaptive.
    HeunEuler,
    /// Bogacki-Shampine 3(2), adaptive.
    Bosh3,
    /// Dormand-Prince 5(4), adaptive.
    Dopri5,
    /// Tsitouras 5(4), adaptive.
    Tsit5,
    /// Dormand-Prince 8(5,3) (Hairer's DOP853), adaptive.
    Dop853,
}

impl Method {
    /// Every method, in the order of the table above.
    pub fn all() -> Vec<Method> {
        let mut v = vec![Method::Euler, Method::Midpoint, Method::Heun, Method::Rk4];
        v.extend((1..=5).map(Method::AdamsBashforth));
        v.extend((1..=5).map(Method::AdamsBashforthMoulton));
        v.extend([Method::HeunEuler, Method::Bosh3, Method::Dopri5, Method::Tsit5, Method::Dop853]);
        v
    }

    /// The adaptive methods.
    pub fn adaptive() -> Vec<Method> {
        Method::all().into_iter().filter(|m| m.is_adaptive()).collect()
    }

    /// The Butcher tableau of a Runge-Kutta method; `None` for Adams methods.
    pub fn tableau(self) -> Option<&'static Tableau> {
        Some(match self {
            Method::Euler => tableau::euler_tableau(),
            Method::Midpoint => tableau::midpoint_tableau(),
            Method::Heun => tableau::heun_tableau(),
            Method::Rk4 => tableau::rk4_tableau(),
            Method::HeunEuler => tableau::heun_euler_tableau(),
            Method::Bosh3 => tableau::bosh3_tableau(),
            Method::Dopri5 => tableau::dopri5_tableau(),
            Method::Tsit5 => tableau::tsit5_tableau(),
            Method::Dop853 => tableau::dop853_tableau(),
            Method::AdamsBashforth(_) | Method::AdamsBashforthMoulton(_) => return None,
        })
    }

    /// Order of convergence of the propagated solution.
    pub fn order(self) -> u32 {
        match self {
            Method::AdamsBashforth(k) | Method::AdamsBashforthMoulton(k) => u32::from(k),
            m => m.tableau().map_or(0, |t| t.order),
        }
    }

    /// Whether the method has an error estimate and so can adapt its step.
    pub fn is_adaptive(self) -> bool {
        self.tableau().is_some_and(|t| t.error_order().is_some())
    }

    /// Order of the dense output, if the method has one.
    pub fn dense_order(self) -> Option<u32> {
        self.tableau().map(|t| t.dense.order)
    }

    /// A short name; `AdamsBashforth(3)` is `"AB3"`, `AdamsBashforthMoulton(3)` `"ABM3"`.
    pub fn name(self) -> &'static str {
        const AB: [&str; 5] = ["AB1", "AB2", "AB3", "AB4", "AB5"];
        const ABM: [&str; 5] = ["ABM1", "ABM2", "ABM3", "ABM4", "ABM5"];
        match self {
            Method::AdamsBashforth(k) => {
                AB.get(usize::from(k).wrapping_sub(1)).copied().unwrap_or("AB?")
            }
            Method::AdamsBashforthMoulton(k) => {
                ABM.get(usize::from(k).wrapping_sub(1)).copied().unwrap_or("ABM?")
            }
            m => m.tableau().map_or("?", |t| t.name),
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The names [`Method`] parses from, in torchdiffeq's and diffrax's spelling
/// (case-insensitive; `-` and `_` alike). `"dopri8"` (torchdiffeq, diffrax) names their
/// Dormand-Prince 8(7) pair; it parses as [`Method::Dop853`], the 8th-order
/// Dormand-Prince method this crate has.
pub const METHOD_NAMES: [(&str, Method); 22] = [
    ("euler", Method::Euler),
    ("midpoint", Method::Midpoint),
    ("heun", Method::Heun),
    ("rk4", Method::Rk4),
    ("heun_euler", Method::HeunEuler),
    ("adaptive_heun", Method::HeunEuler),
    ("bosh3", Method::Bosh3),
    ("dopri5", Method::Dopri5),
    ("tsit5", Method::Tsit5),
    ("dop853", Method::Dop853),
    ("dopri8", Method::Dop853),
    ("ab1", Method::AdamsBashforth(1)),
    ("ab2", Method::AdamsBashforth(2)),
    ("ab3", Method::AdamsBashforth(3)),
    ("ab4", Method::AdamsBashforth(4)),
    ("ab5", Method::AdamsBashforth(5)),
    ("abm1", Method::AdamsBashforthMoulton(1)),
    ("abm2", Method::AdamsBashforthMoulton(2)),
    ("abm3", Method::AdamsBashforthMoulton(3)),
    ("abm4", Method::AdamsBashforthMoulton(4)),
    ("abm5", Method::AdamsBashforthMoulton(5)),
    ("heuneuler", Method::HeunEuler),
];

/// ```
/// use ode_solvers::Method;
/// assert_eq!("Dopri5".parse::<Method>()?, Method::Dopri5);
/// assert_eq!("adaptive_heun".parse::<Method>()?, Method::HeunEuler);
/// let err = "rk45".parse::<Method>().unwrap_err();
/// assert!(err.to_string().contains("dopri5"));
/// # Ok::<(), ode_solvers::Error>(())
/// ```
impl std::str::FromStr for Method {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key = s.trim().to_ascii_lowercase().replace('-', "_");
        METHOD_NAMES
            .iter()
            .find(|(n, _)| *n == key)
            .map(|&(_, m)| m)
            .ok_or_else(|| crate::Error::UnknownMethod { name: s.to_string() })
    }
}
