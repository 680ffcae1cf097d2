//! Cluster state: a [`Datastore`] persists raw key/value pairs (a directory today, embedded etcd
//! later), and the [`ObjectStore`] on top keeps Kubernetes objects in memory with resource
//! versions, UIDs and a watch stream.

mod api_error;
mod datastore;
mod objects;

pub use api_error::ApiError;
pub use datastore::{Datastore, FileDatastore, StoreError};
pub use objects::{Event, EventType, ObjectStore, ResourceKey};
