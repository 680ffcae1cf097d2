//! `k3s completion bash|zsh` prints a shell completion script, and the hidden
//! `--generate-bash-completion` flag (urfave/cli's protocol, which K3s's scripts call back into)
//! answers the candidates for the words typed so far: commands, subcommands, or a command's
//! flags when the word being completed starts with `-`.

use crate::flags::{FLAGS, Role, Scope};

/// The flag urfave/cli reserves for completion callbacks.
pub const GENERATE_FLAG: &str = "--generate-bash-completion";

/// Top-level commands of `k3s`, as `k3s --help` lists them.
pub const COMMANDS: &[&str] = &[
    "server",
    "agent",
    "kubectl",
    "crictl",
    "ctr",
    "check-config",
    "certificate",
    "token",
    "completion",
    "help",
];

/// Renders the completion script for `shell` (`bash` or `zsh`).
pub fn script(shell: &str) -> Option<String> {
    match shell {
        "bash" => Some(
            r#"#! /bin/bash
# k3s completion for bash: asks k3s itself for the candidates of the current word.
_cli_bash_autocomplete() {
  if [[ "${COMP_WORDS[0]}" == "source" ]]; then
    return 0
  fi
  local cur candidates
  COMPREPLY=()
  cur="${COMP_WORDS[COMP_CWORD]}"
  if [[ "$cur" == "-"* ]]; then
    candidates=$( "${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null )
  else
    candidates=$( "${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null )
  fi
  COMPREPLY=( $(compgen -W "${candidates}" -- "${cur}") )
  return 0
}

complete -o bashdefault -o default -o nospace -F _cli_bash_autocomplete k3s
"#
            .to_string(),
        ),
        "zsh" => Some(
            r#"#compdef k3s
# k3s completion for zsh: asks k3s itself for the candidates of the current word.
_cli_zsh_autocomplete() {
  local -a candidates
  local cur
  cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    candidates=("${(@f)$(_CLI_ZSH_AUTOCOMPLETE_HACK=1 ${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion)}")
  else
    candidates=("${(@f)$(_CLI_ZSH_AUTOCOMPLETE_HACK=1 ${words[@]:0:#words[@]-1} --generate-bash-completion)}")
  fi
  if [[ "${candidates[1]}" != "" ]]; then
    _describe 'values' candidates
  else
    _files
  fi
}

compdef _cli_zsh_autocomplete k3s
"#
            .to_string(),
        ),
        _ => None,
    }
}

/// `k3s completion SHELL`.
pub fn run(args: &[String]) -> i32 {
    let Some(shell) = args.iter().find(|a| !a.starts_with('-')) else {
        crate::log::fatal("must provide a valid SHELL argument");
        return 1;
    };
    if let Some(flag) = args.iter().find(|a| a.starts_with('-')) {
        crate::log::fatal(format!(
            "k3s-sim: completion {flag} is not implemented (the stand-in installs nothing); use `source <(k3s completion {shell})`"
        ));
        return 1;
    }
    match script(shell) {
        Some(s) => {
            print!("{s}");
            0
        }
        None => {
            crate::log::fatal(format!("unknown shell: {shell}"));
            1
        }
    }
}

/// The candidates for `words` (the arguments before [`GENERATE_FLAG`], without the program).
pub fn candidates(words: &[String]) -> Vec<String> {
    let flag_word = words.last().is_some_and(|w| w.starts_with('-'));
    let positional: Vec<&str> = words
        .iter()
        .map(String::as_str)
        .filter(|w| !w.starts_with('-'))
        .collect();
    match positional.as_slice() {
        [] if flag_word => vec!["--debug".into(), "--help".into(), "--version".into()],
        [] => COMMANDS.iter().map(|c| c.to_string()).collect(),
        [cmd, ..] if flag_word && matches!(*cmd, "server" | "agent") => {
            let role = if *cmd == "server" {
                Role::Server
            } else {
                Role::Agent
            };
            FLAGS
                .iter()
                .filter(|f| role == Role::Server || f.scope == Scope::Both)
                .map(|f| format!("--{}", f.name))
                .collect()
        }
        ["certificate" | "cert"] => vec!["check".into(), "rotate".into()],
        ["token"] => vec!["rotate".into()],
        ["completion"] => vec!["bash".into(), "zsh".into()],
        ["crictl"] => crate::faces::runtime::CRICTL_COMMANDS
            .iter()
            .map(|c| c.to_string())
            .collect(),
        ["ctr"] => crate::faces::runtime::CTR_COMMANDS
            .iter()
            .map(|c| c.to_string())
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn candidates_follow_the_words_typed() {
        assert!(candidates(&[]).contains(&"server".to_string()));
        assert!(candidates(&[]).contains(&"check-config".to_string()));
        assert_eq!(candidates(&words(&["certificate"])), ["check", "rotate"]);
        assert_eq!(candidates(&words(&["token"])), ["rotate"]);
        let server = candidates(&words(&["server", "--"]));
        assert!(server.contains(&"--cluster-init".to_string()), "{server:?}");
        let agent = candidates(&words(&["agent", "--"]));
        assert!(agent.contains(&"--server".to_string()), "{agent:?}");
        assert!(
            !agent.contains(&"--cluster-init".to_string()),
            "server-only flags are not offered to agents"
        );
        assert!(candidates(&words(&["server"])).is_empty());
    }

    #[test]
    fn scripts_exist_for_bash_and_zsh_only() {
        assert!(script("bash").expect("bash").contains(
            "complete -o bashdefault -o default -o nospace -F _cli_bash_autocomplete k3s"
        ));
        assert!(script("zsh").expect("zsh").starts_with("#compdef k3s"));
        assert!(script("fish").is_none());
    }
}
