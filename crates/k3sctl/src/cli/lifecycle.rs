//! What `node remove`, `node replace` and `reset` share on the command line: prepare (nothing
//! changes), show the steps (`--dry-run` stops there), ask for a confirmation, run, report.

use std::process::ExitCode;

use super::confirm::confirmer;
use super::progress::run_reporter;
use super::{CommandResult, FAILURE, Global};
use crate::ops::lifecycle::{LifecycleError, LifecyclePlan};

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
    confirmer(global, None).ask(&plan.consent())?;
    let (tty, reporter) = run_reporter(global);
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
