//! The join endpoint as seen from a joining host: parsing the URL and the message when it
//! cannot be reached (the "master IP drift" failure, reported instead of waited on).

use std::time::Duration;

use crate::k3s::ports::API_PORT;

/// How long a join endpoint probe may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Splits `https://host:port/...` into host and port (default [`API_PORT`]).
pub fn endpoint_host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = after
            .strip_prefix(':')
            .map_or(Some(API_PORT), |p| p.parse().ok())?;
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_string(), port.parse().ok()?)),
        None => Some((authority.to_string(), API_PORT)),
    }
}

/// A message for a joining host that cannot reach the endpoint.
pub fn unreachable_endpoint(host: &str, endpoint: &str, detail: &str) -> String {
    format!(
        "{host}: cannot reach the join endpoint {endpoint} ({detail})\n  hint: check \
         cluster.registrationAddress (has the server's address changed?) and firewalls between this host \
         and the first server"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_forms() {
        assert_eq!(
            endpoint_host_port("https://10.0.0.1:6443"),
            Some(("10.0.0.1".into(), 6443))
        );
        assert_eq!(
            endpoint_host_port("https://k3s.example"),
            Some(("k3s.example".into(), 6443))
        );
        assert_eq!(
            endpoint_host_port("https://[fd00::1]:7443/"),
            Some(("fd00::1".into(), 7443))
        );
        assert_eq!(endpoint_host_port("https://x:notaport"), None);
    }
}
