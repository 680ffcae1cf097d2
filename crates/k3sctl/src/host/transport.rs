//! The [`Transport`] trait: how k3sctl runs commands on a host and moves files to it.
//!
//! A transport only has to implement [`Transport::exec`]: uploads, reads and writes are shell
//! scripts (see [`super::shell`]) run through it, with their bytes on stdin/stdout. A transport
//! that hops through another host (`pct exec` on a Proxmox host, `lxc exec`) wraps the script of
//! each request and hands it, stdin included, to the transport of the host it hops through.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncRead;

use super::error::HostError;
use super::shell;
use super::tunnel::Tunnel;

/// Time limit of an [`ExecRequest`] unless set otherwise.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(120);

/// What a command reads on its standard input.
#[derive(Default)]
pub enum Stdin {
    /// Nothing (stdin is empty / closed).
    #[default]
    Null,
    /// These bytes.
    Bytes(Vec<u8>),
    /// Streamed from this reader (large uploads).
    Reader(Box<dyn AsyncRead + Send + Unpin>),
}

impl fmt::Debug for Stdin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never show the bytes: they may be a secret (a token file, a registry password).
        match self {
            Self::Null => f.write_str("Null"),
            Self::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Self::Reader(_) => f.write_str("Reader"),
        }
    }
}

/// A shell script to run on a host.
#[derive(Debug)]
pub struct ExecRequest {
    /// A POSIX shell script, run by `sh -c`. Must not contain secrets: pass those on stdin.
    pub command: String,
    /// What the script reads on stdin.
    pub stdin: Stdin,
    /// Run as root: directly when the user is root, else through `sudo -n`.
    pub sudo: bool,
    /// Give up after this long (`None`: no limit).
    pub timeout: Option<Duration>,
    /// A short description for error messages; defaults to the script's first line.
    pub what: Option<String>,
}

impl ExecRequest {
    /// A request for `command` with no stdin, without sudo, with [`DEFAULT_EXEC_TIMEOUT`].
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            stdin: Stdin::Null,
            sudo: false,
            timeout: Some(DEFAULT_EXEC_TIMEOUT),
            what: None,
        }
    }

    /// Runs the command as root (`sudo -n` for non-root users).
    pub fn sudo(mut self, sudo: bool) -> Self {
        self.sudo = sudo;
        self
    }

    /// Feeds these bytes to the command's stdin.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Stdin::Bytes(bytes.into());
        self
    }

    /// Streams this reader into the command's stdin.
    pub fn stdin_reader(mut self, reader: impl AsyncRead + Send + Unpin + 'static) -> Self {
        self.stdin = Stdin::Reader(Box::new(reader));
        self
    }

    /// Sets the time limit (`None`: no limit).
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the short description used in error messages.
    pub fn describe(mut self, what: impl Into<String>) -> Self {
        self.what = Some(what.into());
        self
    }

    /// The short description: the one given, else the script's first line (shortened).
    pub fn what(&self) -> String {
        if let Some(w) = &self.what {
            return w.clone();
        }
        let first = self.command.trim().lines().next().unwrap_or_default();
        let mut short: String = first.chars().take(60).collect();
        if short.len() < first.len() {
            short.push('…');
        }
        format!("`{short}`")
    }
}

/// How a command ended and what it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit code; `None` when killed by a signal.
    pub status: Option<i32>,
    /// Everything printed on stdout.
    pub stdout: Vec<u8>,
    /// Everything printed on stderr.
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    /// True for exit code 0.
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// Stdout as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// "exit code N" or "killed by a signal".
    pub fn status_text(&self) -> String {
        match self.status {
            Some(code) => format!("exit code {code}"),
            None => "killed by a signal".to_owned(),
        }
    }

    /// `Ok(self)` on success, else [`HostError::CommandFailed`] with the stderr tail.
    pub fn check(self, host: &str, what: &str) -> Result<Self, HostError> {
        if self.success() {
            return Ok(self);
        }
        Err(HostError::CommandFailed {
            host: host.to_owned(),
            what: what.to_owned(),
            status: self.status_text(),
            stderr: shell::tail(&self.stderr_text(), 5),
        })
    }

    /// The output of a request's local process (`sh`, `ssh`), awaited within `timeout`
    /// ([`HostError::Timeout`] past it) and, for a privileged request, its sudo refusals typed
    /// ([`Self::check_sudo`]).
    pub async fn of_process(
        host: &str,
        what: &str,
        timeout: Option<Duration>,
        sudo: bool,
        run: impl Future<Output = Result<std::process::Output, HostError>>,
    ) -> Result<Self, HostError> {
        let out = match timeout {
            Some(limit) => {
                tokio::time::timeout(limit, run)
                    .await
                    .map_err(|_| HostError::Timeout {
                        host: host.to_owned(),
                        what: what.to_owned(),
                        timeout: limit,
                    })??
            }
            None => run.await?,
        };
        Self {
            status: out.status.code(),
            stdout: out.stdout,
            stderr: out.stderr,
        }
        .check_sudo(host, sudo)
    }

    /// Turns sudo refusals into [`HostError::SudoNeedsPassword`] / [`HostError::SudoMissing`];
    /// transports call this on the output of privileged requests.
    pub fn check_sudo(self, host: &str, sudo: bool) -> Result<Self, HostError> {
        if !sudo || self.success() {
            return Ok(self);
        }
        let stderr = self.stderr_text();
        if shell::sudo_needs_password(&stderr) {
            return Err(HostError::SudoNeedsPassword {
                host: host.to_owned(),
            });
        }
        if shell::sudo_missing(&stderr) {
            return Err(HostError::SudoMissing {
                host: host.to_owned(),
            });
        }
        Ok(self)
    }
}

/// Where the bytes of an upload come from.
pub enum UploadSource {
    /// A local file, streamed.
    File(PathBuf),
    /// Any reader, streamed.
    Reader(Box<dyn AsyncRead + Send + Unpin>),
}

impl fmt::Debug for UploadSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(p) => write!(f, "File({})", p.display()),
            Self::Reader(_) => f.write_str("Reader"),
        }
    }
}

/// A file to place on a host atomically, verified by sha256 on the host before it replaces the
/// target.
#[derive(Debug)]
pub struct UploadRequest {
    /// Where the bytes come from.
    pub source: UploadSource,
    /// The destination path on the host (parent directories are created).
    pub remote: PathBuf,
    /// Permission bits of the result, e.g. `0o755`.
    pub mode: u32,
    /// Lower-case hex sha256 the bytes must have (see [`super::hash::sha256_file`]).
    pub sha256: String,
    /// Give up after this long (`None`: no limit).
    pub timeout: Option<Duration>,
}

/// Runs commands on one host and moves files there. Object safe: use it as `Arc<dyn Transport>`.
///
/// Implementations provide [`name`](Transport::name) and [`exec`](Transport::exec); file
/// operations are provided on top of `exec` and always run as root (see [`ExecRequest::sudo`]).
#[async_trait]
pub trait Transport: Send + Sync {
    /// The host's name for log lines and errors.
    fn name(&self) -> &str;

    /// Runs `req.command` with `sh -c`, feeding `req.stdin`. Returns the output whatever the exit
    /// code; errors mean the command could not be run to the end (unreachable, timeout, sudo
    /// needs a password, session lost).
    async fn exec(&self, req: ExecRequest) -> Result<ExecOutput, HostError>;

    /// Like [`exec`](Transport::exec), but a non-zero exit is a [`HostError::CommandFailed`].
    async fn exec_checked(&self, req: ExecRequest) -> Result<ExecOutput, HostError> {
        let what = req.what();
        self.exec(req).await?.check(self.name(), &what)
    }

    /// Streams a file to the host into a temporary file, verifies its sha256 there, sets the
    /// mode and renames it over the target. The target is untouched unless all of that worked.
    async fn upload(&self, req: UploadRequest) -> Result<(), HostError> {
        let stdin = match req.source {
            UploadSource::File(path) => {
                let file = tokio::fs::File::open(&path)
                    .await
                    .map_err(|source| HostError::Io {
                        host: self.name().to_owned(),
                        what: format!("opening {} for upload", path.display()),
                        source,
                    })?;
                Stdin::Reader(Box::new(file))
            }
            UploadSource::Reader(r) => Stdin::Reader(r),
        };
        let exec = ExecRequest {
            command: shell::atomic_write_script(&req.remote, req.mode, &req.sha256),
            stdin,
            sudo: true,
            timeout: req.timeout,
            what: Some(format!("upload to {}", req.remote.display())),
        };
        finish_write(
            self.name(),
            exec.what(),
            &req.remote,
            &req.sha256,
            self.exec(exec).await?,
        )
    }

    /// The content of `path` on the host, `None` when it does not exist. Runs as root.
    async fn read_file(&self, path: &Path) -> Result<Option<Vec<u8>>, HostError> {
        let req = ExecRequest::new(shell::read_script(path))
            .sudo(true)
            .describe(format!("reading {}", path.display()));
        let what = req.what();
        let out = self.exec(req).await?;
        if out.status == Some(shell::ABSENT_EXIT)
            && out.stderr_text().contains(shell::ABSENT_MARKER)
        {
            return Ok(None);
        }
        Ok(Some(out.check(self.name(), &what)?.stdout))
    }

    /// Writes `bytes` to `path` atomically with `mode` (as root). Callers write only files whose
    /// content differs (compare [`file_sha256`](Transport::file_sha256) first).
    async fn write_file(&self, path: &Path, bytes: &[u8], mode: u32) -> Result<(), HostError> {
        let sha = super::hash::sha256_hex(bytes);
        let exec = ExecRequest::new(shell::atomic_write_script(path, mode, &sha))
            .stdin(bytes)
            .sudo(true)
            .describe(format!("writing {}", path.display()));
        finish_write(self.name(), exec.what(), path, &sha, self.exec(exec).await?)
    }

    /// A local TCP address reaching `remote_host:remote_port` as seen from this host, open while
    /// the returned [`Tunnel`] lives. Transports that cannot forward say so.
    async fn forward_tcp(&self, remote_host: &str, remote_port: u16) -> Result<Tunnel, HostError> {
        Err(HostError::Unsupported {
            host: self.name().to_owned(),
            what: format!("forwarding to {remote_host}:{remote_port}"),
        })
    }

    /// The sha256 of `path` on the host, `None` when it does not exist. Runs as root.
    async fn file_sha256(&self, path: &Path) -> Result<Option<String>, HostError> {
        let req = ExecRequest::new(shell::sha256_script(path))
            .sudo(true)
            .describe(format!("hashing {}", path.display()));
        let what = req.what();
        let out = self.exec(req).await?.check(self.name(), &what)?;
        let text = out.stdout_text();
        let hash = text.trim();
        if hash.is_empty() {
            return Ok(None);
        }
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(HostError::Protocol {
                host: self.name().to_owned(),
                what,
                detail: format!("not a sha256: {hash:?}"),
            });
        }
        Ok(Some(hash.to_owned()))
    }
}

/// Maps the output of an atomic write script to its result.
fn finish_write(
    host: &str,
    what: String,
    remote: &Path,
    expected: &str,
    out: ExecOutput,
) -> Result<(), HostError> {
    if out.status == Some(shell::CHECKSUM_EXIT) {
        let stderr = out.stderr_text();
        if let Some(actual) = stderr
            .lines()
            .find_map(|l| l.strip_prefix(shell::CHECKSUM_MARKER))
        {
            return Err(HostError::ChecksumMismatch {
                host: host.to_owned(),
                remote: remote.to_owned(),
                expected: expected.to_owned(),
                actual: actual.trim().to_owned(),
            });
        }
    }
    out.check(host, &what).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_defaults_to_a_shortened_first_line() {
        let req = ExecRequest::new("  systemctl restart k3s\necho done");
        assert_eq!(req.what(), "`systemctl restart k3s`");
        let long = ExecRequest::new("x".repeat(100));
        assert_eq!(long.what(), format!("`{}…`", "x".repeat(60)));
        assert_eq!(ExecRequest::new("a").describe("step").what(), "step");
    }

    #[test]
    fn stdin_debug_never_shows_bytes() {
        let req = ExecRequest::new("cat").stdin(b"K10secret".to_vec());
        assert!(!format!("{req:?}").contains("secret"));
    }

    #[test]
    fn check_reports_status_and_stderr_tail() {
        let out = ExecOutput {
            status: Some(2),
            stdout: vec![],
            stderr: b"l1\nl2\nl3\nl4\nl5\nl6\n".to_vec(),
        };
        let err = out.check("h1", "`x`").expect_err("fails");
        assert_eq!(
            err.to_string(),
            "h1: `x` failed (exit code 2): l2\nl3\nl4\nl5\nl6"
        );
    }

    #[test]
    fn check_sudo_maps_password_prompt() {
        let out = ExecOutput {
            status: Some(1),
            stdout: vec![],
            stderr: b"sudo: a password is required\n".to_vec(),
        };
        let err = out.clone().check_sudo("h1", true).expect_err("sudo");
        assert!(matches!(err, HostError::SudoNeedsPassword { .. }));
        assert!(
            out.check_sudo("h1", false).is_ok(),
            "only for sudo requests"
        );
    }

    #[test]
    fn finish_write_maps_checksum_marker() {
        let out = ExecOutput {
            status: Some(shell::CHECKSUM_EXIT),
            stdout: vec![],
            stderr: format!("{}abc\n", shell::CHECKSUM_MARKER).into_bytes(),
        };
        let err = finish_write("h", "w".into(), Path::new("/x"), "def", out).expect_err("bad");
        match err {
            HostError::ChecksumMismatch {
                actual, expected, ..
            } => {
                assert_eq!(actual, "abc");
                assert_eq!(expected, "def");
            }
            other => panic!("unexpected {other}"),
        }
    }
}
