//! What the rotation commands (`certs rotate`, `token rotate`, `kubeconfig --rotate-if-expired`)
//! share: the confirmation before any node is restarted, progress reporting and the report of
//! the nodes rolled.
//!
//! The confirmation shows what will happen, then asks `Proceed? [y/N]` when stdin and stderr
//! are terminals; without a terminal it refuses unless `--yes` was given.

use super::Global;
use super::confirm::confirmer;
use crate::ops::confirm::ConsentRequest;
use crate::ops::rotate::{RollFailure, RolledNode};

/// Shows `summary` and gets consent through the shared confirmation (a terminal asks,
/// `--yes` agrees, no terminal refuses); an error when not confirmed, nothing changed.
pub fn confirm(global: &Global, command: &str, summary: &[String]) -> anyhow::Result<()> {
    let request = ConsentRequest::new(
        command,
        "restart K3s on running nodes, one at a time",
        summary.to_vec(),
    );
    confirmer(global, None).ask(&request)?;
    Ok(())
}

/// Prints the nodes rolled and the failure, if any (text output).
pub fn print_roll(verb: &str, done: &[RolledNode], failure: Option<&RollFailure>) {
    for n in done {
        println!("{}: {verb} ({:.1}s)", n.name, n.seconds);
    }
    if let Some(f) = failure {
        println!("{}: FAILED at {}: {}", f.node, f.step, f.error);
        if let Some(h) = &f.hint {
            println!("  hint: {h}");
        }
        if let Some(j) = &f.journal {
            println!("  last journal lines:\n{j}");
        }
        println!("  the nodes after it were not touched; fix the cause and re-run");
    }
}
