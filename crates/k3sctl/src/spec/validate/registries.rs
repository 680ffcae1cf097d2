//! Rules about registry mirrors and registry credentials.

use super::Issue;
use super::k3s::is_http_url;
use crate::spec::model::Cluster;
use crate::spec_path;

/// Mirror endpoints and rewrites, registry credentials.
pub(super) fn check(cluster: &Cluster, issues: &mut Vec<Issue>) {
    for (registry, mirror) in &cluster.spec.registries.mirrors {
        let path = spec_path!["spec", "registries", "mirrors", registry, "endpoints"];
        if mirror.endpoints.is_empty() {
            issues.push(Issue::new(
                path.clone(),
                format!("mirror `{registry}` has no endpoints"),
            ));
        }
        for (i, endpoint) in mirror.endpoints.iter().enumerate() {
            if !is_http_url(endpoint) {
                issues.push(
                    Issue::new(
                        path.index(i),
                        format!("mirror endpoint `{endpoint}` is not an http(s) URL"),
                    )
                    .hint("write it as http://HOST:PORT or https://HOST"),
                );
            }
        }
    }
    check_rewrites(cluster, issues);
    for (registry, config) in &cluster.spec.registries.configs {
        let Some(auth) = &config.auth else { continue };
        let path = spec_path!["spec", "registries", "configs", registry, "auth"];
        if auth.token.is_some() && (auth.username.is_some() || auth.password.is_some()) {
            issues.push(
                Issue::new(
                    path.key("token"),
                    "`token` is set together with username/password",
                )
                .at_key()
                .hint("use either an identity token or a user name and password"),
            );
        }
        if auth.username.is_some() != auth.password.is_some() {
            issues
                .push(Issue::new(path, "`username` and `password` must be set together").at_key());
        }
    }
}

/// Each rewrite pattern must be a regular expression containerd can compile (Go RE2 syntax,
/// which the `regex` crate follows).
fn check_rewrites(cluster: &Cluster, issues: &mut Vec<Issue>) {
    for (registry, mirror) in &cluster.spec.registries.mirrors {
        for pattern in mirror.rewrite.keys() {
            if let Err(error) = regex::Regex::new(pattern) {
                let reason = match error {
                    regex::Error::Syntax(text) => text
                        .lines()
                        .last()
                        .unwrap_or_default()
                        .trim_start_matches("error: ")
                        .to_owned(),
                    other => other.to_string(),
                };
                issues.push(
                    Issue::new(
                        spec_path!["spec", "registries", "mirrors", registry, "rewrite", pattern],
                        format!("rewrite pattern `{pattern}` of mirror `{registry}` is not a valid regular expression: {reason}"),
                    )
                    .at_key()
                    .hint("write an RE2 regular expression, for example `^library/(.*)`"),
                );
            }
        }
    }
}
