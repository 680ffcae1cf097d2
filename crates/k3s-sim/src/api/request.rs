//! Request parsing: query strings, and API paths into a resource target.

use std::collections::HashMap;

use super::resources::{ResourceType, find};

/// Decodes `%XX` escapes and `+` (as space) in a query component.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

/// Parses a query string into a map (last value wins).
pub fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

/// What an API path names.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiPath {
    /// `/api/v1` or `/apis/<g>/<v>`: the resource list.
    Discovery {
        /// Group.
        group: String,
        /// Version.
        version: String,
    },
    /// `/apis/<g>`: one group.
    Group(String),
    /// A resource collection, object or subresource.
    Resource(Target),
}

/// A resource request target.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The resource type.
    pub rt: &'static ResourceType,
    /// Namespace from the path, if any.
    pub namespace: Option<String>,
    /// Object name, if any.
    pub name: Option<String>,
    /// Subresource (`status`, `eviction`), if any.
    pub sub: Option<String>,
}

/// Parses `/api/...` and `/apis/...` paths. `None` means no such resource.
pub fn parse_api_path(path: &str) -> Option<ApiPath> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g] => return Some(ApiPath::Group(g.to_string())),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    if rest.is_empty() {
        return Some(ApiPath::Discovery {
            group: group.to_string(),
            version: version.to_string(),
        });
    }
    let t = |plural: &str, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| {
        let rt = find(group, version, plural)?;
        if ns.is_some() && !rt.namespaced {
            return None;
        }
        if let Some(s) = sub
            && !rt.subresources.contains(&s)
        {
            return None;
        }
        Some(ApiPath::Resource(Target {
            rt,
            namespace: ns.map(str::to_string),
            name: name.map(str::to_string),
            sub: sub.map(str::to_string),
        }))
    };
    match rest {
        ["namespaces", ns, plural, more @ ..]
            if find(group, version, plural).is_some_and(|r| r.namespaced) =>
        {
            match more {
                [] => t(plural, Some(ns), None, None),
                [name] => t(plural, Some(ns), Some(name), None),
                [name, sub] => t(plural, Some(ns), Some(name), Some(sub)),
                _ => None,
            }
        }
        [plural] => t(plural, None, None, None),
        [plural, name] => t(plural, None, Some(name), None),
        [plural, name, sub] => t(plural, None, Some(name), Some(sub)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let Some(ApiPath::Resource(t)) =
            parse_api_path("/api/v1/namespaces/default/pods/web-1/eviction")
        else {
            panic!("eviction path")
        };
        assert_eq!(
            (
                t.rt.plural,
                t.namespace.as_deref(),
                t.name.as_deref(),
                t.sub.as_deref()
            ),
            ("pods", Some("default"), Some("web-1"), Some("eviction"))
        );
        let Some(ApiPath::Resource(t)) = parse_api_path("/api/v1/namespaces/kube-system") else {
            panic!("ns")
        };
        assert_eq!(
            (t.rt.plural, t.name.as_deref()),
            ("namespaces", Some("kube-system"))
        );
        let Some(ApiPath::Resource(t)) = parse_api_path("/api/v1/pods") else {
            panic!("all pods")
        };
        assert_eq!(t.namespace, None);
        assert_eq!(
            parse_api_path("/apis/policy/v1beta1"),
            Some(ApiPath::Discovery {
                group: "policy".into(),
                version: "v1beta1".into()
            })
        );
        assert!(parse_api_path("/api/v1/nodes/n1/eviction").is_none());
        assert!(parse_api_path("/api/v1/namespaces/x/nodes").is_none());
    }

    #[test]
    fn query_decoding() {
        let q = parse_query(Some(
            "fieldSelector=spec.nodeName%3Dn1&labelSelector=a+in+(x)&watch",
        ));
        assert_eq!(q["fieldSelector"], "spec.nodeName=n1");
        assert_eq!(q["labelSelector"], "a in (x)");
        assert_eq!(q["watch"], "");
    }
}
