//! The etcd-backed [`Datastore`]: keys `/registry/...` as the API server stores them, resource
//! versions = etcd revisions, writes as transactions guarded by the cached revision, and a
//! watch feeding every server's object cache so a change made through one server is seen and
//! watched through all of them.

use std::sync::Arc;
use std::time::Duration;

use super::client::EtcdClient;
use crate::store::{
    Change, Datastore, Expect, ObjectStore, Outcome, Record, Snapshot, StoreError, Write,
};

/// Cluster state in etcd.
pub struct EtcdDatastore {
    client: Arc<EtcdClient>,
}

impl EtcdDatastore {
    /// Uses this client (normally the local member, https://127.0.0.1:2379).
    pub fn new(client: Arc<EtcdClient>) -> Self {
        Self { client }
    }
}

fn remote(e: super::client::EtcdError) -> StoreError {
    StoreError::Remote(e.to_string())
}

impl Datastore for EtcdDatastore {
    fn load_all(&self) -> Result<Snapshot, StoreError> {
        let (records, revision) = self.client.range_all().map_err(remote)?;
        Ok(Snapshot { records, revision })
    }

    fn get(&self, key: &str) -> Result<Option<Record>, StoreError> {
        self.client.get(key).map_err(remote)
    }

    fn write(&self, key: &str, op: Write<'_>, expect: Expect) -> Result<Outcome, StoreError> {
        self.client.write(key, op, expect).map_err(remote)
    }

    fn shared(&self) -> bool {
        true
    }
}

/// Feeds every change after `from_revision` into the store, reconnecting after errors, on a
/// thread of its own (for the life of the process).
pub fn spawn_feed(store: Arc<ObjectStore>, client: Arc<EtcdClient>, from_revision: u64) {
    std::thread::spawn(move || {
        let mut next = from_revision + 1;
        loop {
            let result = client.watch(next, |ev| {
                let change = match &ev.value {
                    Some(v) => Change::Put {
                        value: v,
                        created: ev.created,
                    },
                    None => Change::Delete {
                        prev: ev.prev.as_deref(),
                    },
                };
                store.apply_change(ev.revision, &ev.key, change);
                next = ev.revision + 1;
                true
            });
            if let Err(e) = result {
                crate::log::warn(format!(
                    "etcd watch interrupted, resuming at revision {next}: {e}"
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
}
