//! The channel between `pct` in the Proxmox host and the lab's agent on the machine: a unix
//! socket in the Proxmox host's file system. `pct` sends its arguments, environment and its
//! three standard file descriptors (SCM_RIGHTS); the agent runs the request with exactly those
//! descriptors, so a command run through `pct exec` reads and writes the caller's own stdin,
//! stdout and stderr (as `lxc-attach` does), and answers with the exit code.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, recvmsg, sendmsg,
};
use serde::{Deserialize, Serialize};

/// Where the agent's socket is, inside the Proxmox host.
pub const SOCKET_IN_PVE: &str = "/var/lib/pve-lab/agent.sock";

/// What `pct` asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// `pct`'s arguments without the program name.
    pub argv: Vec<String>,
    /// `pct`'s environment (kept for `pct exec`, like `--keep-env`).
    pub env: Vec<(String, String)>,
}

/// Sends `req` with the caller's stdin, stdout and stderr.
pub fn send(stream: &UnixStream, req: &Request, fds: [BorrowedFd<'_>; 3]) -> io::Result<()> {
    let body = serde_json::to_vec(req).map_err(io::Error::other)?;
    let len = u32::try_from(body.len())
        .map_err(io::Error::other)?
        .to_le_bytes();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("descriptor buffer too small"));
    }
    sendmsg(
        stream,
        &[IoSlice::new(&len)],
        &mut control,
        SendFlags::empty(),
    )?;
    (&*stream).write_all(&body)
}

/// Receives a request and the three descriptors that came with it.
pub fn receive(stream: &UnixStream) -> io::Result<(Request, [OwnedFd; 3])> {
    let mut len = [0u8; 4];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = recvmsg(
        stream,
        &mut [IoSliceMut::new(&mut len)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    if msg.bytes != 4 {
        return Err(io::Error::other("short request header"));
    }
    let mut fds: Vec<OwnedFd> = Vec::new();
    for c in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = c {
            fds.extend(received);
        }
    }
    let fds: [OwnedFd; 3] = fds
        .try_into()
        .map_err(|_| io::Error::other("expected stdin, stdout and stderr descriptors"))?;
    let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
    (&*stream).read_exact(&mut body)?;
    let req = serde_json::from_slice(&body).map_err(io::Error::other)?;
    Ok((req, fds))
}

/// Sends the exit code.
pub fn reply(stream: &UnixStream, code: i32) -> io::Result<()> {
    (&*stream).write_all(&code.to_le_bytes())
}

/// Waits for the exit code.
pub fn wait_reply(stream: &UnixStream) -> io::Result<i32> {
    let mut code = [0u8; 4];
    (&*stream).read_exact(&mut code)?;
    Ok(i32::from_le_bytes(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_descriptors_cross_the_socket() {
        let (a, b) = UnixStream::pair().expect("pair");
        let (r, mut w) = UnixStream::pair().expect("pipe-like pair");
        let req = Request {
            argv: vec!["status".into(), "201".into()],
            env: vec![("PATH".into(), "/usr/bin".into())],
        };
        use std::os::fd::AsFd;
        let fd = r.as_fd();
        send(&a, &req, [fd, fd, fd]).expect("send");
        let (got, fds) = receive(&b).expect("receive");
        assert_eq!(got, req);
        w.write_all(b"x").expect("write");
        let mut via_passed = std::fs::File::from(fds.into_iter().next().expect("fd"));
        let mut one = [0u8; 1];
        via_passed
            .read_exact(&mut one)
            .expect("read through the passed fd");
        assert_eq!(&one, b"x");
        reply(&b, 7).expect("reply");
        assert_eq!(wait_reply(&a).expect("code"), 7);
    }
}
