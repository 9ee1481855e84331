//! The computation graph: a closed set of operations on dense matrices, built once.
//!
//! A [`Graph`] is a list of nodes in topological order (every operand precedes its user).
//! Building checks shapes; evaluating is the [`crate::Executor`]'s job; gradients are built
//! by [`Graph::vjp`] as more nodes of the same graph, so they can be differentiated again.

use nalgebra::DMatrix;

use crate::Error;

/// A dense `f64` matrix; rows are batch samples.
pub type Mat = DMatrix<f64>;

/// A dense `f32` matrix, the values of an `Executor<f32>`.
pub type Mat32 = DMatrix<f32>;

/// A node of a [`Graph`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Var(pub(crate) usize);

impl Var {
    /// The node at `index` (for inspection; using it with another graph is an error).
    pub fn from_index(index: usize) -> Var {
        Var(index)
    }

    /// Position of the node in its graph.
    pub fn index(self) -> usize {
        self.0
    }
}

/// Element-wise operations of one operand.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unary {
    /// `tanh x`.
    Tanh,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `ln(1 + e^x)`.
    Softplus,
    /// `max(x, 0)`.
    Relu,
    /// `x` for `x > 0`, else `α(e^x - 1)`.
    Elu(f64),
    /// `x σ(x)`.
    Swish,
    /// `e^x`.
    Exp,
    /// `ln x`.
    Log,
    /// `√x`.
    Sqrt,
    /// `x²`.
    Square,
    /// `|x|`.
    Abs,
    /// `1` where `x > 0`, else `0` (zero derivative).
    Step,
    /// The sign of `x` (zero derivative).
    Sign,
    /// `-x`.
    Neg,
    /// `c x`.
    Scale(f64),
    /// `x + c`.
    AddScalar(f64),
    /// `x^n`.
    PowI(i32),
}

/// Element-wise operations of two operands, with broadcasting: each operand is either
/// the output's shape, a row `1×c`, a column `r×1` or a scalar `1×1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a ⊙ b`.
    Mul,
    /// `a / b`.
    Div,
    /// `a ⊙ (1 - b²)`: the cotangent `a` through `tanh` given its output `b`, one pass
    /// where square, negate, add and multiply would be four.
    TanhGrad,
}

/// What a reduction reduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// Everything, to `1×1`.
    All,
    /// Each row, to a column `r×1`.
    Rows,
    /// Each column, to a row `1×c`.
    Cols,
}

/// Geometry of a 2-D convolution or pooling window over images stored as rows of
/// `channels × height × width` (channel-major, then rows, then columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConvGeometry {
    /// Input channels.
    pub channels: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Window height.
    pub kernel_h: usize,
    /// Window width.
    pub kernel_w: usize,
    /// Stride (both directions).
    pub stride: usize,
    /// Zero padding (both sides, both directions).
    pub padding: usize,
}

impl ConvGeometry {
    /// Output height (saturating: an invalid geometry is refused by the builders).
    pub fn out_h(&self) -> usize {
        self.height.saturating_add(self.padding.saturating_mul(2)).saturating_sub(self.kernel_h)
            / self.stride.max(1)
            + 1
    }

    /// Output width (saturating).
    pub fn out_w(&self) -> usize {
        self.width.saturating_add(self.padding.saturating_mul(2)).saturating_sub(self.kernel_w)
            / self.stride.max(1)
            + 1
    }

    /// Output positions per image (saturating).
    pub fn positions(&self) -> usize {
        self.out_h().saturating_mul(self.out_w())
    }

    /// Entries of one patch: `channels · kernel_h · kernel_w` (saturating).
    pub fn patch_len(&self) -> usize {
        self.channels.saturating_mul(self.kernel_h).saturating_mul(self.kernel_w)
    }

    /// Entries of one input image (saturating).
    pub fn image_len(&self) -> usize {
        self.channels.saturating_mul(self.height).saturating_mul(self.width)
    }

    /// Positive window and stride, a window that fits the padded image, and sizes that do
    /// not overflow.
    pub(crate) fn valid(&self) -> bool {
        let padded = |side: usize| self.padding.checked_mul(2).and_then(|p| p.checked_add(side));
        let fits = |side: usize, k: usize| padded(side).is_some_and(|p| p >= k);
        let sized = self
            .channels
            .checked_mul(self.kernel_h)
            .and_then(|x| x.checked_mul(self.kernel_w))
            .is_some()
            && self
                .channels
                .checked_mul(self.height)
                .and_then(|x| x.checked_mul(self.width))
                .is_some()
            && self.out_h().checked_mul(self.out_w()).is_some();
        self.stride > 0
            && self.kernel_h > 0
            && self.kernel_w > 0
            && self.channels > 0
            && fits(self.height, self.kernel_h)
            && fits(self.width, self.kernel_w)
            && sized
    }
}

/// The operations. One exhaustive `match` in `backward.rs` gives each its VJP.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// The `i`-th input, set on every run.
    Input(usize),
    /// The `i`-th parameter block, a view into the graph's flat parameter vector.
    Param(usize),
    /// The `i`-th constant.
    Constant(usize),
    /// An element-wise function.
    Unary(Unary, Var),
    /// An element-wise function of two broadcast operands.
    Binary(Binary, Var, Var),
    /// `op(a) · op(b)`, `op` transposing where the flag is set.
    MatMul {
        /// Left operand.
        a: Var,
        /// Right operand.
        b: Var,
        /// Transpose `a`.
        ta: bool,
        /// Transpose `b`.
        tb: bool,
    },
    /// A sum over an axis.
    Sum(Var, Axis),
    /// Repeats a row, column or scalar to the node's shape.
    Broadcast(Var),
    /// Columns side by side.
    ConcatCols(Vec<Var>),
    /// Columns `start..start + width` (width = the node's columns).
    SliceCols(Var, usize),
    /// The operand placed at column `start` of a zero matrix of the node's shape.
    PadCols(Var, usize),
    /// The transpose.
    Transpose(Var),
    /// `ln Σ_j e^{x_ij}` for each row, to `r×1`.
    LogSumExpRows(Var),
    /// Image rows `B × (C·H·W)` to patches `(P·B) × (C·kh·kw)`, one row per output
    /// position (row `q·B + b` is position `q` of image `b`: position-major), zero outside
    /// the padded image.
    Im2Col(Var, ConvGeometry),
    /// The adjoint of `Im2Col`: patches summed back into image rows.
    Col2Im(Var, ConvGeometry),
    /// `(P·B) × C` (row `q·B + b` for position `q` of image `b`, as [`Op::Im2Col`]) to
    /// rows `B × (C·P)`, channel-major. Both layouts are the same memory, so this is a
    /// copy.
    PositionsToRows(Var, usize),
    /// The inverse of `PositionsToRows` with the same `P`.
    RowsToPositions(Var, usize),
    /// `B × (G·L)` to `(B·G) × L`: each row's `G` consecutive blocks become rows.
    RowsToBlocks(Var, usize),
    /// The inverse of `RowsToBlocks` with the same `G`.
    BlocksToRows(Var, usize),
    /// Repeats each column `t` times in place: `r × C` to `r × (C·t)`.
    RepeatCols(Var, usize),
    /// Sums consecutive groups of `t` columns: `r × (C·t)` to `r × C`.
    SumGroups(Var, usize),
}

/// A node: its operation and output shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The operation.
    pub op: Op,
    /// Output shape `(rows, columns)`.
    pub shape: (usize, usize),
}

/// Where a parameter block lives in the flat parameter vector (column-major).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamBlock {
    /// Name, e.g. `"layer0.weight"`.
    pub name: String,
    /// Offset into the flat vector.
    pub offset: usize,
    /// Shape `(rows, columns)`.
    pub shape: (usize, usize),
}

/// A computation graph with its parameters stored as one flat vector.
///
/// Every graph (and every clone) has its own identity, so an [`crate::Executor`] refuses
/// to replay a graph it was not planned for.
#[derive(Debug)]
pub struct Graph {
    pub(crate) id: u64,
    pub(crate) nodes: Vec<Node>,
    pub(crate) inputs: Vec<Var>,
    pub(crate) params: Vec<f64>,
    pub(crate) blocks: Vec<ParamBlock>,
    pub(crate) param_vars: Vec<Var>,
    pub(crate) constants: Vec<Mat>,
}

fn broadcast_shape(
    op: &'static str,
    a: (usize, usize),
    b: (usize, usize),
) -> Result<(usize, usize), Error> {
    let dim = |x: usize, y: usize| {
        if x == y || y == 1 {
            Some(x)
        } else if x == 1 {
            Some(y)
        } else {
            None
        }
    };
    match (dim(a.0, b.0), dim(a.1, b.1)) {
        (Some(r), Some(c)) => Ok((r, c)),
        _ => Err(Error::ShapeMismatch { op, expected: a, got: b }),
    }
}

fn next_graph_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Default for Graph {
    fn default() -> Self {
        Graph {
            id: next_graph_id(),
            nodes: Vec::new(),
            inputs: Vec::new(),
            params: Vec::new(),
            blocks: Vec::new(),
            param_vars: Vec::new(),
            constants: Vec::new(),
        }
    }
}

/// A clone is a new graph: it may grow apart from the original, so executors planned for
/// one do not run the other.
impl Clone for Graph {
    fn clone(&self) -> Self {
        Graph {
            id: next_graph_id(),
            nodes: self.nodes.clone(),
            inputs: self.inputs.clone(),
            params: self.params.clone(),
            blocks: self.blocks.clone(),
            param_vars: self.param_vars.clone(),
            constants: self.constants.clone(),
        }
    }
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node behind `v`.
    pub fn node(&self, v: Var) -> Result<&Node, Error> {
        self.nodes.get(v.0).ok_or(Error::UnknownVar { index: v.0 })
    }

    /// Shape of `v`.
    pub fn shape(&self, v: Var) -> Result<(usize, usize), Error> {
        Ok(self.node(v)?.shape)
    }

    /// The inputs in declaration order.
    pub fn inputs(&self) -> &[Var] {
        &self.inputs
    }

    /// All parameters as one flat vector (blocks in declaration order, each column-major).
    pub fn params(&self) -> &[f64] {
        &self.params
    }

    /// The flat parameter vector, writable (an optimizer step, the adjoint's state).
    pub fn params_mut(&mut self) -> &mut [f64] {
        &mut self.params
    }

    /// The parameter blocks: named views into the flat vector.
    pub fn param_blocks(&self) -> &[ParamBlock] {
        &self.blocks
    }

    /// The parameter nodes, in block order.
    pub fn param_vars(&self) -> &[Var] {
        &self.param_vars
    }

    pub(crate) fn push(&mut self, op: Op, shape: (usize, usize)) -> Var {
        self.nodes.push(Node { op, shape });
        Var(self.nodes.len() - 1)
    }

    /// Declares an input of shape `rows × cols`, set on every run.
    pub fn input(&mut self, rows: usize, cols: usize) -> Var {
        let v = self.push(Op::Input(self.inputs.len()), (rows, cols));
        self.inputs.push(v);
        v
    }

    /// Declares a parameter block with initial values.
    pub fn param(&mut self, name: &str, init: &Mat) -> Var {
        let block =
            ParamBlock { name: name.to_string(), offset: self.params.len(), shape: init.shape() };
        self.params.extend_from_slice(init.as_slice());
        let v = self.push(Op::Param(self.blocks.len()), init.shape());
        self.blocks.push(block);
        self.param_vars.push(v);
        v
    }

    /// A constant.
    pub fn constant(&mut self, value: Mat) -> Var {
        let shape = value.shape();
        self.constants.push(value);
        self.push(Op::Constant(self.constants.len() - 1), shape)
    }

    /// A constant filled with `x`.
    pub fn fill(&mut self, rows: usize, cols: usize, x: f64) -> Var {
        self.constant(Mat::from_element(rows, cols, x))
    }

    /// An element-wise function.
    pub fn unary(&mut self, f: Unary, x: Var) -> Result<Var, Error> {
        let shape = self.shape(x)?;
        let constant = match f {
            Unary::Elu(c) | Unary::Scale(c) | Unary::AddScalar(c) => Some(c),
            _ => None,
        };
        if let Some(c) = constant.filter(|c| !c.is_finite()) {
            return Err(Error::InvalidArgument {
                op: "unary",
                detail: format!("{f:?}: the constant {c} must be finite"),
            });
        }
        Ok(self.push(Op::Unary(f, x), shape))
    }

    /// An element-wise function of two broadcast operands.
    pub fn binary(&mut self, f: Binary, a: Var, b: Var) -> Result<Var, Error> {
        let name = match f {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
            Binary::TanhGrad => "tanh_grad",
        };
        let shape = broadcast_shape(name, self.shape(a)?, self.shape(b)?)?;
        Ok(self.push(Op::Binary(f, a, b), shape))
    }

    /// `op(a) · op(b)`, transposing `a` if `ta` and `b` if `tb` (no copy is made).
    pub fn matmul_t(&mut self, a: Var, b: Var, ta: bool, tb: bool) -> Result<Var, Error> {
        let (sa, sb) = (self.shape(a)?, self.shape(b)?);
        let (ra, ca) = if ta { (sa.1, sa.0) } else { sa };
        let (rb, cb) = if tb { (sb.1, sb.0) } else { sb };
        if ca != rb {
            return Err(Error::ShapeMismatch { op: "matmul", expected: (ca, cb), got: (rb, cb) });
        }
        Ok(self.push(Op::MatMul { a, b, ta, tb }, (ra, cb)))
    }

    /// `a · b`.
    pub fn matmul(&mut self, a: Var, b: Var) -> Result<Var, Error> {
        self.matmul_t(a, b, false, false)
    }

    /// A sum over `axis`.
    pub fn sum(&mut self, x: Var, axis: Axis) -> Result<Var, Error> {
        let (r, c) = self.shape(x)?;
        let shape = match axis {
            Axis::All => (1, 1),
            Axis::Rows => (r, 1),
            Axis::Cols => (1, c),
        };
        Ok(self.push(Op::Sum(x, axis), shape))
    }

    /// A mean over `axis`.
    pub fn mean(&mut self, x: Var, axis: Axis) -> Result<Var, Error> {
        let (r, c) = self.shape(x)?;
        let n = match axis {
            Axis::All => r * c,
            Axis::Rows => c,
            Axis::Cols => r,
        };
        let s = self.sum(x, axis)?;
        self.unary(Unary::Scale(1.0 / n.max(1) as f64), s)
    }

    /// Repeats a row, column or scalar to `shape`.
    pub fn broadcast_to(&mut self, x: Var, shape: (usize, usize)) -> Result<Var, Error> {
        let s = self.shape(x)?;
        if broadcast_shape("broadcast", shape, s)? != shape {
            return Err(Error::ShapeMismatch { op: "broadcast", expected: shape, got: s });
        }
        if s == shape {
            return Ok(x);
        }
        Ok(self.push(Op::Broadcast(x), shape))
    }

    /// Reduces `g` by summation to `shape` (the adjoint of broadcasting to `g`'s shape).
    pub fn sum_to(&mut self, g: Var, shape: (usize, usize)) -> Result<Var, Error> {
        let s = self.shape(g)?;
        if (shape.0 != s.0 && shape.0 != 1) || (shape.1 != s.1 && shape.1 != 1) {
            return Err(Error::ShapeMismatch { op: "sum_to", expected: shape, got: s });
        }
        let rows = if shape.0 == 1 && s.0 != 1 { Some(()) } else { None };
        let cols = if shape.1 == 1 && s.1 != 1 { Some(()) } else { None };
        match (rows, cols) {
            (None, None) => Ok(g),
            (Some(()), Some(())) => self.sum(g, Axis::All),
            (Some(()), None) => self.sum(g, Axis::Cols),
            (None, Some(())) => self.sum(g, Axis::Rows),
        }
    }

    /// Columns side by side (all operands must have the same rows).
    pub fn concat_cols(&mut self, parts: &[Var]) -> Result<Var, Error> {
        let first = parts
            .first()
            .ok_or(Error::InvalidArgument { op: "concat_cols", detail: "no operands".into() })?;
        let rows = self.shape(*first)?.0;
        let mut cols = 0;
        for &p in parts {
            let s = self.shape(p)?;
            if s.0 != rows {
                return Err(Error::ShapeMismatch {
                    op: "concat_cols",
                    expected: (rows, s.1),
                    got: s,
                });
            }
            cols = usize::checked_add(cols, s.1).ok_or(Error::InvalidArgument {
                op: "concat_cols",
                detail: "the column count overflows".into(),
            })?;
        }
        Ok(self.push(Op::ConcatCols(parts.to_vec()), (rows, cols)))
    }

    /// Columns `start..start + width`.
    pub fn slice_cols(&mut self, x: Var, start: usize, width: usize) -> Result<Var, Error> {
        let (r, c) = self.shape(x)?;
        if width == 0 || start.checked_add(width).is_none_or(|end| end > c) {
            return Err(Error::InvalidArgument {
                op: "slice_cols",
                detail: format!("{width} columns from {start} of a matrix with {c}"),
            });
        }
        Ok(self.push(Op::SliceCols(x, start), (r, width)))
    }

    /// `x` placed at column `start` of a zero matrix with `cols` columns.
    pub fn pad_cols(&mut self, x: Var, start: usize, cols: usize) -> Result<Var, Error> {
        let (r, c) = self.shape(x)?;
        if start.checked_add(c).is_none_or(|end| end > cols) {
            return Err(Error::InvalidArgument {
                op: "pad_cols",
                detail: format!("{c} columns at {start} exceed {cols}"),
            });
        }
        Ok(self.push(Op::PadCols(x, start), (r, cols)))
    }

    /// The transpose.
    pub fn transpose(&mut self, x: Var) -> Result<Var, Error> {
        let (r, c) = self.shape(x)?;
        Ok(self.push(Op::Transpose(x), (c, r)))
    }

    /// `ln Σ_j e^{x_ij}` for each row (stable).
    pub fn logsumexp_rows(&mut self, x: Var) -> Result<Var, Error> {
        let (r, _) = self.shape(x)?;
        Ok(self.push(Op::LogSumExpRows(x), (r, 1)))
    }
}

fn divides(op: &'static str, n: usize, d: usize) -> Result<usize, Error> {
    if d == 0 || !n.is_multiple_of(d) {
        return Err(Error::InvalidArgument { op, detail: format!("{n} is not a multiple of {d}") });
    }
    Ok(n / d)
}

impl Graph {
    /// Patches of image rows for a convolution (see [`Op::Im2Col`]).
    pub fn im2col(&mut self, x: Var, geom: ConvGeometry) -> Result<Var, Error> {
        let (b, n) = self.shape(x)?;
        if !geom.valid() {
            return Err(Error::InvalidArgument {
                op: "im2col",
                detail: format!("invalid geometry {geom:?}"),
            });
        }
        if n != geom.image_len() {
            return Err(Error::ShapeMismatch {
                op: "im2col",
                expected: (b, geom.image_len()),
                got: (b, n),
            });
        }
        let rows = b.checked_mul(geom.positions()).ok_or(Error::InvalidArgument {
            op: "im2col",
            detail: "the patch count overflows".into(),
        })?;
        Ok(self.push(Op::Im2Col(x, geom), (rows, geom.patch_len())))
    }

    /// Patches summed back into image rows (the adjoint of [`Graph::im2col`]).
    pub fn col2im(&mut self, p: Var, geom: ConvGeometry) -> Result<Var, Error> {
        let (r, n) = self.shape(p)?;
        if !geom.valid() || n != geom.patch_len() {
            return Err(Error::ShapeMismatch {
                op: "col2im",
                expected: (r, geom.patch_len()),
                got: (r, n),
            });
        }
        let b = divides("col2im", r, geom.positions())?;
        Ok(self.push(Op::Col2Im(p, geom), (b, geom.image_len())))
    }

    /// `(P·B) × C` (position-major rows) to `B × (C·P)`.
    pub fn positions_to_rows(&mut self, x: Var, positions: usize) -> Result<Var, Error> {
        let (r, c) = self.shape(x)?;
        let b = divides("positions_to_rows", r, positions)?;
        Ok(self.push(Op::PositionsToRows(x, positions), (b, c * positions)))
    }

    /// `B × (C·P)` to `(P·B) × C` (position-major rows).
    pub fn rows_to_positions(&mut self, x: Var, positions: usize) -> Result<Var, Error> {
        let (b, n) = self.shape(x)?;
        let c = divides("rows_to_positions", n, positions)?;
        Ok(self.push(Op::RowsToPositions(x, positions), (b * positions, c)))
    }

    /// `B × (G·L)` to `(B·G) × L`.
    pub fn rows_to_blocks(&mut self, x: Var, groups: usize) -> Result<Var, Error> {
        let (b, n) = self.shape(x)?;
        let l = divides("rows_to_blocks", n, groups)?;
        Ok(self.push(Op::RowsToBlocks(x, groups), (b * groups, l)))
    }

    /// `(B·G) × L` to `B × (G·L)`.
    pub fn blocks_to_rows(&mut self, x: Var, groups: usize) -> Result<Var, Error> {
        let (r, l) = self.shape(x)?;
        let b = divides("blocks_to_rows", r, groups)?;
        Ok(self.push(Op::BlocksToRows(x, groups), (b, groups * l)))
    }

    /// Repeats each column `times` times: `r × C` to `r × (C·times)`.
    pub fn repeat_cols(&mut self, x: Var, times: usize) -> Result<Var, Error> {
        let (r, c) = self.shape(x)?;
        if times == 0 {
            return Err(Error::InvalidArgument {
                op: "repeat_cols",
                detail: "zero repetitions".into(),
            });
        }
        let cols = c.checked_mul(times).ok_or_else(|| Error::InvalidArgument {
            op: "repeat_cols",
            detail: format!("{c} columns repeated {times} times overflow"),
        })?;
        Ok(self.push(Op::RepeatCols(x, times), (r, cols)))
    }

    /// Sums groups of `size` consecutive columns: `r × (C·size)` to `r × C`.
    pub fn sum_groups(&mut self, x: Var, size: usize) -> Result<Var, Error> {
        let (r, n) = self.shape(x)?;
        let c = divides("sum_groups", n, size)?;
        Ok(self.push(Op::SumGroups(x, size), (r, c)))
    }
}

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $u:expr;)*) => {
        impl Graph {
            $($(#[$doc])* pub fn $name(&mut self, x: Var) -> Result<Var, Error> { self.unary($u, x) })*
        }
    };
}

unary_methods! {
    /// `tanh x`.
    tanh => Unary::Tanh;
    /// The logistic sigmoid.
    sigmoid => Unary::Sigmoid;
    /// `ln(1 + e^x)`.
    softplus => Unary::Softplus;
    /// `max(x, 0)`.
    relu => Unary::Relu;
    /// `x σ(x)`.
    swish => Unary::Swish;
    /// `e^x`.
    exp => Unary::Exp;
    /// `ln x`.
    log => Unary::Log;
    /// `√x`.
    sqrt => Unary::Sqrt;
    /// `x²`.
    square => Unary::Square;
    /// `|x|`.
    abs => Unary::Abs;
    /// `-x`.
    neg => Unary::Neg;
}

macro_rules! binary_methods {
    ($($(#[$doc:meta])* $name:ident => $b:expr;)*) => {
        impl Graph {
            $($(#[$doc])* pub fn $name(&mut self, a: Var, b: Var) -> Result<Var, Error> { self.binary($b, a, b) })*
        }
    };
}

binary_methods! {
    /// `a + b` (broadcasting).
    add => Binary::Add;
    /// `a - b` (broadcasting).
    sub => Binary::Sub;
    /// `a ⊙ b` (broadcasting).
    mul => Binary::Mul;
    /// `a / b` (broadcasting).
    div => Binary::Div;
    /// `a ⊙ (1 - b²)` (broadcasting): `a` through `tanh`, given `b = tanh x`.
    tanh_grad => Binary::TanhGrad;
}

impl Graph {
    /// ELU with parameter `alpha`.
    pub fn elu(&mut self, x: Var, alpha: f64) -> Result<Var, Error> {
        self.unary(Unary::Elu(alpha), x)
    }

    /// `c x`.
    pub fn scale(&mut self, x: Var, c: f64) -> Result<Var, Error> {
        self.unary(Unary::Scale(c), x)
    }

    /// `x + c`.
    pub fn add_scalar(&mut self, x: Var, c: f64) -> Result<Var, Error> {
        self.unary(Unary::AddScalar(c), x)
    }

    /// `x^n`.
    pub fn powi(&mut self, x: Var, n: i32) -> Result<Var, Error> {
        self.unary(Unary::PowI(n), x)
    }

    /// Row-wise log-softmax: `x - logsumexp_rows(x)`.
    pub fn log_softmax_rows(&mut self, x: Var) -> Result<Var, Error> {
        let lse = self.logsumexp_rows(x)?;
        self.sub(x, lse)
    }

    /// Row-wise log-density of a diagonal Gaussian: for each row,
    /// `Σ_j -½ (ln 2π + v_j + (x_j - μ_j)² e^{-v_j})` with `v = log_var`; `mean` and
    /// `log_var` broadcast against `x` (e.g. a standard normal prior: zeros). Returns `r×1`.
    pub fn gaussian_log_density(&mut self, x: Var, mean: Var, log_var: Var) -> Result<Var, Error> {
        let d = self.sub(x, mean)?;
        let d2 = self.square(d)?;
        let neg_v = self.neg(log_var)?;
        let inv_var = self.exp(neg_v)?;
        let q = self.mul(d2, inv_var)?;
        let t = self.add(q, log_var)?;
        let t = self.add_scalar(t, (2.0 * std::f64::consts::PI).ln())?;
        let t = self.scale(t, -0.5)?;
        self.sum(t, Axis::Rows)
    }

    /// Mean cross-entropy of row-wise `logits` against `targets` (rows of class
    /// probabilities, usually one-hot): `-mean_i Σ_j t_ij log_softmax(x)_ij`.
    pub fn cross_entropy(&mut self, logits: Var, targets: Var) -> Result<Var, Error> {
        let (rl, tl) = (self.shape(logits)?, self.shape(targets)?);
        if rl != tl {
            return Err(Error::ShapeMismatch { op: "cross_entropy", expected: rl, got: tl });
        }
        let ls = self.log_softmax_rows(logits)?;
        let prod = self.mul(targets, ls)?;
        let per_row = self.sum(prod, Axis::Rows)?;
        let mean = self.mean(per_row, Axis::All)?;
        self.neg(mean)
    }
}
