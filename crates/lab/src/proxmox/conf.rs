//! Proxmox's `/etc/pve/lxc/<vmid>.conf` format (pve-docs pct.adoc "File Format", pve-container
//! `parse_pct_config`): `key: value` lines, `#` description lines, raw `lxc.*` keys written
//! `lxc.key: value` or `lxc.key = value`, and `[name]` sections (snapshots, `[pve:pending]`)
//! after the live configuration. Pure: text in, values or text out.

/// One configuration section: the live one, a snapshot or `[pve:pending]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    /// Section name; empty for the live configuration.
    pub name: String,
    /// Proxmox keys in file order (`arch`, `onboot`, ...).
    pub keys: Vec<(String, String)>,
    /// Raw LXC keys in file order (`lxc.apparmor.profile`, ...).
    pub lxc: Vec<(String, String)>,
    /// Description lines (without the leading `#`).
    pub description: Vec<String>,
}

impl Section {
    /// The value of Proxmox key `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.keys
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of raw LXC key `key` (some, like `lxc.mount.entry`, repeat).
    pub fn lxc_values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.lxc
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conf {
    /// The live configuration (before the first `[section]`).
    pub current: Section,
    /// Every `[section]` in file order.
    pub sections: Vec<Section>,
}

impl Conf {
    /// Parses the file; lines it does not understand are skipped (Proxmox warns about them).
    pub fn parse(text: &str) -> Self {
        let mut conf = Self::default();
        let mut section = &mut conf.current;
        for raw in text.lines() {
            let line = raw.trim_end();
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                conf.sections.push(Section {
                    name: name.to_owned(),
                    ..Section::default()
                });
                section = conf.sections.last_mut().unwrap_or(&mut conf.current);
                continue;
            }
            if let Some(desc) = line.strip_prefix('#') {
                section.description.push(desc.to_owned());
                continue;
            }
            let Some((key, value)) = split_key(line) else {
                continue;
            };
            if key.starts_with("lxc.") {
                section.lxc.push((key.to_owned(), value.to_owned()));
            } else {
                section.keys.push((key.to_owned(), value.to_owned()));
            }
        }
        conf
    }

    /// The section called `name`.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// What `pct config` prints: keys sorted (pending values applied unless `current`), the
    /// description as `description:`, then the raw `lxc.*` keys in file order.
    pub fn render_config(&self, current: bool) -> String {
        let mut keys: Vec<(String, String)> = self.current.keys.clone();
        if !current && let Some(pending) = self.section("pve:pending") {
            for (k, v) in &pending.keys {
                if k == "delete" {
                    let gone: Vec<&str> = v.split(',').map(str::trim).collect();
                    keys.retain(|(key, _)| !gone.contains(&key.as_str()));
                    continue;
                }
                keys.retain(|(key, _)| key != k);
                keys.push((k.clone(), v.clone()));
            }
        }
        if !self.current.description.is_empty() {
            let text = self.current.description.join("\n");
            keys.push(("description".into(), encode_description(&text)));
        }
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::new();
        for (k, v) in keys.iter().filter(|(k, _)| k != "digest") {
            out.push_str(&format!("{k}: {v}\n"));
        }
        for (k, v) in &self.current.lxc {
            out.push_str(&format!("{k}: {v}\n"));
        }
        out
    }
}

/// `key: value` or (raw LXC keys only) `key = value`.
fn split_key(line: &str) -> Option<(&str, &str)> {
    let colon = line.find(':');
    let equals = line.find('=');
    let at = match (colon, equals) {
        (Some(c), Some(e)) if e < c && line.starts_with("lxc.") => e,
        (Some(c), _) => c,
        (None, Some(e)) if line.starts_with("lxc.") => e,
        _ => return None,
    };
    let key = line[..at].trim();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return None;
    }
    Some((key, line[at + 1..].trim()))
}

/// Proxmox shows the description URL-encoded on one line (`%0A` for newlines).
fn encode_description(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '\n' => out.push_str("%0A"),
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            c => out.push(c),
        }
    }
    out
}

/// Sets Proxmox key `key` in the live configuration of `text` (replacing its line, or adding
/// one before the first `[section]`), leaving every other line as it was.
pub fn set_key(text: &str, key: &str, value: &str) -> String {
    let new_line = format!("{key}: {value}");
    let mut out = Vec::new();
    let mut done = false;
    let mut in_live = true;
    for line in text.lines() {
        if line.starts_with('[') {
            if !done {
                out.push(new_line.clone());
                done = true;
            }
            in_live = false;
        }
        if in_live && split_key(line).is_some_and(|(k, _)| k == key) {
            if !done {
                out.push(new_line.clone());
                done = true;
            }
            continue;
        }
        out.push(line.to_owned());
    }
    if !done {
        out.push(new_line);
    }
    let mut joined = out.join("\n");
    joined.push('\n');
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "#k3s server\narch: amd64\nhostname: k3s-1\nonboot: 1\n\
lxc.apparmor.profile: unconfined\nlxc.cgroup2.devices.allow = a\nlxc.mount.entry: /dev/kmsg dev/kmsg none defaults,bind,create=file\n\
memory: 2048\n\n[before-upgrade]\narch: amd64\nlxc.apparmor.profile: generated\nsnaptime: 1700000000\n\
[pve:pending]\nmemory: 4096\ndelete: onboot\n";

    #[test]
    fn parses_live_keys_raw_keys_and_sections() {
        let conf = Conf::parse(SAMPLE);
        assert_eq!(conf.current.get("hostname"), Some("k3s-1"));
        assert_eq!(
            conf.current
                .lxc_values("lxc.cgroup2.devices.allow")
                .collect::<Vec<_>>(),
            ["a"]
        );
        assert_eq!(conf.current.lxc.len(), 3);
        assert_eq!(conf.sections.len(), 2);
        let snap = conf.section("before-upgrade").expect("snapshot");
        assert_eq!(
            snap.lxc_values("lxc.apparmor.profile").collect::<Vec<_>>(),
            ["generated"]
        );
        assert_eq!(conf.current.description, ["k3s server"]);
    }

    #[test]
    fn config_shows_pending_unless_current() {
        let conf = Conf::parse(SAMPLE);
        let current = conf.render_config(true);
        assert!(current.starts_with("arch: amd64\ndescription: k3s server\nhostname: k3s-1\n"));
        assert!(current.contains("memory: 2048\nonboot: 1\n"));
        assert!(current.ends_with(
            "lxc.apparmor.profile: unconfined\nlxc.cgroup2.devices.allow: a\nlxc.mount.entry: /dev/kmsg dev/kmsg none defaults,bind,create=file\n"
        ));
        let pending = conf.render_config(false);
        assert!(pending.contains("memory: 4096\n"));
        assert!(!pending.contains("onboot"));
    }

    #[test]
    fn set_key_replaces_in_the_live_section_only() {
        let out = set_key(SAMPLE, "onboot", "0");
        assert!(out.contains("hostname: k3s-1\nonboot: 0\nlxc.apparmor"));
        assert_eq!(out.matches("onboot").count(), 2, "pending delete kept");
        let added = set_key(SAMPLE, "startup", "order=1");
        let first_section = added.find("[before-upgrade]").expect("section");
        assert!(added.find("startup: order=1").expect("added") < first_section);
        assert_eq!(
            set_key("arch: amd64\n", "onboot", "1"),
            "arch: amd64\nonboot: 1\n"
        );
    }
}
