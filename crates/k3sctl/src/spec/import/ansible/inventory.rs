//! The parts of an Ansible inventory k3sctl reads: groups (hosts, child groups, vars) and host
//! vars, with Ansible's variable precedence (all < parent groups < child groups < host).

use std::collections::{BTreeMap, BTreeSet};

/// Variables, values as text.
pub type Vars = BTreeMap<String, String>;

/// One inventory group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    /// Hosts listed directly in the group, in file order.
    pub hosts: Vec<String>,
    /// Child group names.
    pub children: Vec<String>,
    /// Group variables.
    pub vars: Vars,
}

/// A parsed inventory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Groups by name (`all` holds inventory-wide vars).
    pub groups: BTreeMap<String, Group>,
    /// Host variables by host, hosts in first-appearance order.
    pub hosts: Vec<(String, Vars)>,
}

/// Why an inventory could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct InventoryError {
    /// Line of the problem (1-based; 0 when unknown).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl Inventory {
    /// Records `host` as a member of `group` and merges `vars` into its host vars.
    pub(super) fn add_host(&mut self, group: &str, host: &str, vars: Vars) {
        let members = &mut self.groups.entry(group.to_owned()).or_default().hosts;
        if !members.iter().any(|member| member == host) {
            members.push(host.to_owned());
        }
        match self.hosts.iter_mut().find(|(name, _)| name == host) {
            Some((_, existing)) => existing.extend(vars),
            None => self.hosts.push((host.to_owned(), vars)),
        }
    }

    /// Every host of `group`, including those of its descendants, in first-appearance order.
    pub fn members(&self, group: &str) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        self.collect_members(group, &mut seen, &mut out);
        let order = |host: &String| self.hosts.iter().position(|(name, _)| name == host);
        out.sort_by_key(order);
        out
    }

    fn collect_members(&self, group: &str, seen: &mut BTreeSet<String>, out: &mut Vec<String>) {
        if !seen.insert(group.to_owned()) {
            return; // a cycle in :children
        }
        let Some(entry) = self.groups.get(group) else {
            return;
        };
        for host in &entry.hosts {
            if !out.contains(host) {
                out.push(host.clone());
            }
        }
        for child in &entry.children {
            self.collect_members(child, seen, out);
        }
    }

    /// Groups `host` belongs to, directly or through children, ordered from the most general
    /// (ancestors) to the most specific, `all` first.
    pub fn groups_of(&self, host: &str) -> Vec<String> {
        let mut found: Vec<(usize, String)> = self
            .groups
            .keys()
            .filter(|group| self.members(group).iter().any(|member| member == host))
            .map(|group| (self.depth(group, &mut BTreeSet::new()), group.clone()))
            .collect();
        found.sort();
        let mut names: Vec<String> = found.into_iter().map(|(_, name)| name).collect();
        names.retain(|name| name != "all");
        names.insert(0, "all".to_owned());
        names
    }

    /// How many ancestors `group` has along its longest parent chain.
    fn depth(&self, group: &str, seen: &mut BTreeSet<String>) -> usize {
        if !seen.insert(group.to_owned()) {
            return 0;
        }
        self.groups
            .iter()
            .filter(|(_, parent)| parent.children.iter().any(|child| child == group))
            .map(|(name, _)| 1 + self.depth(name, seen))
            .max()
            .unwrap_or(0)
    }

    /// The effective variables of `host`: group vars from general to specific, then host vars.
    pub fn vars_of(&self, host: &str) -> Vars {
        let mut vars = Vars::new();
        for group in self.groups_of(host) {
            if let Some(entry) = self.groups.get(&group) {
                vars.extend(entry.vars.clone());
            }
        }
        if let Some((_, own)) = self.hosts.iter().find(|(name, _)| name == host) {
            vars.extend(own.clone());
        }
        vars
    }
}
