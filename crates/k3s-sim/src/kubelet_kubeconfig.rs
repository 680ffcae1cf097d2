//! `agent/kubelet.kubeconfig`, the kubelet's own credentials K3s keeps under the data dir on
//! every node (servers run an agent too): the server CA, the node's `client-kubelet`
//! certificate (CN `system:node:<name>`, O `system:nodes`) and the API address. Node-local tools
//! (the stand-in's `crictl` and `ctr`) read it to learn which node they are on and how to reach
//! the API. K3s points agents at its local load balancer (127.0.0.1:6444); the stand-in has none
//! and writes the server URL the agent joined.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::certs::{Ca, LeafKind};
use crate::paths::{DataDir, write_atomic};

/// The file below the data dir.
pub fn path(dd: &DataDir) -> PathBuf {
    dd.agent().join("kubelet.kubeconfig")
}

/// Renders the kubeconfig, referring to the certificate files by path as K3s does.
pub fn render(server_url: &str, ca: &Path, cert: &Path, key: &Path) -> String {
    let doc = json!({
        "apiVersion": "v1",
        "clusters": [{"cluster": {"certificate-authority": ca.display().to_string(), "server": server_url}, "name": "local"}],
        "contexts": [{"context": {"cluster": "local", "namespace": "default", "user": "user"}, "name": "Default"}],
        "current-context": "Default",
        "kind": "Config",
        "preferences": {},
        "users": [{"name": "user", "user": {"client-certificate": cert.display().to_string(), "client-key": key.display().to_string()}}],
    });
    serde_saphyr::to_string(&doc).unwrap_or_else(|_| doc.to_string())
}

/// Writes `agent/kubelet.kubeconfig` for certificate files already in `agent/`.
pub fn write(dd: &DataDir, server_url: &str) -> std::io::Result<()> {
    let agent = dd.agent();
    let text = render(
        server_url,
        &agent.join("server-ca.crt"),
        &agent.join("client-kubelet.crt"),
        &agent.join("client-kubelet.key"),
    );
    write_atomic(&path(dd), text.as_bytes(), 0o600)
}

/// A server's own kubelet credentials: issues its `client-kubelet` certificate from the client
/// CA (as the supervisor does for agents), stores the server CA beside it and writes
/// `agent/kubelet.kubeconfig` pointing at `server_url`.
pub fn write_for_server(
    dd: &DataDir,
    client_ca: &Ca,
    server_ca_pem: &str,
    node_name: &str,
    server_url: &str,
) -> Result<(), String> {
    let leaf = crate::certs::issue(
        client_ca,
        &LeafKind::Client {
            cn: format!("system:node:{node_name}"),
            org: Some("system:nodes".into()),
        },
    )
    .map_err(|e| e.to_string())?;
    let agent = dd.agent();
    for (file, text, mode) in [
        ("server-ca.crt", server_ca_pem, 0o644),
        ("client-kubelet.crt", leaf.cert_pem.as_str(), 0o644),
        ("client-kubelet.key", leaf.key_pem.as_str(), 0o600),
    ] {
        let p = agent.join(file);
        write_atomic(&p, text.as_bytes(), mode).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    write(dd, server_url).map_err(|e| format!("{}: {e}", path(dd).display()))
}

/// The node name in a kubelet client certificate's subject (`CN=system:node:<name>, ...`).
pub fn node_from_subject(subject: &str) -> Option<String> {
    subject
        .split(',')
        .map(str::trim)
        .find_map(|part| part.strip_prefix("CN=system:node:"))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_references_and_reads_node_names() {
        let y = render(
            "https://10.0.0.1:6443",
            Path::new("/d/agent/server-ca.crt"),
            Path::new("/d/agent/client-kubelet.crt"),
            Path::new("/d/agent/client-kubelet.key"),
        );
        let v: serde_json::Value = serde_saphyr::from_str(&y).expect("yaml");
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "https://10.0.0.1:6443"
        );
        assert_eq!(
            v["users"][0]["user"]["client-key"],
            "/d/agent/client-kubelet.key"
        );
        assert_eq!(
            node_from_subject("CN=system:node:a-1, O=system:nodes").as_deref(),
            Some("a-1")
        );
        assert_eq!(node_from_subject("CN=system:admin, O=system:masters"), None);
    }
}
