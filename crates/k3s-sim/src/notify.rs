//! sd_notify: tells systemd (Type=notify) that the service is ready, by sending `READY=1` to the
//! datagram socket named in `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).

use std::os::unix::net::UnixDatagram;

/// Sends a state string (`READY=1`) when running under systemd; a no-op otherwise.
pub fn notify(state: &str) -> std::io::Result<()> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    notify_to(&path.to_string_lossy(), state)
}

/// Sends a state string to a notify socket (`/path` or `@abstract`).
pub fn notify_to(path: &str, state: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    if let Some(abstract_name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes())?;
        sock.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        sock.send_to(state.as_bytes(), path)?;
    }
    Ok(())
}

/// Tells systemd the service is ready, logging (not failing) when that does not work.
pub fn ready() {
    if let Err(e) = notify("READY=1") {
        crate::log::warn(format!("sd_notify READY=1 failed: {e}"));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sends_ready_to_the_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let server = std::os::unix::net::UnixDatagram::bind(&path).expect("bind");
        super::notify_to(&path.display().to_string(), "READY=1").expect("send");
        let mut buf = [0u8; 16];
        let n = server.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"READY=1");
    }
}
