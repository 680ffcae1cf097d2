//! Checks, at use time, that environment variables the spec refers to are set. Missing
//! variables are reported by name; values are never read into messages.

use super::model::{Cluster, ValueRef};

/// An environment variable the spec needs that is not set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingEnv {
    /// The variable's name.
    pub name: String,
    /// Where the spec refers to it (`spec.registries.configs.REGISTRY.auth.password`).
    pub used_at: String,
}

/// Missing environment variables of the spec's `{env: NAME}` references, or `Ok` when all are
/// set. `lookup` answers whether a variable is set (use [`env_is_set`] for the process
/// environment).
pub fn check_env_refs(
    cluster: &Cluster,
    lookup: impl Fn(&str) -> bool,
) -> Result<(), Vec<MissingEnv>> {
    let mut missing = Vec::new();
    for (registry, config) in &cluster.spec.registries.configs {
        let Some(auth) = &config.auth else { continue };
        for (field, value) in auth.refs() {
            if let ValueRef::Env(name) = value
                && !lookup(name)
            {
                missing.push(MissingEnv {
                    name: name.clone(),
                    used_at: format!("spec.registries.configs.{registry}.auth.{field}"),
                });
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing)
    }
}

/// Whether the process environment has `name` set to a non-empty value.
pub fn env_is_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|value| !value.is_empty())
}

impl std::fmt::Display for MissingEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "environment variable {} is not set (used at {}): export it before running k3sctl",
            self.name, self.used_at
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{ValidationContext, load_str};

    #[test]
    fn reports_missing_variables_by_name_only() {
        let text = "\
apiVersion: k3sctl.io/v1alpha1
kind: Cluster
metadata: {name: env}
spec:
  hosts: [{name: s, address: 10.0.0.1, role: server}]
  k3s: {version: v1.34.3+k3s1}
  registries:
    configs:
      zot.example.com:
        auth: {username: {env: ZOT_USER}, password: {env: ZOT_PASSWORD}}
";
        let cluster =
            load_str(text, "env.yaml", &ValidationContext::from_env(".".into())).expect("valid");
        let set = |name: &str| name == "ZOT_USER";
        let missing = check_env_refs(&cluster, set).expect_err("password unset");
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].name, "ZOT_PASSWORD");
        assert_eq!(
            missing[0].used_at,
            "spec.registries.configs.zot.example.com.auth.password"
        );
        assert_eq!(
            missing[0].to_string(),
            "environment variable ZOT_PASSWORD is not set (used at spec.registries.configs.zot.example.com.auth.password): export it before running k3sctl"
        );
        assert!(check_env_refs(&cluster, |_| true).is_ok());
    }
}
