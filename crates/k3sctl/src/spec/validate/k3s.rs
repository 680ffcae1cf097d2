//! Rules about the K3s release and binary source.

use super::Issue;
use crate::spec::model::Cluster;
use crate::spec_path;

pub(super) fn check(cluster: &Cluster, issues: &mut Vec<Issue>) {
    let k3s = &cluster.spec.k3s;
    match (&k3s.version, &k3s.channel) {
        (Some(_), Some(_)) => issues.push(
            Issue::new(
                spec_path!["spec", "k3s", "channel"],
                "both `version` and `channel` are set",
            )
            .at_key()
            .hint("keep one: an exact `version` pins the release, a `channel` follows it"),
        ),
        (None, None) => issues.push(
            Issue::new(
                spec_path!["spec", "k3s"],
                "neither `version` nor `channel` is set",
            )
            .at_key()
            .hint("add `version: v1.34.3+k3s1` or `channel: stable`"),
        ),
        _ => {}
    }
    if let Some(url) = &k3s.channel_url
        && !is_http_url(url)
    {
        issues.push(Issue::new(
            spec_path!["spec", "k3s", "channelUrl"],
            format!("channel URL `{url}` is not an http(s) URL"),
        ));
    }
    let Some(binary) = &k3s.binary else { return };
    match (&binary.url, &binary.file) {
        (Some(_), Some(_)) => issues.push(
            Issue::new(
                spec_path!["spec", "k3s", "binary", "file"],
                "both `url` and `file` are set",
            )
            .at_key()
            .hint(
                "use `url` to download the binary or `file` for a local (airgap) binary, not both",
            ),
        ),
        (None, None) => issues.push(
            Issue::new(
                spec_path!["spec", "k3s", "binary"],
                "neither `url` nor `file` is set",
            )
            .at_key()
            .hint("set one of them, or remove `binary` to download from GitHub releases"),
        ),
        _ => {}
    }
    if binary.file.is_some() && binary.sha256_url.is_some() {
        issues.push(
            Issue::new(
                spec_path!["spec", "k3s", "binary", "sha256Url"],
                "`sha256Url` is set for a local file",
            )
            .at_key()
            .hint("the checksum URL applies to downloads only: remove it"),
        );
    }
    for (field, value) in [("url", &binary.url), ("sha256Url", &binary.sha256_url)] {
        if let Some(value) = value
            && !is_http_url(value)
        {
            issues.push(Issue::new(
                spec_path!["spec", "k3s", "binary", field],
                format!("`{value}` is not an http(s) URL"),
            ));
        }
    }
}

/// `http://` or `https://` followed by something.
pub(super) fn is_http_url(text: &str) -> bool {
    ["http://", "https://"].iter().any(|scheme| {
        text.strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace))
    })
}
