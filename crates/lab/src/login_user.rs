//! A non-root login user on every host, as cloud images have (`ubuntu`, `debian`, `admin`): the
//! lab key in its authorized_keys, and sudo either without a password (what k3sctl needs) or
//! asking for one (what k3sctl must refuse before changing anything). Root keeps its own login,
//! which the lab uses for its own control.

use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};

/// How the login user's sudo behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SudoMode {
    /// `NOPASSWD: ALL`.
    Passwordless,
    /// `ALL` with a password nobody knows: `sudo -n` answers "a password is required".
    Password,
}

/// The non-root login user of a lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginUser {
    /// User name.
    pub name: String,
    /// Its sudo rule.
    pub sudo: SudoMode,
}

/// The sudoers drop-in the lab writes for the login user.
pub const SUDOERS_FILE: &str = "/etc/sudoers.d/k3sctl-lab";

impl LoginUser {
    /// A user name the lab accepts: a lowercase POSIX name, not root.
    pub fn new(name: &str, sudo: SudoMode) -> Result<Self> {
        let valid = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid || name == "root" {
            return Err(LabError::Invalid {
                what: format!("login user {name:?} is not a usable non-root user name"),
                hint: "use a lowercase name such as `debian` (letters, digits, _ and -)".into(),
            });
        }
        Ok(Self {
            name: name.to_owned(),
            sudo,
        })
    }

    /// The sudoers line for this user.
    pub fn sudoers_line(&self) -> String {
        match self.sudo {
            SudoMode::Passwordless => format!("{} ALL=(ALL:ALL) NOPASSWD: ALL\n", self.name),
            SudoMode::Password => format!("{} ALL=(ALL:ALL) ALL\n", self.name),
        }
    }

    /// Shell script (run as root on a host) that creates the user with `authorized_key`, gives
    /// it the sudo rule and checks the rule with visudo. Idempotent.
    pub fn setup_script(&self, authorized_key: &str) -> String {
        let user = &self.name;
        format!(
            "set -e\n\
             id -u {user} >/dev/null 2>&1 || useradd --create-home --shell /bin/bash {user}\n\
             home=$(getent passwd {user} | cut -d: -f6)\n\
             install -d -m 0700 -o {user} -g {user} \"$home/.ssh\"\n\
             printf '%s\\n' '{key}' > \"$home/.ssh/authorized_keys\"\n\
             chown {user}:{user} \"$home/.ssh/authorized_keys\"\n\
             chmod 0600 \"$home/.ssh/authorized_keys\"\n\
             {sudoers}",
            key = authorized_key.trim(),
            sudoers = self.sudoers_script(),
        )
    }

    /// Shell script (as root) that writes this user's sudo rule and checks it with visudo.
    pub fn sudoers_script(&self) -> String {
        format!(
            "printf '%s' '{line}' > {SUDOERS_FILE}.tmp\n\
             chmod 0440 {SUDOERS_FILE}.tmp\n\
             visudo -cq -f {SUDOERS_FILE}.tmp\n\
             mv {SUDOERS_FILE}.tmp {SUDOERS_FILE}\n",
            line = self.sudoers_line(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_rules_follow_the_mode() {
        assert!(LoginUser::new("root", SudoMode::Passwordless).is_err());
        assert!(LoginUser::new("Bad Name", SudoMode::Passwordless).is_err());
        assert!(LoginUser::new("", SudoMode::Passwordless).is_err());
        let u = LoginUser::new("debian", SudoMode::Passwordless).expect("user");
        assert_eq!(u.sudoers_line(), "debian ALL=(ALL:ALL) NOPASSWD: ALL\n");
        let p = LoginUser::new("ops-1", SudoMode::Password).expect("user");
        assert_eq!(p.sudoers_line(), "ops-1 ALL=(ALL:ALL) ALL\n");
        let script = u.setup_script("ssh-ed25519 AAAA k3sctl-lab@x\n");
        assert!(script.contains("useradd --create-home --shell /bin/bash debian"));
        assert!(script.contains("'ssh-ed25519 AAAA k3sctl-lab@x'"));
        assert!(script.contains("visudo -cq -f /etc/sudoers.d/k3sctl-lab.tmp"));
    }
}
