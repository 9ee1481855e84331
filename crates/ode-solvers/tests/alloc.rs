//! The stepping kernel allocates nothing per step (a counting global allocator).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ode_solvers::{Method, Options, RkIntegrator, StepOutcome};

struct Counting;

thread_local! {
    /// Allocations made by this thread (other threads, such as the test harness's, are
    /// not the code under test).
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn allocations() -> usize {
    ALLOCATIONS.try_with(Cell::get).unwrap_or(0)
}

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn rhs(t: f64, y: &[f64], dy: &mut [f64]) {
    dy[0] = y[1];
    dy[1] = (1.0 - y[0] * y[0]) * y[1] - y[0] + 0.1 * t.sin();
}

#[test]
fn stepping_and_interpolating_allocate_nothing() {
    fn l1(v: &[f64]) -> f64 {
        v.iter().map(|x| x.abs()).sum()
    }
    let mut out = [0.0; 2];
    for method in Method::all().into_iter().filter(|m| m.tableau().is_some()) {
        let mut opts =
            Options::new(method).rtol(1e-8).atol(1e-8).norm(ode_solvers::Norm::Custom(l1));
        opts.layout = Some(ode_solvers::StateLayout::new().part("x", 1, true).part("v", 1, false));
        let mut rk = RkIntegrator::new(&rhs, 2, &opts).unwrap();
        rk.init(0.0, &[2.0, 0.0], 20.0).unwrap();
        let before = allocations();
        let mut accepted = 0;
        for i in 0..2000 {
            let outcome = if method.is_adaptive() {
                rk.step().unwrap()
            } else {
                rk.step_to(0.01 * f64::from(i + 1)).map(|_| StepOutcome::Accepted).unwrap()
            };
            if outcome == StepOutcome::Accepted {
                accepted += 1;
                let mid = 0.5 * (rk.t_prev() + rk.t());
                rk.interpolate(mid, &mut out).unwrap();
            }
            if rk.t() == 20.0 {
                break;
            }
        }
        let after = allocations();
        assert!(accepted > 10, "{method}");
        assert_eq!(after - before, 0, "{method} allocated while stepping");
    }
}
