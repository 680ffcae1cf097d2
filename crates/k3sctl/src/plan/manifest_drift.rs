//! Drift of the objects k3sctl's manifests declare, pure. K3s's deploy controller applies a
//! file of `server/manifests` at every start and when the file changes; an object edited (or
//! deleted) through the API afterwards stays as the person left it, because an unchanged file
//! is not applied again. So the plan compares each object the spec's manifests declare (the
//! HelmChartConfig overrides and `addons.manifests`) with the live object: every field the
//! manifest declares must have the declared value (fields the API or a person added are not
//! k3sctl's and are not compared). Apply writes the declared fields back through the API
//! ([`super::Step::ApplyObjects`]).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::desired::{Desired, DesiredHost, FileContent};
use super::drift::{DriftFix, DriftItem, DriftKind};
use super::observed::Observed;
use super::step::Step;
use crate::k3s::config::NodeRole;
use crate::k3s::manifests::MANIFESTS_DIR;

/// Which object: what the API is asked for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectKey {
    /// `apiVersion` (`helm.cattle.io/v1`, `v1`).
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.namespace` as declared (`None`: the kind's default, `default` when namespaced).
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectKey {
    /// `HelmChartConfig kube-system/traefik`.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// One object a manifest k3sctl writes declares.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredObject {
    /// The manifest's file name (`k3sctl-traefik-config.yaml`).
    pub file: String,
    /// Which object.
    pub key: ObjectKey,
    /// The document as declared.
    pub doc: Value,
}

/// A manifest k3sctl writes that cannot be read as Kubernetes objects (K3s cannot apply it
/// either).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableManifest {
    /// The manifest's file name.
    pub file: String,
    /// Why.
    pub reason: String,
}

/// The objects declared by the manifests the servers get (the first server's files: every
/// server gets the same), in file order; and the manifests that cannot be read.
pub fn declared_objects(hosts: &[DesiredHost]) -> (Vec<DeclaredObject>, Vec<UnreadableManifest>) {
    let mut objects = Vec::new();
    let mut unreadable = Vec::new();
    let Some(server) = hosts.iter().find(|h| h.role == NodeRole::Server) else {
        return (objects, unreadable);
    };
    for file in &server.files {
        let Some(name) = file
            .path
            .strip_prefix(MANIFESTS_DIR)
            .and_then(|p| p.strip_prefix('/'))
        else {
            continue;
        };
        let FileContent::Plain(text) = &file.content else {
            continue;
        };
        match parse_objects(text) {
            Ok(docs) => objects.extend(docs.into_iter().map(|(key, doc)| DeclaredObject {
                file: name.to_string(),
                key,
                doc,
            })),
            Err(reason) => unreadable.push(UnreadableManifest {
                file: name.to_string(),
                reason,
            }),
        }
    }
    (objects, unreadable)
}

/// The objects of a (multi-document) manifest; `kind: List` items are objects too, as K3s
/// reads them. Empty documents are skipped.
pub fn parse_objects(text: &str) -> Result<Vec<(ObjectKey, Value)>, String> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| format!("not YAML: {e}"))?;
    let mut out = Vec::new();
    for (index, doc) in docs.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        let items = if doc["kind"] == "List" {
            doc["items"].as_array().cloned().unwrap_or_default()
        } else {
            vec![doc]
        };
        for item in items {
            let field = |pointer: &str| item.pointer(pointer).and_then(Value::as_str);
            let (Some(api_version), Some(kind), Some(name)) = (
                field("/apiVersion"),
                field("/kind"),
                field("/metadata/name"),
            ) else {
                return Err(format!(
                    "document {} has no apiVersion, kind or metadata.name",
                    index + 1
                ));
            };
            let key = ObjectKey {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
                namespace: field("/metadata/namespace").map(str::to_string),
                name: name.to_string(),
            };
            out.push((key, item));
        }
    }
    Ok(out)
}

/// One field whose live value is not the declared one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDiff {
    /// Dotted path (`spec.valuesContent`, `data.key`, `spec.ports[0].port`).
    pub path: String,
    /// Declared value (strings as they are, other values as JSON).
    pub declared: String,
    /// Live value (`None`: the field is absent).
    pub live: Option<String>,
}

/// The fields of `declared` whose live value differs: everything the document declares
/// except `apiVersion`, `kind`, `status` and the identity in `metadata` (its labels and
/// annotations count). Fields only the live object has are not compared.
pub fn field_diffs(declared: &Value, live: &Value) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    let Some(fields) = declared.as_object() else {
        return out;
    };
    for (key, value) in fields {
        match key.as_str() {
            "apiVersion" | "kind" | "status" => {}
            "metadata" => {
                for part in ["labels", "annotations"] {
                    if let Some(v) = value.get(part) {
                        compare(
                            &format!("metadata.{part}"),
                            v,
                            live.pointer(&format!("/metadata/{part}")),
                            &mut out,
                        );
                    }
                }
            }
            _ => compare(key, value, live.get(key), &mut out),
        }
    }
    out
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Scalars the API may give back in another JSON type (`1` declared, `"1"` stored for a
/// quantity; `true` and `"true"`) are equal when their text is.
fn same_scalar(a: &Value, b: &Value) -> bool {
    a == b || (!a.is_object() && !a.is_array() && !b.is_object() && shown(a) == shown(b))
}

fn compare(path: &str, declared: &Value, live: Option<&Value>, out: &mut Vec<FieldDiff>) {
    match (declared, live) {
        (Value::Null, None | Some(Value::Null)) => {}
        (Value::Object(want), Some(Value::Object(have))) => {
            for (key, value) in want {
                compare(&format!("{path}.{key}"), value, have.get(key), out);
            }
        }
        (Value::Array(want), Some(Value::Array(have))) if want.len() == have.len() => {
            for (i, (w, h)) in want.iter().zip(have).enumerate() {
                compare(&format!("{path}[{i}]"), w, Some(h), out);
            }
        }
        (want, Some(have)) if same_scalar(want, have) => {}
        (want, have) => out.push(FieldDiff {
            path: path.to_string(),
            declared: shown(want),
            live: have.map(shown),
        }),
    }
}

/// Live objects as read from the API, by key (`None`: the object does not exist).
pub type LiveObjects = BTreeMap<ObjectKey, Option<Value>>;

/// At most this many fields of one object are listed; the rest are counted.
const MAX_FIELDS_SHOWN: usize = 5;

/// One declared object that is not as declared.
struct ObjectDrift<'a> {
    object: &'a DeclaredObject,
    /// `None`: the object does not exist.
    diffs: Option<Vec<FieldDiff>>,
}

fn object_drift<'a>(objects: &'a [DeclaredObject], live: &LiveObjects) -> Vec<ObjectDrift<'a>> {
    objects
        .iter()
        .filter_map(|object| match live.get(&object.key)? {
            None => Some(ObjectDrift {
                object,
                diffs: None,
            }),
            Some(have) => {
                let diffs = field_diffs(&object.doc, have);
                (!diffs.is_empty()).then_some(ObjectDrift {
                    object,
                    diffs: Some(diffs),
                })
            }
        })
        .collect()
}

/// The server the objects are reported on and written through: the first server of the run.
fn reporting_server(desired: &Desired) -> Option<&DesiredHost> {
    desired.hosts.iter().find(|h| h.role == NodeRole::Server)
}

/// Drift items for the declared objects (nothing when the live objects were not read) and the
/// manifests that cannot be read.
pub fn drift_items(desired: &Desired, observed: &Observed) -> Vec<DriftItem> {
    let (Some(live), Some(server)) = (&observed.objects, reporting_server(desired)) else {
        return Vec::new();
    };
    let (objects, unreadable) = declared_objects(&desired.hosts);
    let mut out = Vec::new();
    for bad in unreadable {
        out.push(DriftItem {
            host: server.name.clone(),
            kind: DriftKind::Manifest,
            subject: bad.file.clone(),
            declared: None,
            live: None,
            fix: DriftFix::Manual,
            hint: Some(format!(
                "{} cannot be read as Kubernetes objects ({}): K3s cannot apply it either; fix                  the file the spec names",
                bad.file, bad.reason
            )),
        });
    }
    for drift in object_drift(&objects, live) {
        let what = drift.object.key.describe();
        let item = |subject: String, declared: Option<String>, live: Option<String>| DriftItem {
            host: server.name.clone(),
            kind: DriftKind::Manifest,
            subject,
            declared,
            live,
            fix: DriftFix::Apply,
            hint: None,
        };
        match &drift.diffs {
            None => out.push(item(
                what,
                Some(format!("declared in {}", drift.object.file)),
                None,
            )),
            Some(diffs) => {
                for diff in diffs.iter().take(MAX_FIELDS_SHOWN) {
                    out.push(item(
                        format!("{what} {}", diff.path),
                        Some(diff.declared.clone()),
                        diff.live.clone(),
                    ));
                }
                if diffs.len() > MAX_FIELDS_SHOWN {
                    out.push(item(
                        format!("{what} ({} more field(s))", diffs.len() - MAX_FIELDS_SHOWN),
                        None,
                        None,
                    ));
                }
            }
        }
    }
    out
}

/// The steps that write drifted objects back through the API, one per manifest file, for the
/// server they are reported on: `(server, steps)`.
pub fn apply_steps(desired: &Desired, observed: &Observed) -> Option<(String, Vec<Step>)> {
    let live = observed.objects.as_ref()?;
    let server = reporting_server(desired)?;
    let (objects, _) = declared_objects(&desired.hosts);
    let mut by_file: BTreeMap<&str, Vec<&DeclaredObject>> = BTreeMap::new();
    let mut order = Vec::new();
    for drift in object_drift(&objects, live) {
        let file = drift.object.file.as_str();
        if !by_file.contains_key(file) {
            order.push(file);
        }
        by_file.entry(file).or_default().push(drift.object);
    }
    let steps: Vec<Step> = order
        .into_iter()
        .map(|file| {
            let objects = &by_file[file];
            Step::ApplyObjects {
                file: file.to_string(),
                objects: objects.iter().map(|o| o.key.describe()).collect(),
                docs: objects.iter().map(|o| o.doc.clone()).collect(),
            }
        })
        .collect();
    (!steps.is_empty()).then(|| (server.name.clone(), steps))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_lists_and_empty_documents_become_objects() {
        let text = "# managed by k3sctl\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n\
                    data:\n  k: v\n---\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  \
                    kind: Secret\n  metadata: {name: s, namespace: apps}\n";
        let objects = parse_objects(text).expect("parses");
        let keys: Vec<String> = objects.iter().map(|(k, _)| k.describe()).collect();
        assert_eq!(keys, ["ConfigMap a", "Secret apps/s"]);
        assert_eq!(objects[0].1["data"]["k"], "v");
        let err = parse_objects("kind: ConfigMap\n").expect_err("no name");
        assert!(err.contains("document 1"), "{err}");
        assert!(parse_objects("a: [").is_err());
    }

    #[test]
    fn only_declared_fields_count_and_api_defaults_do_not() {
        let declared = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"ports": [{"port": 80}], "type": "ClusterIP"}});
        let live = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "uid": "u", "resourceVersion": "9",
                         "labels": {"app": "web", "extra": "person"}},
            "spec": {"ports": [{"port": 80, "protocol": "TCP"}], "type": "ClusterIP",
                     "clusterIP": "10.43.0.9"},
            "status": {}});
        assert_eq!(field_diffs(&declared, &live), []);
        let mut edited = live.clone();
        edited["spec"]["ports"][0]["port"] = json!(8080);
        edited["metadata"]["labels"]["app"] = json!("other");
        assert_eq!(
            field_diffs(&declared, &edited),
            [
                FieldDiff {
                    path: "metadata.labels.app".into(),
                    declared: "web".into(),
                    live: Some("other".into()),
                },
                FieldDiff {
                    path: "spec.ports[0].port".into(),
                    declared: "80".into(),
                    live: Some("8080".into()),
                },
            ]
        );
        // A list of another length is one difference, shown whole.
        edited["spec"]["ports"] = json!([]);
        let diffs = field_diffs(&declared, &edited);
        assert_eq!(diffs[1].path, "spec.ports");
        assert_eq!(diffs[1].live.as_deref(), Some("[]"));
    }

    #[test]
    fn a_scalar_stored_as_text_is_the_same_value() {
        let declared = json!({"spec": {"replicas": 1, "cpu": 1, "on": true}});
        let live = json!({"spec": {"replicas": 1, "cpu": "1", "on": "true"}});
        assert_eq!(field_diffs(&declared, &live), []);
        let missing = field_diffs(&declared, &json!({"spec": {}}));
        assert_eq!(missing.len(), 3);
        assert_eq!(missing[0].live, None);
    }
}
