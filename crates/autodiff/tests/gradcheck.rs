//! Every operation's first- and second-order derivatives against central finite
//! differences, on random shapes including 1×1, 1×n and n×1.

use autodiff::check::{cases, check_case};
use proptest::prelude::*;

const TOL: f64 = 1e-6;

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, rng_seed: proptest::test_runner::RngSeed::Fixed(0x5EED), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_op_matches_finite_differences(r in 1usize..=4, c in 1usize..=4, k in 1usize..=4, seed in any::<u64>()) {
        for case in cases() {
            let res = check_case(&case, (r, c, k), seed).map_err(|e| TestCaseError::fail(format!("{}: {e}", case.name)))?;
            prop_assert!(res.first <= TOL, "{} first order at {r}×{c}×{k}: {:e}", case.name, res.first);
            prop_assert!(res.second <= TOL, "{} second order at {r}×{c}×{k}: {:e}", case.name, res.second);
        }
    }
}
