//! `k3s kubectl ...` and the `kubectl` link: the stand-in has no kubectl of its own, so it runs a
//! real one (Debian's kubernetes-client on lab hosts) the way K3s runs its embedded kubectl: when
//! neither `KUBECONFIG` nor `--kubeconfig` is given, K3s's default kubeconfig is used
//! (/etc/rancher/k3s/k3s.yaml when it exists, else ~/.kube/k3s.yaml), with a warning when that
//! file cannot be read.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::paths::{DEFAULT_KUBECONFIG, host_path};

/// Environment variable naming the real kubectl to run (else the first `kubectl` on PATH that
/// is not this binary, else /usr/bin/kubectl).
pub const KUBECTL_ENV: &str = "K3S_SIM_KUBECTL";

/// Where K3s looks for a kubeconfig when the global one is absent (relative to $HOME).
pub const HOME_KUBECONFIG: &str = ".kube/k3s.yaml";

/// Whether the command line names a kubeconfig itself (`--kubeconfig X` or `--kubeconfig=X`).
pub fn names_kubeconfig(args: &[String]) -> bool {
    args.iter().any(|a| a.starts_with("--kubeconfig"))
}

/// The kubeconfig K3s puts in `KUBECONFIG` for kubectl, if any: none when the user chose one
/// (environment or flag); else the global file when it exists, else the home file when it exists.
pub fn default_kubeconfig(
    args: &[String],
    kubeconfig_env: Option<&str>,
    global: &Path,
    home: Option<&Path>,
) -> Option<PathBuf> {
    if kubeconfig_env.is_some_and(|v| !v.is_empty()) || names_kubeconfig(args) {
        return None;
    }
    if global.exists() {
        return Some(global.to_path_buf());
    }
    let home_file = home?.join(HOME_KUBECONFIG);
    home_file.exists().then_some(home_file)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (fs_err::metadata(a), fs_err::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

fn is_executable(p: &Path) -> bool {
    fs_err::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
}

/// The real kubectl: `K3S_SIM_KUBECTL`, else the first `kubectl` on PATH that is not this binary
/// (the install script's /usr/local/bin/kubectl link is), else /usr/bin/kubectl.
pub fn find_kubectl() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(KUBECTL_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let me = Path::new("/proc/self/exe");
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .chain([PathBuf::from("/usr/bin/kubectl")])
        .find(|c| is_executable(c) && !same_file(c, me))
}

/// Runs kubectl with `args`; returns only when it cannot be started.
pub fn run(args: &[String]) -> i32 {
    let Some(bin) = find_kubectl() else {
        eprintln!(
            "k3s kubectl: no kubectl to run: this K3s stand-in has none built in; install Debian's kubernetes-client (/usr/bin/kubectl) or set {KUBECTL_ENV}"
        );
        return 1;
    };
    let mut cmd = Command::new(&bin);
    cmd.arg0("kubectl").args(args);
    let global = host_path(DEFAULT_KUBECONFIG);
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let env = std::env::var("KUBECONFIG").ok();
    if let Some(kc) = default_kubeconfig(args, env.as_deref(), &global, home.as_deref()) {
        if let Err(e) = fs_err::File::open(&kc)
            && e.kind() == std::io::ErrorKind::PermissionDenied
        {
            crate::log::warn(format!(
                "Unable to read {}: start the server with --write-kubeconfig-mode or --write-kubeconfig-group to allow reading it",
                kc.display()
            ));
        }
        cmd.env("KUBECONFIG", kc);
    }
    let err = cmd.exec();
    eprintln!("k3s kubectl: running {}: {err}", bin.display());
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_kubeconfig_follows_k3s() {
        let dir = tempfile::tempdir().expect("tempdir");
        let global = dir.path().join("etc/k3s.yaml");
        let home = dir.path().join("home");
        let none: &[String] = &[];
        // Nothing exists: nothing is set, kubectl keeps its own default.
        assert_eq!(default_kubeconfig(none, None, &global, Some(&home)), None);
        fs_err::create_dir_all(home.join(".kube")).expect("mkdir");
        fs_err::write(home.join(HOME_KUBECONFIG), "x").expect("write");
        assert_eq!(
            default_kubeconfig(none, None, &global, Some(&home)),
            Some(home.join(HOME_KUBECONFIG))
        );
        fs_err::create_dir_all(global.parent().expect("dir")).expect("mkdir");
        fs_err::write(&global, "x").expect("write");
        assert_eq!(
            default_kubeconfig(none, None, &global, Some(&home)),
            Some(global.clone())
        );
        // The user's own choice wins.
        assert_eq!(
            default_kubeconfig(none, Some("/other"), &global, Some(&home)),
            None
        );
        assert_eq!(
            default_kubeconfig(
                &["--kubeconfig=/x".to_string(), "get".into()],
                None,
                &global,
                None
            ),
            None
        );
        assert_eq!(
            default_kubeconfig(
                &["--kubeconfig".to_string(), "/x".into()],
                None,
                &global,
                None
            ),
            None
        );
        // An empty KUBECONFIG counts as unset, as in K3s.
        assert_eq!(
            default_kubeconfig(none, Some(""), &global, None),
            Some(global)
        );
    }
}
