//! Integration tests of the engine: timers, order lifecycle and the paper venue.

mod common;
mod lifecycle;
mod properties;
mod risk;
