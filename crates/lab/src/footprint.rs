//! Everything a lab has on the machine right now, read from the system (not from the state
//! file), so tests and `status` can show that teardown really removed it all.

use std::path::{Path, PathBuf};

use crate::boot;
use crate::context::Ctx;
use crate::network;
use crate::overlay;

/// The lab's objects on the machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Processes in the lab's cgroups (nspawn and everything inside the hosts).
    pub processes: Vec<u32>,
    /// Mount points below the lab dir.
    pub mounts: Vec<PathBuf>,
    /// Network namespaces.
    pub netns: Vec<String>,
    /// Links in the root namespace (bridges, outer veths).
    pub links: Vec<String>,
    /// cgroup directories in every tree.
    pub cgroup_dirs: Vec<PathBuf>,
    /// systemd-nspawn lock files and propagation dirs.
    pub nspawn_files: Vec<PathBuf>,
    /// The lab's state directory.
    pub lab_dir: Option<PathBuf>,
}

impl Footprint {
    pub(crate) fn of(ctx: &Ctx) -> Self {
        let naming = ctx.state.naming();
        let mut processes: Vec<u32> = ctx
            .state
            .hosts
            .iter()
            .flat_map(|h| ctx.cg.pids(&ctx.state.name, &h.name))
            .collect();
        processes.sort_unstable();
        let mut nspawn_files: Vec<PathBuf> = ctx
            .state
            .hosts
            .iter()
            .filter_map(|h| fs_err::read_to_string(ctx.paths.nspawn_lock_record(&h.name)).ok())
            .map(|l| PathBuf::from(l.trim()))
            .filter(|p| p.exists())
            .collect();
        nspawn_files.extend(
            network::list_dir(boot::NSPAWN_PROPAGATE_DIR, |n| naming.owns(n))
                .into_iter()
                .map(|n| Path::new(boot::NSPAWN_PROPAGATE_DIR).join(n)),
        );
        Self {
            processes,
            mounts: overlay::mounts_below(&ctx.paths.dir),
            netns: network::own_netns(naming),
            links: network::own_links(naming),
            cgroup_dirs: ctx.cg.lab_cgroup_dirs(&ctx.state.name),
            nspawn_files,
            lab_dir: ctx.paths.dir.exists().then(|| ctx.paths.dir.clone()),
        }
    }

    /// Which of these objects still exist, one line each; empty when all are gone.
    pub fn remaining(&self) -> Vec<String> {
        let mut left = Vec::new();
        left.extend(
            self.processes
                .iter()
                .filter(|p| crate::process::alive(**p))
                .map(|p| {
                    format!(
                        "process {p}: {}",
                        crate::process::cmdline(*p).unwrap_or_default()
                    )
                }),
        );
        let mounted = overlay::mounts_below(Path::new("/"));
        left.extend(
            self.mounts
                .iter()
                .filter(|m| mounted.contains(m))
                .map(|m| format!("mount {}", m.display())),
        );
        left.extend(
            self.netns
                .iter()
                .filter(|n| network::netns_exists(n))
                .map(|n| format!("network namespace {n}")),
        );
        left.extend(
            self.links
                .iter()
                .filter(|l| network::link_exists(l))
                .map(|l| format!("link {l}")),
        );
        let paths = self
            .cgroup_dirs
            .iter()
            .map(|d| ("cgroup", d))
            .chain(self.nspawn_files.iter().map(|f| ("nspawn file", f)))
            .chain(self.lab_dir.iter().map(|d| ("lab dir", d)));
        left.extend(
            paths
                .filter(|(_, p)| p.exists())
                .map(|(kind, p)| format!("{kind} {}", p.display())),
        );
        left
    }

    /// Whether every kind of object was seen (a fully booted lab has all of them).
    pub fn has_every_kind(&self) -> bool {
        !self.processes.is_empty()
            && !self.mounts.is_empty()
            && !self.netns.is_empty()
            && !self.links.is_empty()
            && !self.cgroup_dirs.is_empty()
            && !self.nspawn_files.is_empty()
            && self.lab_dir.is_some()
    }
}
