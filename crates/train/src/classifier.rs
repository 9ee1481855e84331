//! A classifier recorded as one `autodiff` graph: logits of a batch, cross-entropy
//! against target distributions, parameter gradients (and, for a model's head, the
//! gradient with respect to its input), replayed per batch without re-recording.

use autodiff::{Executor, Graph, Mat, Var};

use crate::{Error, LabelledBatch, Model, StepReport};

/// `logits = net(x)`, `loss = cross_entropy(logits, y)` (the batch mean).
pub struct Classifier {
    graph: Graph,
    x: Var,
    y: Var,
    loss: Var,
    logits: Var,
    grads: Vec<Var>,
    input_grad: Option<Var>,
    train: Executor,
    predict: Executor,
}

impl Classifier {
    /// `graph` has the input `x` (`B × features`) as its only input and computes
    /// `logits` (`B × classes`) from it; with `input_grad` the loss gradient with respect
    /// to `x` is computed too ([`Classifier::input_grad`]).
    pub fn new(mut graph: Graph, x: Var, logits: Var, input_grad: bool) -> Result<Self, Error> {
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
        let train = Executor::new(&graph, &outs)?;
        let predict = Executor::new(&graph, &[logits])?;
        Ok(Classifier { graph, x, y, loss, logits, grads, input_grad, train, predict })
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
        self.train.set_input(&self.graph, self.x, x.as_slice())?;
        self.train.set_input(&self.graph, self.y, y.as_slice())?;
        self.train.replay(&self.graph)?;
        self.train.gather(&self.graph, &self.grads, grad)?;
        Ok(self.train.value(self.loss)[(0, 0)])
    }

    /// `∂loss/∂x` of the last [`Classifier::loss_grad`] (column-major, `x`'s shape), when
    /// built with `input_grad`.
    pub fn input_grad(&self) -> Option<&[f64]> {
        self.input_grad.map(|v| self.train.value(v).as_slice())
    }

    /// The logits of `x`.
    pub fn logits(&mut self, x: &Mat) -> Result<&Mat, Error> {
        self.predict.set_input(&self.graph, self.x, x.as_slice())?;
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
pub fn argmax_rows(m: &Mat) -> Vec<usize> {
    (0..m.nrows())
        .map(|i| (0..m.ncols()).max_by(|&a, &b| m[(i, a)].total_cmp(&m[(i, b)])).unwrap_or(0))
        .collect()
}

impl Model for Classifier {
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
