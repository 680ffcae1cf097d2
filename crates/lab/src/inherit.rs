//! What the lab's long-lived processes inherit from whoever started the lab: stdin, stdout and
//! stderr only.
//!
//! A process keeps every descriptor it was given without close-on-exec open across `exec`,
//! and a host's systemd-nspawn runs as long as the host. So a lab started as
//! `flock /tmp/k3sctl-lab.lock k3sctl-lab up ...` (or from a test run under that `flock`) used
//! to pass the lock's descriptor to each host's nspawn, and the lock stayed held until the lab
//! was removed. Before the lab starts a
//! process that outlives the call (a host's nspawn, the Proxmox stand-in's agent), it marks
//! every descriptor of its own process from 3 up close-on-exec; descriptors the caller opened
//! itself are then not passed to any later child either, which is what the lab wants: none of
//! its children needs one (their stdio is set explicitly, and the agent receives its callers'
//! descriptors over a socket).

use std::io;
use std::process::{Command, ExitStatus};

/// Marks every descriptor of this process from 3 up close-on-exec (`close_range` with
/// `CLOSE_RANGE_CLOEXEC` where the kernel has it), so that no child started afterwards
/// inherits one. The descriptors stay open in this process.
pub fn stop_passing_descriptors() {
    close_fds::set_fds_cloexec_threadsafe(3, &[]);
}

/// Runs `cmd` (a `setsid -f ...` starting a long-lived process) and waits for it, after
/// [`stop_passing_descriptors`]: the process it starts gets stdin, stdout and stderr as `cmd`
/// sets them and no other descriptor.
pub(crate) fn status_alone(cmd: &mut Command) -> io::Result<ExitStatus> {
    stop_passing_descriptors();
    cmd.status()
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::process::{Command, Stdio};

    use nix::fcntl::{FcntlArg, FdFlag, fcntl};

    use super::status_alone;

    /// The descriptors `sh` holds when started by `run`.
    fn child_fds(run: impl FnOnce(&mut Command) -> Vec<u8>) -> Vec<String> {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "ls /proc/$$/fd"]);
        String::from_utf8_lossy(&run(&mut cmd))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_child_started_alone_gets_no_descriptor_beyond_stdio() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = fs_err::File::create(dir.path().join("held")).expect("file");
        // What `flock(1)` gives its command: a descriptor without close-on-exec.
        let held: OwnedFd = nix::unistd::dup(&file).expect("dup");
        let flags = fcntl(&held, FcntlArg::F_GETFD).expect("F_GETFD");
        assert!(!FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC));
        let number = held.as_raw_fd().to_string();

        // A plain spawn passes it on (so the check below can fail).
        let plain = child_fds(|cmd| cmd.output().expect("sh runs").stdout);
        assert!(
            plain.contains(&number),
            "fd {number} not inherited: {plain:?}"
        );

        let out = dir.path().join("fds");
        let alone = child_fds(|cmd| {
            let sink = fs_err::File::create(&out).expect("out");
            cmd.stdin(Stdio::null()).stdout(sink.into_parts().0);
            assert!(status_alone(cmd).expect("sh runs").success());
            fs_err::read(&out).expect("fds listed")
        });
        assert!(!alone.contains(&number), "fd {number} inherited: {alone:?}");
        // stdin, stdout, stderr and the directory `ls` reads.
        assert!(alone.len() <= 4, "{alone:?}");
        for stdio in ["0", "1", "2"] {
            assert!(alone.contains(&stdio.to_owned()), "{alone:?}");
        }
        // The descriptor stays open in this process, only marked close-on-exec.
        let flags = fcntl(&held, FcntlArg::F_GETFD).expect("still open");
        assert!(FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC));
    }
}
