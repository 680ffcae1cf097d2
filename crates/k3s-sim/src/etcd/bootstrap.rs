//! Bootstrap data: the cluster CAs a joining server copies from a running one
//! (`GET /v1-k3s/server-bootstrap` with the server token), named as in K3s's bootstrap format
//! (`ServerCA`, `ServerCAKey`, `ClientCA`, ..., `ETCDPeerCAKey`; each `{"Content": base64,
//! "Timestamp": ...}`).

use std::path::Path;

use base64::Engine;
use serde_json::{Value, json};

/// Bootstrap names and their files below `server/tls`.
pub const FILES: &[(&str, &str)] = &[
    ("ServerCA", "server-ca.crt"),
    ("ServerCAKey", "server-ca.key"),
    ("ClientCA", "client-ca.crt"),
    ("ClientCAKey", "client-ca.key"),
    ("ETCDServerCA", "etcd/server-ca.crt"),
    ("ETCDServerCAKey", "etcd/server-ca.key"),
    ("ETCDPeerCA", "etcd/peer-ca.crt"),
    ("ETCDPeerCAKey", "etcd/peer-ca.key"),
];

/// Errors reading or writing bootstrap files.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// File I/O.
    #[error("bootstrap file {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A name missing from the data.
    #[error("bootstrap data from the server lacks {0}")]
    Missing(String),
}

/// Reads the bootstrap files of this server.
pub fn read(tls_dir: &Path) -> Result<Value, BootstrapError> {
    let mut out = serde_json::Map::new();
    for (name, file) in FILES {
        let path = tls_dir.join(file);
        let bytes = fs_err::read(&path).map_err(|source| BootstrapError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let ts = fs_err::metadata(&path)
            .and_then(|m| m.modified())
            .map(|t| crate::clock::rfc3339(time::OffsetDateTime::from(t)))
            .unwrap_or_default();
        out.insert(
            name.to_string(),
            json!({"Timestamp": ts, "Content": base64::engine::general_purpose::STANDARD.encode(bytes)}),
        );
    }
    Ok(Value::Object(out))
}

/// Writes bootstrap data into `tls_dir` (keys 0600, certificates 0644).
pub fn write(tls_dir: &Path, data: &Value) -> Result<(), BootstrapError> {
    for (name, file) in FILES {
        let content = data[*name]["Content"]
            .as_str()
            .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
            .ok_or_else(|| BootstrapError::Missing(name.to_string()))?;
        let path = tls_dir.join(file);
        let mode = if file.ends_with(".key") { 0o600 } else { 0o644 };
        crate::paths::write_atomic(&path, &content, mode).map_err(|source| BootstrapError::Io {
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_between_servers() {
        let a = tempfile::tempdir().expect("tempdir");
        crate::certs::load_server_pki(a.path(), &["127.0.0.1".into()]).expect("pki");
        crate::etcd::pki::ensure(&a.path().join("etcd"), &["127.0.0.1".into()]).expect("etcd pki");
        let data = read(a.path()).expect("read");
        assert!(data["ETCDPeerCAKey"]["Content"].is_string());
        let b = tempfile::tempdir().expect("tempdir");
        write(b.path(), &data).expect("write");
        for (_, f) in FILES {
            assert_eq!(
                fs_err::read(a.path().join(f)).expect("a"),
                fs_err::read(b.path().join(f)).expect("b"),
                "{f}"
            );
        }
        assert!(matches!(
            write(b.path(), &json!({})),
            Err(BootstrapError::Missing(_))
        ));
    }
}
