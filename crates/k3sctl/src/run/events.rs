//! Progress events of a run, and the two ways of showing them: plain lines naming host and
//! step, or JSON lines (`-o json`). Events never carry secrets.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A step began.
    Start,
    /// A step finished.
    Done,
    /// A step failed.
    Failed,
    /// A host was skipped (its group stopped, or the first server failed).
    Skipped,
    /// Information.
    Info,
}

/// One progress event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Host name (or `cluster` / `kubeconfig`).
    pub host: String,
    /// Step kind (`upload-binary`, `restart`, ...).
    pub step: String,
    /// What happened.
    pub kind: EventKind,
    /// Human text.
    pub message: String,
    /// Duration of the step, for `done` and `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

impl Event {
    /// A new event.
    pub fn new(host: &str, step: &str, kind: EventKind, message: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            step: step.into(),
            kind,
            message: message.into(),
            seconds: None,
        }
    }

    /// Attaches a duration.
    pub fn took(mut self, elapsed: Duration) -> Self {
        self.seconds = Some((elapsed.as_secs_f64() * 100.0).round() / 100.0);
        self
    }
}

/// Where events go.
pub trait Reporter: Send + Sync {
    /// Shows one event.
    fn report(&self, event: Event);
}

/// Plain text lines on stderr: `host: message (1.2s)`.
#[derive(Debug, Default)]
pub struct PlainReporter {
    lock: Mutex<()>,
}

impl Reporter for PlainReporter {
    fn report(&self, event: Event) {
        let _guard = self.lock.lock();
        let mark = match event.kind {
            EventKind::Start => "…",
            EventKind::Done => "✓",
            EventKind::Failed => "✗",
            EventKind::Skipped => "-",
            EventKind::Info => "·",
        };
        let took = event
            .seconds
            .map(|s| format!(" ({s:.1}s)"))
            .unwrap_or_default();
        let _ = writeln!(
            std::io::stderr(),
            "{mark} {}: {}{took}",
            event.host,
            event.message
        );
    }
}

/// JSON lines on stdout.
#[derive(Debug, Default)]
pub struct JsonReporter {
    lock: Mutex<()>,
}

impl Reporter for JsonReporter {
    fn report(&self, event: Event) {
        let _guard = self.lock.lock();
        if let Ok(line) = serde_json::to_string(&event) {
            let _ = writeln!(std::io::stdout(), "{line}");
        }
    }
}

/// Collects events (tests, and callers that post-process).
#[derive(Debug, Default)]
pub struct MemoryReporter {
    /// Events in arrival order.
    pub events: Mutex<Vec<Event>>,
}

impl Reporter for MemoryReporter {
    fn report(&self, event: Event) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event);
        }
    }
}
