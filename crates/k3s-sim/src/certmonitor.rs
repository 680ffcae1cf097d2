//! K3s's certificate monitor (k3s `pkg/certmonitor`): every node (server or agent) looks at its
//! services' certificates right after start and then every 30 minutes
//! (`K3S_SIM_CERT_CHECK`); when one is expired, not valid yet or within the renewal window
//! (120 days), it records a Warning Event `CertificateExpirationWarning` on its Node (in the
//! `default` namespace, source `k3s-cert-monitor`, the message naming each certificate); the
//! first look after start records a Normal `CertificateExpirationOK` when nothing needs
//! attention. The same event again is counted on the first one (count, lastTimestamp), as
//! client-go's event recorder aggregates.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::certcmd::{AGENT_SERVICES, SERVER_SERVICES, describe, service_files};
use crate::paths::DataDir;
use crate::store::{ObjectStore, ResourceKey};

/// The event recorder's component name.
pub const SOURCE: &str = "k3s-cert-monitor";
/// Reason of the warning.
pub const WARNING_REASON: &str = "CertificateExpirationWarning";
/// Reason of the all-clear after start.
pub const OK_REASON: &str = "CertificateExpirationOK";

/// Pure: what needs attention among the node's certificates at `now`, one line per
/// certificate (`service/file: certificate CN will expire within 120 days at T`).
pub fn problems(dd: &DataDir, server: bool, now: OffsetDateTime) -> Vec<String> {
    let services: Vec<&str> = if server {
        SERVER_SERVICES
            .iter()
            .chain(AGENT_SERVICES)
            .copied()
            .collect()
    } else {
        AGENT_SERVICES.to_vec()
    };
    let days = crate::certs::RENEW_WINDOW.as_secs() / 86_400;
    let mut out = Vec::new();
    for service in services {
        for base in service_files(service, dd) {
            let crt = base.with_extension("crt");
            let Ok(pem) = fs_err::read_to_string(&crt) else {
                continue;
            };
            let file = crt
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let Some(info) = describe(&file, &pem, now) else {
                continue;
            };
            let what = match info.status.as_str() {
                "EXPIRED" => format!("expired at {}", info.expiry_time),
                "NOT YET VALID" => format!("is not valid before {}", info.expiry_time),
                "WARNING" => format!("will expire within {days} days at {}", info.expiry_time),
                _ => continue,
            };
            out.push(format!(
                "{service}/{file}: certificate CN={} {what}",
                info.subject
            ));
        }
    }
    out
}

/// Pure: the event of one look (`None`: nothing to record), as `(type, reason, message)`.
pub fn event_of(
    problems: &[String],
    first_look: bool,
) -> Option<(&'static str, &'static str, String)> {
    if !problems.is_empty() {
        Some((
            "Warning",
            WARNING_REASON,
            format!(
                "Node certificates require attention - restart k3s on this node to trigger \
                 automatic rotation: {}",
                problems.join("\n")
            ),
        ))
    } else if first_look {
        Some((
            "Normal",
            OK_REASON,
            "Node and Certificate Authority certificates managed by k3s are OK".to_string(),
        ))
    } else {
        None
    }
}

/// Pure: the Event object for `node`; `earlier` is the same event recorded before by this
/// process (then its count goes up and its name stays).
pub fn event_object(
    node: &str,
    (kind, reason, message): (&str, &str, &str),
    earlier: Option<&Value>,
    now: &str,
) -> Value {
    if let Some(old) = earlier {
        let mut ev = old.clone();
        ev["count"] = json!(old["count"].as_u64().unwrap_or(1) + 1);
        ev["lastTimestamp"] = json!(now);
        return ev;
    }
    let stamp = OffsetDateTime::now_utc().unix_timestamp_nanos();
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{node}.{stamp:x}"), "namespace": "default"},
        "involvedObject": {"kind": "Node", "name": node, "uid": node},
        "reason": reason,
        "message": message,
        "type": kind,
        "source": {"component": SOURCE, "host": node},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    })
}

/// Where a node records its events.
pub enum Sink {
    /// A server writes into its own store.
    Local(Arc<ObjectStore>),
    /// An agent goes through the API.
    Remote(Arc<crate::http::balancer::Balancer>),
}

impl Sink {
    async fn record(&self, event: &Value, new: bool) -> Result<(), String> {
        let name = event["metadata"]["name"].as_str().unwrap_or_default();
        match self {
            Self::Local(store) => {
                let key = ResourceKey::new("events", "default", name);
                if new {
                    store.create("events", "default", event.clone()).map(|_| ())
                } else {
                    store
                        .modify(&key, |o| {
                            o["count"] = event["count"].clone();
                            o["lastTimestamp"] = event["lastTimestamp"].clone();
                            Ok(())
                        })
                        .map(|_| ())
                }
                .map_err(|e| e.message)
            }
            Self::Remote(api) => {
                let coll = "/api/v1/namespaces/default/events";
                let (method, path, body) = if new {
                    ("POST", coll.to_string(), event.clone())
                } else {
                    (
                        "PATCH",
                        format!("{coll}/{name}"),
                        json!({"count": event["count"], "lastTimestamp": event["lastTimestamp"]}),
                    )
                };
                let kind = if new {
                    "application/json"
                } else {
                    "application/merge-patch+json"
                };
                let reply = api
                    .request(
                        method,
                        &path,
                        &[],
                        Some((kind, body.to_string().into_bytes())),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                if reply.status / 100 == 2 {
                    Ok(())
                } else {
                    Err(format!("{} {}", reply.status, reply.text().trim()))
                }
            }
        }
    }
}

/// Looks at the node's certificates now and then every `K3S_SIM_CERT_CHECK`, recording events.
pub async fn run(sink: Sink, dd: DataDir, node: String, server: bool) {
    let mut recorded: BTreeMap<(String, String), Value> = BTreeMap::new();
    let mut first_look = true;
    loop {
        let found = problems(&dd, server, OffsetDateTime::now_utc());
        if let Some((kind, reason, message)) = event_of(&found, first_look) {
            let key = (reason.to_string(), message.clone());
            let earlier = recorded.get(&key);
            let now = crate::clock::now_rfc3339();
            let ev = event_object(&node, (kind, reason, &message), earlier, &now);
            match sink.record(&ev, earlier.is_none()).await {
                Ok(()) => {
                    recorded.insert(key, ev);
                }
                Err(e) => crate::log::error(format!("{SOURCE}: recording {reason}: {e}")),
            }
        }
        first_look = false;
        tokio::time::sleep(crate::knobs::cert_check()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_names_each_certificate_and_ok_only_after_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dd = DataDir::new(&dir.path().to_string_lossy());
        let tls = dd.tls();
        fs_err::create_dir_all(&tls).expect("mkdir");
        let ca = crate::certs::load_or_create_ca(&tls, "client-ca", "k3s-client-ca").expect("ca");
        let leaf = crate::certs::issue(
            &ca,
            &crate::certs::LeafKind::Client {
                cn: "system:admin".into(),
                org: Some("system:masters".into()),
            },
        )
        .expect("leaf");
        fs_err::write(tls.join("client-admin.crt"), &leaf.cert_pem).expect("write");
        // A year of validity is fine now, within the window 300 days later, expired after.
        let now = OffsetDateTime::now_utc();
        assert_eq!(problems(&dd, true, now), Vec::<String>::new());
        let later = problems(&dd, true, now + time::Duration::days(300));
        assert_eq!(later.len(), 1, "{later:?}");
        assert!(
            later[0].starts_with("admin/client-admin.crt: certificate CN=system:admin will expire within 120 days at "),
            "{later:?}"
        );
        let gone = problems(&dd, true, now + time::Duration::days(400));
        assert!(gone[0].contains("expired at"), "{gone:?}");
        // An agent looks only at the agent's services.
        assert_eq!(
            problems(&dd, false, now + time::Duration::days(400)),
            Vec::<String>::new()
        );

        let (kind, reason, message) = event_of(&later, false).expect("warning");
        assert_eq!((kind, reason), ("Warning", WARNING_REASON));
        assert!(
            message.contains("restart k3s on this node") && message.contains("client-admin.crt")
        );
        assert_eq!(event_of(&[], true).map(|e| e.1), Some(OK_REASON));
        assert_eq!(event_of(&[], false), None);

        let first = event_object("n1", (kind, reason, &message), None, "t1");
        assert_eq!(first["involvedObject"]["kind"], "Node");
        assert_eq!(first["involvedObject"]["name"], "n1");
        assert_eq!(first["source"]["component"], SOURCE);
        assert_eq!(first["count"], 1);
        let again = event_object("n1", (kind, reason, &message), Some(&first), "t2");
        assert_eq!(again["metadata"]["name"], first["metadata"]["name"]);
        assert_eq!(
            (again["count"].clone(), again["lastTimestamp"].clone()),
            (json!(2), json!("t2"))
        );
    }
}
