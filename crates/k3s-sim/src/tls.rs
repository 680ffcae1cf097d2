//! TLS for :6443. Like kube-apiserver, the handshake only *requests* a client certificate; the
//! certificate is verified afterwards (chain to the client CA, validity period), so an expired
//! client certificate gets an HTTP 401 instead of a handshake failure.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

/// Who a client certificate says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// CN.
    pub user: String,
    /// O values.
    pub groups: Vec<String>,
}

/// Errors building TLS configuration.
#[derive(Debug, thiserror::Error)]
#[error("TLS setup: {0}")]
pub struct TlsError(pub String);

/// Installs the ring crypto provider as the process default (once).
pub fn install_provider() {
    // Err only means a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses every certificate in a PEM bundle.
pub fn certs_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError(format!("bad certificate PEM: {e}")))
}

/// Parses a private key PEM.
pub fn key_from_pem(pem: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| TlsError(format!("bad private key PEM: {e}")))
}

/// A root store holding the CA certificates of a PEM bundle.
pub fn roots(ca_pem: &str) -> Result<Arc<RootCertStore>, TlsError> {
    let mut store = RootCertStore::empty();
    for c in certs_from_pem(ca_pem)? {
        store
            .add(c)
            .map_err(|e| TlsError(format!("bad CA certificate: {e}")))?;
    }
    Ok(Arc::new(store))
}

#[derive(Debug)]
struct RequestClientCert {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Verified per request by [`ClientAuth::identify`], after the handshake.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Verifies client certificates against the client CA.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    verifier: Arc<dyn ClientCertVerifier>,
}

impl ClientAuth {
    /// Builds a verifier for certificates issued by `client_ca_pem`.
    pub fn new(client_ca_pem: &str) -> Result<Self, TlsError> {
        let verifier =
            WebPkiClientVerifier::builder_with_provider(roots(client_ca_pem)?, provider())
                .build()
                .map_err(|e| TlsError(e.to_string()))?;
        Ok(Self { verifier })
    }

    /// The identity of a verified client certificate chain, or why it is not accepted.
    pub fn identify(&self, chain: &[CertificateDer<'_>]) -> Result<Identity, String> {
        let (leaf, rest) = chain.split_first().ok_or("no client certificate")?;
        self.verifier
            .verify_client_cert(leaf, rest, UnixTime::now())
            .map_err(|e| e.to_string())?;
        let (_, cert) = x509_parser::parse_x509_certificate(leaf).map_err(|e| e.to_string())?;
        let subject = cert.subject();
        let user = subject
            .iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok())
            .unwrap_or("")
            .to_string();
        let groups = subject
            .iter_organization()
            .filter_map(|a| a.as_str().ok().map(str::to_string))
            .collect();
        Ok(Identity { user, groups })
    }
}

/// The rustls server configuration for :6443 (HTTP/1.1 only).
pub fn server_config(
    serving_chain_pem: &str,
    key_pem: &str,
    client_auth: &ClientAuth,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = certs_from_pem(serving_chain_pem)?;
    let key = key_from_pem(key_pem)?;
    let verifier = Arc::new(RequestClientCert {
        inner: client_auth.verifier.clone(),
    });
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
