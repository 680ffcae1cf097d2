use proptest::prelude::*;

use super::*;
use crate::spec::json_schema;
use crate::spec::model::Cluster;

fn outcome(text: &str) -> Outcome {
    let tree = SpanTree::parse(text).expect("well-formed YAML");
    check(&tree, &json_schema(), text)
}

fn findings(text: &str) -> Vec<(u64, u64, String, String)> {
    outcome(text)
        .findings
        .into_iter()
        .map(|f| {
            let at = f.position;
            (at.line, at.column, f.path.to_string(), f.message)
        })
        .collect()
}

const HEAD: &str = "apiVersion: k3sctl.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: demo\n";

#[test]
fn reports_every_structural_problem_with_its_path() {
    let text = format!(
        "{HEAD}spec:
  hosts:
    - name: a
      address: 10.0.0.1
      role: agnt
      ssh: {{port: 70000, identityFile: [x]}}
    - {{name: b, role: server, sudo: maybe}}
  k3s: {{version: v1.34+k3s1}}
  cluster: {{tlsSan: [x], clusterDns: ten}}
  registries:
    configs:
      r: {{auth: {{username: {{value: u}}}}}}
  upgrade: {{groups: sideways, drainTimeout: 5 minutes}}
"
    );
    let got: Vec<(u64, u64, String)> = findings(&text)
        .into_iter()
        .map(|(line, column, path, _)| (line, column, path))
        .collect();
    let want = [
        (9, 13, "spec.hosts[0].role"),
        (10, 19, "spec.hosts[0].ssh.port"),
        (10, 40, "spec.hosts[0].ssh.identityFile"),
        (11, 37, "spec.hosts[1].sudo"),
        // A missing key is reported at the mapping's last key, like the typed read does.
        (11, 31, "spec.hosts[1].address"),
        (12, 18, "spec.k3s.version"),
        (13, 13, "spec.cluster.tlsSan"),
        (13, 38, "spec.cluster.clusterDns"),
        (16, 29, "spec.registries.configs.r.auth.username"),
        (17, 21, "spec.upgrade.groups"),
        (17, 45, "spec.upgrade.drainTimeout"),
    ];
    let want: Vec<(u64, u64, String)> = want
        .iter()
        .map(|(line, column, path)| (*line, *column, (*path).to_owned()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn rebuilds_the_well_formed_rest_and_marks_what_is_not_as_written() {
    let text = format!(
        "{HEAD}spec:
  hosts:
    - {{name: a, address: 10.0.0.1, role: agnt}}
    - {{name: b, address: 10.0.0.1, role: server}}
  k3s: {{version: v1.34.3+k3s1}}
  cluster: {{tlsSan: [x], clusterCidr: 10.42.0.0/99}}
"
    );
    let outcome = outcome(&text);
    let cluster: Cluster =
        serde_json::from_value(outcome.repaired.expect("repairable")).expect("a cluster");
    assert_eq!(cluster.spec.hosts.len(), 2);
    assert_eq!(cluster.spec.hosts[1].address, "10.0.0.1");
    assert_eq!(cluster.spec.cluster.cluster_cidr, None);
    let tainted: Vec<String> = outcome.tainted.iter().map(ToString::to_string).collect();
    assert_eq!(
        tainted,
        [
            "spec.hosts[0].role",
            "spec.cluster.tlsSans",
            "spec.cluster.clusterCidr"
        ]
    );
}

#[test]
fn numbers_in_text_fields_are_read_as_written() {
    let text = format!(
        "{HEAD}spec:\n  hosts: [{{name: 1.10, address: 10.0.0.1, role: server}}]\n  k3s: {{version: 1.20}}\n"
    );
    let outcome = outcome(&text);
    assert_eq!(outcome.findings.len(), 1);
    assert!(
        outcome.findings[0]
            .message
            .starts_with("`1.20` is not a K3s version"),
        "{:?}",
        outcome.findings[0]
    );
    let repaired = outcome.repaired.expect("repairable");
    assert_eq!(repaired["spec"]["hosts"][0]["name"], "1.10");
}

#[test]
fn a_misspelled_required_key_is_one_error_not_two() {
    let text = format!("{HEAD}spec:\n  host: []\n  k3s: {{channel: stable}}\n");
    let got = findings(&text);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].3, "unknown key `host`");
}

#[test]
fn placeholders_stand_in_for_missing_required_keys() {
    // A host's required fields are free text or an enum, so placeholders stand in for them;
    // the malformed optional version is dropped.
    let text = format!("{HEAD}spec:\n  hosts: [{{}}]\n  k3s: {{version: bad}}\n");
    let outcome = outcome(&text);
    let messages: Vec<&str> = outcome
        .findings
        .iter()
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(messages.len(), 4, "{messages:?}");
    assert!(messages.contains(&"missing required key `role`"));
    assert!(outcome.repaired.is_some());
}

fn examples() -> Vec<String> {
    ["oci.yaml", "proxmox.yaml", "lab.yaml"]
        .iter()
        .map(|name| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../examples")
                .join(name);
            fs_err::read_to_string(path).expect("example readable")
        })
        .collect()
}

/// Values that are valid in some places and wrong in others.
const VALUES: &[&str] = &[
    "agnt",
    "server",
    "yes",
    "true",
    "22",
    "\"22\"",
    "-1",
    "70000",
    "~",
    "[a]",
    "{x: 1}",
    "{env: X}",
    "10.0.0.0/99",
    "10.42.0.0/16",
    "5m",
    "soon",
    "v1.34.3+k3s1",
    "stable",
    "10.0.0.1",
    "\"\"",
    "a:NoSchedule",
    "1.5",
];

/// Replaces the value of the `line`-th `key: value` line (or renames its key) in `text`.
fn mutate(text: &str, line: usize, value: &str, rename: bool) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let candidates: Vec<usize> = (0..lines.len())
        .filter(|&i| !lines[i].trim_start().starts_with('#') && lines[i].contains(": "))
        .collect();
    let target = candidates[line % candidates.len()];
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    let (key, _) = lines[target]
        .split_once(": ")
        .unwrap_or((lines[target], ""));
    out[target] = if rename {
        format!("{key}x: {value}")
    } else {
        format!("{key}: {value}")
    };
    out.join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// The walker and the typed read agree: the structural pass finds nothing exactly when the
    /// model accepts the document.
    #[test]
    fn agrees_with_the_typed_read(
        example in 0usize..3,
        line in 0usize..200,
        value in 0usize..VALUES.len(),
        rename in proptest::bool::weighted(0.15),
    ) {
        let text = mutate(&examples()[example], line, VALUES[value], rename);
        let Some(tree) = SpanTree::parse(&text) else { return Ok(()) };
        let options = serde_saphyr::options! { strict_booleans: true };
        let typed = serde_saphyr::from_str_with_options::<Cluster>(&text, options);
        let found = check(&tree, &json_schema(), &text).findings;
        prop_assert_eq!(typed.is_ok(), found.is_empty(), "typed: {:?}\nfound: {:?}\n{}", typed.err(), found, text);
    }
}
