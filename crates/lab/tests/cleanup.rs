//! The CLI end to end, and what a killed owner leaves: `up --hold` owns a lab; after it is
//! killed with SIGKILL the hosts keep running (nspawn is detached), and `cleanup` removes
//! every process, mount, namespace, link, cgroup and lock file of the lab. `up` is given a
//! locked file's descriptor without close-on-exec, as `flock(1)` gives its command: only `up`
//! itself holds it, no host process, so the lock is free once `up` is gone.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::assert_gone;
use lab::Lab;

const BIN: &str = env!("CARGO_BIN_EXE_k3sctl-lab");

fn cli(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("k3sctl-lab runs")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "k3sctl-lab failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every process (pid and name) with a descriptor open on `path`.
fn holders_of(path: &Path) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in fs_err::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // A process may be gone by now: then it holds nothing.
        let Ok(fds) = fs_err::read_dir(entry.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|fd| fs_err::read_link(fd.path()).is_ok_and(|target| target == path))
        {
            let name = fs_err::read_to_string(entry.path().join("comm")).unwrap_or_default();
            found.push((pid, name.trim().to_owned()));
        }
    }
    found
}

fn wait_for(path: &Path, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if path.exists() {
            return true;
        }
        thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn killed_owner_leaves_nothing_after_cleanup() {
    let spec = std::env::temp_dir().join(format!("k3sctl-lab-t-kill-{}.yaml", std::process::id()));
    let _ = fs_err::remove_file(&spec);
    // What a run under `flock /tmp/k3sctl-lab.lock ...` hands down: a descriptor of the locked
    // file without close-on-exec.
    let lock_path =
        std::env::temp_dir().join(format!("k3sctl-lab-t-kill-{}.lock", std::process::id()));
    let lock = fs_err::File::create(&lock_path).expect("lock file");
    lock.lock().expect("flock");
    let inherited = nix::unistd::dup(lock.file()).expect("dup without close-on-exec");
    let mut holder = Command::new(BIN)
        .args([
            "up",
            "--name",
            "t-kill",
            "--hosts",
            "1",
            "--hold",
            "--k3s-binary",
            BIN,
        ])
        .arg("--spec-out")
        .arg(&spec)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("k3sctl-lab up runs");
    // From here on only `up` holds the lock (the same open file, through its inherited copy).
    drop(inherited);
    drop(lock);
    assert!(
        wait_for(&spec, Duration::from_secs(300)),
        "lab t-kill did not come up"
    );

    let lab = Lab::open("t-kill").expect("lab exists");
    // The host's nspawn, its init and everything inside did not inherit the descriptor.
    assert_eq!(
        holders_of(&lock_path),
        vec![(holder.id(), "k3sctl-lab".to_owned())],
        "only `up` may hold the lock file"
    );
    assert_eq!(lab.state().owner.map(|o| o.pid), Some(holder.id()));
    let footprint = lab.footprint();
    assert!(footprint.has_every_kind(), "{footprint:?}");
    let text = fs_err::read_to_string(&spec).expect("spec");
    assert!(
        text.contains("name: t-kill-1") && text.contains("role: server"),
        "{text}"
    );

    // Default K3s binary: the k3s-sim stand-in next to the binaries, stamped into the lab dir.
    let default_spec = lab.dir().join("default-spec.yaml");
    match lab::find_stand_in() {
        Ok(_) => {
            lab.write_spec(&default_spec, &lab::SpecOptions::default())
                .expect("spec with the stamped stand-in");
            let k3s = lab.dir().join("k3s");
            let version = Command::new(&k3s)
                .arg("--version")
                .output()
                .expect("stamped k3s runs");
            assert!(String::from_utf8_lossy(&version.stdout).contains(lab::DEFAULT_K3S_VERSION));
            let text = fs_err::read_to_string(&default_spec).expect("spec");
            assert!(text.contains(&format!("file: {}", k3s.display())), "{text}");
        }
        Err(_) => {
            let err = lab.write_spec(&default_spec, &lab::SpecOptions::default());
            assert!(
                matches!(err, Err(lab::LabError::NoK3sBinary { .. })),
                "{err:?}"
            );
            assert!(!default_spec.exists());
        }
    }

    // CLI: exec keeps argument boundaries, status shows the host, faults by host name.
    assert_eq!(
        stdout(&cli(&["exec", "t-kill-1", "--", "echo", "a  b"])),
        "a  b\n"
    );
    assert!(stdout(&cli(&["status", "t-kill"])).contains("t-kill-1"));
    assert_eq!(
        cli(&["exec", "t-kill-1", "--", "false"]).status.code(),
        Some(1)
    );
    assert!(!cli(&["crash", "t-kill-9"]).status.success());
    stdout(&cli(&["cut", "t-kill-1"]));
    assert!(stdout(&cli(&["status", "t-kill"])).contains("running, cut"));
    stdout(&cli(&["uncut", "t-kill-1"]));
    stdout(&cli(&["heal", "--lab", "t-kill"]));
    assert!(!stdout(&cli(&["status", "t-kill"])).contains("cut"));
    // cleanup leaves labs whose owner is alive alone.
    stdout(&cli(&["cleanup"]));
    assert_eq!(
        stdout(&cli(&["exec", "t-kill-1", "--", "hostname"])),
        "t-kill-1\n"
    );

    holder.kill().expect("SIGKILL the owner");
    holder.wait().expect("reap the owner");
    // The hosts survive their owner, exactly what a crashed test run leaves behind.
    assert_eq!(
        stdout(&cli(&["exec", "t-kill-1", "--", "hostname"])),
        "t-kill-1\n"
    );
    assert!(stdout(&cli(&["status", "t-kill"])).contains("orphan"));
    // The lock is free while the hosts run on: `flock` would now let the next run in.
    assert_eq!(holders_of(&lock_path), Vec::new());
    let again = fs_err::File::open(&lock_path).expect("lock file");
    again
        .file()
        .try_lock()
        .expect("the lock is free once `up` is gone");
    drop(again);
    let _ = fs_err::remove_file(&lock_path);

    let swept = stdout(&cli(&["cleanup"]));
    assert!(swept.contains("t-kill"), "{swept}");
    assert_gone(&footprint);
    let _ = fs_err::remove_file(&spec);
}
