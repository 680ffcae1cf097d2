//! The lab's Proxmox agent: a `k3sctl-lab pve-agent` process on the machine serving `pct` in the
//! Proxmox host (see [`super::wire`]). Each request runs in its own thread with the caller's
//! own stdin/stdout/stderr.

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use super::conf::{self, Conf};
use super::pct::{self, DIE_EXIT, PctCommand, msg};
use super::wire::{self, SOCKET_IN_PVE};
use super::{AGENT_CGROUP, ProxmoxLab, attach};
use crate::context::Ctx;
use crate::error::{LabError, Result, fs_step};
use crate::readiness::Readiness;
use crate::state::LabState;

/// How long `pct start` waits for the container's systemd.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// The socket's path on the machine for lab `state`.
pub fn socket_path(state: &LabState, px: &ProxmoxLab) -> PathBuf {
    state
        .paths()
        .root(&px.node)
        .join(SOCKET_IN_PVE.trim_start_matches('/'))
}

/// Serves `pct` for lab `lab` until killed (teardown kills the agent's cgroup).
pub fn serve(lab: &str) -> Result<()> {
    let state = LabState::load(lab)?;
    let px = proxmox(&state)?;
    let ctx = Ctx::new(state.clone());
    for dir in ctx.cg.create(lab, AGENT_CGROUP)? {
        let procs = dir.join("cgroup.procs");
        fs_err::write(&procs, std::process::id().to_string())
            .map_err(fs_step(format!("lab {lab}: enter the agent's cgroup")))?;
    }
    let path = socket_path(&state, &px);
    let step = format!("lab {lab}: agent socket {}", path.display());
    if let Some(dir) = path.parent() {
        fs_err::create_dir_all(dir).map_err(fs_step(step.clone()))?;
    }
    let _ = fs_err::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(fs_step(step.clone()))?;
    fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o666))
        .map_err(fs_step(step))?;
    for stream in listener.incoming().flatten() {
        let lab = lab.to_owned();
        std::thread::spawn(move || handle(&lab, &stream));
    }
    Ok(())
}

fn proxmox(state: &LabState) -> Result<ProxmoxLab> {
    state.proxmox.clone().ok_or_else(|| LabError::Invalid {
        what: format!("lab {} has no Proxmox stand-in", state.name),
        hint: "create it with `k3sctl-lab up --proxmox`".into(),
    })
}

fn handle(lab: &str, stream: &UnixStream) {
    let code = match wire::receive(stream) {
        Ok((req, fds)) => {
            let uid = rustix::net::sockopt::socket_peercred(stream)
                .map(|c| c.uid.as_raw())
                .unwrap_or(u32::MAX);
            let [stdin, stdout, stderr] = fds;
            let mut io = Io {
                stdin: Some(stdin),
                stdout: File::from(stdout),
                stderr: File::from(stderr),
                env: req.env,
            };
            if uid != 0 {
                io.err(msg::NOT_ROOT)
            } else {
                match pct::parse(&req.argv) {
                    Ok(cmd) => run(lab, cmd, &mut io),
                    Err(text) => io.err(&text),
                }
            }
        }
        Err(_) => return,
    };
    // The caller may be gone (its ssh session closed); nothing to tell then.
    let _ = wire::reply(stream, code);
}

/// The caller's descriptors and environment.
struct Io {
    stdin: Option<OwnedFd>,
    stdout: File,
    stderr: File,
    env: Vec<(String, String)>,
}

impl Io {
    /// Prints `text` on the caller's stderr; returns the `die` exit code.
    fn err(&mut self, text: &str) -> i32 {
        let _ = self.stderr.write_all(text.as_bytes());
        DIE_EXIT
    }

    fn out(&mut self, text: &str) -> i32 {
        let _ = self.stdout.write_all(text.as_bytes());
        0
    }
}

/// A container looked up for a command: its host, conf text and parsed conf.
struct Ct {
    ctx: Ctx,
    host: String,
    vmid: u32,
    conf_text: String,
    conf: Conf,
    conf_file: PathBuf,
}

impl Ct {
    fn running(&self) -> bool {
        self.ctx
            .state
            .host(&self.host)
            .map(|h| self.ctx.boot_target(h).running_pid().is_some())
            .unwrap_or(false)
    }

    fn lock(&self) -> Option<String> {
        self.conf.current.get("lock").map(str::to_owned)
    }
}

fn lookup(lab: &str, vmid: u32) -> std::result::Result<Ct, String> {
    let state = LabState::load(lab).map_err(|e| format!("{e}\n"))?;
    let px = proxmox(&state).map_err(|e| format!("{e}\n"))?;
    let conf_file = state
        .paths()
        .root(&px.node)
        .join(px.conf_path(vmid).trim_start_matches('/'));
    let conf_text = match fs_err::read_to_string(&conf_file) {
        Ok(t) => t,
        Err(_) => return Err(msg::not_on_node(&px.node, vmid)),
    };
    // A .conf the lab did not create (copied by hand) has no container behind it.
    let host = px
        .by_vmid(vmid)
        .map(|c| c.host.clone())
        .ok_or_else(|| msg::not_on_node(&px.node, vmid))?;
    Ok(Ct {
        ctx: Ctx::new(state),
        host,
        vmid,
        conf: Conf::parse(&conf_text),
        conf_text,
        conf_file,
    })
}

fn run(lab: &str, cmd: PctCommand, io: &mut Io) -> i32 {
    if let PctCommand::List = cmd {
        return list(lab, io);
    }
    let vmid = match &cmd {
        PctCommand::Exec { vmid, .. }
        | PctCommand::Status { vmid }
        | PctCommand::Start { vmid }
        | PctCommand::Stop { vmid }
        | PctCommand::Reboot { vmid }
        | PctCommand::Config { vmid, .. }
        | PctCommand::Set { vmid, .. }
        | PctCommand::Push { vmid, .. }
        | PctCommand::Pull { vmid, .. } => *vmid,
        PctCommand::List => unreachable!("handled above"),
    };
    let mut ct = match lookup(lab, vmid) {
        Ok(ct) => ct,
        Err(text) => return io.err(&text),
    };
    match cmd {
        PctCommand::Exec { argv, .. } => exec(&ct, argv, io),
        PctCommand::Status { .. } => {
            let status = if ct.running() { "running" } else { "stopped" };
            io.out(&format!("status: {status}\n"))
        }
        PctCommand::Config { current, .. } => {
            let text = ct.conf.render_config(current);
            io.out(&text)
        }
        PctCommand::Start { .. } => {
            if let Some(lock) = ct.lock() {
                return io.err(&msg::locked(&lock));
            }
            if ct.running() {
                return io.err(&msg::already_running(vmid));
            }
            start(&mut ct, io)
        }
        PctCommand::Stop { .. } | PctCommand::Reboot { .. } => {
            let reboot = matches!(cmd, PctCommand::Reboot { .. });
            if let Some(lock) = ct.lock() {
                return io.err(&msg::locked(&lock));
            }
            if !ct.running() {
                return io.err(&msg::not_running(vmid));
            }
            if let Err(e) = crate::faults::stop(&mut ct.ctx, &ct.host) {
                return io.err(&format!("stopping CT {vmid} failed: {e}\n"));
            }
            if reboot { start(&mut ct, io) } else { 0 }
        }
        PctCommand::Set { onboot, .. } => {
            if let Some(lock) = ct.lock() {
                return io.err(&msg::locked(&lock));
            }
            let text = conf::set_key(&ct.conf_text, "onboot", if onboot { "1" } else { "0" });
            match fs_err::write(&ct.conf_file, text) {
                Ok(()) => 0,
                Err(e) => io.err(&format!(
                    "unable to write {}: {e}\n",
                    ct.conf_file.display()
                )),
            }
        }
        PctCommand::Push {
            file,
            destination,
            perms,
            ..
        } => push(&ct, &file, &destination, perms, io),
        PctCommand::Pull {
            path, destination, ..
        } => pull(&ct, &path, &destination, io),
        PctCommand::List => unreachable!("handled above"),
    }
}

fn start(ct: &mut Ct, io: &mut Io) -> i32 {
    match crate::faults::start(
        &mut ct.ctx,
        &ct.host,
        START_TIMEOUT,
        Readiness::SystemRunning,
    ) {
        // A container whose units failed still runs, as with real LXC.
        Ok(()) | Err(LabError::Degraded { .. }) => 0,
        Err(e) => io.err(&format!(
            "startup for container '{}' failed: {e}\n",
            ct.vmid
        )),
    }
}

fn exec(ct: &Ct, argv: Vec<String>, io: &mut Io) -> i32 {
    if !ct.running() {
        return io.err(&msg::exec_not_running(ct.vmid));
    }
    if argv.is_empty() {
        return io.err(msg::MISSING_COMMAND);
    }
    let leader = match ct
        .ctx
        .state
        .host(&ct.host)
        .map_err(|e| e.to_string())
        .and_then(|h| attach::leader(&ct.ctx, h).map_err(|e| e.to_string()))
    {
        Ok(l) => l,
        Err(_) => return io.err(&msg::exec_not_running(ct.vmid)),
    };
    let (Some(stdin), Ok(stdout), Ok(stderr)) = (
        io.stdin.take(),
        io.stdout.try_clone(),
        io.stderr.try_clone(),
    ) else {
        return io.err("pct: cannot pass the standard descriptors on\n");
    };
    let mut cmd = attach::nsenter(leader);
    cmd.args(&argv)
        .env_clear()
        .envs(
            io.env
                .iter()
                .filter(|(k, _)| k != "SSL_CERT_FILE" && k != "SSL_CERT_DIR")
                .cloned(),
        )
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr));
    match cmd.status() {
        Ok(status) => status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        Err(e) => io.err(&format!("lxc-attach: cannot run nsenter: {e}\n")),
    }
}

/// Runs `script` in the container with `stdin` as its input; returns its output.
fn attach_io(ct: &Ct, script: &str, args: &[&str], stdin: Stdio) -> Option<std::process::Output> {
    let h = ct.ctx.state.host(&ct.host).ok()?;
    let leader = attach::leader(&ct.ctx, h).ok()?;
    attach::nsenter(leader)
        .args(["/bin/sh", "-c", script, "sh"])
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(stdin)
        .output()
        .ok()
}

/// The node host's init PID (its files live in its own mounts, e.g. a tmpfs /tmp).
fn node_leader(ct: &Ct) -> Option<u32> {
    let px = ct.ctx.state.proxmox.as_ref()?;
    let h = ct.ctx.state.host(&px.node).ok()?;
    attach::leader(&ct.ctx, h).ok()
}

/// `pct push`: like real pct, a failure inside the worker is printed but the exit code is 0.
fn push(ct: &Ct, file: &str, destination: &str, perms: u32, io: &mut Io) -> i32 {
    if !ct.running() {
        return io.err(msg::PUSH_NOT_RUNNING);
    }
    let Some(node) = node_leader(ct) else {
        return io.err("the Proxmox node is not running\n");
    };
    // Real pct opens the source before it touches the container.
    let readable = attach::nsenter(node)
        .args(["/usr/bin/test", "-r", file])
        .status()
        .is_ok_and(|s| s.success());
    if !readable {
        return io.err(&format!(
            "unable to open file '{file}' - No such file or directory\n"
        ));
    }
    let read = attach::nsenter(node)
        .args(["/bin/cat", "--", file])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut reader) = read else {
        return io.err("cannot run nsenter\n");
    };
    let Some(source) = reader.stdout.take() else {
        return io.err("cannot read the source\n");
    };
    let script = r#"d=$(dirname "$1"); [ -d "$d" ] || exit 3; cat > "$1" && chmod "$2" "$1""#;
    let mode = format!("{perms:o}");
    let written = attach_io(ct, script, &[destination, &mode], Stdio::from(source));
    let read_ok = reader
        .wait_with_output()
        .ok()
        .filter(|o| o.status.success())
        .is_some();
    // A missing destination directory is judged first: the writer then exits without reading,
    // so the reader may die of a closed pipe, which says nothing about the source.
    let dir_missing = written
        .as_ref()
        .is_some_and(|out| out.status.code() == Some(3));
    if !read_ok && !dir_missing {
        return io.err(&format!(
            "unable to open file '{file}' - No such file or directory\n"
        ));
    }
    match written {
        Some(out) if out.status.success() => 0,
        Some(out) if out.status.code() == Some(3) => {
            let _ = io
                .stderr
                .write_all(msg::failed_to_create(destination).as_bytes());
            0
        }
        Some(out) => {
            let _ = io.stderr.write_all(&out.stderr);
            0
        }
        None => io.err(msg::PUSH_NOT_RUNNING),
    }
}

/// `pct pull`: exit code 0 even when the copy failed, as real pct.
fn pull(ct: &Ct, path: &str, destination: &str, io: &mut Io) -> i32 {
    if !ct.running() {
        return io.err(msg::PULL_NOT_RUNNING);
    }
    let Some(node) = node_leader(ct) else {
        return io.err("the Proxmox node is not running\n");
    };
    let Some(read) = attach_io(ct, r#"cat -- "$1""#, &[path], Stdio::null()) else {
        return io.err(msg::PULL_NOT_RUNNING);
    };
    if !read.status.success() {
        let _ = io.stderr.write_all(&read.stderr);
        return 0;
    }
    let script = r#"d=$(dirname "$1"); [ -d "$d" ] || exit 3; cat > "$1""#;
    let written = attach::nsenter(node)
        .args(["/bin/sh", "-c", script, "sh", destination])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .and_then(|mut child| {
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(&read.stdout)?;
            }
            child.wait()
        });
    if written.map(|s| s.code()).ok().flatten() != Some(0) {
        let _ = io
            .stderr
            .write_all(msg::failed_to_create(destination).as_bytes());
    }
    0
}

fn list(lab: &str, io: &mut Io) -> i32 {
    let Ok(state) = LabState::load(lab) else {
        return io.err("cannot read the lab state\n");
    };
    let Ok(px) = proxmox(&state) else {
        return io.err("no Proxmox stand-in\n");
    };
    let ctx = Ctx::new(state);
    let mut text = "VMID       Status     Lock         Name                \n".to_owned();
    for c in &px.containers {
        let Ok(ct) = lookup(lab, c.vmid) else {
            continue;
        };
        let status = if ct.running() { "running" } else { "stopped" };
        let name = ct
            .conf
            .current
            .get("hostname")
            .unwrap_or_default()
            .to_owned();
        let lock = ct.lock().unwrap_or_default();
        text.push_str(&format!(
            "{:<10} {status:<10} {lock:<12} {name:<20}\n",
            c.vmid
        ));
    }
    drop(ctx);
    io.out(&text)
}
