//! `k3sctl init --from-hosts`: which hosts to read (an Ansible inventory, a spec skeleton with
//! hosts and ssh settings, or addresses), reading them, and writing the spec.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::runtime::{block_on, connect_options};
use crate::ops::import_hosts::{annotate, build, read_hosts};
use crate::spec::import::ansible::{self, ConvertOptions};
use crate::spec::{Cluster, LoadedSpec, ValidationContext, load_str, render_spec};

/// The hosts to read, as the user gave them.
fn skeleton(source: &str, name: &str) -> anyhow::Result<(Cluster, PathBuf)> {
    let path = Path::new(source);
    if !path.is_file() {
        if source.contains('/') || source.ends_with(".yaml") || source.ends_with(".ini") {
            bail!("--from-hosts {source}: no such file");
        }
        let hosts: Vec<serde_json::Value> = source
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|address| {
                serde_json::json!({
                    "name": address.replace([':', '.'], "-").to_ascii_lowercase(),
                    "address": address,
                    "role": "server",
                })
            })
            .collect();
        if hosts.is_empty() {
            bail!("--from-hosts: give an inventory, a spec with hosts, or addresses (a,b,c)");
        }
        let cluster = from_json(serde_json::json!({"spec": {"hosts": hosts}}), name)?;
        return Ok((cluster, PathBuf::from(".")));
    }
    let text = fs_err::read_to_string(path)?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let is_spec = text.lines().any(|l| l.trim() == "kind: Cluster");
    if is_spec {
        let value: serde_json::Value = serde_saphyr::from_str(&text)
            .with_context(|| format!("reading the spec skeleton {source}"))?;
        return Ok((from_json(value, name)?, dir));
    }
    let parsed = ansible::parse_inventory(&text, ansible::is_yaml_name(path))
        .with_context(|| format!("reading Ansible inventory {source}"))?;
    let conversion = ansible::convert(
        &parsed,
        &ConvertOptions {
            name: name.to_owned(),
            proxmox_host: None,
        },
    )
    .with_context(|| format!("converting Ansible inventory {source}"))?;
    Ok((conversion.cluster, dir))
}

/// A skeleton with defaults filled in: a role for every host (found out when reading), the
/// header fields.
fn from_json(mut value: serde_json::Value, name: &str) -> anyhow::Result<Cluster> {
    let root = value
        .as_object_mut()
        .context("the skeleton is not a YAML map")?;
    root.entry("apiVersion")
        .or_insert("k3sctl.io/v1alpha1".into());
    root.entry("kind").or_insert("Cluster".into());
    root.entry("metadata")
        .or_insert(serde_json::json!({ "name": name }));
    let spec = root
        .entry("spec")
        .or_insert(serde_json::json!({}))
        .as_object_mut()
        .context("spec is not a map")?;
    spec.entry("k3s").or_insert(serde_json::json!({}));
    if let Some(hosts) = spec.get_mut("hosts").and_then(|h| h.as_array_mut()) {
        for host in hosts.iter_mut().filter_map(|h| h.as_object_mut()) {
            host.entry("role").or_insert("server".into());
            if !host.contains_key("name")
                && let Some(address) = host.get("address").and_then(|a| a.as_str())
            {
                let name = address.replace([':', '.'], "-").to_ascii_lowercase();
                host.insert("name".into(), name.into());
            }
        }
    }
    serde_json::from_value(value).context("the skeleton's hosts cannot be read")
}

/// Reads the hosts and renders the spec text and its warnings.
pub(super) fn from_hosts(
    source: &str,
    name: &str,
    accept_new_host_keys: bool,
) -> anyhow::Result<(String, Vec<String>)> {
    let (base, dir) = skeleton(source, name)?;
    let context = ValidationContext::from_env(dir);
    let loaded = LoadedSpec {
        cluster: base,
        path: PathBuf::from(source),
        base_dir: context.base_dir.clone(),
        home: context.home.clone(),
    };
    let options = connect_options(accept_new_host_keys);
    let seen = block_on(read_hosts(&loaded, options))??;
    let imported = build(&loaded.cluster, seen).map_err(anyhow::Error::msg)?;
    let mut warnings = imported.warnings.clone();
    let mut header = vec![format!(
        "Imported from the running hosts ({source}) by `k3sctl init --from-hosts`: each value \
         read from a host says where it came from. The join token is read live, never written."
    )];
    header.extend(warnings.iter().map(|w| format!("note: {w}")));
    let text = render_spec(&imported.cluster, &header).map_err(anyhow::Error::msg)?;
    let text = annotate(&text, &imported.comments);
    if let Err(errors) = load_str(&text, "the imported spec", &context) {
        warnings.push(format!(
            "the imported spec does not validate yet; fix it before `plan`:\n{errors}"
        ));
    }
    Ok((text, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_skeletons_become_hosts_to_read() {
        let (cluster, _) = skeleton("10.0.0.2, 10.0.0.3", "lab").expect("addresses");
        let names: Vec<&str> = cluster.spec.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["10-0-0-2", "10-0-0-3"]);
        assert_eq!(cluster.metadata.name, "lab");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("skeleton.yaml");
        fs_err::write(
            &file,
            "kind: Cluster\nspec:\n  hostDefaults: {ssh: {user: admin}}\n  hosts:\n    - address: 10.0.0.9\n      ssh: {port: 2222}\n",
        )
        .expect("write");
        let (cluster, base) = skeleton(&file.to_string_lossy(), "k3s").expect("skeleton");
        assert_eq!(base, dir.path());
        assert_eq!(cluster.spec.hosts[0].name, "10-0-0-9");
        assert_eq!(
            cluster.spec.hosts[0].ssh.as_ref().and_then(|s| s.port),
            Some(2222)
        );
        let err = skeleton("missing/inventory.ini", "k3s").expect_err("missing file");
        assert!(err.to_string().contains("no such file"), "{err}");
    }
}
