//! [`Tunnel`]: a local TCP address that reaches a TCP port as seen from a host (the K3s API on a
//! server's 127.0.0.1:6443, even when it is not exposed).

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::{TcpListener, UnixStream};
use tokio::task::JoinHandle;

use super::error::HostError;

/// A local TCP endpoint forwarding to a port on a host; open while the value lives.
#[derive(Debug)]
pub struct Tunnel {
    local_addr: SocketAddr,
    relay: Option<JoinHandle<()>>,
    /// The ssh master's forwarding socket, removed with the tunnel (the master may outlive
    /// this run).
    socket: Option<PathBuf>,
}

impl Tunnel {
    /// A "tunnel" that is just a direct address (for the local transport).
    pub fn direct(addr: SocketAddr) -> Self {
        Self {
            local_addr: addr,
            relay: None,
            socket: None,
        }
    }

    /// Listens on 127.0.0.1:<ephemeral port> and relays each connection to the unix socket at
    /// `socket` (where the ssh master accepts connections and opens one channel per connection).
    pub async fn relay_to_unix_socket(host: &str, socket: PathBuf) -> Result<Self, HostError> {
        let io_err = |what: &str, source| HostError::Io {
            host: host.to_owned(),
            what: what.to_owned(),
            source,
        };
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| io_err("listening on 127.0.0.1 for the tunnel", e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| io_err("reading the tunnel's local address", e))?;
        let host = host.to_owned();
        let forward = socket.clone();
        let relay = tokio::spawn(async move {
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else {
                    continue;
                };
                let socket = socket.clone();
                let host = host.clone();
                tokio::spawn(async move {
                    match UnixStream::connect(&socket).await {
                        Ok(mut unix) => {
                            // Either side closing ends the relay; errors here are the peer's.
                            let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                        }
                        Err(e) => {
                            tracing::warn!(host = %host, "tunnel: ssh forward unavailable: {e}");
                        }
                    }
                });
            }
        });
        Ok(Self {
            local_addr,
            relay: Some(relay),
            socket: Some(forward),
        })
    }

    /// The local address to connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        if let Some(relay) = self.relay.take() {
            relay.abort();
        }
        if let Some(socket) = self.socket.take() {
            let _ = fs_err::remove_file(socket);
        }
    }
}
