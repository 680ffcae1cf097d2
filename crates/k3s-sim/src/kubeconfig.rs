//! The admin kubeconfig k3s writes to /etc/rancher/k3s/k3s.yaml: cluster, user and context all
//! named `default`, the server CA and the admin client certificate embedded.

use base64::Engine;
use serde_json::json;

/// Renders the kubeconfig YAML.
pub fn render(server_url: &str, ca_pem: &str, cert_pem: &str, key_pem: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let doc = json!({
        "apiVersion": "v1",
        "clusters": [{"cluster": {"certificate-authority-data": b64(ca_pem), "server": server_url}, "name": "default"}],
        "contexts": [{"context": {"cluster": "default", "user": "default"}, "name": "default"}],
        "current-context": "default",
        "kind": "Config",
        "preferences": {},
        "users": [{"name": "default", "user": {"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)}}],
    });
    serde_saphyr::to_string(&doc).unwrap_or_else(|_| doc.to_string())
}

/// Parses `write-kubeconfig-mode` (octal like `0644` or `644`).
pub fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| {
            format!("invalid write-kubeconfig-mode {s:?}: expected an octal mode such as 0644")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_default_and_yaml_parses() {
        let y = render("https://127.0.0.1:6443", "CA", "CERT", "KEY");
        let v: serde_json::Value = serde_saphyr::from_str(&y).expect("yaml");
        assert_eq!(v["clusters"][0]["name"], "default");
        assert_eq!(v["contexts"][0]["context"]["user"], "default");
        assert_eq!(v["current-context"], "default");
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443"
        );
        assert_eq!(parse_mode("0644"), Ok(0o644));
        assert_eq!(parse_mode("644"), Ok(0o644));
        assert!(parse_mode("999").is_err());
    }
}
