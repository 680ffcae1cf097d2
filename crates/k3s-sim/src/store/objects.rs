//! Kubernetes objects in memory, persisted through a [`Datastore`], with a global resource
//! version counter, UIDs, generations and a broadcast of changes for watches.
//!
//! With a shared datastore (etcd, several servers) the in-memory map is a cache: resource
//! versions are the store's revisions, writes carry the cached revision as a precondition, and
//! watch events come only from the store's change feed ([`ObjectStore::apply_change`]), so every
//! server sees every change in the store's order.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::{ApiError, Datastore, Expect, Outcome, Record, Write};

/// How many recent events are kept so a watch can resume from a resourceVersion.
const HISTORY: usize = 2000;
/// Datastore key holding the last resource version used by a deletion.
const REVISION_KEY: &str = "/meta/revision";

/// Identifies one object: storage resource (`pods`, `deployments.apps`), namespace ("" for
/// cluster-scoped) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceKey {
    /// Plural resource name, with `.group` for non-core groups.
    pub resource: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

impl ResourceKey {
    /// Builds a key.
    pub fn new(resource: &str, namespace: &str, name: &str) -> Self {
        Self {
            resource: resource.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    fn storage_key(&self) -> String {
        if self.namespace.is_empty() {
            format!("/registry/{}/{}", self.resource, self.name)
        } else {
            format!(
                "/registry/{}/{}/{}",
                self.resource, self.namespace, self.name
            )
        }
    }
}

/// Kind of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

impl EventType {
    /// The watch event type string.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change.
#[derive(Debug, Clone)]
pub struct Event {
    /// Resource version of the change.
    pub rv: u64,
    /// What happened.
    pub kind: EventType,
    /// Which object.
    pub key: ResourceKey,
    /// The object after the change (before, for deletions).
    pub object: Value,
}

struct Inner {
    objects: BTreeMap<ResourceKey, Value>,
    rv: u64,
    history: VecDeque<Event>,
    /// Shared stores: the revision of the last write of each key the cache reflects (deletions
    /// included), so a change arriving late from the feed never overwrites a newer local write.
    key_rev: HashMap<ResourceKey, u64>,
    /// Shared stores: the last revision applied from the feed. Lists report it (not `rv`, which
    /// local writes may have moved ahead), so a watch started from a list's version never skips
    /// an earlier change of another server that the feed has not delivered yet.
    applied: u64,
}

/// The object store shared by the API, the controllers and node registration.
pub struct ObjectStore {
    inner: Mutex<Inner>,
    ds: Box<dyn Datastore>,
    tx: broadcast::Sender<Event>,
    shared: bool,
}

/// One change from a shared datastore's feed.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// A key was written.
    Put {
        /// The new value.
        value: &'a [u8],
        /// Whether this write created the key (etcd `version` 1).
        created: bool,
    },
    /// A key was deleted.
    Delete {
        /// The value before the deletion, when known.
        prev: Option<&'a [u8]>,
    },
}

/// Why a write did not happen.
enum CommitError {
    /// The store's precondition failed (another server wrote first).
    Conflict,
    /// Anything else.
    Api(ApiError),
}

impl From<ApiError> for CommitError {
    fn from(e: ApiError) -> Self {
        CommitError::Api(e)
    }
}

/// How often a read-modify-write is retried after losing a race to another server.
const MODIFY_ATTEMPTS: usize = 8;

fn parse_rv(v: &Value) -> u64 {
    v.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Parses a stored value; with a store revision, the object's resourceVersion is that revision
/// (as the API server derives it from etcd's mod_revision).
fn decode(rec: &Record) -> Option<Value> {
    let mut obj = serde_json::from_slice::<Value>(&rec.value).ok()?;
    if !obj.is_object() {
        return None;
    }
    if rec.revision > 0 {
        if !obj.get("metadata").is_some_and(Value::is_object) {
            obj["metadata"] = json!({});
        }
        obj["metadata"]["resourceVersion"] = json!(rec.revision.to_string());
    }
    Some(obj)
}

fn key_from_storage(key: &str) -> Option<ResourceKey> {
    let rest = key.strip_prefix("/registry/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [res, name] => Some(ResourceKey::new(res, "", name)),
        [res, ns, name] => Some(ResourceKey::new(res, ns, name)),
        _ => None,
    }
}

impl ObjectStore {
    /// Loads every object from the datastore.
    pub fn open(ds: Box<dyn Datastore>) -> Result<Self, super::StoreError> {
        let shared = ds.shared();
        let snapshot = ds.load_all()?;
        let mut objects = BTreeMap::new();
        let mut key_rev = HashMap::new();
        let mut rv = snapshot.revision;
        for rec in snapshot.records {
            if rec.key == REVISION_KEY {
                rv = rv.max(
                    String::from_utf8_lossy(&rec.value)
                        .trim()
                        .parse()
                        .unwrap_or(0),
                );
                continue;
            }
            let Some(k) = key_from_storage(&rec.key) else {
                continue;
            };
            let Some(obj) = decode(&rec) else {
                crate::log::warn(format!("datastore: skipping unreadable object {}", rec.key));
                continue;
            };
            rv = rv.max(parse_rv(&obj));
            if shared {
                key_rev.insert(k.clone(), rec.revision);
            }
            objects.insert(k, obj);
        }
        let (tx, _) = broadcast::channel(4096);
        Ok(Self {
            inner: Mutex::new(Inner {
                objects,
                rv,
                history: VecDeque::new(),
                key_rev,
                applied: snapshot.revision,
            }),
            ds,
            tx,
            shared,
        })
    }

    /// Applies one change from a shared datastore's feed (etcd watch), in revision order:
    /// updates the cache unless a newer local write is already there, and emits the watch event.
    pub fn apply_change(&self, revision: u64, key: &str, change: Change<'_>) {
        let Some(k) = key_from_storage(key) else {
            return;
        };
        let mut inner = self.lock();
        let newer_local = inner.key_rev.get(&k).is_some_and(|r| *r > revision);
        let (kind, object) = match change {
            Change::Put { value, created } => {
                let rec = Record {
                    key: key.to_string(),
                    value: value.to_vec(),
                    revision,
                };
                let Some(obj) = decode(&rec) else {
                    return;
                };
                if !newer_local {
                    inner.objects.insert(k.clone(), obj.clone());
                    inner.key_rev.insert(k.clone(), revision);
                }
                let kind = if created {
                    EventType::Added
                } else {
                    EventType::Modified
                };
                (kind, obj)
            }
            Change::Delete { prev } => {
                let mut obj = prev
                    .and_then(|p| serde_json::from_slice::<Value>(p).ok())
                    .or_else(|| inner.objects.get(&k).cloned())
                    .unwrap_or_else(|| json!({"metadata": {"name": k.name}}));
                obj["metadata"]["resourceVersion"] = json!(revision.to_string());
                if !newer_local {
                    inner.objects.remove(&k);
                    inner.key_rev.insert(k.clone(), revision);
                }
                (EventType::Deleted, obj)
            }
        };
        inner.rv = inner.rv.max(revision);
        inner.applied = inner.applied.max(revision);
        let ev = Event {
            rv: revision,
            kind,
            key: k,
            object,
        };
        inner.history.push_back(ev.clone());
        while inner.history.len() > HISTORY {
            inner.history.pop_front();
        }
        let _ = self.tx.send(ev);
    }

    /// Replaces the cached copy of one key with the store's (after losing a race).
    fn refresh_locked(&self, inner: &mut Inner, key: &ResourceKey, current: Option<Record>) {
        let known = inner.key_rev.get(key).copied().unwrap_or(0);
        match current {
            Some(rec) if rec.revision > known => {
                if let Some(obj) = decode(&rec) {
                    inner.objects.insert(key.clone(), obj);
                    inner.key_rev.insert(key.clone(), rec.revision);
                    inner.rv = inner.rv.max(rec.revision);
                }
            }
            Some(_) => {}
            None => {
                inner.objects.remove(key);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads a non-object key (bootstrap data).
    pub fn raw_get(&self, key: &str) -> Result<Option<Vec<u8>>, super::StoreError> {
        Ok(self.ds.get(key)?.map(|r| r.value))
    }

    /// Whether the datastore is shared with other servers (embedded etcd).
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Writes a non-object key (bootstrap data).
    pub fn raw_put(&self, key: &str, value: &[u8]) -> Result<(), super::StoreError> {
        self.ds.put(key, value)
    }

    /// The current resource version (with a shared store: the last one the feed delivered).
    pub fn current_rv(&self) -> u64 {
        let inner = self.lock();
        if self.shared { inner.applied } else { inner.rv }
    }

    /// One object.
    pub fn get(&self, key: &ResourceKey) -> Option<Value> {
        self.lock().objects.get(key).cloned()
    }

    /// Objects of a resource, optionally in one namespace, with the list resource version.
    pub fn list(&self, resource: &str, namespace: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let items = inner
            .objects
            .iter()
            .filter(|(k, _)| k.resource == resource && namespace.is_none_or(|ns| k.namespace == ns))
            .map(|(_, v)| v.clone())
            .collect();
        let rv = if self.shared { inner.applied } else { inner.rv };
        (items, rv)
    }

    /// Subscribes to changes; also returns the recent history for resuming watches.
    pub fn subscribe(&self) -> (broadcast::Receiver<Event>, Vec<Event>) {
        let inner = self.lock();
        (self.tx.subscribe(), inner.history.iter().cloned().collect())
    }

    /// Writes one change through the datastore and into the cache. Sets the object's
    /// resourceVersion (the store's revision, or the next local counter value).
    fn commit(
        &self,
        inner: &mut Inner,
        kind: EventType,
        key: ResourceKey,
        mut object: Value,
        expect: Expect,
    ) -> Result<Value, CommitError> {
        let next = inner.rv + 1;
        if !self.shared {
            object["metadata"]["resourceVersion"] = json!(next.to_string());
        }
        let skey = key.storage_key();
        let internal = |e: super::StoreError| CommitError::Api(ApiError::internal(e.to_string()));
        let bytes = object.to_string();
        let op = match kind {
            EventType::Deleted => Write::Delete,
            _ => Write::Put(bytes.as_bytes()),
        };
        let rev = match self.ds.write(&skey, op, expect).map_err(internal)? {
            Outcome::Committed(Some(r)) => r,
            Outcome::Committed(None) => next,
            Outcome::Conflict(current) => {
                self.refresh_locked(inner, &key, current);
                return Err(CommitError::Conflict);
            }
        };
        // Deletions leave no object carrying the revision: record it so it never goes back.
        if !self.shared && kind == EventType::Deleted {
            self.ds
                .put(REVISION_KEY, rev.to_string().as_bytes())
                .map_err(internal)?;
        }
        object["metadata"]["resourceVersion"] = json!(rev.to_string());
        inner.rv = inner.rv.max(rev);
        match kind {
            EventType::Deleted => {
                inner.objects.remove(&key);
            }
            _ => {
                inner.objects.insert(key.clone(), object.clone());
            }
        }
        if self.shared {
            // The event comes back through the store's change feed, in the store's order.
            inner.key_rev.insert(key, rev);
            return Ok(object);
        }
        let ev = Event {
            rv: rev,
            kind,
            key,
            object: object.clone(),
        };
        inner.history.push_back(ev.clone());
        while inner.history.len() > HISTORY {
            inner.history.pop_front();
        }
        // No receivers is fine.
        let _ = self.tx.send(ev);
        Ok(object)
    }

    /// Creates an object (sets uid, creationTimestamp, resourceVersion, generation, namespace;
    /// fills `metadata.name` from `generateName`).
    pub fn create(
        &self,
        resource: &str,
        namespace: &str,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        if !obj.get("metadata").is_some_and(Value::is_object) {
            obj["metadata"] = json!({});
        }
        let meta = &mut obj["metadata"];
        let mut name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if name.is_empty() {
            let prefix = meta
                .get("generateName")
                .and_then(Value::as_str)
                .unwrap_or("");
            if prefix.is_empty() {
                return Err(ApiError::invalid(format!(
                    "{resource} \"\" is invalid: metadata.name: Required value: name or generateName is required"
                )));
            }
            name = format!("{prefix}{}", crate::random::suffix(5));
        }
        validate_name(resource, &name)?;
        let key = ResourceKey::new(resource, namespace, &name);
        let mut inner = self.lock();
        if inner.objects.contains_key(&key) {
            return Err(ApiError::already_exists(resource, &name));
        }
        let meta = &mut obj["metadata"];
        meta["name"] = json!(name);
        if !namespace.is_empty() {
            meta["namespace"] = json!(namespace);
        }
        meta["uid"] = json!(crate::random::uid());
        meta["creationTimestamp"] = json!(crate::clock::now_rfc3339());
        meta["generation"] = json!(1);
        if let Some(m) = meta.as_object_mut() {
            m.remove("deletionTimestamp");
            m.remove("resourceVersion");
        }
        match self.commit(&mut inner, EventType::Added, key, obj, Expect::Absent) {
            Ok(o) => Ok(o),
            Err(CommitError::Conflict) => Err(ApiError::already_exists(resource, &name)),
            Err(CommitError::Api(e)) => Err(e),
        }
    }

    /// Replaces an object. When `new` carries a resourceVersion it must match (optimistic
    /// concurrency); uid and creationTimestamp are kept; generation grows when `spec` changes.
    pub fn update(&self, key: &ResourceKey, new: Value) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let old = inner
            .objects
            .get(key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&key.resource, &key.name))?;
        if let Some(rv) = new
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            && !rv.is_empty()
            && rv
                != old
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("")
        {
            return Err(ApiError::conflict(&key.resource, &key.name));
        }
        match self.replace_locked(&mut inner, key, &old, new) {
            Ok(o) => Ok(o),
            Err(CommitError::Conflict) => Err(ApiError::conflict(&key.resource, &key.name)),
            Err(CommitError::Api(e)) => Err(e),
        }
    }

    fn replace_locked(
        &self,
        inner: &mut Inner,
        key: &ResourceKey,
        old: &Value,
        mut new: Value,
    ) -> Result<Value, CommitError> {
        if !new.get("metadata").is_some_and(Value::is_object) {
            new["metadata"] = json!({});
        }
        for field in ["uid", "creationTimestamp", "name", "namespace"] {
            match old["metadata"].get(field) {
                Some(v) => new["metadata"][field] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let spec_changed = old.get("spec") != new.get("spec");
        new["metadata"]["generation"] = json!(if spec_changed {
            generation + 1
        } else {
            generation
        });
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if &new == old {
            return Ok(new);
        }
        let expect = Expect::Revision(parse_rv(old));
        self.commit(inner, EventType::Modified, key.clone(), new, expect)
    }

    /// Read-modify-write under the store lock. Unchanged objects are not rewritten. With a
    /// shared store, a write that lost a race to another server is retried on the fresh object
    /// (as the API server's guaranteed update does).
    pub fn modify(
        &self,
        key: &ResourceKey,
        mut f: impl FnMut(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        for _ in 0..MODIFY_ATTEMPTS {
            let old = inner
                .objects
                .get(key)
                .cloned()
                .ok_or_else(|| ApiError::not_found(&key.resource, &key.name))?;
            let mut new = old.clone();
            f(&mut new)?;
            match self.replace_locked(&mut inner, key, &old, new) {
                Ok(o) => return Ok(o),
                Err(CommitError::Conflict) => continue,
                Err(CommitError::Api(e)) => return Err(e),
            }
        }
        Err(ApiError::conflict(&key.resource, &key.name))
    }

    /// Deletes an object and returns it (with `deletionTimestamp` set).
    pub fn delete(&self, key: &ResourceKey) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let mut obj = inner
            .objects
            .get(key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&key.resource, &key.name))?;
        let expect = Expect::Revision(parse_rv(&obj));
        obj["metadata"]["deletionTimestamp"] = json!(crate::clock::now_rfc3339());
        match self.commit(&mut inner, EventType::Deleted, key.clone(), obj, expect) {
            Ok(o) => Ok(o),
            Err(CommitError::Conflict) => Err(ApiError::conflict(&key.resource, &key.name)),
            Err(CommitError::Api(e)) => Err(e),
        }
    }
}

/// Checks a name the way the API server does for most resources (DNS-1123 subdomain).
fn validate_name(resource: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "{resource} \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FileDatastore;

    fn store(dir: &std::path::Path) -> ObjectStore {
        ObjectStore::open(Box::new(FileDatastore::open(dir).expect("ds"))).expect("store")
    }

    #[test]
    fn create_update_delete_and_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(dir.path());
        let pod = s
            .create(
                "pods",
                "default",
                json!({"metadata": {"name": "p1"}, "spec": {"x": 1}}),
            )
            .expect("create");
        assert_eq!(pod["metadata"]["resourceVersion"], "1");
        assert!(
            pod["metadata"]["uid"]
                .as_str()
                .is_some_and(|u| u.len() == 36)
        );
        assert_eq!(
            s.create("pods", "default", json!({"metadata": {"name": "p1"}}))
                .expect_err("dup")
                .code,
            409
        );
        let key = ResourceKey::new("pods", "default", "p1");
        let mut stale = pod.clone();
        let updated = s.modify(&key, |o| {
            o["spec"]["x"] = json!(2);
            Ok(())
        });
        assert_eq!(updated.expect("modify")["metadata"]["generation"], 2);
        stale["spec"]["x"] = json!(3);
        assert_eq!(
            s.update(&key, stale).expect_err("stale rv").reason,
            "Conflict"
        );
        let same = s.modify(&key, |_| Ok(())).expect("noop");
        assert_eq!(
            same["metadata"]["resourceVersion"], "2",
            "no-op does not bump rv"
        );
        drop(s);
        let s = store(dir.path());
        assert_eq!(s.get(&key).expect("reloaded")["spec"]["x"], 2);
        assert_eq!(s.current_rv(), 2);
        s.delete(&key).expect("delete");
        assert!(s.get(&key).is_none());
        let reopened = store(dir.path());
        assert!(reopened.get(&key).is_none());
        assert_eq!(
            reopened.current_rv(),
            3,
            "resource versions never go back after a restart"
        );
    }

    /// Store revision and key → (value, revision).
    type MemState = (u64, BTreeMap<String, (Vec<u8>, u64)>);

    /// A shared store in memory: revisions and preconditions like etcd.
    #[derive(Default)]
    struct Mem {
        state: std::sync::Mutex<MemState>,
    }

    impl Datastore for std::sync::Arc<Mem> {
        fn load_all(&self) -> Result<super::super::Snapshot, super::super::StoreError> {
            let st = self.state.lock().expect("lock");
            Ok(super::super::Snapshot {
                records: st
                    .1
                    .iter()
                    .map(|(k, (v, r))| Record {
                        key: k.clone(),
                        value: v.clone(),
                        revision: *r,
                    })
                    .collect(),
                revision: st.0,
            })
        }
        fn get(&self, key: &str) -> Result<Option<Record>, super::super::StoreError> {
            let st = self.state.lock().expect("lock");
            Ok(st.1.get(key).map(|(v, r)| Record {
                key: key.into(),
                value: v.clone(),
                revision: *r,
            }))
        }
        fn write(
            &self,
            key: &str,
            op: Write<'_>,
            expect: Expect,
        ) -> Result<Outcome, super::super::StoreError> {
            let mut st = self.state.lock().expect("lock");
            let cur = st.1.get(key).map(|(v, r)| Record {
                key: key.into(),
                value: v.clone(),
                revision: *r,
            });
            let ok = match expect {
                Expect::Any => true,
                Expect::Absent => cur.is_none(),
                Expect::Revision(r) => cur.as_ref().is_some_and(|c| c.revision == r),
            };
            if !ok {
                return Ok(Outcome::Conflict(cur));
            }
            st.0 += 1;
            let rev = st.0;
            match op {
                Write::Put(v) => {
                    st.1.insert(key.into(), (v.to_vec(), rev));
                }
                Write::Delete => {
                    st.1.remove(key);
                }
            }
            Ok(Outcome::Committed(Some(rev)))
        }
        fn shared(&self) -> bool {
            true
        }
    }

    #[test]
    fn shared_store_takes_revisions_and_events_from_the_store() {
        let mem = std::sync::Arc::new(Mem::default());
        let a = ObjectStore::open(Box::new(mem.clone())).expect("a");
        let b = ObjectStore::open(Box::new(mem.clone())).expect("b");
        let (mut rx, _) = a.subscribe();
        let pod = a
            .create(
                "pods",
                "default",
                json!({"metadata": {"name": "p"}, "spec": {"x": 1}}),
            )
            .expect("create");
        assert_eq!(
            pod["metadata"]["resourceVersion"], "1",
            "the store's revision"
        );
        assert!(
            rx.try_recv().is_err(),
            "no event before the feed delivers it"
        );
        assert_eq!(
            a.list("pods", None).1,
            0,
            "lists report what the feed delivered"
        );
        // b writes the same object first (it learned it from the feed): a's stale write loses,
        // and a's modify retries on the fresh object.
        let key = ResourceKey::new("pods", "default", "p");
        let stored = mem
            .get("/registry/pods/default/p")
            .expect("get")
            .expect("some");
        b.apply_change(
            1,
            &stored.key,
            Change::Put {
                value: &stored.value,
                created: true,
            },
        );
        b.modify(&key, |o| {
            o["spec"]["x"] = json!(2);
            Ok(())
        })
        .expect("b modifies");
        let mut calls = 0;
        let out = a
            .modify(&key, |o| {
                calls += 1;
                o["metadata"]["labels"] = json!({"seen": o["spec"]["x"].to_string()});
                Ok(())
            })
            .expect("a modifies after a retry");
        assert_eq!(calls, 2, "the first attempt lost the race");
        assert_eq!(out["metadata"]["labels"]["seen"], "2");
        assert_eq!(out["metadata"]["resourceVersion"], "3");
        // A late change (revision 2) never overwrites a's newer local write (revision 3).
        let r2 = serde_json::to_vec(&json!({"metadata": {"name": "p"}, "spec": {"x": 2}}))
            .expect("json");
        a.apply_change(
            1,
            "/registry/pods/default/p",
            Change::Put {
                value: &stored.value,
                created: true,
            },
        );
        a.apply_change(
            2,
            "/registry/pods/default/p",
            Change::Put {
                value: &r2,
                created: false,
            },
        );
        assert_eq!(a.get(&key).expect("p")["metadata"]["resourceVersion"], "3");
        assert_eq!(rx.try_recv().expect("added").kind, EventType::Added);
        assert_eq!(rx.try_recv().expect("modified").rv, 2);
        assert_eq!(a.list("pods", None).1, 2);
        // An update with a stale resourceVersion is a conflict.
        let mut stale = pod.clone();
        stale["spec"]["x"] = json!(9);
        assert_eq!(a.update(&key, stale).expect_err("stale").reason, "Conflict");
    }

    #[test]
    fn invalid_names_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(dir.path());
        assert_eq!(
            s.create("pods", "default", json!({"metadata": {"name": "Bad_Name"}}))
                .expect_err("bad")
                .code,
            422
        );
    }
}
