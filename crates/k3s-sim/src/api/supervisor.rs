//! The k3s supervisor endpoints under /v1-k3s/ on :6443: authenticated with the join token (HTTP
//! basic auth, as k3s agents do) or a client certificate. Agents get their kubelet client
//! certificate here, after the node password check.

use base64::Engine;
use hyper::Response;
use hyper::header::HeaderMap;

use super::ApiState;
use crate::certs::LeafKind;
use crate::http::{Body, text_response};
use crate::store::ApiError;

/// Whether the Authorization header carries the server token (user `server`), which K3s
/// requires for what only servers may read (bootstrap data, etcd membership).
pub fn server_authenticated(state: &ApiState, headers: &HeaderMap) -> bool {
    basic_credentials(headers)
        .is_some_and(|(user, password)| user == "server" && password == state.server_password())
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let raw = headers.get("authorization")?.to_str().ok()?;
    let b64 = raw.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8_lossy(&decoded).to_string();
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Whether the Authorization header carries the join token's password (server or agent token).
pub fn token_authenticated(state: &ApiState, headers: &HeaderMap) -> bool {
    let Some(raw) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(b64) = raw.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
        return false;
    };
    let text = String::from_utf8_lossy(&decoded);
    let Some((user, password)) = text.split_once(':') else {
        return false;
    };
    let server_ok = matches!(user, "server" | "node") && password == state.server_password();
    let agent_ok = user == "node" && state.agent_password.as_deref() == Some(password);
    server_ok || agent_ok
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
}

/// `PUT /v1-k3s/token` (K3s `handlers.TokenRequest`): the new server token (`newToken`, or 16
/// random bytes in hex when empty) replaces the old one: bootstrap data re-keyed in the
/// datastore, `server/token` rewritten, and this server accepts only the new token from now on.
/// The other servers keep the old one until they are restarted with the new one.
pub fn rotate_token(state: &ApiState, body: &[u8]) -> Result<(), ApiError> {
    let request: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("reading the token request: {e}")))?;
    let new = match request["newToken"].as_str().map(str::trim) {
        Some(t) if !t.is_empty() => crate::token::parse(t).password,
        _ => crate::token::random_password(),
    };
    let server_dir = state
        .tls_dir
        .parent()
        .ok_or_else(|| ApiError::internal("server/tls has no parent directory"))?;
    crate::bootstrap::rotate(&state.store, server_dir, &state.ca_pem, &new)
        .map_err(|e| ApiError::internal(e.0))?;
    match state.server_password.write() {
        Ok(mut p) => *p = new,
        Err(e) => *e.into_inner() = new,
    }
    crate::log::info("Server token rotated; restart every node with the new token");
    Ok(())
}

/// Serves a /v1-k3s/ path for an authenticated caller.
pub fn handle(
    state: &ApiState,
    path: &str,
    headers: &HeaderMap,
    local: bool,
) -> Result<Response<Body>, ApiError> {
    match path {
        "/v1-k3s/readyz" => Ok(text_response(200, "ok")),
        "/v1-k3s/client-kubelet.crt" | "/v1-k3s/serving-kubelet.crt" => {
            let node = header(headers, "k3s-node-name")
                .ok_or_else(|| ApiError::bad_request("missing K3s-Node-Name header"))?;
            let password = header(headers, "k3s-node-password")
                .ok_or_else(|| ApiError::bad_request("missing K3s-Node-Password header"))?;
            crate::nodepass::verify_or_store(&state.store, node, password)?;
            let kind = if path.ends_with("client-kubelet.crt") {
                LeafKind::Client {
                    cn: format!("system:node:{node}"),
                    org: Some("system:nodes".into()),
                }
            } else {
                LeafKind::Serving(vec![
                    node.to_string(),
                    "localhost".into(),
                    "127.0.0.1".into(),
                ])
            };
            let ca = if path.ends_with("client-kubelet.crt") {
                &state.client_ca
            } else {
                &state.server_ca
            };
            let leaf =
                crate::certs::issue(ca, &kind).map_err(|e| ApiError::internal(e.to_string()))?;
            Ok(text_response(
                200,
                format!("{}{}", leaf.cert_pem, leaf.key_pem),
            ))
        }
        "/v1-k3s/config" => {
            let cfg = serde_json::json!({
                "version": state.version,
                "clusterDomain": "cluster.local",
                "CriticalControlArgs": state.critical,
            });
            Ok(crate::http::json_response(200, &cfg))
        }
        "/v1-k3s/server-bootstrap" => {
            if !server_authenticated(state, headers) {
                return Err(ApiError::unauthorized());
            }
            let data = crate::etcd::bootstrap::read(&state.tls_dir)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            Ok(crate::http::json_response(200, &data))
        }
        "/v1-k3s/apiservers" => {
            let list = match &state.etcd {
                Some(h) => h.api_addresses(),
                None => vec![state.advertise.clone()],
            };
            Ok(crate::http::json_response(200, &serde_json::json!(list)))
        }
        "/db/info" => {
            // K3s: local requests, or the server token.
            if !local && !server_authenticated(state, headers) {
                return Err(ApiError::unauthorized());
            }
            let Some(h) = &state.etcd else {
                return Err(ApiError::no_route());
            };
            let members = h
                .client
                .member_list()
                .map_err(|e| ApiError::internal(format!("failed to get etcd MemberList: {e}")))?;
            let list: Vec<serde_json::Value> = members.iter().map(|m| m.to_json()).collect();
            Ok(crate::http::json_response(
                200,
                &serde_json::json!({"members": list}),
            ))
        }
        _ => Err(ApiError::no_route()),
    }
}

/// Splits a `/v1-k3s/client-kubelet.crt` reply into certificate and key PEM.
pub fn split_cert_and_key(body: &str) -> Option<(String, String)> {
    let idx = body
        .find("-----BEGIN PRIVATE KEY-----")
        .or_else(|| body.find("-----BEGIN EC PRIVATE KEY-----"))?;
    Some((body[..idx].to_string(), body[idx..].to_string()))
}
