//! The bench's answer: every figure with its unit and the targets with the figures behind
//! them, as a table or as one JSON document; and what `--check` refuses.

use std::fmt::Write as _;

use serde::Serialize;

use crate::figure::{Figures, Rule};
use crate::machine::Machine;
use crate::targets::Target;

/// How the bench was run.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub mode: String,
    pub slots: u32,
    pub quick: bool,
    /// The executor's extra environment (`--executor-env`), `KEY=VALUE`.
    pub executor_env: Vec<String>,
    pub command: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub settings: Settings,
    pub figures: Figures,
    pub targets: Vec<Target>,
    /// The first failures of each phase that had any: (phase, reason).
    pub failures: Vec<(String, String)>,
    /// What makes some figures less trustworthy this time (a machine busy with other work).
    pub notes: Vec<String>,
}

/// Share of the machine's CPU busy with other work while the stack idles above which the
/// machine-wide CPU figures are flagged.
const BUSY_IDLE_SHARE: f64 = 0.2;

/// Warnings about this run's figures.
pub fn notes(figures: &Figures, cores: usize) -> Vec<String> {
    let capacity = cores as f64 * 1000.0;
    ["before", "after"]
        .into_iter()
        .filter_map(|moment| {
            let busy = figures.get(&format!("cost.idle_{moment}.busy_ms_per_s"))?;
            (busy > capacity * BUSY_IDLE_SHARE).then(|| {
                format!(
                    "the machine was {:.0} % busy with other work in the idle window {moment} \
                     the CPU phase: the machine-wide CPU per run is unreliable (the stack's own \
                     services are measured apart; the shared daemons may include others' work)",
                    busy / capacity * 100.0
                )
            })
        })
        .collect()
}

/// B0's p99 over its p50 past which the machine itself counts as unsteady.
pub const UNSTEADY_HOST_TAIL: f64 = 2.0;

/// A note when the bare program itself had a long tail: every latency read on that run
/// carries the machine's own stalls, which no stack can do better than.
pub fn unsteady_note(figures: &Figures) -> Option<String> {
    let (p50, p99) = (
        figures.get("b0.python.p50_ms")?,
        figures.get("b0.python.p99_ms")?,
    );
    (p99 > p50 * UNSTEADY_HOST_TAIL).then(|| {
        format!(
            "the machine itself was unsteady: the bare program's p99 was {:.1} x its p50 \
             ({p99:.1} ms against {p50:.1} ms, B0 python); the latency ratios of this run carry \
             its stalls",
            p99 / p50
        )
    })
}

/// A number with as many decimals as its size deserves (none for a whole number).
pub fn number(value: f64) -> String {
    match value.abs() {
        _ if value.fract() == 0.0 && value.abs() < 1e12 => format!("{value:.0}"),
        magnitude if magnitude >= 100.0 => format!("{value:.0}"),
        magnitude if magnitude >= 10.0 => format!("{value:.1}"),
        _ => format!("{value:.2}"),
    }
}

impl Report {
    /// Why `--check` fails: figures against their rules, and runs that failed.
    pub fn problems(&self) -> Vec<String> {
        self.figures
            .0
            .iter()
            .filter_map(|figure| figure.problem())
            .collect()
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"))
    }

    pub fn table(&self) -> String {
        let machine = &self.machine;
        let settings = &self.settings;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "coderun-bench: {} cores ({}), kernel {}, Docker {}, {}",
            machine.cores, machine.cpu_model, machine.kernel, machine.docker, machine.date
        );
        let environment = if settings.executor_env.is_empty() {
            "executor defaults".to_owned()
        } else {
            settings.executor_env.join(" ")
        };
        let _ = writeln!(
            out,
            "mode {} ({environment}), executor slots {}{}",
            settings.mode,
            settings.slots,
            if settings.quick { ", --quick" } else { "" }
        );
        let width = self
            .figures
            .0
            .iter()
            .map(|figure| figure.label.chars().count())
            .max()
            .unwrap_or(0);
        let mut section = "";
        // Counts of failed and lost runs are shown only when they are not zero.
        let shown = self
            .figures
            .0
            .iter()
            .filter(|figure| !(figure.rule == Rule::Zero && figure.value == Some(0.0)));
        for figure in shown {
            if figure.section != section {
                section = &figure.section;
                let _ = writeln!(out, "\n{section}");
            }
            let value = figure.value.map_or("missing".to_owned(), number);
            let _ = writeln!(
                out,
                "  {:<width$}  {value:>10} {}",
                figure.label, figure.unit
            );
        }
        let _ = writeln!(out, "\ntargets (reported, not enforced)");
        let width = self
            .targets
            .iter()
            .map(|target| target.name.chars().count())
            .max()
            .unwrap_or(0);
        for target in &self.targets {
            let verdict = match (target.pass, &target.caveat) {
                _ if !target.judged => "shown",
                (Some(true), _) => "pass",
                (Some(false), _) => "FAIL",
                (None, Some(_)) => "unreliable",
                (None, None) => "missing",
            };
            let value = target.value.map_or("missing".to_owned(), number);
            let _ = writeln!(
                out,
                "  {:<width$}  {value:>8} {:<3} {} {} {:<4}  {verdict:<10}  ({}{})",
                target.name,
                target.unit,
                target.comparison,
                number(target.limit),
                target.unit,
                target.from,
                target
                    .caveat
                    .as_ref()
                    .map(|caveat| format!("; {caveat}"))
                    .unwrap_or_default()
            );
        }
        if self.failures.is_empty() {
            let _ = writeln!(
                out,
                "\nevery run answered as expected: none failed, none lost"
            );
        } else {
            let _ = writeln!(out, "\nfailed runs (first of each phase)");
            for (phase, reason) in &self.failures {
                let _ = writeln!(out, "  {phase}: {reason}");
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty_report() -> Report {
        let figures = crate::figures::figures(&Default::default(), 2);
        Report {
            machine: Machine {
                cores: 2,
                cpu_model: "cpu".into(),
                kernel: "6.1".into(),
                docker: "20.10".into(),
                date: "2026-01-01 00:00 UTC".into(),
            },
            settings: Settings {
                mode: "strict".into(),
                slots: 4,
                quick: true,
                executor_env: Vec::new(),
                command: "coderun-bench --quick".into(),
            },
            targets: crate::targets::targets(&figures, false),
            figures,
            failures: Vec::new(),
            notes: Vec::new(),
        }
    }

    #[test]
    fn the_json_document_holds_every_figure_and_target() {
        let report = empty_report();
        let json: serde_json::Value = serde_json::from_str(&report.json()).expect("JSON");
        assert_eq!(
            json["figures"].as_array().map(Vec::len),
            Some(report.figures.0.len())
        );
        assert_eq!(json["figures"][0]["key"], "b0.python.p50_ms");
        assert_eq!(json["figures"][0]["value"], serde_json::Value::Null);
        assert_eq!(
            json["targets"].as_array().map(Vec::len),
            Some(report.targets.len())
        );
        assert!(
            !report.problems().is_empty(),
            "nothing measured fails the check"
        );
        let table = report.table();
        assert!(table.contains("missing") && table.contains("targets (reported, not enforced)"));
    }

    #[test]
    fn a_bare_program_with_a_long_tail_marks_the_machine_unsteady() {
        let with_tail = |slow: u64| {
            let mut measured = crate::phases::Measurements::default();
            for index in 0..100u64 {
                let millis = if index < 95 { 10 } else { slow };
                measured.host_python.record(
                    std::time::Duration::from_millis(millis),
                    crate::load::Outcome::Succeeded {
                        program_cpu_ms: 0,
                        queue_ms: None,
                    },
                );
            }
            crate::figures::figures(&measured, 2)
        };
        assert_eq!(unsteady_note(&with_tail(12)), None);
        let note = unsteady_note(&with_tail(35)).expect("a note");
        assert!(note.contains("3.5 x its p50"), "{note}");
        assert_eq!(
            unsteady_note(&crate::figures::figures(&Default::default(), 2)),
            None
        );
    }

    #[test]
    fn numbers_keep_three_significant_digits_or_so() {
        assert_eq!(number(1234.5), "1234");
        assert_eq!(number(12.345), "12.3");
        assert_eq!(number(1.2345), "1.23");
        assert_eq!(number(-0.5), "-0.50");
        assert_eq!(number(3.0), "3");
    }
}
