//! The agent's client load balancer (K3s `pkg/agent/loadbalancer`): the agent starts with the
//! `--server` URL, learns every server's address from the supervisor (`/v1-k3s/apiservers`),
//! keeps the list in `agent/etc/k3s-agent-load-balancer.json`, and when the server in use stops
//! answering it switches to the next one that does.

use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::json;

use super::client::{Client, ClientError, Reply, Trust};

/// Servers an agent can talk to, with the one in use.
pub struct Balancer {
    default_url: String,
    ca: String,
    cert: String,
    key: String,
    file: PathBuf,
    state: Mutex<State>,
}

struct State {
    urls: Vec<String>,
    current: usize,
}

/// The server URLs to try: the learned addresses (in order), then the `--server` URL.
pub fn candidates(default_url: &str, addresses: &[String]) -> Vec<String> {
    let mut out: Vec<String> = addresses.iter().map(|a| format!("https://{a}")).collect();
    if !out
        .iter()
        .any(|u| u.trim_end_matches('/') == default_url.trim_end_matches('/'))
    {
        out.push(default_url.to_string());
    }
    out
}

/// The `--server` URL first, then the servers saved in the load balancer file.
pub fn startup_urls(default_url: &str, file: &std::path::Path) -> Vec<String> {
    let mut urls = vec![default_url.to_string()];
    for u in candidates(default_url, &saved_addresses(file)) {
        if !urls.contains(&u) {
            urls.push(u);
        }
    }
    urls
}

fn saved_addresses(file: &std::path::Path) -> Vec<String> {
    fs_err::read(file)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| serde_json::from_value(v["ServerAddresses"].clone()).ok())
        .unwrap_or_default()
}

impl Balancer {
    /// A balancer starting with `default_url` (and the addresses saved in `file`, if any).
    pub fn new(
        default_url: &str,
        ca: String,
        cert: String,
        key: String,
        file: PathBuf,
    ) -> Result<Self, ClientError> {
        // Checks the URL and the TLS material once.
        Client::new(default_url, &Trust::Ca(ca.clone()), Some((&cert, &key)))?;
        let urls = startup_urls(default_url, &file);
        Ok(Self {
            default_url: default_url.to_string(),
            ca,
            cert,
            key,
            file,
            state: Mutex::new(State { urls, current: 0 }),
        })
    }

    fn snapshot(&self) -> (Vec<String>, usize) {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (st.urls.clone(), st.current)
    }

    /// Sends a request to the server in use; on a connection failure tries the others in turn
    /// and keeps the first that answers.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Reply, ClientError> {
        let (urls, current) = self.snapshot();
        let mut first_err = None;
        for step in 0..urls.len() {
            let i = (current + step) % urls.len();
            let client = Client::new(
                &urls[i],
                &Trust::Ca(self.ca.clone()),
                Some((&self.cert, &self.key)),
            )?;
            match client.request(method, path, headers, body.clone()).await {
                Ok(r) => {
                    if i != current {
                        crate::log::info(format!(
                            "Client load balancer: server {} is not answering, switched to {}",
                            urls[current], urls[i]
                        ));
                        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                        st.current = i;
                    }
                    return Ok(r);
                }
                Err(e) => {
                    if first_err.is_none() {
                        first_err = Some(e);
                    }
                }
            }
        }
        Err(first_err.unwrap_or_else(|| ClientError::Url(self.default_url.clone())))
    }

    /// Learns the servers' addresses from the supervisor and saves them.
    pub async fn refresh(&self) {
        let Ok(r) = self.request("GET", "/v1-k3s/apiservers", &[], None).await else {
            return;
        };
        if r.status != 200 {
            return;
        }
        let Ok(addresses) = serde_json::from_slice::<Vec<String>>(&r.body) else {
            return;
        };
        if addresses.is_empty() {
            return;
        }
        let urls = candidates(&self.default_url, &addresses);
        {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let in_use = st.urls.get(st.current).cloned();
            st.current = in_use
                .and_then(|u| urls.iter().position(|x| *x == u))
                .unwrap_or(0);
            st.urls = urls;
        }
        let doc = json!({"ServerURL": self.default_url, "ServerAddresses": addresses});
        let _ = crate::paths::write_atomic(&self.file, doc.to_string().as_bytes(), 0o600);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_tries_the_default_then_saved_servers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("lb.json");
        assert_eq!(
            startup_urls("https://a:6443", &f),
            vec!["https://a:6443".to_string()]
        );
        fs_err::write(
            &f,
            r#"{"ServerURL":"https://a:6443","ServerAddresses":["b:6443","a:6443"]}"#,
        )
        .expect("write");
        assert_eq!(
            startup_urls("https://a:6443", &f),
            vec!["https://a:6443".to_string(), "https://b:6443".into()]
        );
    }

    #[test]
    fn learned_addresses_come_first_then_the_default() {
        assert_eq!(
            candidates(
                "https://vip:6443",
                &["10.0.0.1:6443".into(), "10.0.0.2:6443".into()]
            ),
            vec![
                "https://10.0.0.1:6443".to_string(),
                "https://10.0.0.2:6443".into(),
                "https://vip:6443".into()
            ]
        );
        assert_eq!(
            candidates("https://10.0.0.1:6443", &["10.0.0.1:6443".into()]),
            vec!["https://10.0.0.1:6443".to_string()]
        );
    }
}
