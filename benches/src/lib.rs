//! Shared benchmark problems live in the bench targets.
