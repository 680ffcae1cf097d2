//! An etcd v3 client over etcd's JSON gRPC gateway (`/v3/kv/range`, `/v3/kv/txn`,
//! `/v3/watch`, `/v3/cluster/member/*`, `/v3/maintenance/status`), mutual TLS with the etcd
//! client certificate. Blocking: the object store calls it under its lock, as it did the file
//! store; one kept-alive connection per client.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use super::wire::{self, Conn, WireError};
use crate::store::{Expect, Outcome, Record, Write};

/// Errors talking to etcd.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// Transport.
    #[error("etcd {endpoint}: {source}")]
    Wire {
        /// Endpoint.
        endpoint: String,
        /// Cause.
        source: WireError,
    },
    /// etcd answered with an error (gRPC status through the gateway).
    #[error("etcdserver: {0}")]
    Server(String),
    /// TLS configuration.
    #[error("etcd client TLS: {0}")]
    Tls(String),
    /// Unexpected answer.
    #[error("etcd: unexpected response: {0}")]
    Decode(String),
}

/// One cluster member, as etcd lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Member ID.
    pub id: u64,
    /// Member name (empty until a learner has started).
    pub name: String,
    /// Peer URLs.
    pub peer_urls: Vec<String>,
    /// Client URLs (empty until started).
    pub client_urls: Vec<String>,
    /// Whether the member is a learner (non-voting).
    pub is_learner: bool,
}

impl Member {
    /// The member as Go's encoding/json renders etcdserverpb.Member (K3s `/db/info`).
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("ID".into(), json!(self.id));
        if !self.name.is_empty() {
            m.insert("name".into(), json!(self.name));
        }
        if !self.peer_urls.is_empty() {
            m.insert("peerURLs".into(), json!(self.peer_urls));
        }
        if !self.client_urls.is_empty() {
            m.insert("clientURLs".into(), json!(self.client_urls));
        }
        if self.is_learner {
            m.insert("isLearner".into(), json!(true));
        }
        Value::Object(m)
    }

    /// Parses a member from the gateway's or K3s's JSON (IDs as strings or numbers).
    pub fn from_json(v: &Value) -> Option<Member> {
        Some(Member {
            id: num(&v["ID"])?,
            name: v["name"].as_str().unwrap_or("").to_string(),
            peer_urls: strings(&v["peerURLs"]),
            client_urls: strings(&v["clientURLs"]),
            is_learner: v["isLearner"].as_bool().unwrap_or(false),
        })
    }
}

/// What `/v3/maintenance/status` says about the member answering.
#[derive(Debug, Clone)]
pub struct Status {
    /// The answering member's ID.
    pub member_id: u64,
    /// The current leader's ID.
    pub leader: u64,
    /// Whether the answering member is a learner.
    pub is_learner: bool,
    /// etcd version.
    pub version: String,
}

fn num(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(v: &Value) -> Vec<u8> {
    v.as_str()
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .unwrap_or_default()
}

/// A key/value as the gateway returns it.
fn record(kv: &Value) -> Record {
    Record {
        key: String::from_utf8_lossy(&unb64(&kv["key"])).to_string(),
        value: unb64(&kv["value"]),
        revision: num(&kv["mod_revision"]).unwrap_or(0),
    }
}

/// One change from a watch.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    /// The change's revision.
    pub revision: u64,
    /// Key.
    pub key: String,
    /// New value (None for a deletion).
    pub value: Option<Vec<u8>>,
    /// Whether the write created the key.
    pub created: bool,
    /// The previous value (deletions).
    pub prev: Option<Vec<u8>>,
}

/// Builds a rustls client configuration from the etcd CA and a client certificate.
pub fn tls_config(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<Arc<rustls::ClientConfig>, EtcdError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = crate::tls::roots(ca_pem).map_err(|e| EtcdError::Tls(e.to_string()))?;
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| EtcdError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(
            crate::tls::certs_from_pem(cert_pem).map_err(|e| EtcdError::Tls(e.to_string()))?,
            crate::tls::key_from_pem(key_pem).map_err(|e| EtcdError::Tls(e.to_string()))?,
        )
        .map_err(|e| EtcdError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Splits `https://host:port` (IPv6 in brackets).
pub fn split_url(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("https://")?.trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port.parse().ok()?))
}

/// A client for one or more etcd endpoints (tried in order).
pub struct EtcdClient {
    endpoints: Vec<(String, u16)>,
    tls: Arc<rustls::ClientConfig>,
    conn: Mutex<Option<(usize, Conn)>>,
}

impl std::fmt::Debug for EtcdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdClient")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl EtcdClient {
    /// A client for these `https://host:port` endpoints.
    pub fn new(urls: &[String], tls: Arc<rustls::ClientConfig>) -> Result<Self, EtcdError> {
        let endpoints = urls
            .iter()
            .map(|u| split_url(u).ok_or_else(|| EtcdError::Decode(format!("endpoint {u:?}"))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            endpoints,
            tls,
            conn: Mutex::new(None),
        })
    }

    fn endpoint_name(&self, i: usize) -> String {
        let (h, p) = &self.endpoints[i];
        format!("https://{h}:{p}")
    }

    fn exchange(
        conn: &mut Conn,
        host: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>, bool), WireError> {
        wire::send_post(conn, host, path, body)?;
        let head = wire::read_head(conn)?;
        let bytes = wire::read_body(conn, &head)?;
        Ok((head.status, bytes, head.close))
    }

    /// POSTs a JSON request to the gateway and returns the JSON answer.
    pub fn call(&self, path: &str, body: &Value) -> Result<Value, EtcdError> {
        let body = body.to_string().into_bytes();
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut last: Option<EtcdError> = None;
        // A kept-alive connection may have been closed by the server: one retry on a fresh one,
        // then the other endpoints.
        let mut attempts: Vec<usize> = Vec::new();
        if let Some((i, _)) = guard.as_ref() {
            attempts.push(*i);
        }
        attempts.extend(0..self.endpoints.len());
        for i in attempts {
            let (host, port) = self.endpoints[i].clone();
            let mut conn = match guard.take() {
                Some((j, c)) if j == i => c,
                _ => match wire::connect(&self.tls, &host, port, Some(Duration::from_secs(15))) {
                    Ok(c) => c,
                    Err(source) => {
                        last = Some(EtcdError::Wire {
                            endpoint: self.endpoint_name(i),
                            source,
                        });
                        continue;
                    }
                },
            };
            match Self::exchange(&mut conn, &host, path, &body) {
                Ok((status, bytes, close)) => {
                    if !close {
                        *guard = Some((i, conn));
                    }
                    let v: Value = serde_json::from_slice(&bytes).map_err(|_| {
                        EtcdError::Decode(String::from_utf8_lossy(&bytes).to_string())
                    })?;
                    if status != 200 {
                        let msg = v["message"]
                            .as_str()
                            .or(v["error"].as_str())
                            .unwrap_or("unknown error")
                            .trim_start_matches("etcdserver: ")
                            .to_string();
                        return Err(EtcdError::Server(msg));
                    }
                    return Ok(v);
                }
                Err(source) => {
                    last = Some(EtcdError::Wire {
                        endpoint: self.endpoint_name(i),
                        source,
                    });
                }
            }
        }
        Err(last.unwrap_or_else(|| EtcdError::Decode("no endpoints".into())))
    }

    /// Every key (`\0` .. end), with the store revision.
    pub fn range_all(&self) -> Result<(Vec<Record>, u64), EtcdError> {
        let v = self.call(
            "/v3/kv/range",
            &json!({"key": b64(b"\0"), "range_end": b64(b"\0")}),
        )?;
        let rev = num(&v["header"]["revision"]).unwrap_or(0);
        let kvs = v["kvs"].as_array().cloned().unwrap_or_default();
        let mut out: Vec<Record> = kvs.iter().map(record).collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok((out, rev))
    }

    /// Keys under a prefix.
    pub fn range_prefix(&self, prefix: &str) -> Result<Vec<Record>, EtcdError> {
        let mut end = prefix.as_bytes().to_vec();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        let v = self.call(
            "/v3/kv/range",
            &json!({"key": b64(prefix.as_bytes()), "range_end": b64(&end)}),
        )?;
        Ok(v["kvs"]
            .as_array()
            .map(|a| a.iter().map(record).collect())
            .unwrap_or_default())
    }

    /// One key.
    pub fn get(&self, key: &str) -> Result<Option<Record>, EtcdError> {
        let v = self.call("/v3/kv/range", &json!({"key": b64(key.as_bytes())}))?;
        Ok(v["kvs"].as_array().and_then(|a| a.first()).map(record))
    }

    /// A conditional put or delete in one transaction; on a failed precondition returns the
    /// key's current record.
    pub fn write(&self, key: &str, op: Write<'_>, expect: Expect) -> Result<Outcome, EtcdError> {
        let k = b64(key.as_bytes());
        let compare = match expect {
            Expect::Any => vec![],
            Expect::Absent => vec![json!({
                "key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0"
            })],
            Expect::Revision(r) => vec![json!({
                "key": k, "target": "MOD", "result": "EQUAL", "mod_revision": r.to_string()
            })],
        };
        let success = match op {
            Write::Put(value) => json!({"request_put": {"key": k, "value": b64(value)}}),
            Write::Delete => json!({"request_delete_range": {"key": k}}),
        };
        let v = self.call(
            "/v3/kv/txn",
            &json!({
                "compare": compare,
                "success": [success],
                "failure": [{"request_range": {"key": k}}],
            }),
        )?;
        if v["succeeded"].as_bool().unwrap_or(false) {
            return Ok(Outcome::Committed(num(&v["header"]["revision"])));
        }
        let current = v["responses"][0]["response_range"]["kvs"]
            .as_array()
            .and_then(|a| a.first())
            .map(record);
        Ok(Outcome::Conflict(current))
    }

    /// The member list.
    pub fn member_list(&self) -> Result<Vec<Member>, EtcdError> {
        let v = self.call("/v3/cluster/member/list", &json!({}))?;
        Ok(v["members"]
            .as_array()
            .map(|a| a.iter().filter_map(Member::from_json).collect())
            .unwrap_or_default())
    }

    /// Adds a learner with this peer URL (etcd `MemberAddAsLearner`).
    pub fn member_add_learner(&self, peer_url: &str) -> Result<Member, EtcdError> {
        let v = self.call(
            "/v3/cluster/member/add",
            &json!({"peerURLs": [peer_url], "isLearner": true}),
        )?;
        Member::from_json(&v["member"]).ok_or_else(|| EtcdError::Decode(format!("member add: {v}")))
    }

    /// Promotes a learner to a voting member.
    pub fn member_promote(&self, id: u64) -> Result<(), EtcdError> {
        self.call("/v3/cluster/member/promote", &json!({"ID": id.to_string()}))
            .map(|_| ())
    }

    /// Removes a member.
    pub fn member_remove(&self, id: u64) -> Result<(), EtcdError> {
        self.call("/v3/cluster/member/remove", &json!({"ID": id.to_string()}))
            .map(|_| ())
    }

    /// The status of the first reachable endpoint.
    pub fn status(&self) -> Result<Status, EtcdError> {
        let v = self.call("/v3/maintenance/status", &json!({}))?;
        Ok(Status {
            member_id: num(&v["header"]["member_id"]).unwrap_or(0),
            leader: num(&v["leader"]).unwrap_or(0),
            is_learner: v["isLearner"].as_bool().unwrap_or(false),
            version: v["version"].as_str().unwrap_or("").to_string(),
        })
    }

    /// The first endpoint's error `source`.
    fn wire_err(&self, source: WireError) -> EtcdError {
        EtcdError::Wire {
            endpoint: self.endpoint_name(0),
            source,
        }
    }

    /// Posts `body` to `path` on the first endpoint (`timeout`: the connection's) and returns
    /// the connection once etcd answered 200, its streamed body to be read; etcd's message
    /// otherwise.
    fn open_stream(
        &self,
        path: &str,
        body: &[u8],
        timeout: Option<Duration>,
    ) -> Result<(Conn, wire::Head), EtcdError> {
        let (host, port) = self.endpoints[0].clone();
        let mut conn =
            wire::connect(&self.tls, &host, port, timeout).map_err(|e| self.wire_err(e))?;
        wire::send_post(&mut conn, &host, path, body).map_err(|e| self.wire_err(e))?;
        let head = wire::read_head(&mut conn).map_err(|e| self.wire_err(e))?;
        if head.status != 200 {
            let text = wire::read_body(&mut conn, &head).unwrap_or_default();
            return Err(EtcdError::Server(
                String::from_utf8_lossy(&text).to_string(),
            ));
        }
        Ok((conn, head))
    }

    /// Streams a snapshot of the local member's database (gateway `/v3/maintenance/snapshot`:
    /// newline-delimited messages with base64 `blob`s, the last one carrying etcd's SHA-256 of
    /// the data, so the bytes written are what `etcdctl snapshot save` writes) into `sink`;
    /// returns the number of bytes written.
    pub fn snapshot(&self, sink: &mut dyn std::io::Write) -> Result<u64, EtcdError> {
        let timeout = Some(Duration::from_secs(60));
        let (mut conn, head) = self.open_stream("/v3/maintenance/snapshot", b"{}", timeout)?;
        let mut buf = Vec::new();
        let mut written = 0u64;
        let mut done = false;
        while !done {
            let chunk = wire::read_piece(&mut conn, &head, 65536).map_err(|e| self.wire_err(e))?;
            if chunk.is_empty() {
                // End of the stream: a last message without a newline is still complete.
                done = true;
                buf.push(b'\n');
            } else {
                buf.extend_from_slice(&chunk);
            }
            for line in wire::take_lines(&mut buf) {
                let v: Value = serde_json::from_slice(&line)
                    .map_err(|_| EtcdError::Decode(String::from_utf8_lossy(&line).to_string()))?;
                if let Some(err) = v.get("error") {
                    let msg = err["message"].as_str().map(str::to_string);
                    return Err(EtcdError::Server(msg.unwrap_or_else(|| err.to_string())));
                }
                let blob = unb64(&v["result"]["blob"]);
                sink.write_all(&blob)
                    .map_err(|e| EtcdError::Decode(format!("writing snapshot: {e}")))?;
                written += blob.len() as u64;
            }
        }
        Ok(written)
    }

    /// Watches every key from `start_revision`, calling `on_event` for each change in order,
    /// until the connection ends (returns the error) or `on_event` returns false.
    pub fn watch(
        &self,
        start_revision: u64,
        mut on_event: impl FnMut(WatchEvent) -> bool,
    ) -> Result<(), EtcdError> {
        let body = json!({"create_request": {
            "key": b64(b"\0"), "range_end": b64(b"\0"),
            "start_revision": start_revision.to_string(), "prev_kv": true,
        }})
        .to_string();
        let (mut conn, head) = self.open_stream("/v3/watch", body.as_bytes(), None)?;
        let mut buf = Vec::new();
        loop {
            let chunk = wire::read_piece(&mut conn, &head, 16384).map_err(|e| self.wire_err(e))?;
            if chunk.is_empty() {
                return Err(self.wire_err(WireError::Io("watch stream ended".into())));
            }
            buf.extend_from_slice(&chunk);
            for line in wire::take_lines(&mut buf) {
                let v: Value = serde_json::from_slice(&line)
                    .map_err(|_| EtcdError::Decode(String::from_utf8_lossy(&line).to_string()))?;
                if let Some(err) = v.get("error") {
                    return Err(EtcdError::Server(err.to_string()));
                }
                let result = &v["result"];
                if result["canceled"].as_bool().unwrap_or(false) {
                    return Err(EtcdError::Server(format!(
                        "watch canceled: {}",
                        result["cancel_reason"].as_str().unwrap_or("compacted")
                    )));
                }
                for ev in result["events"].as_array().into_iter().flatten() {
                    let kv = &ev["kv"];
                    let rec = record(kv);
                    let deleted = ev["type"].as_str() == Some("DELETE");
                    let event = WatchEvent {
                        revision: rec.revision,
                        key: rec.key,
                        created: num(&kv["version"]) == Some(1),
                        value: (!deleted).then_some(rec.value),
                        prev: ev.get("prev_kv").map(|p| unb64(&p["value"])),
                    };
                    if !on_event(event) {
                        return Ok(());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_round_trip_through_k3s_json() {
        let gw = json!({"ID": "1234567890123", "name": "s1-0a1b2c3d",
            "peerURLs": ["https://10.0.0.1:2380"], "clientURLs": ["https://10.0.0.1:2379"]});
        let m = Member::from_json(&gw).expect("member");
        assert_eq!(m.id, 1234567890123);
        assert!(!m.is_learner);
        let k3s = m.to_json();
        assert_eq!(k3s["ID"], json!(1234567890123u64));
        assert_eq!(Member::from_json(&k3s), Some(m));
        let learner = json!({"ID": "7", "peerURLs": ["https://10.0.0.2:2380"], "isLearner": true});
        let l = Member::from_json(&learner).expect("learner");
        assert!(l.is_learner && l.name.is_empty() && l.client_urls.is_empty());
        assert_eq!(
            l.to_json(),
            json!({"ID": 7, "peerURLs": ["https://10.0.0.2:2380"], "isLearner": true})
        );
    }

    #[test]
    fn urls_split() {
        assert_eq!(
            split_url("https://127.0.0.1:2379"),
            Some(("127.0.0.1".into(), 2379))
        );
        assert_eq!(split_url("https://[::1]:2379/"), Some(("::1".into(), 2379)));
        assert_eq!(split_url("http://x:1"), None);
    }

    #[test]
    fn records_decode_base64() {
        let kv =
            json!({"key": b64(b"/registry/pods/a/b"), "value": b64(b"{}"), "mod_revision": "42"});
        assert_eq!(
            record(&kv),
            Record {
                key: "/registry/pods/a/b".into(),
                value: b"{}".to_vec(),
                revision: 42
            }
        );
    }
}
