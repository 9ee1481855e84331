//! Layers: functions that add parameters and operations to a [`Graph`].
//!
//! A layer is built once into a graph (its parameters become blocks of the graph's flat
//! parameter vector, named `"{name}.weight"` and so on) and then applied with `forward`.
//! Weights are stored `in × out`, so a layer computes `x W + b` on rows of samples.

use crate::error::param_size;
use crate::graph::{Axis, ConvGeometry, Graph, Mat, Var};
use crate::{Error, Rng};

/// Standard initialisations of a `fan_in × fan_out` weight.
///
/// ```
/// use autodiff::layers::Init;
/// use autodiff::Rng;
/// let w = Init::GlorotUniform.draw(&mut Rng::new(0), 3, 4, 3, 4)?;
/// assert_eq!(w.shape(), (3, 4));
/// assert!(w.iter().all(|x| x.abs() <= (6.0f64 / 7.0).sqrt()));
/// # Ok::<(), autodiff::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// PyTorch's `nn.Linear` default: `U(-1/√fan_in, 1/√fan_in)` (Kaiming uniform with
    /// `a = √5`), for weights and biases.
    TorchDefault,
    /// Glorot (Xavier) uniform: `U(-√(6/(fan_in + fan_out)), +…)`.
    GlorotUniform,
    /// He (Kaiming) normal: `N(0, 2/fan_in)`, for ReLU networks.
    HeNormal,
    /// `N(0, std²)`.
    Normal(f64),
    /// All zeros.
    Zeros,
}

impl Init {
    /// Draws a `rows × cols` matrix for a layer with the given fans.
    pub fn draw(
        self,
        rng: &mut Rng,
        rows: usize,
        cols: usize,
        fan_in: usize,
        fan_out: usize,
    ) -> Result<Mat, Error> {
        param_size("Init::draw", rows, cols)?;
        let fan_in = fan_in.max(1) as f64;
        let fan_out = fan_out.max(1) as f64;
        match self {
            Init::TorchDefault => {
                let b = 1.0 / fan_in.sqrt();
                rng.matrix(rows, cols, |r| r.uniform_in(-b, b))
            }
            Init::GlorotUniform => {
                let b = (6.0 / (fan_in + fan_out)).sqrt();
                rng.matrix(rows, cols, |r| r.uniform_in(-b, b))
            }
            Init::HeNormal => {
                let s = (2.0 / fan_in).sqrt();
                rng.matrix(rows, cols, |r| s * r.normal())
            }
            Init::Normal(s) => rng.matrix(rows, cols, |r| s * r.normal()),
            Init::Zeros => Ok(Mat::zeros(rows, cols)),
        }
    }
}

/// Element-wise activations of an [`Mlp`].
///
/// ```
/// use autodiff::layers::Activation;
/// use autodiff::{eval, Graph, Mat};
/// let mut g = Graph::new();
/// let x = g.input(1, 2);
/// let y = Activation::Relu.apply(&mut g, x)?;
/// let out = eval(&g, &[y], &[&Mat::from_row_slice(1, 2, &[-1.0, 2.0])])?;
/// assert_eq!(out[0].as_slice(), &[0.0, 2.0]);
/// # Ok::<(), autodiff::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// `tanh`.
    Tanh,
    /// `max(x, 0)`.
    Relu,
    /// `ln(1 + e^x)`.
    Softplus,
    /// ELU with parameter α.
    Elu(f64),
    /// `x σ(x)`.
    Swish,
    /// The logistic sigmoid.
    Sigmoid,
    /// No activation.
    Identity,
}

impl Activation {
    /// Applies the activation.
    pub fn apply(self, g: &mut Graph, x: Var) -> Result<Var, Error> {
        match self {
            Activation::Tanh => g.tanh(x),
            Activation::Relu => g.relu(x),
            Activation::Softplus => g.softplus(x),
            Activation::Elu(a) => g.elu(x, a),
            Activation::Swish => g.swish(x),
            Activation::Sigmoid => g.sigmoid(x),
            Activation::Identity => Ok(x),
        }
    }
}

/// `x W + b`.
///
/// ```
/// use autodiff::layers::Linear;
/// use autodiff::{Graph, Rng};
/// let mut g = Graph::new();
/// let x = g.input(5, 3); // a batch of 5 rows
/// let y = Linear::new(&mut g, "fc", 3, 4, &mut Rng::new(0))?.forward(&mut g, x)?;
/// assert_eq!(g.shape(y)?, (5, 4));
/// assert_eq!(g.params().len(), 3 * 4 + 4);
/// # Ok::<(), autodiff::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Linear {
    /// `in × out` weight.
    pub weight: Var,
    /// `1 × out` bias.
    pub bias: Var,
}

impl Linear {
    /// Adds the parameters of a `fan_in → fan_out` layer with PyTorch's initialisation.
    pub fn new(
        g: &mut Graph,
        name: &str,
        fan_in: usize,
        fan_out: usize,
        rng: &mut Rng,
    ) -> Result<Self, Error> {
        Self::with_init(g, name, fan_in, fan_out, Init::TorchDefault, rng)
    }

    /// Adds the parameters with a chosen weight initialisation (the bias uses PyTorch's,
    /// or zeros for `Init::Zeros`).
    pub fn with_init(
        g: &mut Graph,
        name: &str,
        fan_in: usize,
        fan_out: usize,
        init: Init,
        rng: &mut Rng,
    ) -> Result<Self, Error> {
        param_size("Linear", fan_in, fan_out)?;
        let w = init.draw(rng, fan_in, fan_out, fan_in, fan_out)?;
        let bias_init = if init == Init::Zeros { Init::Zeros } else { Init::TorchDefault };
        let b = bias_init.draw(rng, 1, fan_out, fan_in, fan_out)?;
        Ok(Linear {
            weight: g.param(&format!("{name}.weight"), &w),
            bias: g.param(&format!("{name}.bias"), &b),
        })
    }

    /// Adds a layer with given values (PyTorch `nn.Linear` stores `out × in`: pass its
    /// transpose as `weight`).
    pub fn from_values(g: &mut Graph, name: &str, weight: &Mat, bias: &Mat) -> Result<Self, Error> {
        if bias.shape() != (1, weight.ncols()) {
            return Err(Error::ShapeMismatch {
                op: "Linear bias",
                expected: (1, weight.ncols()),
                got: bias.shape(),
            });
        }
        Ok(Linear {
            weight: g.param(&format!("{name}.weight"), weight),
            bias: g.param(&format!("{name}.bias"), bias),
        })
    }

    /// `x W + b` for rows `x`.
    pub fn forward(&self, g: &mut Graph, x: Var) -> Result<Var, Error> {
        let xw = g.matmul(x, self.weight)?;
        g.add(xw, self.bias)
    }
}

/// A multilayer perceptron: linear layers with an activation between them (none after
/// the last).
///
/// ```
/// use autodiff::layers::{Activation, Mlp};
/// use autodiff::{Graph, Rng};
/// let mut g = Graph::new();
/// let x = g.input(8, 2);
/// let mlp = Mlp::new(&mut g, "f", &[2, 64, 64, 2], Activation::Tanh, &mut Rng::new(0))?;
/// let y = mlp.forward(&mut g, x)?;
/// assert_eq!(g.shape(y)?, (8, 2));
/// # Ok::<(), autodiff::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    /// The layers.
    pub layers: Vec<Linear>,
    /// The activation.
    pub activation: Activation,
}

impl Mlp {
    /// Adds an MLP with `widths[0] → widths[1] → … → widths[L]`.
    pub fn new(
        g: &mut Graph,
        name: &str,
        widths: &[usize],
        activation: Activation,
        rng: &mut Rng,
    ) -> Result<Self, Error> {
        if widths.len() < 2 {
            return Err(Error::InvalidArgument {
                op: "Mlp",
                detail: "needs at least an input and an output width".into(),
            });
        }
        let layers = widths
            .windows(2)
            .enumerate()
            .map(|(i, w)| Linear::new(g, &format!("{name}.{i}"), w[0], w[1], rng))
            .collect::<Result<_, _>>()?;
        Ok(Mlp { layers, activation })
    }

    /// Applies the network to rows `x`.
    pub fn forward(&self, g: &mut Graph, x: Var) -> Result<Var, Error> {
        let mut h = x;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(g, h)?;
            if i + 1 < self.layers.len() {
                h = self.activation.apply(g, h)?;
            }
        }
        Ok(h)
    }
}

/// FFJORD's `ConcatLinear`: a linear layer on `[x, t]`, i.e. `x W + t w_t + b`, with `t`
/// a `1×1` (or one value per row, `r×1`) time.
///
/// ```
/// use autodiff::layers::ConcatLinear;
/// use autodiff::{Graph, Rng};
/// let mut g = Graph::new();
/// let (x, t) = (g.input(4, 3), g.input(1, 1));
/// let y = ConcatLinear::new(&mut g, "l", 3, 5, &mut Rng::new(0))?.forward(&mut g, x, t)?;
/// assert_eq!(g.shape(y)?, (4, 5));
/// # Ok::<(), autodiff::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConcatLinear {
    /// The layer on `x`.
    pub linear: Linear,
    /// `1 × out` weight of `t`.
    pub time_weight: Var,
}

impl ConcatLinear {
    /// Adds the parameters, initialised as PyTorch's `nn.Linear(fan_in + 1, fan_out)`; the
    /// time column is its own block so `x` needs no concatenation.
    pub fn new(
        g: &mut Graph,
        name: &str,
        fan_in: usize,
        fan_out: usize,
        rng: &mut Rng,
    ) -> Result<Self, Error> {
        param_size("ConcatLinear", fan_in.saturating_add(1), fan_out)?;
        let mut draw =
            |rows: usize| Init::TorchDefault.draw(rng, rows, fan_out, fan_in + 1, fan_out);
        let (w, tw, b) = (draw(fan_in)?, draw(1)?, draw(1)?);
        let linear = Linear {
            weight: g.param(&format!("{name}.weight"), &w),
            bias: g.param(&format!("{name}.bias"), &b),
        };
        Ok(ConcatLinear { linear, time_weight: g.param(&format!("{name}.time_weight"), &tw) })
    }

    /// `x W + t w_t + b`.
    pub fn forward(&self, g: &mut Graph, x: Var, t: Var) -> Result<Var, Error> {
        check_time(g, "ConcatLinear", t)?;
        let xw = self.linear.forward(g, x)?;
        let tw = g.mul(t, self.time_weight)?;
        g.add(xw, tw)
    }
}

/// The time input of a time-conditioned layer: one column (a `1 × 1` time for the whole
/// batch, or one time per row). A wider `t` would broadcast against the layer's weights
/// and give a silently wrong field.
fn check_time(g: &Graph, op: &'static str, t: Var) -> Result<(), Error> {
    let shape = g.shape(t)?;
    if shape.1 != 1 {
        return Err(Error::ShapeMismatch { op, expected: (shape.0, 1), got: shape });
    }
    Ok(())
}

/// FFJORD's `ConcatSquashLinear`: `(x W + b) ⊙ σ(t W_g + b_g) + t W_b`.
///
/// ```
/// use autodiff::layers::ConcatSquash;
/// use autodiff::{Graph, Rng};
/// let mut g = Graph::new();
/// let (z, t) = (g.input(4, 2), g.input(1, 1));
/// let y = ConcatSquash::new(&mut g, "cs", 2, 16, &mut Rng::new(0))?.forward(&mut g, z, t)?;
/// assert_eq!(g.shape(y)?, (4, 16));
/// # Ok::<(), autodiff::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConcatSquash {
    /// `x W + b`.
    pub linear: Linear,
    /// `1 × out` gate weight `W_g`.
    pub gate_weight: Var,
    /// `1 × out` gate bias `b_g`.
    pub gate_bias: Var,
    /// `1 × out` time bias weight `W_b` (no bias of its own, as in FFJORD).
    pub time_bias: Var,
}

impl ConcatSquash {
    /// Adds the parameters.
    pub fn new(
        g: &mut Graph,
        name: &str,
        fan_in: usize,
        fan_out: usize,
        rng: &mut Rng,
    ) -> Result<Self, Error> {
        let linear = Linear::new(g, name, fan_in, fan_out, rng)?;
        let mut p = |suffix: &str, rng: &mut Rng| {
            let m = Init::TorchDefault.draw(rng, 1, fan_out, 1, fan_out)?;
            Ok::<_, Error>(g.param(&format!("{name}.{suffix}"), &m))
        };
        let gate_weight = p("gate_weight", rng)?;
        let gate_bias = p("gate_bias", rng)?;
        let time_bias = p("time_bias", rng)?;
        Ok(ConcatSquash { linear, gate_weight, gate_bias, time_bias })
    }

    /// `(x W + b) ⊙ σ(t W_g + b_g) + t W_b`, `t` being `1×1` or `r×1`.
    pub fn forward(&self, g: &mut Graph, x: Var, t: Var) -> Result<Var, Error> {
        check_time(g, "ConcatSquash", t)?;
        let h = self.linear.forward(g, x)?;
        let tg = g.mul(t, self.gate_weight)?;
        let tg = g.add(tg, self.gate_bias)?;
        let gate = g.sigmoid(tg)?;
        let gated = g.mul(h, gate)?;
        let tb = g.mul(t, self.time_bias)?;
        g.add(gated, tb)
    }
}

/// A GRU cell (Cho et al. 2014, PyTorch's convention):
/// `r = σ(x W_ir + h W_hr + b_r)`, `z = σ(x W_iz + h W_hz + b_z)`,
/// `n = tanh(x W_in + b_in + r ⊙ (h W_hn + b_hn))`, `h' = (1 - z) ⊙ n + z ⊙ h`.
///
/// ```
/// use autodiff::layers::GruCell;
/// use autodiff::{Graph, Rng};
/// let mut g = Graph::new();
/// let (x, h) = (g.input(3, 2), g.input(3, 8));
/// let h_next = GruCell::new(&mut g, "gru", 2, 8, &mut Rng::new(0))?.forward(&mut g, x, h)?;
/// assert_eq!(g.shape(h_next)?, (3, 8));
/// # Ok::<(), autodiff::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GruCell {
    /// Input to reset, update and candidate gates.
    pub input: [Linear; 3],
    /// Hidden state to the same gates.
    pub hidden: [Linear; 3],
}

impl GruCell {
    /// Adds a cell with `input` features and `hidden` state size, PyTorch's initialisation
    /// `U(-1/√hidden, 1/√hidden)`.
    pub fn new(
        g: &mut Graph,
        name: &str,
        input: usize,
        hidden: usize,
        rng: &mut Rng,
    ) -> Result<Self, Error> {
        param_size("GruCell", input.max(hidden), hidden)?;
        let mut lin = |part: &str, fan_in: usize, rng: &mut Rng| {
            let bound = 1.0 / (hidden.max(1) as f64).sqrt();
            let w = rng.matrix(fan_in, hidden, |r| r.uniform_in(-bound, bound))?;
            let b = rng.matrix(1, hidden, |r| r.uniform_in(-bound, bound))?;
            Ok::<_, Error>(Linear {
                weight: g.param(&format!("{name}.{part}.weight"), &w),
                bias: g.param(&format!("{name}.{part}.bias"), &b),
            })
        };
        let input_layers = [lin("ir", input, rng)?, lin("iz", input, rng)?, lin("in", input, rng)?];
        let hidden_layers =
            [lin("hr", hidden, rng)?, lin("hz", hidden, rng)?, lin("hn", hidden, rng)?];
        Ok(GruCell { input: input_layers, hidden: hidden_layers })
    }

    /// One step: the new hidden state from rows `x` and `h`.
    pub fn forward(&self, g: &mut Graph, x: Var, h: Var) -> Result<Var, Error> {
        let gate = |k: usize, g: &mut Graph| -> Result<(Var, Var), Error> {
            Ok((self.input[k].forward(g, x)?, self.hidden[k].forward(g, h)?))
        };
        let (xr, hr) = gate(0, g)?;
        let (xz, hz) = gate(1, g)?;
        let (xn, hn) = gate(2, g)?;
        let r = g.add(xr, hr)?;
        let r = g.sigmoid(r)?;
        let z = g.add(xz, hz)?;
        let z = g.sigmoid(z)?;
        let rh = g.mul(r, hn)?;
        let n = g.add(xn, rh)?;
        let n = g.tanh(n)?;
        // h' = n + z ⊙ (h - n).
        let d = g.sub(h, n)?;
        let zd = g.mul(z, d)?;
        g.add(n, zd)
    }
}

/// A 2-D convolution on image rows `B × (C·H·W)` (channel-major), computed as im2col and
/// one matrix product; the output rows are `B × (C_out·H_out·W_out)`.
///
/// ```
/// use autodiff::layers::Conv2d;
/// use autodiff::{ConvGeometry, Graph, Rng};
/// let geom = ConvGeometry { channels: 1, height: 8, width: 8, kernel_h: 3, kernel_w: 3,
///                           stride: 2, padding: 1 };
/// let mut g = Graph::new();
/// let x = g.input(2, 64); // two 8×8 single-channel images
/// let conv = Conv2d::new(&mut g, "c", geom, 4, &mut Rng::new(0))?;
/// let y = conv.forward(&mut g, x)?;
/// assert_eq!(g.shape(y)?, (2, 4 * 4 * 4)); // 4 channels of 4×4
/// # Ok::<(), autodiff::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2d {
    /// `(C_in·kh·kw) × C_out` weight (a PyTorch `C_out × C_in × kh × kw` weight, flattened
    /// per output channel, is its transpose).
    pub weight: Var,
    /// `1 × C_out` bias.
    pub bias: Var,
    /// Input geometry, window, stride and padding.
    pub geometry: ConvGeometry,
    /// Output channels.
    pub out_channels: usize,
}

impl Conv2d {
    /// Adds a convolution with PyTorch's initialisation (`fan_in = C_in·kh·kw`).
    pub fn new(
        g: &mut Graph,
        name: &str,
        geometry: ConvGeometry,
        out_channels: usize,
        rng: &mut Rng,
    ) -> Result<Self, Error> {
        if !geometry.valid() {
            return Err(Error::InvalidArgument {
                op: "Conv2d",
                detail: format!("invalid geometry {geometry:?}"),
            });
        }
        let fan_in = geometry.patch_len();
        param_size("Conv2d", fan_in, out_channels)?;
        let w = Init::TorchDefault.draw(rng, fan_in, out_channels, fan_in, out_channels)?;
        let b = Init::TorchDefault.draw(rng, 1, out_channels, fan_in, out_channels)?;
        Ok(Conv2d {
            weight: g.param(&format!("{name}.weight"), &w),
            bias: g.param(&format!("{name}.bias"), &b),
            geometry,
            out_channels,
        })
    }

    /// Geometry of the output images (for the next layer; window fields copied from this
    /// one).
    pub fn output(&self) -> ConvGeometry {
        ConvGeometry {
            channels: self.out_channels,
            height: self.geometry.out_h(),
            width: self.geometry.out_w(),
            ..self.geometry
        }
    }

    /// Applies the convolution.
    pub fn forward(&self, g: &mut Graph, x: Var) -> Result<Var, Error> {
        let patches = g.im2col(x, self.geometry)?;
        let y = g.matmul(patches, self.weight)?;
        let y = g.add(y, self.bias)?;
        g.positions_to_rows(y, self.geometry.positions())
    }
}

/// FFJORD's and Chen et al.'s `ConcatConv2d`: a convolution of `[h, t]`, the time as one
/// more input channel (constant over the image). `geometry` is that of `h` (its channels
/// without the time channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConcatConv2d {
    /// The convolution over `channels + 1` input channels.
    pub conv: Conv2d,
}

impl ConcatConv2d {
    /// Adds the convolution (PyTorch's initialisation, `fan_in = (C_in + 1)·kh·kw`).
    pub fn new(
        g: &mut Graph,
        name: &str,
        geometry: ConvGeometry,
        out_channels: usize,
        rng: &mut Rng,
    ) -> Result<Self, Error> {
        let channels = geometry.channels.checked_add(1).ok_or(Error::InvalidArgument {
            op: "ConcatConv2d",
            detail: format!("{} channels and the time channel overflow", geometry.channels),
        })?;
        let with_time = ConvGeometry { channels, ..geometry };
        Ok(ConcatConv2d { conv: Conv2d::new(g, name, with_time, out_channels, rng)? })
    }

    /// Applies it to image rows `h` (`B × C·H·W`) at time `t` (`1×1`).
    ///
    /// ```
    /// use autodiff::layers::ConcatConv2d;
    /// use autodiff::{ConvGeometry, Graph, Rng};
    /// let mut g = Graph::new();
    /// let geom = ConvGeometry { channels: 2, height: 4, width: 4, kernel_h: 3, kernel_w: 3,
    ///                           stride: 1, padding: 1 };
    /// let h = g.input(5, 2 * 16);
    /// let t = g.input(1, 1);
    /// let y = ConcatConv2d::new(&mut g, "f", geom, 3, &mut Rng::new(0))?.forward(&mut g, h, t)?;
    /// assert_eq!(g.shape(y)?, (5, 3 * 16));
    /// # Ok::<(), autodiff::Error>(())
    /// ```
    pub fn forward(&self, g: &mut Graph, h: Var, t: Var) -> Result<Var, Error> {
        check_time(g, "ConcatConv2d", t)?;
        let b = g.shape(h)?.0;
        let geom = self.conv.geometry;
        let tmap = g.broadcast_to(t, (b, geom.height * geom.width))?;
        let ht = g.concat_cols(&[h, tmap])?;
        self.conv.forward(g, ht)
    }
}

/// Group normalisation (Wu & He 2018) over image rows `B × (C·P)`: each sample's `groups`
/// groups of `C/groups` channels are normalised to zero mean and unit variance, then
/// scaled and shifted per channel.
///
/// ```
/// use autodiff::layers::GroupNorm;
/// use autodiff::{Graph, Rng};
/// let mut g = Graph::new();
/// let x = g.input(2, 4 * 9); // 4 channels of 3×3
/// let y = GroupNorm::new(&mut g, "gn", 2, 4, 9)?.forward(&mut g, x)?;
/// assert_eq!(g.shape(y)?, (2, 36));
/// # Ok::<(), autodiff::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupNorm {
    /// `1 × C` scale, initialised to 1.
    pub gamma: Var,
    /// `1 × C` shift, initialised to 0.
    pub beta: Var,
    /// Groups.
    pub groups: usize,
    /// Positions per channel (`H·W`).
    pub positions: usize,
    /// Variance guard.
    pub eps: f64,
}

impl GroupNorm {
    /// Adds the parameters; `channels` must be a multiple of `groups`.
    pub fn new(
        g: &mut Graph,
        name: &str,
        groups: usize,
        channels: usize,
        positions: usize,
    ) -> Result<Self, Error> {
        if groups == 0 || !channels.is_multiple_of(groups) {
            return Err(Error::InvalidArgument {
                op: "GroupNorm",
                detail: format!("{channels} channels do not split into {groups} groups"),
            });
        }
        param_size("GroupNorm", 1, channels)?;
        Ok(GroupNorm {
            gamma: g.param(&format!("{name}.gamma"), &Mat::from_element(1, channels, 1.0)),
            beta: g.param(&format!("{name}.beta"), &Mat::zeros(1, channels)),
            groups,
            positions,
            eps: 1e-5,
        })
    }

    /// Normalises `x`.
    pub fn forward(&self, g: &mut Graph, x: Var) -> Result<Var, Error> {
        let z = g.rows_to_blocks(x, self.groups)?;
        let mean = g.mean(z, Axis::Rows)?;
        let d = g.sub(z, mean)?;
        let sq = g.square(d)?;
        let var = g.mean(sq, Axis::Rows)?;
        let var = g.add_scalar(var, self.eps)?;
        let sd = g.sqrt(var)?;
        let n = g.div(d, sd)?;
        let n = g.blocks_to_rows(n, self.groups)?;
        let gamma = g.repeat_cols(self.gamma, self.positions)?;
        let beta = g.repeat_cols(self.beta, self.positions)?;
        let scaled = g.mul(n, gamma)?;
        g.add(scaled, beta)
    }
}

/// Average pooling over windows (`geometry`'s kernel, stride and padding; zero padding
/// counts towards the average, as PyTorch's default `count_include_pad`).
///
/// ```
/// use autodiff::layers::avg_pool2d;
/// use autodiff::{eval, ConvGeometry, Graph, Mat};
/// let mut g = Graph::new();
/// let x = g.input(1, 4); // one 2×2 image
/// let geom = ConvGeometry { channels: 1, height: 2, width: 2, kernel_h: 2, kernel_w: 2,
///                           stride: 2, padding: 0 };
/// let y = avg_pool2d(&mut g, x, geom)?;
/// let out = eval(&g, &[y], &[&Mat::from_row_slice(1, 4, &[1.0, 2.0, 3.0, 6.0])])?;
/// assert_eq!(out[0][(0, 0)], 3.0);
/// # Ok::<(), autodiff::Error>(())
/// ```
pub fn avg_pool2d(g: &mut Graph, x: Var, geometry: ConvGeometry) -> Result<Var, Error> {
    let patches = g.im2col(x, geometry)?;
    let window = geometry.kernel_h * geometry.kernel_w;
    let sums = g.sum_groups(patches, window)?;
    let means = g.scale(sums, 1.0 / window as f64)?;
    g.positions_to_rows(means, geometry.positions())
}

/// Global average pooling: image rows `B × (C·P)` to `B × C`.
///
/// ```
/// use autodiff::layers::global_avg_pool;
/// use autodiff::{eval, Graph, Mat};
/// let mut g = Graph::new();
/// let x = g.input(1, 4); // 2 channels of 2 positions
/// let y = global_avg_pool(&mut g, x, 2)?;
/// let out = eval(&g, &[y], &[&Mat::from_row_slice(1, 4, &[1.0, 3.0, 10.0, 20.0])])?;
/// assert_eq!(out[0].as_slice(), &[2.0, 15.0]);
/// # Ok::<(), autodiff::Error>(())
/// ```
pub fn global_avg_pool(g: &mut Graph, x: Var, positions: usize) -> Result<Var, Error> {
    let sums = g.sum_groups(x, positions)?;
    g.scale(sums, 1.0 / positions.max(1) as f64)
}

/// Flatten: image rows are already flat (`B × (C·H·W)`), so this returns `x`; it exists to
/// make model code read like its PyTorch counterpart.
///
/// ```
/// use autodiff::layers::flatten;
/// use autodiff::Graph;
/// let mut g = Graph::new();
/// let x = g.input(2, 12);
/// assert_eq!(flatten(x), x); // image rows are already flat
/// ```
pub fn flatten(x: Var) -> Var {
    x
}
