//! The ownership records k3sctl keeps on a Node (`k3sctl.io/taints`, `k3sctl.io/labels`): a
//! comma-separated annotation naming what k3sctl set, so that it only ever removes its own.
//! One reading and one writing of that record for taints and labels alike.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Node;
use serde_json::json;

/// Pure: the entries of an ownership annotation's value (blanks and spaces dropped).
pub fn owned_set(annotation: Option<&str>) -> BTreeSet<String> {
    annotation
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The record `key` on `node`.
pub(super) fn recorded(node: &Node, key: &str) -> BTreeSet<String> {
    owned_set(
        node.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .map(String::as_str),
    )
}

/// The annotation value of a record in a merge patch: `null` (removed) when empty.
pub(super) fn record_value(owned: &BTreeSet<String>) -> serde_json::Value {
    if owned.is_empty() {
        serde_json::Value::Null
    } else {
        json!(
            owned
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(",")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_an_empty_one_is_removed() {
        let owned = owned_set(Some(" zone, ,team "));
        assert_eq!(
            owned,
            BTreeSet::from(["team".to_string(), "zone".to_string()])
        );
        assert_eq!(record_value(&owned), json!("team,zone"));
        assert_eq!(record_value(&BTreeSet::new()), serde_json::Value::Null);
        assert_eq!(owned_set(None), BTreeSet::new());
    }
}
