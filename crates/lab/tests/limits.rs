//! `k3sctl-lab up` on a machine whose inotify limit is too low for the lab raises it and says so,
//! and `--login-user NAME --sudo-asks-password` gives the host a non-root user whose sudo asks for
//! a password (one host).

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_k3sctl-lab");
const LIMIT: &str = "/proc/sys/fs/inotify/max_user_instances";

fn cli(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("k3sctl-lab runs")
}

fn read_limit() -> u64 {
    fs_err::read_to_string(LIMIT)
        .expect("read limit")
        .trim()
        .parse()
        .expect("number")
}

/// Puts the machine's limit back however the test ends.
struct Restore(u64);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = fs_err::write(LIMIT, format!("{}\n", self.0));
        let _ = cli(&["down", "t-limits"]);
    }
}

#[test]
fn a_too_low_inotify_limit_is_raised_and_the_login_user_sudo_asks_for_a_password() {
    lab::require_root().expect("the lab needs root");
    let _restore = Restore(read_limit());
    let in_use = lab::limits::measure_in_use().instances;
    // Too low for one more host, as on a machine already running many hosts.
    fs_err::write(LIMIT, format!("{}\n", in_use + 1)).expect("lower the limit");
    let up = cli(&[
        "up",
        "--name",
        "t-limits",
        "--hosts",
        "1",
        "--login-user",
        "debian",
        "--sudo-asks-password",
    ]);
    let stderr = String::from_utf8_lossy(&up.stderr).into_owned();
    assert!(up.status.success(), "up failed: {stderr}");
    assert!(
        stderr.contains("raised fs.inotify.max_user_instances from"),
        "{stderr}"
    );
    let per_host = lab::limits::INOTIFY_INSTANCES;
    assert!(read_limit() >= in_use + per_host.per_host + per_host.reserve);
    let sudo = cli(&[
        "exec",
        "t-limits-1",
        "--",
        "sh",
        "-c",
        "su - debian -c 'sudo -n true' 2>&1; id -u debian",
    ]);
    let out = String::from_utf8_lossy(&sudo.stdout).into_owned();
    assert!(out.contains("a password is required"), "{out}");
    assert!(out.trim_end().ends_with("1000"), "{out}");
}
