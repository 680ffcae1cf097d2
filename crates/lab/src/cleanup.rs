//! Teardown of one lab, in the only order that works: kill processes (graceful TERM, then
//! cgroup.kill) → remove nspawn lock files → unmount overlays (deepest first) → delete
//! namespaces and links → remove cgroup dirs → remove files, the state file last. Every step
//! is idempotent and touches only the lab's own objects, so it also cleans crashed runs.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::boot;
use crate::cgroup::Hierarchies;
use crate::context::Ctx;
use crate::error::{Result, fs_step};
use crate::naming::Naming;
use crate::network;
use crate::overlay;
use crate::paths::LabPaths;

/// How long hosts get to power off before they are killed.
const GRACE: Duration = Duration::from_secs(3);
/// How long killed processes get to disappear.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// Removes everything of a lab whose state is known.
pub(crate) fn teardown(ctx: &Ctx) -> Result<()> {
    let name = &ctx.state.name;
    let targets: Vec<_> = ctx.state.hosts.iter().map(|h| ctx.boot_target(h)).collect();
    // Ask every host to power off at once, then wait for all of them together.
    let pids: Vec<u32> = targets.iter().filter_map(|t| t.running_pid()).collect();
    for pid in &pids {
        crate::process::signal(*pid, nix::sys::signal::Signal::SIGTERM);
    }
    let start = Instant::now();
    while start.elapsed() < GRACE && pids.iter().any(|p| crate::process::alive(*p)) {
        thread::sleep(Duration::from_millis(10));
    }
    kill_lab_processes(&ctx.cg, name)?;
    for t in &targets {
        boot::remove_nspawn_files(&t.host, &t.machine, &t.lock_record)?;
    }
    remove_rest(&ctx.cg, name, Some(ctx.state.naming()), &ctx.paths)
}

/// Removes what is left of lab `name` when its state file is missing or unreadable.
pub(crate) fn teardown_unknown(cg: &Hierarchies, name: &str) -> Result<()> {
    kill_lab_processes(cg, name)?;
    let paths = LabPaths::new(name);
    for host_dir in crate::network::list_dir(&paths.dir.join("hosts").to_string_lossy(), |_| true) {
        let record = paths.nspawn_lock_record(&host_dir);
        // Without the state the machine name is unknown; the lock file is still recorded.
        boot::remove_nspawn_files(&host_dir, "", &record)?;
    }
    remove_rest(cg, name, None, &paths)
}

fn kill_lab_processes(cg: &Hierarchies, lab: &str) -> Result<()> {
    for host in hosts_with_cgroups(cg, lab) {
        cg.kill(lab, &host, KILL_WAIT)?;
    }
    Ok(())
}

fn hosts_with_cgroups(cg: &Hierarchies, lab: &str) -> Vec<String> {
    crate::cgroup::subdirs(&cg.v2.join(crate::naming::CGROUP_ROOT).join(lab))
}

fn remove_rest(
    cg: &Hierarchies,
    lab: &str,
    naming: Option<Naming>,
    paths: &LabPaths,
) -> Result<()> {
    remove_host_dirs(paths)?;
    for mount in overlay::mounts_below(&paths.dir) {
        overlay::unmount(&mount)?;
    }
    if let Some(busy) = overlay::mounts_below(&paths.dir).first() {
        // Never delete files through a mount.
        return Err(crate::error::LabError::Invalid {
            what: format!("lab {lab}: {} is still mounted", busy.display()),
            hint:
                "find its users with `fuser -vm PATH`, stop them, then run `k3sctl-lab down` again"
                    .into(),
        });
    }
    if let Some(naming) = naming {
        network::remove_all(naming)?;
        remove_propagate_dirs(naming)?;
    }
    cg.remove_lab(lab)?;
    remove_lab_dir(&paths.dir)
}

/// Unmounts and removes every host directory, hosts in parallel (unmounting and deleting
/// files dominate teardown time). A directory still mounted is left for the caller's check.
fn remove_host_dirs(paths: &LabPaths) -> Result<()> {
    let hosts_dir = paths.dir.join("hosts");
    let dirs: Vec<_> = network::list_dir(&hosts_dir.to_string_lossy(), |_| true)
        .into_iter()
        .map(|h| hosts_dir.join(h))
        .collect();
    let results: Vec<Result<()>> = thread::scope(|s| {
        let handles: Vec<_> = dirs
            .iter()
            .map(|dir| {
                s.spawn(move || -> Result<()> {
                    for mount in overlay::mounts_below(dir) {
                        overlay::unmount(&mount)?;
                    }
                    if overlay::mounts_below(dir).is_empty() {
                        fs_err::remove_dir_all(dir).map_err(fs_step("remove host dir"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Ok(())))
            .collect()
    });
    results.into_iter().collect()
}

/// Removes nspawn propagation dirs of the lab's machines.
pub(crate) fn remove_propagate_dirs(naming: Naming) -> Result<()> {
    for machine in network::list_dir(boot::NSPAWN_PROPAGATE_DIR, |n| naming.owns(n)) {
        let dir = Path::new(boot::NSPAWN_PROPAGATE_DIR).join(machine);
        fs_err::remove_dir_all(&dir).map_err(fs_step("remove nspawn propagation dir"))?;
    }
    Ok(())
}

/// Removes the lab directory, the state file last so a crash midway leaves it findable.
fn remove_lab_dir(dir: &Path) -> Result<()> {
    let step = format!("remove lab dir {}", dir.display());
    let Ok(entries) = fs_err::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == "state.json") {
            continue;
        }
        let res = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            fs_err::remove_dir_all(&path)
        } else {
            fs_err::remove_file(&path)
        };
        res.map_err(fs_step(step.clone()))?;
    }
    match fs_err::remove_file(dir.join("state.json")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fs_step(step)(e)),
        _ => {}
    }
    fs_err::remove_dir(dir).map_err(fs_step(step))
}
