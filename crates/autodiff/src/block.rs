//! A recorded graph as a layer with a forward and a backward half, so that graphs compose
//! with other differentiable pieces (an ODE block) by passing cotangents.

use crate::{Error, Executor, Graph, Op, Real, Var};

/// `y = net(x; θ)` with its pullback `ȳ ↦ (∂L/∂θ, ∂L/∂x)`, each half replayed without
/// re-recording:
///
/// ```
/// use autodiff::{Graph, GraphBlock, Mat};
/// let mut g = Graph::new();
/// let x = g.input(2, 1);
/// let w = g.param("w", &Mat::from_element(1, 1, 3.0));
/// let y = g.mul(x, w)?;
/// let mut block = GraphBlock::new(g, x, y)?;
/// let out = block.forward(&[1.0, 2.0])?.to_vec();
/// assert_eq!(out, [3.0, 6.0]);
/// let mut dw = [0.0];
/// let dx = block.backward(&[1.0, 1.0], &mut dw)?; // L = Σ y
/// assert_eq!((dw[0], dx), (3.0, &[3.0, 3.0][..]));
/// # Ok::<(), autodiff::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct GraphBlock<T: Real = f64> {
    graph: Graph,
    x: Var,
    y: Var,
    seed: Var,
    grads: Vec<Var>,
    dx: Var,
    forward: Executor<T>,
    backward: Executor<T>,
}

impl GraphBlock {
    /// `graph` must have `x` as its only input and compute `y` from it.
    pub fn new(graph: Graph, x: Var, y: Var) -> Result<Self, Error> {
        Self::build(graph, x, y)
    }
}

impl<T: Real> GraphBlock<T> {
    /// [`GraphBlock::new`] replayed in `T` (`f32` or `f64`); parameters stay `f64`.
    pub fn build(mut graph: Graph, x: Var, y: Var) -> Result<Self, Error> {
        if graph.inputs() != [x] {
            return Err(Error::InvalidArgument {
                op: "graph block",
                detail: "the graph's only input must be x".into(),
            });
        }
        let mut y = y;
        if matches!(graph.node(y)?.op, Op::Param(_) | Op::Input(_) | Op::Constant(_)) {
            y = graph.add_scalar(y, 0.0)?;
        }
        let (r, c) = graph.shape(y)?;
        let seed = graph.input(r, c);
        let mut wrt = graph.param_vars().to_vec();
        wrt.push(x);
        let mut grads = graph.vjp(&[(y, seed)], &wrt)?;
        let dx = grads.pop().ok_or(Error::InvalidArgument {
            op: "graph block",
            detail: "no input gradient".into(),
        })?;
        let forward = Executor::build(&graph, &[y])?;
        let mut outs = grads.clone();
        outs.push(dx);
        let backward = Executor::build(&graph, &outs)?;
        Ok(GraphBlock { graph, x, y, seed, grads, dx, forward, backward })
    }

    /// The graph (its parameters).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The graph's parameters, writable.
    pub fn params_mut(&mut self) -> &mut [f64] {
        self.graph.params_mut()
    }

    /// `y` for `x` (column-major, the input's length); `x` is kept for the backward half.
    pub fn forward(&mut self, x: &[T]) -> Result<&[T], Error> {
        self.forward.set_input(&self.graph, self.x, x)?;
        self.backward.set_input(&self.graph, self.x, x)?;
        self.forward.replay(&self.graph)?;
        Ok(self.forward.value(self.y).as_slice())
    }

    /// For the cotangent `ȳ` of the last forward's output: writes `∂L/∂θ` into `dparams`
    /// and returns `∂L/∂x`.
    pub fn backward(&mut self, dy: &[T], dparams: &mut [T]) -> Result<&[T], Error> {
        self.backward.set_input(&self.graph, self.seed, dy)?;
        self.backward.replay(&self.graph)?;
        self.backward.gather(&self.graph, &self.grads, dparams)?;
        Ok(self.backward.value(self.dx).as_slice())
    }

    /// The pullback at an earlier input `x` (not necessarily the last forward's): writes
    /// `∂L/∂θ` into `dparams` and returns `∂L/∂x`, for backpropagation through a sequence
    /// of applications of one block (a recurrent cell) that keeps only each step's input.
    pub fn backward_at(&mut self, x: &[T], dy: &[T], dparams: &mut [T]) -> Result<&[T], Error> {
        self.backward.set_input(&self.graph, self.x, x)?;
        self.backward(dy, dparams)
    }

    /// The input's shape.
    pub fn input_shape(&self) -> Result<(usize, usize), Error> {
        self.graph.shape(self.x)
    }

    /// The output's shape.
    pub fn output_shape(&self) -> Result<(usize, usize), Error> {
        self.graph.shape(self.y)
    }
}
