//! What the rotation commands (`certs rotate`, `token rotate`, `kubeconfig --rotate-if-expired`)
//! share: the confirmation before any node is restarted, progress reporting and the report of
//! the nodes rolled.
//!
//! The confirmation shows what will happen, then asks `Proceed? [y/N]` when stdin and stderr
//! are terminals; without a terminal it refuses unless `--yes` was given.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use super::Global;
use crate::ops::rotate::{RollFailure, RolledNode};
use crate::run::{JsonReporter, PlainReporter, Reporter};

/// Shows `summary` and gets consent: `Ok(true)` to go on, `Ok(false)` when declined, an error
/// when nobody can be asked and `--yes` was not given.
pub fn confirm(global: &Global, command: &str, summary: &[String]) -> anyhow::Result<bool> {
    let mut err = std::io::stderr().lock();
    for line in summary {
        writeln!(err, "{line}")?;
    }
    if global.yes {
        return Ok(true);
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        anyhow::bail!(
            "`k3sctl {command}` restarts K3s on running nodes and no terminal is here to \
             confirm it: nothing was changed\n  hint: pass --yes to proceed without asking"
        );
    }
    write!(err, "Proceed? [y/N] ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    let yes = matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES");
    if !yes {
        writeln!(err, "not confirmed: nothing was changed")?;
    }
    Ok(yes)
}

/// Progress events: JSON lines with `-o json`, else plain lines, on stderr.
pub fn reporter(global: &Global) -> Arc<dyn Reporter> {
    if global.json() {
        Arc::new(JsonReporter::default())
    } else {
        Arc::new(PlainReporter::default())
    }
}

/// Prints the nodes rolled and the failure, if any (text output).
pub fn print_roll(verb: &str, done: &[RolledNode], failure: Option<&RollFailure>) {
    for n in done {
        println!("{}: {verb} ({:.1}s)", n.name, n.seconds);
    }
    if let Some(f) = failure {
        println!("{}: FAILED at {}: {}", f.node, f.step, f.error);
        if let Some(j) = &f.journal {
            println!("  last journal lines:\n{j}");
        }
        println!("  the nodes after it were not touched; fix the cause and re-run");
    }
}
