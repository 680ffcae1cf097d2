//! Rules about local files the spec refers to: they must exist when the spec is validated.

use super::{Issue, ValidationContext};
use crate::spec::SpecPath;
use crate::spec::model::{Cluster, SshSettings, ValueRef};
use crate::spec_path;

pub(super) fn check(cluster: &Cluster, context: &ValidationContext, issues: &mut Vec<Issue>) {
    let mut wanted: Vec<(SpecPath, &str, &str)> = Vec::new();
    let spec = &cluster.spec;
    if let Some(ssh) = spec.host_defaults.as_ref().and_then(|d| d.ssh.as_ref()) {
        ssh_files(spec_path!["spec", "hostDefaults", "ssh"], ssh, &mut wanted);
    }
    for (i, proxmox) in spec.proxmox_hosts.iter().enumerate() {
        if let Some(ssh) = &proxmox.ssh {
            ssh_files(
                spec_path!["spec", "proxmoxHosts", i, "ssh"],
                ssh,
                &mut wanted,
            );
        }
    }
    for (i, host) in spec.hosts.iter().enumerate() {
        if let Some(ssh) = &host.ssh {
            ssh_files(spec_path!["spec", "hosts", i, "ssh"], ssh, &mut wanted);
        }
    }
    if let Some(file) = spec.k3s.binary.as_ref().and_then(|b| b.file.as_ref()) {
        wanted.push((
            spec_path!["spec", "k3s", "binary", "file"],
            file,
            "k3s binary",
        ));
    }
    if let Some(file) = &spec.k3s.airgap_images {
        wanted.push((
            spec_path!["spec", "k3s", "airgapImages"],
            file,
            "airgap images tarball",
        ));
    }
    for (i, manifest) in spec.addons.manifests.iter().enumerate() {
        wanted.push((
            spec_path!["spec", "addons", "manifests", i, "file"],
            &manifest.file,
            "manifest",
        ));
    }
    for (registry, config) in &spec.registries.configs {
        let base = spec_path!["spec", "registries", "configs", registry];
        if let Some(tls) = &config.tls {
            for (field, file) in [
                ("caFile", &tls.ca_file),
                ("certFile", &tls.cert_file),
                ("keyFile", &tls.key_file),
            ] {
                if let Some(file) = file {
                    wanted.push((base.key("tls").key(field), file, "registry TLS file"));
                }
            }
        }
        if let Some(auth) = &config.auth {
            for (field, value) in auth.refs() {
                if let ValueRef::File(file) = value {
                    wanted.push((
                        base.key("auth").key(field).key("file"),
                        file,
                        "credential file",
                    ));
                }
            }
        }
    }
    for (path, written, what) in wanted {
        let resolved = context.resolve(written);
        if !resolved.is_file() {
            issues.push(
                Issue::new(path, format!("{what} `{written}` does not exist")).hint(format!(
                    "looked for {} (relative paths start at the spec file's directory)",
                    resolved.display()
                )),
            );
        }
    }
}

fn ssh_files<'a>(
    base: SpecPath,
    ssh: &'a SshSettings,
    wanted: &mut Vec<(SpecPath, &'a str, &'static str)>,
) {
    if let Some(file) = &ssh.identity_file {
        wanted.push((base.key("identityFile"), file, "identity file"));
    }
    if let Some(file) = &ssh.config_file {
        wanted.push((base.key("configFile"), file, "ssh config file"));
    }
}
