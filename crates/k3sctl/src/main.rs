//! The `k3sctl` binary: everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    k3sctl::cli::main()
}
