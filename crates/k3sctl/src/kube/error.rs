//! Errors of the Kubernetes API edge: each says which object, what was waited for, and what to do.

use std::time::Duration;

/// An error talking to the Kubernetes API or waiting on it.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The kubeconfig could not be used.
    #[error("kubeconfig from {source_name} is unusable: {detail}")]
    Kubeconfig {
        /// Where the kubeconfig came from.
        source_name: String,
        /// What was wrong.
        detail: String,
    },

    /// The tunnel to the API server could not be opened.
    #[error("cannot open a tunnel to the API server: {0}")]
    Tunnel(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// An API call failed.
    #[error("{what}: {source}")]
    Api {
        /// What was being done (`listing nodes`, `cordoning node a`).
        what: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// A node does not exist in the API.
    #[error("node {node} is not registered in the API")]
    NodeNotFound {
        /// The node name.
        node: String,
    },

    /// An answer that is not what the API promises.
    #[error("{what}: unexpected answer: {detail}")]
    Unexpected {
        /// What was asked (`reading etcd's members (/db/info)`).
        what: String,
        /// What was wrong with the answer.
        detail: String,
    },

    /// A wait ran out of time.
    #[error("timed out after {}s waiting for {what}; last seen: {last_seen}", waited.as_secs())]
    Timeout {
        /// What was awaited (`node a Ready with kubelet v1.34.3+k3s1`).
        what: String,
        /// How long it waited.
        waited: Duration,
        /// The last observed state.
        last_seen: String,
    },

    /// Drain refused to start because some pods cannot be removed with the given options.
    #[error(
        "cannot drain node {node}: {}\n  hint: {hint}",
        pods.iter().map(|(p, r)| format!("{p} ({r})")).collect::<Vec<_>>().join(", ")
    )]
    DrainRefused {
        /// The node.
        node: String,
        /// `namespace/name` and why each blocks.
        pods: Vec<(String, String)>,
        /// What option would allow it.
        hint: String,
    },

    /// An eviction kept being refused (HTTP 429) until the drain timeout.
    #[error(
        "draining node {node}: pod {pod} could not be evicted within {}s: {message}{}",
        waited.as_secs(),
        if pdbs.is_empty() { String::new() } else { format!("; blocked by {}", pdbs.join("; ")) }
    )]
    EvictionBlocked {
        /// The node.
        node: String,
        /// `namespace/name`.
        pod: String,
        /// Descriptions of the PodDisruptionBudgets that select the pod.
        pdbs: Vec<String>,
        /// The API's last refusal message.
        message: String,
        /// How long it tried.
        waited: Duration,
    },
}

impl KubeError {
    /// Wraps a client error with what was being done.
    pub fn api(what: impl Into<String>, source: kube::Error) -> Self {
        Self::Api {
            what: what.into(),
            source,
        }
    }
}

/// The HTTP status code of an API error response, if it is one.
pub fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}
