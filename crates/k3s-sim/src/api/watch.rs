//! Watches: a stream of `{"type": ..., "object": ...}` JSON lines. From resourceVersion "" or "0"
//! the current objects come first as ADDED; from a later version the recent history is replayed
//! (410 Gone when it is too old), then live changes follow until `timeoutSeconds`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Response;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::crud::{selectors, typed};
use super::request::Target;
use super::table::table;
use crate::http::Body;
use crate::http::body::{ChannelBody, stream_response};
use crate::store::{ApiError, Event, ObjectStore};

struct Filter {
    t: Target,
    name: Option<String>,
    ls: super::selectors::LabelSelector,
    fs: super::selectors::FieldSelector,
    as_table: bool,
}

impl Filter {
    /// Name and selectors (the resource and namespace were already chosen by the list).
    fn matches_object(&self, obj: &Value) -> bool {
        self.name
            .as_deref()
            .is_none_or(|n| obj["metadata"]["name"].as_str() == Some(n))
            && self.ls.matches(&obj["metadata"]["labels"])
            && self.fs.matches(obj)
    }

    fn accepts(&self, ev: &Event) -> bool {
        ev.key.resource == self.t.rt.storage()
            && self
                .t
                .namespace
                .as_ref()
                .is_none_or(|ns| &ev.key.namespace == ns)
            && self.matches_object(&ev.object)
    }

    fn line(&self, ty: &str, obj: Value) -> Bytes {
        let obj = typed(&self.t, obj);
        let object = if self.as_table {
            let rv = obj["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or("")
                .to_string();
            table(self.t.rt.kind, &[obj], &rv)
        } else {
            obj
        };
        Bytes::from(format!("{}\n", json!({"type": ty, "object": object})))
    }
}

/// Starts a watch and returns the streaming response.
pub fn start(
    store: Arc<ObjectStore>,
    t: &Target,
    q: &HashMap<String, String>,
    as_table: bool,
) -> Result<Response<Body>, ApiError> {
    let (ls, fs) = selectors(q)?;
    let filter = Filter {
        t: t.clone(),
        name: t.name.clone(),
        ls,
        fs,
        as_table,
    };
    let since: Option<u64> = q
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0")
        .map(|v| v.parse().unwrap_or(0));
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1800)
        .min(3600);
    let (tx, body) = ChannelBody::channel(64);
    let (mut rx, history) = store.subscribe();
    let mut initial: Vec<Bytes> = Vec::new();
    let mut last_rv;
    match since {
        None => {
            let (items, rv) = store.list(&t.rt.storage(), t.namespace.as_deref());
            last_rv = rv;
            for o in items.into_iter().filter(|o| filter.matches_object(o)) {
                initial.push(filter.line("ADDED", o));
            }
        }
        Some(since) => {
            last_rv = since;
            let oldest = history
                .first()
                .map(|e| e.rv)
                .unwrap_or(store.current_rv() + 1);
            if since + 1 < oldest && since < store.current_rv() {
                let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": format!("too old resource version: {since} ({})", oldest.saturating_sub(1)), "reason": "Expired", "code": 410});
                initial.push(Bytes::from(format!(
                    "{}\n",
                    json!({"type": "ERROR", "object": status})
                )));
                last_rv = u64::MAX;
            } else {
                for ev in history.iter().filter(|e| e.rv > since && filter.accepts(e)) {
                    initial.push(filter.line(ev.kind.as_str(), ev.object.clone()));
                    last_rv = ev.rv;
                }
            }
        }
    }
    tokio::spawn(async move {
        for line in initial {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        if last_rv == u64::MAX {
            return;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        loop {
            let ev = tokio::select! {
                ev = rx.recv() => ev,
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tx.closed() => return,
            };
            match ev {
                Ok(ev) if ev.rv > last_rv && filter.accepts(&ev) => {
                    last_rv = ev.rv;
                    if tx
                        .send(filter.line(ev.kind.as_str(), ev.object))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(_) => {}
                // The client re-lists and re-watches, as after any closed watch.
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return,
            }
        }
    });
    Ok(stream_response(body))
}
