//! The node password rule: each node keeps a random password in /etc/rancher/node/password; the
//! server stores its hash in Secret `kube-system/<node>.node-password.k3s` and rejects a node of the
//! same name with a different password until the old Node is deleted.

use base64::Engine;
use serde_json::json;
use sha2::Digest;

use crate::store::{ApiError, ObjectStore, ResourceKey};

/// The message k3s logs when a node password does not match.
pub const REJECTED: &str = "Node password rejected, duplicate hostname or contents of '/etc/rancher/node/password' may not match server node-passwd entry, try enabling a unique node name with the --with-node-id flag";

/// Name of the Secret holding a node's password hash.
pub fn secret_name(node: &str) -> String {
    format!("{node}.node-password.k3s")
}

fn hash(password: &str) -> String {
    hex::encode(sha2::Sha256::digest(
        format!("k3s-sim node password {password}").as_bytes(),
    ))
}

/// Accepts the password of a known node, records the first password of a new one, and refuses a
/// different password for an existing one (HTTP 403 with k3s's message).
pub fn verify_or_store(store: &ObjectStore, node: &str, password: &str) -> Result<(), ApiError> {
    let key = ResourceKey::new("secrets", "kube-system", &secret_name(node));
    let want = hash(password);
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Some(secret) = store.get(&key) {
        let stored = secret["data"]["hash"]
            .as_str()
            .and_then(|h| b64.decode(h).ok())
            .map(|b| String::from_utf8_lossy(&b).to_string());
        return if stored.as_deref() == Some(want.as_str()) {
            Ok(())
        } else {
            Err(ApiError::forbidden(REJECTED))
        };
    }
    let secret = json!({
        "metadata": {"name": secret_name(node), "namespace": "kube-system", "immutable": true},
        "type": "k3s.cattle.io/node-password",
        "data": {"hash": b64.encode(want)},
    });
    match store.create("secrets", "kube-system", secret) {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => verify_or_store(store, node, password),
        Err(e) => Err(e),
    }
}

/// Reads the node password file, creating it (mode 0600) with a random password when absent.
pub fn ensure_password_file(path: &std::path::Path) -> std::io::Result<String> {
    match fs_err::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Ok(_) | Err(_) => {
            let pw = crate::token::random_password();
            crate::paths::write_atomic(path, format!("{pw}\n").as_bytes(), 0o600)?;
            Ok(pw)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FileDatastore;

    #[test]
    fn duplicate_hostnames_are_rejected_until_the_secret_goes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ObjectStore::open(Box::new(FileDatastore::open(dir.path()).expect("ds")))
            .expect("store");
        verify_or_store(&store, "a1", "pw1").expect("first");
        verify_or_store(&store, "a1", "pw1").expect("same machine again");
        let err = verify_or_store(&store, "a1", "pw2").expect_err("other machine");
        assert!(
            err.message
                .starts_with("Node password rejected, duplicate hostname")
        );
        store
            .delete(&ResourceKey::new(
                "secrets",
                "kube-system",
                &secret_name("a1"),
            ))
            .expect("delete");
        verify_or_store(&store, "a1", "pw2").expect("after delete");
    }
}
