//! The confirmation prompt: what a command will disturb, then `Proceed? [y/N]` on the
//! terminal. Without a terminal (stdin or stderr redirected) nobody can answer, so the command
//! refuses unless `--yes` (or `K3SCTL_YES=1`) was given.

use std::io::IsTerminal;
use std::sync::Arc;

use dialoguer::Confirm as Prompt;
use dialoguer::console::Term;

use super::Global;
use super::progress::TtyReporter;
use crate::ops::confirm::{Confirm, ConfirmError, Confirmer, ConsentRequest, NoOneToAsk};

/// Asks on the terminal, with the progress spinners hidden meanwhile.
struct TerminalPrompt {
    progress: Option<Arc<TtyReporter>>,
}

impl TerminalPrompt {
    fn ask(&self, request: &ConsentRequest) -> Result<(), ConfirmError> {
        let term = Term::stderr();
        term.write_str(&request.render())
            .map_err(|e| ConfirmError::Prompt(e.to_string()))?;
        let answer = Prompt::new()
            .with_prompt("Proceed?")
            .default(false)
            .wait_for_newline(true)
            .interact_on_opt(&term)
            .map_err(|e| ConfirmError::Prompt(e.to_string()))?;
        match answer {
            Some(true) => Ok(()),
            Some(false) | None => Err(ConfirmError::Declined {
                command: request.command.clone(),
            }),
        }
    }
}

impl Confirm for TerminalPrompt {
    fn confirm(&self, request: &ConsentRequest) -> Result<(), ConfirmError> {
        match &self.progress {
            Some(progress) => progress.suspend(|| self.ask(request)),
            None => self.ask(request),
        }
    }
}

/// The answerer for this invocation: `--yes` agrees; a terminal on stdin and stderr asks;
/// otherwise every disruptive request is refused with the way out named.
pub fn confirmer(global: &Global, progress: Option<Arc<TtyReporter>>) -> Confirmer {
    if global.yes {
        Confirmer::assume_yes()
    } else if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        Confirmer(Arc::new(TerminalPrompt { progress }))
    } else {
        Confirmer(Arc::new(NoOneToAsk))
    }
}
