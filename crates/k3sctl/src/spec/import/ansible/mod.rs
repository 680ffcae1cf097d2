//! Ansible inventories (INI or YAML) → cluster spec.
//!
//! Two layouts are understood: the k3s-ansible one (groups `server` and `agent`, vars such as
//! `k3s_version` and `api_endpoint`) and the Proxmox one (groups such as `k3s_controllers` and
//! `k3s_workers`, host vars `pct_id` and `node_name`, containers reached with `pct` on a Proxmox
//! host).

mod access;
mod convert;
mod extras;
mod ini;
mod inventory;
mod named_by_address;
mod settings;
mod yaml;

pub use convert::{Conversion, ConvertOptions, convert};
pub use inventory::{Group, Inventory, InventoryError};
pub use named_by_address::{hosts_named_by_address, name_hosts_as_running};

/// Parses inventory text: YAML when `yaml` is true, INI otherwise.
pub fn parse_inventory(text: &str, yaml: bool) -> Result<Inventory, InventoryError> {
    if yaml {
        yaml::parse(text)
    } else {
        ini::parse(text)
    }
}

/// Whether a file name looks like a YAML inventory (`.yml`, `.yaml`, `.json`).
pub fn is_yaml_name(name: &std::path::Path) -> bool {
    name.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| matches!(ext, "yml" | "yaml" | "json"))
}
