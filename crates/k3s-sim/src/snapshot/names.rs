//! Pure parts of K3s's etcd snapshots: file names (`<name>-<node>-<unix ts>`), which snapshots a
//! retention count prunes, the cluster-scoped `ETCDSnapshotFile` objects (k3s.cattle.io/v1) and
//! the `k3s etcd-snapshot ls` table.

use serde_json::{Value, json};
use sha2::Digest;

/// Name prefix of on-demand snapshots (`k3s etcd-snapshot save`).
pub const ON_DEMAND: &str = "on-demand";
/// Name prefix of scheduled snapshots (`etcd-snapshot-name`).
pub const SCHEDULED: &str = "etcd-snapshot";
/// Label naming the node whose disk holds a snapshot.
pub const STORAGE_NODE_LABEL: &str = "etcd.k3s.cattle.io/snapshot-storage-node";
/// Storage name of the objects in the store.
pub const RESOURCE: &str = "etcdsnapshotfiles.k3s.cattle.io";

/// The file name of a snapshot taken at `unix_ts` (K3s: `<name>-<node>-<unix ts>`).
pub fn file_name(prefix: &str, node: &str, unix_ts: i64) -> String {
    format!("{prefix}-{node}-{unix_ts}")
}

/// A snapshot file found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    /// File name (also the snapshot's name).
    pub name: String,
    /// Absolute path.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Creation time, unix seconds (from the name, else the file's mtime).
    pub created: i64,
}

/// The unix timestamp at the end of a snapshot name made by [`file_name`] for `node`, when the
/// name starts with `prefix-node-`.
pub fn timestamp_of(name: &str, prefix: &str, node: &str) -> Option<i64> {
    let rest = name.strip_prefix(&format!("{prefix}-{node}-"))?;
    // K3s may add an extension (`.zip` when compressed); the digits come first.
    let digits: &str = rest.split('.').next().unwrap_or("");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The unix timestamp a snapshot name ends with (`...-<digits>`), whatever its prefix.
pub fn trailing_timestamp(name: &str) -> Option<i64> {
    let base = name.split('.').next().unwrap_or(name);
    let (_, digits) = base.rsplit_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The snapshots of `prefix` on `node` a retention of `keep` removes: all but the newest `keep`
/// (K3s prunes per name prefix and node; other prefixes are never touched).
pub fn to_prune<'a>(
    files: &'a [SnapshotFile],
    prefix: &str,
    node: &str,
    keep: usize,
) -> Vec<&'a SnapshotFile> {
    let mut ours: Vec<(i64, &SnapshotFile)> = files
        .iter()
        .filter_map(|f| timestamp_of(&f.name, prefix, node).map(|ts| (ts, f)))
        .collect();
    ours.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.name.cmp(&a.1.name)));
    ours.into_iter().skip(keep).map(|(_, f)| f).collect()
}

/// The `file://` location K3s records for a local snapshot.
pub fn location(path: &str) -> String {
    format!("file://{path}")
}

/// The object name K3s gives a local snapshot's `ETCDSnapshotFile`: `local-<name>-` and the first
/// 6 hex digits of sha256(node name + location), lower-cased.
pub fn object_name(name: &str, node: &str, path: &str) -> String {
    let digest = sha2::Sha256::digest(format!("{node}{}", location(path)).as_bytes());
    format!("local-{name}-{}", &hex::encode(digest)[..6]).to_ascii_lowercase()
}

/// The cluster-scoped `ETCDSnapshotFile` object of a local snapshot on `node`.
pub fn object(f: &SnapshotFile, node: &str) -> Value {
    let created = time::OffsetDateTime::from_unix_timestamp(f.created)
        .map(crate::clock::rfc3339)
        .unwrap_or_default();
    json!({
        "apiVersion": "k3s.cattle.io/v1",
        "kind": "ETCDSnapshotFile",
        "metadata": {
            "name": object_name(&f.name, node, &f.path),
            "labels": {STORAGE_NODE_LABEL: node},
        },
        "spec": {
            "snapshotName": f.name,
            "nodeName": node,
            "location": location(&f.path),
        },
        "status": {
            "size": f.size.to_string(),
            "creationTime": created,
            "readyToUse": true,
        },
    })
}

/// An `ETCDSnapshotFileList` of these objects (`k3s etcd-snapshot ls -o json`).
pub fn list(items: Vec<Value>) -> Value {
    json!({
        "apiVersion": "k3s.cattle.io/v1",
        "kind": "ETCDSnapshotFileList",
        "metadata": {},
        "items": items,
    })
}

/// The `ls` table (K3s: tab-separated columns `Name Location Size Created`, aligned).
pub fn table(items: &[Value]) -> String {
    let mut rows = vec![[
        "Name".to_string(),
        "Location".to_string(),
        "Size".to_string(),
        "Created".to_string(),
    ]];
    for i in items {
        rows.push([
            i["spec"]["snapshotName"].as_str().unwrap_or("").to_string(),
            i["spec"]["location"].as_str().unwrap_or("").to_string(),
            i["status"]["size"].as_str().unwrap_or("0").to_string(),
            i["status"]["creationTime"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        ]);
    }
    let mut widths = [0usize; 4];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                line.push_str(&format!("{c:<w$} ", w = widths[i]));
            } else {
                line.push_str(c);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str) -> SnapshotFile {
        SnapshotFile {
            name: name.into(),
            path: format!("/d/{name}"),
            size: 10,
            created: trailing_timestamp(name).unwrap_or(0),
        }
    }

    #[test]
    fn names_carry_node_and_time() {
        let n = file_name(ON_DEMAND, "server-0", 1_753_178_523);
        assert_eq!(n, "on-demand-server-0-1753178523");
        assert_eq!(timestamp_of(&n, ON_DEMAND, "server-0"), Some(1_753_178_523));
        assert_eq!(
            timestamp_of(&n, ON_DEMAND, "server"),
            None,
            "node must match whole"
        );
        assert_eq!(timestamp_of(&n, SCHEDULED, "server-0"), None);
        assert_eq!(trailing_timestamp("x-y-12.zip"), Some(12));
        assert_eq!(trailing_timestamp("notes.txt"), None);
    }

    #[test]
    fn retention_keeps_the_newest_of_one_prefix_and_node() {
        let files = vec![
            f("etcd-snapshot-s1-100"),
            f("etcd-snapshot-s1-300"),
            f("etcd-snapshot-s1-200"),
            f("on-demand-s1-50"),
            f("etcd-snapshot-s2-10"),
        ];
        let gone: Vec<&str> = to_prune(&files, SCHEDULED, "s1", 2)
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(gone, vec!["etcd-snapshot-s1-100"]);
        assert!(to_prune(&files, SCHEDULED, "s1", 5).is_empty());
        let all: Vec<&str> = to_prune(&files, ON_DEMAND, "s1", 0)
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(all, vec!["on-demand-s1-50"]);
    }

    #[test]
    fn objects_and_list_shapes() {
        let file = SnapshotFile {
            name: "on-demand-s1-1700000000".into(),
            path: "/var/lib/rancher/k3s/server/db/snapshots/on-demand-s1-1700000000".into(),
            size: 4096,
            created: 1_700_000_000,
        };
        let o = object(&file, "s1");
        let name = o["metadata"]["name"].as_str().expect("name");
        assert!(
            name.starts_with("local-on-demand-s1-1700000000-") && name.len() == 36,
            "{name}"
        );
        assert_eq!(o["spec"]["location"], format!("file://{}", file.path));
        assert_eq!(o["spec"]["nodeName"], "s1");
        assert_eq!(o["status"]["size"], "4096");
        assert_eq!(o["status"]["creationTime"], "2023-11-14T22:13:20Z");
        assert_eq!(o["metadata"]["labels"][STORAGE_NODE_LABEL], "s1");
        let l = list(vec![o.clone()]);
        assert_eq!(l["kind"], "ETCDSnapshotFileList");
        assert_eq!(
            l["items"][0]["spec"]["snapshotName"],
            "on-demand-s1-1700000000"
        );
        let t = table(&[o]);
        let mut lines = t.lines();
        let head: Vec<&str> = lines.next().expect("head").split_whitespace().collect();
        assert_eq!(head, vec!["Name", "Location", "Size", "Created"]);
        let row: Vec<&str> = lines.next().expect("row").split_whitespace().collect();
        assert_eq!(row[0], "on-demand-s1-1700000000");
        assert_eq!(row[2], "4096");
        assert_eq!(row[3], "2023-11-14T22:13:20Z");
    }
}
