//! K3s's registries.yaml (as a host has it, or as k3s-ansible's `registries_config_yaml`
//! writes it) → the spec's `registries`: mirrors with their endpoints and rewrites, per-registry
//! TLS settings. Credentials are never carried: the spec holds them only as `{env: NAME}` or
//! `{file: PATH}` references, so a registry with `auth` is named for the user. Pure.

use crate::spec::model::{Mirror, Registries, RegistryConfig, RegistryTls};

/// What registries.yaml gives the spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportedRegistries {
    /// Mirrors and TLS settings.
    pub registries: Registries,
    /// Registries whose credentials were left out.
    pub with_credentials: Vec<String>,
}

/// Reads registries.yaml text; an error says why it is not valid YAML.
pub fn from_registries_yaml(text: &str) -> Result<ImportedRegistries, String> {
    let value: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    let mut out = ImportedRegistries::default();
    if let Some(mirrors) = value.get("mirrors").and_then(|m| m.as_object()) {
        for (name, mirror) in mirrors {
            let endpoints = mirror
                .get("endpoint")
                .and_then(|e| e.as_array())
                .map(|e| {
                    e.iter()
                        .filter_map(|x| x.as_str().map(ToOwned::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let rewrite = mirror
                .get("rewrite")
                .and_then(|r| r.as_object())
                .map(|r| {
                    r.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            out.registries
                .mirrors
                .insert(name.clone(), Mirror { endpoints, rewrite });
        }
    }
    if let Some(configs) = value.get("configs").and_then(|c| c.as_object()) {
        for (name, config) in configs {
            if config.get("auth").is_some() {
                out.with_credentials.push(name.clone());
            }
            let tls = config.get("tls").map(|t| {
                let text = |k: &str| t.get(k).and_then(|v| v.as_str()).map(ToOwned::to_owned);
                RegistryTls {
                    ca_file: text("ca_file"),
                    cert_file: text("cert_file"),
                    key_file: text("key_file"),
                    insecure_skip_verify: t.get("insecure_skip_verify").and_then(|v| v.as_bool()),
                }
            });
            out.registries
                .configs
                .insert(name.clone(), RegistryConfig { auth: None, tls });
        }
    }
    Ok(out)
}

/// The warning for registries whose credentials were left out (`where_` says where they were:
/// a host's file or an inventory variable).
pub fn credentials_warning(where_: &str, name: &str) -> String {
    format!(
        "{where_}: the credentials of registry {name} are not written to the spec: add them as \
         spec.registries.configs.{name}.auth with {{env: NAME}} or {{file: PATH}} references \
         (until then apply rewrites registries.yaml without them)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_rewrites_and_tls_are_carried_and_credentials_named() {
        let imported = from_registries_yaml(
            "mirrors:\n  docker.io:\n    endpoint: [\"https://mirror:5000\"]\n    rewrite:\n      \
             \"^rancher/(.*)\": \"mirrored/$1\"\nconfigs:\n  mirror:5000:\n    auth: {username: a, \
             password: secret}\n    tls: {ca_file: /etc/ca.pem, insecure_skip_verify: true}\n",
        )
        .expect("reads");
        let mirror = &imported.registries.mirrors["docker.io"];
        assert_eq!(mirror.endpoints, ["https://mirror:5000"]);
        assert_eq!(mirror.rewrite["^rancher/(.*)"], "mirrored/$1");
        let config = &imported.registries.configs["mirror:5000"];
        assert_eq!(config.auth, None);
        let tls = config.tls.as_ref().expect("tls");
        assert_eq!(tls.ca_file.as_deref(), Some("/etc/ca.pem"));
        assert_eq!(tls.insecure_skip_verify, Some(true));
        assert_eq!(imported.with_credentials, ["mirror:5000"]);
        assert!(!format!("{imported:?}").contains("secret"));
        assert!(from_registries_yaml("mirrors: [\n").is_err());
    }
}
