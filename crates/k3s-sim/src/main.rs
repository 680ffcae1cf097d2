//! The `k3s-sim` binary (installed as `k3s` it acts as k3s).

fn main() {
    std::process::exit(k3s_sim::cli::main(std::env::args().collect()));
}
