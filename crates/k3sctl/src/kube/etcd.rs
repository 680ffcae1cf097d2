//! Embedded etcd's own view of its members, as K3s serves it on the supervisor port:
//! `GET /db/info` (answered for local requests, which is what a request through the SSH tunnel to
//! a server's 127.0.0.1:6443 is) → `{"members": [{"ID", "name", "peerURLs", "clientURLs",
//! "isLearner"}]}` (k3s `pkg/etcd/etcd.go` `infoHandler`).

use kube::Client;

use super::error::KubeError;

/// One etcd member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdMember {
    /// Member name (`<node name>-<suffix>` on K3s; empty for a learner that never started).
    pub name: String,
    /// Peer URLs.
    pub peer_urls: Vec<String>,
    /// A non-voting member still catching up.
    pub is_learner: bool,
}

impl EtcdMember {
    /// `hau-1-1a2b3c4d (voter) https://10.0.0.1:2380`.
    pub fn describe(&self) -> String {
        let name = if self.name.is_empty() {
            "(unnamed: never started)"
        } else {
            &self.name
        };
        format!(
            "{name} ({}) {}",
            if self.is_learner { "learner" } else { "voter" },
            self.peer_urls.join(",")
        )
    }
}

/// Pure: the members in a `/db/info` answer.
pub fn parse_db_info(text: &str) -> Result<Vec<EtcdMember>, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("/db/info is not JSON: {e}"))?;
    let members = v["members"]
        .as_array()
        .ok_or_else(|| "/db/info has no members list".to_string())?;
    Ok(members
        .iter()
        .map(|m| EtcdMember {
            name: m["name"].as_str().unwrap_or_default().to_string(),
            peer_urls: m["peerURLs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|u| u.as_str().map(str::to_string))
                .collect(),
            is_learner: m["isLearner"].as_bool().unwrap_or(false),
        })
        .collect())
}

/// etcd's member list from the server the client is connected to; `None` when that server does
/// not answer it (no embedded etcd, or a K3s that does not serve it to this caller).
pub async fn etcd_members(client: &Client) -> Result<Option<Vec<EtcdMember>>, KubeError> {
    let request = http::Request::get("/db/info")
        .body(Vec::new())
        .map_err(|e| KubeError::api("building the /db/info request", kube::Error::HttpError(e)))?;
    match client.request_text(request).await {
        Ok(body) => parse_db_info(&body)
            .map(Some)
            .map_err(|detail| KubeError::Unexpected {
                what: "reading etcd's members (/db/info)".into(),
                detail,
            }),
        Err(kube::Error::Api(_)) => Ok(None),
        Err(e) => Err(KubeError::api("reading etcd's members (/db/info)", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_member_list() {
        let members = parse_db_info(
            r#"{"members":[{"ID":1,"name":"s1-1a2b","peerURLs":["https://10.0.0.1:2380"],
                "clientURLs":["https://10.0.0.1:2379"]},
               {"ID":"2","peerURLs":["https://10.9.9.9:2380"],"isLearner":true}]}"#,
        )
        .expect("parses");
        assert_eq!(members.len(), 2);
        assert!(!members[0].is_learner);
        assert_eq!(
            members[0].describe(),
            "s1-1a2b (voter) https://10.0.0.1:2380"
        );
        assert_eq!(
            members[1].describe(),
            "(unnamed: never started) (learner) https://10.9.9.9:2380"
        );
        assert!(parse_db_info("{}").is_err());
        assert!(parse_db_info("nope").is_err());
    }
}
