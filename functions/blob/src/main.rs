//! Placeholder until the function is written.
fn main() {}
