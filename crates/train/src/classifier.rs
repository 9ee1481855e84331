//! A classifier recorded as one `autodiff` graph: logits of a batch, cross-entropy
//! against target distributions, parameter gradients (and, for a model's head, the
//! gradient with respect to its input), replayed per batch without re-recording.

use autodiff::{DMatrix, Executor, Graph, Mat, Real, Var};

use crate::{Error, LabelledBatch, Model, StepReport};

/// `logits = net(x)`, `loss = cross_entropy(logits, y)` (the batch mean).
///
/// `Classifier<f32>` ([`Classifier::build`]) replays the graph in single precision; its
/// batches, parameters and gradients stay `f64` at the boundary (converted in buffers it
/// keeps), so it trains through [`crate::Trainer`] like any model.
pub struct Classifier<T: Real = f64> {
    graph: Graph,
    x: Var,
    y: Var,
    loss: Var,
    logits: Var,
    grads: Vec<Var>,
    input_grad: Option<Var>,
    train: Executor<T>,
    predict: Executor<T>,
    /// Conversion buffers for `T` other than `f64`: inputs, targets, gradients.
    buffers: (Vec<T>, Vec<T>, Vec<T>),
}

/// `src` as `T`: itself where `T` is `f64`, else converted into `buf`.
fn narrow<'a, T: Real>(src: &'a [f64], buf: &'a mut Vec<T>) -> &'a [T] {
    match T::native(src) {
        Some(s) => s,
        None => {
            buf.clear();
            buf.extend(src.iter().map(|&v| T::of(v)));
            buf
        }
    }
}

impl Classifier {
    /// `graph` has the input `x` (`B × features`) as its only input and computes
    /// `logits` (`B × classes`) from it; with `input_grad` the loss gradient with respect
    /// to `x` is computed too ([`Classifier::input_grad`]).
    pub fn new(graph: Graph, x: Var, logits: Var, input_grad: bool) -> Result<Self, Error> {
        Self::build(graph, x, logits, input_grad)
    }
}

impl<T: Real> Classifier<T> {
    /// [`Classifier::new`] replayed in `T` (`f32` or `f64`).
    pub fn build(mut graph: Graph, x: Var, logits: Var, input_grad: bool) -> Result<Self, Error> {
        if graph.inputs() != [x] {
            return Err(Error::InvalidArgument {
                what: "classifier graph",
                detail: "its only input must be x".into(),
            });
        }
        let (b, c) = graph.shape(logits)?;
        let y = graph.input(b, c);
        let loss = graph.cross_entropy(logits, y)?;
        let mut wrt: Vec<Var> = graph.param_vars().to_vec();
        if input_grad {
            wrt.push(x);
        }
        let mut grads = graph.grad(loss, &wrt)?;
        let input_grad = if input_grad { grads.pop() } else { None };
        let mut outs = vec![loss, logits];
        outs.extend(&grads);
        outs.extend(input_grad);
        let train = Executor::build(&graph, &outs)?;
        let predict = Executor::build(&graph, &[logits])?;
        let buffers = (Vec::new(), Vec::new(), Vec::new());
        Ok(Classifier { graph, x, y, loss, logits, grads, input_grad, train, predict, buffers })
    }

    /// The graph (its parameters).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The graph, writable.
    pub fn graph_mut(&mut self) -> &mut Graph {
        &mut self.graph
    }

    /// Loss of `x` against targets `y`, the parameter gradient written into `grad`.
    pub fn loss_grad(&mut self, x: &Mat, y: &Mat, grad: &mut [f64]) -> Result<f64, Error> {
        let (bx, by, bg) = &mut self.buffers;
        self.train.set_input(&self.graph, self.x, narrow(x.as_slice(), bx))?;
        self.train.set_input(&self.graph, self.y, narrow(y.as_slice(), by))?;
        self.train.replay(&self.graph)?;
        match T::native_mut(grad) {
            Some(g) => self.train.gather(&self.graph, &self.grads, g)?,
            None => {
                bg.clear();
                bg.resize(grad.len(), T::zero());
                self.train.gather(&self.graph, &self.grads, bg)?;
                grad.iter_mut().zip(bg.iter()).for_each(|(g, &v)| *g = v.widen());
            }
        }
        Ok(self.train.value(self.loss)[(0, 0)].widen())
    }

    /// `∂loss/∂x` of the last [`Classifier::loss_grad`] (column-major, `x`'s shape), when
    /// built with `input_grad`.
    pub fn input_grad(&self) -> Option<&[T]> {
        self.input_grad.map(|v| self.train.value(v).as_slice())
    }

    /// The logits of `x`.
    pub fn logits(&mut self, x: &Mat) -> Result<&DMatrix<T>, Error> {
        let (bx, _, _) = &mut self.buffers;
        self.predict.set_input(&self.graph, self.x, narrow(x.as_slice(), bx))?;
        self.predict.replay(&self.graph)?;
        Ok(self.predict.value(self.logits))
    }

    /// The predicted class of each row of `x`.
    pub fn predict(&mut self, x: &Mat) -> Result<Vec<usize>, Error> {
        Ok(argmax_rows(self.logits(x)?))
    }
}

/// `dst ← src`, an error when the lengths differ (for `Model::read_params`/`write_params`
/// implementations).
pub fn copy_params(dst: &mut [f64], src: &[f64]) -> Result<(), Error> {
    if dst.len() != src.len() {
        return Err(Error::InvalidArgument {
            what: "parameters",
            detail: format!("{} values for {} parameters", src.len(), dst.len()),
        });
    }
    dst.copy_from_slice(src);
    Ok(())
}

/// The index of each row's largest entry.
pub fn argmax_rows<T: Real>(m: &DMatrix<T>) -> Vec<usize> {
    let key = |v: T| v.widen();
    (0..m.nrows())
        .map(|i| {
            (0..m.ncols()).max_by(|&a, &b| key(m[(i, a)]).total_cmp(&key(m[(i, b)]))).unwrap_or(0)
        })
        .collect()
}

impl<T: Real> Model for Classifier<T> {
    type Batch = LabelledBatch;

    fn num_params(&self) -> usize {
        self.graph.params().len()
    }

    fn read_params(&self, out: &mut [f64]) -> Result<(), Error> {
        copy_params(out, self.graph.params())
    }

    fn write_params(&mut self, params: &[f64]) -> Result<(), Error> {
        if let Some(i) = params.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidArgument {
                what: "parameters",
                detail: format!("value {i} is {}", params[i]),
            });
        }
        copy_params(self.graph.params_mut(), params)
    }

    fn loss_and_grad(
        &mut self,
        batch: &LabelledBatch,
        grad: &mut [f64],
    ) -> Result<StepReport, Error> {
        let loss = self.loss_grad(&batch.x, &batch.y, grad)?;
        if !loss.is_finite() {
            return Err(autodiff::Error::NonFinite { what: "classifier loss" }.into());
        }
        if grad.iter().any(|v| !v.is_finite()) {
            return Err(autodiff::Error::NonFinite { what: "classifier gradient" }.into());
        }
        Ok(StepReport { loss, ..StepReport::default() })
    }
}
