//! The result of a run per host, and the summary printed at the end.

use std::fmt::Write;

use serde::Serialize;

/// How one host ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum HostStatus {
    /// Every step succeeded (or there was nothing to do).
    Ok {
        /// Number of changing steps run.
        changes: usize,
    },
    /// A step failed.
    Failed {
        /// The step.
        step: String,
        /// The error.
        error: String,
        /// What to do, for known causes.
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
    },
    /// Not attempted.
    Skipped {
        /// Why.
        reason: String,
    },
}

/// One host's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostOutcome {
    /// Host name.
    pub host: String,
    /// How it ended.
    pub status: HostStatus,
}

/// All outcomes, in plan order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    /// Per host.
    pub hosts: Vec<HostOutcome>,
}

impl RunSummary {
    /// Whether every host is ok.
    pub fn success(&self) -> bool {
        self.hosts
            .iter()
            .all(|h| matches!(h.status, HostStatus::Ok { .. }))
    }

    /// Total changing steps run.
    pub fn changes(&self) -> usize {
        self.hosts
            .iter()
            .map(|h| match h.status {
                HostStatus::Ok { changes } => changes,
                _ => 0,
            })
            .sum()
    }

    /// The summary as text lines.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for h in &self.hosts {
            let _ = match &h.status {
                HostStatus::Ok { changes: 0 } => writeln!(out, "  {:<20} ok (no changes)", h.host),
                HostStatus::Ok { changes } => {
                    writeln!(out, "  {:<20} ok ({changes} change(s))", h.host)
                }
                HostStatus::Skipped { reason } => {
                    writeln!(out, "  {:<20} skipped: {reason}", h.host)
                }
                HostStatus::Failed { step, error, hint } => {
                    let _ = writeln!(
                        out,
                        "  {:<20} FAILED at {step}: {}",
                        h.host,
                        first_line(error)
                    );
                    if let Some(hint) = hint {
                        let _ = writeln!(out, "  {:<20}   hint: {hint}", "");
                    }
                    Ok(())
                }
            };
        }
        out
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lists_failures_with_step_and_hint() {
        let summary = RunSummary {
            hosts: vec![
                HostOutcome {
                    host: "s1".into(),
                    status: HostStatus::Ok { changes: 3 },
                },
                HostOutcome {
                    host: "a1".into(),
                    status: HostStatus::Failed {
                        step: "start".into(),
                        error: "a1: k3s-agent failed\njournal...".into(),
                        hint: Some("check the endpoint".into()),
                    },
                },
                HostOutcome {
                    host: "a2".into(),
                    status: HostStatus::Skipped {
                        reason: "a1 failed in group g1".into(),
                    },
                },
            ],
        };
        assert!(!summary.success());
        assert_eq!(summary.changes(), 3);
        let text = summary.render();
        assert!(
            text.contains("a1                   FAILED at start: a1: k3s-agent failed\n"),
            "{text}"
        );
        assert!(text.contains("hint: check the endpoint") && text.contains("skipped: a1 failed"));
    }
}
