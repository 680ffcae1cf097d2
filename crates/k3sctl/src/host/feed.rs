//! Feeding a command's stdin while its output is collected, shared by the transports.

use std::io::ErrorKind;

use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::transport::Stdin;

/// Writes `stdin` into `writer` and closes it.
///
/// A command that exits before reading all of its input breaks the pipe; that is not an error
/// here (the command's exit status tells what happened). Errors reading the source are returned.
pub async fn feed<W: AsyncWrite + Unpin>(mut writer: W, stdin: Stdin) -> std::io::Result<()> {
    let written = match stdin {
        Stdin::Null => Ok(()),
        Stdin::Bytes(bytes) => writer.write_all(&bytes).await,
        Stdin::Reader(mut reader) => copy(&mut reader, &mut writer).await,
    };
    let closed = writer.shutdown().await;
    match written.and(closed) {
        Err(e) if is_peer_gone(&e) => Ok(()),
        other => other,
    }
}

/// Copies like `tokio::io::copy`, but tells a read error (ours) from a write error (peer gone).
async fn copy<R, W>(reader: &mut R, writer: &mut W) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin,
{
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        if let Err(e) = writer.write_all(&buf[..n]).await {
            if is_peer_gone(&e) {
                return Ok(());
            }
            return Err(e);
        }
    }
}

fn is_peer_gone(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::NotConnected
    )
}
