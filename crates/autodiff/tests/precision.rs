//! Single precision: an `Executor<f32>` replays every checked operation (values, gradients
//! and Hessian-vector products) to within a small multiple of `f32`'s epsilon of the `f64`
//! executor, at sizes that reach every matrix-product path (remainder rows and columns,
//! thin products, the 48-row AVX-512 panels and several `k` passes).

use autodiff::check::{cases, precision_case};

#[test]
fn every_operation_in_f32_agrees_with_f64() {
    let mut report = Vec::new();
    for case in cases() {
        for (dims, seed) in [((3, 2, 4), 1), ((5, 4, 3), 2), ((61, 9, 70), 3), ((100, 2, 1100), 4)]
        {
            let err = precision_case::<f32>(&case, dims, seed)
                .unwrap_or_else(|e| panic!("{} at {dims:?}: {e}", case.name));
            report.push((case.name, dims, err));
        }
    }
    let worst =
        report.iter().cloned().fold(("", (0, 0, 0), 0.0f64), |w, r| if r.2 > w.2 { r } else { w });
    eprintln!("largest f32 difference: {} at {:?}: {:.2e}", worst.0, worst.1, worst.2);
    for (name, dims, err) in report {
        // f32's epsilon is 1.2e-7. Every case but one stays within 1.3e-5 of its scale
        // (sums of up to 1100 terms, second-order chains through exp and log). The GRU
        // cell fed 1100 inputs saturates its gates, and `1 − t²` from a rounded `t ≈ 1`
        // keeps few digits in any f32 code: 3.3e-4 measured (the rounding of the data
        // excluded, see `precision_case`).
        let bound = if name == "GruCell" && dims.2 > 1000 { 1e-3 } else { 5e-5 };
        assert!(err < bound, "{name} at {dims:?}: f32 differs from f64 by {err:.2e} of its scale");
    }
}

#[test]
fn the_f64_executor_through_the_generic_path_is_the_f64_executor() {
    // `precision_case::<f64>` compares two f64 executors: bit-identical.
    for case in cases() {
        let err = precision_case::<f64>(&case, (5, 4, 3), 7).expect("builds");
        assert_eq!(err, 0.0, "{}", case.name);
    }
}
