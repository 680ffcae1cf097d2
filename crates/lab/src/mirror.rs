//! Picks the Debian mirror for debootstrap from the machine's apt sources (deb822 `.sources`
//! files and one-line `sources.list`), so the image comes from where apt already fetches.

use std::path::Path;

/// Environment variable forcing a mirror URL.
pub const MIRROR_ENV: &str = "K3SCTL_LAB_MIRROR";
/// Used when no apt source names the suite.
pub const FALLBACK_MIRROR: &str = "http://deb.debian.org/debian";

/// The mirror to bootstrap `suite` from.
pub fn mirror_for(suite: &str) -> String {
    if let Some(m) = std::env::var(MIRROR_ENV).ok().filter(|m| !m.is_empty()) {
        return m;
    }
    let mut texts = Vec::new();
    if let Ok(dir) = fs_err::read_dir("/etc/apt/sources.list.d") {
        let mut files: Vec<_> = dir.flatten().map(|e| e.path()).collect();
        files.sort();
        texts.extend(files.into_iter().filter_map(|p| read_source(&p)));
    }
    texts.extend(read_source(Path::new("/etc/apt/sources.list")));
    texts
        .iter()
        .find_map(|(deb822, text)| {
            if *deb822 {
                from_deb822(text, suite)
            } else {
                from_one_line(text, suite)
            }
        })
        .unwrap_or_else(|| FALLBACK_MIRROR.to_owned())
}

fn read_source(path: &Path) -> Option<(bool, String)> {
    let name = path.file_name()?.to_str()?;
    let deb822 = name.ends_with(".sources");
    if !deb822 && !name.ends_with(".list") {
        return None;
    }
    fs_err::read_to_string(path).ok().map(|t| (deb822, t))
}

/// First `URIs` of a `Types: deb` stanza whose `Suites` include exactly `suite`.
pub fn from_deb822(text: &str, suite: &str) -> Option<String> {
    text.split("\n\n").find_map(|stanza| {
        let field = |key: &str| {
            stanza.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(key)
                    .then(|| v.trim().to_owned())
            })
        };
        let is_deb = field("Types")?.split_whitespace().any(|t| t == "deb");
        let has_suite = field("Suites")?.split_whitespace().any(|s| s == suite);
        (is_deb && has_suite)
            .then(|| field("URIs"))
            .flatten()
            .and_then(|u| u.split_whitespace().next().map(str::to_owned))
    })
}

/// URI of the first `deb URI suite ...` line (options in brackets allowed).
pub fn from_one_line(text: &str, suite: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.split('#').next()?.trim();
        let rest = line.strip_prefix("deb ")?.trim_start();
        let rest = if rest.starts_with('[') {
            rest.split_once(']')?.1.trim_start()
        } else {
            rest
        };
        let mut words = rest.split_whitespace();
        let uri = words.next()?;
        (words.next()? == suite).then(|| uri.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_picks_the_stanza_with_the_exact_suite() {
        let text = "Types: deb\nURIs: http://sec.example/debian-security\nSuites: bookworm-security\n\n\
                    Types: deb\n# comment\nURIs: http://deb.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n";
        assert_eq!(
            from_deb822(text, "bookworm").as_deref(),
            Some("http://deb.example/debian")
        );
        assert_eq!(from_deb822(text, "trixie"), None);
    }

    #[test]
    fn one_line_sources_skip_comments_and_options() {
        let text = "# deb http://old.example/debian bookworm main\n\
                    deb-src http://src.example/debian bookworm main\n\
                    deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n";
        assert_eq!(
            from_one_line(text, "bookworm").as_deref(),
            Some("http://m.example/debian")
        );
    }
}
