//! The embedded etcd of a running server, through etcd's JSON gateway on its loopback client
//! port with K3s's client certificate (`server/tls/etcd/client.crt`, as docs.k3s.io/advanced
//! shows for etcdctl): listing members, and removing the stale member of a server that lost its
//! data so that it can join again (K3s refuses a join while a member of the same node name
//! exists: "duplicate node name found").

use serde::Deserialize;

use super::service::QUICK;
use crate::host::{ExecRequest, Transport, shell};
use crate::plan::EtcdMember;

/// K3s's etcd TLS directory.
pub const ETCD_TLS_DIR: &str = "/var/lib/rancher/k3s/server/tls/etcd";
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
}
