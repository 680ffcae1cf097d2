//! K3s's effective arguments, normalised so that a rendered config.yaml and the `k3s.io/node-args`
//! annotation of a running node can be compared (one normaliser for every such comparison).
//!
//! Facts (k3s `pkg/configfilearg/parser.go`, `pkg/nodeconfig/nodeconfig.go`): K3s turns every
//! config.yaml key into `--key=value` (one per item of a list, keys in the order they first
//! appear in config.yaml and then the drop-ins of config.yaml.d, `key+` appending), drops keys
//! that are not flags of the subcommand, and puts them right after the subcommand, before the
//! command-line arguments. The annotation is that list as JSON with every `--flag=value` split
//! in two and the values of secret flags (`--token`, `--agent-token`, ...) replaced by
//! `********`.

use std::collections::BTreeMap;

use serde_json::Value;

/// The annotation K3s keeps on each Node with the arguments it runs with.
pub const NODE_ARGS_ANNOTATION: &str = "k3s.io/node-args";

/// What K3s writes in place of a secret value.
pub const REDACTED: &str = "********";

/// Arguments as flag → values (in the order given), the subcommand apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EffectiveArgs {
    /// `server` or `agent`, when known.
    pub subcommand: Option<String>,
    /// Flag name without dashes → its values.
    pub flags: BTreeMap<String, Vec<String>>,
}

/// An input could not be read as arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeArgsError {
    /// config.yaml is not a YAML mapping.
    #[error("config.yaml is not a YAML mapping: {0}")]
    Config(String),
    /// The annotation is not a JSON list of strings.
    #[error("{NODE_ARGS_ANNOTATION} is not a JSON list of strings: {0}")]
    Annotation(String),
}

/// A scalar as K3s's config parser writes it into an argument (`true`, `10`, text as is).
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The arguments K3s derives from a config.yaml (without drop-ins or command line).
pub fn from_config_yaml(text: &str) -> Result<EffectiveArgs, NodeArgsError> {
    let value: Value =
        serde_saphyr::from_str(text).map_err(|e| NodeArgsError::Config(e.to_string()))?;
    let map = match value {
        Value::Object(map) => map,
        Value::Null => Default::default(),
        _ => {
            return Err(NodeArgsError::Config(
                "the top level is not a mapping".into(),
            ));
        }
    };
    let mut args = EffectiveArgs::default();
    for (key, value) in map {
        let (name, append) = match key.strip_suffix('+') {
            Some(name) => (name.to_string(), true),
            None => (key, false),
        };
        let values: Vec<String> = match &value {
            Value::Array(items) => items.iter().map(scalar_text).collect(),
            other => vec![scalar_text(other)],
        };
        let slot = args.flags.entry(name).or_default();
        if !append {
            slot.clear();
        }
        slot.extend(values);
    }
    Ok(args)
}

/// Reads the `k3s.io/node-args` annotation: a leading word is the subcommand; `--flag value`
/// pairs (K3s splits `--flag=value`); a flag followed by another flag or by nothing is a
/// boolean given on the command line (`true`). A value that itself starts with `-` cannot be
/// told from a flag and is read as one.
pub fn from_node_args(annotation: &str) -> Result<EffectiveArgs, NodeArgsError> {
    let items: Vec<String> =
        serde_json::from_str(annotation).map_err(|e| NodeArgsError::Annotation(e.to_string()))?;
    let mut args = EffectiveArgs::default();
    let mut rest = items.into_iter().peekable();
    if let Some(first) = rest.peek()
        && !first.starts_with('-')
    {
        args.subcommand = rest.next();
    }
    while let Some(item) = rest.next() {
        let Some(flag) = item.strip_prefix('-') else {
            // A stray positional argument: kept under its own text so that it shows.
            args.flags.entry(item).or_default().push(String::new());
            continue;
        };
        let flag = flag.trim_start_matches('-');
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name.to_string(), value.to_string()),
            None => {
                let value = match rest.peek() {
                    Some(next) if !next.starts_with('-') => rest.next().unwrap_or_default(),
                    _ => "true".to_string(),
                };
                (flag.to_string(), value)
            }
        };
        args.flags.entry(name).or_default().push(value);
    }
    Ok(args)
}

/// One flag whose values differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDifference {
    /// Flag name (without dashes), or `subcommand`.
    pub flag: String,
    /// What the rendered configuration gives (empty: not set).
    pub declared: Vec<String>,
    /// What the node runs with (empty: not set).
    pub live: Vec<String>,
}

fn same_values(declared: &[String], live: &[String]) -> bool {
    declared.len() == live.len()
        && declared
            .iter()
            .zip(live)
            .all(|(d, l)| l == REDACTED || d == l)
}

/// The flags whose values differ between `declared` and `live`, by flag name. A redacted live
/// value matches any declared value; a subcommand is compared only when both sides know it.
pub fn compare(declared: &EffectiveArgs, live: &EffectiveArgs) -> Vec<ArgDifference> {
    let mut out = Vec::new();
    if let (Some(d), Some(l)) = (&declared.subcommand, &live.subcommand)
        && d != l
    {
        out.push(ArgDifference {
            flag: "subcommand".into(),
            declared: vec![d.clone()],
            live: vec![l.clone()],
        });
    }
    let names: std::collections::BTreeSet<&String> =
        declared.flags.keys().chain(live.flags.keys()).collect();
    for name in names {
        let d = declared.flags.get(name).cloned().unwrap_or_default();
        let l = live.flags.get(name).cloned().unwrap_or_default();
        if !same_values(&d, &l) {
            out.push(ArgDifference {
                flag: name.clone(),
                declared: d,
                live: l,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "# Managed by k3sctl\nnode-name: s1\nnode-ip: 10.0.0.2\n\
        write-kubeconfig-mode: \"0600\"\ntls-san:\n- 10.0.0.2\n- k3s.example.com\n\
        node-label:\n- zone=a\nprotect-kernel-defaults: true\nkubelet-arg:\n- max-pods=150\n";

    /// The annotation the same config gives on K3s: subcommand, then each `--key=value` split.
    const ANNOTATION: &str = r#"["server","--node-name","s1","--node-ip","10.0.0.2",
        "--write-kubeconfig-mode","0600","--tls-san","10.0.0.2","--tls-san","k3s.example.com",
        "--node-label","zone=a","--protect-kernel-defaults","true","--kubelet-arg","max-pods=150"]"#;

    fn declared() -> EffectiveArgs {
        let mut args = from_config_yaml(CONFIG).expect("config");
        args.subcommand = Some("server".into());
        args
    }

    #[test]
    fn a_config_and_the_annotation_k3s_writes_for_it_agree() {
        let live = from_node_args(ANNOTATION).expect("annotation");
        assert_eq!(live.subcommand.as_deref(), Some("server"));
        assert_eq!(live.flags["tls-san"], ["10.0.0.2", "k3s.example.com"]);
        assert_eq!(live.flags["protect-kernel-defaults"], ["true"]);
        assert_eq!(compare(&declared(), &live), []);
    }

    /// A differing flag: name, declared values, live values.
    type Expected = (
        &'static str,
        &'static [&'static str],
        &'static [&'static str],
    );

    #[test]
    fn differences_are_named_by_flag() {
        // Each case: the live annotation → the differing flags (declared, live).
        let table: &[(&str, &str, &[Expected])] = &[
            (
                "a drop-in added a kubelet argument",
                r#"["server","--node-name","s1","--node-ip","10.0.0.2","--write-kubeconfig-mode",
                   "0600","--tls-san","10.0.0.2","--tls-san","k3s.example.com","--node-label",
                   "zone=a","--protect-kernel-defaults","true","--kubelet-arg","max-pods=150",
                   "--kubelet-arg","max-pods=50"]"#,
                &[(
                    "kubelet-arg",
                    &["max-pods=150"],
                    &["max-pods=150", "max-pods=50"],
                )],
            ),
            (
                "config.yaml edited by hand: a value changed and a key removed",
                r#"["server","--node-name","s1","--node-ip","10.0.0.9","--write-kubeconfig-mode",
                   "0600","--tls-san","10.0.0.2","--tls-san","k3s.example.com","--node-label",
                   "zone=a","--protect-kernel-defaults","true"]"#,
                &[
                    ("kubelet-arg", &["max-pods=150"], &[]),
                    ("node-ip", &["10.0.0.2"], &["10.0.0.9"]),
                ],
            ),
            (
                "a boolean on the command line and a redacted token from a drop-in",
                r#"["agent","--node-name","s1","--node-ip","10.0.0.2","--write-kubeconfig-mode",
                   "0600","--tls-san","10.0.0.2","--tls-san","k3s.example.com","--node-label",
                   "zone=a","--protect-kernel-defaults","true","--kubelet-arg","max-pods=150",
                   "--token","********","--debug"]"#,
                &[
                    ("debug", &[], &["true"]),
                    ("subcommand", &["server"], &["agent"]),
                    ("token", &[], &[REDACTED]),
                ],
            ),
        ];
        for (case, annotation, want) in table {
            let live = from_node_args(annotation).expect(case);
            let mut got: Vec<(String, Vec<String>, Vec<String>)> = compare(&declared(), &live)
                .into_iter()
                .map(|d| (d.flag, d.declared, d.live))
                .collect();
            got.sort();
            let want: Vec<(String, Vec<String>, Vec<String>)> = want
                .iter()
                .map(|(f, d, l)| {
                    (
                        f.to_string(),
                        d.iter().map(|s| s.to_string()).collect(),
                        l.iter().map(|s| s.to_string()).collect(),
                    )
                })
                .collect();
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn a_redacted_value_matches_and_appending_keys_extend() {
        let declared = from_config_yaml("a: x\nb: [1, 2]\nb+: [3]\nc: null\n").expect("yaml");
        assert_eq!(declared.flags["b"], ["1", "2", "3"]);
        assert_eq!(declared.flags["c"], [""]);
        let live = from_node_args(r#"["--a","********","--b","1","--b=2","-b","3","--c",""]"#)
            .expect("annotation");
        assert_eq!(live.subcommand, None);
        assert_eq!(compare(&declared, &live), []);
    }

    #[test]
    fn unreadable_inputs_are_errors_not_panics() {
        assert!(matches!(
            from_node_args("{\"not\": \"a list\"}"),
            Err(NodeArgsError::Annotation(_))
        ));
        assert!(matches!(
            from_config_yaml("- a\n- b\n"),
            Err(NodeArgsError::Config(_))
        ));
        assert_eq!(
            from_config_yaml("# only a comment\n"),
            Ok(EffectiveArgs::default())
        );
    }
}
