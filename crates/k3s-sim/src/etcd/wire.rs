//! A minimal blocking HTTP/1.1 client over rustls for etcd's JSON gRPC gateway: requests with a
//! JSON body, responses with Content-Length or chunked bodies, and a reader for the gateway's
//! streaming (newline-delimited JSON) watch responses.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

/// A TLS connection to one etcd endpoint.
pub type Conn = BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>;

/// Errors on the wire.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// TCP or TLS failure.
    #[error("{0}")]
    Io(String),
    /// Not an HTTP response we understand.
    #[error("malformed HTTP response: {0}")]
    Protocol(String),
}

impl From<std::io::Error> for WireError {
    fn from(e: std::io::Error) -> Self {
        WireError::Io(e.to_string())
    }
}

/// Opens a TLS connection to `host:port`.
pub fn connect(
    tls: &Arc<rustls::ClientConfig>,
    host: &str,
    port: u16,
    read_timeout: Option<Duration>,
) -> Result<Conn, WireError> {
    let addr = format!("{host}:{port}");
    let sockaddr = std::net::ToSocketAddrs::to_socket_addrs(&addr)
        .map_err(|e| WireError::Io(format!("dial tcp {addr}: {e}")))?
        .next()
        .ok_or_else(|| WireError::Io(format!("dial tcp {addr}: no address")))?;
    let tcp = TcpStream::connect_timeout(&sockaddr, Duration::from_secs(2))
        .map_err(|e| WireError::Io(format!("dial tcp {addr}: {e}")))?;
    tcp.set_read_timeout(read_timeout)?;
    tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| WireError::Io(format!("server name {host}: {e}")))?;
    let conn = rustls::ClientConnection::new(tls.clone(), name)
        .map_err(|e| WireError::Io(format!("tls: {e}")))?;
    Ok(BufReader::new(rustls::StreamOwned::new(conn, tcp)))
}

/// Sends a POST with a JSON body (keep-alive).
pub fn send_post(conn: &mut Conn, host: &str, path: &str, body: &[u8]) -> Result<(), WireError> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let stream = conn.get_mut();
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    Ok(())
}

/// Status line and the headers that matter.
#[derive(Debug)]
pub struct Head {
    /// HTTP status.
    pub status: u16,
    /// Content-Length, when given.
    pub length: Option<usize>,
    /// Transfer-Encoding: chunked.
    pub chunked: bool,
    /// Connection: close.
    pub close: bool,
}

/// Reads the status line and headers.
pub fn read_head(conn: &mut Conn) -> Result<Head, WireError> {
    let mut line = String::new();
    if conn.read_line(&mut line)? == 0 {
        return Err(WireError::Io("connection closed".into()));
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| WireError::Protocol(line.trim().to_string()))?;
    let mut head = Head {
        status,
        length: None,
        chunked: false,
        close: false,
    };
    loop {
        line.clear();
        if conn.read_line(&mut line)? == 0 {
            return Err(WireError::Io("connection closed in headers".into()));
        }
        let t = line.trim_end();
        if t.is_empty() {
            return Ok(head);
        }
        if let Some((k, v)) = t.split_once(':') {
            let v = v.trim();
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => head.length = v.parse().ok(),
                "transfer-encoding" => head.chunked = v.eq_ignore_ascii_case("chunked"),
                "connection" => head.close = v.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
    }
}

/// Reads one chunk of a chunked body; empty at the end of the body.
pub fn read_chunk(conn: &mut Conn) -> Result<Vec<u8>, WireError> {
    let mut line = String::new();
    if conn.read_line(&mut line)? == 0 {
        return Err(WireError::Io("connection closed in body".into()));
    }
    let size_text = line.trim().split(';').next().unwrap_or("");
    let size = usize::from_str_radix(size_text, 16)
        .map_err(|_| WireError::Protocol(format!("chunk size {size_text:?}")))?;
    if size == 0 {
        // The last chunk: trailers and the closing empty line follow (read by the caller).
        return Ok(Vec::new());
    }
    let mut buf = vec![0; size];
    conn.read_exact(&mut buf)?;
    let mut crlf = [0u8; 2];
    conn.read_exact(&mut crlf)?;
    Ok(buf)
}

/// The next piece of a streamed body: its next chunk when it is chunked, else what one read
/// returns (at most `max` bytes); empty at the end of the body.
pub fn read_piece(conn: &mut Conn, head: &Head, max: usize) -> Result<Vec<u8>, WireError> {
    if head.chunked {
        return read_chunk(conn);
    }
    let mut buf = vec![0; max];
    let n = std::io::Read::read(conn, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// Reads a whole response body.
pub fn read_body(conn: &mut Conn, head: &Head) -> Result<Vec<u8>, WireError> {
    if head.chunked {
        let mut out = Vec::new();
        loop {
            let chunk = read_chunk(conn)?;
            if chunk.is_empty() {
                // Trailers (if any) end with an empty line.
                let mut line = String::new();
                loop {
                    line.clear();
                    if conn.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        return Ok(out);
                    }
                }
            }
            out.extend_from_slice(&chunk);
        }
    }
    match head.length {
        Some(n) => {
            let mut buf = vec![0; n];
            conn.read_exact(&mut buf)?;
            Ok(buf)
        }
        None => {
            let mut buf = Vec::new();
            conn.read_to_end(&mut buf)?;
            Ok(buf)
        }
    }
}

/// Splits complete newline-terminated JSON messages off the front of `buf`.
pub fn take_lines(buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = buf.drain(..=pos).collect();
        let trimmed = line.trim_ascii();
        if !trimmed.is_empty() {
            out.push(trimmed.to_vec());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_lines_are_split_at_newlines() {
        let mut buf = b"{\"a\":1}\n{\"b\":".to_vec();
        assert_eq!(take_lines(&mut buf), vec![b"{\"a\":1}".to_vec()]);
        assert_eq!(buf, b"{\"b\":".to_vec());
        buf.extend_from_slice(b"2}\r\n\n");
        assert_eq!(take_lines(&mut buf), vec![b"{\"b\":2}".to_vec()]);
        assert!(buf.is_empty());
    }
}
