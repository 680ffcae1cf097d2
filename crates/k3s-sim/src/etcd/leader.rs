//! Leader election for the controllers, as K3s does with client-go: a Lease `kube-system/k3s`
//! whose holder (the node name) renews it every 2 s; another server takes it over once it has
//! seen no renewal for the lease duration (`K3S_SIM_LEADER_LEASE`, 15 s). Expiry is judged by
//! the local clock from when this server last saw the lease change, not by comparing clocks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::store::{ApiError, ObjectStore, ResourceKey};

/// The lease's namespace and name.
pub const LEASE: (&str, &str) = ("kube-system", "k3s");
const RESOURCE: &str = "leases.coordination.k8s.io";
const RENEW: Duration = Duration::from_secs(2);

/// What one election round decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// This server holds the lease.
    Leading,
    /// Another server holds it.
    Following,
}

/// Tracks the last lease version seen and when it was first seen.
#[derive(Debug, Default)]
pub struct Observer {
    seen: Option<(String, Instant)>,
}

fn holder(l: &Value) -> &str {
    l["spec"]["holderIdentity"].as_str().unwrap_or("")
}

fn lease_object(identity: &str, seconds: u64, transitions: i64) -> Value {
    let now = crate::clock::now_micro();
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": LEASE.1, "namespace": LEASE.0},
        "spec": {"holderIdentity": identity, "leaseDurationSeconds": seconds,
                 "acquireTime": now, "renewTime": now, "leaseTransitions": transitions},
    })
}

/// One election round at `now`.
pub fn round(
    store: &ObjectStore,
    identity: &str,
    duration: Duration,
    obs: &mut Observer,
    now: Instant,
) -> Round {
    let key = ResourceKey::new(RESOURCE, LEASE.0, LEASE.1);
    let Some(current) = store.get(&key) else {
        return match store.create(
            RESOURCE,
            LEASE.0,
            lease_object(identity, duration.as_secs(), 0),
        ) {
            Ok(_) => Round::Leading,
            Err(_) => Round::Following,
        };
    };
    let rv = current["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    if holder(&current) == identity {
        let renewed = store.modify(&key, |l| {
            if holder(l) != identity {
                return Err(ApiError::conflict(RESOURCE, LEASE.1));
            }
            l["spec"]["renewTime"] = json!(crate::clock::now_micro());
            Ok(())
        });
        return if renewed.is_ok() {
            Round::Leading
        } else {
            Round::Following
        };
    }
    let first_seen = match &obs.seen {
        Some((seen_rv, at)) if *seen_rv == rv => *at,
        _ => {
            obs.seen = Some((rv.clone(), now));
            now
        }
    };
    if now.duration_since(first_seen) < duration {
        return Round::Following;
    }
    let transitions = current["spec"]["leaseTransitions"].as_i64().unwrap_or(0) + 1;
    let taken = store.modify(&key, |l| {
        if l["metadata"]["resourceVersion"].as_str() != Some(rv.as_str()) {
            return Err(ApiError::conflict(RESOURCE, LEASE.1));
        }
        let fresh = lease_object(identity, duration.as_secs(), transitions);
        l["spec"] = fresh["spec"].clone();
        Ok(())
    });
    if taken.is_ok() {
        Round::Leading
    } else {
        Round::Following
    }
}

/// Runs the election on a thread of its own; the flag says whether this server leads.
pub fn spawn(store: Arc<ObjectStore>, identity: String) -> Arc<AtomicBool> {
    let leading = Arc::new(AtomicBool::new(false));
    let flag = leading.clone();
    std::thread::spawn(move || {
        let mut obs = Observer::default();
        let duration = crate::knobs::leader_lease();
        loop {
            let r = round(&store, &identity, duration, &mut obs, Instant::now());
            let now_leading = r == Round::Leading;
            if now_leading != flag.load(Ordering::SeqCst) {
                if now_leading {
                    crate::log::info(format!(
                        "successfully acquired lease {}/{}",
                        LEASE.0, LEASE.1
                    ));
                } else {
                    crate::log::info(format!("lost lease {}/{}", LEASE.0, LEASE.1));
                }
                flag.store(now_leading, Ordering::SeqCst);
            }
            std::thread::sleep(RENEW);
        }
    });
    leading
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FileDatastore;

    #[test]
    fn one_leader_and_takeover_after_expiry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ObjectStore::open(Box::new(FileDatastore::open(dir.path()).expect("ds")))
            .expect("store");
        let d = Duration::from_secs(15);
        let t0 = Instant::now();
        let (mut a, mut b) = (Observer::default(), Observer::default());
        assert_eq!(round(&store, "s1", d, &mut a, t0), Round::Leading);
        assert_eq!(round(&store, "s2", d, &mut b, t0), Round::Following);
        assert_eq!(
            round(&store, "s1", d, &mut a, t0 + Duration::from_secs(2)),
            Round::Leading
        );
        // s1 keeps renewing: s2 never takes over.
        assert_eq!(
            round(&store, "s2", d, &mut b, t0 + Duration::from_secs(16)),
            Round::Following
        );
        // s1 stops; 15 s after s2 last saw a change it takes over.
        assert_eq!(
            round(&store, "s2", d, &mut b, t0 + Duration::from_secs(30)),
            Round::Following
        );
        assert_eq!(
            round(&store, "s2", d, &mut b, t0 + Duration::from_secs(32)),
            Round::Leading
        );
        let lease = store
            .get(&ResourceKey::new(RESOURCE, LEASE.0, LEASE.1))
            .expect("lease");
        assert_eq!(lease["spec"]["holderIdentity"], "s2");
        assert_eq!(lease["spec"]["leaseTransitions"], 1);
        assert_eq!(
            round(&store, "s1", d, &mut a, t0 + Duration::from_secs(33)),
            Round::Following
        );
    }
}
