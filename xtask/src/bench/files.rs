//! Checks that both tools did the same work: the files K3s reads on the server and on an agent
//! (config.yaml, the unit, its env file with the join token masked since each cluster has its
//! own) are compared after each tool's run.

use std::collections::BTreeMap;

use anyhow::Context;

/// Path on a host → content (token masked).
pub type Snapshot = BTreeMap<String, String>;

const FILES: &[(&str, &[&str])] = &[
    (
        "server",
        &[
            "etc/rancher/k3s/config.yaml",
            "etc/systemd/system/k3s.service",
            "etc/systemd/system/k3s.service.env",
        ],
    ),
    (
        "agent",
        &[
            "etc/rancher/k3s/config.yaml",
            "etc/systemd/system/k3s-agent.service",
            "etc/systemd/system/k3s-agent.service.env",
        ],
    ),
];

/// Replaces the value of `K3S_TOKEN=` lines.
fn mask_token(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.starts_with("K3S_TOKEN=") {
                "K3S_TOKEN=<masked>".to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads the files of the first host (server) and the second (an agent).
pub fn snapshot(lab: &lab::Lab) -> anyhow::Result<Snapshot> {
    let hosts = lab.hosts();
    let mut out = Snapshot::new();
    for ((role, paths), host) in FILES.iter().zip(&hosts) {
        let root = lab.root_dir(&host.name)?;
        for path in *paths {
            let text = fs_err::read_to_string(root.join(path))
                .with_context(|| format!("{role} {}: /{path}", host.name))?;
            out.insert(format!("{role}:/{path}"), mask_token(&text));
        }
    }
    Ok(out)
}

/// One line per file: identical or which lines differ.
pub fn compare(k3sctl: &Snapshot, ansible: &Snapshot) -> String {
    let mut out = String::from("\nfiles on the hosts, k3sctl vs Ansible (token masked):\n");
    for (name, ours) in k3sctl {
        let theirs = ansible.get(name).map(String::as_str).unwrap_or("");
        if ours == theirs {
            out.push_str(&format!("  {name}: identical\n"));
            continue;
        }
        out.push_str(&format!("  {name}: DIFFERENT\n"));
        for line in ours.lines().filter(|l| !theirs.lines().any(|t| t == *l)) {
            out.push_str(&format!("    k3sctl only:  {line}\n"));
        }
        for line in theirs.lines().filter(|l| !ours.lines().any(|o| o == *l)) {
            out.push_str(&format!("    Ansible only: {line}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_masked_and_differences_named() {
        assert_eq!(
            mask_token("# x\nK3S_TOKEN=\"K10abc::server:pw\"\nK3S_URL=\"u\""),
            "# x\nK3S_TOKEN=<masked>\nK3S_URL=\"u\""
        );
        let a = Snapshot::from([("f".into(), "a\nb".into())]);
        let b = Snapshot::from([("f".into(), "a\nc".into())]);
        let text = compare(&a, &b);
        assert!(text.contains("k3sctl only:  b"), "{text}");
        assert!(text.contains("Ansible only: c"), "{text}");
        assert!(compare(&a, &a).contains("f: identical"));
    }
}
