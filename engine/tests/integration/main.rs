//! Integration tests of the engine: timers, order lifecycle and the paper venue.

mod answers;
mod common;
mod lifecycle;
mod properties;
mod risk;
