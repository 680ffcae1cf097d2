//! The supervisor's `/db/snapshot` (K3s: a `SnapshotRequest` POSTed by `k3s etcd-snapshot` with
//! the server token): `{"operation": "save"|"list"|"delete"|"prune", "name": [...], "dir": ...,
//! "retention": N}`, answered with JSON the CLI renders.

use serde_json::{Value, json};

use super::local::{Service, SnapshotError};
use super::names;
use crate::store::ApiError;

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Take a snapshot with this name prefix.
    Save {
        /// Name prefix (`--name`).
        prefix: String,
        /// Directory (`--dir`), else the server's.
        dir: Option<String>,
    },
    /// List snapshots.
    List {
        /// Directory (`--dir`), else the server's.
        dir: Option<String>,
    },
    /// Delete these snapshots.
    Delete {
        /// Snapshot names.
        names: Vec<String>,
        /// Directory (`--dir`), else the server's.
        dir: Option<String>,
    },
    /// Keep the newest `retention` snapshots of this prefix.
    Prune {
        /// Name prefix (`--name`).
        prefix: String,
        /// How many to keep.
        retention: usize,
        /// Directory (`--dir`), else the server's.
        dir: Option<String>,
    },
}

fn first_name(v: &Value) -> String {
    v["name"][0]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or(names::ON_DEMAND)
        .to_string()
}

/// Parses a request body.
pub fn parse(body: &[u8]) -> Result<Request, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid snapshot request: {e}"))?;
    let dir = v["dir"]
        .as_str()
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    match v["operation"].as_str().unwrap_or("") {
        "save" => Ok(Request::Save {
            prefix: first_name(&v),
            dir,
        }),
        "list" => Ok(Request::List { dir }),
        "delete" => {
            let names: Vec<String> = v["name"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect();
            if names.is_empty() {
                return Err("no snapshots given for removal".into());
            }
            Ok(Request::Delete { names, dir })
        }
        "prune" => Ok(Request::Prune {
            prefix: first_name(&v),
            retention: v["retention"]
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(5),
            dir,
        }),
        other => Err(format!("unsupported snapshot operation {other:?}")),
    }
}

fn api(e: SnapshotError) -> ApiError {
    match e {
        SnapshotError::Learner => ApiError::bad_request(e.to_string()),
        other => ApiError::internal(other.to_string()),
    }
}

/// Runs a request on this server (None: the server runs no embedded etcd).
pub fn serve(svc: Option<&Service>, body: &[u8]) -> Result<Value, ApiError> {
    let Some(svc) = svc else {
        return Err(ApiError::bad_request(
            "etcd datastore disabled: this server does not run embedded etcd (start it with --cluster-init or --server to use etcd snapshots)",
        ));
    };
    match parse(body).map_err(ApiError::bad_request)? {
        Request::Save { prefix, dir } => {
            let f = svc.save(&prefix, &svc.dir(dir.as_deref())).map_err(api)?;
            Ok(names::list(vec![names::object(&f, &svc.node)]))
        }
        Request::List { dir } => Ok(names::list(
            svc.objects(&svc.dir(dir.as_deref())).map_err(api)?,
        )),
        Request::Delete { names, dir } => {
            let (deleted, missing) = svc.delete(&names, &svc.dir(dir.as_deref())).map_err(api)?;
            Ok(json!({"deleted": deleted, "missing": missing}))
        }
        Request::Prune {
            prefix,
            retention,
            dir,
        } => {
            let gone = svc
                .prune(&prefix, retention, &svc.dir(dir.as_deref()))
                .map_err(api)?;
            Ok(json!({"pruned": gone}))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_with_k3s_defaults() {
        assert_eq!(
            parse(br#"{"operation":"save"}"#),
            Ok(Request::Save {
                prefix: "on-demand".into(),
                dir: None
            })
        );
        assert_eq!(
            parse(br#"{"operation":"prune","name":["etcd-snapshot"],"retention":2,"dir":"/x"}"#),
            Ok(Request::Prune {
                prefix: "etcd-snapshot".into(),
                retention: 2,
                dir: Some("/x".into())
            })
        );
        assert!(parse(br#"{"operation":"delete","name":[]}"#).is_err());
        assert!(parse(br#"{"operation":"restore"}"#).is_err());
        assert!(parse(b"nope").is_err());
        assert!(
            serve(None, br#"{"operation":"list"}"#)
                .expect_err("no etcd")
                .message
                .contains("etcd datastore disabled")
        );
    }
}
