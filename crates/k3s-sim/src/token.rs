//! K3s join tokens. The secure form is `K10<sha256 hex of the CA bundle>::<user>:<password>`; a
//! bare string is a password that trusts any CA.

use sha2::Digest;

/// A parsed token.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// sha256 hex of the cluster CA PEM, when the token is in secure form.
    pub ca_hash: Option<String>,
    /// `server` or `node` in the secure form.
    pub user: Option<String>,
    /// The shared secret.
    pub password: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("ca_hash", &self.ca_hash)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// The hash a secure token carries: sha256 hex of the CA PEM bytes.
pub fn ca_hash(ca_pem: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(ca_pem))
}

/// Checks a CA fetched from `/cacerts` against the token: `Err` with K3s's mismatch detail
/// when a secure token's hash differs; a short token trusts any CA, with K3s's warning.
pub fn verify_ca(token: &Token, ca_pem: &str) -> Result<(), String> {
    let Some(want) = &token.ca_hash else {
        crate::log::warn(
            "Cluster CA certificate is not trusted by the host CA bundle, but the token does not include a CA hash. Use the full token from the server's node-token file to enable Cluster CA validation.",
        );
        return Ok(());
    };
    let got = ca_hash(ca_pem.as_bytes());
    if &got == want {
        Ok(())
    } else {
        Err(format!(
            "failed to validate token: token CA hash does not match the Cluster CA certificate hash: {got} != {want}"
        ))
    }
}

/// Parses a token string.
pub fn parse(raw: &str) -> Token {
    let raw = raw.trim();
    if let Some(rest) = raw.strip_prefix("K10")
        && let Some((hash, creds)) = rest.split_once("::")
        && let Some((user, password)) = creds.split_once(':')
    {
        return Token {
            ca_hash: Some(hash.to_string()),
            user: Some(user.to_string()),
            password: password.to_string(),
        };
    }
    Token {
        ca_hash: None,
        user: None,
        password: raw.to_string(),
    }
}

/// Formats the secure form.
pub fn format_secure(ca_pem: &[u8], user: &str, password: &str) -> String {
    format!("K10{}::{user}:{password}", ca_hash(ca_pem))
}

/// A fresh random password (32 hex characters), like the one k3s generates.
pub fn random_password() -> String {
    hex::encode(crate::random::bytes::<16>())
}

/// The fingerprint stored with bootstrap data to recognise the token it was created with.
pub fn bootstrap_fingerprint(password: &str) -> String {
    hex::encode(sha2::Sha256::digest(
        format!("k3s-sim bootstrap {password}").as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_and_bare_forms() {
        let t = parse("K10abc::server:s3cret");
        assert_eq!(t.ca_hash.as_deref(), Some("abc"));
        assert_eq!(t.user.as_deref(), Some("server"));
        assert_eq!(t.password, "s3cret");
        let bare = parse("plain");
        assert_eq!(bare.ca_hash, None);
        assert_eq!(bare.password, "plain");
        let s = format_secure(b"pem", "server", "pw");
        assert_eq!(parse(&s).ca_hash.as_deref(), Some(ca_hash(b"pem").as_str()));
    }

    #[test]
    fn debug_hides_the_password() {
        let t = parse("K10abc::server:s3cret");
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}
