//! K3s's cluster-scoped `ETCDSnapshotFile` objects (k3s.cattle.io/v1, since v1.28.4+k3s2 and the
//! matching patch releases of older minors): one per snapshot of every server (and S3), which
//! `k3s etcd-snapshot ls` on one server does not show.

use kube::Client;
use serde::Serialize;

use super::error::KubeError;

/// One snapshot as the API lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotFile {
    /// The snapshot's name (`<name>-<node>-<unix ts>`).
    pub name: String,
    /// The node that took it (and holds it, for a local snapshot).
    pub node: String,
    /// `file:///…` or `s3://…`.
    pub location: String,
    /// Size in bytes, when reported.
    pub size: Option<u64>,
    /// Creation time (RFC 3339), when reported.
    pub created: Option<String>,
    /// status.readyToUse.
    pub ready: bool,
}

/// Pure: the snapshots in an `ETCDSnapshotFileList`, oldest first.
pub fn parse_snapshot_files(text: &str) -> Result<Vec<SnapshotFile>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let items = v["items"]
        .as_array()
        .ok_or_else(|| "no items list".to_string())?;
    let mut out: Vec<SnapshotFile> = items
        .iter()
        .map(|i| SnapshotFile {
            name: i["spec"]["snapshotName"]
                .as_str()
                .unwrap_or_default()
                .into(),
            node: i["spec"]["nodeName"].as_str().unwrap_or_default().into(),
            location: i["spec"]["location"].as_str().unwrap_or_default().into(),
            size: match &i["status"]["size"] {
                serde_json::Value::String(s) => s.parse().ok(),
                other => other.as_u64(),
            },
            created: i["status"]["creationTime"].as_str().map(str::to_string),
            ready: i["status"]["readyToUse"].as_bool().unwrap_or(false),
        })
        .collect();
    out.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name)));
    Ok(out)
}

/// Every `ETCDSnapshotFile`; `None` when the API does not serve the kind (no embedded etcd, or a
/// K3s older than the objects).
pub async fn list_snapshot_files(client: &Client) -> Result<Option<Vec<SnapshotFile>>, KubeError> {
    let what = "listing ETCDSnapshotFile objects";
    let request = http::Request::get("/apis/k3s.cattle.io/v1/etcdsnapshotfiles")
        .body(Vec::new())
        .map_err(|e| KubeError::api(what, kube::Error::HttpError(e)))?;
    match client.request_text(request).await {
        Ok(body) => parse_snapshot_files(&body)
            .map(Some)
            .map_err(|detail| KubeError::Unexpected {
                what: what.into(),
                detail,
            }),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(KubeError::api(what, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_k3s_snapshot_objects() {
        let list = parse_snapshot_files(
            r#"{"kind":"ETCDSnapshotFileList","items":[
              {"spec":{"snapshotName":"on-demand-s2-20","nodeName":"s2","location":"file:///d/on-demand-s2-20"},
               "status":{"size":"4096","creationTime":"2026-01-01T00:00:20Z","readyToUse":true}},
              {"spec":{"snapshotName":"etcd-snapshot-s1-10","nodeName":"s1","location":"s3://b/etcd-snapshot-s1-10"},
               "status":{"size":12,"creationTime":"2026-01-01T00:00:10Z"}}]}"#,
        )
        .expect("parses");
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].name, "etcd-snapshot-s1-10");
        assert_eq!(list[0].size, Some(12));
        assert!(!list[0].ready);
        assert_eq!(list[1].node, "s2");
        assert_eq!(list[1].size, Some(4096));
        assert!(parse_snapshot_files("{}").is_err());
    }
}
