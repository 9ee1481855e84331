//! Graph builders for the integrands of augmented dynamics: quantities integrated beside
//! `z` as parts of an [`crate::AutodiffField`]'s state ([`crate::FieldBuilder::integrand`]).
//!
//! Each takes the field's output `f` (`B × d`, one sample per row) and its state input `z`
//! and returns a `B × 1` column (one value per sample). Built from VJP nodes of the same
//! graph, their own VJPs (for the adjoint) are second-order autodiff, replayed without
//! allocation like the rest of the field.
//!
//! | integrand | formula | cost per evaluation |
//! |---|---|---|
//! | [`exact_trace`] | `tr(∂f/∂z)` | `d` VJPs |
//! | [`hutchinson_trace`] | `εᵀ(∂f/∂z)ε` (unbiased for `E[εεᵀ] = I`) | one VJP |
//! | [`kinetic_energy`] | `‖f‖²` | none |
//! | [`jacobian_frobenius`] | `‖εᵀ ∂f/∂z‖²` (unbiased for `‖∂f/∂z‖²_F`) | the Hutchinson VJP, reused |
//!
//! The instantaneous change of variables of a continuous normalizing flow is
//! `d log p(z(t))/dt = -tr(∂f/∂z)`: integrate the negated trace.
//!
//! ```
//! use adjoint::{integrands, AutodiffField, VectorField};
//! use autodiff::{Graph, Mat};
//! // f = A z for two samples in 2-D: tr A = 1 - 3 = -2 for each.
//! let mut g = Graph::new();
//! let z = g.input(2, 2);
//! let a = g.constant(Mat::from_row_slice(2, 2, &[1.0, 2.0, 0.5, -3.0]));
//! let f = g.matmul_t(z, a, false, true)?; // rows z_bᵀ Aᵀ
//! let tr = integrands::exact_trace(&mut g, f, z)?;
//! let field = AutodiffField::builder(g).state(z, f).integrand("trace", tr, false).build()?;
//! let mut dz = [0.0; 6];
//! assert!(ode_solvers::OdeSystem::rhs(&field, 0.0, &[1.0, 2.0, 3.0, 4.0, 0.0, 0.0], &mut dz).is_ok());
//! assert_eq!(&dz[4..], &[-2.0, -2.0]);
//! # Ok::<(), adjoint::Error>(())
//! ```

use autodiff::{Axis, Graph, Mat, Var};

use crate::Error;

/// `tr(∂f/∂z)` per sample, exactly: one VJP per state dimension.
pub fn exact_trace(g: &mut Graph, f: Var, z: Var) -> Result<Var, Error> {
    let (b, d) = g.shape(z)?;
    let mut total: Option<Var> = None;
    for j in 0..d {
        let mut e = Mat::zeros(b, d);
        for r in 0..b {
            e[(r, j)] = 1.0;
        }
        let e = g.constant(e);
        let v = g.vjp(&[(f, e)], &[z])?[0];
        let col = g.slice_cols(v, j, 1)?;
        total = Some(match total {
            None => col,
            Some(t) => g.add(t, col)?,
        });
    }
    match total {
        Some(t) => Ok(t),
        None => Ok(g.fill(b, 1, 0.0)),
    }
}

/// The Hutchinson probe `vᵀ = εᵀ ∂f/∂z` (`B × d`, one row per sample) for a noise input
/// `eps` of `z`'s shape (declare it with [`crate::FieldBuilder::extra`] and draw it once
/// per solve).
pub fn probe_vjp(g: &mut Graph, f: Var, z: Var, eps: Var) -> Result<Var, Error> {
    Ok(g.vjp(&[(f, eps)], &[z])?[0])
}

/// `εᵀ (∂f/∂z) ε` per sample from the probe `v = probe_vjp(..)`.
pub fn hutchinson_trace(g: &mut Graph, probe: Var, eps: Var) -> Result<Var, Error> {
    let ve = g.mul(probe, eps)?;
    Ok(g.sum(ve, Axis::Rows)?)
}

/// `‖f‖²` per sample.
pub fn kinetic_energy(g: &mut Graph, f: Var) -> Result<Var, Error> {
    let sq = g.mul(f, f)?;
    Ok(g.sum(sq, Axis::Rows)?)
}

/// `‖εᵀ ∂f/∂z‖²` per sample from the probe `v = probe_vjp(..)`.
pub fn jacobian_frobenius(g: &mut Graph, probe: Var) -> Result<Var, Error> {
    let sq = g.mul(probe, probe)?;
    Ok(g.sum(sq, Axis::Rows)?)
}
