//! /etc/rancher/k3s/config.yaml and config.yaml.d/*.yaml, merged as the K3s docs describe: files
//! are read in order (the main file, then drop-ins alphabetically), keys are flag names, a later
//! file replaces a key, `key+:` appends to it. Unknown keys are ignored with a warning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::flags::{Kind, Role, Value, lookup, parse_bool};

/// Errors reading configuration files.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A file is not valid YAML.
    #[error("{path}: invalid YAML: {message}")]
    Yaml {
        /// File.
        path: String,
        /// Parser message (with line and column).
        message: String,
    },
    /// A key has a value of the wrong shape.
    #[error("{path}: key {key:?}: {message}")]
    Value {
        /// File.
        path: String,
        /// Key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// The merged contents of the config files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileConfig {
    /// One value per flag, after merging.
    pub values: BTreeMap<String, Value>,
    /// Keys in the order they first appeared (for `k3s.io/node-args`).
    pub order: Vec<String>,
    /// Keys that are not flags of this subcommand (ignored).
    pub ignored: Vec<String>,
}

/// The config files to read for a main config path: the file itself, then `<path>.d/*.yaml` sorted.
pub fn config_files(main: &Path) -> Vec<PathBuf> {
    let mut files = vec![main.to_path_buf()];
    let dropin = PathBuf::from(format!("{}.d", main.display()));
    if let Ok(entries) = fs_err::read_dir(&dropin) {
        let mut extra: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .filter(|p| {
                p.extension().is_some_and(|x| {
                    x.eq_ignore_ascii_case("yaml") || x.eq_ignore_ascii_case("yml")
                })
            })
            .collect();
        extra.sort();
        files.extend(extra);
    }
    files
}

fn scalar_to_string(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn convert(kind: Kind, v: &Json) -> Result<Value, String> {
    match kind {
        Kind::Bool => match v {
            Json::Bool(b) => Ok(Value::Bool(*b)),
            Json::String(s) => parse_bool(s)
                .map(Value::Bool)
                .ok_or_else(|| format!("{s:?} is not a boolean")),
            _ => Err("expected a boolean".into()),
        },
        Kind::Str => scalar_to_string(v)
            .map(Value::Str)
            .ok_or_else(|| "expected a single value".into()),
        Kind::List => match v {
            Json::Array(items) => items
                .iter()
                .map(|i| {
                    scalar_to_string(i).ok_or_else(|| "list items must be scalars".to_string())
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::List),
            other => scalar_to_string(other)
                .map(|s| Value::List(vec![s]))
                .ok_or_else(|| "expected a list".into()),
        },
    }
}

/// A YAML mapping with its keys in file order.
struct OrderedMap(Vec<(String, Json)>);

impl<'de> serde::Deserialize<'de> for OrderedMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OrderedMap;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping of flag names to values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<OrderedMap, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Json>()? {
                    out.push((k, v));
                }
                Ok(OrderedMap(out))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<OrderedMap, E> {
                Ok(OrderedMap(Vec::new()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Merges one file's YAML text into `cfg`.
pub fn merge_text(
    role: Role,
    cfg: &mut FileConfig,
    path: &str,
    text: &str,
) -> Result<(), ConfigError> {
    if text.trim().is_empty() {
        return Ok(());
    }
    let OrderedMap(map) = serde_saphyr::from_str(text).map_err(|e| ConfigError::Yaml {
        path: path.to_string(),
        message: e.to_string(),
    })?;
    for (raw_key, v) in map {
        let (key, append) = match raw_key.strip_suffix('+') {
            Some(k) => (k.to_string(), true),
            None => (raw_key.clone(), false),
        };
        let Some(def) = lookup(role, &key).filter(|d| d.name == key) else {
            cfg.ignored.push(key);
            continue;
        };
        let value = convert(def.kind, &v).map_err(|message| ConfigError::Value {
            path: path.to_string(),
            key: raw_key.clone(),
            message,
        })?;
        match (append, cfg.values.get_mut(&key), value) {
            (true, Some(Value::List(acc)), Value::List(more)) => acc.extend(more),
            (true, Some(Value::Str(acc)), Value::Str(more)) => acc.push_str(&more),
            (_, _, value) => {
                cfg.values.insert(key.clone(), value);
            }
        }
        if !cfg.order.contains(&key) {
            cfg.order.push(key);
        }
    }
    Ok(())
}

/// Reads and merges the config files for `main`. A missing main file is an error only when
/// `required` (it was named explicitly).
pub fn load(role: Role, main: &Path, required: bool) -> Result<FileConfig, ConfigError> {
    let mut cfg = FileConfig::default();
    let files = config_files(main);
    // A missing main file is fine when drop-ins exist (k3s reads them alone) or when it was not named.
    let optional_main = !required || files.len() > 1;
    for (i, file) in files.into_iter().enumerate() {
        let text = match fs_err::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if i == 0 && optional_main && e.kind() == std::io::ErrorKind::NotFound => {
                continue;
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: file.display().to_string(),
                    source,
                });
            }
        };
        merge_text(role, &mut cfg, &file.display().to_string(), &text)?;
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_files_replace_and_plus_appends() {
        let mut cfg = FileConfig::default();
        merge_text(
            Role::Server,
            &mut cfg,
            "a",
            "node-label: [a=1]\ntls-san: [x]\ntoken: one\nunknown-key: 3\n",
        )
        .expect("a");
        merge_text(
            Role::Server,
            &mut cfg,
            "b",
            "node-label+: [b=2]\ntls-san: [b.example]\ntoken: two\ncluster-init: true\n",
        )
        .expect("b");
        assert_eq!(
            cfg.values["node-label"],
            Value::List(vec!["a=1".into(), "b=2".into()])
        );
        assert_eq!(cfg.values["tls-san"], Value::List(vec!["b.example".into()]));
        assert_eq!(cfg.values["token"], Value::Str("two".into()));
        assert_eq!(cfg.values["cluster-init"], Value::Bool(true));
        assert_eq!(cfg.ignored, vec!["unknown-key".to_string()]);
        assert_eq!(cfg.order[0], "node-label");
    }

    #[test]
    fn wrong_shapes_name_the_file_and_key() {
        let mut cfg = FileConfig::default();
        let err = merge_text(
            Role::Server,
            &mut cfg,
            "/etc/x.yaml",
            "cluster-init: maybe\n",
        )
        .expect_err("bad bool");
        assert!(
            err.to_string()
                .contains("/etc/x.yaml: key \"cluster-init\""),
            "{err}"
        );
    }

    #[test]
    fn dropins_are_read_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let main = dir.path().join("config.yaml");
        fs_err::write(&main, "node-label: [m=1]\n").expect("write");
        fs_err::create_dir(dir.path().join("config.yaml.d")).expect("mkdir");
        fs_err::write(
            dir.path().join("config.yaml.d/20-b.yaml"),
            "node-label+: [b=1]\n",
        )
        .expect("write");
        fs_err::write(
            dir.path().join("config.yaml.d/10-a.yaml"),
            "node-label+: [a=1]\n",
        )
        .expect("write");
        fs_err::write(
            dir.path().join("config.yaml.d/ignored.txt"),
            "node-label: [no]\n",
        )
        .expect("write");
        let cfg = load(Role::Agent, &main, true).expect("load");
        assert_eq!(
            cfg.values["node-label"],
            Value::List(vec!["m=1".into(), "a=1".into(), "b=1".into()])
        );
    }
}
