//! Runnable Kairos examples: see the `examples` targets of this package
//! (`cargo run -p kairos-examples --example custom_strategy`) and the plugin crate in
//! `examples/plugin-donchian`.
