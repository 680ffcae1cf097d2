//! The `k3sctl` binary: everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    // Before anything can open a TLS connection: the dependency tree carries two rustls crypto
    // providers, and rustls refuses to choose between them on its own.
    k3sctl::kube::install_crypto_provider();
    k3sctl::cli::main()
}
