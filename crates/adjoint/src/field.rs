//! Differentiable vector fields `f(z, t, θ)`.

use std::cell::RefCell;

use autodiff::{Executor, Graph, Mat, Var};

use crate::Error;

/// A vector field with vector-Jacobian products. The state is a flat slice (for a batch
/// `B × d` of states, column-major: `z[b + j B]`), the parameters another.
pub trait VectorField {
    /// Length of the state.
    fn dim(&self) -> usize;
    /// The parameters `θ` as one flat vector.
    fn params(&self) -> &[f64];
    /// Writes `f(z, t, θ)` into `dz`.
    fn eval(&self, t: f64, z: &[f64], dz: &mut [f64]);
    /// Writes `f` into `dz`, `aᵀ ∂f/∂z` into `vz`, `aᵀ ∂f/∂θ` into `vp`, and returns
    /// `aᵀ ∂f/∂t`.
    fn vjp(
        &self,
        t: f64,
        z: &[f64],
        a: &[f64],
        dz: &mut [f64],
        vz: &mut [f64],
        vp: &mut [f64],
    ) -> f64;
}

/// A field given by two closures, e.g. a linear system with a hand-written VJP.
pub struct ClosureField<F, V> {
    dim: usize,
    params: Vec<f64>,
    f: F,
    vjp: V,
}

impl<F, V> ClosureField<F, V>
where
    F: Fn(f64, &[f64], &[f64], &mut [f64]),
    V: Fn(f64, &[f64], &[f64], &[f64], &mut [f64], &mut [f64]) -> f64,
{
    /// `f(t, z, θ, dz)` and `vjp(t, z, θ, a, vz, vp) -> aᵀ∂f/∂t`.
    pub fn new(dim: usize, params: Vec<f64>, f: F, vjp: V) -> Self {
        ClosureField { dim, params, f, vjp }
    }

    /// The parameters, writable.
    pub fn params_mut(&mut self) -> &mut [f64] {
        &mut self.params
    }
}

impl<F, V> VectorField for ClosureField<F, V>
where
    F: Fn(f64, &[f64], &[f64], &mut [f64]),
    V: Fn(f64, &[f64], &[f64], &[f64], &mut [f64], &mut [f64]) -> f64,
{
    fn dim(&self) -> usize {
        self.dim
    }
    fn params(&self) -> &[f64] {
        &self.params
    }
    fn eval(&self, t: f64, z: &[f64], dz: &mut [f64]) {
        (self.f)(t, z, &self.params, dz)
    }
    fn vjp(
        &self,
        t: f64,
        z: &[f64],
        a: &[f64],
        dz: &mut [f64],
        vz: &mut [f64],
        vp: &mut [f64],
    ) -> f64 {
        (self.f)(t, z, &self.params, dz);
        (self.vjp)(t, z, &self.params, a, vz, vp)
    }
}

struct Buffers {
    z: Mat,
    t: Mat,
    a: Mat,
    forward: Executor,
    backward: Executor,
}

/// A field recorded as an `autodiff` graph: replayed for every evaluation and VJP without
/// allocating.
pub struct AutodiffField {
    graph: Graph,
    output: Var,
    grads: Vec<Var>,
    has_t: bool,
    buffers: RefCell<Buffers>,
}

impl AutodiffField {
    /// Wraps `graph`, whose inputs must be the state `z` (`B × d`) and optionally the time
    /// `t` (`1×1`), in that order, and whose `output` has `z`'s shape.
    pub fn new(mut graph: Graph, output: Var) -> Result<Self, Error> {
        let inputs = graph.inputs().to_vec();
        let (z, t) = match inputs[..] {
            [z] => (z, None),
            [z, t] => (z, Some(t)),
            _ => {
                return Err(Error::DimensionMismatch {
                    what: "graph inputs (z[, t])",
                    expected: 2,
                    got: inputs.len(),
                })
            }
        };
        let shape = graph.shape(z)?;
        if graph.shape(output)? != shape {
            return Err(autodiff::Error::ShapeMismatch {
                op: "vector field output",
                expected: shape,
                got: graph.shape(output)?,
            }
            .into());
        }
        if let Some(t) = t {
            if graph.shape(t)? != (1, 1) {
                return Err(autodiff::Error::ShapeMismatch {
                    op: "time input",
                    expected: (1, 1),
                    got: graph.shape(t)?,
                }
                .into());
            }
        }
        let a = graph.input(shape.0, shape.1);
        let mut wrt = vec![z];
        wrt.extend(graph.param_vars());
        wrt.extend(t);
        let grads = graph.vjp(&[(output, a)], &wrt)?;
        let forward = Executor::new(&graph, &[output])?;
        let mut outs = vec![output];
        outs.extend(&grads);
        let backward = Executor::new(&graph, &outs)?;
        let buffers = Buffers {
            z: Mat::zeros(shape.0, shape.1),
            t: Mat::zeros(1, 1),
            a: Mat::zeros(shape.0, shape.1),
            forward,
            backward,
        };
        Ok(AutodiffField {
            graph,
            output,
            grads,
            has_t: t.is_some(),
            buffers: RefCell::new(buffers),
        })
    }

    /// The graph (for its parameter blocks).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The flat parameters, writable (an optimizer step).
    pub fn params_mut(&mut self) -> &mut [f64] {
        self.graph.params_mut()
    }
}

impl VectorField for AutodiffField {
    fn dim(&self) -> usize {
        self.graph.shape(self.output).map_or(0, |(r, c)| r * c)
    }

    fn params(&self) -> &[f64] {
        self.graph.params()
    }

    fn eval(&self, t: f64, z: &[f64], dz: &mut [f64]) {
        let mut b = self.buffers.borrow_mut();
        let b = &mut *b;
        b.z.as_mut_slice().copy_from_slice(z);
        b.t[(0, 0)] = t;
        let inputs: Vec<&Mat> = {
            let mut v = vec![&b.z];
            if self.has_t {
                v.push(&b.t);
            }
            v.push(&b.a);
            v
        };
        match b.forward.run(&self.graph, &inputs) {
            Ok(()) => dz.copy_from_slice(b.forward.value(self.output).as_slice()),
            Err(_) => dz.fill(f64::NAN),
        }
    }

    fn vjp(
        &self,
        t: f64,
        z: &[f64],
        a: &[f64],
        dz: &mut [f64],
        vz: &mut [f64],
        vp: &mut [f64],
    ) -> f64 {
        let mut guard = self.buffers.borrow_mut();
        let b = &mut *guard;
        b.z.as_mut_slice().copy_from_slice(z);
        b.t[(0, 0)] = t;
        b.a.as_mut_slice().copy_from_slice(a);
        let mut inputs = vec![&b.z];
        if self.has_t {
            inputs.push(&b.t);
        }
        inputs.push(&b.a);
        let ok = b.backward.run(&self.graph, &inputs).is_ok();
        if !ok {
            dz.fill(f64::NAN);
            vz.fill(f64::NAN);
            vp.fill(f64::NAN);
            return f64::NAN;
        }
        dz.copy_from_slice(b.backward.value(self.output).as_slice());
        vz.copy_from_slice(b.backward.value(self.grads[0]).as_slice());
        let np = self.graph.param_vars().len();
        if b.backward.gather(&self.graph, &self.grads[1..1 + np], vp).is_err() {
            vp.fill(f64::NAN);
        }
        if self.has_t {
            b.backward.value(self.grads[1 + np])[(0, 0)]
        } else {
            0.0
        }
    }
}
