//! Asking the channel server which version a channel points at: `GET <url>/<name>` answers a
//! redirect whose last path element is the version (read without following it); when that does
//! not give a version, the listing `GET <url>` is parsed leniently.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::k3s::channel::{
    channel_redirect_url, find_channel, parse_channels, version_from_redirect,
};
use crate::k3s::version::K3sVersion;

/// Time limit of one request to the channel server.
const TIMEOUT: Duration = Duration::from_secs(30);

/// One answer: status, Location header, body.
struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

async fn get_once(url: &str) -> Result<Answer, String> {
    // Err: a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("GET {url}: no TLS root certificates: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("GET {url}: not a URL: {e}"))?;
    let request = hyper::Request::get(uri)
        .header("user-agent", concat!("k3sctl/", env!("CARGO_PKG_VERSION")))
        .header("accept", "application/json")
        .body(Empty::new())
        .map_err(|e| format!("GET {url}: {e}"))?;
    let response = tokio::time::timeout(TIMEOUT, client.request(request))
        .await
        .map_err(|_| format!("GET {url}: no answer within {}s", TIMEOUT.as_secs()))?
        .map_err(|e| format!("GET {url}: {e:?}"))?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = tokio::time::timeout(TIMEOUT, response.into_body().collect())
        .await
        .map_err(|_| format!("GET {url}: body not received within {}s", TIMEOUT.as_secs()))?
        .map_err(|e| format!("GET {url}: {e}"))?
        .to_bytes();
    Ok(Answer {
        status,
        location,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Pure: the version in a single-channel JSON answer (`{"latest": "v1.34.1+k3s1", ...}`).
fn version_in_channel_json(body: &str) -> Option<K3sVersion> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    value.get("latest")?.as_str()?.parse().ok()
}

/// The version channel `name` points at on the channel server at `channel_url`.
pub async fn channel_version(channel_url: &str, name: &str) -> Result<K3sVersion, String> {
    let direct = channel_redirect_url(channel_url, name);
    let mut notes = Vec::new();
    match get_once(&direct).await {
        Ok(Answer {
            status: 300..=399,
            location: Some(location),
            ..
        }) => return version_from_redirect(&location).map_err(|e| e.to_string()),
        Ok(Answer {
            status: 200..=299,
            body,
            ..
        }) if version_in_channel_json(&body).is_some() => {
            return version_in_channel_json(&body)
                .ok_or_else(|| format!("GET {direct}: no version in the answer"));
        }
        Ok(answer) => notes.push(format!("GET {direct} answered {}", answer.status)),
        Err(e) => notes.push(e),
    }
    let listing = get_once(channel_url).await?;
    if !(200..=299).contains(&listing.status) {
        notes.push(format!("GET {channel_url} answered {}", listing.status));
        return Err(format!(
            "the channel server did not say what channel {name} points at ({})",
            notes.join("; ")
        ));
    }
    let channels = parse_channels(&listing.body).map_err(|e| format!("GET {channel_url}: {e}"))?;
    find_channel(&channels, name).map_err(|e| format!("GET {channel_url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A channel server with update.k3s.io's shapes: `/v1-release/channels` lists, and
    /// `/v1-release/channels/<name>` redirects to the release tag, except for `v1.33`, which
    /// only the listing knows (as when the redirect form is unavailable).
    async fn channel_server() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (head, body) = match path.as_str() {
                    "/v1-release/channels" => (
                        "200 OK".to_string(),
                        r#"{"type":"collection","resourceType":"channels","data":[
                          {"id":"stable","name":"stable","latest":"v1.34.1+k3s1"},
                          {"id":"v1.33","name":"v1.33","latest":"v1.33.7+k3s1"}]}"#
                            .to_string(),
                    ),
                    "/v1-release/channels/stable" => (
                        "302 Found\r\nLocation: https://github.com/k3s-io/k3s/releases/tag/v1.34.2%2Bk3s1"
                            .to_string(),
                        String::new(),
                    ),
                    _ => ("404 Not Found".to_string(), "Not Found".to_string()),
                };
                let response = format!(
                    "HTTP/1.1 {head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        format!("http://{addr}/v1-release/channels")
    }

    #[tokio::test]
    async fn resolves_the_redirect_form_then_falls_back_to_the_listing() {
        let url = channel_server().await;
        // The redirect wins over the listing (they can disagree while a release is published).
        let stable = channel_version(&url, "stable").await.expect("redirect");
        assert_eq!(stable.to_string(), "v1.34.2+k3s1");
        let minor = channel_version(&url, "v1.33").await.expect("listing");
        assert_eq!(minor.to_string(), "v1.33.7+k3s1");
        let err = channel_version(&url, "testing").await.expect_err("unknown");
        assert!(err.contains("known channels: stable, v1.33"), "{err}");
    }

    #[test]
    fn single_channel_json_is_read_leniently() {
        assert_eq!(
            version_in_channel_json(r#"{"id":"stable","type":"channel","latest":"v1.34.1+k3s1"}"#)
                .map(|v| v.to_string())
                .as_deref(),
            Some("v1.34.1+k3s1")
        );
        assert_eq!(version_in_channel_json("<html>"), None);
        assert_eq!(version_in_channel_json(r#"{"latest":"soon"}"#), None);
    }
}
