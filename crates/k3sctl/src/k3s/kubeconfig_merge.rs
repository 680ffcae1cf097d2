//! Merging an exported kubeconfig into the user's kubeconfig: entries with the export's names
//! are added or replaced, every other cluster, user and context is left exactly as it was.

use serde_json::{Map, Value};

use super::kubeconfig::{KubeconfigError, entries, entry_name, parse, render};
use crate::secret::Secret;

/// What happened to one named entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// It was not there.
    Added,
    /// It was there with different content.
    Updated,
    /// It was there with the same content.
    Unchanged,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Added => "added",
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
        })
    }
}

/// One entry's change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EntryChange {
    /// `cluster`, `user` or `context`.
    pub kind: &'static str,
    /// Entry name.
    pub name: String,
    /// What happened.
    pub change: Change,
}

/// The merged file and what changed in it.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The new file content (it holds credentials of every context, hence a secret).
    pub content: Secret,
    /// Per-entry changes, in clusters, users, contexts order.
    pub changes: Vec<EntryChange>,
    /// Whether current-context was set (only when the file had none).
    pub set_current_context: bool,
}

impl Merged {
    /// Whether the file content must be written.
    pub fn changed(&self) -> bool {
        self.set_current_context || self.changes.iter().any(|c| c.change != Change::Unchanged)
    }
}

/// Merges `export` into `existing` (empty when the user has no kubeconfig yet).
pub fn merge_kubeconfig(existing: &Secret, export: &Secret) -> Result<Merged, KubeconfigError> {
    let mut doc = parse(existing.expose(), "the existing kubeconfig")?;
    let new = parse(export.expose(), "the exported kubeconfig")?;
    let mut changes = Vec::new();
    for (list, kind) in [
        ("clusters", "cluster"),
        ("users", "user"),
        ("contexts", "context"),
    ] {
        let mut items: Vec<Value> = doc
            .get(list)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for entry in entries(&new, list) {
            let name = entry_name(entry).to_string();
            let position = items
                .iter()
                .position(|item| item.get("name").and_then(Value::as_str) == Some(name.as_str()));
            let change = match position {
                None => {
                    items.push(Value::Object(entry.clone()));
                    Change::Added
                }
                Some(i) if items[i] == Value::Object(entry.clone()) => Change::Unchanged,
                Some(i) => {
                    items[i] = Value::Object(entry.clone());
                    Change::Updated
                }
            };
            changes.push(EntryChange { kind, name, change });
        }
        doc.insert(list.into(), Value::Array(items));
    }
    doc.entry("apiVersion").or_insert_with(|| Value::from("v1"));
    doc.entry("kind").or_insert_with(|| Value::from("Config"));
    doc.entry("preferences")
        .or_insert_with(|| Value::Object(Map::new()));
    let has_current = doc
        .get("current-context")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.is_empty());
    let mut set_current_context = false;
    if !has_current && let Some(current) = new.get("current-context") {
        doc.insert("current-context".into(), current.clone());
        set_current_context = true;
    }
    Ok(Merged {
        content: Secret::new(render(&doc)?),
        changes,
        set_current_context,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k3s::kubeconfig::rewrite_k3s_kubeconfig;
    use crate::k3s::kubeconfig::tests::K3S_YAML;

    fn export(server: &str) -> Secret {
        rewrite_k3s_kubeconfig(&Secret::new(K3S_YAML), server, "lumie-public").expect("rewrites")
    }

    const OTHER: &str = "apiVersion: v1
kind: Config
current-context: work
clusters:
- name: work
  cluster: {server: 'https://work.example:6443', insecure-skip-tls-verify: true}
users:
- name: work
  user: {token: abc}
contexts:
- name: work
  context: {cluster: work, user: work, namespace: dev}
";

    #[test]
    fn into_empty_file_adds_everything_and_sets_current_context() {
        let merged =
            merge_kubeconfig(&Secret::default(), &export("https://1.2.3.4:6443")).expect("merges");
        assert!(merged.set_current_context && merged.changed());
        assert!(merged.changes.iter().all(|c| c.change == Change::Added));
        assert_eq!(merged.changes.len(), 3);
    }

    #[test]
    fn keeps_other_contexts_and_current_context() {
        let merged =
            merge_kubeconfig(&Secret::new(OTHER), &export("https://1.2.3.4:6443")).expect("merges");
        let doc = parse(merged.content.expose(), "merged").expect("parses");
        assert_eq!(doc["current-context"], "work");
        assert_eq!(doc["contexts"][0]["context"]["namespace"], "dev");
        assert_eq!(doc["users"][0]["user"]["token"], "abc");
        assert_eq!(doc["clusters"].as_array().map(Vec::len), Some(2));
        insta::assert_snapshot!(merged.content.expose());
    }

    #[test]
    fn second_merge_is_unchanged_and_server_change_is_an_update() {
        let first =
            merge_kubeconfig(&Secret::new(OTHER), &export("https://1.2.3.4:6443")).expect("merges");
        let again =
            merge_kubeconfig(&first.content, &export("https://1.2.3.4:6443")).expect("merges");
        assert!(!again.changed());
        assert_eq!(again.content, first.content);
        let moved =
            merge_kubeconfig(&first.content, &export("https://5.6.7.8:6443")).expect("merges");
        let kinds: Vec<_> = moved.changes.iter().map(|c| (c.kind, c.change)).collect();
        assert_eq!(
            kinds,
            [
                ("cluster", Change::Updated),
                ("user", Change::Unchanged),
                ("context", Change::Unchanged)
            ]
        );
    }

    #[test]
    fn garbage_existing_file_is_an_error() {
        let err =
            merge_kubeconfig(&Secret::new("[1, 2"), &export("https://x:6443")).expect_err("bad");
        assert!(err.to_string().contains("existing kubeconfig"), "{err}");
    }
}
