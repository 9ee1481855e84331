//! `cargo xtask gradcheck`: every operation and layer against central finite differences
//! in f64, first and second order, on shapes including 1×1, 1×n and n×1. Prints a table
//! and exits with 1 if any relative error exceeds 1e-6.

use autodiff::check::{cases, check_case, CheckResult};

const TOL: f64 = 1e-6;
const DIMS: [(usize, usize, usize); 6] =
    [(1, 1, 1), (1, 4, 2), (4, 1, 3), (3, 3, 1), (2, 5, 4), (6, 2, 3)];

fn main() {
    println!("{:<20} {:>6} {:>16}", "op", "order", "max rel. error");
    let mut failed = 0;
    for case in cases() {
        let mut worst = CheckResult::default();
        for &dims in &DIMS {
            for seed in 0..3 {
                match check_case(&case, dims, seed) {
                    Ok(r) => {
                        worst.first = worst.first.max(r.first);
                        worst.second = worst.second.max(r.second);
                    }
                    Err(e) => {
                        println!("{:<20} error at {dims:?}: {e}", case.name);
                        failed += 1;
                    }
                }
            }
        }
        for (order, err) in [(1, worst.first), (2, worst.second)] {
            let flag = if err > TOL { "  FAIL" } else { "" };
            failed += usize::from(err > TOL);
            println!("{:<20} {order:>6} {err:>16.2e}{flag}", case.name);
        }
    }
    if failed > 0 {
        eprintln!("{failed} checks above {TOL:e}");
        std::process::exit(1);
    }
    println!("all {} operations and layers within {TOL:e} (first and second order)", cases().len());
}
