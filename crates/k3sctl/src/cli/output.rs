//! Terminal styling (off when `NO_COLOR` is set or the stream is not a terminal) and JSON
//! printing.

use std::io::{IsTerminal, Write};

use serde::Serialize;

/// Whether colour may be used on `stream`: it is a terminal and `NO_COLOR` is unset or empty.
pub fn color_allowed(stream: &impl IsTerminal) -> bool {
    color_decision(
        std::env::var_os("NO_COLOR").as_deref(),
        stream.is_terminal(),
    )
}

/// The rule of <https://no-color.org>: any non-empty `NO_COLOR` turns colour off.
fn color_decision(no_color: Option<&std::ffi::OsStr>, is_terminal: bool) -> bool {
    let disabled = no_color.is_some_and(|value| !value.is_empty());
    !disabled && is_terminal
}

/// Colours for one output stream.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    enabled: bool,
}

impl Style {
    /// Styling for stdout.
    pub fn for_stdout() -> Self {
        Self {
            enabled: color_allowed(&std::io::stdout()),
        }
    }

    /// Styling for stderr.
    pub fn for_stderr() -> Self {
        Self {
            enabled: color_allowed(&std::io::stderr()),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Bold red.
    pub fn error(&self, text: &str) -> String {
        self.paint("1;31", text)
    }

    /// Bold yellow.
    pub fn warning(&self, text: &str) -> String {
        self.paint("1;33", text)
    }

    /// Green.
    pub fn ok(&self, text: &str) -> String {
        self.paint("32", text)
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, value)?;
    writeln!(stdout)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn no_color_and_pipes_turn_colour_off() {
        assert!(color_decision(None, true));
        assert!(
            color_decision(Some(OsStr::new("")), true),
            "empty NO_COLOR is unset"
        );
        assert!(!color_decision(Some(OsStr::new("1")), true));
        assert!(!color_decision(None, false));
        let on = Style { enabled: true };
        let off = Style { enabled: false };
        assert_eq!(on.error("error:"), "\x1b[1;31merror:\x1b[0m");
        assert_eq!(off.error("error:"), "error:");
    }
}
