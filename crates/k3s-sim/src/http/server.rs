//! The TLS accept loop: every connection is served with HTTP/1.1 by a handler that also receives
//! the peer's certificate chain and address.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::Body;

/// What the handler learns about the connection.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Remote address.
    pub addr: SocketAddr,
    /// Client certificate chain presented in the handshake (unverified).
    pub certs: Arc<Vec<CertificateDer<'static>>>,
}

/// Serves TLS connections from `listener` forever.
pub async fn serve<H, F>(listener: TcpListener, tls: Arc<rustls::ServerConfig>, handler: H)
where
    H: Fn(Request<Incoming>, Peer) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, addr) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                crate::log::error(format!("accept on {:?}: {e}", listener.local_addr().ok()));
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let handler = handler.clone();
        tokio::spawn(async move {
            let handshake =
                tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp))
                    .await;
            let Ok(Ok(stream)) = handshake else { return };
            let certs = stream
                .get_ref()
                .1
                .peer_certificates()
                .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default();
            let peer = Peer {
                addr,
                certs: Arc::new(certs),
            };
            let svc = hyper::service::service_fn(move |req| {
                let handler = handler.clone();
                let peer = peer.clone();
                async move { Ok::<_, std::convert::Infallible>(handler(req, peer).await) }
            });
            // Connection errors (client went away) are normal.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
