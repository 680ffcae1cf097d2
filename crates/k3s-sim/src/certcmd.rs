//! `k3s certificate check|rotate`. `check` reports the expiry of the leaf certificates; `rotate`
//! (only with the server stopped) backs up server/tls and reissues the leaf certificates, which a
//! server start then uses and writes into a fresh k3s.yaml.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::fatal::Fatal;
use crate::lock::{LockState, try_lock};
use crate::paths::DataDir;

/// Options of the certificate subcommands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertOptions {
    /// `--data-dir`.
    pub data_dir: String,
    /// `--output` (check): `text` or `table`.
    pub output: String,
}

/// Parses the flags of `k3s certificate check|rotate`.
pub fn parse(args: &[String]) -> Result<CertOptions, crate::flags::FlagError> {
    let mut opts = CertOptions {
        data_dir: crate::paths::DEFAULT_DATA_DIR.to_string(),
        output: "text".into(),
    };
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let body = arg.trim_start_matches('-');
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        if !arg.starts_with('-') {
            return Err(crate::flags::FlagError::Positional(
                arg.clone(),
                "certificate",
            ));
        }
        match name {
            "debug" | "alsologtostderr" => {}
            "data-dir" | "d" | "output" | "o" | "service" | "s" | "config" | "c" | "log" | "l" => {
                let v = match inline {
                    Some(v) => v,
                    None => {
                        let v = args.get(i).cloned().ok_or_else(|| {
                            crate::flags::FlagError::MissingValue(name.to_string())
                        })?;
                        i += 1;
                        v
                    }
                };
                match name {
                    "data-dir" | "d" => opts.data_dir = v,
                    "output" | "o" => opts.output = v,
                    _ => {}
                }
            }
            other => return Err(crate::flags::FlagError::Undefined(other.to_string())),
        }
    }
    Ok(opts)
}

fn leaf_files(dd: &DataDir) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = crate::certs::LEAVES
        .iter()
        .map(|(b, _)| dd.tls().join(format!("{b}.crt")))
        .collect();
    files.push(dd.agent().join("client-kubelet.crt"));
    files.into_iter().filter(|p| p.exists()).collect()
}

/// One line per certificate: (file, subject, expiry, status).
pub fn check(
    opts: &CertOptions,
) -> Result<Vec<(PathBuf, String, OffsetDateTime, &'static str)>, Fatal> {
    let dd = DataDir::new(&opts.data_dir);
    let mut out = Vec::new();
    for f in leaf_files(&dd) {
        let pem =
            std::fs::read_to_string(&f).map_err(|e| Fatal(format!("{}: {e}", f.display())))?;
        let (not_after, subject, _) = crate::certs::inspect(&pem)
            .ok_or_else(|| Fatal(format!("{}: not a PEM certificate", f.display())))?;
        let left = not_after - OffsetDateTime::now_utc();
        let status = if left.is_negative() {
            "EXPIRED"
        } else if left < crate::certs::RENEW_WINDOW {
            "WARNING"
        } else {
            "OK"
        };
        out.push((f, subject, not_after, status));
    }
    if out.is_empty() {
        return Err(Fatal(format!(
            "no certificates found under {}",
            dd.root().display()
        )));
    }
    Ok(out)
}

/// Prints `check` results in the chosen format.
pub fn render_check(
    rows: &[(PathBuf, String, OffsetDateTime, &'static str)],
    output: &str,
) -> String {
    let mut text = String::new();
    if output == "table" {
        text.push_str("FILENAME\tSUBJECT\tEXPIRES\tRESIDUAL TIME\tSTATUS\n");
        for (f, subject, exp, status) in rows {
            let left = (*exp - OffsetDateTime::now_utc()).whole_seconds();
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            text.push_str(&format!(
                "{name}\t{subject}\t{}\t{}\t{status}\n",
                crate::clock::rfc3339(*exp),
                crate::clock::human_duration(left.max(0))
            ));
        }
    } else {
        for (f, subject, exp, status) in rows {
            let verdict = match *status {
                "EXPIRED" => "is expired",
                "WARNING" => "will expire within 120 days",
                _ => "is ok",
            };
            text.push_str(&crate::log::format_line(
                crate::log::Level::Info,
                &format!(
                    "{}: certificate {subject} {verdict}, expires at {}",
                    f.display(),
                    crate::clock::rfc3339(*exp)
                ),
            ));
            text.push('\n');
        }
    }
    text
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// Rotates leaf certificates; refuses while the server runs. Returns the backup directory.
pub fn rotate(opts: &CertOptions) -> Result<Option<PathBuf>, Fatal> {
    let dd = DataDir::new(&opts.data_dir);
    let _held = match try_lock(&dd.server_lock())
        .map_err(|e| Fatal(format!("{}: {e}", dd.server_lock().display())))?
    {
        LockState::Held(f) => f,
        LockState::Busy => {
            return Err(Fatal(
                "k3s server is running: stop it before rotating certificates (systemctl stop k3s)"
                    .into(),
            ));
        }
    };
    for f in ["client-kubelet.crt", "client-kubelet.key"] {
        let _ = std::fs::remove_file(dd.agent().join(f));
    }
    if !dd.tls().join("server-ca.crt").exists() {
        return Ok(None);
    }
    let backup = dd.server().join(format!(
        "tls-{}",
        OffsetDateTime::now_utc().unix_timestamp()
    ));
    copy_dir(&dd.tls(), &backup).map_err(|e| {
        Fatal(format!(
            "backing up {} to {}: {e}",
            dd.tls().display(),
            backup.display()
        ))
    })?;
    crate::certs::rotate_leaves(&dd.tls()).map_err(|e| Fatal::ctx("rotating certificates", e))?;
    Ok(Some(backup))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        let args: Vec<String> = ["--data-dir", "/x", "-o=table"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            parse(&args).expect("parse"),
            CertOptions {
                data_dir: "/x".into(),
                output: "table".into()
            }
        );
        assert!(parse(&["--bogus".to_string()]).is_err());
    }
}
