//! Taking a node out of the cluster through the API: a server's etcd member removed through
//! K3s's member controller (annotation `etcd.k3s.cattle.io/remove=true`; K3s answers with
//! `etcd.k3s.cattle.io/removed-node-name` and does not delete the Node itself, k3s#13498), and
//! the Node deleted together with its `<node>.node-password.k3s` secret in kube-system, so that
//! a host of the same name can register again later.

use k8s_openapi::api::core::v1::Node;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

use super::error::{KubeError, status_code};
use super::etcd::{EtcdMember, etcd_members};
use super::node_password::delete_node_password;
use super::nodes::{NodeInfo, get_node};
use super::wait::{Poll, poll_until};

/// The annotation asking K3s's etcd member controller to remove a server's member.
pub const ETCD_REMOVE: &str = "etcd.k3s.cattle.io/remove";
/// The annotation K3s sets once it removed the member (its value is the member name).
pub const ETCD_REMOVED: &str = "etcd.k3s.cattle.io/removed-node-name";
/// The annotation with a server's member name.
pub const ETCD_MEMBER_NAME: &str = "etcd.k3s.cattle.io/node-name";

/// Pure: the members of `members` that belong to node `node`: named by its member-name
/// annotation, or `<node>-<8 hex>` (K3s's member names).
pub fn members_of<'m>(
    node: &str,
    member_name: Option<&str>,
    members: &'m [EtcdMember],
) -> Vec<&'m EtcdMember> {
    members
        .iter()
        .filter(|m| {
            member_name == Some(m.name.as_str())
                || m.name
                    .strip_prefix(node)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|hex| hex.len() == 8 && hex.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .collect()
}

/// What removing a server's etcd member found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberRemoval {
    /// K3s removed the member; the member list went from `before` to `after` entries.
    Removed {
        /// The member name K3s reported.
        member: String,
        /// Members before.
        before: usize,
        /// Members after.
        after: usize,
    },
    /// The member was already gone (an earlier run, or a hand removal).
    AlreadyGone,
}

/// Removes server `name`'s etcd member through K3s's member controller and waits until K3s
/// reports it (`removed-node-name`) and etcd's member list no longer has it.
pub async fn remove_etcd_member(
    client: &Client,
    name: &str,
    poll: Poll,
) -> Result<MemberRemoval, KubeError> {
    let node = get_node(client, name)
        .await?
        .ok_or_else(|| KubeError::NodeNotFound {
            node: name.to_owned(),
        })?;
    let member_name = node.annotations.get(ETCD_MEMBER_NAME).cloned();
    let before = etcd_members(client)
        .await?
        .ok_or_else(|| KubeError::Unexpected {
            what: "reading etcd's members (/db/info)".into(),
            detail: "the server did not answer it (no embedded etcd?)".into(),
        })?;
    let mine = members_of(name, member_name.as_deref(), &before).len();
    if mine == 0 {
        return Ok(MemberRemoval::AlreadyGone);
    }
    if node.annotations.get(ETCD_REMOVE).map(String::as_str) != Some("true") {
        let api: Api<Node> = Api::all(client.clone());
        let patch = json!({"metadata": {"annotations": {ETCD_REMOVE: "true"}}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| KubeError::api(format!("annotating node {name} {ETCD_REMOVE}=true"), e))?;
    }
    let what = format!(
        "K3s to remove node {name}'s etcd member ({ETCD_REMOVED} set and the member gone from \
         etcd's list)"
    );
    let before = before.len();
    poll_until(&what, poll, || {
        let member_name = member_name.clone();
        async move {
            let node = match get_node(client, name).await {
                Ok(Some(node)) => node,
                Ok(None) => {
                    return Err(KubeError::NodeNotFound {
                        node: name.to_owned(),
                    });
                }
                // A server whose member just left restarts its API; try again.
                Err(e) => return Ok(Err(e.to_string())),
            };
            let removed = node.annotations.get(ETCD_REMOVED).cloned();
            let members = match etcd_members(client).await {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(Err("etcd's member list not answered".into())),
                Err(e) => return Ok(Err(e.to_string())),
            };
            let left = members_of(name, member_name.as_deref(), &members).len();
            match removed {
                Some(member) if left == 0 && members.len() < before => {
                    Ok(Ok(MemberRemoval::Removed {
                        member,
                        before,
                        after: members.len(),
                    }))
                }
                _ => Ok(Err(format!(
                    "{ETCD_REMOVED}={}; etcd lists {} member(s): {}",
                    node.annotations
                        .get(ETCD_REMOVED)
                        .map_or("(not set)", String::as_str),
                    members.len(),
                    members
                        .iter()
                        .map(EtcdMember::describe)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
            }
        }
    })
    .await
}

/// What deleting a node did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeDeletion {
    /// The Node object existed and was deleted.
    pub node: bool,
    /// The node-password secret existed and was deleted (K3s usually deletes it with the Node).
    pub password: bool,
}

/// Deletes Node `name` (if it exists) and waits until it is gone, then deletes its
/// node-password secret if K3s has not already. The one deletion of a Node: `node remove`,
/// `node replace`, `reset --host` and a restore's stray Nodes all go through it.
pub async fn delete_node(
    client: &Client,
    name: &str,
    poll: Poll,
) -> Result<NodeDeletion, KubeError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = match nodes.delete(name, &DeleteParams::default()).await {
        Ok(_) => true,
        Err(e) if status_code(&e) == Some(404) => false,
        Err(e) => return Err(KubeError::api(format!("deleting node {name}"), e)),
    };
    if node {
        poll_until(&format!("node {name} to be deleted"), poll, || async {
            match get_node(client, name).await {
                Ok(None) => Ok(Ok(())),
                Ok(Some(n)) => Ok(Err(format!("still there ({})", describe(&n)))),
                Err(e) => Ok(Err(e.to_string())),
            }
        })
        .await?;
    }
    let password = delete_node_password(client, name).await?;
    Ok(NodeDeletion { node, password })
}

fn describe(node: &NodeInfo) -> String {
    if node.ready {
        "Ready".into()
    } else {
        "NotReady".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str) -> EtcdMember {
        EtcdMember {
            name: name.into(),
            peer_urls: vec![],
            is_learner: false,
        }
    }

    #[test]
    fn a_nodes_members_are_found_by_annotation_or_k3s_naming() {
        let members = [
            member("s1-1a2b3c4d"),
            member("s10-00000000"),
            member("s1-extra-12345678"),
            member("custom"),
        ];
        let names = |v: Vec<&EtcdMember>| v.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(members_of("s1", None, &members)), ["s1-1a2b3c4d"]);
        assert_eq!(
            names(members_of("s1", Some("custom"), &members)),
            ["s1-1a2b3c4d", "custom"]
        );
        assert!(members_of("s2", None, &members).is_empty());
    }
}
