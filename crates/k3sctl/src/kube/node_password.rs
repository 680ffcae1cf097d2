//! K3s's node password rule (docs.k3s.io/architecture, "How Agent Node Registration Works"): a
//! node's password hash lives in Secret `kube-system/<node>.node-password.k3s`, and a host that
//! registers under the same name with another password (a reinstalled or wiped host) is
//! rejected ("Node password rejected, duplicate hostname ...") until that Secret is gone.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::DeleteParams;

use super::Client;
use super::error::KubeError;
use super::status_code;

/// Name of the Secret holding node `node`'s password hash.
pub fn node_password_secret(node: &str) -> String {
    format!("{node}.node-password.k3s")
}

/// Deletes node `node`'s password Secret; true when there was one.
pub async fn delete_node_password(client: &Client, node: &str) -> Result<bool, KubeError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), "kube-system");
    let name = node_password_secret(node);
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => Ok(true),
        Err(e) if status_code(&e) == Some(404) => Ok(false),
        Err(e) => Err(KubeError::api(
            format!("deleting secret kube-system/{name}"),
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_secret_is_named_as_k3s_names_it() {
        assert_eq!(
            super::node_password_secret("agent-1"),
            "agent-1.node-password.k3s"
        );
    }
}
