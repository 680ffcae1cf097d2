//! Semantic validation: rules about what a well-typed spec means. Every rule runs and every
//! problem is reported, each with the document path of the node it is about.

mod files;
mod hosts;
mod k3s;
mod network;
mod outputs;
mod registries;
mod rules;

use std::path::PathBuf;

use super::model::Cluster;
use super::path::SpecPath;
use super::spans::Target;

/// One semantic problem, located by document path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// The node the problem is about.
    pub path: SpecPath,
    /// Whether to point at the node's key or its value.
    pub target: Target,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Issue {
    /// A problem with the value at `path`.
    pub fn new(path: SpecPath, message: impl Into<String>) -> Self {
        Self {
            path,
            target: Target::Value,
            message: message.into(),
            hint: None,
        }
    }

    /// Points at the key instead of the value.
    pub fn at_key(mut self) -> Self {
        self.target = Target::Key;
        self
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// What validation needs from outside the spec: where relative paths start and where `~` is.
#[derive(Debug, Clone)]
pub struct ValidationContext {
    /// The spec file's directory.
    pub base_dir: PathBuf,
    /// The user's home directory, if known.
    pub home: Option<PathBuf>,
}

impl ValidationContext {
    /// Context for a spec in `base_dir`, with the home directory from `$HOME`.
    pub fn from_env(base_dir: PathBuf) -> Self {
        Self {
            base_dir,
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }

    /// Resolves a path written in the spec: `~/` is the home directory, relative paths start at
    /// the spec file's directory.
    pub fn resolve(&self, written: &str) -> PathBuf {
        resolve_path(written, &self.base_dir, self.home.as_deref())
    }
}

/// Resolves a path written in the spec (`~` expansion, relative to `base_dir`).
pub fn resolve_path(
    written: &str,
    base_dir: &std::path::Path,
    home: Option<&std::path::Path>,
) -> PathBuf {
    if written == "~"
        && let Some(home) = home
    {
        return home.to_path_buf();
    }
    let joined = match (written.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => base_dir.join(written),
    };
    // Drop `.` components so messages show `specs/key`, not `specs/./key`.
    let cleaned: PathBuf = joined
        .components()
        .filter(|part| !matches!(part, std::path::Component::CurDir))
        .collect();
    if cleaned.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        cleaned
    }
}

/// Runs every semantic rule over `cluster` and returns all problems found.
pub fn validate(cluster: &Cluster, context: &ValidationContext) -> Vec<Issue> {
    validate_reliable(cluster, context, &[])
}

/// Runs the semantic rules over a cluster rebuilt from a spec with structural errors, where the
/// values at `unreliable` paths are not what the user wrote: rules reading them are skipped, and
/// issues at, inside or around them are dropped (the structural error already covers them).
pub(crate) fn validate_reliable(
    cluster: &Cluster,
    context: &ValidationContext,
    unreliable: &[SpecPath],
) -> Vec<Issue> {
    let mut issues = Vec::new();
    for rule in rules::RULES {
        if !rule.reads_any(unreliable) {
            (rule.run)(cluster, context, &mut issues);
        }
    }
    issues.retain(|issue| {
        !unreliable
            .iter()
            .any(|path| rules::related(&issue.path, path))
    });
    issues
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn resolves_home_and_relative_paths() {
        let home = Path::new("/home/me");
        assert_eq!(
            resolve_path("~/.ssh/id", Path::new("/specs"), Some(home)),
            Path::new("/home/me/.ssh/id")
        );
        assert_eq!(
            resolve_path("keys/id", Path::new("/specs"), Some(home)),
            Path::new("/specs/keys/id")
        );
        assert_eq!(
            resolve_path("/abs/id", Path::new("/specs"), Some(home)),
            Path::new("/abs/id")
        );
        assert_eq!(resolve_path("./id", Path::new("."), None), Path::new("id"));
    }
}
