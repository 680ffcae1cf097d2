//! Which version a K3s channel points at, asked from the channel server: first the redirect
//! form (`GET <channelUrl>/<name>` answers a redirect whose last path element is the release
//! tag, what the official installer follows; read without following it), then a single-channel
//! JSON answer at that address, then the listing `GET <channelUrl>`, parsed leniently. Shared by
//! `apply` (the spec's `k3s.channel`) and `upgrade` (`--channel`).

use super::download::{get_text, redirect_target};
use crate::k3s::channel::{
    channel_redirect_url, find_channel, parse_channels, version_from_redirect,
};
use crate::k3s::version::K3sVersion;

/// Pure: the version in a single-channel JSON answer (`{"latest": "v1.34.1+k3s1", ...}`).
fn version_in_channel_json(body: &str) -> Option<K3sVersion> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    value.get("latest")?.as_str()?.parse().ok()
}

/// The version channel `name` points at on the channel server at `channel_url`.
pub async fn channel_version(channel_url: &str, name: &str) -> Result<K3sVersion, String> {
    let direct = channel_redirect_url(channel_url, name);
    let mut notes = Vec::new();
    match redirect_target(&direct).await {
        Ok(Some(location)) => return version_from_redirect(&location).map_err(|e| e.to_string()),
        // Not a redirect: a server may answer the single channel as JSON instead.
        Ok(None) => match get_text(&direct).await {
            Ok(body) => match version_in_channel_json(&body) {
                Some(version) => return Ok(version),
                None => notes.push(format!("GET {direct}: no version in the answer")),
            },
            Err(e) => notes.push(e.to_string()),
        },
        Err(e) => notes.push(e.to_string()),
    }
    let listing = get_text(channel_url).await.map_err(|e| {
        format!(
            "the channel server did not say what channel {name} points at ({}; {e})",
            notes.join("; ")
        )
    })?;
    let channels = parse_channels(&listing).map_err(|e| format!("GET {channel_url}: {e}"))?;
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
