//! Log lines in the logrus text format k3s writes to stderr (and so to journald):
//! `time="2026-01-02T03:04:05Z" level=info msg="..."`.

use std::io::Write;

/// Severity of a log line, named like logrus levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Informational.
    Info,
    /// Something odd that does not stop the process.
    Warn,
    /// A failure that the process retries or reports.
    Error,
    /// A failure that ends the process.
    Fatal,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }
}

/// Formats one log line (without the trailing newline).
pub fn format_line(level: Level, msg: &str) -> String {
    let now = crate::clock::rfc3339(crate::clock::now());
    let escaped = msg.replace('\\', "\\\\").replace('"', "\\\"");
    format!("time=\"{now}\" level={} msg=\"{escaped}\"", level.as_str())
}

/// Writes one log line to stderr.
pub fn log(level: Level, msg: &str) {
    let line = format_line(level, msg);
    let mut err = std::io::stderr().lock();
    // A closed stderr must not take the process down.
    let _ = writeln!(err, "{line}");
}

/// Logs at info level.
pub fn info(msg: impl AsRef<str>) {
    log(Level::Info, msg.as_ref());
}

/// Logs at warning level.
pub fn warn(msg: impl AsRef<str>) {
    log(Level::Warn, msg.as_ref());
}

/// Logs at error level.
pub fn error(msg: impl AsRef<str>) {
    log(Level::Error, msg.as_ref());
}

/// Logs at fatal level (the caller exits).
pub fn fatal(msg: impl AsRef<str>) {
    log(Level::Fatal, msg.as_ref());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_escaped_like_logrus() {
        let line = format_line(Level::Warn, r#"say "hi""#);
        assert!(line.contains(r#"level=warning msg="say \"hi\"""#), "{line}");
        assert!(line.starts_with("time=\""));
    }
}
