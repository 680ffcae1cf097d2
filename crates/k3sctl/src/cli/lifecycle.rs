//! What `node remove`, `node replace` and `reset` share on the command line: prepare (nothing
//! changes), show the steps (`--dry-run` stops there), ask for a confirmation, run, report.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use super::progress::TtyReporter;
use super::{CommandResult, FAILURE, Global};
use crate::ops::lifecycle::{Consent, LifecycleError, LifecyclePlan};
use crate::run::{JsonReporter, PlainReporter, Reporter};

/// Pure: the confirmation text.
pub fn render_consent(consent: &Consent) -> String {
    let mut out = format!("{} will {}:\n", consent.command, consent.headline);
    for item in &consent.items {
        out.push_str(&format!("  - {item}\n"));
    }
    if !consent.losses.is_empty() {
        out.push_str("This cannot be undone; it loses:\n");
        for loss in &consent.losses {
            out.push_str(&format!("  - {loss}\n"));
        }
    }
    out
}

/// Asks on the terminal, agrees with `--yes`, refuses without a terminal.
fn confirm(global: &Global, consent: &Consent) -> anyhow::Result<()> {
    if global.yes || consent.items.is_empty() {
        return Ok(());
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        anyhow::bail!(
            "{} would {}, which needs a confirmation, but there is no terminal to ask on; \
             nothing was changed\n{}  hint: review it with --dry-run, then re-run with --yes",
            consent.command,
            consent.headline,
            consent
                .items
                .iter()
                .map(|i| format!("  - {i}\n"))
                .collect::<String>()
        );
    }
    let mut err = std::io::stderr();
    write!(err, "{}Proceed? [y/N] ", render_consent(consent))?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        anyhow::bail!(
            "{} cancelled at the confirmation; nothing was changed",
            consent.command
        )
    }
}

/// Prepares with `prepare`, then shows, confirms and runs.
pub fn drive<F>(global: &Global, dry_run: bool, prepare: F) -> CommandResult
where
    F: std::future::Future<Output = Result<LifecyclePlan, LifecycleError>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let plan = runtime.block_on(prepare)?;
    if global.json() && dry_run {
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({
                "command": plan.command,
                "hosts": plan.hosts,
                "notes": plan.notes,
                "consent": plan.consent(),
            }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    if !global.json() {
        print!("{}", plan.render());
    }
    if dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    if plan.is_empty() {
        if !global.json() {
            println!("Nothing to do.");
        }
        return Ok(ExitCode::SUCCESS);
    }
    confirm(global, &plan.consent())?;
    let tty = (!global.json() && std::io::stderr().is_terminal())
        .then(|| Arc::new(TtyReporter::default()));
    let reporter: Arc<dyn Reporter> = match (&tty, global.json()) {
        (Some(tty), _) => Arc::clone(tty) as Arc<dyn Reporter>,
        (None, true) => Arc::new(JsonReporter::default()),
        (None, false) => Arc::new(PlainReporter::default()),
    };
    let result = runtime.block_on(plan.run(reporter));
    if let Some(tty) = &tty {
        tty.finish();
    }
    let report = result?;
    if global.json() {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("Summary:\n{}", report.summary.render());
        for note in &report.notes {
            println!("note: {note}");
        }
    }
    Ok(if report.summary.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILURE)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consent_names_hosts_and_losses() {
        let text = render_consent(&Consent {
            command: "node remove".into(),
            headline: "remove a1".into(),
            items: vec!["a1: cordon, drain, uninstall, delete-node".into()],
            losses: vec!["K3s on a1".into()],
        });
        assert_eq!(
            text,
            "node remove will remove a1:\n  - a1: cordon, drain, uninstall, delete-node\nThis \
             cannot be undone; it loses:\n  - K3s on a1\n"
        );
    }
}
