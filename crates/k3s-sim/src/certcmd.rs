//! `k3s certificate check|rotate`, as K3s's `pkg/cli/cert` does them. Both work on the
//! certificate files of K3s's services (`--service`, repeatable or comma-separated; default: every
//! service on a server, the agent's services on an agent). `check` prints each certificate's
//! subject, usages, expiry and status (`--output text|table|json|yaml`); `rotate` (only with
//! K3s stopped, as the docs say) backs up `server/tls` and deletes the services' certificates,
//! which the next start issues again from the same CAs.

use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;

use crate::fatal::Fatal;
use crate::lock::{LockState, try_lock};
use crate::paths::DataDir;

/// K3s's services whose certificates `check` and `rotate` know (pkg/util/services): the
/// server's, then the agent's.
pub const SERVER_SERVICES: &[&str] = &[
    "api-server",
    "admin",
    "auth-proxy",
    "cloud-controller",
    "controller-manager",
    "etcd",
    "scheduler",
    "supervisor",
    "k3s-server",
];
/// The agent's services.
pub const AGENT_SERVICES: &[&str] = &["kube-proxy", "kubelet", "k3s-controller"];

/// Options of the certificate subcommands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertOptions {
    /// `--data-dir`.
    pub data_dir: String,
    /// `--output` (check): `text`, `table`, `json` or `yaml`.
    pub output: String,
    /// `--service`: empty means K3s's default for the node (server: all, agent: the agent's).
    pub services: Vec<String>,
}

/// Parses the flags of `k3s certificate check|rotate`.
pub fn parse(args: &[String]) -> Result<CertOptions, crate::flags::FlagError> {
    let mut opts = CertOptions {
        data_dir: crate::paths::DEFAULT_DATA_DIR.to_string(),
        output: "text".into(),
        services: Vec::new(),
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
                    "service" | "s" => opts.services.extend(
                        v.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_string),
                    ),
                    _ => {}
                }
            }
            other => return Err(crate::flags::FlagError::Undefined(other.to_string())),
        }
    }
    Ok(opts)
}

/// The services to act on: those asked for (each must be known: K3s's `service X is not
/// recognized`), else all on a server (`server/` exists) and the agent's on an agent.
pub fn services(opts: &CertOptions, dd: &DataDir, verb: &str) -> Result<Vec<String>, Fatal> {
    for s in &opts.services {
        if !SERVER_SERVICES.contains(&s.as_str()) && !AGENT_SERVICES.contains(&s.as_str()) {
            return Err(Fatal(format!("service {s} is not recognized")));
        }
    }
    if !opts.services.is_empty() {
        return Ok(opts.services.clone());
    }
    let list: Vec<&str> = if dd.server().exists() {
        crate::log::info(format!(
            "Server detected, {verb} agent and server certificates"
        ));
        SERVER_SERVICES
            .iter()
            .chain(AGENT_SERVICES)
            .copied()
            .collect()
    } else {
        crate::log::info(format!("Agent detected, {verb} agent certificates"));
        AGENT_SERVICES.to_vec()
    };
    Ok(list.into_iter().map(str::to_string).collect())
}

/// Pure: the certificate base names (without `.crt`/`.key`) of one service, K3s's file layout
/// (pkg/util/services `FilesForServices`). `k3s-server`'s dynamic listener certificate is no
/// plain file there either.
pub fn service_files(service: &str, dd: &DataDir) -> Vec<PathBuf> {
    let tls = dd.tls();
    let agent = dd.agent();
    let etcd = tls.join("etcd");
    match service {
        "admin" => vec![tls.join("client-admin")],
        "api-server" => vec![
            tls.join("client-kube-apiserver"),
            tls.join("serving-kube-apiserver"),
        ],
        "controller-manager" => vec![tls.join("client-controller")],
        "scheduler" => vec![tls.join("client-scheduler")],
        "etcd" => vec![
            etcd.join("client"),
            etcd.join("server-client"),
            etcd.join("peer-server-client"),
        ],
        "cloud-controller" => vec![tls.join("client-k3s-cloud-controller")],
        "k3s-controller" => vec![
            tls.join("client-k3s-controller"),
            agent.join("client-k3s-controller"),
        ],
        "supervisor" => vec![tls.join("client-supervisor")],
        "auth-proxy" => vec![tls.join("client-auth-proxy")],
        "kubelet" => vec![
            tls.join("client-kubelet"),
            tls.join("serving-kubelet"),
            agent.join("client-kubelet"),
            agent.join("serving-kubelet"),
        ],
        "kube-proxy" => vec![
            tls.join("client-kube-proxy"),
            agent.join("client-kube-proxy"),
        ],
        _ => Vec::new(),
    }
}

fn with_ext(base: &Path, ext: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(format!(".{ext}"));
    PathBuf::from(s)
}

/// One certificate as `check` reports it (K3s's field names, which its JSON and YAML keep).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CertInfo {
    /// The file's base name.
    pub filename: String,
    /// The subject's common name.
    pub subject: String,
    /// The issuer's common name.
    pub issuer: String,
    /// `CertSign`, `ServerAuth`, `ClientAuth` or `Unknown`.
    pub usages: Vec<String>,
    /// notAfter (notBefore for a certificate not valid yet), RFC 3339.
    pub expiry_time: String,
    /// notAfter minus now, in nanoseconds (Go's time.Duration in JSON).
    pub residual_time: i64,
    /// `OK`, `WARNING` (within 120 days), `EXPIRED` or `NOT YET VALID`.
    pub status: String,
}

fn common_name(name: &x509_parser::x509::X509Name<'_>) -> String {
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Pure: the facts `check` shows for one PEM certificate at `now`.
pub fn describe(file: &str, pem: &str, now: OffsetDateTime) -> Option<CertInfo> {
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    let not_after = cert.validity().not_after.to_datetime();
    let not_before = cert.validity().not_before.to_datetime();
    let mut usages = Vec::new();
    if cert.is_ca()
        || cert
            .key_usage()
            .ok()
            .flatten()
            .is_some_and(|k| k.value.key_cert_sign())
    {
        usages.push("CertSign".to_string());
    }
    if let Ok(Some(eku)) = cert.extended_key_usage() {
        if eku.value.server_auth {
            usages.push("ServerAuth".to_string());
        }
        if eku.value.client_auth {
            usages.push("ClientAuth".to_string());
        }
    }
    if usages.is_empty() {
        usages.push("Unknown".to_string());
    }
    let (status, shown) = if now < not_before {
        ("NOT YET VALID", not_before)
    } else if now > not_after {
        ("EXPIRED", not_after)
    } else if not_after - now < crate::certs::RENEW_WINDOW {
        ("WARNING", not_after)
    } else {
        ("OK", not_after)
    };
    Some(CertInfo {
        filename: file.to_string(),
        subject: common_name(cert.subject()),
        issuer: common_name(cert.issuer()),
        usages,
        expiry_time: crate::clock::rfc3339(shown),
        residual_time: i64::try_from((not_after - now).whole_nanoseconds()).unwrap_or(i64::MAX),
        status: status.to_string(),
    })
}

/// Every existing certificate of the chosen services.
pub fn check(opts: &CertOptions) -> Result<Vec<CertInfo>, Fatal> {
    let dd = DataDir::new(&opts.data_dir);
    let now = OffsetDateTime::now_utc();
    let mut out = Vec::new();
    for service in services(opts, &dd, "checking")? {
        for base in service_files(&service, &dd) {
            let crt = with_ext(&base, "crt");
            let Ok(pem) = fs_err::read_to_string(&crt) else {
                continue;
            };
            let name = crt
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if let Some(info) = describe(&name, &pem, now) {
                out.push(info);
            }
        }
    }
    Ok(out)
}

/// Renders `check` results in the chosen format (K3s: text log lines, a table, JSON, YAML).
pub fn render_check(rows: &[CertInfo], output: &str) -> Result<String, Fatal> {
    let mut text = String::new();
    match output {
        "table" => {
            text.push_str("\nFILENAME\tSUBJECT\tUSAGES\tEXPIRES\tRESIDUAL TIME\tSTATUS\n");
            text.push_str("--------\t-------\t------\t-------\t-------------\t------\n");
            for c in rows {
                let left = c.residual_time / 1_000_000_000;
                text.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\n",
                    c.filename,
                    c.subject,
                    c.usages.join(","),
                    c.expiry_time,
                    crate::clock::human_duration(left.max(0)),
                    c.status
                ));
            }
        }
        "json" => {
            let doc = serde_json::json!({ "Certificates": rows });
            text = format!("{doc}\n");
        }
        "yaml" => {
            let doc = serde_json::json!({ "certificates": rows });
            text = serde_saphyr::to_string(&doc).map_err(|e| Fatal(e.to_string()))?;
        }
        "text" => {
            for c in rows {
                let usages = c.usages.join(",");
                let (level, verdict) = match c.status.as_str() {
                    "NOT YET VALID" => (crate::log::Level::Error, "is not valid before"),
                    "EXPIRED" => (crate::log::Level::Error, "expired at"),
                    "WARNING" => (crate::log::Level::Warn, "will expire within 120 days at"),
                    _ => (crate::log::Level::Info, "is ok, expires at"),
                };
                text.push_str(&crate::log::format_line(
                    level,
                    &format!(
                        "{}: certificate {} ({usages}) {verdict} {}",
                        c.filename, c.subject, c.expiry_time
                    ),
                ));
                text.push('\n');
            }
        }
        other => return Err(Fatal(format!("invalid output format {other}"))),
    }
    Ok(text)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    fs_err::create_dir_all(to)?;
    for e in fs_err::read_dir(from)? {
        let e = e?;
        let path = e.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(e.file_name()))?;
        } else if path.is_file() {
            fs_err::copy(&path, to.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// Backs up the certificates and deletes those of the chosen services (the next start issues
/// them again); refuses while the server runs. Returns the backup directory.
pub fn rotate(opts: &CertOptions) -> Result<PathBuf, Fatal> {
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
    let services = services(opts, &dd, "rotating")?;
    let stamp = OffsetDateTime::now_utc().unix_timestamp();
    // K3s: a copy of server/tls as server/tls-<unix time> on a server, agent/tls-<unix time>
    // for an agent's files; the agent's rotated files are copied into it too.
    let backup = if dd.tls().exists() {
        let b = dd.server().join(format!("tls-{stamp}"));
        copy_dir(&dd.tls(), &b).map_err(|e| {
            Fatal(format!(
                "backing up {} to {}: {e}",
                dd.tls().display(),
                b.display()
            ))
        })?;
        b
    } else {
        dd.agent().join(format!("tls-{stamp}"))
    };
    fs_err::create_dir_all(&backup).map_err(|e| Fatal(e.to_string()))?;
    let agent = dd.agent();
    for service in &services {
        crate::log::info(format!("Rotating certificates for {service}"));
        for base in service_files(service, &dd) {
            for ext in ["crt", "key"] {
                let f = with_ext(&base, ext);
                if f.starts_with(&agent)
                    && f.exists()
                    && let Some(name) = f.file_name()
                {
                    fs_err::copy(&f, backup.join(name))
                        .map_err(|e| Fatal(format!("backing up {}: {e}", f.display())))?;
                }
                let _ = fs_err::remove_file(&f);
            }
        }
    }
    Ok(backup)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags() {
        assert_eq!(
            parse(&args(&[
                "--data-dir",
                "/x",
                "-o=table",
                "--service",
                "admin,etcd",
                "-s=kubelet"
            ]))
            .expect("parse"),
            CertOptions {
                data_dir: "/x".into(),
                output: "table".into(),
                services: vec!["admin".into(), "etcd".into(), "kubelet".into()],
            }
        );
        assert!(parse(&args(&["--bogus"])).is_err());
    }

    fn pki(dir: &Path) {
        let tls = dir.join("server/tls");
        crate::certs::load_server_pki(&tls, &["127.0.0.1".to_string()]).expect("pki");
        crate::etcd::pki::ensure(&tls.join("etcd"), &["127.0.0.1".to_string()]).expect("etcd");
    }

    #[test]
    fn check_reports_k3s_fields_and_rotate_deletes_only_the_services_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        pki(dir.path());
        let mut opts = parse(&args(&["-d", &dir.path().display().to_string()])).expect("opts");
        let rows = check(&opts).expect("check");
        let names: Vec<&str> = rows.iter().map(|r| r.filename.as_str()).collect();
        assert!(names.contains(&"serving-kube-apiserver.crt"), "{names:?}");
        assert!(names.contains(&"client-admin.crt") && names.contains(&"client.crt"));
        let admin = rows
            .iter()
            .find(|r| r.filename == "client-admin.crt")
            .expect("admin");
        assert_eq!(admin.subject, "system:admin");
        assert!(
            admin.issuer.starts_with("k3s-client-ca@"),
            "{}",
            admin.issuer
        );
        assert_eq!(admin.usages, vec!["ClientAuth".to_string()]);
        assert_eq!(admin.status, "OK");
        let json = render_check(&rows, "json").expect("json");
        let v: serde_json::Value = serde_json::from_str(&json).expect("parses");
        assert_eq!(v["Certificates"][0]["Status"], "OK");
        assert!(v["Certificates"][0]["ResidualTime"].as_i64().unwrap_or(0) > 0);
        assert!(render_check(&rows, "xml").is_err());

        opts.services = vec!["admin".into(), "etcd".into()];
        let backup = rotate(&opts).expect("rotate");
        let tls = dir.path().join("server/tls");
        assert!(!tls.join("client-admin.crt").exists());
        assert!(!tls.join("etcd/peer-server-client.key").exists());
        assert!(
            tls.join("serving-kube-apiserver.crt").exists(),
            "api-server kept"
        );
        assert!(tls.join("server-ca.crt").exists(), "CAs kept");
        assert!(backup.join("client-admin.crt").exists());
        assert!(backup.join("etcd/client.crt").exists());
        opts.services = vec!["bogus".into()];
        assert_eq!(
            rotate(&opts).err().map(|e| e.0),
            Some("service bogus is not recognized".to_string())
        );
    }

    #[test]
    fn status_follows_the_renewal_window() {
        let dir = tempfile::tempdir().expect("tempdir");
        pki(dir.path());
        let pem =
            fs_err::read_to_string(dir.path().join("server/tls/client-admin.crt")).expect("pem");
        let now = OffsetDateTime::now_utc();
        let at = |days: i64| describe("f", &pem, now + time::Duration::days(days)).expect("cert");
        assert_eq!(at(0).status, "OK");
        assert_eq!(at(300).status, "WARNING");
        assert_eq!(at(400).status, "EXPIRED");
        assert_eq!(at(-1).status, "NOT YET VALID");
    }
}
