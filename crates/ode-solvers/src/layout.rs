//! Named parts of a state vector, and which of them the step-size control watches.

use std::ops::Range;

use crate::Error;

/// One named part of a state: its length and whether its error enters the step-size
/// control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The part's name (`"z"`, `"logp"`, `"kinetic"`, ...).
    pub name: String,
    /// Its number of components.
    pub len: usize,
    /// Whether its local error is controlled (`false`: integrated, but outside the norm:
    /// a seminorm).
    pub controlled: bool,
}

/// A state made of named parts laid out one after the other, e.g. `[z, log p, kinetic]`
/// for a continuous normalizing flow, where only `z` is under error control:
///
/// ```
/// use ode_solvers::StateLayout;
/// let layout = StateLayout::new().part("z", 4, true).part("logp", 2, false);
/// assert_eq!(layout.len(), 6);
/// assert_eq!(layout.range("logp"), Some(4..6));
/// assert_eq!(layout.mask(), vec![true, true, true, true, false, false]);
/// ```
///
/// `Options::layout` takes one; the solver compiles it to a mask once per solve.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateLayout {
    parts: Vec<Part>,
}

impl StateLayout {
    /// An empty layout.
    pub fn new() -> Self {
        StateLayout { parts: Vec::new() }
    }

    /// One controlled part of `len` components.
    pub fn single(name: &str, len: usize) -> Self {
        StateLayout::new().part(name, len, true)
    }

    /// Appends a part.
    pub fn part(mut self, name: &str, len: usize, controlled: bool) -> Self {
        self.parts.push(Part { name: name.to_string(), len, controlled });
        self
    }

    /// Appends every part of `other`, each name prefixed with `prefix`.
    pub fn extend_prefixed(mut self, prefix: &str, other: &StateLayout) -> Self {
        for p in &other.parts {
            self.parts.push(Part { name: format!("{prefix}{}", p.name), ..p.clone() });
        }
        self
    }

    /// The parts in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Total number of components (saturating, so a forged layout cannot overflow).
    pub fn len(&self) -> usize {
        self.parts.iter().fold(0usize, |n, p| n.saturating_add(p.len))
    }

    /// Whether the layout has no components.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The components of the part called `name` (`None` when there is none, or when the
    /// parts up to it overflow `usize`).
    pub fn range(&self, name: &str) -> Option<Range<usize>> {
        let mut at = 0usize;
        for p in &self.parts {
            let end = at.checked_add(p.len)?;
            if p.name == name {
                return Some(at..end);
            }
            at = end;
        }
        None
    }

    /// The components of every part, in order.
    pub fn ranges(&self) -> impl Iterator<Item = (&Part, Range<usize>)> + '_ {
        let mut at = 0usize;
        self.parts.iter().map(move |p| {
            let end = at.saturating_add(p.len);
            let r = at..end;
            at = end;
            (p, r)
        })
    }

    /// Whether every component is controlled.
    pub fn all_controlled(&self) -> bool {
        self.parts.iter().all(|p| p.controlled || p.len == 0)
    }

    /// The error mask this layout compiles to: `true` for each controlled component.
    pub fn mask(&self) -> Vec<bool> {
        let mut m = Vec::with_capacity(self.len());
        for p in &self.parts {
            m.extend(std::iter::repeat_n(p.controlled, p.len));
        }
        m
    }

    /// Checks that the layout covers a state of `dim` components.
    pub fn check(&self, dim: usize) -> Result<(), Error> {
        if self.len() != dim {
            return Err(Error::DimensionMismatch {
                what: "state layout",
                expected: dim,
                got: self.len(),
            });
        }
        Ok(())
    }
}
