//! The cluster join token: `K10<sha256 of the cluster CA PEM>::<user>:<password>` (the secure
//! form K3s writes to /var/lib/rancher/k3s/server/token), or a bare password.

use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// Where the first server writes the token.
pub const SERVER_TOKEN_PATH: &str = concat!(super::ports::server_dir!(), "/token");

/// The node password K3s creates at a node's first start (its hash is kept in Secret
/// `kube-system/<node>.node-password.k3s`).
pub const NODE_PASSWORD_PATH: &str = "/etc/rancher/node/password";

/// A parsed join token. Its `Debug` shows only the CA hash and user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// sha256 hex of the cluster CA bundle, in the secure form.
    pub ca_hash: Option<String>,
    /// `server` or `node`, in the secure form.
    pub user: Option<String>,
    /// The whole token, as K3S_TOKEN takes it.
    pub raw: Secret,
}

/// Why a token file's content is not a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The file was empty.
    #[error("the token file is empty; the server has not finished its first start")]
    Empty,
    /// The secure form is malformed.
    #[error("the token starts with K10 but is not K10<sha256 hex>::<user>:<password>")]
    Malformed,
    /// The token has characters that cannot go into an env file.
    #[error("the token contains whitespace or control characters")]
    BadCharacters,
}

impl JoinToken {
    /// Parses the content of the server's token file.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(TokenError::Empty);
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(TokenError::BadCharacters);
        }
        let Some(rest) = text.strip_prefix("K10") else {
            return Ok(Self {
                ca_hash: None,
                user: None,
                raw: Secret::new(text),
            });
        };
        let (hash, credentials) = rest.split_once("::").ok_or(TokenError::Malformed)?;
        let (user, password) = credentials.split_once(':').ok_or(TokenError::Malformed)?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TokenError::Malformed);
        }
        if user.is_empty() || password.is_empty() {
            return Err(TokenError::Malformed);
        }
        Ok(Self {
            ca_hash: Some(hash.to_ascii_lowercase()),
            user: Some(user.to_string()),
            raw: Secret::new(text),
        })
    }

    /// Whether the token pins this CA bundle (true for a bare password, which pins nothing).
    pub fn matches_ca(&self, ca_pem: &[u8]) -> bool {
        match &self.ca_hash {
            Some(hash) => *hash == hex::encode(Sha256::digest(ca_pem)),
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_secure_form() {
        let ca = b"-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n";
        let hash = hex::encode(Sha256::digest(ca));
        let token =
            JoinToken::parse(&format!("K10{hash}::server:0123456789abcdef\n")).expect("parses");
        assert_eq!(token.user.as_deref(), Some("server"));
        assert!(token.matches_ca(ca));
        assert!(!token.matches_ca(b"other"));
        assert!(!format!("{token:?}").contains("0123456789abcdef"));
        assert_eq!(
            token.raw.expose(),
            format!("K10{hash}::server:0123456789abcdef")
        );
    }

    #[test]
    fn bare_password_and_errors() {
        let bare = JoinToken::parse("just-a-password").expect("bare");
        assert_eq!(bare.ca_hash, None);
        assert!(bare.matches_ca(b"anything"));
        assert_eq!(JoinToken::parse("  \n"), Err(TokenError::Empty));
        assert_eq!(
            JoinToken::parse("K10abc::server:pw"),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            JoinToken::parse(&format!("K10{}server:pw", "a".repeat(64))),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            JoinToken::parse("two words"),
            Err(TokenError::BadCharacters)
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,120}") {
            let _ = JoinToken::parse(&text);
        }
    }
}
