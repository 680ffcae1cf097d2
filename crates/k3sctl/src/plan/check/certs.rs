//! Certificates, pure: what was read on the hosts and from the kubeconfig exports → one row per
//! certificate (`certs check`) and one check result per certificate (`check`).

use k8s_openapi::jiff;
use serde::Serialize;

use super::{CheckResult, Status};
use crate::k3s::certs::{CertSummary, days_left, renewal_window_days, renews_at_start};
use crate::k3s::version::K3sVersion;

/// Where a certificate lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum CertOwner {
    /// A file on a host (server/tls, agent).
    Host {
        /// The host.
        host: String,
    },
    /// The client certificate of a kubeconfig export (a local file).
    Export {
        /// The export's name.
        export: String,
    },
}

impl CertOwner {
    /// The host or export name.
    pub fn name(&self) -> &str {
        match self {
            Self::Host { host } => host,
            Self::Export { export } => export,
        }
    }
}

/// One certificate file as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertObservation {
    /// Where it lives.
    pub owner: CertOwner,
    /// The file.
    pub file: String,
    /// Its first certificate, or why it could not be read.
    pub cert: Result<CertSummary, String>,
    /// The K3s version that renews it: the host's own kubelet version, the first server's for
    /// an export; `None` when unknown.
    pub version: Option<K3sVersion>,
}

/// One row of `certs check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertRow {
    /// Where it lives.
    pub owner: CertOwner,
    /// The file.
    pub file: String,
    /// Subject; empty when unreadable.
    pub subject: String,
    /// notAfter, RFC 3339; empty when unreadable.
    pub expires: String,
    /// Whole days left (negative once expired).
    pub days_left: Option<i64>,
    /// Whether K3s renews it at its next start (expired or within its renewal window); `None`
    /// when the version is unknown, and for exports, which K3s never rewrites.
    pub renews_at_start: Option<bool>,
    /// The renewal window of the running version, in days.
    pub renewal_window_days: Option<i64>,
    /// Why it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn rfc3339(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// Pure: the rows of `certs check`, in the order observed.
pub fn cert_rows(certs: &[CertObservation], now: i64) -> Vec<CertRow> {
    certs
        .iter()
        .map(|c| {
            let export = matches!(c.owner, CertOwner::Export { .. });
            match &c.cert {
                Ok(s) => CertRow {
                    owner: c.owner.clone(),
                    file: c.file.clone(),
                    subject: s.subject.clone(),
                    expires: rfc3339(s.not_after),
                    days_left: Some(days_left(s.not_after, now)),
                    renews_at_start: if export {
                        None
                    } else {
                        renews_at_start(c.version.as_ref(), s.not_after, now)
                    },
                    renewal_window_days: c.version.as_ref().map(renewal_window_days),
                    error: None,
                },
                Err(e) => CertRow {
                    owner: c.owner.clone(),
                    file: c.file.clone(),
                    subject: String::new(),
                    expires: String::new(),
                    days_left: None,
                    renews_at_start: None,
                    renewal_window_days: None,
                    error: Some(e.clone()),
                },
            }
        })
        .collect()
}

/// Pure: one check per certificate: expired or unreadable fails; within the renewal window
/// (120 days when the version is unknown) warns; else ok.
pub fn cert_results(certs: &[CertObservation], now: i64) -> Vec<CheckResult> {
    certs
        .iter()
        .zip(cert_rows(certs, now))
        .map(|(c, row)| {
            let subject = format!("{}:{}", c.owner.name(), c.file);
            let (export, owner) = match &c.owner {
                CertOwner::Export { export } => (true, export.as_str()),
                CertOwner::Host { host } => (false, host.as_str()),
            };
            let check = if export { "export-cert" } else { "certificate" };
            let (Some(days), Ok(summary)) = (row.days_left, &c.cert) else {
                return CheckResult::new(
                    check,
                    subject,
                    Status::Fail,
                    format!(
                        "cannot read the certificate: {}",
                        row.error.unwrap_or_default()
                    ),
                )
                .hint(if export {
                    format!("`k3sctl kubeconfig --export {owner}` writes it again")
                } else {
                    format!("look at the file on {owner}")
                });
            };
            let window = row.renewal_window_days.unwrap_or(120);
            let detail = format!("{} expires {} ({days} days left)", row.subject, row.expires);
            let renew_hint = if export {
                format!(
                    "`k3sctl kubeconfig --export {owner}` writes the server's current admin \
                     certificate (K3s renews its own at start)"
                )
            } else {
                format!(
                    "K3s renews it when it next starts on {owner} (`systemctl restart k3s` or \
                     `k3s-agent`; servers one at a time)"
                )
            };
            if summary.not_after <= now {
                CheckResult::new(check, subject, Status::Fail, format!("EXPIRED: {detail}"))
                    .hint(renew_hint)
            } else if summary.not_after - now <= window * 86_400 {
                CheckResult::new(
                    check,
                    subject,
                    Status::Warn,
                    format!("{detail}, within the {window}-day renewal window"),
                )
                .hint(renew_hint)
            } else {
                CheckResult::new(check, subject, Status::Ok, detail)
            }
        })
        .collect()
}
