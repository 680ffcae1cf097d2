//! Drift's two sides in one form: a running node's effective configuration from the
//! `k3s.io/node-args` annotation K3s keeps on its Node ([`from_node_args`]) and the one the
//! files k3sctl renders give ([`rendered`]), both normalised by [`super::effective`].
//!
//! Facts (k3s `pkg/configfilearg/parser.go`, `pkg/nodeconfig/nodeconfig.go`): K3s turns every
//! config.yaml key into `--key=value` (one per item of a list, drop-ins after config.yaml,
//! unknown keys dropped) and puts them right after the subcommand, before the command line.
//! The annotation is that list as JSON with every `--flag=value` split in two and the value
//! after a secret flag replaced by `********`. The `K3S_*` environment is not in it.

pub use super::from_node_args;
use super::{Effective, EffectiveError, NodeDefaults, Sources, effective};
use crate::k3s::config::NodeRole;
use crate::k3s::unit::render_unit;

/// The annotation K3s keeps on each Node with the arguments it runs with.
pub const NODE_ARGS_ANNOTATION: &str = "k3s.io/node-args";

/// What the files k3sctl renders give, in the same form: the unit and config.yaml (the env
/// file holds only the join URL and token, which the annotation does not show).
pub fn rendered(
    role: NodeRole,
    config_yaml: &str,
    defaults: &NodeDefaults,
) -> Result<Effective, EffectiveError> {
    let sources = Sources {
        unit: render_unit(role),
        config: Some(config_yaml.to_owned()),
        ..Sources::default()
    };
    effective(&sources, defaults)
}

#[cfg(test)]
mod tests {
    use super::super::{Change, Compare, changes};
    use super::*;

    const CONFIG: &str = "# Managed by k3sctl\nnode-name: s1\nnode-ip: 10.0.0.2\n\
        write-kubeconfig-mode: \"0600\"\ntls-san:\n- 10.0.0.2\n- k3s.example.com\n\
        node-label:\n- zone=a\nprotect-kernel-defaults: true\nkubelet-arg:\n- max-pods=150\n";

    /// The annotation K3s writes for that config: subcommand, then each `--key=value` split.
    const ANNOTATION: &str = r#"["server","--node-name","s1","--node-ip","10.0.0.2",
        "--write-kubeconfig-mode","0600","--tls-san","10.0.0.2","--tls-san","k3s.example.com",
        "--node-label","zone=a","--protect-kernel-defaults","true","--kubelet-arg","max-pods=150"]"#;

    const SERVER: Compare = Compare {
        role: NodeRole::Server,
        server_with_data: true,
    };

    fn declared() -> Effective {
        rendered(NodeRole::Server, CONFIG, &NodeDefaults::default()).expect("config")
    }

    fn change(key: &str, before: Option<&str>, after: Option<&str>) -> Change {
        Change {
            key: key.into(),
            before: before.map(str::to_owned),
            after: after.map(str::to_owned),
        }
    }

    #[test]
    fn a_config_and_the_annotation_k3s_writes_for_it_agree() {
        let live = from_node_args(ANNOTATION, &NodeDefaults::default()).expect("annotation");
        assert_eq!(live.subcommand, "server");
        assert_eq!(changes(&declared(), &live, SERVER), []);
    }

    #[test]
    fn differences_are_named_by_flag() {
        let table: &[(&str, &str, Vec<Change>)] = &[
            (
                "a drop-in added a kubelet argument",
                r#"["server","--node-name","s1","--node-ip","10.0.0.2","--write-kubeconfig-mode",
                   "0600","--tls-san","10.0.0.2","--tls-san","k3s.example.com","--node-label",
                   "zone=a","--protect-kernel-defaults","true","--kubelet-arg","max-pods=150",
                   "--kubelet-arg","max-pods=50"]"#,
                vec![change(
                    "kubelet-arg",
                    Some("[max-pods=150]"),
                    Some("[max-pods=150, max-pods=50]"),
                )],
            ),
            (
                "config.yaml edited by hand: a value changed, a key removed",
                r#"["server","--node-name","s1","--node-ip","10.0.0.9","--write-kubeconfig-mode",
                   "0600","--tls-san","10.0.0.2","--tls-san","k3s.example.com","--node-label",
                   "zone=a","--protect-kernel-defaults","true"]"#,
                vec![
                    change("kubelet-arg", Some("[max-pods=150]"), None),
                    change("node-ip", Some("[10.0.0.2]"), Some("[10.0.0.9]")),
                    // 10.0.0.2 is no longer the node's own address, so it is a SAN of its own.
                    change(
                        "tls-san",
                        Some("[k3s.example.com]"),
                        Some("[10.0.0.2, k3s.example.com]"),
                    ),
                ],
            ),
            (
                "another subcommand, a switch on the command line and a token by alias",
                r#"["agent","--node-name","s1","--node-ip","10.0.0.2","--write-kubeconfig-mode",
                   "0600","--tls-san","10.0.0.2","--tls-san","k3s.example.com","--node-label",
                   "zone=a","--protect-kernel-defaults","true","--kubelet-arg","max-pods=150",
                   "-t","********","--debug"]"#,
                vec![
                    change("subcommand", Some("server"), Some("agent")),
                    change("debug", None, Some("true")),
                ],
            ),
        ];
        for (case, annotation, want) in table {
            let live = from_node_args(annotation, &NodeDefaults::default()).expect(case);
            assert_eq!(&changes(&declared(), &live, SERVER), want, "{case}");
        }
        // An agent has no datastore: a token only on one side is a difference (never shown).
        let agent = Compare {
            role: NodeRole::Agent,
            server_with_data: false,
        };
        let live = from_node_args(
            r#"["agent","--node-name","a1","--token","********"]"#,
            &NodeDefaults::default(),
        )
        .expect("annotation");
        let declared =
            rendered(NodeRole::Agent, "node-name: a1\n", &NodeDefaults::default()).expect("config");
        assert_eq!(
            changes(&declared, &live, agent),
            [change("token", None, Some(crate::secret::REDACTED))]
        );
    }

    #[test]
    fn unreadable_annotations_are_errors_not_panics() {
        for bad in ["{\"not\": \"a list\"}", r#"["server","stray"]"#] {
            assert!(
                from_node_args(bad, &NodeDefaults::default()).is_err(),
                "{bad}"
            );
        }
    }
}
