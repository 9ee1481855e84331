//! Differentiable vector fields `f(z, t, θ)`.

use std::cell::RefCell;

use autodiff::{Executor, Graph, Op, Var};
use ode_solvers::{OdeSystem, RhsError, StateLayout};

use crate::{Error, Float};

/// A vector field with vector-Jacobian products. The state is a flat slice (for a batch
/// `B × d` of states, column-major: `z[b + j B]`), the parameters another.
///
/// A field is an [`OdeSystem`] (its `rhs` is `f`), so it goes straight into
/// `ode_solvers::odeint`. Evaluations are fallible: an error stops the solve and comes
/// back as [`Error::Field`] with the time.
///
/// `T` is the precision of states, derivatives and VJPs (`f64` unless an `f32` field is
/// asked for, see [`AutodiffField::from_graph`]); the parameters are `f64` either way.
pub trait VectorField<T: Float = f64>: OdeSystem<T> {
    /// Length of the state.
    fn dim(&self) -> usize;
    /// The parameters `θ` as one flat vector (in `f64`, the master copy).
    fn params(&self) -> &[f64];
    /// The state's named parts and which of them the error control watches; one
    /// controlled part `"z"` unless the field integrates more (see
    /// [`FieldBuilder::integrand`]).
    fn layout(&self) -> StateLayout {
        StateLayout::single("z", self.dim())
    }
    /// Writes `f` into `dz`, `aᵀ ∂f/∂z` into `vz`, `aᵀ ∂f/∂θ` into `vp`, and returns
    /// `aᵀ ∂f/∂t`.
    fn vjp(
        &self,
        t: T,
        z: &[T],
        a: &[T],
        dz: &mut [T],
        vz: &mut [T],
        vp: &mut [T],
    ) -> Result<T, Error>;
}

fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), Error> {
    if expected != got {
        return Err(Error::DimensionMismatch { what, expected, got });
    }
    Ok(())
}

/// A field given by two closures, e.g. a linear system with a hand-written VJP. (A field
/// that can fail implements [`VectorField`] itself.)
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

impl<F, V> OdeSystem<f64> for ClosureField<F, V>
where
    F: Fn(f64, &[f64], &[f64], &mut [f64]),
{
    fn rhs(&self, t: f64, z: &[f64], dz: &mut [f64]) -> Result<(), RhsError> {
        check_len("state", self.dim, z.len())?;
        check_len("derivative buffer", self.dim, dz.len())?;
        (self.f)(t, z, &self.params, dz);
        Ok(())
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
    fn vjp(
        &self,
        t: f64,
        z: &[f64],
        a: &[f64],
        dz: &mut [f64],
        vz: &mut [f64],
        vp: &mut [f64],
    ) -> Result<f64, Error> {
        for (what, len) in [("cotangent", a.len()), ("VJP buffer", vz.len())] {
            check_len(what, self.dim, len)?;
        }
        check_len("parameter VJP buffer", self.params.len(), vp.len())?;
        self.rhs(t, z, dz)
            .map_err(|e| Error::InvalidArgument { what: "closure field", detail: e.to_string() })?;
        Ok((self.vjp)(t, z, &self.params, a, vz, vp))
    }
}

struct Executors<T: Float> {
    forward: Executor<T>,
    backward: Executor<T>,
}

/// A field recorded as an `autodiff` graph: replayed for every evaluation and VJP without
/// allocating (`tests/field.rs` counts).
///
/// Its state is `[z, q_1, ..., q_m]`: the graph's state input `z` with its derivative
/// `f(z, t)`, then any number of *integrands* `q_k = ∫ g_k(z, t) dt` (a log-density
/// change, a kinetic energy, a running loss) whose derivatives `g_k` are further graph
/// outputs ([`FieldBuilder::integrand`]). Their VJPs are the graph's own VJP, so an
/// integrand built from a VJP of `f` (a trace) gets second-order autodiff for free.
/// Extra inputs held fixed through a solve (Hutchinson noise, a conditioning vector) are
/// set between solves with [`AutodiffField::set_extra`].
///
/// `AutodiffField<f32>` ([`AutodiffField::from_graph`], [`FieldBuilder::build_as`])
/// replays the same graph in single precision: states, VJPs and the solves that use it in
/// `f32`, the parameters kept in `f64`.
pub struct AutodiffField<T: Float = f64> {
    graph: Graph,
    z: Var,
    time: Option<Var>,
    /// `[f, g_1, ..., g_m]`, laid out as `layout`.
    outputs: Vec<Var>,
    /// One cotangent input per output.
    seeds: Vec<Var>,
    /// `[∂/∂z, ∂/∂θ (one per parameter block), ∂/∂t if timed]`.
    grads: Vec<Var>,
    extras: Vec<(String, Var)>,
    layout: StateLayout,
    z_len: usize,
    exe: RefCell<Executors<T>>,
}

/// Declares the parts of an [`AutodiffField`] (see [`AutodiffField::builder`]).
pub struct FieldBuilder {
    graph: Graph,
    state: Option<(Var, Var)>,
    time: Option<Var>,
    integrands: Vec<(String, Var, bool)>,
    extras: Vec<(String, Var)>,
}

impl FieldBuilder {
    /// The state input `z` and its derivative `f` (same shape); required.
    pub fn state(mut self, z: Var, f: Var) -> Self {
        self.state = Some((z, f));
        self
    }

    /// The time input (a `1×1` graph input).
    pub fn time(mut self, t: Var) -> Self {
        self.time = Some(t);
        self
    }

    /// An integrated quantity with derivative `g` (any shape, flattened column-major),
    /// appended to the state as the part `name`; `controlled` puts it under the step-size
    /// error control (usually not: a seminorm).
    pub fn integrand(mut self, name: &str, g: Var, controlled: bool) -> Self {
        self.integrands.push((name.to_string(), g, controlled));
        self
    }

    /// An input held fixed through a solve, zero until set with
    /// [`AutodiffField::set_extra`].
    pub fn extra(mut self, name: &str, input: Var) -> Self {
        self.extras.push((name.to_string(), input));
        self
    }

    /// Checks the declaration, records the VJP and plans both replays (in `f64`).
    pub fn build(self) -> Result<AutodiffField, Error> {
        self.build_as()
    }

    /// [`FieldBuilder::build`] with the replays in `T` (`f32` or `f64`).
    pub fn build_as<T: Float>(self) -> Result<AutodiffField<T>, Error> {
        let FieldBuilder { mut graph, state, time, integrands, extras } = self;
        let (z, f) = state.ok_or(Error::InvalidArgument {
            what: "field",
            detail: "declare the state input and its derivative with FieldBuilder::state".into(),
        })?;
        let is_input = |g: &Graph, v: Var| matches!(g.node(v).map(|n| &n.op), Ok(Op::Input(_)));
        if !is_input(&graph, z) {
            return Err(Error::InvalidArgument {
                what: "field state",
                detail: "the state must be a graph input".into(),
            });
        }
        let shape = graph.shape(z)?;
        if graph.shape(f)? != shape {
            return Err(autodiff::Error::ShapeMismatch {
                op: "vector field output",
                expected: shape,
                got: graph.shape(f)?,
            }
            .into());
        }
        if let Some(t) = time {
            if !is_input(&graph, t) || graph.shape(t)? != (1, 1) {
                return Err(autodiff::Error::ShapeMismatch {
                    op: "time input (a 1x1 graph input)",
                    expected: (1, 1),
                    got: graph.shape(t)?,
                }
                .into());
            }
        }
        for (k, (name, v)) in extras.iter().enumerate() {
            if !is_input(&graph, *v) {
                return Err(Error::InvalidArgument {
                    what: "field extra input",
                    detail: format!("'{name}' is not a graph input"),
                });
            }
            let taken = *v == z || Some(*v) == time || extras[..k].iter().any(|(_, e)| e == v);
            if taken || extras[..k].iter().any(|(n, _)| n == name) {
                return Err(Error::InvalidArgument {
                    what: "field extra input",
                    detail: format!(
                        "'{name}' is the state, the time or another extra input, or its name is taken"
                    ),
                });
            }
        }
        let declared = |v: Var| v == z || Some(v) == time || extras.iter().any(|(_, e)| *e == v);
        if let Some(v) = graph.inputs().iter().find(|&&v| !declared(v)) {
            return Err(Error::InvalidArgument {
                what: "field inputs",
                detail: format!(
                    "graph input {} is neither the state, the time nor a declared extra input",
                    v.index()
                ),
            });
        }
        let (rows, cols) = shape;
        let z_len = rows.checked_mul(cols).ok_or(Error::InvalidArgument {
            what: "field state",
            detail: "size overflows".into(),
        })?;
        let mut layout = StateLayout::single("z", z_len);
        let mut outputs = vec![f];
        for (name, g, controlled) in &integrands {
            if layout.range(name).is_some() {
                return Err(Error::InvalidArgument {
                    what: "field integrand",
                    detail: format!("the part name '{name}' is used twice"),
                });
            }
            let (r, c) = graph.shape(*g)?;
            layout = layout.part(name, r * c, *controlled);
            outputs.push(*g);
        }
        // An output that is a parameter, input or constant gets a node of its own, so that
        // both replays keep its value.
        for o in outputs.iter_mut() {
            if matches!(graph.node(*o)?.op, Op::Param(_) | Op::Input(_) | Op::Constant(_)) {
                *o = graph.add_scalar(*o, 0.0)?;
            }
        }
        let mut seeds = Vec::with_capacity(outputs.len());
        for &o in &outputs {
            let (r, c) = graph.shape(o)?;
            seeds.push(graph.input(r, c));
        }
        let mut wrt = vec![z];
        wrt.extend(graph.param_vars());
        wrt.extend(time);
        let pairs: Vec<(Var, Var)> = outputs.iter().copied().zip(seeds.iter().copied()).collect();
        let grads = graph.vjp(&pairs, &wrt)?;
        let forward = Executor::build(&graph, &outputs)?;
        let mut all = outputs.clone();
        all.extend(&grads);
        let backward = Executor::build(&graph, &all)?;
        Ok(AutodiffField {
            graph,
            z,
            time,
            outputs,
            seeds,
            grads,
            extras,
            layout,
            z_len,
            exe: RefCell::new(Executors { forward, backward }),
        })
    }
}

impl AutodiffField {
    /// Wraps `graph`, whose inputs must be the state `z` (`B × d`) and optionally the time
    /// `t` (`1×1`), in that order, and whose `output` has `z`'s shape.
    pub fn new(graph: Graph, output: Var) -> Result<Self, Error> {
        Self::from_graph(graph, output)
    }

    /// Declares a field part by part: state, time, integrands, extra inputs.
    ///
    /// ```
    /// use adjoint::{AutodiffField, VectorField};
    /// use autodiff::{Axis, Graph, Mat};
    /// // dz/dt = -c z with c an extra input, and ∫ Σ z² dt integrated beside z.
    /// let mut g = Graph::new();
    /// let z = g.input(1, 2);
    /// let c = g.input(1, 1);
    /// let f = g.mul(z, c)?;
    /// let f = g.neg(f)?;
    /// let sq = g.mul(z, z)?;
    /// let energy = g.sum(sq, Axis::All)?;
    /// let mut field = AutodiffField::builder(g).state(z, f).extra("c", c)
    ///     .integrand("energy", energy, false).build()?;
    /// field.set_extra("c", &[2.0])?;
    /// assert_eq!(field.layout().range("energy"), Some(2..3));
    /// let mut dz = [0.0; 3];
    /// assert!(ode_solvers::OdeSystem::rhs(&field, 0.0, &[1.0, 3.0, 0.0], &mut dz).is_ok());
    /// assert_eq!(dz, [-2.0, -6.0, 10.0]);
    /// # Ok::<(), adjoint::Error>(())
    /// ```
    pub fn builder(graph: Graph) -> FieldBuilder {
        FieldBuilder { graph, state: None, time: None, integrands: Vec::new(), extras: Vec::new() }
    }
}

impl<T: Float> AutodiffField<T> {
    /// [`AutodiffField::new`] in precision `T`: `AutodiffField::<f32>::from_graph(g, y)`
    /// replays the graph in single precision.
    pub fn from_graph(graph: Graph, output: Var) -> Result<Self, Error> {
        let inputs = graph.inputs().to_vec();
        let builder = match inputs[..] {
            [z] => AutodiffField::builder(graph).state(z, output),
            [z, t] => AutodiffField::builder(graph).state(z, output).time(t),
            _ => {
                return Err(Error::DimensionMismatch {
                    what: "graph inputs (z[, t]); declare more with AutodiffField::builder",
                    expected: 2,
                    got: inputs.len(),
                })
            }
        };
        builder.build_as()
    }

    /// The graph (for its parameter blocks).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The flat parameters, writable (an optimizer step).
    pub fn params_mut(&mut self) -> &mut [f64] {
        self.graph.params_mut()
    }

    /// Sets the extra input `name` (column-major, its full length) for every later
    /// evaluation, without re-recording anything.
    pub fn set_extra(&mut self, name: &str, value: &[f64]) -> Result<(), Error> {
        let v = self.extras.iter().find(|(n, _)| n == name).map(|(_, v)| *v).ok_or_else(|| {
            Error::InvalidArgument {
                what: "extra input",
                detail: format!(
                    "no extra input '{name}'; declared: {:?}",
                    self.extras.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>()
                ),
            }
        })?;
        if let Some(index) = value.iter().position(|x| !x.is_finite()) {
            return Err(Error::InvalidArgument {
                what: "extra input",
                detail: format!("'{name}'[{index}] is NaN or infinite"),
            });
        }
        let exe = self.exe.get_mut();
        let value: Vec<T> = value.iter().map(|&x| <T as autodiff::Real>::of(x)).collect();
        exe.forward.set_input(&self.graph, v, &value)?;
        exe.backward.set_input(&self.graph, v, &value)?;
        Ok(())
    }

    /// Length of the `z` part (the state without its integrands).
    pub fn z_len(&self) -> usize {
        self.z_len
    }

    fn set_state(&self, exe: &mut Executor<T>, t: T, z: &[T]) -> Result<(), Error> {
        check_len("state", self.layout.len(), z.len())?;
        exe.set_input(&self.graph, self.z, &z[..self.z_len])?;
        if let Some(tv) = self.time {
            exe.set_input(&self.graph, tv, &[t])?;
        }
        Ok(())
    }

    fn write_outputs(&self, exe: &Executor<T>, dz: &mut [T]) -> Result<(), Error> {
        check_len("derivative buffer", self.layout.len(), dz.len())?;
        exe.gather(&self.graph, &self.outputs, dz)?;
        Ok(())
    }

    fn eval(&self, t: T, z: &[T], dz: &mut [T]) -> Result<(), Error> {
        let mut exe = self.exe.try_borrow_mut().map_err(|_| Error::InvalidArgument {
            what: "field",
            detail: "evaluated re-entrantly".into(),
        })?;
        self.set_state(&mut exe.forward, t, z)?;
        exe.forward.replay(&self.graph)?;
        self.write_outputs(&exe.forward, dz)
    }
}

impl<T: Float> OdeSystem<T> for AutodiffField<T> {
    fn rhs(&self, t: T, z: &[T], dz: &mut [T]) -> Result<(), RhsError> {
        self.eval(t, z, dz).map_err(RhsError::from)
    }
}

impl<T: Float> VectorField<T> for AutodiffField<T> {
    fn dim(&self) -> usize {
        self.layout.len()
    }

    fn params(&self) -> &[f64] {
        self.graph.params()
    }

    fn layout(&self) -> StateLayout {
        self.layout.clone()
    }

    fn vjp(
        &self,
        t: T,
        z: &[T],
        a: &[T],
        dz: &mut [T],
        vz: &mut [T],
        vp: &mut [T],
    ) -> Result<T, Error> {
        let n = self.layout.len();
        check_len("cotangent", n, a.len())?;
        check_len("VJP buffer", n, vz.len())?;
        check_len("parameter VJP buffer", self.graph.params().len(), vp.len())?;
        let mut guard = self.exe.try_borrow_mut().map_err(|_| Error::InvalidArgument {
            what: "field",
            detail: "evaluated re-entrantly".into(),
        })?;
        let exe = &mut guard.backward;
        self.set_state(exe, t, z)?;
        for ((_, range), &seed) in self.layout.ranges().zip(&self.seeds) {
            exe.set_input(&self.graph, seed, &a[range])?;
        }
        exe.replay(&self.graph)?;
        self.write_outputs(exe, dz)?;
        // Integrands do not feed back: their own adjoints have zero derivative.
        let (vzz, vzq) = vz.split_at_mut(self.z_len);
        exe.gather(&self.graph, &self.grads[..1], vzz)?;
        vzq.fill(T::zero());
        let np = self.graph.param_vars().len();
        exe.gather(&self.graph, &self.grads[1..1 + np], vp)?;
        let mut dt = [T::zero()];
        if self.time.is_some() {
            exe.gather(&self.graph, &self.grads[1 + np..], &mut dt)?;
        }
        Ok(dt[0])
    }
}
