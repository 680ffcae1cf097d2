//! Rewriting the server's `/etc/rancher/k3s/k3s.yaml` into an exported kubeconfig: parsed as a
//! document (never string replacement), one cluster/user/context renamed after the export's
//! context name, the server URL replaced.

use serde_json::{Map, Value};

use super::yaml::to_yaml;
use crate::secret::Secret;

/// Where K3s writes the admin kubeconfig.
pub const K3S_KUBECONFIG_PATH: &str = "/etc/rancher/k3s/k3s.yaml";

/// Why a kubeconfig could not be read or rewritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KubeconfigError {
    /// The text is not YAML or not a mapping.
    #[error("{what} is not a kubeconfig: {reason}")]
    NotAKubeconfig {
        /// Which file.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A context refers to a cluster or user that is not in the file.
    #[error("{what}: context `{context}` refers to {kind} `{name}`, which is not in the file")]
    Dangling {
        /// Which file.
        what: String,
        /// Context name.
        context: String,
        /// `cluster` or `user`.
        kind: &'static str,
        /// The missing name.
        name: String,
    },
    /// Rendering failed.
    #[error("cannot render the kubeconfig: {0}")]
    Render(String),
}

/// Parses a kubeconfig into a JSON-shaped document. Empty text is an empty config.
pub(crate) fn parse(text: &str, what: &str) -> Result<Map<String, Value>, KubeconfigError> {
    let bad = |reason: String| KubeconfigError::NotAKubeconfig {
        what: what.to_string(),
        reason,
    };
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_saphyr::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(_) => Err(bad("the top level is not a mapping".into())),
        Err(e) => Err(bad(e.to_string())),
    }
}

/// Renders a document back to YAML.
pub(crate) fn render(doc: &Map<String, Value>) -> Result<String, KubeconfigError> {
    to_yaml(doc).map_err(|e| KubeconfigError::Render(e.to_string()))
}

/// The named entries of `clusters`, `users` or `contexts` (a missing or null list is empty).
pub(crate) fn entries<'a>(doc: &'a Map<String, Value>, list: &str) -> Vec<&'a Map<String, Value>> {
    doc.get(list)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default()
}

pub(crate) fn entry_name(entry: &Map<String, Value>) -> &str {
    entry
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn find<'a>(doc: &'a Map<String, Value>, list: &str, name: &str) -> Option<&'a Map<String, Value>> {
    entries(doc, list)
        .into_iter()
        .find(|e| entry_name(e) == name)
}

/// Rewrites k3s.yaml for one export: server URL set, and cluster, user and context all named
/// `context` (k3s names all three `default`, which collides when merged).
pub fn rewrite_k3s_kubeconfig(
    k3s_yaml: &Secret,
    server: &str,
    context: &str,
) -> Result<Secret, KubeconfigError> {
    let what = "the server's k3s.yaml";
    let doc = parse(k3s_yaml.expose(), what)?;
    let current = doc.get("current-context").and_then(Value::as_str);
    let ctx = match current.and_then(|name| find(&doc, "contexts", name)) {
        Some(ctx) => ctx,
        None => entries(&doc, "contexts")
            .into_iter()
            .next()
            .ok_or_else(|| KubeconfigError::NotAKubeconfig {
                what: what.into(),
                reason: "it has no context".into(),
            })?,
    };
    let ctx_name = entry_name(ctx).to_string();
    let inner = ctx
        .get("context")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let pick = |kind: &'static str, list: &str| {
        let name = inner.get(kind).and_then(Value::as_str).unwrap_or_default();
        find(&doc, list, name)
            .cloned()
            .ok_or_else(|| KubeconfigError::Dangling {
                what: what.into(),
                context: ctx_name.clone(),
                kind,
                name: name.to_string(),
            })
    };
    let mut cluster = pick("cluster", "clusters")?;
    let mut user = pick("user", "users")?;

    let mut cluster_body = cluster
        .get("cluster")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    cluster_body.insert("server".into(), Value::from(server));
    cluster.insert("cluster".into(), Value::Object(cluster_body));
    cluster.insert("name".into(), Value::from(context));
    user.insert("name".into(), Value::from(context));
    let mut new_inner = inner.clone();
    new_inner.insert("cluster".into(), Value::from(context));
    new_inner.insert("user".into(), Value::from(context));
    let mut new_ctx = Map::new();
    new_ctx.insert("context".into(), Value::Object(new_inner));
    new_ctx.insert("name".into(), Value::from(context));

    let mut out = Map::new();
    out.insert(
        "apiVersion".into(),
        doc.get("apiVersion").cloned().unwrap_or(Value::from("v1")),
    );
    out.insert("kind".into(), Value::from("Config"));
    out.insert(
        "clusters".into(),
        Value::Array(vec![Value::Object(cluster)]),
    );
    out.insert("users".into(), Value::Array(vec![Value::Object(user)]));
    out.insert(
        "contexts".into(),
        Value::Array(vec![Value::Object(new_ctx)]),
    );
    out.insert("current-context".into(), Value::from(context));
    out.insert(
        "preferences".into(),
        doc.get("preferences")
            .cloned()
            .unwrap_or(Value::Object(Map::new())),
    );
    Ok(Secret::new(render(&out)?))
}

/// The server URL of the current context's cluster, to detect kubeconfigs still pointing at
/// 127.0.0.1.
pub fn current_server(text: &str) -> Option<String> {
    let doc = parse(text, "kubeconfig").ok()?;
    let ctx = find(&doc, "contexts", doc.get("current-context")?.as_str()?)?;
    let cluster_name = ctx.get("context")?.get("cluster")?.as_str()?;
    let cluster = find(&doc, "clusters", cluster_name)?;
    Some(cluster.get("cluster")?.get("server")?.as_str()?.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A k3s.yaml as K3s writes it (certificate data shortened).
    pub(crate) const K3S_YAML: &str = "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJkekNDQVIyZ0F3SUJBZ0lCQURBS0JnZ3Foa2pPUFFRREFqQWpNU0V3SHdZRFZRUUREQmhyTTNNdGMyVnkK
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: Y2xpZW50LWNlcnQ=
    client-key-data: Y2xpZW50LWtleS1zZWNyZXQ=
";

    #[test]
    fn rewrite_snapshot() {
        let out = rewrite_k3s_kubeconfig(
            &Secret::new(K3S_YAML),
            "https://140.238.0.10:6443",
            "lumie-public",
        )
        .expect("rewrites");
        insta::assert_snapshot!(out.expose());
        assert_eq!(
            current_server(out.expose()).as_deref(),
            Some("https://140.238.0.10:6443")
        );
    }

    #[test]
    fn rewrite_keeps_credentials_and_drops_default_names() {
        let out = rewrite_k3s_kubeconfig(&Secret::new(K3S_YAML), "https://10.0.0.1:6443", "lab")
            .expect("rewrites");
        let doc = parse(out.expose(), "out").expect("parses");
        assert!(!out.expose().contains("default"));
        assert_eq!(
            doc["users"][0]["user"]["client-key-data"],
            "Y2xpZW50LWtleS1zZWNyZXQ="
        );
        assert_eq!(doc["contexts"][0]["context"]["cluster"], "lab");
    }

    #[test]
    fn broken_inputs_are_errors_not_panics() {
        for text in [
            "- a\n- b\n",
            "contexts: []\n",
            "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n",
        ] {
            assert!(
                rewrite_k3s_kubeconfig(&Secret::new(text), "https://x:6443", "c").is_err(),
                "{text}"
            );
        }
    }
}
