//! The human form of a plan: steps per host, file diffs indented, secrets masked.

use std::fmt::Write;

use super::datastore::DatastoreAction;
use super::drift::DriftFix;
use super::step::{HostPlan, Plan, Step};

/// Renders the plan as text.
pub fn render_plan(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Cluster {} (K3s {})", plan.cluster, plan.version);
    match &plan.datastore {
        DatastoreAction::Keep => {}
        DatastoreAction::Bootstrap {
            host,
            cluster_init: true,
        } => {
            let _ = writeln!(
                out,
                "New cluster on embedded etcd: {host} starts it (cluster-init), the other \
                 servers join one at a time, each a voter before the next"
            );
        }
        DatastoreAction::Bootstrap { host, .. } => {
            let _ = writeln!(out, "New cluster: {host} starts it");
        }
        DatastoreAction::Convert { host, store } => {
            let _ = writeln!(
                out,
                "Conversion: {host} moves from SQLite ({store}) to embedded etcd before the new \
                 servers join; its API is down while it restarts (a backup of the store stays on \
                 {host})"
            );
        }
    }
    if !plan.critical.is_empty() {
        let _ = writeln!(
            out,
            "Cluster-wide server settings (identical on every server):"
        );
        for (key, value) in &plan.critical {
            let _ = writeln!(out, "  {key}: {value}");
        }
    }
    for host in &plan.hosts {
        let mut role = host.role.subcommand().to_string();
        if host.first_server {
            match &plan.datastore {
                DatastoreAction::Convert { .. } => role.push_str(", converts the datastore"),
                _ => role.push_str(", starts the cluster"),
            }
        }
        if let Some(group) = &host.group {
            let _ = write!(role, ", group {group}");
        }
        let _ = writeln!(out, "\n{} ({role})", host.host);
        if host.steps.is_empty() {
            let _ = writeln!(out, "  = up to date");
        }
        write_steps(&mut out, host);
    }
    if !plan.exports.is_empty() {
        let _ = writeln!(out, "\nkubeconfig exports");
        for export in &plan.exports {
            let what = match export.action {
                "up-to-date" => "= up to date",
                "write" => "~ write",
                _ => "~ write once the cluster is up",
            };
            let _ = writeln!(
                out,
                "  {what}: {} (context {})",
                export.path, export.context
            );
        }
    }
    if !plan.drift.is_empty() {
        let _ = writeln!(out, "\nDrift: the live cluster differs from the spec");
        for item in &plan.drift {
            let mark = match item.fix {
                DriftFix::Apply => "~",
                DriftFix::Manual => "!",
            };
            let _ = writeln!(out, "  {mark} {}", item.describe());
            if let Some(hint) = &item.hint {
                let _ = writeln!(out, "      hint: {hint}");
            }
        }
    }
    let changes = plan.change_count();
    let manual = plan
        .drift
        .iter()
        .filter(|d| d.fix == DriftFix::Manual)
        .count();
    let mut summary = if changes == 0 {
        "Nothing to do.".to_string()
    } else {
        format!(
            "{changes} change(s) on {} host(s).",
            plan.hosts.iter().filter(|h| h.has_changes()).count()
        )
    };
    if manual > 0 {
        let _ = write!(
            summary,
            " {manual} drift item(s) that apply leaves to a person."
        );
    }
    let _ = writeln!(out, "\n{summary}");
    out
}

/// The mark before a step: `+` creates, `~` changes, `>` starts or restarts, `-` removes, `…`
/// waits.
fn mark(step: &Step) -> &'static str {
    match step {
        Step::WaitServerReady
        | Step::WaitNodeReady
        | Step::WaitEtcdVoter
        | Step::VerifyMigration { .. } => "…",
        Step::ConvertDatastore { .. } => ">",
        Step::Adopt { .. } => "=",
        Step::RemoveEtcdMember { .. }
        | Step::RemoveFile { .. }
        | Step::LeaveEtcd
        | Step::StopService
        | Step::Uninstall { .. }
        | Step::DeleteNode => "-",
        Step::Start { .. } | Step::Restart { .. } | Step::DaemonReload => ">",
        Step::EnforceTaints { .. } => "~",
        Step::WriteFile { create: true, .. }
        | Step::LinkCommand { .. }
        | Step::UploadBinary {
            installed: None, ..
        } => "+",
        _ => "~",
    }
}

fn write_steps(out: &mut String, host: &HostPlan) {
    for step in &host.steps {
        let _ = writeln!(out, "  {} {}", mark(step), step.title(host.role));
        if let Step::WriteFile { diff, content, .. } = step {
            if diff.is_empty() && content.is_secret() {
                let _ = writeln!(out, "      (content holds secrets: not shown)");
            }
            for line in diff.lines() {
                let _ = writeln!(out, "      {line}");
            }
        }
    }
}

/// Renders the host plans of a lifecycle operation (`node remove`, `node replace`, `reset`) in
/// the order they run: each host with its role and steps, `= nothing to do` when it has none.
pub fn render_host_plans(hosts: &[HostPlan]) -> String {
    let mut out = String::new();
    for host in hosts {
        let _ = writeln!(out, "{} ({})", host.host, host.role.subcommand());
        if host.steps.is_empty() {
            let _ = writeln!(out, "  = nothing to do");
        }
        write_steps(&mut out, host);
    }
    out
}
