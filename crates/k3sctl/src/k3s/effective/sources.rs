//! Reading what K3s is started with: the unit's `ExecStart` (systemd quoting and line
//! continuations), `Environment=` lines and env files (systemd's `EnvironmentFile` syntax), and
//! config.yaml with its drop-ins flattened into flags the way K3s does it (files in order, a
//! later file replaces a key, `key+:` appends, lists become repeated flags).

use super::EffectiveError;

/// One flag occurrence: long name and its value (`None` for a bare switch).
pub type FlagArg = (String, Option<String>);

/// Joins systemd's `\`-continued lines into logical lines.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        let line = raw.trim_end();
        if let Some(head) = line.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(line);
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Splits a command line as systemd does: whitespace separates words, single and double quotes
/// group, `\` escapes the next character (outside single quotes).
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("unterminated ' in `{line}`")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => word.push(c),
                            None => return Err(format!("dangling \\ in `{line}`")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("unterminated \" in `{line}`")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// The unit as systemd reads it: the unit file, then its drop-ins in the order systemd
/// applies them ([`crate::k3s::unit_dropins::applied`]), so a later assignment wins,
/// `ExecStart=` with no value resets the command, `EnvironmentFile=` with no value the list of
/// env files, and `Environment=` assignments accumulate (a later one of a name wins).
pub fn unit_with_dropins(unit: &str, dropins: &[crate::k3s::unit_dropins::UnitDropin]) -> String {
    let mut text = unit.to_owned();
    for dropin in dropins {
        // Each file is parsed on its own: an empty line ends a `\`-continued last line.
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&dropin.text);
    }
    text
}

/// What a unit file says about how K3s starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitStart {
    /// The words of `ExecStart` (binary, subcommand, flags).
    pub exec_start: Vec<String>,
    /// `Environment=` assignments in order.
    pub environment: Vec<(String, String)>,
    /// `EnvironmentFile=` paths (a leading `-` removed).
    pub environment_files: Vec<String>,
}

/// The `key=value` lines of a unit's `[Service]` section in order (continued lines joined,
/// comments skipped), key and value trimmed.
fn service_assignments(text: &str) -> Vec<(String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in logical_lines(text) {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = line.to_owned();
            continue;
        }
        if section != "[Service]" {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            out.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    out
}

/// Reads the `[Service]` section's `ExecStart`, `Environment` and `EnvironmentFile` lines.
pub fn parse_unit(text: &str) -> Result<UnitStart, EffectiveError> {
    let mut start = UnitStart::default();
    let bad = |reason: String| EffectiveError::Unit { reason };
    for (key, value) in service_assignments(text) {
        let value = value.as_str();
        match key.as_str() {
            "ExecStart" if value.is_empty() => start.exec_start.clear(),
            "ExecStart" => {
                let value = value.trim_start_matches(['-', '@', ':', '+', '!']);
                start.exec_start = split_words(value).map_err(bad)?;
            }
            "Environment" => {
                for word in split_words(value).map_err(bad)? {
                    if let Some((k, v)) = word.split_once('=') {
                        start.environment.push((k.to_owned(), v.to_owned()));
                    }
                }
            }
            "EnvironmentFile" => start
                .environment_files
                .push(value.trim_start_matches('-').to_owned()),
            _ => {}
        }
    }
    if start.exec_start.is_empty() {
        return Err(EffectiveError::Unit {
            reason: "it has no ExecStart".into(),
        });
    }
    Ok(start)
}

/// The env files a unit reads, in its order, as systemd resolves its `[Service]`
/// `EnvironmentFile=` lines: a leading `-` (missing file allowed) dropped, an empty assignment
/// resetting the list, `%N` (the unit name without `.service`) and `%n` (with it) expanded.
/// `unit` is the unit's name without suffix (`k3s`, `k3s-agent`).
pub fn unit_env_files(text: &str, unit: &str) -> Vec<String> {
    let mut files = Vec::new();
    for (key, value) in service_assignments(text) {
        if key != "EnvironmentFile" {
            continue;
        }
        if value.is_empty() {
            files.clear();
            continue;
        }
        let path = value
            .trim_start_matches('-')
            .replace("%N", unit)
            .replace("%n", &format!("{unit}.service"));
        if !files.contains(&path) {
            files.push(path);
        }
    }
    files
}

/// Of the env files found on a host (`(path, content)`), those the unit reads, in its order.
pub fn env_files_of_unit(
    text: &str,
    unit: &str,
    found: &[(String, crate::secret::Secret)],
) -> Vec<(String, crate::secret::Secret)> {
    unit_env_files(text, unit)
        .into_iter()
        .filter_map(|path| found.iter().find(|(p, _)| *p == path).cloned())
        .collect()
}

/// Reads an env file (systemd `EnvironmentFile` syntax: `KEY=VALUE` lines, `#`/`;` comments,
/// values optionally quoted).
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in logical_lines(text) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = match split_words(value) {
            Ok(words) if value.starts_with(['"', '\'']) => words.join(" "),
            _ => value.to_owned(),
        };
        out.push((key.trim().to_owned(), value));
    }
    out
}

/// The flags of an `ExecStart` after the subcommand, with `--flag=value` and `--flag value`
/// both understood (a switch never takes the next word).
pub fn exec_flags(words: &[String]) -> Result<(Option<String>, Vec<FlagArg>), EffectiveError> {
    let subcommand = words.get(1).cloned();
    let mut flags = Vec::new();
    let mut rest = words.iter().skip(2).peekable();
    while let Some(word) = rest.next() {
        let Some(stripped) = word.strip_prefix('-') else {
            return Err(EffectiveError::Unit {
                reason: format!("ExecStart has the stray argument `{word}`"),
            });
        };
        let stripped = stripped.strip_prefix('-').unwrap_or(stripped);
        let (name, inline) = match stripped.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (stripped, None),
        };
        let name = super::flags::canonical(name).to_owned();
        let value = match (inline, super::flags::kind(&name)) {
            (Some(v), _) => Some(v),
            (None, Some(super::flags::Kind::Switch)) => None,
            (None, _) => match rest.peek() {
                Some(next) if !next.starts_with('-') || next.len() == 1 => rest.next().cloned(),
                _ => None,
            },
        };
        flags.push((name, value));
    }
    Ok((subcommand, flags))
}

fn scalar_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// config.yaml and its drop-ins (each `(name, text)`, config.yaml first, drop-ins in file
/// name order) flattened into flags as K3s does it.
pub fn config_flags(files: &[(String, String)]) -> Result<Vec<FlagArg>, EffectiveError> {
    let mut order: Vec<String> = Vec::new();
    let mut values: std::collections::BTreeMap<String, serde_json::Value> = Default::default();
    for (name, text) in files {
        let parsed: serde_json::Value = if text.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_saphyr::from_str(text).map_err(|e| EffectiveError::Config {
                file: name.clone(),
                reason: e.to_string(),
            })?
        };
        let map = match parsed {
            serde_json::Value::Null => continue,
            serde_json::Value::Object(map) => map,
            _ => {
                return Err(EffectiveError::Config {
                    file: name.clone(),
                    reason: "it is not a map of flag names to values".into(),
                });
            }
        };
        for (key, value) in map {
            let append = key.ends_with('+');
            let key = key.trim_end_matches('+').to_owned();
            if !order.contains(&key) {
                order.push(key.clone());
            }
            let merged = match (values.remove(&key), append) {
                (Some(old), true) => {
                    let mut list = as_list(&old);
                    list.extend(as_list(&value));
                    serde_json::Value::Array(list.into_iter().map(Into::into).collect())
                }
                _ => value,
            };
            values.insert(key, merged);
        }
    }
    let mut flags = Vec::new();
    for key in order {
        let name = super::flags::canonical(&key).to_owned();
        match &values[&key] {
            serde_json::Value::Array(items) => {
                for item in items {
                    flags.push((name.clone(), Some(scalar_text(item))));
                }
            }
            other => flags.push((name, Some(scalar_text(other)))),
        }
    }
    Ok(flags)
}

fn as_list(value: &serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::Array(items) => items.iter().map(scalar_text).collect(),
        serde_json::Value::Null => Vec::new(),
        other => {
            let text = scalar_text(other);
            if text.trim().is_empty() {
                Vec::new()
            } else {
                vec![text]
            }
        }
    }
}

/// Drop-in names K3s reads from config.yaml.d (`.yaml`/`.yml`, any case), in its order.
pub fn dropin_order(names: &mut Vec<String>) {
    names.retain(|n| {
        let lower = n.to_ascii_lowercase();
        lower.ends_with(".yaml") || lower.ends_with(".yml")
    });
    names.sort();
}
