//! A small seeded random number generator: xoshiro256++ (Blackman & Vigna, 2019) seeded
//! by SplitMix64, with uniform, Gaussian and Rademacher draws. The same seed gives the same
//! stream on every machine and thread count; give each parallel task its own `Rng`
//! derived with [`Rng::fork`].

/// xoshiro256++. Serializable, so a training state can resume the exact stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rng {
    s: [u64; 4],
}

fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        Rng { s: [splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x)] }
    }

    /// Whether the state is usable (xoshiro's all-zero state only ever returns zeros: a
    /// deserialized generator should be checked).
    pub fn is_valid(&self) -> bool {
        self.s != [0; 4]
    }

    /// An independent generator for sub-task `index` (same result whatever thread runs it).
    pub fn fork(&self, index: u64) -> Rng {
        let mut x = self.s[0] ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
        Rng::new(splitmix64(&mut x))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform on `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform on `[lo, hi)`.
    pub fn uniform_in(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// `±1` with equal probability.
    pub fn rademacher(&mut self) -> f64 {
        if self.next_u64() >> 63 == 0 {
            -1.0
        } else {
            1.0
        }
    }

    /// A `rows × cols` matrix of draws from `f`; a size whose bytes overflow the address
    /// space is an error, before anything is allocated.
    pub fn matrix(
        &mut self,
        rows: usize,
        cols: usize,
        mut f: impl FnMut(&mut Rng) -> f64,
    ) -> Result<crate::Mat, crate::Error> {
        crate::error::param_size("Rng::matrix", rows, cols)?;
        Ok(crate::Mat::from_fn(rows, cols, |_, _| f(self)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_have_the_right_moments_and_are_reproducible() {
        let mut r = Rng::new(7);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01 && (var - 1.0).abs() < 0.01, "{mean} {var}");
        let signs: f64 = (0..n).map(|_| r.rademacher()).sum::<f64>() / n as f64;
        assert!(signs.abs() < 0.01);
        assert_eq!(Rng::new(3).fork(5).next_u64(), Rng::new(3).fork(5).next_u64());
        assert_ne!(Rng::new(3).fork(5).next_u64(), Rng::new(3).fork(6).next_u64());
    }
}
