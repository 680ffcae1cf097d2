//! A small HTTPS client (HTTP/1.1 over rustls) for the agent talking to the supervisor and the
//! API, and for tests. One connection per request; the agent makes a handful per minute.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;

use crate::tls::{TlsError, certs_from_pem, key_from_pem, roots};

/// Errors from a request.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Bad URL.
    #[error("invalid server URL {0:?}: expected https://host:port")]
    Url(String),
    /// TCP/TLS/HTTP failure, worded like Go's net/http errors.
    #[error("{op} \"{url}\": {message}")]
    Transport {
        /// The method as Go's url.Error names it (`Get`, `Patch`, ...).
        op: String,
        /// URL requested.
        url: String,
        /// What failed.
        message: String,
    },
    /// TLS configuration.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// How the server certificate is checked.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Accept any certificate (only to fetch /cacerts, whose hash is then checked against the token).
    Insecure,
    /// Verify against these CA certificates (PEM).
    Ca(String),
}

#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A response.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

/// An HTTPS client bound to one server.
#[derive(Clone)]
pub struct Client {
    host: String,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    basic: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// Splits `https://host:port[/]` into host and port (default 6443).
pub fn parse_server_url(url: &str) -> Result<(String, u16), ClientError> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| ClientError::Url(url.to_string()))?;
    let hostport = rest.split('/').next().unwrap_or("");
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, after) = h
            .split_once(']')
            .ok_or_else(|| ClientError::Url(url.to_string()))?;
        (
            h.to_string(),
            after.strip_prefix(':').unwrap_or("6443").to_string(),
        )
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.to_string()),
            None => (hostport.to_string(), "6443".to_string()),
        }
    };
    let port = port
        .parse()
        .map_err(|_| ClientError::Url(url.to_string()))?;
    if host.is_empty() {
        return Err(ClientError::Url(url.to_string()));
    }
    Ok((host, port))
}

impl Client {
    /// A client for `server_url` with the given trust and optional client certificate.
    pub fn new(
        server_url: &str,
        trust: &Trust,
        client_cert: Option<(&str, &str)>,
    ) -> Result<Self, ClientError> {
        let (host, port) = parse_server_url(server_url)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?;
        let builder = match trust {
            Trust::Insecure => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAny(provider))),
            Trust::Ca(pem) => builder.with_root_certificates(roots(pem)?),
        };
        let mut cfg = match client_cert {
            Some((cert, key)) => builder
                .with_client_auth_cert(certs_from_pem(cert)?, key_from_pem(key)?)
                .map_err(|e| TlsError(e.to_string()))?,
            None => builder.with_no_client_auth(),
        };
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            host,
            port,
            tls: Arc::new(cfg),
            basic: None,
        })
    }

    /// Adds HTTP basic authentication (the join token's user and password).
    pub fn with_basic_auth(mut self, user: &str, password: &str) -> Self {
        let raw = format!("{user}:{password}");
        self.basic = Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ));
        self
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}:{}{path}", self.host, self.port)
    }

    /// Sends a request and reads the whole response.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Reply, ClientError> {
        let url = self.url(path);
        let op = {
            let lower = method.to_ascii_lowercase();
            let mut chars = lower.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        };
        let fail = |message: String| ClientError::Transport {
            op: op.clone(),
            url: url.clone(),
            message,
        };
        let addr = format!("{}:{}", self.host, self.port);
        let tcp = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&addr))
            .await
            .map_err(|_| fail(format!("dial tcp {addr}: i/o timeout")))?
            .map_err(|e| fail(format!("dial tcp {addr}: connect: {}", go_errno(&e))))?;
        let name = ServerName::try_from(self.host.clone()).map_err(|e| fail(e.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone());
        let stream = tokio::time::timeout(Duration::from_secs(10), tls.connect(name, tcp))
            .await
            .map_err(|_| fail("net/http: TLS handshake timeout".into()))?
            .map_err(|e| fail(format!("tls: {e}")))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| fail(e.to_string()))?;
        tokio::spawn(async move {
            // Ends when the response is read or the peer closes.
            let _ = conn.await;
        });
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", format!("{}:{}", self.host, self.port));
        if let Some(b) = &self.basic {
            req = req.header("authorization", b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let (ctype, bytes) = body.unwrap_or(("application/json", Vec::new()));
        let req = req
            .header("content-type", ctype)
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| fail(e.to_string()))?;
        let resp = tokio::time::timeout(Duration::from_secs(30), sender.send_request(req))
            .await
            .map_err(|_| fail("context deadline exceeded".into()))?
            .map_err(|e| fail(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(e.to_string()))?
            .to_bytes()
            .to_vec();
        Ok(Reply { status, body })
    }
}

fn go_errno(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::HostUnreachable => "no route to host".into(),
        std::io::ErrorKind::NetworkUnreachable => "network is unreachable".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        assert_eq!(
            parse_server_url("https://10.0.0.1:6443").expect("url"),
            ("10.0.0.1".into(), 6443)
        );
        assert_eq!(
            parse_server_url("https://k3s.example/").expect("url"),
            ("k3s.example".into(), 6443)
        );
        assert_eq!(
            parse_server_url("https://[::1]:7443").expect("url"),
            ("::1".into(), 7443)
        );
        assert!(parse_server_url("http://x:1").is_err());
    }
}
