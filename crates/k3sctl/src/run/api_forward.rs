//! The host edge's tunnels as the API edge's forwards: `kube::connect_through` reaches a
//! server's loopback through any host transport, without `kube` knowing about hosts.

use async_trait::async_trait;

use crate::host::Transport;
use crate::kube::{Forward, PortForwarder};

#[async_trait]
impl<T: Transport + ?Sized> PortForwarder for T {
    fn name(&self) -> &str {
        Transport::name(self)
    }

    async fn forward(
        &self,
        remote_host: &str,
        remote_port: u16,
    ) -> Result<Forward, Box<dyn std::error::Error + Send + Sync>> {
        let tunnel = self.forward_tcp(remote_host, remote_port).await?;
        Ok(Forward::new(tunnel.local_addr(), tunnel))
    }
}
