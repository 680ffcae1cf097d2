//! PodDisruptionBudgets: which ones select a pod (pure label-selector matching) and how to name
//! them in a message.

use std::collections::BTreeMap;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Does `selector` select an object with `labels`? An empty selector selects everything.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .as_ref()
        .is_none_or(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let by_expressions = selector.match_expressions.as_ref().is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            let value = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
    });
    by_labels && by_expressions
}

/// The PDBs in `pdbs` that cover a pod in `namespace` with `labels`. A PDB without a selector
/// selects nothing (policy/v1).
pub fn matching_pdbs<'a>(
    pdbs: &'a [PodDisruptionBudget],
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Vec<&'a PodDisruptionBudget> {
    pdbs.iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
        .filter(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .is_some_and(|s| selector_matches(s, labels))
        })
        .collect()
}

/// `namespace/name (minAvailable 2, 2 healthy of 3, 0 disruptions allowed)`.
pub fn describe_pdb(pdb: &PodDisruptionBudget) -> String {
    let name = format!(
        "PodDisruptionBudget {}/{}",
        pdb.metadata.namespace.as_deref().unwrap_or_default(),
        pdb.metadata.name.as_deref().unwrap_or_default()
    );
    let mut parts = Vec::new();
    if let Some(spec) = &pdb.spec {
        if let Some(m) = &spec.min_available {
            parts.push(format!("minAvailable {}", int_or_string(m)));
        }
        if let Some(m) = &spec.max_unavailable {
            parts.push(format!("maxUnavailable {}", int_or_string(m)));
        }
    }
    if let Some(st) = &pdb.status {
        parts.push(format!(
            "{} healthy of {}, {} desired",
            st.current_healthy.unwrap_or(0),
            st.expected_pods.unwrap_or(0),
            st.desired_healthy.unwrap_or(0)
        ));
        parts.push(format!(
            "{} disruptions allowed",
            st.disruptions_allowed.unwrap_or(0)
        ));
    }
    if parts.is_empty() {
        name
    } else {
        format!("{name} ({})", parts.join(", "))
    }
}

fn int_or_string(v: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString) -> String {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    match v {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn pdb(v: serde_json::Value) -> PodDisruptionBudget {
        serde_json::from_value(v).expect("valid pdb")
    }

    #[test]
    fn selectors_follow_kubernetes_rules() {
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "edge"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "NotIn", "values": ["b"]},
                {"key": "team", "operator": "Exists"}
            ]
        }))
        .expect("selector");
        let good = labels(&[("app", "web"), ("tier", "edge"), ("team", "x")]);
        assert!(selector_matches(&sel, &good));
        let mut canary = good.clone();
        canary.insert("canary".into(), "1".into());
        assert!(!selector_matches(&sel, &canary));
        let mut zone_b = good.clone();
        zone_b.insert("zone".into(), "b".into());
        assert!(!selector_matches(&sel, &zone_b));
        assert!(!selector_matches(&sel, &labels(&[("app", "web")])));
        assert!(selector_matches(&LabelSelector::default(), &labels(&[])));
    }

    #[test]
    fn only_pdbs_of_the_namespace_with_a_matching_selector() {
        let pdbs = vec![
            pdb(json!({"metadata": {"name": "web", "namespace": "default"},
                       "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
                       "status": {"currentHealthy": 2, "desiredHealthy": 2, "disruptionsAllowed": 0,
                                  "expectedPods": 3}})),
            pdb(
                json!({"metadata": {"name": "other-ns", "namespace": "prod"},
                       "spec": {"selector": {"matchLabels": {"app": "web"}}}}),
            ),
            pdb(json!({"metadata": {"name": "no-selector", "namespace": "default"}, "spec": {}})),
        ];
        let found = matching_pdbs(&pdbs, "default", &labels(&[("app", "web")]));
        assert_eq!(found.len(), 1);
        assert_eq!(
            describe_pdb(found[0]),
            "PodDisruptionBudget default/web (minAvailable 2, 2 healthy of 3, 2 desired, 0 \
             disruptions allowed)"
        );
    }
}
