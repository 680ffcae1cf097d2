//! The Kubernetes API edge (kube-rs): connecting (also through an SSH tunnel), nodes, waits,
//! cordon with ownership, drain with kubectl's semantics, health probes. Knows nothing of the
//! cluster spec.

mod connect;
mod cordon;
mod drain;
mod drain_plan;
mod error;
mod etcd;
mod eviction;
mod health;
mod labels;
mod node_password;
mod nodes;
mod objects;
mod ownership;
mod pdb;
mod remove;
mod snapshots;
mod taints;
mod wait;

pub use connect::{
    ApiConnection, Forward, PortForwarder, client_from_kubeconfig, connect_through,
    install_crypto_provider,
};
pub use cordon::{
    CORDONED_FOR, CordonOutcome, UncordonOutcome, cordon, cordon_patch, decide_cordon,
    decide_uncordon, uncordon_if_ours, uncordon_patch,
};
pub use drain::{DrainOptions, DrainReport, drain_node, pods_on_node, preview_drain};
pub use drain_plan::{BlockReason, DrainPlan, DrainRules, PodRef, SkipReason, plan_drain, pod_ref};
pub use error::{KubeError, status_code};
pub use etcd::{EtcdMember, etcd_members, parse_db_info};
pub use eviction::{Removal, delete, evict, eviction_body};
pub use health::{PodHealth, pod_health, pod_healths, pod_problem, readyz, unhealthy_pods};
pub use kube::Client;
pub use labels::{LABELS_SET_BY_K3SCTL, LabelChange, enforce_labels, owned_labels, plan_labels};
pub use node_password::{delete_node_password, node_password_secret};
pub use nodes::{
    Condition, ETCD_IS_VOTER, ETCD_ROLE_LABEL, NodeInfo, get_node, list_nodes, node_lease_renewed,
};
pub use objects::{FIELD_MANAGER, apply_object, read_object};
pub use pdb::{describe_pdb, matching_pdbs, selector_matches};
pub use remove::{
    ETCD_MEMBER_NAME, ETCD_REMOVE, ETCD_REMOVED, MemberRemoval, NodeDeletion, delete_node,
    members_of, remove_etcd_member,
};
pub use snapshots::{SnapshotFile, list_snapshot_files, parse_snapshot_files};
pub use taints::{
    TAINTS_SET_BY_K3SCTL, TaintChange, enforce_taints, owned_taints, plan_taints, taint_text,
};
pub use wait::{
    Poll, StartedAt, node_matches, poll_until, ready_needs_lease, ready_posted_after,
    wait_etcd_voter, wait_node_ready, wait_node_ready_after,
};
