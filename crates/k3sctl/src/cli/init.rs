//! `k3sctl init`: write a starter spec, convert an Ansible inventory into one, or read one
//! from running hosts (`--from-hosts`, in `init_from_hosts`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde::Serialize;

use super::output::print_json;
use super::runtime::block_on;
use super::{CommandResult, Global};
use crate::ops::connect::ConnectOptions;
use crate::ops::import_hosts::read::running_node_names;
use crate::spec::import::ansible::{self, ConvertOptions};
use crate::spec::{LoadedSpec, ValidationContext, is_dns_label, render_spec, starter_spec};

/// Arguments of `init` (the file written is the global `-c`, default ./cluster.yaml).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Overwrite the spec file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Cluster name (metadata.name).
    #[arg(long, default_value = "k3s", value_name = "NAME")]
    pub name: String,
    /// Convert this Ansible inventory (INI, or YAML when named .yml/.yaml) instead of writing
    /// the starter spec.
    #[arg(long, value_name = "INVENTORY", conflicts_with = "from_hosts")]
    pub from_ansible: Option<PathBuf>,
    /// Read K3s as it runs on these hosts (installed by the install script, k3s-ansible,
    /// k3sup...) and write a spec that reproduces it: an Ansible inventory, a spec file with
    /// hosts and ssh settings only, or addresses (`10.0.0.2,10.0.0.3`). Roles, version,
    /// settings, labels, taints and registries come from the hosts; the token is never written.
    #[arg(long, value_name = "HOSTS")]
    pub from_hosts: Option<String>,
    /// Record unknown host keys while reading the hosts (`--from-hosts`).
    #[arg(long, requires = "from_hosts")]
    pub accept_new_host_keys: bool,
    /// Address of the Proxmox host that runs `pct` for hosts with `pct_id`, when the inventory
    /// has no `proxmox` group or `proxmox_host` var.
    #[arg(long, value_name = "ADDRESS", requires = "from_ansible")]
    pub proxmox_host: Option<String>,
}

#[derive(Serialize)]
struct Written<'a> {
    path: String,
    warnings: &'a [String],
}

pub(super) fn run(global: &Global, args: Args) -> CommandResult {
    let target = &global.config;
    if !is_dns_label(&args.name) {
        bail!(
            "--name `{}` is not a DNS-1123 label (lowercase letters, digits, `-`)",
            args.name
        );
    }
    if target.exists() && !args.force {
        bail!(
            "{} already exists; pass --force to overwrite it",
            target.display()
        );
    }
    let (text, warnings) = match (&args.from_ansible, &args.from_hosts) {
        (Some(inventory), _) => from_ansible(inventory, &args)?,
        (None, Some(hosts)) => {
            super::init_from_hosts::from_hosts(hosts, &args.name, args.accept_new_host_keys)?
        }
        (None, None) => (starter_spec(&args.name), Vec::new()),
    };
    fs_err::write(target, text)?;
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    if global.json() {
        print_json(&Written {
            path: target.display().to_string(),
            warnings: &warnings,
        })?;
    } else {
        println!("{}", target.display());
        if !global.quiet {
            eprintln!(
                "wrote {}; check it with `k3sctl validate -c {}`",
                target.display(),
                target.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn from_ansible(inventory: &std::path::Path, args: &Args) -> anyhow::Result<(String, Vec<String>)> {
    let text = fs_err::read_to_string(inventory)?;
    let parsed = ansible::parse_inventory(&text, ansible::is_yaml_name(inventory))
        .with_context(|| format!("reading Ansible inventory {}", inventory.display()))?;
    let options = ConvertOptions {
        name: args.name.clone(),
        proxmox_host: args.proxmox_host.clone(),
    };
    let mut conversion = ansible::convert(&parsed, &options)
        .with_context(|| format!("converting Ansible inventory {}", inventory.display()))?;
    let by_address = ansible::hosts_named_by_address(&conversion.cluster);
    if !by_address.is_empty() {
        // k3s-ansible's sample names hosts by address; K3s names their Nodes otherwise.
        let dir = inventory
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), std::path::Path::to_path_buf);
        let context = ValidationContext::from_env(dir);
        let spec = LoadedSpec {
            cluster: conversion.cluster.clone(),
            path: inventory.to_path_buf(),
            base_dir: context.base_dir,
            home: context.home,
        };
        let found = block_on(running_node_names(
            &spec,
            &by_address,
            // Reading changes nothing: stopped containers stay stopped.
            ConnectOptions {
                accept_new_host_keys: false,
                skip_unreachable: true,
                start_containers: false,
                first_command_checks_reuse: false,
            },
        ))?;
        let notes = ansible::name_hosts_as_running(&mut conversion.cluster, &found);
        conversion.warnings.extend(notes);
    }
    let mut header = vec![format!(
        "Converted from the Ansible inventory {} by `k3sctl init`.",
        inventory.display()
    )];
    header.extend(
        conversion
            .warnings
            .iter()
            .map(|warning| format!("note: {warning}")),
    );
    let spec = render_spec(&conversion.cluster, &header).map_err(anyhow::Error::msg)?;
    Ok((spec, conversion.warnings))
}
