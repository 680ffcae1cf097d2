//! The `k3sctl` binary.
fn main() {}
