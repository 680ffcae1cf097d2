//! Wall-clock helpers: the Kubernetes timestamp format and short human durations.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The current UTC time.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Formats a time as Kubernetes does in objects: RFC 3339, UTC, whole seconds (`2026-01-02T03:04:05Z`).
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// The current time in the Kubernetes timestamp format.
pub fn now_rfc3339() -> String {
    rfc3339(now())
}

/// The current time as a Kubernetes MicroTime (`2026-01-02T03:04:05.123456Z`).
pub fn now_micro() -> String {
    let t = now();
    let secs = rfc3339(t);
    format!("{}.{:06}Z", secs.trim_end_matches('Z'), t.microsecond())
}

/// Parses an RFC 3339 timestamp.
pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Seconds elapsed since an RFC 3339 timestamp (0 when unparsable or in the future).
pub fn seconds_since(s: &str) -> i64 {
    parse_rfc3339(s)
        .map(|t| (now() - t).whole_seconds().max(0))
        .unwrap_or(0)
}

/// Formats an age like kubectl's AGE column (`45s`, `3m12s`, `5h`, `2d3h`).
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    if s < 120 {
        return format!("{s}s");
    }
    let m = s / 60;
    if m < 10 && s % 60 != 0 {
        return format!("{m}m{}s", s % 60);
    }
    if m < 180 {
        return format!("{m}m");
    }
    let h = m / 60;
    if h < 8 && m % 60 != 0 {
        return format!("{h}h{}m", m % 60);
    }
    if h < 48 {
        return format!("{h}h");
    }
    let d = h / 24;
    if d < 8 && h % 24 != 0 {
        return format!("{d}d{}h", h % 24);
    }
    format!("{d}d")
}

/// Parses a duration like `30s`, `5m`, `2h`, `1h30m`, `1500ms`; a bare number means seconds.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Some(std::time::Duration::from_secs(n));
    }
    let mut total_ms: u64 = 0;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut seen = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        let unit_ms = match c {
            'h' => 3_600_000,
            'd' => 86_400_000,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1
            }
            'm' => 60_000,
            's' => 1000,
            _ => return None,
        };
        total_ms = total_ms.checked_add(n.checked_mul(unit_ms)?)?;
        seen = true;
    }
    if !num.is_empty() || !seen {
        return None;
    }
    Some(std::time::Duration::from_millis(total_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(
            parse_duration("30s"),
            Some(std::time::Duration::from_secs(30))
        );
        assert_eq!(
            parse_duration("1h30m"),
            Some(std::time::Duration::from_secs(5400))
        );
        assert_eq!(
            parse_duration("1500ms"),
            Some(std::time::Duration::from_millis(1500))
        );
        assert_eq!(parse_duration("7"), Some(std::time::Duration::from_secs(7)));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("5"), Some(std::time::Duration::from_secs(5)));
        assert_eq!(parse_duration("5q"), None);
    }

    #[test]
    fn ages_like_kubectl() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(192), "3m12s");
        assert_eq!(human_duration(3600 * 5), "5h");
        assert_eq!(human_duration(86400 * 2 + 3600 * 3), "2d3h");
    }

    #[test]
    fn timestamps_round_trip() {
        let s = now_rfc3339();
        assert!(s.ends_with('Z'), "{s}");
        assert!(parse_rfc3339(&s).is_some());
        let micro = now_micro();
        assert!(parse_rfc3339(&micro).is_some(), "{micro}");
        assert_eq!(micro.len(), 27, "{micro}");
    }
}
