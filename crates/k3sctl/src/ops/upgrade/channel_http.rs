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
