//! Datasets: MNIST (IDX), the 8×8 digits (CSV), generic numeric CSV; seeded shuffles and
//! augmentation hooks.

use std::io::Read;
use std::path::Path;

use autodiff::{Mat, Rng};

use crate::Error;

/// Something a training loop draws batches from.
pub trait Dataset: Sync {
    /// What a model consumes per step.
    type Batch: Send + Sync;
    /// Number of samples.
    fn len(&self) -> usize;
    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The batch of the samples `indices`; augmentation may draw from `rng`.
    fn batch(&self, indices: &[usize], rng: &mut Rng) -> Result<Self::Batch, Error>;
}

/// A permutation of `0..n` drawn from `rng` (Fisher-Yates): one epoch's order.
pub fn shuffled(n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = ((rng.uniform() * (i + 1) as f64) as usize).min(i);
        order.swap(i, j);
    }
    order
}

/// Images as rows of pixels in `[0, 1]` with class labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Images {
    /// `n × side²`, row-major per image.
    pub pixels: Vec<f64>,
    /// Labels `0..classes`.
    pub labels: Vec<u8>,
    /// Image side.
    pub side: usize,
    /// Number of classes.
    pub classes: usize,
}

impl Images {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Keeps the first `n` images.
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.len());
        self.labels.truncate(n);
        self.pixels.truncate(n.saturating_mul(self.side).saturating_mul(self.side));
    }

    /// Image `i`'s pixels (`None` past the end).
    pub fn image(&self, i: usize) -> Option<&[f64]> {
        let p = self.side.checked_mul(self.side)?;
        self.pixels.get(i.checked_mul(p)?..i.checked_add(1)?.checked_mul(p)?)
    }
}

/// Changes one training image in place (`side × side`, row-major), drawing from `rng`.
pub trait Augment: Sync {
    /// Augments `image`.
    fn apply(&self, image: &mut [f64], side: usize, rng: &mut Rng);
}

/// A random translation by up to `.0` pixels in each direction, zero filled
/// (torchdiffeq's `RandomCrop(28, padding=4)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomShift(pub usize);

impl Augment for RandomShift {
    fn apply(&self, image: &mut [f64], side: usize, rng: &mut Rng) {
        // A shift past the side empties the image as a shift of the side would.
        let s = self.0.min(side);
        // An image that is not `side × side` is left alone (no pixel to move is known).
        if s == 0 || side.checked_mul(side) != Some(image.len()) {
            return;
        }
        let mut offset = || {
            let k = (rng.uniform() * (2 * s + 1) as f64) as isize;
            k.min(2 * s as isize) - s as isize
        };
        let (dy, dx) = (offset(), offset());
        let src = image.to_vec();
        for row in 0..side {
            for col in 0..side {
                let (sr, sc) = (row as isize + dy, col as isize + dx);
                let inside = (0..side as isize).contains(&sr) && (0..side as isize).contains(&sc);
                image[row * side + col] =
                    if inside { src[sr as usize * side + sc as usize] } else { 0.0 };
            }
        }
    }
}

/// A classification batch: `x` (`B × pixels`) and target distributions `y` (`B × classes`).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledBatch {
    /// Inputs, one sample per row.
    pub x: Mat,
    /// Targets, one distribution per row (one-hot, or smoothed).
    pub y: Mat,
    /// The classes of the rows.
    pub labels: Vec<u8>,
}

impl LabelledBatch {
    /// Rows `k·n/parts .. (k+1)·n/parts` (the rows must split evenly).
    pub fn chunk(&self, k: usize, parts: usize) -> Result<LabelledBatch, Error> {
        let n = self.x.nrows();
        if parts == 0
            || k >= parts
            || !n.is_multiple_of(parts)
            || self.y.nrows() != n
            || self.labels.len() != n
        {
            return Err(Error::InvalidArgument {
                what: "batch chunk",
                detail: format!("chunk {k} of {parts} of a batch of {n} rows"),
            });
        }
        let rows = n / parts;
        Ok(LabelledBatch {
            x: self.x.rows(k * rows, rows).into_owned(),
            y: self.y.rows(k * rows, rows).into_owned(),
            labels: self.labels[k * rows..(k + 1) * rows].to_vec(),
        })
    }
}

/// Images as a [`Dataset`] of [`LabelledBatch`]es, with optional augmentation and label
/// smoothing (`(1 - ε)·one-hot + ε/classes`).
pub struct ImageBatches<'a> {
    /// The images.
    pub images: &'a Images,
    /// Applied to each image of a training batch.
    pub augment: Option<&'a dyn Augment>,
    /// Label smoothing `ε`.
    pub smoothing: f64,
}

impl Dataset for ImageBatches<'_> {
    type Batch = LabelledBatch;

    fn len(&self) -> usize {
        self.images.len()
    }

    fn batch(&self, indices: &[usize], rng: &mut Rng) -> Result<LabelledBatch, Error> {
        let (p, c) = (self.images.side * self.images.side, self.images.classes);
        if !(0.0..1.0).contains(&self.smoothing) {
            return Err(Error::InvalidArgument {
                what: "label smoothing",
                detail: format!("{} is not in [0, 1)", self.smoothing),
            });
        }
        let mut x = Mat::zeros(indices.len(), p);
        let mut y = Mat::from_element(indices.len(), c, self.smoothing / c as f64);
        let mut img = vec![0.0; p];
        let mut labels = Vec::with_capacity(indices.len());
        for (r, &i) in indices.iter().enumerate() {
            if i >= self.images.len() {
                return Err(Error::InvalidArgument {
                    what: "sample index",
                    detail: format!("{i} of {} images", self.images.len()),
                });
            }
            let src = self.images.image(i).ok_or_else(|| Error::InvalidArgument {
                what: "images",
                detail: format!("image {i} is missing from the pixel data"),
            })?;
            img.copy_from_slice(src);
            if let Some(a) = self.augment {
                a.apply(&mut img, self.images.side, rng);
            }
            for (j, &v) in img.iter().enumerate() {
                x[(r, j)] = v;
            }
            let label = self.images.labels[i];
            y[(r, usize::from(label))] += 1.0 - self.smoothing;
            labels.push(label);
        }
        Ok(LabelledBatch { x, y, labels })
    }
}

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io { path: path.display().to_string(), message: e.to_string() }
}

fn format_error(path: &Path, detail: impl Into<String>) -> Error {
    Error::Format { path: path.display().to_string(), detail: detail.into() }
}

/// A file's bytes, gunzipped when its name ends in `.gz`.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, Error> {
    let file = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let mut out = Vec::new();
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::GzDecoder::new(file).read_to_end(&mut out).map_err(|e| io(path, e))?;
    } else {
        std::io::BufReader::new(file).read_to_end(&mut out).map_err(|e| io(path, e))?;
    }
    Ok(out)
}

fn be_u32(b: &[u8], at: usize, path: &Path) -> Result<usize, Error> {
    let w: [u8; 4] = b
        .get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| format_error(path, "truncated IDX header"))?;
    Ok(u32::from_be_bytes(w) as usize)
}

/// An IDX image file and its label file (MNIST's format, gzipped or not).
pub fn load_idx(images: &Path, labels: &Path) -> Result<Images, Error> {
    let (im, lb) = (read_maybe_gz(images)?, read_maybe_gz(labels)?);
    if be_u32(&im, 0, images)? != 0x0803 {
        return Err(format_error(images, "not an IDX image file (bad magic)"));
    }
    if be_u32(&lb, 0, labels)? != 0x0801 {
        return Err(format_error(labels, "not an IDX label file (bad magic)"));
    }
    let (n, rows, cols) =
        (be_u32(&im, 4, images)?, be_u32(&im, 8, images)?, be_u32(&im, 12, images)?);
    let size =
        n.checked_mul(rows).and_then(|x| x.checked_mul(cols)).and_then(|x| x.checked_add(16));
    if rows != cols || size != Some(im.len()) {
        return Err(format_error(
            images,
            format!("{n} images of {rows}×{cols} do not fit its size"),
        ));
    }
    if be_u32(&lb, 4, labels)? != n || lb.len() != 8 + n {
        return Err(format_error(labels, format!("does not hold {n} labels")));
    }
    if let Some(i) = lb[8..].iter().position(|&l| l > 9) {
        return Err(format_error(labels, format!("label {i} is {} (not 0..9)", lb[8 + i])));
    }
    Ok(Images {
        pixels: im[16..].iter().map(|&p| f64::from(p) / 255.0).collect(),
        labels: lb[8..].to_vec(),
        side: rows,
        classes: 10,
    })
}

/// MNIST from `dir` (train, test): the four `*-ubyte.gz` files.
pub fn load_mnist(dir: &Path) -> Result<(Images, Images), Error> {
    let train =
        load_idx(&dir.join("train-images-idx3-ubyte.gz"), &dir.join("train-labels-idx1-ubyte.gz"))?;
    let test =
        load_idx(&dir.join("t10k-images-idx3-ubyte.gz"), &dir.join("t10k-labels-idx1-ubyte.gz"))?;
    Ok((train, test))
}

/// The 8×8 digits CSV (64 pixel values in 0..16, then the label; gzipped or not): the
/// first 898 rows train, the rest test.
pub fn load_digits(path: &Path) -> Result<(Images, Images), Error> {
    let table = load_csv(path)?;
    if table.cols != 65 {
        return Err(format_error(path, format!("{} columns, expected 65", table.cols)));
    }
    let mut pixels = Vec::with_capacity(table.rows * 64);
    let mut labels = Vec::with_capacity(table.rows);
    for r in 0..table.rows {
        let row = &table.data[r * 65..(r + 1) * 65];
        if let Some(j) = row[..64].iter().position(|v| !(0.0..=16.0).contains(v)) {
            return Err(format_error(
                path,
                format!("row {r}, column {j}: pixel {} not in 0..16", row[j]),
            ));
        }
        let label = row[64];
        if !(0.0..=9.0).contains(&label) || label.fract() != 0.0 {
            return Err(format_error(path, format!("row {r}: label {label} is not 0..9")));
        }
        pixels.extend(row[..64].iter().map(|p| p / 16.0));
        labels.push(label as u8);
    }
    let split = 898.min(labels.len());
    let test = Images {
        pixels: pixels.split_off(split * 64),
        labels: labels.split_off(split),
        side: 8,
        classes: 10,
    };
    Ok((Images { pixels, labels, side: 8, classes: 10 }, test))
}

/// A numeric table: one sample per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Column names, when the file has a header.
    pub header: Option<Vec<String>>,
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// The values, row-major.
    pub data: Vec<f64>,
}

impl Table {
    /// Row `r` (`None` past the end).
    pub fn row(&self, r: usize) -> Option<&[f64]> {
        self.data.get(r.checked_mul(self.cols)?..r.checked_add(1)?.checked_mul(self.cols)?)
    }
}

/// A comma-separated numeric file (gzipped when it ends in `.gz`): one sample per row, a
/// header line optional (taken as one when its first line does not parse as numbers);
/// blank lines are skipped; every row must have the same number of finite values.
pub fn load_csv(path: &Path) -> Result<Table, Error> {
    let text = String::from_utf8(read_maybe_gz(path)?)
        .map_err(|_| format_error(path, "not UTF-8 text"))?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).peekable();
    let parse = |l: &str| -> Result<Vec<f64>, String> {
        l.split(',')
            .map(|x| x.trim().parse::<f64>().map_err(|e| format!("'{}': {e}", x.trim())))
            .collect()
    };
    let header = match lines.peek() {
        Some((_, first)) if parse(first).is_err() => {
            let names: Vec<String> = first.split(',').map(|s| s.trim().to_string()).collect();
            lines.next();
            Some(names)
        }
        _ => None,
    };
    let mut data = Vec::new();
    let mut cols = None;
    let mut rows = 0;
    for (i, line) in lines {
        let v = parse(line).map_err(|e| format_error(path, format!("line {}: {e}", i + 1)))?;
        if let Some(j) = v.iter().position(|x| !x.is_finite()) {
            return Err(format_error(
                path,
                format!("line {}, column {}: not finite", i + 1, j + 1),
            ));
        }
        match cols {
            None => cols = Some(v.len()),
            Some(c) if c != v.len() => {
                return Err(format_error(
                    path,
                    format!("line {}: {} values, the first row has {c}", i + 1, v.len()),
                ))
            }
            _ => {}
        }
        data.extend(v);
        rows += 1;
    }
    let cols = cols.ok_or_else(|| format_error(path, "no data rows"))?;
    if let Some(h) = &header {
        if h.len() != cols {
            return Err(format_error(
                path,
                format!("header has {} names for {cols} columns", h.len()),
            ));
        }
    }
    Ok(Table { header, rows, cols, data })
}
