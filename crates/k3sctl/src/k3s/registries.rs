//! `/etc/rancher/k3s/registries.yaml`: mirrors and per-registry auth/TLS. Credentials are
//! resolved by the caller into [`Secret`]s; the rendered file is itself a [`Secret`], with a
//! masked twin for plan diffs.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::config::MANAGED_HEADER;
use super::yaml::{YamlError, to_yaml};
use crate::secret::{REDACTED, Secret};

/// Where K3s reads registry configuration.
pub const REGISTRIES_PATH: &str = "/etc/rancher/k3s/registries.yaml";

/// A mirror for one registry name (`docker.io`, or the wildcard `*`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mirror {
    /// Endpoint URLs, tried in order (without scheme means https).
    pub endpoints: Vec<String>,
    /// Regex → replacement rewrites of image names.
    pub rewrite: BTreeMap<String, String>,
}

/// Credentials for a registry, already resolved from their value references.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegistryAuth {
    /// User name.
    pub username: Option<Secret>,
    /// Password.
    pub password: Option<Secret>,
    /// Bearer/identity token.
    pub token: Option<Secret>,
}

/// Client TLS settings for a registry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegistryTls {
    /// CA bundle path on the host.
    pub ca_file: Option<String>,
    /// Client certificate path on the host.
    pub cert_file: Option<String>,
    /// Client key path on the host.
    pub key_file: Option<String>,
    /// Skip server certificate verification.
    pub insecure_skip_verify: bool,
}

/// Auth and TLS for one registry host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegistryConfig {
    /// Credentials.
    pub auth: Option<RegistryAuth>,
    /// TLS settings.
    pub tls: Option<RegistryTls>,
}

/// The whole registries.yaml input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Registries {
    /// Mirrors by registry name.
    pub mirrors: BTreeMap<String, Mirror>,
    /// Configs by registry host.
    pub configs: BTreeMap<String, RegistryConfig>,
}

/// A rendered registries.yaml: the real content and a copy with every credential masked.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedRegistries {
    /// The file to write (mode 0600 when it holds credentials).
    pub content: Secret,
    /// The same file with credentials replaced by the redaction marker, for diffs.
    pub masked: String,
    /// Whether the file holds credentials.
    pub has_credentials: bool,
}

const AUTH_KEYS: &[&str] = &["username", "password", "auth", "identity_token", "token"];

impl Registries {
    /// Whether there is nothing to write (no file is managed then).
    pub fn is_empty(&self) -> bool {
        self.mirrors.is_empty() && self.configs.is_empty()
    }

    fn to_value(&self, show: &dyn Fn(&Secret) -> String) -> Value {
        let mut mirrors = Map::new();
        for (name, mirror) in &self.mirrors {
            let mut m = Map::new();
            m.insert("endpoint".into(), Value::from(mirror.endpoints.clone()));
            if !mirror.rewrite.is_empty() {
                let rewrite: Map<String, Value> = mirror
                    .rewrite
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                    .collect();
                m.insert("rewrite".into(), Value::Object(rewrite));
            }
            mirrors.insert(name.clone(), Value::Object(m));
        }
        let mut configs = Map::new();
        for (host, config) in &self.configs {
            let mut c = Map::new();
            if let Some(auth) = &config.auth {
                let mut a = Map::new();
                for (key, value) in [
                    ("username", &auth.username),
                    ("password", &auth.password),
                    ("identity_token", &auth.token),
                ] {
                    if let Some(secret) = value {
                        a.insert(key.into(), Value::from(show(secret)));
                    }
                }
                c.insert("auth".into(), Value::Object(a));
            }
            if let Some(tls) = &config.tls {
                let mut t = Map::new();
                for (key, value) in [
                    ("ca_file", &tls.ca_file),
                    ("cert_file", &tls.cert_file),
                    ("key_file", &tls.key_file),
                ] {
                    if let Some(path) = value {
                        t.insert(key.into(), Value::from(path.as_str()));
                    }
                }
                if tls.insecure_skip_verify {
                    t.insert("insecure_skip_verify".into(), Value::Bool(true));
                }
                c.insert("tls".into(), Value::Object(t));
            }
            configs.insert(host.clone(), Value::Object(c));
        }
        let mut root = Map::new();
        if !mirrors.is_empty() {
            root.insert("mirrors".into(), Value::Object(mirrors));
        }
        if !configs.is_empty() {
            root.insert("configs".into(), Value::Object(configs));
        }
        Value::Object(root)
    }

    /// Renders the file, or `None` when there are no mirrors and no configs.
    pub fn render(&self) -> Result<Option<RenderedRegistries>, YamlError> {
        if self.is_empty() {
            return Ok(None);
        }
        let content = to_yaml(&self.to_value(&|s| s.expose().to_string()))?;
        let masked = to_yaml(&self.to_value(&|_| REDACTED.to_string()))?;
        let has_credentials = self.configs.values().any(|c| c.auth.is_some());
        Ok(Some(RenderedRegistries {
            content: Secret::new(format!("{MANAGED_HEADER}{content}")),
            masked: format!("{MANAGED_HEADER}{masked}"),
            has_credentials,
        }))
    }
}

/// Masks credential values in a registries.yaml read from a host (any line whose key is an
/// auth field), so an observed file can be diffed against [`RenderedRegistries::masked`].
pub fn mask_registries_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let trimmed = line.trim_start();
        let key = trimmed
            .split(':')
            .next()
            .unwrap_or_default()
            .trim()
            .trim_matches(['"', '\'']);
        let has_value = trimmed
            .split_once(':')
            .is_some_and(|(_, v)| !v.trim().is_empty());
        if AUTH_KEYS.contains(&key) && has_value {
            let indent = &line[..line.len() - trimmed.len()];
            out.push_str(&format!("{indent}{key}: {REDACTED}"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Registries {
        Registries {
            mirrors: BTreeMap::from([
                (
                    "docker.io".into(),
                    Mirror {
                        endpoints: vec!["http://zot.zot.svc.cluster.local:5000".into()],
                        rewrite: BTreeMap::from([("^library/(.*)".into(), "mirror/$1".into())]),
                    },
                ),
                (
                    "*".into(),
                    Mirror {
                        endpoints: vec!["https://mirror.example".into()],
                        ..Default::default()
                    },
                ),
            ]),
            configs: BTreeMap::from([(
                "zot.lumie-infra.com".into(),
                RegistryConfig {
                    auth: Some(RegistryAuth {
                        username: Some(Secret::new("robot")),
                        password: Some(Secret::new("s3cr3t-pass")),
                        token: None,
                    }),
                    tls: Some(RegistryTls {
                        ca_file: Some("/etc/ssl/zot-ca.pem".into()),
                        insecure_skip_verify: true,
                        ..Default::default()
                    }),
                },
            )]),
        }
    }

    #[test]
    fn rendered_file_snapshot_and_masked_twin() {
        let rendered = sample().render().expect("renders").expect("not empty");
        assert!(rendered.has_credentials);
        assert!(rendered.content.expose().contains("password: s3cr3t-pass"));
        assert!(!rendered.masked.contains("s3cr3t") && !rendered.masked.contains("robot"));
        assert!(!format!("{rendered:?}").contains("s3cr3t"));
        insta::assert_snapshot!("registries_content", rendered.content.expose());
        insta::assert_snapshot!("registries_masked", rendered.masked);
    }

    #[test]
    fn wildcard_is_quoted_and_file_parses_back() {
        let rendered = sample().render().expect("renders").expect("not empty");
        let back: Value = serde_saphyr::from_str(rendered.content.expose()).expect("valid YAML");
        assert_eq!(
            back["mirrors"]["*"]["endpoint"][0],
            "https://mirror.example"
        );
        assert_eq!(
            back["configs"]["zot.lumie-infra.com"]["tls"]["insecure_skip_verify"],
            true
        );
    }

    #[test]
    fn observed_file_masking_matches_rendered_mask() {
        let rendered = sample().render().expect("renders").expect("not empty");
        assert_eq!(
            mask_registries_text(rendered.content.expose()),
            rendered.masked
        );
    }

    #[test]
    fn empty_input_manages_no_file() {
        assert_eq!(Registries::default().render().expect("renders"), None);
    }
}
