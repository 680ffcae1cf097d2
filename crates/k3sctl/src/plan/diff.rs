//! Unified diffs of managed files for plans.

use similar::TextDiff;

/// A unified diff from `old` (absent: empty) to `new`, labelled with the path.
pub fn unified_diff(path: &str, old: Option<&str>, new: &str) -> String {
    let old = old.unwrap_or_default();
    if old == new {
        return String::new();
    }
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(2)
        .header(&format!("a{path}"), &format!("b{path}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_changed_lines_with_context() {
        let diff = unified_diff(
            "/etc/x.yaml",
            Some("a: 1\nb: 2\nc: 3\n"),
            "a: 1\nb: 5\nc: 3\n",
        );
        assert_eq!(
            diff,
            "--- a/etc/x.yaml\n+++ b/etc/x.yaml\n@@ -1,3 +1,3 @@\n a: 1\n-b: 2\n+b: 5\n c: 3\n"
        );
        assert_eq!(unified_diff("/x", Some("same\n"), "same\n"), "");
        assert!(unified_diff("/x", None, "new\n").contains("+new"));
    }
}
