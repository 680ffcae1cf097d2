//! The etcd PKI in K3s's layout under `server/tls/etcd/`: `server-ca` and `peer-ca` (shared by
//! every server through the bootstrap data), `server-client` (client port serving + client),
//! `peer-server-client` (peer port) and `client` (what the API server — and etcdctl — use).

use std::path::Path;

use crate::certs::{Ca, CertError, Leaf, LeafKind, load_or_create_ca, load_or_issue};

/// The files of one server's etcd PKI.
pub struct EtcdPki {
    /// The CA of the client port (trusts `client.crt`; clients verify the member with it).
    pub server_ca: Ca,
    /// The client certificate (CN etcd-client).
    pub client: Leaf,
}

/// The CA names below `server/tls/etcd/` that the bootstrap data carries.
pub const CA_FILES: &[&str] = &["server-ca", "peer-ca"];

/// Loads the etcd PKI, creating the CAs on a new cluster and issuing this member's leaves with
/// `sans` (localhost, 127.0.0.1, the node's name and IPs).
pub fn ensure(dir: &Path, sans: &[String]) -> Result<EtcdPki, CertError> {
    fs_err::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let server_ca = load_or_create_ca(dir, "server-ca", "etcd-server-ca")?;
    let peer_ca = load_or_create_ca(dir, "peer-ca", "etcd-peer-ca")?;
    load_or_issue(
        dir,
        "server-client",
        &server_ca,
        &LeafKind::ServerClient {
            cn: "etcd-server".into(),
            sans: sans.to_vec(),
        },
        false,
    )?;
    load_or_issue(
        dir,
        "peer-server-client",
        &peer_ca,
        &LeafKind::ServerClient {
            cn: "etcd-peer".into(),
            sans: sans.to_vec(),
        },
        false,
    )?;
    let client = load_or_issue(
        dir,
        "client",
        &server_ca,
        &LeafKind::Client {
            cn: "etcd-client".into(),
            org: None,
        },
        false,
    )?;
    Ok(EtcdPki { server_ca, client })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k3s_file_layout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sans = vec![
            "localhost".to_string(),
            "127.0.0.1".into(),
            "10.0.0.5".into(),
        ];
        let pki = ensure(dir.path(), &sans).expect("pki");
        for f in [
            "server-ca.crt",
            "server-ca.key",
            "peer-ca.crt",
            "peer-ca.key",
            "server-client.crt",
            "server-client.key",
            "peer-server-client.crt",
            "peer-server-client.key",
            "client.crt",
            "client.key",
        ] {
            assert!(dir.path().join(f).exists(), "missing {f}");
        }
        let (_, subject, got) = crate::certs::inspect(
            &fs_err::read_to_string(dir.path().join("server-client.crt")).expect("read"),
        )
        .expect("inspect");
        assert!(subject.contains("etcd-server"), "{subject}");
        assert!(got.contains(&"10.0.0.5".to_string()));
        let again = ensure(dir.path(), &sans).expect("again");
        assert_eq!(
            again.client.cert_pem, pki.client.cert_pem,
            "valid leaves are kept"
        );
        assert_eq!(again.server_ca.cert_pem, pki.server_ca.cert_pem);
    }
}
