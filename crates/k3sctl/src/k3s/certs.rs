//! K3s's certificates, pure: reading PEM certificates (subject, expiry) and K3s's renewal rule.
//!
//! K3s issues its client and serving certificates for 365 days and renews, every time it starts,
//! those that have expired or expire within 120 days (90 days before the May-2025 releases
//! v1.33.1, v1.32.5, v1.31.9 and v1.30.13) — docs.k3s.io/cli/certificate. CA certificates (10
//! years) are never renewed automatically.

use x509_parser::pem::Pem;

use super::version::K3sVersion;

const DAY: i64 = 86_400;

/// One certificate read from a PEM file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// The subject, `CN=system:admin, O=system:masters` style.
    pub subject: String,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// A CA certificate (basicConstraints CA:TRUE).
    pub is_ca: bool,
}

/// Pure: every certificate in `pem` (a file may hold a chain); the first error names the block.
pub fn parse_pem_certs(pem: &[u8]) -> Result<Vec<CertSummary>, String> {
    let mut certs = Vec::new();
    for (i, block) in Pem::iter_from_buffer(pem).enumerate() {
        let block = block.map_err(|e| format!("PEM block {}: {e}", i + 1))?;
        if block.label != "CERTIFICATE" {
            continue;
        }
        let cert = block
            .parse_x509()
            .map_err(|e| format!("certificate {}: {e}", i + 1))?;
        certs.push(CertSummary {
            subject: cert.subject().to_string(),
            not_after: cert.validity().not_after.timestamp(),
            is_ca: cert.is_ca(),
        });
    }
    if certs.is_empty() {
        return Err("no certificate in it".into());
    }
    Ok(certs)
}

/// Pure: the window (days before expiry) within which `version` renews a certificate at start:
/// 120 days from v1.33.1, v1.32.5, v1.31.9, v1.30.13 (and every later minor), 90 before.
pub fn renewal_window_days(version: &K3sVersion) -> i64 {
    let first_with_120 = match (version.major, version.minor) {
        (1, 33) => 1,
        (1, 32) => 5,
        (1, 31) => 9,
        (1, 30) => 13,
        (major, minor) if major > 1 || minor > 33 => 0,
        _ => return 90,
    };
    if version.patch >= first_with_120 {
        120
    } else {
        90
    }
}

/// Pure: whole days from `now` to `not_after` (negative once expired; rounded down).
pub fn days_left(not_after: i64, now: i64) -> i64 {
    (not_after - now).div_euclid(DAY)
}

/// Pure: whether K3s at `version` renews a certificate expiring at `not_after` the next time
/// it starts: expired, or within its renewal window. `None` when the version is unknown.
pub fn renews_at_start(version: Option<&K3sVersion>, not_after: i64, now: i64) -> Option<bool> {
    let window = renewal_window_days(version?);
    Some(not_after <= now || not_after - now <= window * DAY)
}

/// Pure: the command that makes K3s renew a node's certificates at its next start (run with
/// K3s stopped): `k3s certificate rotate`, with `--service a,b` when only some services'
/// certificates are to be renewed.
pub fn rotate_command(services: &[String]) -> String {
    let binary = super::unit::BINARY_PATH;
    if services.is_empty() {
        format!("{binary} certificate rotate")
    } else {
        format!(
            "{binary} certificate rotate --service {}",
            services.join(",")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rotate_command_passes_the_services() {
        assert_eq!(rotate_command(&[]), "/usr/local/bin/k3s certificate rotate");
        assert_eq!(
            rotate_command(&["admin".into(), "api-server".into()]),
            "/usr/local/bin/k3s certificate rotate --service admin,api-server"
        );
    }

    fn v(s: &str) -> K3sVersion {
        s.parse().expect("version")
    }

    #[test]
    fn the_window_grew_to_120_days_in_may_2025() {
        // (version, window)
        let table = [
            ("v1.33.0+k3s1", 90),
            ("v1.33.1+k3s1", 120),
            ("v1.32.4+k3s1", 90),
            ("v1.32.5+k3s1", 120),
            ("v1.31.8+k3s1", 90),
            ("v1.31.9+k3s1", 120),
            ("v1.30.12+k3s1", 90),
            ("v1.30.13+k3s1", 120),
            ("v1.29.15+k3s1", 90),
            ("v1.34.0+k3s1", 120),
            ("v1.35.0-rc1+k3s1", 120),
        ];
        for (version, want) in table {
            assert_eq!(renewal_window_days(&v(version)), want, "{version}");
        }
    }

    #[test]
    fn renews_what_expired_or_is_within_the_window() {
        let now = 1_800_000_000;
        let new = v("v1.34.1+k3s1");
        let old = v("v1.29.1+k3s1");
        // (version, seconds left, renews)
        let table = [
            (Some(&new), 365 * DAY, Some(false)),
            (Some(&new), 121 * DAY, Some(false)),
            (Some(&new), 120 * DAY, Some(true)),
            (Some(&new), 30, Some(true)),
            (Some(&new), -10, Some(true)),
            (Some(&old), 100 * DAY, Some(false)),
            (Some(&old), 90 * DAY, Some(true)),
            (None, 10, None),
        ];
        for (version, left, want) in table {
            assert_eq!(renews_at_start(version, now + left, now), want, "{left}");
        }
        assert_eq!(days_left(now + DAY + 5, now), 1);
        assert_eq!(days_left(now + 5, now), 0);
        assert_eq!(days_left(now - 5, now), -1);
    }

    #[test]
    fn reads_subject_and_expiry_from_pem() {
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "system:admin");
        params.not_after = rcgen::date_time_ymd(2030, 1, 2);
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        let certs = parse_pem_certs(cert.pem().as_bytes()).expect("parses");
        assert_eq!(certs.len(), 1);
        assert_eq!(certs[0].subject, "CN=system:admin");
        assert_eq!(certs[0].not_after, 1_893_542_400);
        assert!(!certs[0].is_ca);
        assert!(parse_pem_certs(b"nothing").is_err());
    }
}
