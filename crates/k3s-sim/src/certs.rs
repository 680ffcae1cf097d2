//! The cluster PKI under `server/tls`: a server CA and a client CA (10 years), the serving
//! certificate for :6443 and the admin client certificate (365 days, or `K3S_SIM_CERT_LIFETIME`),
//! and kubelet client certificates issued to agents.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::OffsetDateTime;

use crate::paths::write_atomic;

/// Environment knob: lifetime of leaf certificates (e.g. `30s`), so tests can watch them expire.
pub const LIFETIME_ENV: &str = "K3S_SIM_CERT_LIFETIME";
/// Leaf certificates are renewed at start when they expire within this window (K3s: 120 days).
pub const RENEW_WINDOW: Duration = Duration::from_secs(120 * 24 * 3600);
const DEFAULT_LEAF_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
const CA_LIFETIME: Duration = Duration::from_secs(3650 * 24 * 3600);

/// Errors creating or loading certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// File I/O.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Certificate generation or parsing.
    #[error("{path}: {message}")]
    Pki {
        /// File.
        path: String,
        /// What failed.
        message: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CertError + '_ {
    move |source| CertError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn pki_err(path: &Path, e: impl std::fmt::Display) -> CertError {
    CertError::Pki {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// The lifetime for new leaf certificates: `K3S_SIM_CERT_LIFETIME` or 365 days.
pub fn leaf_lifetime() -> Duration {
    std::env::var(LIFETIME_ENV)
        .ok()
        .and_then(|v| crate::clock::parse_duration(&v))
        .unwrap_or(DEFAULT_LEAF_LIFETIME)
}

/// A CA: its PEM certificate and key, usable to sign leaves.
pub struct Ca {
    /// The CA certificate (PEM) exactly as stored on disk.
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its private key in PEM.
#[derive(Clone)]
pub struct Leaf {
    /// Certificate PEM.
    pub cert_pem: String,
    /// Private key PEM.
    pub key_pem: String,
}

/// What a leaf certificate is for.
#[derive(Debug, Clone)]
pub enum LeafKind {
    /// TLS serving with these DNS names and IPs.
    Serving(Vec<String>),
    /// TLS server and client at once (etcd member certificates) with this common name and
    /// these DNS names and IPs.
    ServerClient {
        /// CN.
        cn: String,
        /// SANs.
        sans: Vec<String>,
    },
    /// TLS client with this common name and organisation.
    Client {
        /// CN (the user name).
        cn: String,
        /// O (the group), if any.
        org: Option<String>,
    },
}

/// Loads the CA `<dir>/<name>.{crt,key}`, creating it (10 years, CN `<cn_prefix>@<unix time>`)
/// when missing.
pub fn load_or_create_ca(dir: &Path, name: &str, cn_prefix: &str) -> Result<Ca, CertError> {
    let crt = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    if crt.exists() && key.exists() {
        let cert_pem = fs_err::read_to_string(&crt).map_err(io_err(&crt))?;
        let key_pem = fs_err::read_to_string(&key).map_err(io_err(&key))?;
        let kp = KeyPair::from_pem(&key_pem).map_err(|e| pki_err(&key, e))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, kp).map_err(|e| pki_err(&crt, e))?;
        return Ok(Ca { cert_pem, issuer });
    }
    let kp = KeyPair::generate().map_err(|e| pki_err(&key, e))?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| pki_err(&crt, e))?;
    let now = OffsetDateTime::now_utc();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        format!("{cn_prefix}@{}", now.unix_timestamp()),
    );
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - Duration::from_secs(60);
    params.not_after = now + CA_LIFETIME;
    let cert = params.self_signed(&kp).map_err(|e| pki_err(&crt, e))?;
    let cert_pem = cert.pem();
    write_atomic(&key, kp.serialize_pem().as_bytes(), 0o600).map_err(io_err(&key))?;
    write_atomic(&crt, cert_pem.as_bytes(), 0o644).map_err(io_err(&crt))?;
    Ok(Ca {
        cert_pem,
        issuer: Issuer::new(params, kp),
    })
}

use rustls::pki_types::pem::PemObject;

/// Issues a leaf certificate signed by `ca`, valid from now for [`leaf_lifetime`].
pub fn issue(ca: &Ca, kind: &LeafKind) -> Result<Leaf, CertError> {
    let here = Path::new("(new certificate)");
    let kp = KeyPair::generate().map_err(|e| pki_err(here, e))?;
    let (sans, cn, org, eku) = match kind {
        LeafKind::Serving(sans) => (
            sans.clone(),
            "kube-apiserver".to_string(),
            None,
            vec![ExtendedKeyUsagePurpose::ServerAuth],
        ),
        LeafKind::ServerClient { cn, sans } => (
            sans.clone(),
            cn.clone(),
            None,
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        ),
        LeafKind::Client { cn, org } => (
            Vec::new(),
            cn.clone(),
            org.clone(),
            vec![ExtendedKeyUsagePurpose::ClientAuth],
        ),
    };
    let mut params = CertificateParams::new(sans).map_err(|e| pki_err(here, e))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(o) = org {
        params.distinguished_name.push(DnType::OrganizationName, o);
    }
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = eku;
    params.use_authority_key_identifier_extension = true;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::from_secs(5);
    params.not_after = now + leaf_lifetime();
    let cert = params
        .signed_by(&kp, &ca.issuer)
        .map_err(|e| pki_err(here, e))?;
    Ok(Leaf {
        cert_pem: cert.pem(),
        key_pem: kp.serialize_pem(),
    })
}

/// The expiry (not-after) and subject of a PEM certificate.
pub fn inspect(pem: &str) -> Option<(OffsetDateTime, String, Vec<String>)> {
    let der = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    let not_after = cert.validity().not_after.to_datetime();
    let subject = cert.subject().to_string();
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(d) => sans.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(ip) => {
                    let s = match ip.len() {
                        4 => std::net::IpAddr::from(<[u8; 4]>::try_from(*ip).unwrap_or([0; 4]))
                            .to_string(),
                        16 => std::net::IpAddr::from(<[u8; 16]>::try_from(*ip).unwrap_or([0; 16]))
                            .to_string(),
                        _ => continue,
                    };
                    sans.push(s);
                }
                _ => {}
            }
        }
    }
    Some((not_after, subject, sans))
}

/// The server PKI on disk.
pub struct ServerPki {
    /// server/tls.
    pub dir: PathBuf,
    /// Signs the serving certificate; its PEM is what /cacerts returns and the token hashes.
    pub server_ca: Ca,
    /// Signs client certificates (admin, kubelets).
    pub client_ca: Ca,
    /// The :6443 serving certificate.
    pub serving: Leaf,
    /// The admin client certificate (CN system:admin, O system:masters).
    pub admin: Leaf,
}

/// The leaf files: `(base name, description)`.
pub const LEAVES: &[(&str, &str)] = &[
    ("serving-kube-apiserver", "kube-apiserver serving"),
    ("client-admin", "admin client"),
];

fn leaf_needs_renewal(crt: &Path, wanted_sans: Option<&[String]>) -> bool {
    let Ok(pem) = fs_err::read_to_string(crt) else {
        return true;
    };
    let Some((not_after, _, sans)) = inspect(&pem) else {
        return true;
    };
    if let Some(wanted) = wanted_sans
        && wanted.iter().any(|w| !sans.contains(w))
    {
        return true;
    }
    let window = leaf_lifetime().min(RENEW_WINDOW);
    not_after - OffsetDateTime::now_utc() < window
}

/// Loads the leaf `<dir>/<base>.{crt,key}`, issuing it when missing, expiring within the
/// renewal window, lacking a wanted SAN, or when `force` is set.
pub fn load_or_issue(
    dir: &Path,
    base: &str,
    ca: &Ca,
    kind: &LeafKind,
    force: bool,
) -> Result<Leaf, CertError> {
    let crt = dir.join(format!("{base}.crt"));
    let key = dir.join(format!("{base}.key"));
    let wanted = match kind {
        LeafKind::Serving(s) | LeafKind::ServerClient { sans: s, .. } => Some(s.as_slice()),
        LeafKind::Client { .. } => None,
    };
    if !force && key.exists() && !leaf_needs_renewal(&crt, wanted) {
        let cert_pem = fs_err::read_to_string(&crt).map_err(io_err(&crt))?;
        let key_pem = fs_err::read_to_string(&key).map_err(io_err(&key))?;
        return Ok(Leaf { cert_pem, key_pem });
    }
    let leaf = issue(ca, kind)?;
    write_atomic(&key, leaf.key_pem.as_bytes(), 0o600).map_err(io_err(&key))?;
    write_atomic(&crt, leaf.cert_pem.as_bytes(), 0o644).map_err(io_err(&crt))?;
    Ok(leaf)
}

/// Loads the server PKI, creating CAs on first start and issuing leaf certificates that are
/// missing, expire within the renewal window, or lack a wanted SAN.
pub fn load_server_pki(dir: &Path, serving_sans: &[String]) -> Result<ServerPki, CertError> {
    fs_err::create_dir_all(dir).map_err(io_err(dir))?;
    let server_ca = load_or_create_ca(dir, "server-ca", "k3s-server-ca")?;
    let client_ca = load_or_create_ca(dir, "client-ca", "k3s-client-ca")?;
    let serving = load_or_issue(
        dir,
        "serving-kube-apiserver",
        &server_ca,
        &LeafKind::Serving(serving_sans.to_vec()),
        false,
    )?;
    let admin_kind = LeafKind::Client {
        cn: "system:admin".into(),
        org: Some("system:masters".into()),
    };
    let admin = load_or_issue(dir, "client-admin", &client_ca, &admin_kind, false)?;
    Ok(ServerPki {
        dir: dir.to_path_buf(),
        server_ca,
        client_ca,
        serving,
        admin,
    })
}

/// The SANs of the serving certificate, as K3s puts them.
pub fn serving_sans(
    hostname: &str,
    node_ips: &[String],
    tls_sans: &[String],
    cluster_domain: &str,
) -> Vec<String> {
    let mut out: Vec<String> = vec![
        "127.0.0.1".into(),
        "::1".into(),
        "localhost".into(),
        hostname.to_string(),
        "10.43.0.1".into(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        format!("kubernetes.default.svc.{cluster_domain}"),
    ];
    for s in node_ips.iter().chain(tls_sans) {
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_reuses_and_rotates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sans = serving_sans(
            "node1",
            &["10.0.0.5".into()],
            &["api.example.com".into()],
            "cluster.local",
        );
        let first = load_server_pki(dir.path(), &sans).expect("pki");
        let (_, subject, got_sans) = inspect(&first.serving.cert_pem).expect("inspect");
        assert!(subject.contains("kube-apiserver"));
        for want in [
            "127.0.0.1",
            "localhost",
            "node1",
            "10.0.0.5",
            "api.example.com",
            "kubernetes.default.svc.cluster.local",
        ] {
            assert!(
                got_sans.iter().any(|s| s == want),
                "missing {want} in {got_sans:?}"
            );
        }
        let again = load_server_pki(dir.path(), &sans).expect("pki again");
        assert_eq!(
            first.serving.cert_pem, again.serving.cert_pem,
            "valid certs are reused"
        );
        assert_eq!(first.server_ca.cert_pem, again.server_ca.cert_pem);
        // `k3s certificate rotate` deletes the leaves; the next start issues them again.
        for leaf in ["serving-kube-apiserver", "client-admin"] {
            fs_err::remove_file(dir.path().join(format!("{leaf}.crt"))).expect("rm crt");
            fs_err::remove_file(dir.path().join(format!("{leaf}.key"))).expect("rm key");
        }
        let rotated = load_server_pki(dir.path(), &sans).expect("pki rotated");
        assert_ne!(rotated.serving.cert_pem, first.serving.cert_pem);
        assert_eq!(
            rotated.server_ca.cert_pem, first.server_ca.cert_pem,
            "CAs survive rotation"
        );
        let more = serving_sans(
            "node1",
            &["10.0.0.5".into()],
            &["new.example.com".into()],
            "cluster.local",
        );
        let grown = load_server_pki(dir.path(), &more).expect("pki new san");
        let (_, _, grown_sans) = inspect(&grown.serving.cert_pem).expect("inspect");
        assert!(grown_sans.iter().any(|s| s == "new.example.com"));
    }
}
