//! K3s's other faces: the multi-call names and subcommands besides `server` and `agent`.
//! The install script links `kubectl`, `crictl` and `ctr` to the k3s binary, and K3s answers
//! `k3s kubectl`, `k3s crictl`, `k3s ctr`, `k3s completion` and `k3s check-config`.

pub mod check_config;
pub mod completion;
pub mod kubectl;
pub mod runtime;
pub mod runtime_view;

/// The face a program name selects (argv[0] as the install script's links name it).
pub fn by_program_name(prog: &str) -> Option<&'static str> {
    match prog {
        "kubectl" => Some("kubectl"),
        "crictl" => Some("crictl"),
        "ctr" => Some("ctr"),
        _ => None,
    }
}

/// Runs a face with the arguments after its name; returns the exit code.
pub fn run(face: &str, args: &[String]) -> i32 {
    match face {
        "kubectl" => kubectl::run(args),
        "crictl" => runtime::crictl(args),
        "ctr" => runtime::ctr(args),
        "completion" => completion::run(args),
        "check-config" => check_config::run(args),
        other => {
            eprintln!("No help topic for '{other}'");
            3
        }
    }
}
