//! Kairos examples crate: see the `examples` targets.
