//! The embedded etcd of a running server, through etcd's JSON gateway on its loopback client
//! port with K3s's client certificate (`server/tls/etcd/client.crt`, as docs.k3s.io/advanced
//! shows for etcdctl): listing members, removing the stale member of a server that lost its
//! data so that it can join again (K3s refuses a join while a member of the same node name
//! exists: "duplicate node name found"), and moving leadership off a member about to leave.

use serde::Deserialize;

use super::service::QUICK;
use crate::host::{ExecRequest, Transport, shell};
use crate::plan::EtcdMember;

/// K3s's etcd TLS directory.
pub const ETCD_TLS_DIR: &str = concat!(crate::k3s::ports::server_dir!(), "/tls/etcd");
/// The local etcd client URL.
pub const ETCD_URL: &str = "https://127.0.0.1:2379";

/// A `curl` call of the gateway's `path` with `body`.
pub fn gateway_script(path: &str, body: &str) -> String {
    format!(
        "curl -sS --fail --max-time 10 --cacert {ETCD_TLS_DIR}/server-ca.crt \
         --cert {ETCD_TLS_DIR}/client.crt --key {ETCD_TLS_DIR}/client.key \
         -X POST -d {body} {ETCD_URL}{path}\n",
        body = shell::quote(body)
    )
}

#[derive(Deserialize)]
struct MemberList {
    #[serde(default)]
    members: Vec<GatewayMember>,
}

#[derive(Deserialize)]
struct GatewayMember {
    #[serde(rename = "ID")]
    id: serde_json::Value,
    #[serde(default)]
    name: String,
    #[serde(default, rename = "peerURLs")]
    peer_urls: Vec<String>,
    #[serde(default, rename = "isLearner")]
    is_learner: bool,
}

/// Parses the gateway's `/v3/cluster/member/list` answer.
pub fn parse_members(json: &str) -> Result<Vec<EtcdMember>, String> {
    let list: MemberList =
        serde_json::from_str(json).map_err(|e| format!("unexpected etcd member list: {e}"))?;
    Ok(list
        .members
        .into_iter()
        .map(|m| EtcdMember {
            id: match m.id {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            },
            name: m.name,
            peer_urls: m.peer_urls,
            learner: m.is_learner,
        })
        .collect())
}

/// Lists the members through `server`.
pub async fn list_members(server: &dyn Transport) -> Result<Vec<EtcdMember>, String> {
    let req = ExecRequest::new(gateway_script("/v3/cluster/member/list", "{}"))
        .sudo(true)
        .timeout(Some(QUICK))
        .describe("listing etcd members");
    let out = server.exec_checked(req).await.map_err(|e| e.to_string())?;
    parse_members(&out.stdout_text())
}

/// How long a member removal keeps trying: right after a server crashed, etcd may still be
/// electing a new leader, and a removal sent then hangs until the election ends.
const REMOVE_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes member `id` through `server`. A removal that fails is retried (within
/// [`REMOVE_WINDOW`]) after checking the member list, so a member already gone counts as removed.
pub async fn remove_member(server: &dyn Transport, id: &str) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + REMOVE_WINDOW;
    loop {
        let err = match remove_once(server, id).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if let Ok(members) = list_members(server).await
            && !members.iter().any(|m| m.id == id)
        {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(err);
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

async fn remove_once(server: &dyn Transport, id: &str) -> Result<(), String> {
    let body = format!("{{\"ID\":\"{id}\"}}");
    let req = ExecRequest::new(gateway_script("/v3/cluster/member/remove", &body))
        .sudo(true)
        .timeout(Some(QUICK))
        .describe(format!("removing etcd member {id}"));
    server
        .exec_checked(req)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// What a member says about itself (`/v3/maintenance/status`): its own id and the leader's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalStatus {
    /// The answering member's id.
    pub member_id: String,
    /// The current leader's id (`0` while there is none).
    pub leader: String,
}

impl LocalStatus {
    /// Whether the answering member leads the cluster.
    pub fn is_leader(&self) -> bool {
        self.leader != "0" && self.leader == self.member_id
    }
}

/// A uint64 as the gateway writes it (a string), or as a JSON number.
fn id_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses the gateway's `/v3/maintenance/status` answer.
pub fn parse_status(json: &str) -> Result<LocalStatus, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("unexpected etcd status: {e}"))?;
    let member_id = id_text(&v["header"]["member_id"])
        .ok_or_else(|| "etcd status has no header.member_id".to_string())?;
    // A cluster without a leader omits the (zero) field.
    let leader = id_text(&v["leader"]).unwrap_or_else(|| "0".to_owned());
    Ok(LocalStatus { member_id, leader })
}

/// Asks the member behind `server`'s loopback client port about itself.
pub async fn local_status(server: &dyn Transport) -> Result<LocalStatus, String> {
    let req = ExecRequest::new(gateway_script("/v3/maintenance/status", "{}"))
        .sudo(true)
        .timeout(Some(QUICK))
        .describe("reading etcd's status");
    let out = server.exec_checked(req).await.map_err(|e| e.to_string())?;
    parse_status(&out.stdout_text())
}

/// The voter that should take over leadership from `leaving`: a started voting member other
/// than it (the last such in etcd's list).
pub fn successor<'a>(members: &'a [EtcdMember], leaving: &str) -> Option<&'a EtcdMember> {
    members
        .iter()
        .rev()
        .find(|m| m.id != leaving && !m.learner && !m.name.is_empty())
}

/// What [`hand_over_leadership`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandOver {
    /// The member behind the server did not lead: nothing to do.
    NotLeader,
    /// Leadership moved to the named member.
    MovedTo(String),
}

/// Moves etcd leadership off the member behind `server` when it leads, before that member is
/// removed: removing the leader itself leaves the others without one until an election timeout
/// passes, and every request in between fails (cluster-api-k3s forwards leadership before a
/// deletion for the same reason). `MoveLeader` is answered once the transfer is done; the status
/// is read again to be sure.
pub async fn hand_over_leadership(server: &dyn Transport) -> Result<HandOver, String> {
    let status = local_status(server).await?;
    if !status.is_leader() {
        return Ok(HandOver::NotLeader);
    }
    let members = list_members(server).await?;
    let to = successor(&members, &status.member_id)
        .ok_or_else(|| "no other voting member to lead the cluster".to_string())?;
    let body = format!("{{\"targetID\":\"{}\"}}", to.id);
    let req = ExecRequest::new(gateway_script("/v3/maintenance/transfer-leadership", &body))
        .sudo(true)
        .timeout(Some(QUICK))
        .describe(format!("moving etcd leadership to {}", to.name));
    let moved = server.exec_checked(req).await.map_err(|e| e.to_string());
    let after = local_status(server).await?;
    if after.is_leader() {
        return Err(moved
            .err()
            .unwrap_or_else(|| format!("it still leads after handing leadership to {}", to.name)));
    }
    Ok(HandOver::MovedTo(to.name.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_gateway_answer_with_string_and_number_ids() {
        let json = r#"{"header":{"cluster_id":"1"},"members":[
            {"ID":"11668910455930574372","name":"s1-1a2b3c4d","peerURLs":["https://10.0.0.1:2380"],"clientURLs":["https://10.0.0.1:2379"]},
            {"ID":42,"peerURLs":["https://10.0.0.2:2380"],"isLearner":true}]}"#;
        let members = parse_members(json).expect("parses");
        assert_eq!(members[0].id, "11668910455930574372");
        assert!(members[0].is_of_node("s1") && !members[0].is_of_node("s"));
        assert!(!members[0].learner);
        assert_eq!((members[1].id.as_str(), members[1].learner), ("42", true));
        assert!(parse_members("curl: (7) refused").is_err());
    }

    #[test]
    fn member_names_match_their_node_only() {
        let member = |name: &str| EtcdMember {
            id: "1".into(),
            name: name.into(),
            peer_urls: vec![],
            learner: false,
        };
        assert!(member("k3s-1-0badc0de").is_of_node("k3s-1"));
        assert!(!member("k3s-10-0badc0de").is_of_node("k3s-1"));
        assert!(!member("k3s-1-xyz").is_of_node("k3s-1"));
    }

    #[test]
    fn the_script_uses_k3s_client_certificates_and_quotes_the_body() {
        let script = gateway_script("/v3/cluster/member/remove", "{\"ID\":\"7\"}");
        assert!(script.contains("--cert /var/lib/rancher/k3s/server/tls/etcd/client.crt"));
        assert!(script.contains("'{\"ID\":\"7\"}'"), "{script}");
    }

    #[test]
    fn the_status_names_the_member_and_its_leader() {
        let leading = r#"{"header":{"cluster_id":"9","member_id":"77","revision":"5"},"version":"3.4.23","leader":"77"}"#;
        let status = parse_status(leading).expect("parses");
        assert!(status.is_leader());
        let following = parse_status(r#"{"header":{"member_id":"77"},"leader":"12"}"#).unwrap();
        assert!(!following.is_leader());
        let electing = parse_status(r#"{"header":{"member_id":"77"}}"#).unwrap();
        assert_eq!(electing.leader, "0");
        assert!(!electing.is_leader());
        assert!(parse_status(r#"{"leader":"1"}"#).is_err());
        assert!(parse_status("curl: (7) refused").is_err());
    }

    #[test]
    fn leadership_goes_to_the_newest_started_voter() {
        let member = |id: &str, name: &str, learner: bool| EtcdMember {
            id: id.into(),
            name: name.into(),
            peer_urls: vec![],
            learner,
        };
        let members = vec![
            member("1", "s1-aa", false),
            member("2", "s2-bb", false),
            member("3", "s3-cc", false),
            member("4", "s4-dd", true),
            member("5", "", false),
        ];
        assert_eq!(successor(&members, "1").map(|m| m.id.as_str()), Some("3"));
        assert_eq!(successor(&members, "3").map(|m| m.id.as_str()), Some("2"));
        assert!(successor(&members[..1], "1").is_none());
    }
}
