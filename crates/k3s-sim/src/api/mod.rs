//! The HTTPS API on :6443: health endpoints, /cacerts, /version, the k3s supervisor under
//! /v1-k3s/ and the Kubernetes API subset, all behind one request handler.

pub mod crud;
pub mod discovery;
pub mod eviction;
pub mod openapi;
pub mod patch;
pub mod request;
pub mod resources;
pub mod scale;
pub mod selectors;
pub mod supervisor;
pub mod table;
pub mod validate;
pub mod watch;

use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::Value;

use crate::certs::Ca;
use crate::http::server::Peer;
use crate::http::{Body, json_response, text_response};
use crate::store::{ApiError, ObjectStore};
use crate::tls::ClientAuth;
use request::{ApiPath, Target, parse_api_path, parse_query};

/// Everything a request handler needs.
pub struct ApiState {
    /// Cluster objects.
    pub store: Arc<ObjectStore>,
    /// The K3s version served in /version.
    pub version: String,
    /// The server CA PEM (served at /cacerts, hashed into the token).
    pub ca_pem: String,
    /// Verifies client certificates.
    pub client_auth: ClientAuth,
    /// Signs kubelet client certificates.
    pub client_ca: Arc<Ca>,
    /// Signs kubelet serving certificates.
    pub server_ca: Arc<Ca>,
    /// The server token's password (replaced by `k3s token rotate`).
    pub server_password: std::sync::RwLock<String>,
    /// The agent token's password, when `agent-token` is set.
    pub agent_password: Option<String>,
    /// `host:port` clients should use (discovery).
    pub advertise: String,
    /// `server/tls` (the bootstrap data served to joining servers).
    pub tls_dir: std::path::PathBuf,
    /// The embedded etcd member, when this server runs one.
    pub etcd: Option<Arc<crate::etcd::EtcdHandle>>,
    /// The critical configuration values joining servers must match.
    pub critical: serde_json::Value,
    /// Etcd snapshots of this server (with embedded etcd).
    pub snapshots: Option<Arc<crate::snapshot::local::Service>>,
}

impl ApiState {
    /// The server token's current password.
    pub fn server_password(&self) -> String {
        self.server_password
            .read()
            .map(|p| p.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }
}

const MAX_BODY: usize = 16 * 1024 * 1024;

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status())
}

/// Handles one request.
pub async fn handle(state: Arc<ApiState>, req: Request<Incoming>, peer: Peer) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let bytes = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return error_response(&ApiError::bad_request(format!("reading request body: {e}")));
        }
    };
    let path = parts.uri.path().to_string();
    let query = parse_query(parts.uri.query());
    match route(&state, &parts, &path, &query, &bytes, &peer) {
        Ok(resp) => resp,
        Err(e) => error_response(&e),
    }
}

fn route(
    state: &Arc<ApiState>,
    parts: &hyper::http::request::Parts,
    path: &str,
    query: &std::collections::HashMap<String, String>,
    body: &[u8],
    peer: &Peer,
) -> Result<Response<Body>, ApiError> {
    let get = parts.method == Method::GET;
    match path {
        "/cacerts" if get => return Ok(text_response(200, state.ca_pem.clone())),
        "/readyz" | "/healthz" if get => {
            // The API server's etcd check: a member without a leader (quorum lost) is not ready.
            if let Some(h) = &state.etcd
                && !h.has_leader()
            {
                return Ok(text_response(
                    500,
                    "[+]ping ok\n[-]etcd failed: reason withheld\nreadyz check failed\n",
                ));
            }
            return Ok(text_response(200, "ok"));
        }
        "/livez" if get => return Ok(text_response(200, "ok")),
        "/version" if get => {
            return Ok(json_response(200, &discovery::version_info(&state.version)));
        }
        _ => {}
    }
    let cert_identity = if peer.certs.is_empty() {
        None
    } else {
        state.client_auth.identify(&peer.certs).ok()
    };
    let local = peer.addr.ip().is_loopback();
    if path == "/db/snapshot" {
        // K3s: `k3s etcd-snapshot` authenticates with the server token (user `server`).
        if !supervisor::server_authenticated(state, &parts.headers) {
            return Err(ApiError::unauthorized());
        }
        if parts.method != Method::POST {
            return Err(ApiError::method_not_allowed("POST a snapshot request"));
        }
        return crate::snapshot::request::serve(state.snapshots.as_deref(), body)
            .map(|v| json_response(200, &v));
    }
    if path == "/v1-k3s/token" {
        // K3s: `k3s token rotate` authenticates with the server token and PUTs the new one.
        if !supervisor::server_authenticated(state, &parts.headers) {
            return Err(ApiError::unauthorized());
        }
        if parts.method != Method::PUT {
            return Err(ApiError::method_not_allowed("method not allowed"));
        }
        return supervisor::rotate_token(state, body).map(|()| text_response(200, ""));
    }
    if path.starts_with("/v1-k3s/") || path == "/db/info" {
        // K3s answers /db/info to local requests without credentials (IsLocalOrHasRole).
        let local_info = path == "/db/info" && local;
        if !local_info
            && cert_identity.is_none()
            && !supervisor::token_authenticated(state, &parts.headers)
        {
            return Err(ApiError::unauthorized());
        }
        return supervisor::handle(state, path, &parts.headers, local);
    }
    if cert_identity.is_none() {
        return Err(ApiError::unauthorized());
    }
    if path == "/openapi/v2" && get {
        let accept = parts
            .headers
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if openapi::wants_protobuf(accept) {
            let mut resp =
                Response::new(crate::http::body::full(openapi::protobuf(&state.version)));
            if let Ok(v) = hyper::header::HeaderValue::from_str(openapi::PROTOBUF_CONTENT_TYPE) {
                resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
            }
            return Ok(resp);
        }
        return Ok(json_response(200, &openapi::json(&state.version)));
    }
    if path == "/api" || path == "/api/" {
        return Ok(json_response(
            200,
            &discovery::core_versions(&state.advertise),
        ));
    }
    if path == "/apis" || path == "/apis/" {
        return Ok(json_response(200, &discovery::group_list()));
    }
    match parse_api_path(path) {
        Some(ApiPath::Discovery { group, version }) if get => {
            discovery::resource_list(&group, &version)
                .map(|v| json_response(200, &v))
                .ok_or_else(ApiError::no_route)
        }
        Some(ApiPath::Group(g)) if get => discovery::group(&g)
            .map(|v| json_response(200, &v))
            .ok_or_else(ApiError::no_route),
        Some(ApiPath::Resource(t)) => resource(state, parts, &t, query, body),
        _ => Err(ApiError::no_route()),
    }
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body)
        .or_else(|_| serde_saphyr::from_slice::<Value>(body))
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

fn patch_type(parts: &hyper::http::request::Parts) -> Result<patch::PatchType, ApiError> {
    let ct = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    patch::PatchType::from_content_type(ct).ok_or_else(|| {
        ApiError::unsupported_media(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct:?})"
        ))
    })
}

fn resource(
    state: &Arc<ApiState>,
    parts: &hyper::http::request::Parts,
    t: &Target,
    q: &std::collections::HashMap<String, String>,
    body: &[u8],
) -> Result<Response<Body>, ApiError> {
    let store = &state.store;
    let accept = parts
        .headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let as_table = table::wants_table(accept);
    let watching = matches!(q.get("watch").map(String::as_str), Some("true" | "1"));
    let one = |v: Value| -> Response<Body> {
        if as_table {
            let rv = v["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or("")
                .to_string();
            json_response(200, &table::table(t.rt.kind, &[v], &rv))
        } else {
            json_response(200, &v)
        }
    };
    match (&parts.method, t.name.as_deref(), t.sub.as_deref()) {
        (&Method::GET, _, _) if watching => watch::start(store.clone(), t, q, as_table),
        (&Method::GET, None, None) => {
            let (items, rv) = crud::list(store, t, q)?;
            if as_table {
                Ok(json_response(
                    200,
                    &table::table(t.rt.kind, &items, &rv.to_string()),
                ))
            } else {
                Ok(json_response(200, &crud::list_object(t, items, rv)))
            }
        }
        (&Method::GET, Some(name), Some("scale")) => {
            scale::get(store, t, name).map(|v| json_response(200, &v))
        }
        (&Method::PUT, Some(name), Some("scale")) => {
            scale::set(store, t, name, None, &parse_body(body)?).map(|v| json_response(200, &v))
        }
        (&Method::PATCH, Some(name), Some("scale")) => {
            let kind = patch_type(parts)?;
            scale::set(store, t, name, Some(kind), &parse_body(body)?)
                .map(|v| json_response(200, &v))
        }
        (&Method::GET, Some(name), _) => crud::get(store, t, name).map(one),
        (&Method::POST, None, None) => {
            crud::create(store, t, parse_body(body)?).map(|v| json_response(201, &v))
        }
        (&Method::POST, Some(name), Some("eviction")) => {
            let ns = t.namespace.as_deref().unwrap_or("default");
            let eviction = parse_body(body)?;
            crud::check_precondition(store, t, name, &eviction["deleteOptions"])?;
            eviction::evict(store, ns, name).map(|v| json_response(201, &v))
        }
        (&Method::PUT, Some(name), _) => {
            crud::update(store, t, name, parse_body(body)?).map(|v| json_response(200, &v))
        }
        (&Method::PATCH, Some(name), _) => {
            let kind = patch_type(parts)?;
            let doc = parse_body(body)?;
            match crud::patch(store, t, name, kind, &doc) {
                // Server-side apply creates missing objects.
                Err(e) if e.code == 404 && kind == patch::PatchType::Apply && t.sub.is_none() => {
                    crud::create(store, t, doc).map(|v| json_response(201, &v))
                }
                other => other.map(|v| json_response(200, &v)),
            }
        }
        (&Method::DELETE, Some(name), None) => {
            crud::check_precondition(store, t, name, &parse_body(body)?)?;
            crud::delete(store, t, name).map(|v| json_response(200, &v))
        }
        (&Method::DELETE, None, None) => {
            crud::delete_collection(store, t, q).map(|v| json_response(200, &v))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "{} is not supported on {}",
            parts.method,
            parts.uri.path()
        ))),
    }
}
