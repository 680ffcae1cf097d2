//! The deploy controller: YAML/JSON files in server/manifests are applied as objects (an Addon
//! object per file records its checksum); every file is applied at start whatever its Addon
//! records, afterwards only a changed file (content unlike its Addon's checksum), so an object
//! edited through the API stays so until the next start or file change; deleting a file does
//! not delete its objects; a `<file>.skip` beside a file skips it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use sha2::Digest;

use crate::api::resources::by_kind;
use crate::store::{ObjectStore, ResourceKey};

fn manifest_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs_err::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
        })
        .filter(|p| !PathBuf::from(format!("{}.skip", p.display())).exists())
        .collect();
    files.sort();
    files
}

fn addon_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().to_lowercase().replace(['_', ' '], "-"))
        .unwrap_or_default()
}

/// Creates or updates one object from a manifest document (kept status, replaced content).
pub fn apply_object(store: &ObjectStore, doc: &Value) -> Result<String, String> {
    let api_version = doc["apiVersion"].as_str().unwrap_or("");
    let kind = doc["kind"].as_str().unwrap_or("");
    let rt = by_kind(api_version, kind)
        .ok_or_else(|| format!("no resource for apiVersion {api_version:?} kind {kind:?}"))?;
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .ok_or("object without metadata.name")?;
    let ns = if rt.namespaced {
        doc.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
    } else {
        ""
    };
    let mut body = doc.clone();
    if let Some(m) = body.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
        m.remove("status");
    }
    crate::api::validate::object(rt.kind, &body).map_err(|e| e.message)?;
    let key = ResourceKey::new(&rt.storage(), ns, name);
    let res = if store.get(&key).is_some() {
        store.modify(&key, |o| {
            let status = o.get("status").cloned();
            let meta = o["metadata"].clone();
            *o = body.clone();
            o["metadata"] = meta;
            for field in ["labels", "annotations"] {
                if let Some(v) = body["metadata"].get(field) {
                    o["metadata"][field] = v.clone();
                }
            }
            if let Some(s) = status {
                o["status"] = s;
            }
            Ok(())
        })
    } else {
        store.create(&rt.storage(), ns, body)
    };
    res.map(|_| format!("{}/{name}", rt.storage()))
        .map_err(|e| e.message)
}

fn apply_file(store: &ObjectStore, path: &Path, text: &str, checksum: &str) {
    let docs: Vec<Value> = match serde_saphyr::from_multiple(text) {
        Ok(d) => d,
        Err(e) => {
            crate::log::error(format!(
                "Failed to process config: {}: invalid YAML: {e}",
                path.display()
            ));
            return;
        }
    };
    for doc in docs.iter().filter(|d| d.is_object()) {
        let items: Vec<&Value> = match doc["kind"].as_str() {
            Some("List") => doc["items"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default(),
            _ => vec![doc],
        };
        for item in items {
            match apply_object(store, item) {
                Ok(what) => crate::log::info(format!("Applied {what} from {}", path.display())),
                Err(e) => crate::log::error(format!("Failed to apply {}: {e}", path.display())),
            }
        }
    }
    let addon = json!({"apiVersion": "k3s.cattle.io/v1", "kind": "Addon",
        "metadata": {"name": addon_name(path), "namespace": "kube-system"},
        "spec": {"source": path.display().to_string(), "checksum": checksum}});
    if let Err(e) = apply_object(store, &addon) {
        crate::log::error(format!("recording addon for {}: {e}", path.display()));
    }
}

/// Applies new and changed manifest files (with `force`, as at start: every file); returns how
/// many files were applied.
pub fn scan_once(
    store: &ObjectStore,
    dir: &Path,
    seen: &mut BTreeMap<PathBuf, String>,
    force: bool,
) -> usize {
    let mut applied = 0;
    for path in manifest_files(dir) {
        let Ok(text) = fs_err::read_to_string(&path) else {
            continue;
        };
        let checksum = hex::encode(sha2::Sha256::digest(text.as_bytes()));
        if !force && seen.get(&path) == Some(&checksum) {
            continue;
        }
        let key = ResourceKey::new("addons.k3s.cattle.io", "kube-system", &addon_name(&path));
        let recorded = store
            .get(&key)
            .and_then(|a| a["spec"]["checksum"].as_str().map(str::to_string));
        if force || recorded.as_deref() != Some(checksum.as_str()) {
            apply_file(store, &path, &text, &checksum);
            applied += 1;
        }
        seen.insert(path, checksum);
    }
    applied
}

/// Scans server/manifests forever.
pub async fn watch(store: Arc<ObjectStore>, dir: PathBuf) {
    let _ = fs_err::create_dir_all(&dir);
    let mut seen = BTreeMap::new();
    let mut force = true;
    loop {
        scan_once(&store, &dir, &mut seen, std::mem::take(&mut force));
        tokio::time::sleep(crate::knobs::manifest_scan()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FileDatastore;

    #[test]
    fn files_become_objects_and_changes_reapply() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ObjectStore::open(Box::new(
            FileDatastore::open(&dir.path().join("db")).expect("ds"),
        ))
        .expect("store");
        crate::components::seed_namespaces(&store);
        let mdir = dir.path().join("manifests");
        fs_err::create_dir_all(&mdir).expect("mkdir");
        fs_err::write(
            mdir.join("k3sctl-traefik.yaml"),
            "apiVersion: helm.cattle.io/v1\nkind: HelmChartConfig\nmetadata:\n  name: traefik\n  namespace: kube-system\nspec:\n  valuesContent: |\n    a: 1\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c1\ndata:\n  k: v\n",
        )
        .expect("write");
        let mut seen = BTreeMap::new();
        assert_eq!(scan_once(&store, &mdir, &mut seen, true), 1);
        let hcc = store
            .get(&ResourceKey::new(
                "helmchartconfigs.helm.cattle.io",
                "kube-system",
                "traefik",
            ))
            .expect("hcc");
        assert_eq!(hcc["spec"]["valuesContent"], "a: 1\n");
        assert!(
            store
                .get(&ResourceKey::new("configmaps", "default", "c1"))
                .is_some()
        );
        assert!(
            store
                .get(&ResourceKey::new(
                    "addons.k3s.cattle.io",
                    "kube-system",
                    "k3sctl-traefik"
                ))
                .is_some()
        );
        assert_eq!(
            scan_once(&store, &mdir, &mut seen, false),
            0,
            "unchanged files are not re-applied"
        );
        // An object edited through the API stays so while the file is unchanged; a start (a
        // new controller: force) applies the file again.
        let hcc_key = ResourceKey::new("helmchartconfigs.helm.cattle.io", "kube-system", "traefik");
        store
            .modify(&hcc_key, |o| {
                o["spec"]["valuesContent"] = json!("edited");
                Ok(())
            })
            .expect("edit");
        assert_eq!(scan_once(&store, &mdir, &mut seen, false), 0);
        assert_eq!(
            store.get(&hcc_key).expect("hcc")["spec"]["valuesContent"],
            "edited"
        );
        assert_eq!(scan_once(&store, &mdir, &mut BTreeMap::new(), true), 1);
        assert_eq!(
            store.get(&hcc_key).expect("hcc")["spec"]["valuesContent"],
            "a: 1\n"
        );
        fs_err::write(mdir.join("k3sctl-traefik.yaml"), "apiVersion: helm.cattle.io/v1\nkind: HelmChartConfig\nmetadata:\n  name: traefik\n  namespace: kube-system\nspec:\n  valuesContent: \"b: 2\"\n").expect("write");
        assert_eq!(scan_once(&store, &mdir, &mut seen, false), 1);
        let hcc = store
            .get(&ResourceKey::new(
                "helmchartconfigs.helm.cattle.io",
                "kube-system",
                "traefik",
            ))
            .expect("hcc");
        assert_eq!(hcc["spec"]["valuesContent"], "b: 2");
        fs_err::remove_file(mdir.join("k3sctl-traefik.yaml")).expect("rm");
        scan_once(&store, &mdir, &mut seen, false);
        assert!(
            store
                .get(&ResourceKey::new("configmaps", "default", "c1"))
                .is_some(),
            "deleting a file keeps its objects"
        );
    }
}
