//! Fault injection on one host: graceful stop, start, crash (every process killed at once),
//! lose (crash + silent network), partition from peers, heal, and cable cut/uncut.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::context::Ctx;
use crate::error::{LabError, Result};
use crate::lock::FileLock;
use crate::partition;
use crate::readiness::Readiness;
use crate::state::{HostState, LabState};

/// Time a graceful stop may take before the host is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Time killed processes get to vanish.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// Runs `change` on a fresh copy of the state under the lab lock and saves it.
fn with_state(ctx: &mut Ctx, change: impl FnOnce(&mut Ctx) -> Result<()>) -> Result<()> {
    let _lock = FileLock::acquire(&ctx.paths.lock(), &format!("lab {}", ctx.state.name))?;
    ctx.state = LabState::load(&ctx.state.name)?;
    change(ctx)?;
    ctx.save()
}

fn host(ctx: &Ctx, name: &str) -> Result<HostState> {
    ctx.state.host(name).cloned()
}

/// Powers the host off cleanly (like `poweroff`), killing it if it does not stop in time.
pub(crate) fn stop(ctx: &mut Ctx, name: &str) -> Result<()> {
    let h = host(ctx, name)?;
    let target = ctx.boot_target(&h);
    if !target.stop_gracefully(STOP_GRACE) {
        ctx.cg.kill(&ctx.state.name, name, KILL_WAIT)?;
    }
    crate::cgroup::wait_empty(&ctx.cg, &ctx.state.name, name, KILL_WAIT)
}

/// Boots a stopped, crashed or lost host and waits until it is ready. A lost host gets its
/// network back; a cut cable stays cut.
pub(crate) fn start(ctx: &mut Ctx, name: &str, timeout: Duration, until: Readiness) -> Result<()> {
    with_state(ctx, |ctx| {
        ctx.state.host_mut(name)?.lost = false;
        Ok(())
    })?;
    let h = host(ctx, name)?;
    ctx.apply_links(&h)?;
    let target = ctx.boot_target(&h);
    if target.running_pid().is_some() {
        return Ok(());
    }
    // A crash can leave processes behind only if the kill was interrupted; be sure.
    ctx.cg.kill(&ctx.state.name, name, KILL_WAIT)?;
    ctx.boot_and_wait(std::slice::from_ref(&h), timeout, until)
        .map(drop)
}

/// Kills every process of the host at once, like pulling the power.
pub(crate) fn crash(ctx: &mut Ctx, name: &str) -> Result<()> {
    host(ctx, name)?;
    ctx.cg.kill(&ctx.state.name, name, KILL_WAIT)
}

/// Crashes the host and silences its network: connections hang until they time out.
pub(crate) fn lose(ctx: &mut Ctx, name: &str) -> Result<()> {
    crash(ctx, name)?;
    with_state(ctx, |ctx| {
        ctx.state.host_mut(name)?.lost = true;
        let h = host(ctx, name)?;
        ctx.apply_links(&h)
    })
}

/// Pulls (`cut = true`) or plugs back (`false`) every cable of the host.
pub(crate) fn set_cut(ctx: &mut Ctx, name: &str, cut: bool) -> Result<()> {
    with_state(ctx, |ctx| {
        ctx.state.host_mut(name)?.cut = cut;
        let h = host(ctx, name)?;
        ctx.apply_links(&h)
    })
}

/// Makes `name` drop all traffic from and to `peers` (both directions), adding to earlier ones.
pub(crate) fn partition(ctx: &mut Ctx, name: &str, peers: &[String]) -> Result<()> {
    if peers.is_empty() {
        return Err(LabError::Invalid {
            what: format!("partition of {name} needs at least one peer"),
            hint: "name peers with --from PEER...".into(),
        });
    }
    with_state(ctx, |ctx| {
        for p in peers {
            if p == name {
                return Err(LabError::Invalid {
                    what: format!("cannot partition {name} from itself"),
                    hint: "name other hosts of the lab with --from".into(),
                });
            }
            ctx.state.host(p)?;
        }
        let h = ctx.state.host_mut(name)?;
        h.partitioned_from.extend(peers.iter().cloned());
        let h = host(ctx, name)?;
        apply_partition(ctx, &h)
    })
}

/// Removes partitions of `name`, or of every host when `None`.
pub(crate) fn heal(ctx: &mut Ctx, name: Option<&str>) -> Result<()> {
    with_state(ctx, |ctx| {
        let names: Vec<String> = match name {
            Some(n) => vec![ctx.state.host(n)?.name.clone()],
            None => ctx.state.hosts.iter().map(|h| h.name.clone()).collect(),
        };
        for n in names {
            ctx.state.host_mut(&n)?.partitioned_from = BTreeSet::new();
            let h = host(ctx, &n)?;
            apply_partition(ctx, &h)?;
        }
        Ok(())
    })
}

fn apply_partition(ctx: &Ctx, h: &HostState) -> Result<()> {
    let mut peers: Vec<Ipv4Addr> = Vec::new();
    for p in &h.partitioned_from {
        peers.extend(ctx.state.addresses(ctx.state.host(p)?));
    }
    let netns = ctx.state.naming().machine(h.number);
    let script = ctx.paths.host_dir(&h.name).join("partition.nft");
    partition::apply(&h.name, &netns, &peers, &script)
}
