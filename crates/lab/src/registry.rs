//! The set of labs on this machine: allocating a free lab index under a lock, listing labs,
//! and sweeping labs whose owning process died (crashed tests) or that were half removed.

use std::path::Path;

use crate::cgroup::Hierarchies;
use crate::cleanup;
use crate::context::Ctx;
use crate::error::{LabError, Result};
use crate::lock::FileLock;
use crate::naming::{self, MAX_INDEX, Naming};
use crate::network;
use crate::paths::{self, STATE_ROOT};
use crate::state::LabState;

/// Names of every lab directory under the state root.
pub fn lab_names() -> Vec<String> {
    network::list_dir(STATE_ROOT, |n| !n.starts_with('.'))
        .into_iter()
        .filter(|n| Path::new(STATE_ROOT).join(n).is_dir())
        .collect()
}

/// States of every lab that has a readable state file.
pub fn all_labs() -> Vec<LabState> {
    lab_names()
        .iter()
        .filter_map(|n| LabState::load(n).ok())
        .collect()
}

/// Registers a new lab: removes any earlier lab of that name and orphans, picks the lowest
/// free index, removes leftovers carrying that index, then writes the state file (and from
/// then on, cleanup can find everything the lab creates).
pub(crate) fn register(mut state: LabState) -> Result<LabState> {
    let _lock = FileLock::acquire(&paths::registry_lock(), "lab registry")?;
    if let Ok(old) = LabState::load(&state.name) {
        if old
            .owner
            .is_some_and(|o| o.alive() && o.pid != std::process::id())
        {
            return Err(LabError::Invalid {
                what: format!(
                    "lab {} is in use by process {}",
                    state.name,
                    old.owner.map_or(0, |o| o.pid)
                ),
                hint: "pick another name or stop that process".into(),
            });
        }
        cleanup::teardown(&Ctx::new(old))?;
    }
    sweep_orphans_locked()?;
    let used: Vec<u8> = all_labs().iter().map(|l| l.index).collect();
    let index = (0..=MAX_INDEX)
        .find(|i| !used.contains(i))
        .ok_or_else(|| LabError::Invalid {
            what: format!("all {} lab slots are in use", u16::from(MAX_INDEX) + 1),
            hint: "remove labs with `k3sctl-lab down --all`".into(),
        })?;
    let naming = Naming { index };
    network::remove_all(naming)?;
    cleanup::remove_propagate_dirs(naming)?;
    state.index = index;
    state.save()?;
    Ok(state)
}

/// Removes labs whose owner process is gone and remains of half-removed labs.
pub fn sweep_orphans() -> Result<Vec<String>> {
    let _lock = FileLock::acquire(&paths::registry_lock(), "lab registry")?;
    sweep_orphans_locked()
}

fn sweep_orphans_locked() -> Result<Vec<String>> {
    let cg = Hierarchies::detect();
    let mut removed = Vec::new();
    for name in lab_names() {
        match LabState::load(&name) {
            Ok(state) if state.owner.is_some_and(|o| !o.alive()) => {
                cleanup::teardown(&Ctx::new(state))?;
                removed.push(name);
            }
            Ok(_) => {}
            Err(LabError::NoSuchLab { .. } | LabError::BadState { .. }) => {
                cleanup::teardown_unknown(&cg, &name)?;
                removed.push(name);
            }
            Err(e) => return Err(e),
        }
    }
    // cgroups of labs that have no directory at all any more.
    let known = lab_names();
    for name in cg.labs_with_cgroups() {
        if !known.contains(&name) && naming::validate_lab_name(&name).is_ok() {
            cleanup::teardown_unknown(&cg, &name)?;
            removed.push(name);
        }
    }
    Ok(removed)
}

/// Removes every lab and every object carrying the lab prefix (`k3sctl-lab down --all`).
pub fn remove_all_labs() -> Result<Vec<String>> {
    let _lock = FileLock::acquire(&paths::registry_lock(), "lab registry")?;
    let mut removed = Vec::new();
    for name in lab_names() {
        match LabState::load(&name) {
            Ok(state) => cleanup::teardown(&Ctx::new(state))?,
            Err(_) => cleanup::teardown_unknown(&Hierarchies::detect(), &name)?,
        }
        removed.push(name);
    }
    sweep_orphans_locked()?;
    for index in 0..=MAX_INDEX {
        let naming = Naming { index };
        network::remove_all(naming)?;
        cleanup::remove_propagate_dirs(naming)?;
    }
    Hierarchies::detect().remove_root_if_unused();
    Ok(removed)
}
