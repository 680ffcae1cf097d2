//! Edge tests of the local transport on this machine.

#[path = "support/transport_suite.rs"]
mod transport_suite;

use k3sctl::host::LocalTransport;

#[tokio::test]
async fn local_transport_passes_the_transport_suite() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let t = LocalTransport::new("local");
    transport_suite::run_all(&t, scratch.path()).await;
}
