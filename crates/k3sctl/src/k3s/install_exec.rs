//! The install script's `INSTALL_K3S_EXEC`: the command and flags it writes into the unit's
//! `ExecStart`. Pure.
//!
//! The install script (get.k3s.io, `setup_env`) splits `INSTALL_K3S_EXEC` into words as the
//! shell does (its own arguments follow them); when the first word is empty or starts with
//! `-`, the command is `agent` if `K3S_URL` is set and `server` otherwise; any other first
//! word is the command, and the remaining words are written, quoted, after it into
//! `ExecStart=/usr/local/bin/k3s <command> <flags>`.

use std::collections::BTreeMap;

use super::config::NodeRole;
use super::effective::{config_from_args, split_words};

/// `INSTALL_K3S_EXEC` read as the install script reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstallExec {
    /// The command: `server`, `agent`.
    pub role: NodeRole,
    /// Whether the command was written (otherwise chosen from `K3S_URL`).
    pub role_given: bool,
    /// The flags as config.yaml keys and values (repeatable flags as lists, switches `true`).
    pub config: BTreeMap<String, serde_json::Value>,
}

/// Why `INSTALL_K3S_EXEC` cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallExecError {
    /// Unbalanced quotes and the like.
    #[error("INSTALL_K3S_EXEC `{text}` cannot be split into words: {reason}")]
    Words {
        /// The value.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// A command other than `server` or `agent`.
    #[error("INSTALL_K3S_EXEC `{text}` runs `k3s {command}`, which is neither server nor agent")]
    Command {
        /// The value.
        text: String,
        /// The command.
        command: String,
    },
    /// The flags cannot be read.
    #[error("INSTALL_K3S_EXEC `{text}`: {reason}")]
    Flags {
        /// The value.
        text: String,
        /// What is wrong.
        reason: String,
    },
}

/// Reads `text` (`INSTALL_K3S_EXEC`); `k3s_url_set` tells whether `K3S_URL` was given, which
/// picks the command when `text` names none.
pub fn parse(text: &str, k3s_url_set: bool) -> Result<InstallExec, InstallExecError> {
    let words = split_words(text).map_err(|reason| InstallExecError::Words {
        text: text.to_owned(),
        reason,
    })?;
    let (role, role_given, flags) = match words.first().map(String::as_str) {
        None | Some("") => (default_role(k3s_url_set), false, &words[..]),
        Some(first) if first.starts_with('-') => (default_role(k3s_url_set), false, &words[..]),
        Some("server") => (NodeRole::Server, true, &words[1..]),
        Some("agent") => (NodeRole::Agent, true, &words[1..]),
        Some(other) => {
            return Err(InstallExecError::Command {
                text: text.to_owned(),
                command: other.to_owned(),
            });
        }
    };
    // Re-quoted so that `config_from_args` splits them back into the same words.
    let args = flags
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let config = config_from_args(&args).map_err(|e| InstallExecError::Flags {
        text: text.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(InstallExec {
        role,
        role_given,
        config,
    })
}

fn default_role(k3s_url_set: bool) -> NodeRole {
    if k3s_url_set {
        NodeRole::Agent
    } else {
        NodeRole::Server
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_optional_and_picked_from_k3s_url_as_the_install_script_does() {
        let e = parse("--disable traefik --node-label a=b", false).expect("parses");
        assert_eq!((e.role, e.role_given), (NodeRole::Server, false));
        assert_eq!(e.config["disable"], serde_json::json!(["traefik"]));
        assert_eq!(e.config["node-label"], serde_json::json!(["a=b"]));
        let e = parse("--node-label a=b", true).expect("parses");
        assert_eq!((e.role, e.role_given), (NodeRole::Agent, false));
        let e = parse("", true).expect("parses");
        assert_eq!(e.role, NodeRole::Agent);
        assert!(e.config.is_empty());
        let e = parse("agent --server https://10.0.0.1:6443", false).expect("parses");
        assert_eq!((e.role, e.role_given), (NodeRole::Agent, true));
        assert_eq!(e.config["server"], "https://10.0.0.1:6443");
    }

    #[test]
    fn flags_are_read_like_exec_start_flags() {
        let e = parse(
            "server --cluster-init --tls-san=a.example.com --tls-san b.example.com \
             --kubelet-arg 'max-pods=150' --write-kubeconfig-mode=644 --node-name \"n 1\"",
            true,
        )
        .expect("parses");
        assert_eq!(e.role, NodeRole::Server);
        assert_eq!(e.config["cluster-init"], true);
        assert_eq!(
            e.config["tls-san"],
            serde_json::json!(["a.example.com", "b.example.com"])
        );
        assert_eq!(e.config["kubelet-arg"], serde_json::json!(["max-pods=150"]));
        assert_eq!(e.config["write-kubeconfig-mode"], "644");
        assert_eq!(e.config["node-name"], "n 1");
    }

    #[test]
    fn what_cannot_be_read_says_why() {
        assert!(matches!(
            parse("server --disable 'traefik", false),
            Err(InstallExecError::Words { .. })
        ));
        let err = parse("etcd-snapshot save", false).expect_err("not a node");
        assert_eq!(
            err.to_string(),
            "INSTALL_K3S_EXEC `etcd-snapshot save` runs `k3s etcd-snapshot`, which is neither \
             server nor agent"
        );
        assert!(matches!(
            parse("server stray --disable x", false),
            Err(InstallExecError::Flags { .. })
        ));
    }
}
