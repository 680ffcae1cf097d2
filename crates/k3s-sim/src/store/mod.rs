//! Cluster state: a [`Datastore`] persists raw key/value pairs (a directory for a single server, embedded etcd for HA), and the [`ObjectStore`] on top keeps Kubernetes objects in memory with resource
//! versions, UIDs and a watch stream.

mod api_error;
mod datastore;
mod objects;

pub use api_error::ApiError;
pub use datastore::{
    Datastore, Expect, FileDatastore, Outcome, Record, Snapshot, StoreError, Write,
};
pub use objects::{Change, Event, EventType, ObjectStore, ResourceKey};
