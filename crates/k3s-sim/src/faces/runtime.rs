//! `crictl` and `ctr` (as `k3s crictl|ctr` or through the install script's links): the stand-in
//! runs no containerd, so their version and list commands answer from the pods the API places on
//! this node. The node and the way to the API come from the kubelet's own credentials,
//! `<data-dir>/agent/kubelet.kubeconfig` (see [`crate::kubelet_kubeconfig`]).

use serde_json::Value;
use time::OffsetDateTime;

use crate::faces::runtime_view as view;
use crate::flags::Role;
use crate::http::client::{Client, Trust};
use crate::paths::DataDir;

/// crictl's commands the stand-in answers.
pub const CRICTL_COMMANDS: &[&str] = &["version", "ps", "pods", "images", "img"];
/// ctr's commands the stand-in answers.
pub const CTR_COMMANDS: &[&str] = &["version", "containers", "c", "images", "i"];
/// The containerd namespace K3s's `ctr` uses by default (Kubernetes' containers live there).
pub const K8S_NAMESPACE: &str = "k8s.io";
/// crictl's version, as K3s bundles it.
pub const CRICTL_VERSION: &str = "v1.33.0-k3s1";

/// Errors answering a crictl/ctr command.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The command line is not understood.
    #[error("{0}")]
    Usage(String),
    /// The node's kubelet credentials cannot be used.
    #[error(
        "{path}: {detail}; is k3s running on this node? (crictl and ctr of the K3s stand-in read the kubelet's credentials)"
    )]
    Credentials {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The API did not answer.
    #[error("listing the pods of node {node} at {server}: {detail}")]
    Api {
        /// This node.
        node: String,
        /// The API address.
        server: String,
        /// What went wrong.
        detail: String,
    },
}

/// The pods the API places on this node, and the node's name.
pub struct NodePods {
    /// This node.
    pub node: String,
    /// Its pods.
    pub pods: Vec<Value>,
}

fn data_dir() -> DataDir {
    // K3s finds the data dir from the config file (or the default) before running crictl/ctr.
    let dir = crate::settings::resolve(Role::Server, &[])
        .map(|s| s.data_dir().to_string())
        .unwrap_or_else(|_| crate::paths::DEFAULT_DATA_DIR.to_string());
    DataDir::new(&dir)
}

fn cred_err(path: &std::path::Path, detail: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Credentials {
        path: path.display().to_string(),
        detail: detail.to_string(),
    }
}

/// Reads the kubelet kubeconfig and lists this node's pods through the API.
pub fn node_pods() -> Result<NodePods, RuntimeError> {
    let dd = data_dir();
    let kc = crate::kubelet_kubeconfig::path(&dd);
    let text = fs_err::read_to_string(&kc).map_err(|e| cred_err(&kc, e))?;
    let doc: Value = serde_saphyr::from_str(&text).map_err(|e| cred_err(&kc, e))?;
    let field = |v: &Value, what: &str| {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| cred_err(&kc, format!("no {what}")))
    };
    let server = field(&doc["clusters"][0]["cluster"]["server"], "server")?;
    let read = |v: &Value, what: &str| -> Result<String, RuntimeError> {
        let p = std::path::PathBuf::from(field(v, what)?);
        fs_err::read_to_string(&p).map_err(|e| cred_err(&p, e))
    };
    let ca = read(
        &doc["clusters"][0]["cluster"]["certificate-authority"],
        "certificate-authority",
    )?;
    let cert = read(
        &doc["users"][0]["user"]["client-certificate"],
        "client-certificate",
    )?;
    let key = read(&doc["users"][0]["user"]["client-key"], "client-key")?;
    let node = crate::certs::inspect(&cert)
        .and_then(|(_, subject, _)| crate::kubelet_kubeconfig::node_from_subject(&subject))
        .ok_or_else(|| cred_err(&kc, "the client certificate names no node"))?;
    let api_err = |detail: String| RuntimeError::Api {
        node: node.clone(),
        server: server.clone(),
        detail,
    };
    let client = Client::new(&server, &Trust::Ca(ca), Some((&cert, &key)))
        .map_err(|e| api_err(e.to_string()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| api_err(e.to_string()))?;
    let path = format!("/api/v1/pods?fieldSelector=spec.nodeName%3D{node}");
    let reply = rt
        .block_on(client.request("GET", &path, &[], None))
        .map_err(|e| api_err(e.to_string()))?;
    if reply.status != 200 {
        return Err(api_err(format!("{} {}", reply.status, reply.text().trim())));
    }
    let list: Value = serde_json::from_slice(&reply.body).map_err(|e| api_err(e.to_string()))?;
    let mut pods = list["items"].as_array().cloned().unwrap_or_default();
    pods.sort_by_key(|p| {
        (
            p["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            p["metadata"]["name"].as_str().unwrap_or("").to_string(),
        )
    });
    Ok(NodePods { node, pods })
}

fn finish(result: Result<String, RuntimeError>, prog: &str) -> i32 {
    match result {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => {
            eprintln!("{prog}: {e}");
            1
        }
    }
}

/// Flags of one list command: `-q`, `-a`, and `--namespace NS` where allowed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListFlags {
    /// Only ids (or references).
    pub quiet: bool,
    /// Include stopped ones.
    pub all: bool,
    /// Only this namespace (crictl's Kubernetes namespace filter).
    pub namespace: Option<String>,
}

/// Parses list flags; `allowed` names the long flags the command has.
pub fn parse_list_flags(args: &[String], allowed: &[&str]) -> Result<ListFlags, RuntimeError> {
    let mut f = ListFlags::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (name, inline) = match a.trim_start_matches('-').split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (a.trim_start_matches('-').to_string(), None),
        };
        let long = match name.as_str() {
            "q" => "quiet",
            "a" => "all",
            other => other,
        };
        if !a.starts_with('-') || !allowed.contains(&long) {
            return Err(RuntimeError::Usage(format!(
                "flag provided but not defined: -{name}"
            )));
        }
        match long {
            "quiet" => f.quiet = true,
            "all" => f.all = true,
            _ => {
                let v = inline.or_else(|| it.next().cloned()).ok_or_else(|| {
                    RuntimeError::Usage(format!("flag needs an argument: -{name}"))
                })?;
                f.namespace = Some(v);
            }
        }
    }
    Ok(f)
}

fn filtered(np: &NodePods, namespace: Option<&str>) -> Vec<Value> {
    np.pods
        .iter()
        .filter(|p| namespace.is_none_or(|ns| p["metadata"]["namespace"] == ns))
        .cloned()
        .collect()
}

/// `crictl ARGS` (or `k3s crictl ARGS`).
pub fn crictl(args: &[String]) -> i32 {
    let Some((cmd, rest)) = args.split_first() else {
        println!(
            "crictl - client for CRI\n\nCOMMANDS:\n   version  Display runtime version information\n   ps       List containers\n   pods     List pods\n   images   List images"
        );
        return 0;
    };
    let now = OffsetDateTime::now_utc();
    let result = match cmd.as_str() {
        "--version" | "-v" => Ok(format!("crictl version {CRICTL_VERSION}\n")),
        "version" => Ok(format!(
            "Version:  0.1.0\nRuntimeName:  containerd\nRuntimeVersion:  {}\nRuntimeApiVersion:  v1\n",
            crate::node::CONTAINERD_VERSION
        )),
        "ps" => parse_list_flags(rest, &["quiet", "all", "namespace"]).and_then(|f| {
            let np = node_pods()?;
            let (_, containers) = view::from_pods(&filtered(&np, f.namespace.as_deref()));
            Ok(view::crictl_ps(&containers, f.quiet, now))
        }),
        "pods" => parse_list_flags(rest, &["quiet", "namespace"]).and_then(|f| {
            let np = node_pods()?;
            let (sandboxes, _) = view::from_pods(&filtered(&np, f.namespace.as_deref()));
            Ok(view::crictl_pods(&sandboxes, f.quiet, now))
        }),
        "images" | "image" | "img" => parse_list_flags(rest, &["quiet"]).and_then(|f| {
            let np = node_pods()?;
            let (s, c) = view::from_pods(&np.pods);
            Ok(view::crictl_images(&view::images(&s, &c), f.quiet))
        }),
        other => Err(RuntimeError::Usage(format!(
            "No help topic for '{other}' (the K3s stand-in's crictl answers {})",
            CRICTL_COMMANDS.join(", ")
        ))),
    };
    finish(result, "crictl")
}

/// `ctr ARGS` (or `k3s ctr ARGS`); the namespace defaults to k8s.io as in K3s.
pub fn ctr(args: &[String]) -> i32 {
    let mut namespace = std::env::var("CONTAINERD_NAMESPACE")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| K8S_NAMESPACE.to_string());
    let mut rest: &[String] = args;
    while let Some((first, tail)) = rest.split_first() {
        if let Some(v) = first
            .strip_prefix("--namespace=")
            .or_else(|| first.strip_prefix("-n="))
        {
            namespace = v.to_string();
            rest = tail;
        } else if first == "--namespace" || first == "-n" {
            let Some((v, tail)) = tail.split_first() else {
                return finish(
                    Err(RuntimeError::Usage(format!(
                        "flag needs an argument: {first}"
                    ))),
                    "ctr",
                );
            };
            namespace = v.clone();
            rest = tail;
        } else {
            break;
        }
    }
    let ours = namespace == K8S_NAMESPACE;
    let (cmd, sub, flags) = match rest {
        [] => {
            println!(
                "ctr - containerd CLI\n\nCOMMANDS:\n   version          Print the client and server versions\n   containers, c    Manage containers\n   images, i        Manage images"
            );
            return 0;
        }
        [cmd] => (cmd.as_str(), "", &rest[1..]),
        [cmd, sub, flags @ ..] => (cmd.as_str(), sub.as_str(), flags),
    };
    let result = match (cmd, sub) {
        ("--version" | "-v", _) => Ok(format!(
            "ctr github.com/containerd/containerd/v2 {}\n",
            crate::node::CONTAINERD_VERSION
        )),
        ("version", _) => Ok(format!(
            "Client:\n  Version:  {v}\n  Revision: \n  Go version: go1.24.6\n\nServer:\n  Version:  {v}\n  Revision: \n  UUID: {}\n",
            crate::random::uid(),
            v = crate::node::CONTAINERD_VERSION
        )),
        ("containers" | "container" | "c", "list" | "ls") => parse_list_flags(flags, &["quiet"])
            .and_then(|f| {
                let (s, c) = if ours {
                    view::from_pods(&node_pods()?.pods)
                } else {
                    (Vec::new(), Vec::new())
                };
                Ok(view::ctr_containers(&s, &c, f.quiet))
            }),
        ("images" | "image" | "i", "list" | "ls") => {
            parse_list_flags(flags, &["quiet"]).and_then(|f| {
                let imgs = if ours {
                    let (s, c) = view::from_pods(&node_pods()?.pods);
                    view::images(&s, &c)
                } else {
                    Vec::new()
                };
                Ok(view::ctr_images(&imgs, f.quiet))
            })
        }
        _ => Err(RuntimeError::Usage(format!(
            "No help topic for '{}' (the K3s stand-in's ctr answers version, containers list, images list)",
            rest.join(" ")
        ))),
    };
    finish(result, "ctr")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn list_flags_parse_like_crictl() {
        assert_eq!(
            parse_list_flags(
                &s(&["-q", "--namespace", "kube-system"]),
                &["quiet", "namespace"]
            )
            .expect("flags"),
            ListFlags {
                quiet: true,
                all: false,
                namespace: Some("kube-system".into())
            }
        );
        assert!(parse_list_flags(&s(&["--namespace=x"]), &["namespace"]).is_ok());
        let e = parse_list_flags(&s(&["-a"]), &["quiet"]).expect_err("pods has no -a");
        assert_eq!(e.to_string(), "flag provided but not defined: -a");
        assert!(parse_list_flags(&s(&["--namespace"]), &["namespace"]).is_err());
    }
}
