//! The joining server's side of the supervisor protocol: `/cacerts` checked against the token's
//! CA hash, then with the server token `/v1-k3s/server-bootstrap` (CAs), `/v1-k3s/config`
//! (critical configuration values) and `/db/info` (etcd members).

use serde_json::Value;

use super::client::Member;
use crate::fatal::Fatal;
use crate::http::client::{Client, Trust};
use crate::token::Token;

/// A server to join, with its CA verified.
#[derive(Debug, Clone)]
pub struct JoinSource {
    /// `https://host:port`.
    pub url: String,
    /// The cluster's server CA (PEM).
    pub ca_pem: String,
    password: String,
}

/// Fetches the CA of `url` until it answers, checking it against the token's hash.
pub async fn connect(url: &str, token: &Token) -> Result<JoinSource, Fatal> {
    let insecure = Client::new(url, &Trust::Insecure, None).map_err(|e| Fatal(e.to_string()))?;
    loop {
        match insecure.request("GET", "/cacerts", &[], None).await {
            Ok(r) if r.status == 200 => {
                let pem = r.text();
                crate::token::verify_ca(token, &pem)
                    .map_err(|e| Fatal(format!("starting kubernetes: preparing server: {e}")))?;
                return Ok(JoinSource {
                    url: url.to_string(),
                    ca_pem: pem,
                    password: token.password.clone(),
                });
            }
            Ok(r) => crate::log::info(format!(
                "Waiting to join the cluster: {url}/cacerts: {} {}",
                r.status,
                r.text().trim()
            )),
            Err(e) => crate::log::info(format!("Waiting to join the cluster: {e}")),
        }
        tokio::time::sleep(crate::knobs::retry()).await;
    }
}

impl JoinSource {
    /// GETs a supervisor path with the server token, retrying while the server is unreachable.
    async fn get(&self, path: &str) -> Result<Value, Fatal> {
        let client = Client::new(&self.url, &Trust::Ca(self.ca_pem.clone()), None)
            .map_err(|e| Fatal(e.to_string()))?
            .with_basic_auth("server", &self.password);
        loop {
            match client.request("GET", path, &[], None).await {
                Ok(r) if r.status == 200 => {
                    return serde_json::from_slice(&r.body)
                        .map_err(|e| Fatal(format!("{}{path}: invalid response: {e}", self.url)));
                }
                Ok(r) if r.status == 401 => {
                    return Err(Fatal(format!(
                        "starting kubernetes: preparing server: failed to validate token: {}{path}: 401 Unauthorized",
                        self.url
                    )));
                }
                Ok(r) => crate::log::info(format!(
                    "Waiting to join the cluster: {}{path}: {} {}",
                    self.url,
                    r.status,
                    r.text().trim()
                )),
                Err(e) => crate::log::info(format!("Waiting to join the cluster: {e}")),
            }
            tokio::time::sleep(crate::knobs::retry()).await;
        }
    }

    /// The bootstrap data (CAs).
    pub async fn bootstrap(&self) -> Result<Value, Fatal> {
        self.get("/v1-k3s/server-bootstrap").await
    }

    /// The server's critical configuration values.
    pub async fn critical_args(&self) -> Result<Value, Fatal> {
        Ok(self.get("/v1-k3s/config").await?["CriticalControlArgs"].clone())
    }

    /// The etcd member list (`/db/info`).
    pub async fn members(&self) -> Result<Vec<Member>, Fatal> {
        let v = self.get("/db/info").await?;
        Ok(v["members"]
            .as_array()
            .map(|a| a.iter().filter_map(Member::from_json).collect())
            .unwrap_or_default())
    }

    /// Creates (or refreshes the conditions of) this server's Node through the server joined,
    /// with a client certificate: K3s's kubelet registers while etcd is still a learner.
    pub async fn announce(&self, node: &Value, cert: &str, key: &str) -> Result<(), String> {
        let client = Client::new(
            &self.url,
            &Trust::Ca(self.ca_pem.clone()),
            Some((cert, key)),
        )
        .map_err(|e| e.to_string())?;
        let name = node["metadata"]["name"].as_str().unwrap_or("");
        let path = format!("/api/v1/nodes/{name}");
        let existing = client
            .request("GET", &path, &[], None)
            .await
            .map_err(|e| e.to_string())?;
        let r = if existing.status == 404 {
            client
                .request(
                    "POST",
                    "/api/v1/nodes",
                    &[],
                    Some(("application/json", node.to_string().into_bytes())),
                )
                .await
        } else {
            let patch = serde_json::json!({"status": {"conditions": node["status"]["conditions"]}});
            client
                .request(
                    "PATCH",
                    &format!("{path}/status"),
                    &[],
                    Some((
                        "application/merge-patch+json",
                        patch.to_string().into_bytes(),
                    )),
                )
                .await
        }
        .map_err(|e| e.to_string())?;
        if r.status >= 300 {
            return Err(format!("{} {}", r.status, r.text().trim()));
        }
        Ok(())
    }
}
