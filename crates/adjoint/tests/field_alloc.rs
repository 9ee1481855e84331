//! `AutodiffField::rhs` and `vjp` allocate nothing per call (docs/ARCHITECTURE.md's
//! claim), counted by a per-thread counting allocator; with integrands and extra inputs
//! too.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use adjoint::{integrands, AutodiffField, VectorField};
use autodiff::layers::{Activation, Mlp};
use autodiff::{Graph, Rng};
use ode_solvers::OdeSystem;

thread_local! {
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
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

fn allocations() -> usize {
    COUNT.with(Cell::get)
}

fn field(augmented: bool) -> AutodiffField {
    let (b, d) = (4, 2);
    let mut g = Graph::new();
    let z = g.input(b, d);
    let t = g.input(1, 1);
    let tcol = g.broadcast_to(t, (b, 1)).unwrap();
    let zt = g.concat_cols(&[z, tcol]).unwrap();
    let f = Mlp::new(&mut g, "f", &[3, 16, 2], Activation::Tanh, &mut Rng::new(0))
        .unwrap()
        .forward(&mut g, zt)
        .unwrap();
    if !augmented {
        return AutodiffField::builder(g).state(z, f).time(t).build().unwrap();
    }
    let eps = g.input(b, d);
    let probe = integrands::probe_vjp(&mut g, f, z, eps).unwrap();
    let tr = integrands::hutchinson_trace(&mut g, probe, eps).unwrap();
    let kin = integrands::kinetic_energy(&mut g, f).unwrap();
    AutodiffField::builder(g)
        .state(z, f)
        .time(t)
        .extra("eps", eps)
        .integrand("trace", tr, false)
        .integrand("kinetic", kin, false)
        .build()
        .unwrap()
}

#[test]
fn autodiff_field_evaluations_and_vjps_allocate_nothing() {
    for augmented in [false, true] {
        let field = field(augmented);
        let n = field.dim();
        let z: Vec<f64> = (0..n).map(|i| (i as f64 * 0.3).sin()).collect();
        let a: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).cos()).collect();
        let (mut dz, mut vz, mut vp) =
            (vec![0.0; n], vec![0.0; n], vec![0.0; field.params().len()]);
        field.rhs(0.1, &z, &mut dz).unwrap();
        field.vjp(0.1, &z, &a, &mut dz, &mut vz, &mut vp).unwrap();
        let before = allocations();
        for k in 0..50 {
            let t = 0.01 * f64::from(k);
            field.rhs(t, &z, &mut dz).unwrap();
            field.vjp(t, &z, &a, &mut dz, &mut vz, &mut vp).unwrap();
        }
        assert_eq!(allocations() - before, 0, "augmented = {augmented}");
        assert!(vp.iter().any(|&x| x != 0.0));
    }
}
