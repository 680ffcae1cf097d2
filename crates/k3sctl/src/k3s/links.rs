//! The command links K3s's install script (get.k3s.io) puts beside the binary: `kubectl`,
//! `crictl` and `ctr` in /usr/local/bin, each a symlink to `k3s` (K3s is a multi-call binary and
//! answers by the name it is run under). The install script creates a link only when no file
//! of that name is in the bin directory and no command of that name is on `PATH`, so a kubectl
//! someone installed is never replaced nor shadowed; k3sctl follows the same rule and treats a
//! link to the K3s binary as its own (it also removes those, and only those, on uninstall).

use super::unit::BINARY_PATH;

/// The commands linked to the K3s binary.
pub const COMMANDS: [&str; 3] = ["kubectl", "crictl", "ctr"];

/// Where the links live (the install script's default `BIN_DIR`, beside [`BINARY_PATH`]).
pub const BIN_DIR: &str = "/usr/local/bin";

/// What a link points to: relative, as the install script writes it (`ln -sf k3s`).
pub const TARGET: &str = "k3s";

/// The link's path for `command`.
pub fn link_path(command: &str) -> String {
    format!("{BIN_DIR}/{command}")
}

/// Every link's path.
pub fn link_paths() -> Vec<String> {
    COMMANDS.iter().map(|c| link_path(c)).collect()
}

/// Whether a symlink's target (as `readlink` prints it) is the K3s binary.
pub fn is_k3s_target(target: &str) -> bool {
    target == TARGET || target == BINARY_PATH
}

/// The shell `case` pattern matching a link target that is the K3s binary.
pub fn k3s_target_pattern() -> String {
    format!("{TARGET}|{BINARY_PATH}")
}

/// What is found at a link's place on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLink {
    /// Nothing of that name in [`BIN_DIR`] and no such command on `PATH`: the link is created.
    Missing,
    /// A symlink to the K3s binary (k3sctl's or the install script's): kept.
    ToK3s,
    /// Someone else's: a file or another link at the path, or the command elsewhere on `PATH`
    /// (what, for the plan). Left alone.
    Taken(String),
}

/// The observation script's lines for the links: `link=<command> missing|k3s|taken <what>`.
pub fn observe_snippet() -> String {
    let mut out = String::new();
    for command in COMMANDS {
        let path = link_path(command);
        out.push_str(&format!(
            "if [ -L {path} ]; then t=$(readlink {path}); case \"$t\" in {pattern}) echo \"link={command} k3s\";; *) echo \"link={command} taken {path} -> $t\";; esac\n\
             elif [ -e {path} ]; then echo \"link={command} taken {path}\"\n\
             elif w=$(command -v {command} 2>/dev/null) && [ -n \"$w\" ]; then echo \"link={command} taken $w\"\n\
             else echo \"link={command} missing\"; fi\n",
            pattern = k3s_target_pattern(),
        ));
    }
    out
}

/// Parses the value of one `link=` line into the command and what was found.
pub fn parse_observed(value: &str) -> Option<(String, CommandLink)> {
    let (command, rest) = value.split_once(' ')?;
    let state = match rest.split_once(' ') {
        None if rest == "missing" => CommandLink::Missing,
        None if rest == "k3s" => CommandLink::ToK3s,
        Some(("taken", what)) => CommandLink::Taken(what.to_owned()),
        _ => return None,
    };
    COMMANDS
        .contains(&command)
        .then(|| (command.to_owned(), state))
}

/// The script creating the link for `command`: only when the place is still free (a file or a
/// command of that name that appeared since the observation is left alone); a link to K3s
/// already there is kept.
pub fn create_script(command: &str) -> String {
    let path = link_path(command);
    format!(
        "if [ -L {path} ] || [ -e {path} ]; then exit 0; fi\n\
         if command -v {command} >/dev/null 2>&1; then exit 0; fi\n\
         ln -s {TARGET} {path}\n"
    )
}

/// The uninstall script's lines removing the links that point to K3s (never anything else).
pub fn remove_snippet() -> String {
    format!(
        "for l in {paths}; do\n  if [ -L \"$l\" ]; then case \"$(readlink \"$l\")\" in {pattern}) rm -f \"$l\" && say \"$l\";; esac; fi\ndone\n",
        paths = link_paths().join(" "),
        pattern = k3s_target_pattern(),
    )
}

/// The probe's lines listing the links to K3s still there.
pub fn probe_snippet() -> String {
    format!(
        "for l in {paths}; do\n  if [ -L \"$l\" ]; then case \"$(readlink \"$l\")\" in {pattern}) echo \"$l\";; esac; fi\ndone\n",
        paths = link_paths().join(" "),
        pattern = k3s_target_pattern(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use fs_err::os::unix::fs::symlink;
    use std::process::Command;

    fn sh(script: &str, bin: &std::path::Path, path_env: &str) -> String {
        let script = script.replace(BIN_DIR, &bin.to_string_lossy());
        let out = Command::new("sh")
            .args(["-c", &script])
            .env("PATH", path_env)
            .output()
            .expect("sh runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn parses_each_state() {
        assert_eq!(
            parse_observed("kubectl missing"),
            Some(("kubectl".into(), CommandLink::Missing))
        );
        assert_eq!(
            parse_observed("ctr k3s"),
            Some(("ctr".into(), CommandLink::ToK3s))
        );
        assert_eq!(
            parse_observed("kubectl taken /usr/bin/kubectl"),
            Some((
                "kubectl".into(),
                CommandLink::Taken("/usr/bin/kubectl".into())
            ))
        );
        assert_eq!(parse_observed("kubectl maybe"), None);
        assert_eq!(parse_observed("helm missing"), None);
    }

    #[test]
    fn k3s_targets() {
        assert!(is_k3s_target("k3s"));
        assert!(is_k3s_target("/usr/local/bin/k3s"));
        assert!(!is_k3s_target("/opt/kubectl"));
        assert!(!is_k3s_target("k3s-old"));
    }

    /// The snippets run in a directory standing in for /usr/local/bin: each state is seen, a
    /// link is created only where the place is free, and removal takes only links to K3s.
    #[test]
    fn scripts_observe_create_and_remove_on_this_machine() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("bin");
        let other = dir.path().join("other");
        fs_err::create_dir_all(&bin).expect("mkdir");
        fs_err::create_dir_all(&other).expect("mkdir");
        // kubectl: a person's own binary elsewhere on PATH; crictl: free; ctr: a person's link.
        fs_err::write(other.join("kubectl"), "#!/bin/sh\n").expect("write");
        fs_err::set_permissions(
            other.join("kubectl"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        symlink("/opt/ctr", bin.join("ctr")).expect("symlink");
        let path_env = format!("{}:{}:/usr/bin:/bin", bin.display(), other.display());
        let seen = sh(&observe_snippet(), &bin, &path_env);
        let states: Vec<_> = seen
            .lines()
            .filter_map(|l| l.strip_prefix("link="))
            .filter_map(parse_observed)
            .collect();
        assert_eq!(
            states,
            vec![
                (
                    "kubectl".to_string(),
                    CommandLink::Taken(other.join("kubectl").display().to_string())
                ),
                ("crictl".to_string(), CommandLink::Missing),
                (
                    "ctr".to_string(),
                    CommandLink::Taken(format!("{} -> /opt/ctr", bin.join("ctr").display()))
                ),
            ],
            "{seen}"
        );
        for command in COMMANDS {
            sh(&create_script(command), &bin, &path_env);
        }
        assert_eq!(
            fs_err::read_link(bin.join("crictl")).expect("link"),
            std::path::Path::new("k3s")
        );
        assert_eq!(
            fs_err::read_link(bin.join("ctr")).expect("link"),
            std::path::Path::new("/opt/ctr")
        );
        assert!(!bin.join("kubectl").exists());
        let seen = sh(&observe_snippet(), &bin, &path_env);
        assert!(seen.contains("link=crictl k3s"), "{seen}");
        let probe = sh(&probe_snippet(), &bin, &path_env);
        assert_eq!(probe.trim(), bin.join("crictl").display().to_string());
        sh(
            &format!("say() {{ echo \"removed $*\"; }}\n{}", remove_snippet()),
            &bin,
            &path_env,
        );
        assert!(fs_err::symlink_metadata(bin.join("crictl")).is_err());
        assert!(fs_err::symlink_metadata(bin.join("ctr")).is_ok());
    }
}
