//! Consent before disruption: an operation that would restart K3s on a running node, drain,
//! remove, reset, restore or rotate first says what it will do and asks. The operation builds
//! a [`ConsentRequest`]; who answers (a person on a terminal, `--yes`, a refusal when nobody
//! can be asked) is the caller's [`Confirm`], so the library never reads a terminal itself.
//! A fresh install or a no-op asks nothing: callers only ask when the request has items.

use std::fmt;
use std::sync::Arc;

/// What an operation is about to do, for a person to agree to (also shown by dry runs' JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConsentRequest {
    /// The command asking (`apply`, `upgrade`, `node remove`, ...).
    pub command: String,
    /// One line: what will happen, e.g. "restart K3s on 2 running node(s)".
    pub headline: String,
    /// One line per host or object affected, with what happens to it.
    pub items: Vec<String>,
    /// What cannot be undone (data that will be lost), shown apart; may be empty.
    pub losses: Vec<String>,
}

impl ConsentRequest {
    /// A request of `command` that would `headline`, one item per affected host.
    pub fn new(
        command: impl Into<String>,
        headline: impl Into<String>,
        items: Vec<String>,
    ) -> Self {
        Self {
            command: command.into(),
            headline: headline.into(),
            items,
            losses: Vec::new(),
        }
    }

    /// Adds what will be lost.
    pub fn with_losses(mut self, losses: Vec<String>) -> Self {
        self.losses = losses;
        self
    }

    /// The request as text: the headline, the items, then what will be lost.
    pub fn render(&self) -> String {
        let mut out = format!("{} will {}:\n", self.command, self.headline);
        for item in &self.items {
            out.push_str(&format!("  - {item}\n"));
        }
        if !self.losses.is_empty() {
            out.push_str("This cannot be undone; it loses:\n");
            for loss in &self.losses {
                out.push_str(&format!("  - {loss}\n"));
            }
        }
        out
    }
}

/// Why an operation did not get its consent. Nothing was changed in every case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfirmError {
    /// The person answered no.
    #[error("{command} cancelled at the confirmation; nothing was changed")]
    Declined {
        /// The command that asked.
        command: String,
    },
    /// Nobody can be asked (stdin or stderr is not a terminal) and `--yes` was not given.
    #[error(
        "{command} would {headline}, which needs a confirmation, but there is no terminal to \
         ask on; nothing was changed\n{}{}  hint: review it with `k3sctl plan` (or a dry run), \
         then re-run with --yes (or K3SCTL_YES=1) to confirm",
        indent(.items),
        lost(.losses)
    )]
    NoTerminal {
        /// The command that asked.
        command: String,
        /// What it would do.
        headline: String,
        /// The affected hosts and objects.
        items: Vec<String>,
        /// What it would lose for good.
        losses: Vec<String>,
    },
    /// The terminal could not be read.
    #[error("cannot ask for a confirmation on the terminal: {0}; nothing was changed")]
    Prompt(String),
}

fn indent(items: &[String]) -> String {
    items.iter().map(|i| format!("  - {i}\n")).collect()
}

fn lost(losses: &[String]) -> String {
    if losses.is_empty() {
        String::new()
    } else {
        format!("  it cannot be undone; it loses:\n{}", indent(losses))
    }
}

/// Who answers a [`ConsentRequest`].
pub trait Confirm: Send + Sync {
    /// `Ok` to go on; an error (nothing changed yet) otherwise.
    fn confirm(&self, request: &ConsentRequest) -> Result<(), ConfirmError>;
}

/// Agrees to everything: `--yes`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AssumeYes;

impl Confirm for AssumeYes {
    fn confirm(&self, _: &ConsentRequest) -> Result<(), ConfirmError> {
        Ok(())
    }
}

/// Nobody to ask: refuses every request (what a program gets unless it chooses).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoOneToAsk;

impl Confirm for NoOneToAsk {
    fn confirm(&self, request: &ConsentRequest) -> Result<(), ConfirmError> {
        Err(ConfirmError::NoTerminal {
            command: request.command.clone(),
            headline: request.headline.clone(),
            items: request.items.clone(),
            losses: request.losses.clone(),
        })
    }
}

/// The answerer an operation's options carry; by default nobody (every request refused).
#[derive(Clone)]
pub struct Confirmer(pub Arc<dyn Confirm>);

impl Confirmer {
    /// `--yes`.
    pub fn assume_yes() -> Self {
        Self(Arc::new(AssumeYes))
    }

    /// Asks when the request has items; a request without items (nothing disruptive) passes.
    pub fn ask(&self, request: &ConsentRequest) -> Result<(), ConfirmError> {
        if request.items.is_empty() {
            return Ok(());
        }
        self.0.confirm(request)
    }
}

impl Default for Confirmer {
    fn default() -> Self {
        Self(Arc::new(NoOneToAsk))
    }
}

impl fmt::Debug for Confirmer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Confirmer")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ConsentRequest {
        ConsentRequest::new(
            "apply",
            "restart K3s on 1 running node(s)",
            vec!["vm-1: restart k3s (config.yaml changed)".into()],
        )
    }

    #[test]
    fn an_empty_request_passes_without_asking() {
        let empty = ConsentRequest::new("apply", "do nothing", vec![]);
        assert_eq!(Confirmer::default().ask(&empty), Ok(()));
    }

    #[test]
    fn by_default_a_disruptive_request_is_refused_with_the_way_out() {
        let error = Confirmer::default().ask(&request()).unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, ConfirmError::NoTerminal { .. }));
        assert!(
            text.contains("apply would restart K3s on 1 running node(s)"),
            "{text}"
        );
        assert!(
            text.contains("  - vm-1: restart k3s (config.yaml changed)"),
            "{text}"
        );
        assert!(text.contains("--yes"), "{text}");
        assert!(text.contains("nothing was changed"), "{text}");
    }

    #[test]
    fn the_refusal_names_what_would_be_lost() {
        let text = Confirmer::default()
            .ask(&request().with_losses(vec!["the snapshots".into()]))
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("it cannot be undone; it loses:\n  - the snapshots\n"),
            "{text}"
        );
    }

    #[test]
    fn assume_yes_agrees() {
        assert_eq!(Confirmer::assume_yes().ask(&request()), Ok(()));
    }

    #[test]
    fn render_lists_items_then_losses() {
        let text = request()
            .with_losses(vec![
                "the namespace objects created after the snapshot".into(),
            ])
            .render();
        assert_eq!(
            text,
            "apply will restart K3s on 1 running node(s):\n  - vm-1: restart k3s (config.yaml \
             changed)\nThis cannot be undone; it loses:\n  - the namespace objects created \
             after the snapshot\n"
        );
    }
}
