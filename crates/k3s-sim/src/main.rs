//! Stand-in K3s binary for tests.
fn main() {}
