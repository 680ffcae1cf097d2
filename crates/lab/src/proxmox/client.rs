//! `pct` as installed in the Proxmox host: the `k3sctl-lab` binary called as `pct` hands its
//! arguments, environment and standard descriptors to the lab's agent and exits with the code
//! the agent answers.

use std::os::unix::net::UnixStream;

use super::pct::DIE_EXIT;
use super::wire::{self, Request, SOCKET_IN_PVE};

/// Runs `pct` with `args` (without the program name); returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    let stream = match UnixStream::connect(SOCKET_IN_PVE) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "pct: cannot reach the lab's Proxmox agent at {SOCKET_IN_PVE}: {e} (is the lab up?)"
            );
            return DIE_EXIT;
        }
    };
    let req = Request {
        argv: args,
        env: std::env::vars().collect(),
    };
    use std::os::fd::AsFd;
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let fds = [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()];
    if let Err(e) = wire::send(&stream, &req, fds) {
        eprintln!("pct: cannot send the request to the lab's agent: {e}");
        return DIE_EXIT;
    }
    match wire::wait_reply(&stream) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pct: the lab's agent did not answer: {e}");
            DIE_EXIT
        }
    }
}
