//! `k3s agent`: validate the token against the server CA, get a kubelet client certificate from
//! the supervisor (node password check), register the Node, then post status heartbeats. While the
//! server is unreachable the agent logs and retries; a wrong token ends the process (non-zero exit,
//! systemd restarts it).

use std::time::Duration;

use serde_json::{Value, json};

use crate::fatal::Fatal;
use crate::flags::Role;
use crate::http::balancer::Balancer;
use crate::http::client::{Client, Trust};
use crate::paths::{DataDir, host_path};
use crate::settings::Settings;
use crate::token::Token;

/// Runs the agent until SIGTERM/SIGINT.
pub async fn run(s: Settings) -> Result<(), Fatal> {
    let version = crate::version::current().to_string();
    crate::log::info(format!(
        "Starting k3s agent {version} ({})",
        crate::version::commit_for(&version)
    ));
    for k in &s.ignored_keys {
        crate::log::warn(format!("Unknown flag --{k} found in config.yaml, skipping"));
    }
    let server = s
        .str("server")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Fatal("--server is required".into()))?
        .to_string();
    let raw_token = crate::bootstrap::given_token(&s, "token", "token-file")?
        .ok_or_else(|| Fatal("--token is required".into()))?;
    let token = crate::token::parse(&raw_token);
    let dd = DataDir::new(s.data_dir());
    let node_name = s.node_name();
    let (host, _) =
        crate::http::client::parse_server_url(&server).map_err(|e| Fatal(e.to_string()))?;
    let node_ip = crate::netinfo::node_ip(&s, Some(&format!("{host}:6443")))?;

    // Servers learned before (agent/etc/k3s-agent-load-balancer.json) are tried too, so an agent
    // restarted while its --server is down still starts, as K3s's load balancer allows.
    let lb_file = dd.agent().join("etc").join("k3s-agent-load-balancer.json");
    let urls = crate::http::balancer::startup_urls(&server, &lb_file);
    let (ca_pem, reached) = fetch_ca(&urls, &token).await?;
    validate_password(&reached, &ca_pem, &token).await?;
    let pw_path = host_path(crate::paths::NODE_PASSWORD);
    let node_password = crate::nodepass::ensure_password_file(&pw_path)
        .map_err(|e| Fatal(format!("{}: {e}", pw_path.display())))?;
    let (cert, key) = kubelet_cert(&reached, &ca_pem, &token, &node_name, &node_password).await;
    for (file, text, mode) in [
        ("server-ca.crt", &ca_pem, 0o644),
        ("client-kubelet.crt", &cert, 0o644),
        ("client-kubelet.key", &key, 0o600),
    ] {
        let p = dd.agent().join(file);
        crate::paths::write_atomic(&p, text.as_bytes(), mode)
            .map_err(|e| Fatal(format!("{}: {e}", p.display())))?;
    }
    let kc = crate::kubelet_kubeconfig::path(&dd);
    crate::kubelet_kubeconfig::write(&dd, &server)
        .map_err(|e| Fatal(format!("{}: {e}", kc.display())))?;
    crate::registries::apply(&s, &dd)?;
    let api = crate::http::balancer::Balancer::new(
        &server,
        ca_pem.clone(),
        cert.clone(),
        key.clone(),
        lb_file,
    )
    .map_err(|e| Fatal(e.to_string()))?;
    api.refresh().await;
    let info = crate::netinfo::node_info(&s, Role::Agent, &version, &node_name, &node_ip);
    register(&api, &info).await;
    crate::notify::ready();
    crate::log::info(format!(
        "k3s agent is up and running; node {node_name} registered with {server}"
    ));
    let api = std::sync::Arc::new(api);
    tokio::spawn(crate::certmonitor::run(
        crate::certmonitor::Sink::Remote(api.clone()),
        dd.clone(),
        node_name.clone(),
        false,
    ));
    tokio::select! {
        _ = heartbeats(api, node_name) => {}
        _ = crate::signals::wait_for_shutdown() => {}
    }
    crate::log::info("Shutting down k3s agent");
    Ok(())
}

/// Fetches /cacerts until a server answers (trying `urls` in turn); checks it against the
/// token's CA hash. Returns the CA and the URL that answered.
async fn fetch_ca(urls: &[String], token: &Token) -> Result<(String, String), Fatal> {
    let mut attempt = 0usize;
    loop {
        let server = urls[attempt % urls.len()].as_str();
        attempt += 1;
        let client =
            Client::new(server, &Trust::Insecure, None).map_err(|e| Fatal(e.to_string()))?;
        match client.request("GET", "/cacerts", &[], None).await {
            Ok(r) if r.status == 200 => {
                let pem = r.text();
                crate::token::verify_ca(token, &pem).map_err(|e| Fatal(format!("Error: {e}")))?;
                return Ok((pem, server.to_string()));
            }
            Ok(r) => crate::log::error(format!(
                "failed to get CA certs: https://{}/cacerts: {} {}",
                server.trim_start_matches("https://"),
                r.status,
                r.text().trim()
            )),
            Err(e) => crate::log::error(format!("failed to get CA certs: {e}")),
        }
        tokio::time::sleep(crate::knobs::retry()).await;
    }
}

/// Checks the token's password against the supervisor; a 401 ends the agent.
async fn validate_password(server: &str, ca_pem: &str, token: &Token) -> Result<(), Fatal> {
    let client = Client::new(server, &Trust::Ca(ca_pem.to_string()), None)
        .map_err(|e| Fatal(e.to_string()))?
        .with_basic_auth("node", &token.password);
    loop {
        match client.request("GET", "/v1-k3s/readyz", &[], None).await {
            Ok(r) if r.status == 200 => return Ok(()),
            Ok(r) if r.status == 401 => {
                return Err(Fatal(format!(
                    "Error: failed to validate token: {server}/v1-k3s/readyz: 401 Unauthorized"
                )));
            }
            Ok(r) => crate::log::info(format!(
                "Waiting to retrieve agent configuration; server is not ready: {} {}",
                r.status,
                r.text().trim()
            )),
            Err(e) => crate::log::info(format!(
                "Waiting to retrieve agent configuration; server is not ready: {e}"
            )),
        }
        tokio::time::sleep(crate::knobs::retry()).await;
    }
}

/// Gets the kubelet client certificate, retrying (with k3s's log line) while refused.
async fn kubelet_cert(
    server: &str,
    ca_pem: &str,
    token: &Token,
    node: &str,
    password: &str,
) -> (String, String) {
    loop {
        let attempt = async {
            let client = Client::new(server, &Trust::Ca(ca_pem.to_string()), None)
                .map_err(|e| e.to_string())?
                .with_basic_auth("node", &token.password);
            let r = client
                .request(
                    "GET",
                    "/v1-k3s/client-kubelet.crt",
                    &[("k3s-node-name", node), ("k3s-node-password", password)],
                    None,
                )
                .await
                .map_err(|e| e.to_string())?;
            if r.status != 200 {
                let msg = serde_json::from_slice::<Value>(&r.body)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_string))
                    .unwrap_or_else(|| r.text());
                return Err(msg);
            }
            crate::api::supervisor::split_cert_and_key(&r.text())
                .ok_or_else(|| "malformed certificate response".to_string())
        };
        match attempt.await {
            Ok(pair) => return pair,
            Err(e) => crate::log::info(format!(
                "Waiting to retrieve agent configuration; server is not ready: {e}"
            )),
        }
        tokio::time::sleep(crate::knobs::retry().max(Duration::from_secs(1))).await;
    }
}

async fn register(api: &Balancer, info: &crate::node::NodeInfo) {
    let path = format!("/api/v1/nodes/{}", info.name);
    loop {
        let result = async {
            let existing = api
                .request("GET", &path, &[], None)
                .await
                .map_err(|e| e.to_string())?;
            match existing.status {
                404 => {
                    let node = crate::node::new_node(info)?;
                    let r = api
                        .request(
                            "POST",
                            "/api/v1/nodes",
                            &[],
                            Some(("application/json", node.to_string().into_bytes())),
                        )
                        .await
                        .map_err(|e| e.to_string())?;
                    if r.status == 201 {
                        Ok(())
                    } else {
                        Err(format!("creating node: {} {}", r.status, r.text()))
                    }
                }
                200 => {
                    let mut node: Value =
                        serde_json::from_slice(&existing.body).map_err(|e| e.to_string())?;
                    crate::node::refresh(&mut node, info);
                    let meta = json!({"metadata": {"labels": node["metadata"]["labels"], "annotations": node["metadata"]["annotations"]}});
                    let status = json!({"status": node["status"]});
                    for (p, body) in [(path.clone(), meta), (format!("{path}/status"), status)] {
                        let r = api
                            .request(
                                "PATCH",
                                &p,
                                &[],
                                Some((
                                    "application/merge-patch+json",
                                    body.to_string().into_bytes(),
                                )),
                            )
                            .await
                            .map_err(|e| e.to_string())?;
                        if r.status != 200 {
                            return Err(format!("updating node: {} {}", r.status, r.text()));
                        }
                    }
                    Ok(())
                }
                code => Err(format!("reading node: {code} {}", existing.text())),
            }
        };
        match result.await {
            Ok(()) => return,
            Err(e) => crate::log::error(format!(
                "Unable to register node {} with API server: {e}",
                info.name
            )),
        }
        tokio::time::sleep(crate::knobs::retry()).await;
    }
}

/// Renews the node Lease (PATCH, or POST when it does not exist yet).
async fn renew_lease(api: &Balancer, name: &str) {
    let lease = crate::node::lease(name, crate::knobs::node_grace().as_secs());
    let coll = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
    let body = serde_json::json!({"spec": lease["spec"]})
        .to_string()
        .into_bytes();
    let renewed = api
        .request(
            "PATCH",
            &format!("{coll}/{name}"),
            &[],
            Some(("application/merge-patch+json", body)),
        )
        .await;
    if let Ok(r) = &renewed
        && r.status == 404
        && let Err(e) = api
            .request(
                "POST",
                coll,
                &[],
                Some(("application/json", lease.to_string().into_bytes())),
            )
            .await
    {
        crate::log::error(format!("Failed to create lease for node {name}: {e}"));
    }
}

/// Posts node status and renews the Lease right away (as a starting kubelet does, so a fresh
/// Ready heartbeat follows the start at once), then every `K3S_SIM_HEARTBEAT`.
async fn heartbeats(api: std::sync::Arc<Balancer>, name: String) {
    let path = format!("/api/v1/nodes/{name}/status");
    let mut since: Option<String> = None;
    let mut last_refresh = std::time::Instant::now();
    let mut first = true;
    loop {
        if !first {
            tokio::time::sleep(crate::knobs::heartbeat()).await;
        }
        first = false;
        if last_refresh.elapsed() >= Duration::from_secs(30) {
            api.refresh().await;
            last_refresh = std::time::Instant::now();
        }
        let now = crate::clock::now_rfc3339();
        let conditions = crate::node::healthy_conditions(&now, since.as_deref().unwrap_or(&now));
        let body = json!({"status": {"conditions": conditions}});
        match api
            .request(
                "PATCH",
                &path,
                &[],
                Some((
                    "application/strategic-merge-patch+json",
                    body.to_string().into_bytes(),
                )),
            )
            .await
        {
            Ok(r) if r.status == 200 => {
                since.get_or_insert(now);
                renew_lease(&api, &name).await;
            }
            Ok(r) if r.status == 404 => crate::log::error(format!(
                "Error updating node status: nodes \"{name}\" not found"
            )),
            Ok(r) => crate::log::error(format!(
                "Error updating node status: {} {}",
                r.status,
                r.text().trim()
            )),
            Err(e) => {
                since = None;
                crate::log::error(format!("Error updating node status, will retry: {e}"));
            }
        }
    }
}
