//! Marks the tests whose parts this machine lacks as ignored (see the included file).

include!("../scripts/build/test_parts.rs");

fn main() {
    test_parts();
}
