//! Per-host progress on a terminal: one spinner line per host showing its current step, with
//! finished and failed steps printed above the spinners. Without a terminal, plain lines.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::Global;
use crate::run::{Event, EventKind, JsonReporter, PlainReporter, Reporter};

/// Progress events: JSON lines with `-o json`, else plain lines, on stderr; with `-q` only
/// failed steps.
pub fn line_reporter(global: &Global) -> Arc<dyn Reporter> {
    let lines: Arc<dyn Reporter> = if global.json() {
        Arc::new(JsonReporter::default())
    } else {
        Arc::new(PlainReporter::default())
    };
    if global.quiet {
        Arc::new(FailuresOnly(lines))
    } else {
        lines
    }
}

/// `-q`: passes on failed steps only (every other event is progress or a note, not an error).
struct FailuresOnly(Arc<dyn Reporter>);

impl Reporter for FailuresOnly {
    fn report(&self, event: Event) {
        if event.kind == EventKind::Failed {
            self.0.report(event);
        }
    }
}

/// Spinners per host when stderr is a terminal and the output is not JSON (the
/// [`TtyReporter`] is also returned, to [`TtyReporter::finish`] once the run is over), else
/// (and with `-q`) [`line_reporter`].
pub fn run_reporter(global: &Global) -> (Option<Arc<TtyReporter>>, Arc<dyn Reporter>) {
    if global.json() || global.quiet || !std::io::stderr().is_terminal() {
        return (None, line_reporter(global));
    }
    let tty = Arc::new(TtyReporter::default());
    (Some(Arc::clone(&tty)), tty)
}

/// Spinners per host on stderr.
#[derive(Default)]
pub struct TtyReporter {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
}

impl TtyReporter {
    fn bar(&self, host: &str) -> Option<ProgressBar> {
        let mut bars = self.bars.lock().ok()?;
        let bar = bars.entry(host.to_string()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new_spinner());
            let style =
                ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg} {elapsed:.dim}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.set_prefix(host.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Some(bar.clone())
    }

    /// Runs `f` with the spinners hidden (for a prompt on the same terminal).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.multi.suspend(f)
    }

    /// Removes every spinner (call when the run is over).
    pub fn finish(&self) {
        if let Ok(mut bars) = self.bars.lock() {
            for (_, bar) in std::mem::take(&mut *bars) {
                bar.finish_and_clear();
            }
        }
    }
}

impl Reporter for TtyReporter {
    fn report(&self, event: Event) {
        let took = event
            .seconds
            .map(|s| format!(" ({s:.1}s)"))
            .unwrap_or_default();
        let line = |mark: &str| format!("{mark} {}: {}{took}", event.host, event.message);
        match event.kind {
            EventKind::Start => {
                if let Some(bar) = self.bar(&event.host) {
                    bar.set_message(event.message.clone());
                }
            }
            EventKind::Done => {
                let _ = self.multi.println(line("✓"));
                if let Some(bar) = self.bar(&event.host) {
                    bar.set_message(format!("done: {}", event.message));
                }
            }
            EventKind::Failed => {
                let _ = self.multi.println(line("✗"));
                if let Some(bar) = self.bar(&event.host) {
                    bar.finish_with_message("failed");
                }
            }
            EventKind::Skipped => {
                let _ = self.multi.println(line("-"));
            }
            EventKind::Info => {
                let _ = self.multi.println(line("·"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Record(Mutex<Vec<EventKind>>);

    impl Reporter for Record {
        fn report(&self, event: Event) {
            if let Ok(mut seen) = self.0.lock() {
                seen.push(event.kind);
            }
        }
    }

    #[test]
    fn quiet_passes_on_failed_steps_only() {
        let record = Arc::new(Record::default());
        let quiet = FailuresOnly(Arc::clone(&record) as Arc<dyn Reporter>);
        for kind in [
            EventKind::Start,
            EventKind::Done,
            EventKind::Info,
            EventKind::Skipped,
            EventKind::Failed,
        ] {
            quiet.report(Event::new("h", "restart", kind, "m"));
        }
        assert_eq!(
            *record.0.lock().expect("lock"),
            [EventKind::Failed],
            "only the failure reaches stderr"
        );
    }
}
