//! The final report: what was sent, what the stack answered, how fast, what became of every
//! accepted run; as a table or one JSON document.

use std::fmt::Write as _;

use coderun_bench::stats::Percentiles;
use serde::Serialize;

use crate::sender::Books;
use crate::settle::Settled;
use crate::soak::SoakFigures;

/// One level of the saturation search.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub concurrency: usize,
    pub throughput: Option<f64>,
    pub latency: Option<Percentiles>,
    pub unsuccessful: usize,
}

/// The limit-load test's finding.
#[derive(Debug, Clone, Serialize)]
pub struct Saturation {
    pub levels: Vec<Level>,
    /// The saturating level read again.
    pub again: Option<Level>,
    /// The saturating concurrency and its throughput (the lower of its two readings).
    pub concurrency: usize,
    pub throughput: f64,
}

/// Everything the load found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The load's shape, in words.
    pub load: String,
    pub mix: String,
    pub seconds: f64,
    /// Runs per second that finished as their entry expects.
    pub throughput: Option<f64>,
    /// Latency of those runs, from when each was due (open loop) or sent (closed loop).
    pub latency: Option<Percentiles>,
    pub books: BooksSummary,
    pub settled: Settled,
    /// Runs the load gave up waiting for (`--lost-after`), whether or not they finished by
    /// the time they were read back.
    pub late: usize,
    pub saturation: Option<Saturation>,
    pub soak: Option<SoakFigures>,
}

/// The books without the list of accepted ids.
#[derive(Debug, Clone, Serialize)]
pub struct BooksSummary {
    pub sent: usize,
    pub accepted: usize,
    pub verdicts: std::collections::BTreeMap<String, std::collections::BTreeMap<String, usize>>,
    pub refused: std::collections::BTreeMap<String, usize>,
    pub wrong: usize,
    pub wrong_examples: Vec<String>,
}

impl From<&Books> for BooksSummary {
    fn from(books: &Books) -> Self {
        Self {
            sent: books.sent,
            accepted: books.accepted.len(),
            verdicts: books.verdicts.clone(),
            refused: books.refused.clone(),
            wrong: books.wrong,
            wrong_examples: books.wrong_examples.clone(),
        }
    }
}

impl Report {
    /// Nothing lost, late, duplicated, refused (in any phase, the saturation search's
    /// included) or answered wrongly, and every soak check passed.
    pub fn clean(&self) -> bool {
        self.problems().is_empty()
    }

    /// What keeps the load from being clean, in words.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut count = |what: &str, count: usize| {
            if count > 0 {
                problems.push(format!("{count} {what}"));
            }
        };
        count("lost", self.settled.lost);
        count("later than --lost-after", self.late);
        count("duplicated", self.settled.duplicated);
        count("answered wrongly", self.books.wrong);
        count("refused", self.books.refused.values().sum());
        for check in self.soak.iter().flat_map(|soak| &soak.checks) {
            if !check.passed {
                problems.push(format!("failed: {}", check.name));
            }
        }
        problems
    }

    /// The table.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "coderun-load: {} ({:.0} s)", self.load, self.seconds);
        let _ = writeln!(out, "mix: {}", self.mix);
        if let Some(saturation) = &self.saturation {
            let _ = writeln!(out, "\nsaturation search (closed loops):");
            for level in saturation.levels.iter().chain(saturation.again.iter()) {
                let _ = writeln!(
                    out,
                    "  c={:<3} {:>7.1} runs/s  p50 {:>7.1} ms  p99 {:>7.1} ms  {} failed or lost",
                    level.concurrency,
                    level.throughput.unwrap_or(0.0),
                    level.latency.map_or(0.0, |l| l.p50_ms),
                    level.latency.map_or(0.0, |l| l.p99_ms),
                    level.unsuccessful
                );
            }
            let _ = writeln!(
                out,
                "  saturation: {:.1} runs/s at c={} (the lower of its two readings)",
                saturation.throughput, saturation.concurrency
            );
        }
        let books = &self.books;
        let refused: Vec<String> = books
            .refused
            .iter()
            .map(|(status, count)| format!("{count} x {status}"))
            .collect();
        let _ = writeln!(
            out,
            "\nsent {}, accepted {}, refused {}{}",
            books.sent,
            books.accepted,
            books.refused.values().sum::<usize>(),
            if refused.is_empty() {
                String::new()
            } else {
                format!(" ({})", refused.join(", "))
            }
        );
        let _ = writeln!(
            out,
            "throughput {:.1} runs/s answered as expected",
            self.throughput.unwrap_or(0.0)
        );
        if let Some(latency) = self.latency {
            let _ = writeln!(
                out,
                "latency p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms ({} runs)",
                latency.p50_ms, latency.p95_ms, latency.p99_ms, latency.count
            );
        }
        let _ = writeln!(out, "verdicts:");
        for (label, verdicts) in &books.verdicts {
            let counts: Vec<String> = verdicts
                .iter()
                .map(|(verdict, count)| format!("{verdict} {count}"))
                .collect();
            let _ = writeln!(out, "  {label:<28} {}", counts.join(", "));
        }
        let _ = writeln!(out, "answers not as expected: {}", books.wrong);
        for example in &books.wrong_examples {
            let _ = writeln!(out, "  {example}");
        }
        let settled = &self.settled;
        let _ = writeln!(
            out,
            "accepted {}, finished {}, lost {}, duplicated {}; given up by the load after --lost-after: {}",
            settled.accepted, settled.finished, settled.lost, settled.duplicated, self.late
        );
        for example in &settled.examples {
            let _ = writeln!(out, "  {example}");
        }
        if let Some(soak) = &self.soak {
            soak_text(&mut out, soak);
        }
        let problems = self.problems();
        if problems.is_empty() {
            let _ = writeln!(out, "\nresult: clean (nothing lost, late, duplicated, refused or wrong; every check passed)");
        } else {
            let _ = writeln!(out, "\nresult: NOT CLEAN: {}", problems.join("; "));
        }
        out
    }
}

fn soak_text(out: &mut String, soak: &SoakFigures) {
    let _ = writeln!(out, "\nsoak at {:.1} runs/s, by window:", soak.rate);
    for window in &soak.windows {
        let _ = writeln!(
            out,
            "  {:>3}  {:>6.1} runs/s  p50 {:>6.1} ms  p99 {:>7.1} ms  {} failed  {} lost  RSS MiB: {}",
            window.number,
            window.throughput.unwrap_or(0.0),
            window.latency.map_or(0.0, |l| l.p50_ms),
            window.latency.map_or(0.0, |l| l.p99_ms),
            window.failed,
            window.lost,
            memory_line(&window.memory)
        );
    }
    let _ = writeln!(
        out,
        "  idle RSS MiB before: {}",
        memory_line(&soak.memory_before)
    );
    let _ = writeln!(
        out,
        "  idle RSS MiB after:  {}",
        memory_line(&soak.memory_after)
    );
    let _ = writeln!(
        out,
        "  held before: {:?}\n  held after:  {:?}",
        soak.before, soak.after
    );
    for check in &soak.checks {
        let mark = if check.passed { "pass" } else { "FAIL" };
        let _ = writeln!(out, "  {mark}  {}: {}", check.name, check.detail);
    }
}

/// `gateway 16.9, scheduler 14.3, …` in MiB.
fn memory_line(memory: &std::collections::BTreeMap<String, Option<u64>>) -> String {
    memory
        .iter()
        .map(|(service, bytes)| format!("{service} {}", mib(*bytes)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "?".to_owned(),
        |bytes| format!("{:.1}", bytes as f64 / 1_048_576.0),
    )
}
