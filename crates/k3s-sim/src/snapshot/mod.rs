//! `k3s etcd-snapshot` and the snapshots a server takes: names, the cron subset of the schedule,
//! the snapshot service on the server, the supervisor's `/db/snapshot` request and the CLI that
//! sends it to the running local server (as newer K3s releases do, so K3s must be running).

pub mod cmd;
pub mod cron;
pub mod local;
pub mod names;
pub mod request;
