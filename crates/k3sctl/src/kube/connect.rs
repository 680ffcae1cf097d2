//! Connecting to the API: a kube-rs client from a kubeconfig's content, optionally through a
//! [`Forward`] to the server's loopback (works when the API is not exposed). How a forward is
//! opened is the caller's edge ([`PortForwarder`]; `run::api_forward` implements it for host
//! transports), so this layer does not depend on `host`.

use std::any::Any;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::error::KubeError;

/// A local TCP endpoint that reaches a port as seen from a server's host; open while it lives.
pub struct Forward {
    local_addr: SocketAddr,
    _open: Box<dyn Any + Send + Sync>,
}

impl Forward {
    /// A forward listening on `local_addr`, kept open by `open` (dropped with the forward).
    pub fn new(local_addr: SocketAddr, open: impl Any + Send + Sync) -> Self {
        Self {
            local_addr,
            _open: Box::new(open),
        }
    }

    /// The local address to connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl std::fmt::Debug for Forward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forward")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// Opens [`Forward`]s to ports on a server's host.
#[async_trait]
pub trait PortForwarder: Send + Sync {
    /// The server's name, for messages.
    fn name(&self) -> &str;

    /// A local endpoint reaching `remote_host:remote_port` as seen from the server.
    async fn forward(
        &self,
        remote_host: &str,
        remote_port: u16,
    ) -> Result<Forward, Box<dyn std::error::Error + Send + Sync>>;
}

/// Installs rustls' ring crypto provider for the process. Call once at the top of `main`
/// (two providers in the dependency tree make rustls refuse to pick one). Calling it again is
/// harmless.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client plus what keeps its connection path open.
pub struct ApiConnection {
    /// The client.
    pub client: Client,
    /// The forward the client goes through, if any; the client stops working when it is dropped.
    pub tunnel: Option<Forward>,
}

impl std::fmt::Debug for ApiConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConnection")
            .field("tunnel", &self.tunnel)
            .finish_non_exhaustive()
    }
}

/// A client for the kubeconfig in `yaml` (its current context), talking to `server_url`
/// instead of the kubeconfig's server when given. `source_name` names the kubeconfig in errors;
/// the content is never printed (it holds the admin key).
pub async fn client_from_kubeconfig(
    yaml: &str,
    source_name: &str,
    server_url: Option<&str>,
) -> Result<Client, KubeError> {
    let bad = |detail: String| KubeError::Kubeconfig {
        source_name: source_name.to_owned(),
        detail,
    };
    let kubeconfig = Kubeconfig::from_yaml(yaml).map_err(|e| bad(e.to_string()))?;
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| bad(e.to_string()))?;
    if let Some(url) = server_url {
        config.cluster_url = url
            .parse()
            .map_err(|e| bad(format!("server URL {url}: {e}")))?;
    }
    // kube's default retry layer re-sends 429s with backoff for minutes inside one call; k3sctl's
    // own loops retry (eviction refusals until the drain timeout), so each call must return.
    config.default_retry = false;
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(60));
    Client::try_from(config).map_err(|e| bad(e.to_string()))
}

/// A client for the API server listening on 127.0.0.1:`port` of `server`'s host, reached through
/// a forward opened by `server`. K3s serving certificates include 127.0.0.1, so TLS
/// verification against the kubeconfig's CA works unchanged.
pub async fn connect_through<S: PortForwarder + ?Sized>(
    server: &S,
    kubeconfig_yaml: &str,
    port: u16,
) -> Result<ApiConnection, KubeError> {
    let tunnel = server
        .forward("127.0.0.1", port)
        .await
        .map_err(KubeError::Tunnel)?;
    let url = format!("https://127.0.0.1:{}", tunnel.local_addr().port());
    let source = format!("the kubeconfig read from {}", server.name());
    let client = client_from_kubeconfig(kubeconfig_yaml, &source, Some(&url)).await?;
    Ok(ApiConnection {
        client,
        tunnel: Some(tunnel),
    })
}
