//! Container registry mirrors and registry credentials (K3s registries.yaml).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Registry mirrors and per-registry configuration, written to /etc/rancher/k3s/registries.yaml
/// on every node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Registries {
    /// Mirrors by upstream registry host (for example `docker.io`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mirrors: BTreeMap<String, Mirror>,
    /// Authentication and TLS settings by registry host.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, RegistryConfig>,
}

/// Where pulls of one upstream registry go first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Mirror {
    /// Mirror endpoints tried in order, for example `http://zot.zot.svc.cluster.local:5000`.
    pub endpoints: Vec<String>,
    /// Repository rewrites: regular expression → replacement.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rewrite: BTreeMap<String, String>,
}

/// Credentials and TLS settings of one registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistryConfig {
    /// Credentials, as references (never inline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<RegistryAuth>,
    /// TLS client settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<RegistryTls>,
}

/// Registry credentials. Each value is a reference to an environment variable or a file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistryAuth {
    /// The user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<ValueRef>,
    /// The password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<ValueRef>,
    /// An identity token, instead of user name and password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<ValueRef>,
}

/// A reference to a value kept outside the spec: `{env: NAME}` or `{file: PATH}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum ValueRef {
    /// The value of this environment variable of the k3sctl process, read at apply time.
    Env(String),
    /// The content of this file (relative to the spec file), read at apply time, trailing
    /// newline removed.
    File(String),
}

/// TLS client settings of a registry (files relative to the spec file).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistryTls {
    /// CA bundle that signs the registry's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    /// Client key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// Skip verification of the registry's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
}

impl RegistryAuth {
    /// The references that are set, with their field names.
    pub fn refs(&self) -> impl Iterator<Item = (&'static str, &ValueRef)> {
        [
            ("username", &self.username),
            ("password", &self.password),
            ("token", &self.token),
        ]
        .into_iter()
        .filter_map(|(field, value)| value.as_ref().map(|value| (field, value)))
    }
}
