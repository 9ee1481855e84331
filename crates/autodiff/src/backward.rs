//! Reverse mode: vector-Jacobian products built as new nodes of the same graph.
//!
//! [`Graph::vjp`] walks the nodes from the outputs back and, for each operation, appends
//! the nodes that compute its operands' cotangents (one exhaustive `match`). Because the
//! result is an ordinary graph, it can be replayed without rebuilding and differentiated
//! again: gradients of gradients, Hessian-vector products, `∂/∂θ (εᵀ ∂f/∂z)`.

use crate::graph::{Binary, Graph, Op, Unary, Var};
use crate::Error;

impl Graph {
    /// Builds `Σ_k cotangent_kᵀ ∂output_k/∂w` for each `w` in `wrt` and returns the new nodes
    /// (shaped like `w`). `seeds` pairs each output with its cotangent, a node of the same
    /// shape (usually an input). A `w` that no output depends on gets a zero constant.
    pub fn vjp(&mut self, seeds: &[(Var, Var)], wrt: &[Var]) -> Result<Vec<Var>, Error> {
        let n = self.nodes.len();
        for &(out, cot) in seeds {
            let (so, sc) = (self.shape(out)?, self.shape(cot)?);
            if so != sc {
                return Err(Error::ShapeMismatch { op: "vjp cotangent", expected: so, got: sc });
            }
        }
        for &w in wrt {
            self.node(w)?;
        }
        // Nodes through which some `wrt` reaches an output: only those get adjoints.
        let mut depends = vec![false; n];
        for &w in wrt {
            depends[w.0] = true;
        }
        for i in 0..n {
            if !depends[i] {
                depends[i] = operands(&self.nodes[i].op).iter().any(|v| depends[v.0]);
            }
        }
        let mut adj: Vec<Option<Var>> = vec![None; n];
        for &(out, cot) in seeds {
            if depends[out.0] {
                accumulate(self, &mut adj, out, cot)?;
            }
        }
        for i in (0..n).rev() {
            let Some(g) = adj[i] else { continue };
            if !depends[i] {
                continue;
            }
            let y = Var(i);
            let op = self.nodes[i].op.clone();
            for (operand, contribution) in self.backward_op(&op, y, g, &depends)? {
                accumulate(self, &mut adj, operand, contribution)?;
            }
        }
        wrt.iter()
            .map(|&w| match adj[w.0] {
                Some(g) => Ok(g),
                None => {
                    let (r, c) = self.shape(w)?;
                    Ok(self.fill(r, c, 0.0))
                }
            })
            .collect()
    }

    /// The gradient of a `1×1` output: `vjp` with cotangent 1.
    pub fn grad(&mut self, output: Var, wrt: &[Var]) -> Result<Vec<Var>, Error> {
        let s = self.shape(output)?;
        if s != (1, 1) {
            return Err(Error::ShapeMismatch {
                op: "grad (scalar output)",
                expected: (1, 1),
                got: s,
            });
        }
        let one = self.fill(1, 1, 1.0);
        self.vjp(&[(output, one)], wrt)
    }

    /// `1 - x`.
    fn one_minus(&mut self, x: Var) -> Result<Var, Error> {
        let n = self.neg(x)?;
        self.add_scalar(n, 1.0)
    }

    /// The cotangent contributions `(operand, cotangent)` of one node with output `y` and
    /// adjoint `g`. Operands that no `wrt` reaches are skipped.
    fn backward_op(
        &mut self,
        op: &Op,
        y: Var,
        g: Var,
        depends: &[bool],
    ) -> Result<Vec<(Var, Var)>, Error> {
        let wanted = |v: &Var| depends[v.0];
        let mut out = Vec::new();
        match *op {
            Op::Input(_) | Op::Param(_) | Op::Constant(_) => {}
            Op::Unary(f, x) => {
                let local = match f {
                    Unary::Tanh => {
                        out.push((x, self.tanh_grad(g, y)?));
                        None
                    }
                    Unary::Sigmoid => {
                        let om = self.one_minus(y)?;
                        Some(self.mul(y, om)?)
                    }
                    Unary::Softplus => Some(self.sigmoid(x)?),
                    Unary::Relu => Some(self.unary(Unary::Step, x)?),
                    Unary::Elu(alpha) => {
                        // 1 where x > 0, else y + α.
                        let s = self.unary(Unary::Step, x)?;
                        let ya = self.add_scalar(y, alpha)?;
                        let os = self.one_minus(s)?;
                        let neg_part = self.mul(os, ya)?;
                        Some(self.add(s, neg_part)?)
                    }
                    Unary::Swish => {
                        // σ + y (1 - σ).
                        let s = self.sigmoid(x)?;
                        let os = self.one_minus(s)?;
                        let t = self.mul(y, os)?;
                        Some(self.add(s, t)?)
                    }
                    Unary::Exp => Some(y),
                    Unary::Log => {
                        out.push((x, self.div(g, x)?));
                        None
                    }
                    Unary::Sqrt => {
                        let half = self.scale(g, 0.5)?;
                        out.push((x, self.div(half, y)?));
                        None
                    }
                    Unary::Square => Some(self.scale(x, 2.0)?),
                    Unary::Abs => Some(self.unary(Unary::Sign, x)?),
                    Unary::Step | Unary::Sign => None,
                    Unary::Neg => {
                        out.push((x, self.neg(g)?));
                        None
                    }
                    Unary::Scale(c) => {
                        out.push((x, self.scale(g, c)?));
                        None
                    }
                    Unary::AddScalar(_) => {
                        out.push((x, g));
                        None
                    }
                    Unary::PowI(0) => None,
                    Unary::PowI(k) => {
                        let p = self.powi(x, k - 1)?;
                        Some(self.scale(p, f64::from(k))?)
                    }
                };
                if let Some(d) = local {
                    out.push((x, self.mul(g, d)?));
                }
            }
            Op::Binary(f, a, b) => {
                let (sa, sb) = (self.shape(a)?, self.shape(b)?);
                let (ga, gb) = match f {
                    Binary::Add => (Some(g), Some(g)),
                    Binary::Sub => (Some(g), if wanted(&b) { Some(self.neg(g)?) } else { None }),
                    Binary::Mul => (
                        if wanted(&a) { Some(self.mul(g, b)?) } else { None },
                        if wanted(&b) { Some(self.mul(g, a)?) } else { None },
                    ),
                    Binary::Div => {
                        let ga = if wanted(&a) { Some(self.div(g, b)?) } else { None };
                        // d(a/b)/db = -y/b.
                        let gb = if wanted(&b) {
                            let gy = self.mul(g, y)?;
                            let q = self.div(gy, b)?;
                            Some(self.neg(q)?)
                        } else {
                            None
                        };
                        (ga, gb)
                    }
                    Binary::TanhGrad => (
                        // y = a(1 - b²): ∂y/∂a = 1 - b², ∂y/∂b = -2ab.
                        if wanted(&a) { Some(self.tanh_grad(g, b)?) } else { None },
                        if wanted(&b) {
                            let ga = self.mul(g, a)?;
                            let gab = self.mul(ga, b)?;
                            Some(self.scale(gab, -2.0)?)
                        } else {
                            None
                        },
                    ),
                };
                if let (Some(ga), true) = (ga, wanted(&a)) {
                    out.push((a, self.sum_to(ga, sa)?));
                }
                if let (Some(gb), true) = (gb, wanted(&b)) {
                    out.push((b, self.sum_to(gb, sb)?));
                }
            }
            Op::MatMul { a, b, ta, tb } => {
                // C = op(a) op(b).
                if wanted(&a) {
                    let ga = if ta {
                        self.matmul_t(b, g, tb, true)?
                    } else {
                        self.matmul_t(g, b, false, !tb)?
                    };
                    out.push((a, ga));
                }
                if wanted(&b) {
                    let gb = if tb {
                        self.matmul_t(g, a, true, ta)?
                    } else {
                        self.matmul_t(a, g, !ta, false)?
                    };
                    out.push((b, gb));
                }
            }
            Op::Sum(x, _) => {
                let s = self.shape(x)?;
                out.push((x, self.broadcast_to(g, s)?));
            }
            Op::Broadcast(x) => {
                let s = self.shape(x)?;
                out.push((x, self.sum_to(g, s)?));
            }
            Op::ConcatCols(ref parts) => {
                let mut start = 0;
                for &p in parts {
                    let w = self.shape(p)?.1;
                    if wanted(&p) {
                        out.push((p, self.slice_cols(g, start, w)?));
                    }
                    start += w;
                }
            }
            Op::SliceCols(x, start) => {
                let cols = self.shape(x)?.1;
                out.push((x, self.pad_cols(g, start, cols)?));
            }
            Op::PadCols(x, start) => {
                let w = self.shape(x)?.1;
                out.push((x, self.slice_cols(g, start, w)?));
            }
            Op::Transpose(x) => out.push((x, self.transpose(g)?)),
            Op::LogSumExpRows(x) => {
                // g · softmax(x), softmax = exp(x - y).
                let centred = self.sub(x, y)?;
                let softmax = self.exp(centred)?;
                out.push((x, self.mul(softmax, g)?));
            }
            Op::Im2Col(x, geom) => out.push((x, self.col2im(g, geom)?)),
            Op::Col2Im(x, geom) => out.push((x, self.im2col(g, geom)?)),
            Op::PositionsToRows(x, p) => out.push((x, self.rows_to_positions(g, p)?)),
            Op::RowsToPositions(x, p) => out.push((x, self.positions_to_rows(g, p)?)),
            Op::RowsToBlocks(x, k) => out.push((x, self.blocks_to_rows(g, k)?)),
            Op::BlocksToRows(x, k) => out.push((x, self.rows_to_blocks(g, k)?)),
            Op::RepeatCols(x, t) => out.push((x, self.sum_groups(g, t)?)),
            Op::SumGroups(x, t) => out.push((x, self.repeat_cols(g, t)?)),
        }
        out.retain(|(v, _)| wanted(v));
        Ok(out)
    }
}

/// Adds `contribution` to the adjoint of `v`.
fn accumulate(
    g: &mut Graph,
    adj: &mut [Option<Var>],
    v: Var,
    contribution: Var,
) -> Result<(), Error> {
    adj[v.0] = Some(match adj[v.0] {
        None => contribution,
        Some(prev) => g.add(prev, contribution)?,
    });
    Ok(())
}

impl Op {
    /// The nodes this operation reads.
    pub fn operands(&self) -> Vec<Var> {
        operands(self)
    }
}

/// The operands of an operation.
pub(crate) fn operands(op: &Op) -> Vec<Var> {
    match op {
        Op::Input(_) | Op::Param(_) | Op::Constant(_) => vec![],
        Op::Unary(_, x)
        | Op::Sum(x, _)
        | Op::Broadcast(x)
        | Op::SliceCols(x, _)
        | Op::PadCols(x, _)
        | Op::Transpose(x)
        | Op::LogSumExpRows(x)
        | Op::Im2Col(x, _)
        | Op::Col2Im(x, _)
        | Op::PositionsToRows(x, _)
        | Op::RowsToPositions(x, _)
        | Op::RowsToBlocks(x, _)
        | Op::BlocksToRows(x, _)
        | Op::RepeatCols(x, _)
        | Op::SumGroups(x, _) => vec![*x],
        Op::Binary(_, a, b) | Op::MatMul { a, b, .. } => vec![*a, *b],
        Op::ConcatCols(parts) => parts.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Axis;

    #[test]
    fn unreached_variables_get_zero_gradients() {
        let mut g = Graph::new();
        let x = g.input(2, 3);
        let z = g.input(2, 3);
        let s = g.sum(x, Axis::All).unwrap();
        let grads = g.grad(s, &[z]).unwrap();
        assert!(matches!(g.nodes[grads[0].0].op, Op::Constant(_)));
    }
}
