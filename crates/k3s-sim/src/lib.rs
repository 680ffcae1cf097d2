//! A stand-in for the k3s binary: enough of K3s's server, agent, certificates and Kubernetes API
//! for k3sctl's end-to-end tests, following the K3s documentation wherever k3sctl can observe it.

pub mod agent;
pub mod api;
pub mod bootstrap;
pub mod certcmd;
pub mod certs;
pub mod cli;
pub mod clock;
pub mod components;
pub mod config;
pub mod controller;
pub mod etcd;
pub mod fatal;
pub mod flags;
pub mod http;
pub mod knobs;
pub mod kubeconfig;
pub mod lock;
pub mod log;
pub mod manifests;
pub mod netinfo;
pub mod node;
pub mod nodepass;
pub mod notify;
pub mod paths;
pub mod random;
pub mod registries;
pub mod release;
pub mod server;
pub mod settings;
pub mod signals;
pub mod store;
pub mod tls;
pub mod token;
pub mod version;
