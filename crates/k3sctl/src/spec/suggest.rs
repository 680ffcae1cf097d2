//! "did you mean `x`?" hints for unknown keys and values.

/// The candidate closest to `given`, if any is close enough to be a likely typo.
pub(super) fn closest<'a>(given: &str, expected: &[&'a str]) -> Option<&'a str> {
    expected
        .iter()
        .map(|candidate| {
            (
                strsim::jaro_winkler(&given.to_lowercase(), &candidate.to_lowercase()),
                *candidate,
            )
        })
        .filter(|(score, _)| *score >= 0.75)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// "did you mean `x`?" for the closest candidate, followed by the valid choices.
pub(super) fn suggest(given: &str, expected: &[&str]) -> String {
    let choices = expected
        .iter()
        .map(|candidate| format!("`{candidate}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match closest(given, expected) {
        Some(candidate) => format!("did you mean `{candidate}`? valid here: {choices}"),
        None => format!("valid here: {choices}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_key() {
        assert!(suggest("tlsSan", &["tlsSans", "disable"]).starts_with("did you mean `tlsSans`?"));
        assert!(suggest("zzz", &["tlsSans", "disable"]).starts_with("valid here:"));
        assert_eq!(closest("agnt", &["server", "agent"]), Some("agent"));
    }
}
