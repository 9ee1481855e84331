//! Evaluation: an [`Executor`] plans the nodes chosen outputs need, gives them
//! preallocated buffers (intermediates share buffers when their lifetimes do not overlap)
//! and replays the graph on new inputs without allocating.

use crate::backward::operands;
use crate::gemm::{gemm, pack_len, Strided};
use crate::graph::{Axis, Binary, Graph, Mat, Op, Unary, Var};
use crate::real::Real;
use crate::Error;
use nalgebra::DMatrix;

/// Replays a graph: evaluates the nodes needed for chosen outputs into preallocated
/// buffers. `run` allocates nothing.
///
/// Inputs, constants and the outputs keep their own buffers; every other node writes into
/// a work buffer that it shares with nodes whose lifetimes (from evaluation to last read)
/// do not overlap its own, assigned once when the executor is built. A training graph's
/// gradient intermediates, and a forward pass's activations, so take a few buffers
/// instead of one each.
///
/// ```
/// use autodiff::{Executor, Graph, Mat};
/// let mut g = Graph::new();
/// let x = g.input(1, 2);
/// let y = g.tanh(x)?;
/// let s = g.sum(y, autodiff::Axis::All)?;
/// let dx = g.grad(s, &[x])?[0];
/// let mut exe = Executor::new(&g, &[s, dx])?;
/// exe.run(&g, &[&Mat::from_row_slice(1, 2, &[0.0, 1.0])])?;
/// assert!((exe.value(dx)[(0, 1)] - (1.0 - 1f64.tanh().powi(2))).abs() < 1e-15);
/// assert!(exe.value(y).is_empty()); // an intermediate: its buffer is shared
/// # Ok::<(), autodiff::Error>(())
/// ```
///
/// The element type `T` is `f64` unless asked otherwise: [`Executor::build`] plans an
/// `Executor<f32>`, which replays the same graph in single precision (see [`Real`]).
///
/// ```
/// use autodiff::{Executor, Graph, Mat, Mat32};
/// let mut g = Graph::new();
/// let x = g.input(2, 3);
/// let w = g.param("w", &Mat::from_row_slice(3, 1, &[0.5, -1.0, 2.0]));
/// let h = g.matmul(x, w)?;
/// let y = g.tanh(h)?;
/// let mut exe = Executor::<f32>::build(&g, &[y])?;
/// exe.run(&g, &[&Mat32::from_element(2, 3, 0.25)])?;
/// assert!((exe.value(y)[0] - 0.375f32.tanh()).abs() < 1e-6);
/// # Ok::<(), autodiff::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Executor<T: Real = f64> {
    /// The graph planned for (`Graph::id`) and its node count then.
    graph: (u64, usize),
    /// Values that outlive a run: the inputs, constants and outputs.
    kept: Vec<DMatrix<T>>,
    /// Work buffers of the other planned nodes, each shared by nodes whose lifetimes do
    /// not overlap.
    work: Vec<Vec<T>>,
    /// Where each work buffer's values start (see [`work_offset`]).
    work_at: Vec<usize>,
    /// Where each node's value lives.
    loc: Vec<Loc>,
    plan: Vec<usize>,
    /// Panel buffer of the matrix-product kernel.
    scratch: Vec<T>,
    /// The graph's parameters converted to `T` at each replay (empty where `T` is `f64`:
    /// those are read from the graph).
    params: Vec<T>,
    /// Returned by [`Executor::value`] for nodes without a kept value.
    empty: DMatrix<T>,
}

/// Where a node's value lives in an [`Executor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loc {
    /// A parameter (read from the graph) or a node the outputs do not need.
    Nowhere,
    /// `Executor::kept[j]`.
    Kept(usize),
    /// The first `rows·cols` entries of `Executor::work[s]`.
    Work(usize),
    /// An element-wise binary node read only by one unary node (not an output): the
    /// reader evaluates it in L1-sized pieces as it goes, so it is never stored (see
    /// [`fuses_into_reader`]).
    Fused,
}

/// Read access to the values of a run in progress.
struct Values<'a, T> {
    kept: &'a [DMatrix<T>],
    work: &'a [Vec<T>],
    work_at: &'a [usize],
    loc: &'a [Loc],
    params: &'a [T],
}

impl<'a, T> Values<'a, T> {
    fn new(
        kept: &'a [DMatrix<T>],
        (work, work_at): (&'a [Vec<T>], &'a [usize]),
        loc: &'a [Loc],
        params: &'a [T],
    ) -> Self {
        Values { kept, work, work_at, loc, params }
    }
}

impl Executor<f64> {
    /// Plans the evaluation of `outputs` in `f64`, assigns buffers and allocates them
    /// ([`Executor::build`] for `f32`).
    pub fn new(g: &Graph, outputs: &[Var]) -> Result<Self, Error> {
        Self::build(g, outputs)
    }
}

impl<T: Real> Executor<T> {
    /// Plans the evaluation of `outputs` in `T`, assigns buffers and allocates them.
    pub fn build(g: &Graph, outputs: &[Var]) -> Result<Self, Error> {
        T::exec_build(g, outputs)
    }

    /// [`Executor::build`]'s body, instantiated in this crate only ([`Real::exec_build`]).
    pub(crate) fn build_here(g: &Graph, outputs: &[Var]) -> Result<Self, Error> {
        let n = g.nodes.len();
        // Every value must fit in memory's address space: refuse forged sizes up front
        // instead of overflowing (or aborting) while allocating.
        if let Some(node) = g.nodes.iter().find(|node| {
            node.shape
                .0
                .checked_mul(node.shape.1)
                .and_then(|e| e.checked_mul(std::mem::size_of::<T>()))
                .is_none_or(|b| b > isize::MAX as usize)
        }) {
            return Err(Error::InvalidArgument {
                op: "executor",
                detail: format!("a {}×{} value does not fit in memory", node.shape.0, node.shape.1),
            });
        }
        let mut needed = vec![false; n];
        let mut kept_node = vec![false; n];
        for &o in outputs {
            g.node(o)?;
            needed[o.0] = true;
            kept_node[o.0] = true;
        }
        for i in (0..n).rev() {
            if needed[i] {
                for v in operands(&g.nodes[i].op) {
                    needed[v.0] = true;
                }
            }
        }
        let mut plan: Vec<usize> = (0..n)
            .filter(|&i| {
                needed[i] && !matches!(g.nodes[i].op, Op::Param(_) | Op::Constant(_) | Op::Input(_))
            })
            .collect();
        let mut loc = vec![Loc::Nowhere; n];
        // Element-wise fusion: `f(a ∘ b)` with the binary node read by nothing else.
        let mut readers = vec![0usize; n];
        for &i in &plan {
            // Nothing is fused yet: these are the node's distinct operands.
            for v in step_operands(g, i, &loc) {
                readers[v.0] += 1;
            }
        }
        for &i in &plan {
            if let Op::Unary(_, x) = g.nodes[i].op {
                if readers[x.0] == 1 && !kept_node[x.0] && fuses_into_reader(g, x) {
                    loc[x.0] = Loc::Fused;
                }
            }
        }
        // Then `(a ∘ b) ∘ c` (a VJP's second-order terms, a sum before `tanh_grad`): a binary
        // node of its reader's shape, read by nothing else, into a binary reader that is not
        // itself fused; at most one fused operand per step, and none that has its own.
        for &i in &plan {
            if loc[i] == Loc::Fused {
                continue;
            }
            if let Op::Binary(_, p, q) = g.nodes[i].op {
                let fusable = |x: Var| {
                    readers[x.0] == 1
                        && !kept_node[x.0]
                        && loc[x.0] != Loc::Fused
                        && g.nodes[x.0].shape == g.nodes[i].shape
                        && operands(&g.nodes[x.0].op).iter().all(|v| loc[v.0] != Loc::Fused)
                        && fuses_into_reader(g, x)
                };
                if let Some(x) = [p, q].into_iter().find(|&x| fusable(x)) {
                    loc[x.0] = Loc::Fused;
                }
            }
        }
        plan.retain(|&i| loc[i] != Loc::Fused);
        let step_ops: Vec<Vec<Var>> = plan.iter().map(|&i| step_operands(g, i, &loc)).collect();
        let mut kept = Vec::new();
        for (i, node) in g.nodes.iter().enumerate() {
            let keep = match node.op {
                Op::Param(_) => false,
                Op::Input(_) | Op::Constant(_) => needed[i],
                _ => kept_node[i],
            };
            if keep {
                loc[i] = Loc::Kept(kept.len());
                kept.push(match node.op {
                    Op::Constant(c) => g.constants[c].map(T::of),
                    _ => DMatrix::zeros(node.shape.0, node.shape.1),
                });
            }
        }
        // The plan step of each node's last read.
        let mut last_read = vec![None; n];
        for (k, ops) in step_ops.iter().enumerate() {
            for v in ops {
                last_read[v.0] = Some(k);
            }
        }
        // Greedy assignment in plan order: a node takes the free buffer that fits it most
        // tightly (or grows the largest free one, or opens a new one); its operands read
        // for the last time are freed only after, so no node writes over its operands.
        let mut caps: Vec<usize> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        for (k, &i) in plan.iter().enumerate() {
            if loc[i] == Loc::Nowhere {
                let (r, c) = g.nodes[i].shape;
                let len = r * c;
                let fitting = free.iter().enumerate().filter(|(_, &s)| caps[s] >= len);
                let pick = fitting
                    .min_by_key(|(_, &s)| caps[s])
                    .or_else(|| free.iter().enumerate().max_by_key(|(_, &s)| caps[s]))
                    .map(|(at, _)| at);
                let s = match pick {
                    Some(at) => free.swap_remove(at),
                    None => {
                        caps.push(0);
                        caps.len() - 1
                    }
                };
                caps[s] = caps[s].max(len);
                loc[i] = Loc::Work(s);
                if last_read[i].is_none() {
                    free.push(s);
                }
            }
            for v in &step_ops[k] {
                if let (Loc::Work(s), Some(last)) = (loc[v.0], last_read[v.0]) {
                    if last == k {
                        free.push(s);
                    }
                }
            }
        }
        let work_at: Vec<usize> =
            caps.iter().enumerate().map(|(s, &cap)| work_offset::<T>(s, cap)).collect();
        let work = caps.iter().zip(&work_at).map(|(&cap, &at)| vec![T::zero(); cap + at]).collect();
        let scratch_len = plan_scratch::<T>(g, &plan, &loc);
        let params = match T::native(&g.params) {
            Some(_) => Vec::new(),
            None => Vec::with_capacity(g.params.len()),
        };
        Ok(Executor {
            graph: (g.id, n),
            kept,
            work,
            work_at,
            loc,
            plan,
            scratch: vec![T::zero(); scratch_len],
            params,
            empty: DMatrix::zeros(0, 0),
        })
    }

    /// Evaluates the planned nodes for `inputs` (one per `Graph::input`, in order) and the
    /// graph's current parameters.
    pub fn run(&mut self, g: &Graph, inputs: &[&DMatrix<T>]) -> Result<(), Error> {
        self.check_graph(g)?;
        if inputs.len() != g.inputs.len() {
            return Err(Error::InputCount { expected: g.inputs.len(), got: inputs.len() });
        }
        for (&v, x) in g.inputs.iter().zip(inputs) {
            if let Loc::Kept(j) = self.loc[v.0] {
                let buf = &mut self.kept[j];
                if buf.shape() != x.shape() {
                    return Err(Error::ShapeMismatch {
                        op: "input",
                        expected: buf.shape(),
                        got: x.shape(),
                    });
                }
                buf.copy_from(*x);
            }
        }
        self.replay(g)
    }

    /// Writes `data` (column-major, the input's length) into the buffer of input `v`, for
    /// a later [`Executor::replay`]; the value stays until it is set again. An input the
    /// planned outputs do not read is accepted and ignored.
    pub fn set_input(&mut self, g: &Graph, v: Var, data: &[T]) -> Result<(), Error> {
        self.check_graph(g)?;
        let node = g.node(v)?;
        if !matches!(node.op, Op::Input(_)) {
            return Err(Error::InvalidArgument {
                op: "set_input",
                detail: format!("node {} is not an input", v.0),
            });
        }
        let (r, c) = node.shape;
        if data.len() != r * c {
            return Err(Error::ShapeMismatch {
                op: "set_input",
                expected: (r, c),
                got: (data.len(), 1),
            });
        }
        if let Loc::Kept(j) = self.loc[v.0] {
            self.kept[j].as_mut_slice().copy_from_slice(data);
        }
        Ok(())
    }

    /// Evaluates the planned nodes on the inputs as last set (by [`Executor::run`] or
    /// [`Executor::set_input`]) and the graph's current parameters. Allocates nothing.
    pub fn replay(&mut self, g: &Graph) -> Result<(), Error> {
        T::exec_replay(self, g)
    }

    /// [`Executor::replay`]'s body, instantiated in this crate only ([`Real::exec_replay`]).
    pub(crate) fn replay_here(&mut self, g: &Graph) -> Result<(), Error> {
        self.check_graph(g)?;
        let native = T::native(&g.params);
        if native.is_none() {
            self.params.clear();
            self.params.extend(g.params.iter().map(|&p| T::of(p)));
        }
        let params = native.unwrap_or(&self.params);
        for k in 0..self.plan.len() {
            let i = self.plan[k];
            let (r, c) = g.nodes[i].shape;
            // The node's buffer is taken out while it is written (its operands live in
            // other buffers, see `new`); moving a `Vec` or an empty `Mat` allocates nothing.
            match self.loc[i] {
                Loc::Kept(j) => {
                    let mut out = std::mem::replace(&mut self.kept[j], DMatrix::zeros(0, 0));
                    let vals =
                        Values::new(&self.kept, (&self.work, &self.work_at), &self.loc, params);
                    eval_node(g, &vals, i, &mut self.scratch, out.as_mut_slice());
                    self.kept[j] = out;
                }
                Loc::Work(s) => {
                    let mut out = std::mem::take(&mut self.work[s]);
                    let vals =
                        Values::new(&self.kept, (&self.work, &self.work_at), &self.loc, params);
                    let at = self.work_at[s];
                    eval_node(g, &vals, i, &mut self.scratch, &mut out[at..at + r * c]);
                    self.work[s] = out;
                }
                Loc::Nowhere | Loc::Fused => {}
            }
        }
        Ok(())
    }

    /// The graph must be the one this executor was planned for (nodes are only ever
    /// appended, so a graph that grew since is still fine).
    fn check_graph(&self, g: &Graph) -> Result<(), Error> {
        if g.id != self.graph.0 || g.nodes.len() < self.graph.1 {
            return Err(Error::InvalidArgument {
                op: "executor",
                detail: "this executor was planned for another graph; build one with \
                         Executor::new for this graph"
                    .into(),
            });
        }
        Ok(())
    }

    /// The value of an output or an input after the last `run`; an empty matrix for any
    /// other node (intermediates share buffers), for a node not planned and for
    /// parameters, which live in [`Graph::params`].
    pub fn value(&self, v: Var) -> &DMatrix<T> {
        match self.loc.get(v.0) {
            Some(&Loc::Kept(j)) => &self.kept[j],
            _ => &self.empty,
        }
    }

    /// Bytes of the value and work buffers (not counting the kernel's packing buffer).
    pub fn buffer_bytes(&self) -> usize {
        let kept: usize = self.kept.iter().map(|m| m.len()).sum();
        let work: usize = self.work.iter().map(Vec::len).sum();
        (kept + work) * std::mem::size_of::<T>()
    }

    /// Copies the values of `vars` (outputs of this executor, inputs or parameters) one
    /// after the other (each column-major) into `out`, e.g. the parameter gradients into
    /// one flat vector. Parameters are read from `g`.
    pub fn gather(&self, g: &Graph, vars: &[Var], out: &mut [T]) -> Result<(), Error> {
        // Parameters are converted from the graph here (a replay's copy may be stale).
        let vals = Values::new(&self.kept, (&self.work, &self.work_at), &self.loc, &[]);
        let mut at = 0;
        for &v in vars {
            let node = g.node(v)?;
            if !matches!(node.op, Op::Param(_) | Op::Input(_) | Op::Constant(_))
                && !matches!(self.loc.get(v.0), Some(Loc::Kept(_)))
            {
                return Err(Error::InvalidArgument {
                    op: "gather",
                    detail: format!("node {} is not an output of this executor", v.0),
                });
            }
            let (r, c) = node.shape;
            let end = at + r * c;
            if end > out.len() {
                return Err(Error::ShapeMismatch {
                    op: "gather",
                    expected: (end, 1),
                    got: (out.len(), 1),
                });
            }
            match node.op {
                Op::Param(p) => {
                    let b = &g.blocks[p];
                    let src = &g.params[b.offset..b.offset + b.shape.0 * b.shape.1];
                    for (o, &x) in out[at..end].iter_mut().zip(src) {
                        *o = T::of(x);
                    }
                }
                _ => out[at..end].copy_from_slice(data(g, &vals, v)),
            }
            at = end;
        }
        if at != out.len() {
            return Err(Error::ShapeMismatch {
                op: "gather",
                expected: (at, 1),
                got: (out.len(), 1),
            });
        }
        Ok(())
    }
}

/// The scratch space the planned steps need: the largest of the products' [`pack_len`]s
/// and of the fused steps' pieces.
fn plan_scratch<T>(g: &Graph, plan: &[usize], loc: &[Loc]) -> usize {
    plan.iter()
        .map(|&i| {
            let node = &g.nodes[i];
            match node.op {
                Op::MatMul { a, ta, .. } => {
                    let (r, c) = g.nodes[a.0].shape;
                    let (m, k) = if ta { (c, r) } else { (r, c) };
                    pack_len::<T>(m, node.shape.1, k)
                }
                Op::Unary(_, x) if loc[x.0] == Loc::Fused => {
                    FUSED_PIECE.min(node.shape.0 * node.shape.1)
                }
                Op::Binary(_, a, b) if loc[a.0] == Loc::Fused || loc[b.0] == Loc::Fused => {
                    FUSED_PIECE.min(node.shape.0 * node.shape.1)
                }
                _ => 0,
            }
        })
        .max()
        .unwrap_or(0)
}

/// Where work buffer `s` (of `cap` values) starts its values: buffer by buffer 192
/// bytes further, modulo 4 KiB, for buffers of 64 KiB or more. Large allocations come
/// page-aligned (glibc maps them from 128 KiB up), so without it element `i` of every
/// large matrix would share its address's low 12 bits with element `i` of the others, and
/// an element-wise step's loads would wait on its stores to another matrix (4K
/// aliasing). On a Zen 4 EPYC
/// (`benches/peers/ab.sh`, 3-4 rounds): T3 0.989x, T2's gradients 0.994-0.998x, forwards
/// 0.99-1.00x. Smaller buffers keep no padding (it would cost more memory than it saves).
fn work_offset<T>(s: usize, cap: usize) -> usize {
    let size = std::mem::size_of::<T>().max(1);
    if cap.saturating_mul(size) < 1 << 16 {
        return 0;
    }
    (s * (192 / size)) % (4096 / size)
}

/// Rows per piece of a fused step: 8 KiB of `f64`, which stays in L1 between the binary
/// operation writing it and the unary one reading it.
const FUSED_PIECE: usize = 1024;

/// The distinct values the plan step of node `i` reads: its operands, with an operand
/// planned as [`Loc::Fused`] replaced by that node's own operands.
fn step_operands(g: &Graph, i: usize, loc: &[Loc]) -> Vec<Var> {
    let mut ops = Vec::new();
    for v in operands(&g.nodes[i].op) {
        if loc[v.0] == Loc::Fused {
            ops.extend(operands(&g.nodes[v.0].op));
        } else {
            ops.push(v);
        }
    }
    ops.sort_unstable_by_key(|v| v.0);
    ops.dedup_by_key(|v| v.0);
    ops
}

/// Whether the binary node `x` may be evaluated piecewise inside its (unary) reader
/// instead of stored: its pieces are long enough to run at vector speed (columns of 64
/// rows or more, or neither operand broadcasts, so the pieces run over the flat matrix).
fn fuses_into_reader(g: &Graph, x: Var) -> bool {
    match g.nodes[x.0].op {
        Op::Binary(_, a, b) => {
            let s = g.nodes[x.0].shape;
            s.0 >= 64 || (g.nodes[a.0].shape == s && g.nodes[b.0].shape == s)
        }
        _ => false,
    }
}

/// Evaluates `outputs` once on `inputs` (the eager path: same kernels as a replay).
pub fn eval(g: &Graph, outputs: &[Var], inputs: &[&Mat]) -> Result<Vec<Mat>, Error> {
    let mut exe = Executor::new(g, outputs)?;
    exe.run(g, inputs)?;
    let vals = Values::new(&exe.kept, (&exe.work, &exe.work_at), &exe.loc, &g.params);
    Ok(outputs
        .iter()
        .map(|&v| {
            let (r, c) = g.nodes[v.0].shape;
            Mat::from_column_slice(r, c, data(g, &vals, v))
        })
        .collect())
}

/// Column-major data of an evaluated node (empty for one without a value).
fn data<'a, T>(g: &'a Graph, vals: &Values<'a, T>, v: Var) -> &'a [T] {
    match g.nodes[v.0].op {
        Op::Param(p) => {
            let b = &g.blocks[p];
            vals.params.get(b.offset..b.offset + b.shape.0 * b.shape.1).unwrap_or(&[])
        }
        _ => match vals.loc[v.0] {
            Loc::Kept(j) => vals.kept[j].as_slice(),
            Loc::Work(s) => {
                let (r, c) = g.nodes[v.0].shape;
                let at = vals.work_at[s];
                &vals.work[s][at..at + r * c]
            }
            Loc::Nowhere | Loc::Fused => &[],
        },
    }
}

/// `c = op(a) · op(b)` for column-major operands, transposes taken by strides; `pack`
/// is the kernel's panel buffer.
fn matmul<T: Real>(
    a: &[T],
    sa: (usize, usize),
    ta: bool,
    b: &[T],
    sb: (usize, usize),
    tb: bool,
    pack: &mut [T],
    c: &mut [T],
) {
    // (rows, cols, row stride, column stride) of op(x) for a column-major x.
    let op = |s: (usize, usize), t: bool| if t { (s.1, s.0, s.0, 1) } else { (s.0, s.1, 1, s.0) };
    let (m, k, ars, acs) = op(sa, ta);
    let (_, n, brs, bcs) = op(sb, tb);
    gemm(
        m,
        n,
        k,
        Strided { data: a, rs: ars, cs: acs },
        Strided { data: b, rs: brs, cs: bcs },
        c,
        pack,
    );
}

#[inline(always)]
fn apply_unary<T: Real>(f: Unary, x: T) -> T {
    let zero = T::zero();
    match f {
        Unary::Tanh => x.fast_tanh::<false>(),
        Unary::Sigmoid => x.fast_sigmoid::<false>(),
        Unary::Softplus => x.max(zero) + (-x.abs()).fast_exp::<false>().ln_1p(),
        Unary::Relu => x.max(zero),
        Unary::Elu(a) => {
            if x > zero {
                x
            } else {
                T::of(a) * x.exp_m1()
            }
        }
        Unary::Swish => x * x.fast_sigmoid::<false>(),
        Unary::Exp => x.fast_exp::<false>(),
        Unary::Log => x.ln(),
        Unary::Sqrt => x.sqrt(),
        Unary::Square => x * x,
        Unary::Abs => x.abs(),
        Unary::Step => {
            if x > zero {
                T::one()
            } else {
                zero
            }
        }
        Unary::Sign => {
            if x > zero {
                T::one()
            } else if x < zero {
                -T::one()
            } else {
                zero
            }
        }
        Unary::Neg => -x,
        Unary::Scale(c) => T::of(c) * x,
        Unary::AddScalar(c) => x + T::of(c),
        Unary::PowI(n) => x.powi(n),
    }
}

/// `out = f(xs)` element-wise, one straight loop per function.
#[inline(always)]
fn unary_body<T: Real, const FMA: bool>(f: Unary, out: &mut [T], xs: &[T]) {
    #[inline(always)]
    fn map<T: Real>(out: &mut [T], xs: &[T], f: impl Fn(T) -> T) {
        for (o, &v) in out.iter_mut().zip(xs) {
            *o = f(v);
        }
    }
    let zero = T::zero();
    match f {
        Unary::Tanh => map(out, xs, T::fast_tanh::<FMA>),
        Unary::Sigmoid => map(out, xs, T::fast_sigmoid::<FMA>),
        Unary::Exp => map(out, xs, T::fast_exp::<FMA>),
        Unary::Softplus => map(out, xs, |x| x.max(zero) + (-x.abs()).fast_exp::<FMA>().ln_1p()),
        Unary::Swish => map(out, xs, |x| x * x.fast_sigmoid::<FMA>()),
        Unary::Square => map(out, xs, |v| v * v),
        Unary::Neg => map(out, xs, |v| -v),
        Unary::Scale(c) => {
            let c = T::of(c);
            map(out, xs, |v| c * v)
        }
        Unary::AddScalar(c) => {
            let c = T::of(c);
            map(out, xs, |v| v + c)
        }
        other => map(out, xs, |v| apply_unary(other, v)),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn unary_avx2<T: Real>(f: Unary, out: &mut [T], xs: &[T]) {
    #[allow(unsafe_code)]
    // SAFETY: this function is compiled for (and only called on) CPUs with AVX2 and FMA,
    // the features `tanh_avx2` needs.
    if f == Unary::Tanh && unsafe { T::tanh_avx2(out, xs) } {
        return;
    }
    unary_body::<T, true>(f, out, xs)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
fn unary_avx512<T: Real>(f: Unary, out: &mut [T], xs: &[T]) {
    #[allow(unsafe_code)]
    // SAFETY: this function is compiled for (and only called on) CPUs with the features
    // `tanh_avx512` needs.
    if f == Unary::Tanh && unsafe { T::tanh_avx512(out, xs) } {
        return;
    }
    unary_body::<T, true>(f, out, xs)
}

/// `out = f(xs)`, compiled for AVX-512 or AVX2 and FMA where the CPU has them (8 lanes
/// and 32 registers make `tanh` about 1.8x faster than 4 lanes and 16: the polynomial
/// constants stay in registers).
fn unary<T: Real>(f: Unary, out: &mut [T], xs: &[T]) {
    #[cfg(target_arch = "x86_64")]
    if crate::gemm::has_avx512() {
        #[allow(unsafe_code)]
        // SAFETY: the CPU supports AVX-512 F/VL/DQ, AVX2 and FMA (checked just above).
        unsafe {
            unary_avx512(f, out, xs)
        };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if crate::gemm::has_avx2_fma() {
        #[allow(unsafe_code)]
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        unsafe {
            unary_avx2(f, out, xs)
        };
        return;
    }
    unary_body::<T, false>(f, out, xs)
}

/// One side of a binary operation over a piece of a column: a run of values, or one
/// value broadcast along it.
#[derive(Clone, Copy)]
enum Side<'a, T> {
    Run(&'a [T]),
    One(T),
}

impl<'a, T: Real> Side<'a, T> {
    /// Rows `rows` of column `j` of the column-major `x` of shape `s`, broadcast to a
    /// larger shape where `s` has one row or one column.
    #[inline(always)]
    fn of(x: &'a [T], s: (usize, usize), j: usize, rows: std::ops::Range<usize>) -> Self {
        let col = if s.1 == 1 { 0 } else { j * s.0 };
        if s.0 == 1 {
            Side::One(x[col])
        } else {
            Side::Run(&x[col + rows.start..col + rows.end])
        }
    }
}

/// `out = f(a, b)` over one piece, one straight loop per broadcast case.
#[inline(always)]
fn zip_map<T: Real>(out: &mut [T], a: Side<'_, T>, b: Side<'_, T>, f: impl Fn(T, T) -> T) {
    match (a, b) {
        (Side::Run(a), Side::Run(b)) => {
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = f(x, y);
            }
        }
        (Side::Run(a), Side::One(y)) => {
            for (o, &x) in out.iter_mut().zip(a) {
                *o = f(x, y);
            }
        }
        (Side::One(x), Side::Run(b)) => {
            for (o, &y) in out.iter_mut().zip(b) {
                *o = f(x, y);
            }
        }
        (Side::One(x), Side::One(y)) => out.fill(f(x, y)),
    }
}

/// [`zip_map`] with the closure of the binary operation `f`.
#[inline(always)]
fn binary_piece<T: Real>(f: Binary, out: &mut [T], a: Side<'_, T>, b: Side<'_, T>) {
    match f {
        Binary::Add => zip_map(out, a, b, |x, y| x + y),
        Binary::Sub => zip_map(out, a, b, |x, y| x - y),
        Binary::Mul => zip_map(out, a, b, |x, y| x * y),
        Binary::Div => zip_map(out, a, b, |x, y| x / y),
        Binary::TanhGrad => zip_map(out, a, b, |x, y| x - x * y * y),
    }
}

/// `out = f(a, b)` with broadcasting: one pass over the whole matrix where neither
/// operand broadcasts, else column by column, so each inner loop is a straight map over
/// a column or a column against one value.
#[inline(always)]
fn binary<T: Real>(
    f: Binary,
    out: &mut [T],
    (r, c): (usize, usize),
    (a, sa): (&[T], (usize, usize)),
    (b, sb): (&[T], (usize, usize)),
) {
    if sa == (r, c) && sb == (r, c) {
        return binary_piece(f, out, Side::Run(a), Side::Run(b));
    }
    for (j, o) in out.chunks_exact_mut(r.max(1)).enumerate().take(c) {
        binary_piece(f, o, Side::of(a, sa, j, 0..r), Side::of(b, sb, j, 0..r));
    }
}

/// `out = u(f(a, b))` for a fused binary node ([`Loc::Fused`]): the binary operation
/// writes pieces of at most [`FUSED_PIECE`] rows into `buf` and the unary one reads them
/// back from L1, so the binary node's value never goes through memory.
#[inline(always)]
fn binary_unary<T: Real>(
    u: Unary,
    f: Binary,
    out: &mut [T],
    (r, c): (usize, usize),
    (a, sa): (&[T], (usize, usize)),
    (b, sb): (&[T], (usize, usize)),
    buf: &mut [T],
) {
    if sa == (r, c) && sb == (r, c) {
        // Neither broadcasts: pieces of the flat matrix.
        for (start, o) in (0..).step_by(FUSED_PIECE).zip(out.chunks_mut(FUSED_PIECE)) {
            let rows = start..start + o.len();
            let piece = &mut buf[..o.len()];
            binary_piece(f, piece, Side::Run(&a[rows.clone()]), Side::Run(&b[rows]));
            unary(u, o, piece);
        }
        return;
    }
    for (j, col) in out.chunks_exact_mut(r.max(1)).enumerate().take(c) {
        for (start, o) in (0..).step_by(FUSED_PIECE).zip(col.chunks_mut(FUSED_PIECE)) {
            let rows = start..start + o.len();
            let piece = &mut buf[..o.len()];
            binary_piece(f, piece, Side::of(a, sa, j, rows.clone()), Side::of(b, sb, j, rows));
            unary(u, o, piece);
        }
    }
}

/// An operand of a binary step: a stored matrix and its shape, or `None` for the fused
/// operand's piece.
type Operand<'a, T> = Option<(&'a [T], (usize, usize))>;

/// Rows `rows` of column `j` of an operand (of the flat matrix where `flat`), or the fused
/// operand's `piece`.
#[inline(always)]
fn operand_side<'a, T: Real>(
    v: Operand<'a, T>,
    piece: &'a [T],
    flat: bool,
    j: usize,
    rows: std::ops::Range<usize>,
) -> Side<'a, T> {
    match v {
        Some((d, _)) if flat => Side::Run(&d[rows]),
        Some((d, s)) => Side::of(d, s, j, rows),
        None => Side::Run(&piece[..rows.len()]),
    }
}

/// `out = f(x, y)` where `x` or `y` (or both, the same node) is a fused binary node
/// `f1(p, q)` of `out`'s shape ([`Loc::Fused`]): its pieces of at most [`FUSED_PIECE`]
/// rows go through `buf` (L1), as in [`binary_unary`].
#[inline(always)]
#[allow(clippy::type_complexity)]
fn binary_binary<T: Real>(
    f: Binary,
    out: &mut [T],
    (r, c): (usize, usize),
    (f1, (p, sp), (q, sq)): (Binary, (&[T], (usize, usize)), (&[T], (usize, usize))),
    (x, y): (Operand<'_, T>, Operand<'_, T>),
    buf: &mut [T],
) {
    let flat =
        [Some((p, sp)), Some((q, sq)), x, y].iter().all(|v| v.is_none_or(|(_, s)| s == (r, c)));
    let (cols, height) = if flat { (1, r * c) } else { (c, r) };
    for (j, col) in out.chunks_exact_mut(height.max(1)).enumerate().take(cols) {
        for (start, o) in (0..).step_by(FUSED_PIECE).zip(col.chunks_mut(FUSED_PIECE)) {
            let rows = start..start + o.len();
            let piece = &mut buf[..o.len()];
            let pp = operand_side(Some((p, sp)), &[], flat, j, rows.clone());
            let qq = operand_side(Some((q, sq)), &[], flat, j, rows.clone());
            binary_piece(f1, piece, pp, qq);
            let piece = &*piece;
            let xs = operand_side(x, piece, flat, j, rows.clone());
            let ys = operand_side(y, piece, flat, j, rows);
            binary_piece(f, o, xs, ys);
        }
    }
}

/// Visits every (output position, patch entry, input position) of a convolution
/// geometry: `f(q, col, src)` with `src = None` for padding.
#[inline(always)]
fn for_each_patch(
    geom: &crate::graph::ConvGeometry,
    mut f: impl FnMut(usize, usize, Option<usize>),
) {
    let (ow, pos) = (geom.out_w(), geom.positions());
    let (kk, hw) = (geom.kernel_h * geom.kernel_w, geom.height * geom.width);
    for ch in 0..geom.channels {
        for ki in 0..geom.kernel_h {
            for kj in 0..geom.kernel_w {
                let col = ch * kk + ki * geom.kernel_w + kj;
                for q in 0..pos {
                    let ih = (q / ow * geom.stride + ki) as isize - geom.padding as isize;
                    let iw = (q % ow * geom.stride + kj) as isize - geom.padding as isize;
                    let inside = ih >= 0
                        && iw >= 0
                        && (ih as usize) < geom.height
                        && (iw as usize) < geom.width;
                    f(q, col, inside.then(|| ch * hw + ih as usize * geom.width + iw as usize));
                }
            }
        }
    }
}

/// Patches `(P·B) × (C·kh·kw)` of images `B × (C·H·W)` (column-major both; row `q·B + b`
/// is position `q` of image `b`, so each patch entry is a contiguous run of `B` values
/// copied from one contiguous input column).
fn im2col<T: Real>(x: &[T], rows: usize, geom: &crate::graph::ConvGeometry, out: &mut [T]) {
    let batch = rows / geom.positions().max(1);
    for_each_patch(geom, |q, col, src| {
        let dst = &mut out[col * rows + q * batch..col * rows + (q + 1) * batch];
        match src {
            Some(s) => dst.copy_from_slice(&x[s * batch..(s + 1) * batch]),
            None => dst.fill(T::zero()),
        }
    });
}

/// The adjoint of [`im2col`]: patches `(P·B) × (C·kh·kw)` summed into images `B × (C·H·W)`.
fn col2im<T: Real>(p: &[T], geom: &crate::graph::ConvGeometry, out: &mut [T]) {
    let rows = p.len() / geom.patch_len().max(1);
    let batch = rows / geom.positions().max(1);
    out.fill(T::zero());
    for_each_patch(geom, |q, col, src| {
        if let Some(s) = src {
            let run = &p[col * rows + q * batch..col * rows + (q + 1) * batch];
            for (o, &v) in out[s * batch..(s + 1) * batch].iter_mut().zip(run) {
                *o = *o + v;
            }
        }
    });
}

/// Index of element `(i, j)` of an operand of shape `(r, c)` broadcast to a larger shape.
#[inline(always)]
fn bidx(shape: (usize, usize), i: usize, j: usize) -> usize {
    let ii = if shape.0 == 1 { 0 } else { i };
    let jj = if shape.1 == 1 { 0 } else { j };
    ii + jj * shape.0
}

/// `Σ xs` with eight independent partial sums (a fixed order, so the same on every run
/// and thread count), which the compiler keeps in vector registers: a serial sum is one
/// dependent add per element, 4 cycles each.
#[inline(always)]
fn sum8<T: Real>(xs: &[T]) -> T {
    let mut acc = [T::zero(); 8];
    let chunks = xs.chunks_exact(8);
    let tail: T = chunks.remainder().iter().copied().sum();
    for ch in chunks {
        for (a, &v) in acc.iter_mut().zip(ch) {
            *a = *a + v;
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
fn eval_node_avx512<T: Real>(
    g: &Graph,
    done: &Values<'_, T>,
    i: usize,
    scratch: &mut [T],
    o: &mut [T],
) {
    eval_node_body(g, done, i, scratch, o)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn eval_node_avx2<T: Real>(
    g: &Graph,
    done: &Values<'_, T>,
    i: usize,
    scratch: &mut [T],
    o: &mut [T],
) {
    eval_node_body(g, done, i, scratch, o)
}

/// Evaluates node `i` into `o`, with the element-wise loops compiled for the widest
/// vector unit the CPU has (the products pick their own kernels).
fn eval_node<T: Real>(g: &Graph, done: &Values<'_, T>, i: usize, scratch: &mut [T], o: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    {
        #[allow(unsafe_code)]
        if crate::gemm::has_avx512() {
            // SAFETY: the CPU supports the features the function is compiled for.
            unsafe { eval_node_avx512(g, done, i, scratch, o) };
            return;
        } else if crate::gemm::has_avx2_fma() {
            // SAFETY: as above.
            unsafe { eval_node_avx2(g, done, i, scratch, o) };
            return;
        }
    }
    eval_node_body(g, done, i, scratch, o)
}

#[inline(always)]
fn eval_node_body<T: Real>(
    g: &Graph,
    done: &Values<'_, T>,
    i: usize,
    scratch: &mut [T],
    o: &mut [T],
) {
    let (r, c) = g.nodes[i].shape;
    let shape = |v: Var| g.nodes[v.0].shape;
    match &g.nodes[i].op {
        Op::Input(_) | Op::Param(_) | Op::Constant(_) => {}
        Op::Unary(u, x) => match (done.loc[x.0], &g.nodes[x.0].op) {
            (Loc::Fused, Op::Binary(f, a, b)) => {
                let (a, b) = ((data(g, done, *a), shape(*a)), (data(g, done, *b), shape(*b)));
                binary_unary(*u, *f, o, (r, c), a, b, scratch);
            }
            _ => unary(*u, o, data(g, done, *x)),
        },
        Op::Binary(f, a, b) => {
            let fused = |v: Var| match (done.loc[v.0], &g.nodes[v.0].op) {
                (Loc::Fused, Op::Binary(f1, p, q)) => Some((*f1, *p, *q)),
                _ => None,
            };
            // (At most one distinct operand is fused; `x ∘ x` reads its piece twice.)
            match fused(*a).map(|x| (x, *a)).or_else(|| fused(*b).map(|x| (x, *b))) {
                Some(((f1, p, q), x)) => {
                    let inner = (f1, (data(g, done, p), shape(p)), (data(g, done, q), shape(q)));
                    let side = |v: Var| (v != x).then(|| (data(g, done, v), shape(v)));
                    binary_binary(*f, o, (r, c), inner, (side(*a), side(*b)), scratch);
                }
                None => {
                    let (a, b) = ((data(g, done, *a), shape(*a)), (data(g, done, *b), shape(*b)));
                    binary(*f, o, (r, c), a, b);
                }
            }
        }
        Op::MatMul { a, b, ta, tb } => {
            let (da, db) = (data(g, done, *a), data(g, done, *b));
            matmul(da, shape(*a), *ta, db, shape(*b), *tb, scratch, o);
        }
        Op::Sum(x, axis) => {
            let xs = data(g, done, *x);
            let (xr, xc) = shape(*x);
            match axis {
                Axis::All => o[0] = sum8(xs),
                Axis::Cols => {
                    for (j, o) in o.iter_mut().enumerate() {
                        *o = sum8(&xs[j * xr..(j + 1) * xr]);
                    }
                }
                Axis::Rows => {
                    o.fill(T::zero());
                    for j in 0..xc {
                        for (o, &v) in o.iter_mut().zip(&xs[j * xr..(j + 1) * xr]) {
                            *o = *o + v;
                        }
                    }
                }
            }
        }
        Op::Broadcast(x) => {
            let (xs, sx) = (data(g, done, *x), shape(*x));
            for j in 0..c {
                for ii in 0..r {
                    o[ii + j * r] = xs[bidx(sx, ii, j)];
                }
            }
        }
        Op::ConcatCols(parts) => {
            let mut at = 0;
            for &p in parts {
                let d = data(g, done, p);
                o[at..at + d.len()].copy_from_slice(d);
                at += d.len();
            }
        }
        Op::SliceCols(x, start) => {
            let xs = data(g, done, *x);
            o.copy_from_slice(&xs[start * r..(start + c) * r]);
        }
        Op::PadCols(x, start) => {
            let xs = data(g, done, *x);
            o.fill(T::zero());
            o[start * r..start * r + xs.len()].copy_from_slice(xs);
        }
        Op::Transpose(x) => {
            let xs = data(g, done, *x);
            let (xr, xc) = shape(*x);
            for j in 0..xc {
                for ii in 0..xr {
                    o[j + ii * xc] = xs[ii + j * xr];
                }
            }
        }
        Op::Im2Col(x, geom) => im2col(data(g, done, *x), r, geom, o),
        Op::Col2Im(x, geom) => col2im(data(g, done, *x), geom, o),
        // `(P·B) × C` with row `q·B + b` and `B × (C·P)` channel-major share one memory
        // layout: both re-layouts are copies.
        Op::PositionsToRows(x, _) | Op::RowsToPositions(x, _) => {
            o.copy_from_slice(data(g, done, *x));
        }
        Op::RowsToBlocks(x, k) => {
            // in[b, gi·L + l] → out[b·G + gi, l]
            let (xs, (xr, _)) = (data(g, done, *x), shape(*x));
            for l in 0..c {
                for gi in 0..*k {
                    let src = &xs[(gi * c + l) * xr..(gi * c + l + 1) * xr];
                    for (b, &v) in src.iter().enumerate() {
                        o[b * k + gi + l * r] = v;
                    }
                }
            }
        }
        Op::BlocksToRows(x, k) => {
            let (xs, (xr, xc)) = (data(g, done, *x), shape(*x));
            for l in 0..xc {
                for gi in 0..*k {
                    let dst = &mut o[(gi * xc + l) * r..(gi * xc + l + 1) * r];
                    for (b, d) in dst.iter_mut().enumerate() {
                        *d = xs[b * k + gi + l * xr];
                    }
                }
            }
        }
        Op::RepeatCols(_, _) | Op::SumGroups(_, _) if r == 0 => {}
        Op::RepeatCols(x, t) => {
            let xs = data(g, done, *x);
            for (cc, col) in xs.chunks_exact(r).enumerate() {
                for rep in 0..*t {
                    o[(cc * t + rep) * r..(cc * t + rep + 1) * r].copy_from_slice(col);
                }
            }
        }
        Op::SumGroups(x, t) => {
            let xs = data(g, done, *x);
            o.fill(T::zero());
            for (src, col) in xs.chunks_exact(r).enumerate() {
                let dst = &mut o[(src / t) * r..(src / t + 1) * r];
                for (d, &v) in dst.iter_mut().zip(col) {
                    *d = *d + v;
                }
            }
        }
        Op::LogSumExpRows(x) => {
            let xs = data(g, done, *x);
            let (xr, xc) = shape(*x);
            for ii in 0..xr {
                let m = (0..xc).map(|j| xs[ii + j * xr]).fold(T::neg_infinity(), T::max);
                if !m.is_finite() {
                    o[ii] = m;
                    continue;
                }
                let s: T = (0..xc).map(|j| (xs[ii + j * xr] - m).exp()).sum();
                o[ii] = m + s.ln();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Large work buffers start 192 bytes apart modulo 4 KiB (21 distinct starts), in
    /// both precisions; small ones are not padded.
    #[test]
    fn large_work_buffers_start_at_distinct_offsets_within_a_page() {
        fn starts<T>(cap: usize) -> Vec<usize> {
            (0..21).map(|s| work_offset::<T>(s, cap) * std::mem::size_of::<T>()).collect()
        }
        for bytes in [starts::<f64>(512 * 64), starts::<f32>(1024 * 64)] {
            let mut distinct = bytes.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), 21);
            assert!(bytes.iter().all(|&b| b < 4096 && b % 64 == 0));
        }
        assert!(starts::<f64>(32 * 8).iter().all(|&b| b == 0));
    }
}
