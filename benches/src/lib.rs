//! Benchmarks of the workspace crates live in `benches/*.rs`. This library only hosts the
//! README's examples as doc-tests, since it depends on every crate they use.

/// The README's examples, compiled and run as doc-tests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
