//! The K3s channel server: `GET <url>` lists channels as JSON, `GET <url>/<name>` redirects to
//! a release URL whose last path element is the version.

use super::version::{K3sVersion, VersionParseError};

/// Default channel server.
pub const DEFAULT_CHANNEL_URL: &str = "https://update.k3s.io/v1-release/channels";

/// One channel and the version it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// Channel name (`stable`, `latest`, `v1.33`).
    pub name: String,
    /// The newest version on that channel.
    pub latest: K3sVersion,
}

/// Why a channel answer could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The listing is not JSON or has no `data` list.
    #[error("the channel server's answer is not a channel list: {0}")]
    NotAList(String),
    /// The channel is not in the listing.
    #[error("channel `{name}` not found; known channels: {known}")]
    Unknown {
        /// The requested name.
        name: String,
        /// The names the server offers.
        known: String,
    },
    /// The redirect target's last path element is not a version.
    #[error("the channel redirect `{location}` does not end in a version: {source}")]
    BadRedirect {
        /// The Location header.
        location: String,
        /// The parse failure.
        source: VersionParseError,
    },
}

/// Parses the channel listing leniently: entries without a name or a parsable `latest` are
/// skipped, unknown fields (such as `resourceType`, `links`) are ignored.
pub fn parse_channels(json: &str) -> Result<Vec<Channel>, ChannelError> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| ChannelError::NotAList(e.to_string()))?;
    let data = value
        .get("data")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| ChannelError::NotAList("no `data` list".to_string()))?;
    let channels = data
        .iter()
        .filter_map(|entry| {
            let name = entry.get("name").or_else(|| entry.get("id"))?.as_str()?;
            let latest = entry.get("latest")?.as_str()?.parse().ok()?;
            Some(Channel {
                name: name.to_string(),
                latest,
            })
        })
        .collect();
    Ok(channels)
}

/// Finds a channel by name in a parsed listing.
pub fn find_channel(channels: &[Channel], name: &str) -> Result<K3sVersion, ChannelError> {
    channels
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.latest)
        .ok_or_else(|| ChannelError::Unknown {
            name: name.to_string(),
            known: channels
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The URL that redirects to a channel's latest release.
pub fn channel_redirect_url(channel_url: &str, name: &str) -> String {
    format!("{}/{}", channel_url.trim_end_matches('/'), name)
}

/// Reads the version from a channel redirect's `Location` (its last path element, which may
/// carry `%2B` for `+`).
pub fn version_from_redirect(location: &str) -> Result<K3sVersion, ChannelError> {
    let path = location.split(['?', '#']).next().unwrap_or_default();
    let last = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let decoded = last.replace("%2B", "+").replace("%2b", "+");
    decoded.parse().map_err(|source| ChannelError::BadRedirect {
        location: location.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LISTING: &str = r#"{"type":"collection","links":{"self":"…"},"actions":{},
      "resourceType":"channels","data":[
        {"id":"stable","type":"channel","links":{},"name":"stable","latest":"v1.33.5+k3s1"},
        {"id":"latest","name":"latest","latest":"v1.34.3+k3s1","latestRegexp":".*"},
        {"id":"testing","name":"testing","latest":"v1.35.0-rc1+k3s1"},
        {"id":"v1.34","name":"v1.34","latest":"v1.34.3+k3s1"},
        {"id":"broken","name":"broken","latest":"not-a-version"},
        {"id":"nameless"}
      ]}"#;

    #[test]
    fn lenient_listing_parse() {
        let channels = parse_channels(LISTING).expect("parses");
        assert_eq!(channels.len(), 4);
        assert_eq!(
            find_channel(&channels, "stable")
                .expect("found")
                .to_string(),
            "v1.33.5+k3s1"
        );
        assert_eq!(
            find_channel(&channels, "v1.34").expect("found").to_string(),
            "v1.34.3+k3s1"
        );
        let err = find_channel(&channels, "broken").expect_err("skipped entry");
        assert!(
            err.to_string().contains("stable, latest, testing, v1.34"),
            "{err}"
        );
    }

    #[test]
    fn listing_without_data_is_an_error() {
        assert!(matches!(
            parse_channels("{}"),
            Err(ChannelError::NotAList(_))
        ));
        assert!(matches!(
            parse_channels("<html>"),
            Err(ChannelError::NotAList(_))
        ));
    }

    #[test]
    fn redirect_forms() {
        for location in [
            "https://github.com/k3s-io/k3s/releases/tag/v1.34.3%2Bk3s1",
            "https://github.com/k3s-io/k3s/releases/tag/v1.34.3+k3s1",
            "/releases/tag/v1.34.3+k3s1/?x=1",
        ] {
            assert_eq!(
                version_from_redirect(location).expect(location).to_string(),
                "v1.34.3+k3s1"
            );
        }
        assert!(version_from_redirect("https://example.com/releases").is_err());
        assert_eq!(
            channel_redirect_url("http://127.0.0.1:9/v1-release/channels/", "stable"),
            "http://127.0.0.1:9/v1-release/channels/stable"
        );
    }

    proptest! {
        #[test]
        fn parsers_never_panic(text in "\\PC{0,60}") {
            let _ = parse_channels(&text);
            let _ = version_from_redirect(&text);
        }
    }
}
