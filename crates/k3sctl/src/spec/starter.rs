//! The commented starter spec written by `k3sctl init`, and rendering a [`Cluster`] back to YAML.

use super::model::Cluster;

/// The starter spec for a cluster called `name`: one server and one agent over SSH, every
/// section present, optional settings commented out with their defaults.
pub fn starter_spec(name: &str) -> String {
    STARTER.replace("{name}", name)
}

const STARTER: &str = r#"# k3sctl cluster spec. Check it with `k3sctl validate`; the JSON schema (`k3sctl schema`)
# gives editors completion: add `# yaml-language-server: $schema=<path to schema>` on top.
apiVersion: k3sctl.io/v1alpha1
kind: Cluster
metadata:
  name: {name}                    # DNS label: prefix of kubeconfig contexts
spec:
  hostDefaults:                   # merged under every host; host values win
    ssh:
      user: root                  # default: from ~/.ssh/config, else the current user
      # port: 22
      # identityFile: ~/.ssh/id_ed25519
      # acceptNewHostKeys: false  # unknown host keys are refused unless true
    # sudo: true                  # default: true when the user is not root
  hosts:                          # at least one server; an odd number of servers
    - name: server-1
      address: 192.0.2.10         # how k3sctl reaches the host, and its node IP
      role: server
    - name: agent-1
      address: 192.0.2.20
      role: agent
      # group: rack-a             # agents of one group join/upgrade one at a time
      # labels: {topology.kubernetes.io/zone: a}
      # taints: ["dedicated=infra:NoSchedule"]
      # pct: {proxmoxHost: pve1, vmid: 101}   # or lxd: {instance: k3s-1}, or local: true
  k3s:
    version: v1.34.3+k3s1         # or `channel: stable`
    # binary: {file: ./k3s}       # airgap: a local binary instead of the download
  cluster:
    # registrationAddress: 192.0.2.10   # VIP/DNS/LB for joining; default: the first server
    clusterCidr: 10.42.0.0/16
    serviceCidr: 10.43.0.0/16
    # tlsSans: [k3s.example.com]
    # disable: [servicelb]
  # registries:
  #   mirrors:
  #     docker.io: {endpoints: ["https://mirror.example.com"]}
  kubeconfigs:
    - name: admin                 # context {name}-admin
      path: ./{name}.kubeconfig
  upgrade:
    agentBatchSize: 1
    drainTimeout: 5m
"#;

/// Renders `cluster` as YAML, preceded by `header` lines as comments. A header entry that spans
/// several lines (a warning quoting what ssh printed) is commented line by line, so that no
/// line of it can end up outside the comment and break the YAML.
pub fn render_spec(cluster: &Cluster, header: &[String]) -> Result<String, String> {
    let body = serde_saphyr::to_string(cluster).map_err(|error| error.to_string())?;
    let mut text = String::new();
    for line in header.iter().flat_map(|entry| entry.lines()) {
        text.push_str(format!("# {line}").trim_end());
        text.push('\n');
    }
    text.push_str(&body);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_spanning_lines_stays_a_comment() {
        let cluster: Cluster =
            serde_saphyr::from_str(&starter_spec("lab")).expect("the starter spec parses");
        let header = vec![
            "note: host `10.0.0.11` could not be read (ssh: exit 255\nConnection to 10.0.0.11 \
             port 22 timed out\r\n)"
                .to_string(),
        ];
        let text = render_spec(&cluster, &header).expect("renders");
        assert!(text.lines().take(3).all(|l| l.starts_with('#')), "{text}");
        assert!(
            text.contains("# Connection to 10.0.0.11 port 22 timed out\n"),
            "{text}"
        );
        let back: Cluster = serde_saphyr::from_str(&text).expect("the rendered spec parses");
        assert_eq!(back.metadata.name, cluster.metadata.name);
    }
}
