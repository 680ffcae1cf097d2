//! The drop-ins systemd applies to K3s's unit, found where systemd looks for them, and the
//! take-over of a drop-in that replaces `ExecStart`. Pure.
//!
//! systemd's rules, from systemd.unit(5):
//! - Along with `foo.service`, the `.conf` files of a drop-in directory `foo.service.d/` are
//!   parsed after the unit file; other files there are not read.
//! - For a unit name with dashes, the directories made by truncating the name after each dash
//!   are searched too (`k3s-agent.service` also reads `k3s-.service.d/`), and a top-level
//!   `service.d/` applies to every service. "Equally named drop-in files further down the
//!   prefix hierarchy override those further up" (`k3s-agent.service.d/10-x.conf` hides
//!   `k3s-.service.d/10-x.conf`), and files in `service.d/` have the lowest precedence.
//! - The drop-in directories may sit in every directory of the unit search path; "drop-in
//!   files in /etc take precedence over those in /run which in turn take precedence over those
//!   in /usr/lib": a file of the same name higher up masks the lower one (an empty file or a
//!   symlink to /dev/null masks it and adds nothing).
//! - "Multiple drop-in files with different names are applied in lexicographic order,
//!   regardless of which of the directories they reside in."

use sha2::Digest;

/// The system unit search path directories that can hold drop-ins for K3s, highest precedence
/// first (systemd.unit(5), "System Unit Search Path"). Generator directories (written by
/// generators at boot, never for K3s) and `*.attached` (portable services) are left out;
/// `/lib/systemd/system` is where `/usr/lib/systemd/system` is on systems without merged /usr.
pub const UNIT_SEARCH_PATH: &[&str] = &[
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// The suffix a taken-over drop-in's original gets (followed by a short hash of its content):
/// not `.conf`, so systemd does not read it.
pub const BACKUP_SUFFIX: &str = ".before-k3sctl-";

/// One drop-in systemd applies to the unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitDropin {
    /// Its full path (`/etc/systemd/system/k3s.service.d/20-exec.conf`).
    pub path: String,
    /// Its text.
    pub text: String,
    /// It masks a file of the same name lower in systemd's precedence, which takes effect
    /// when this one is moved away.
    pub masks_another: bool,
}

impl UnitDropin {
    /// The file name (`20-exec.conf`).
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// The drop-in directory names for `unit` (`k3s-agent`), most specific first:
/// `k3s-agent.service.d`, `k3s-.service.d`, `service.d`.
pub fn dropin_dir_names(unit: &str) -> Vec<String> {
    let mut names = vec![format!("{unit}.service.d")];
    let dashes: Vec<usize> = unit.match_indices('-').map(|(i, _)| i).collect();
    for &at in dashes.iter().rev() {
        names.push(format!("{}-.service.d", &unit[..at]));
    }
    names.push("service.d".to_owned());
    names
}

/// Every directory systemd reads `unit`'s drop-ins from, in its order of precedence: by name
/// (most specific first), then by search path (`/etc` first).
pub fn dropin_dirs(unit: &str) -> Vec<String> {
    dropin_dir_names(unit)
        .iter()
        .flat_map(|name| {
            UNIT_SEARCH_PATH
                .iter()
                .map(move |dir| format!("{dir}/{name}"))
        })
        .collect()
}

/// The drop-ins systemd applies to `unit`, in the order it applies them, from the files found
/// in [`dropin_dirs`] as `(full path, text)` (an empty text for a file that masks: empty, or
/// a symlink to /dev/null). For each file name the file in the directory of highest
/// precedence wins; files not ending in `.conf`, files in other directories and masks (they
/// add nothing) are left out.
pub fn applied(unit: &str, found: &[(String, String)]) -> Vec<UnitDropin> {
    let dirs = dropin_dirs(unit);
    let rank = |path: &str| {
        let (dir, _) = path.rsplit_once('/')?;
        dirs.iter().position(|d| d == dir)
    };
    let mut winners: std::collections::BTreeMap<String, (usize, &(String, String), bool)> =
        Default::default();
    for entry in found {
        let Some(at) = rank(&entry.0) else { continue };
        let name = entry.0.rsplit('/').next().unwrap_or_default().to_owned();
        if !name.ends_with(".conf") {
            continue;
        }
        match winners.get_mut(&name) {
            Some(winner) if winner.0 <= at => winner.2 |= winner.1.0 != entry.0,
            Some(winner) => {
                let masks = winner.1.0 != entry.0;
                *winner = (at, entry, masks);
            }
            None => {
                winners.insert(name, (at, entry, false));
            }
        }
    }
    // BTreeMap: by file name, systemd's lexicographic order.
    winners
        .into_values()
        .filter(|(_, (_, text), _)| !text.trim().is_empty())
        .map(|(_, (path, text), masks)| UnitDropin {
            path: path.clone(),
            text: text.clone(),
            masks_another: masks,
        })
        .collect()
}

/// Joins systemd's `\`-continued lines, keeping each logical line's raw lines together.
fn logical_lines(text: &str) -> Vec<Vec<&str>> {
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for raw in text.lines() {
        current.push(raw);
        if !raw.trim_end().ends_with('\\') {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Whether a logical line (first raw line given) is an assignment of `key` in `[Service]`.
fn assigns(line: &str, key: &str) -> bool {
    line.split_once('=')
        .is_some_and(|(k, _)| k.trim() == key && !line.trim_start().starts_with(['#', ';']))
}

/// The drop-in's text split into its `[Service]` `ExecStart=` lines and the rest; `None`
/// when it has no `ExecStart=` line (neither a reset nor a command).
fn split_exec_start(text: &str) -> Option<(Vec<String>, String)> {
    let mut section = String::new();
    let mut exec = Vec::new();
    let mut rest = String::new();
    for lines in logical_lines(text) {
        let first = lines[0].trim();
        if first.starts_with('[') {
            section = first.to_owned();
        }
        if section == "[Service]" && assigns(first, "ExecStart") {
            exec.push(lines.join("\n"));
            continue;
        }
        for line in lines {
            rest.push_str(line);
            rest.push('\n');
        }
    }
    (!exec.is_empty()).then_some((exec, rest))
}

/// Whether a unit text has any assignment left (not only section headers, comments and
/// blank lines).
fn has_settings(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim();
        !l.is_empty() && !l.starts_with(['#', ';', '['])
    })
}

/// How k3sctl takes over a drop-in that sets K3s's command (`ExecStart=`): k3sctl's unit holds
/// the command and config.yaml the flags, so the drop-in's `ExecStart` lines go. The original
/// is kept beside it under a name systemd does not read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Takeover {
    /// The drop-in.
    pub path: String,
    /// Where the original is kept (`<path>.before-k3sctl-<hash>`).
    pub backup: String,
    /// The drop-in without its `ExecStart` lines, when other settings remain (or it masks a
    /// same-named drop-in lower down, which moving it would bring into effect); `None`: the
    /// drop-in is moved to `backup`. Never shown: a drop-in may hold a credential.
    #[serde(skip)]
    pub rest: Option<String>,
    /// The `ExecStart` lines taken out, as written. Never shown (`--token` may be one).
    #[serde(skip)]
    pub exec_start: Vec<String>,
}

/// The takeovers for the drop-ins that set `ExecStart`, in application order.
pub fn takeovers(dropins: &[UnitDropin]) -> Vec<Takeover> {
    dropins
        .iter()
        .filter_map(|d| {
            let (exec_start, rest) = split_exec_start(&d.text)?;
            let hash = hex::encode(sha2::Sha256::digest(d.text.as_bytes()));
            Some(Takeover {
                path: d.path.clone(),
                backup: format!("{}{BACKUP_SUFFIX}{}", d.path, &hash[..8]),
                rest: (has_settings(&rest) || d.masks_another).then_some(rest),
                exec_start,
            })
        })
        .collect()
}

/// The drop-ins as they are after [`takeovers`]: each `ExecStart` line gone, a drop-in moved
/// aside gone.
pub fn after_takeover(dropins: &[UnitDropin]) -> Vec<UnitDropin> {
    let taken = takeovers(dropins);
    dropins
        .iter()
        .filter_map(|d| match taken.iter().find(|t| t.path == d.path) {
            None => Some(d.clone()),
            Some(Takeover {
                rest: Some(rest), ..
            }) => Some(UnitDropin {
                text: rest.clone(),
                ..d.clone()
            }),
            Some(_) => None,
        })
        .collect()
}

/// The drop-in whose `ExecStart` K3s is started with (the last one that sets a command),
/// when a drop-in replaces the unit's.
pub fn exec_start_source(dropins: &[UnitDropin]) -> Option<&UnitDropin> {
    dropins.iter().rev().find(|d| {
        split_exec_start(&d.text).is_some_and(|(lines, _)| {
            lines
                .iter()
                .any(|l| l.split_once('=').is_some_and(|(_, v)| !v.trim().is_empty()))
        })
    })
}

/// The names of the environment variables `dropins` set with `Environment=` (in `[Service]`).
pub fn environment_names(dropins: &[UnitDropin]) -> Vec<String> {
    let unit = super::effective::unit_with_dropins("[Service]\nExecStart=k3s\n", dropins);
    super::effective::parse_unit(&unit)
        .map(|u| u.environment.into_iter().map(|(name, _)| name).collect())
        .unwrap_or_default()
}

/// Shell that prints `unitdropin=<unit> <full path> <base64>` for every `*.conf` entry of
/// `unit`'s drop-in directories under `root` (`""` on a host; a directory in tests) (a
/// symlink to /dev/null or a dangling one prints an empty text: it masks); [`applied`]
/// decides which of them systemd applies.
pub fn read_snippet(unit: &str, root: &str) -> String {
    format!(
        "for f in {}; do if [ -e \"$f\" ] || [ -L \"$f\" ]; then echo \"unitdropin={unit} $f $(base64 -w0 \"$f\" 2>/dev/null)\"; fi; done\n",
        globs(unit, root)
    )
}

/// The globs of every drop-in file of `unit` under `root` (for reading their
/// `EnvironmentFile=` lines).
pub fn globs(unit: &str, root: &str) -> String {
    dropin_dirs(unit)
        .iter()
        .map(|d| format!("{root}{d}/*.conf"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
#[path = "unit_dropins_tests.rs"]
mod tests;
