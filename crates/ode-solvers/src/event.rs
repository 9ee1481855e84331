//! Terminal events: stop the solve where `g(t, y(t))` crosses zero.

/// Which zero crossings of `g` count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `g` goes from negative to non-negative.
    Rising,
    /// `g` goes from positive to non-positive.
    Falling,
    /// Either.
    Either,
}

impl Direction {
    /// Whether `g` moving from `before` to `after` is a crossing of this direction.
    pub fn crosses(self, before: f64, after: f64) -> bool {
        let rising = before < 0.0 && after >= 0.0;
        let falling = before > 0.0 && after <= 0.0;
        match self {
            Direction::Rising => rising,
            Direction::Falling => falling,
            Direction::Either => rising || falling,
        }
    }
}

/// A terminal event `g(t, y) = 0`.
///
/// After every accepted step, `g` is sampled at `samples` evenly spaced points of the
/// step's dense output; the earliest sub-interval with a crossing of the requested
/// direction is refined by the Illinois method to a bracket of width `tol` (in `t`), and
/// the solve stops at its far end. Several crossings within one step therefore resolve to
/// the earliest unless two fall within one sub-interval; raise `samples` for rapidly
/// oscillating `g`.
///
/// ```
/// use ode_solvers::{odeint_with_event, Direction, Event, Method, Options};
/// // A ball dropped from height 1 (g = 9.81) hits the ground at t = sqrt(2/9.81).
/// let ball = |_t: f64, y: &[f64], dy: &mut [f64]| { dy[0] = y[1]; dy[1] = -9.81; };
/// let hit = Event::new(|_t: f64, y: &[f64]| y[0]).direction(Direction::Falling);
/// let sol = odeint_with_event(&ball, &[1.0, 0.0], &[0.0, 10.0], &Options::new(Method::Tsit5), &hit)?;
/// let landed = sol.event.as_ref().map(|e| e.t);
/// assert!(landed.is_some_and(|t| (t - (2.0f64 / 9.81).sqrt()).abs() < 1e-9));
/// # Ok::<(), ode_solvers::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Event<G> {
    /// The event function.
    pub g: G,
    /// Which crossings count.
    pub direction: Direction,
    /// Width in `t` of the final bracket around the crossing.
    pub tol: f64,
    /// Sample points per step used to find the earliest crossing (1 to
    /// [`Event::MAX_SAMPLES`]; values outside are clamped to that range).
    pub samples: usize,
}

impl<G> Event<G> {
    /// The most sample points per step: a finer search belongs in smaller steps
    /// (`Options::dt_max`), and an unbounded count would let one step run for ever.
    pub const MAX_SAMPLES: usize = 4096;

    /// An event on `g` in either direction, located to `1e-12` with 8 samples per step.
    pub fn new(g: G) -> Self {
        Event { g, direction: Direction::Either, tol: 1e-12, samples: 8 }
    }

    /// Sets the direction filter.
    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }

    /// Sets the location tolerance.
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }

    /// Sets the number of samples per step (clamped to `1..=`[`Event::MAX_SAMPLES`]).
    pub fn samples(mut self, samples: usize) -> Self {
        self.samples = samples.clamp(1, Self::MAX_SAMPLES);
        self
    }
}

/// Where a terminal event fired.
#[derive(Debug, Clone, PartialEq)]
pub struct EventHit<T> {
    /// Time of the crossing (the end of the final bracket, on the far side of the root).
    pub t: T,
    /// State there, from dense output.
    pub y: Vec<T>,
}
