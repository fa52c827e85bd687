//! Progress on stderr: on a terminal a bar (or spinner) per phase with a counter of attempts;
//! elsewhere (CI logs) one line when a phase starts and one when it ends.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Where progress goes, decided once.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    terminal: bool,
}

impl Progress {
    /// Bars when stderr is a terminal, lines otherwise.
    pub fn for_stderr() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// Starts a phase; `total` attempts when known in advance (a bar), else a spinner.
    pub fn phase(&self, name: &str, total: Option<u64>) -> Phase {
        let bar = if self.terminal {
            let bar = match total {
                Some(total) => ProgressBar::new(total).with_style(
                    ProgressStyle::with_template("{msg:42} [{bar:30}] {pos}/{len} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{msg:42} {spinner} {pos} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                ),
            };
            bar.set_message(name.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        } else {
            eprintln!("==> {name}");
            ProgressBar::hidden()
        };
        Phase {
            name: name.to_owned(),
            bar,
            started: Instant::now(),
            terminal: self.terminal,
        }
    }

    /// A note between phases (a choice the bench made, a waiting step).
    pub fn note(&self, text: &str) {
        eprintln!("    {text}");
    }
}

/// One phase in progress; clones tick the same counter.
#[derive(Debug, Clone)]
pub struct Phase {
    name: String,
    bar: ProgressBar,
    started: Instant,
    terminal: bool,
}

impl Phase {
    /// A phase that shows nothing (warm-ups, tests).
    pub fn silent() -> Self {
        Self {
            name: String::new(),
            bar: ProgressBar::hidden(),
            started: Instant::now(),
            terminal: false,
        }
    }

    /// One more attempt done.
    pub fn tick(&self) {
        self.bar.inc(1);
    }

    /// Ends the phase with a summary.
    pub fn finish(&self, summary: &str) {
        if self.terminal {
            self.bar
                .finish_with_message(format!("{}: {summary}", self.name));
        } else if !self.name.is_empty() {
            eprintln!(
                "    {} in {:.1} s: {summary}",
                self.name,
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}
