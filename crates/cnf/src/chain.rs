//! A flow of flows: CNF blocks chained data → block 1 → … → block K → base, each with its
//! own field and (optionally learnt) end time, as FFJORD stacks them.

use crate::autodiff::Rng;
use crate::fit::PointBatch;
use crate::flow::log_normal;
use crate::ode_solvers::Options;
use crate::{Cnf, Densities, Error, LossGrad};

/// CNF blocks applied in order: `z_0 = x`, `z_k = block_k(z_{k−1})`, the base
/// `N(0, I)` at the last, so `log p(x) = log N(z_K) + Σ_k ∫ tr(∂f_k/∂z) dt`. The loss adds
/// each block's RNODE terms with that block's weights.
pub struct CnfChain {
    blocks: Vec<Cnf>,
}

impl CnfChain {
    /// A chain of `blocks` (at least one; all of one dimension and batch).
    pub fn new(blocks: Vec<Cnf>) -> Result<Self, Error> {
        let Some(first) = blocks.first() else {
            return Err(Error::InvalidArgument { what: "chain", detail: "no blocks".into() });
        };
        let (d, b) = (first.config.dim, first.config.batch);
        if let Some(i) = blocks.iter().position(|c| c.config.dim != d || c.config.batch != b) {
            return Err(Error::InvalidArgument {
                what: "chain",
                detail: format!(
                    "block {i} is {} × {}, block 0 {b} × {d}",
                    blocks[i].config.batch, blocks[i].config.dim
                ),
            });
        }
        Ok(CnfChain { blocks })
    }

    /// The same chain (same parameters) with every block's configuration changed by
    /// `change` (e.g. another batch size, the exact trace, the evaluation solver).
    pub fn reconfigured(&self, change: impl Fn(&mut crate::CnfConfig)) -> Result<Self, Error> {
        let blocks = self
            .blocks
            .iter()
            .map(|c| {
                let mut cfg = c.config.clone();
                change(&mut cfg);
                let mut b = Cnf::new(cfg, &mut Rng::new(0))?;
                b.set_params(&c.params())?;
                Ok(b)
            })
            .collect::<Result<Vec<_>, Error>>()?;
        CnfChain::new(blocks)
    }

    /// The blocks, data side first.
    pub fn blocks(&self) -> &[Cnf] {
        &self.blocks
    }

    /// All parameters: each block's [`Cnf::params`] in order.
    pub fn params(&self) -> Vec<f64> {
        self.blocks.iter().flat_map(|c| c.params()).collect()
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.blocks.iter().map(|c| c.num_params()).sum()
    }

    /// Sets the parameters (the layout of [`CnfChain::params`]).
    pub fn set_params(&mut self, p: &[f64]) -> Result<(), Error> {
        if p.len() != self.num_params() {
            return Err(Error::InvalidArgument {
                what: "chain parameters",
                detail: format!("{} values for {} parameters", p.len(), self.num_params()),
            });
        }
        let mut at = 0;
        for c in &mut self.blocks {
            let n = c.num_params();
            c.set_params(&p[at..at + n])?;
            at += n;
        }
        Ok(())
    }

    /// Sets every block's Hutchinson probe (each block's estimate stays unbiased).
    pub fn set_noise(&mut self, eps: &[f64]) -> Result<(), Error> {
        for c in &mut self.blocks {
            c.set_noise(eps)?;
        }
        Ok(())
    }

    fn batch_dim(&self) -> (usize, usize) {
        (self.blocks[0].config.batch, self.blocks[0].config.dim)
    }

    /// `log p(x)` and the regularisers (summed over blocks) for a batch `x`
    /// (column-major `batch × dim`), each block solved with its configured solver.
    pub fn densities(&self, x: &[f64]) -> Result<Densities, Error> {
        let (b, d) = self.batch_dim();
        let mut z = x.to_vec();
        let (mut delta, mut kin, mut jac) = (vec![0.0; b], vec![0.0; b], vec![0.0; b]);
        let mut nfe = 0;
        for c in &self.blocks {
            let (rec, end) = c.push_forward(&z)?;
            nfe += rec.nfe_forward;
            for r in 0..b {
                delta[r] += end[b * d + r];
                kin[r] += end[b * d + b + r];
                jac[r] += end[b * d + 2 * b + r];
            }
            z = end[..b * d].to_vec();
        }
        let rows: Vec<Vec<f64>> = (0..b).map(|r| (0..d).map(|j| z[r + j * b]).collect()).collect();
        let log_p = (0..b).map(|r| log_normal(&rows[r]) - delta[r]).collect();
        Ok(Densities { log_p, kinetic: kin, jacobian: jac, z: rows, nfe })
    }

    /// The loss `mean(−log p(x)) + Σ_k (λ_K,k mean(K_k) + λ_J,k mean(J_k))` and its
    /// gradients in every block's parameters and in `x`.
    pub fn loss_grad(&self, x: &[f64]) -> Result<LossGrad, Error> {
        let (b, d) = self.batch_dim();
        let n = b as f64;
        let mut z = x.to_vec();
        let mut recs = Vec::with_capacity(self.blocks.len());
        let mut out = LossGrad {
            loss: 0.0,
            nll: 0.0,
            kinetic: 0.0,
            jacobian: 0.0,
            params: Vec::new(),
            x: Vec::new(),
            nfe: (0, 0),
        };
        for c in &self.blocks {
            let (rec, end) = c.push_forward(&z)?;
            out.nfe.0 += rec.nfe_forward;
            let (lk, lj) = (c.config.lambda_kinetic, c.config.lambda_jacobian);
            for r in 0..b {
                out.nll += end[b * d + r] / n;
                out.kinetic += end[b * d + b + r] / n;
                out.jacobian += end[b * d + 2 * b + r] / n;
                out.loss +=
                    (end[b * d + r] + lk * end[b * d + b + r] + lj * end[b * d + 2 * b + r]) / n;
            }
            z = end[..b * d].to_vec();
            recs.push(rec);
        }
        for r in 0..b {
            let row: Vec<f64> = (0..d).map(|j| z[r + j * b]).collect();
            out.nll -= log_normal(&row) / n;
            out.loss -= log_normal(&row) / n;
        }
        // Backwards through the blocks: each block's end cotangent is the next block's
        // input gradient (the base's `∂(−log N)/∂z = z/n` for the last) and its own terms.
        let mut dz: Vec<f64> = z.iter().map(|v| v / n).collect();
        let mut grads = Vec::with_capacity(self.blocks.len());
        for (c, rec) in self.blocks.iter().zip(&recs).rev() {
            let mut cot = dz.clone();
            cot.extend(std::iter::repeat_n(1.0 / n, b));
            cot.extend(std::iter::repeat_n(c.config.lambda_kinetic / n, b));
            cot.extend(std::iter::repeat_n(c.config.lambda_jacobian / n, b));
            let (p, dx, nfe) = c.pull_back(rec, cot)?;
            out.nfe.1 += nfe;
            grads.push(p);
            dz = dx;
        }
        out.params = grads.into_iter().rev().flatten().collect();
        out.x = dz;
        if !out.loss.is_finite() {
            return Err(Error::NonFinite { what: "chain loss", index: 0 });
        }
        if let Some(i) = out.params.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite { what: "chain gradient", index: i });
        }
        Ok(out)
    }

    /// Samples: `z ~ N(0, I)` from `rng` decoded through the blocks in reverse, with
    /// `log p` of the samples from the same solves.
    pub fn sample(
        &self,
        rng: &mut Rng,
        opts: &Options,
    ) -> Result<(Vec<Vec<f64>>, Vec<f64>), Error> {
        let (b, d) = self.batch_dim();
        let z: Vec<f64> = (0..b * d).map(|_| rng.normal()).collect();
        let rows = |v: &[f64]| -> Vec<Vec<f64>> {
            (0..b).map(|r| (0..d).map(|j| v[r + j * b]).collect()).collect()
        };
        let mut log_p: Vec<f64> = rows(&z).iter().map(|r| log_normal(r)).collect();
        let mut cur = z;
        let mut xs = Vec::new();
        for c in self.blocks.iter().rev() {
            let before: Vec<f64> = rows(&cur).iter().map(|r| log_normal(r)).collect();
            let (x, lp) = c.decode(&cur, opts)?;
            for r in 0..b {
                log_p[r] += lp[r] - before[r];
            }
            cur = (0..d).flat_map(|j| x.iter().map(move |row| row[j])).collect();
            xs = x;
        }
        Ok((xs, log_p))
    }
}

/// A chain as a `train::Model`: its loss and gradients per batch, the probe set first.
pub struct ChainModel {
    /// The chain.
    pub chain: CnfChain,
}

impl train::Model for ChainModel {
    type Batch = PointBatch;

    fn num_params(&self) -> usize {
        self.chain.num_params()
    }

    fn read_params(&self, out: &mut [f64]) -> Result<(), train::Error> {
        train::copy_params(out, &self.chain.params())
    }

    fn write_params(&mut self, params: &[f64]) -> Result<(), train::Error> {
        self.chain.set_params(params).map_err(train::Error::model)
    }

    fn loss_and_grad(
        &mut self,
        batch: &PointBatch,
        grad: &mut [f64],
    ) -> Result<train::StepReport, train::Error> {
        self.chain.set_noise(&batch.eps).map_err(train::Error::model)?;
        let g = self.chain.loss_grad(&batch.x).map_err(train::Error::model)?;
        train::copy_params(grad, &g.params)?;
        Ok(train::StepReport {
            loss: g.loss,
            metrics: vec![("nll", g.nll), ("kinetic", g.kinetic), ("jacobian", g.jacobian)],
            nfe_forward: g.nfe.0,
            nfe_backward: g.nfe.1,
        })
    }
}
