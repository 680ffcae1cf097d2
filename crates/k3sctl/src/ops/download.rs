//! HTTP(S) GET for release assets and the checksum listing: redirects followed (GitHub sends
//! assets through one), bodies streamed to a file while hashed, or read into memory.

use std::path::Path;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// At most this many redirects are followed.
const MAX_REDIRECTS: usize = 5;
/// Time limit to receive response headers.
const HEADERS_TIMEOUT: Duration = Duration::from_secs(30);

/// A download failed.
#[derive(Debug, thiserror::Error)]
#[error("GET {url}: {detail}")]
pub struct DownloadError {
    /// The URL.
    pub url: String,
    /// What went wrong.
    pub detail: String,
}

type HttpsClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Empty<Bytes>,
>;

fn client(url: &str) -> Result<HttpsClient, DownloadError> {
    // Err: a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| DownloadError {
            url: url.into(),
            detail: format!("no TLS root certificates: {e}"),
        })?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

fn resolve_location(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    if location.starts_with('/') {
        format!("{}{location}", &base[..host_end])
    } else {
        let dir_end = base
            .rfind('/')
            .filter(|i| *i >= host_end)
            .unwrap_or(host_end);
        format!("{}/{location}", &base[..dir_end])
    }
}

/// Sends one GET to `url`, without following a redirect.
async fn send_once(
    client: &HttpsClient,
    url: &str,
) -> Result<hyper::Response<hyper::body::Incoming>, DownloadError> {
    let err = |detail: String| DownloadError {
        url: url.to_string(),
        detail,
    };
    let uri: hyper::Uri = url.parse().map_err(|e| err(format!("not a URL: {e}")))?;
    let request = hyper::Request::get(uri)
        .header("user-agent", concat!("k3sctl/", env!("CARGO_PKG_VERSION")))
        .body(Empty::new())
        .map_err(|e| err(e.to_string()))?;
    tokio::time::timeout(HEADERS_TIMEOUT, client.request(request))
        .await
        .map_err(|_| err(format!("no answer within {}s", HEADERS_TIMEOUT.as_secs())))?
        .map_err(|e| err(format!("{e:?}")))
}

fn location_of(response: &hyper::Response<hyper::body::Incoming>) -> Option<String> {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Sends GET, following redirects; returns the final response with a 2xx status.
async fn get(url: &str) -> Result<hyper::Response<hyper::body::Incoming>, DownloadError> {
    let client = client(url)?;
    let mut current = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let response = send_once(&client, &current).await?;
        let status = response.status();
        let err = |detail: String| DownloadError {
            url: current.clone(),
            detail,
        };
        if status.is_redirection() {
            let location = location_of(&response)
                .ok_or_else(|| err(format!("{status} without a Location header")))?;
            current = resolve_location(&current, &location);
            continue;
        }
        if !status.is_success() {
            return Err(err(format!("the server answered {status}")));
        }
        return Ok(response);
    }
    Err(DownloadError {
        url: url.into(),
        detail: format!("more than {MAX_REDIRECTS} redirects"),
    })
}

/// Where `url` redirects to, without following it: `None` when it answers anything but a
/// redirect with a Location (the K3s channel server's `<channels>/<name>` form points at the
/// release tag this way).
pub async fn redirect_target(url: &str) -> Result<Option<String>, DownloadError> {
    let client = client(url)?;
    let response = send_once(&client, url).await?;
    Ok(if response.status().is_redirection() {
        location_of(&response)
    } else {
        None
    })
}

/// GETs `url` into memory (small files: checksum listings).
pub async fn get_text(url: &str) -> Result<String, DownloadError> {
    let response = get(url).await?;
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| DownloadError {
            url: url.into(),
            detail: e.to_string(),
        })?
        .to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// GETs `url` into `path` (created or truncated), returning the sha256 of the bytes.
pub async fn get_to_file(url: &str, path: &Path) -> Result<String, DownloadError> {
    let err = |detail: String| DownloadError {
        url: url.into(),
        detail,
    };
    let response = get(url).await?;
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| err(format!("{}: {e}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| err(e.to_string()))?;
        if let Some(chunk) = frame.data_ref() {
            hasher.update(chunk);
            file.write_all(chunk)
                .await
                .map_err(|e| err(format!("{}: {e}", path.display())))?;
        }
    }
    file.flush()
        .await
        .map_err(|e| err(format!("{}: {e}", path.display())))?;
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_locations() {
        assert_eq!(
            resolve_location("https://a.example/x/y", "https://b.example/z"),
            "https://b.example/z"
        );
        assert_eq!(resolve_location("http://a:1/x/y", "/z/w"), "http://a:1/z/w");
        assert_eq!(resolve_location("http://a:1/x/y", "w"), "http://a:1/x/w");
    }
}

/// A tiny HTTP/1.1 site for tests: exact paths → (status and extra header lines, body).
#[cfg(test)]
pub(crate) mod test_site {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Serves `routes` on 127.0.0.1 and returns `http://127.0.0.1:PORT`.
    pub async fn serve(routes: BTreeMap<String, (String, Vec<u8>)>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let routes = Arc::new(routes);
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let routes = Arc::clone(&routes);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    let request = String::from_utf8_lossy(&buf[..n]).to_string();
                    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let (head, body) = routes
                        .get(&path)
                        .cloned()
                        .unwrap_or_else(|| ("404 Not Found".into(), vec![]));
                    let response = format!(
                        "HTTP/1.1 {head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.write_all(&body).await;
                });
            }
        });
        format!("http://{addr}")
    }
}
