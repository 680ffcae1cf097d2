//! Helpers shared by the lab's integration tests.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use lab::Lab;

/// What a TCP connection attempt from the machine ran into.
#[derive(Debug, PartialEq, Eq)]
pub enum Probe {
    /// Connected.
    Open,
    /// Actively refused (something answered with RST).
    Refused,
    /// Nothing answered before the timeout.
    TimedOut,
    /// Any other error.
    Other(String),
}

/// Tries a TCP connection from the root namespace.
pub fn probe(addr: Ipv4Addr, port: u16, timeout: Duration) -> Probe {
    match TcpStream::connect_timeout(&SocketAddr::from((addr, port)), timeout) {
        Ok(_) => Probe::Open,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Probe::Refused,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Probe::TimedOut,
        Err(e) => Probe::Other(e.to_string()),
    }
}

/// Which of `targets` (at `port`) `from` can open a TCP connection to within 1 s, tried in
/// parallel on the host in one ssh session (inside the lab a connection takes milliseconds;
/// a blocked one never completes).
pub fn reachable_from(lab: &Lab, from: &str, port: u16, targets: &[Ipv4Addr]) -> Vec<bool> {
    let probes: Vec<String> = targets
        .iter()
        .map(|t| {
            format!("(timeout 1 bash -c 'echo > /dev/tcp/{t}/{port}' 2>/dev/null && echo {t}=open || echo {t}=closed) &")
        })
        .collect();
    let script = format!("{}\nwait", probes.join("\n"));
    let out = lab.exec(from, &script).expect("probe script runs");
    targets
        .iter()
        .map(|t| {
            let line = out
                .lines()
                .find(|l| l.starts_with(&format!("{t}=")))
                .expect("one line per target");
            line.ends_with("=open")
        })
        .collect()
}

/// GETs `/` from `addr:port` over plain HTTP, retrying until `within` passes.
pub fn http_get(addr: Ipv4Addr, port: u16, within: Duration) -> Option<String> {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Ok(mut s) =
            TcpStream::connect_timeout(&SocketAddr::from((addr, port)), Duration::from_secs(1))
        {
            s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
            let mut body = String::new();
            s.read_to_string(&mut body).ok()?;
            return Some(body);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Asserts that every object of a torn-down lab is gone.
pub fn assert_gone(footprint: &lab::Footprint) {
    let left = footprint.remaining();
    assert!(
        left.is_empty(),
        "left behind after teardown:\n{}",
        left.join("\n")
    );
}
