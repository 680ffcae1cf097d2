//! Which steps of a plan disrupt what already runs, so that `apply` asks before them: a
//! restart of K3s, a datastore conversion (the API is down on that node), the removal of an
//! etcd member, a `NoExecute` taint (it evicts pods). Installing, starting and joining new
//! nodes, writing files without a restart and waits disrupt nothing.

use std::collections::BTreeSet;
use std::fmt;

use super::step::{Plan, Step};

/// One disruptive step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disruption {
    /// The host it happens on.
    pub host: String,
    /// What happens, e.g. "restart k3s (config.yaml changed)".
    pub what: String,
}

impl fmt::Display for Disruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.host, self.what)
    }
}

/// How many distinct hosts the disruptions touch.
pub fn hosts_disrupted(disruptions: &[Disruption]) -> usize {
    disruptions
        .iter()
        .map(|d| d.host.as_str())
        .collect::<BTreeSet<_>>()
        .len()
}

impl Plan {
    /// One entry per disruptive step, in plan order; empty when nothing that runs is
    /// disturbed.
    pub fn disruptions(&self) -> Vec<Disruption> {
        let mut lines = Vec::new();
        for host in &self.hosts {
            let unit = crate::k3s::unit::unit_name(host.role);
            for step in &host.steps {
                let what = match step {
                    Step::Restart { reason } => Some(format!("restart {unit} ({reason})")),
                    Step::ConvertDatastore { .. } => Some(format!(
                        "stop {unit} and convert its datastore to embedded etcd (its API is \
                         down meanwhile)"
                    )),
                    Step::RemoveEtcdMember { member, .. } => {
                        Some(format!("remove the etcd member {member} it left behind"))
                    }
                    Step::EnforceTaints { add, .. } => {
                        let evicting: Vec<&str> = add
                            .iter()
                            .filter(|t| t.ends_with(":NoExecute"))
                            .map(String::as_str)
                            .collect();
                        (!evicting.is_empty()).then(|| {
                            format!(
                                "taint {} (evicts the pods that do not tolerate it)",
                                evicting.join(", ")
                            )
                        })
                    }
                    _ => None,
                };
                if let Some(what) = what {
                    lines.push(Disruption {
                        host: host.host.clone(),
                        what,
                    });
                }
            }
        }
        lines
    }
}
