//! Pure knowledge of K3s: versions, channels, release assets, the files k3sctl renders for a
//! node (config.yaml, registries.yaml, systemd unit and env file), join tokens and kubeconfig
//! rewriting. Nothing here does I/O.

pub mod certs;
pub mod channel;
pub mod config;
pub mod critical;
pub mod effective;
pub mod install_exec;
pub mod journal;
pub mod kubeconfig;
pub mod kubeconfig_merge;
pub mod links;
pub mod manifests;
pub mod ports;
pub mod registries;
pub mod release;
pub mod token;
pub mod uninstall;
pub mod unit;
pub mod unit_dropins;
pub mod version;
pub mod yaml;
