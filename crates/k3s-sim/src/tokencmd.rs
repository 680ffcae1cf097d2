//! `k3s token rotate`, as K3s's `pkg/cli/token` does it: a warning to keep the old token (older
//! snapshots need it), then `PUT /v1-k3s/token` with `{"newToken": ...}` to the server
//! (`--server`, default `https://127.0.0.1:6443`), authenticated with the current server token
//! (`--token`/`K3S_TOKEN`, else `<data-dir>/server/token`) after checking the server's CA against
//! the token's hash. The server re-keys the bootstrap data and writes the new `server/token`;
//! every node must then be restarted with the new token.

use serde_json::Value;

use crate::fatal::Fatal;
use crate::flags::FlagError;
use crate::http::client::{Client, Trust};
use crate::paths::DataDir;

/// Options of `k3s token rotate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotateOptions {
    /// `--data-dir`.
    pub data_dir: String,
    /// `--server` / `K3S_URL`.
    pub server: String,
    /// `--token` / `-t` / `K3S_TOKEN`: the current token.
    pub token: Option<String>,
    /// `--new-token`: empty means the server generates one.
    pub new_token: String,
}

/// Parses the flags of `k3s token rotate` (environment: `K3S_URL`, `K3S_TOKEN`).
pub fn parse(args: &[String]) -> Result<RotateOptions, FlagError> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut o = RotateOptions {
        data_dir: crate::paths::DEFAULT_DATA_DIR.to_string(),
        server: env("K3S_URL").unwrap_or_else(|| "https://127.0.0.1:6443".into()),
        token: env("K3S_TOKEN"),
        new_token: String::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if !arg.starts_with('-') {
            return Err(FlagError::Positional(arg.clone(), "token rotate"));
        }
        let body = arg.trim_start_matches('-');
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        match name {
            "debug" => continue,
            "data-dir" | "d" | "server" | "s" | "token" | "t" | "new-token" | "kubeconfig" => {}
            other => return Err(FlagError::Undefined(other.to_string())),
        }
        let value = match inline {
            Some(v) => v,
            None => {
                let v = args
                    .get(i)
                    .cloned()
                    .ok_or_else(|| FlagError::MissingValue(name.to_string()))?;
                i += 1;
                v
            }
        };
        match name {
            "data-dir" | "d" => o.data_dir = value,
            "server" | "s" => o.server = value,
            "token" | "t" => o.token = Some(value),
            "new-token" => o.new_token = value,
            _ => {}
        }
    }
    Ok(o)
}

/// Pure: the request body K3s sends (`newToken` always present, empty to let the server pick).
pub fn request_body(new_token: &str) -> Vec<u8> {
    serde_json::json!({ "newToken": new_token })
        .to_string()
        .into_bytes()
}

/// Runs `k3s token rotate`.
pub async fn rotate(o: RotateOptions) -> Result<(), Fatal> {
    println!(
        "\u{1b}[33mWARNING\u{1b}[0m: Recommended to keep a record of the old token. If restoring from a snapshot, you must use the token associated with that snapshot."
    );
    let dd = DataDir::new(&o.data_dir);
    let raw = match &o.token {
        Some(t) => t.clone(),
        None => fs_err::read_to_string(dd.token())
            .map_err(|e| Fatal(format!("open {}: {e}", dd.token().display())))?,
    };
    let token = crate::token::parse(raw.trim());
    // clientaccess.ParseAndValidateToken: the CA from /cacerts, checked against the token.
    let insecure =
        Client::new(&o.server, &Trust::Insecure, None).map_err(|e| Fatal(e.to_string()))?;
    let cacerts = insecure
        .request("GET", "/cacerts", &[], None)
        .await
        .map_err(|e| Fatal(e.to_string()))?;
    let ca_pem = cacerts.text();
    crate::token::verify_ca(&token, &ca_pem).map_err(Fatal)?;
    let client = Client::new(&o.server, &Trust::Ca(ca_pem), None)
        .map_err(|e| Fatal(e.to_string()))?
        .with_basic_auth("server", &token.password);
    let reply = client
        .request(
            "PUT",
            "/v1-k3s/token",
            &[],
            Some(("application/json", request_body(&o.new_token))),
        )
        .await
        .map_err(|e| Fatal(e.to_string()))?;
    if reply.status != 200 {
        let msg = serde_json::from_slice::<Value>(&reply.body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| reply.text());
        let url = format!("{}/v1-k3s/token", o.server.trim_end_matches('/'));
        return Err(Fatal(format!("{url}: {} {msg}", reply.status)));
    }
    // K3s waits for the datastore to propagate the change.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    println!("Token rotated, restart k3s nodes with new token");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_body() {
        let args: Vec<String> = [
            "--new-token=abc",
            "-t",
            "K10x::server:pw",
            "--server",
            "https://s:6443",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let o = parse(&args).expect("parse");
        assert_eq!(o.new_token, "abc");
        assert_eq!(o.token.as_deref(), Some("K10x::server:pw"));
        assert_eq!(o.server, "https://s:6443");
        assert!(parse(&["--bogus".to_string()]).is_err());
        assert!(parse(&["--new-token".to_string()]).is_err());
        let v: Value = serde_json::from_slice(&request_body("")).expect("json");
        assert_eq!(v, serde_json::json!({"newToken": ""}));
    }
}
