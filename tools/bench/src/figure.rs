//! A figure: one measurement's name, value and unit, and the rule `--check` holds it to;
//! the figures of a report in the order they are printed.

use serde::Serialize;

use crate::load::Tally;

/// What `--check` requires of a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Present, finite and above zero.
    Positive,
    /// Present and finite (a difference may be negative).
    Finite,
    /// Zero: a count of failed or lost runs.
    Zero,
}

#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// A stable dotted name, e.g. `coderun.python.p50_ms`.
    pub key: String,
    pub section: String,
    pub label: String,
    /// `None` when it could not be measured.
    pub value: Option<f64>,
    pub unit: &'static str,
    pub rule: Rule,
}

impl Figure {
    /// Why the figure fails its rule, if it does.
    pub fn problem(&self) -> Option<String> {
        let fails = match (self.rule, self.value) {
            (_, None) => true,
            (_, Some(value)) if !value.is_finite() => true,
            (Rule::Positive, Some(value)) => value <= 0.0,
            (Rule::Zero, Some(value)) => value != 0.0,
            (Rule::Finite, Some(_)) => false,
        };
        fails.then(|| {
            let value = self
                .value
                .map_or("missing".to_owned(), |value| value.to_string());
            format!(
                "{} ({}) is {value}, must be {:?}",
                self.key, self.label, self.rule
            )
        })
    }
}

/// The figures in the order they are printed.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct Figures(pub Vec<Figure>);

impl Figures {
    pub fn get(&self, key: &str) -> Option<f64> {
        self.0
            .iter()
            .find(|figure| figure.key == key)
            .and_then(|figure| figure.value)
    }

    pub fn push(
        &mut self,
        section: &str,
        key: String,
        label: String,
        value: Option<f64>,
        unit: &'static str,
        rule: Rule,
    ) {
        self.0.push(Figure {
            key,
            section: section.to_owned(),
            label,
            value,
            unit,
            rule,
        });
    }

    /// Failed and lost runs of a phase, which must both be zero.
    pub fn unsuccessful(&mut self, section: &str, key: &str, label: &str, tally: &Tally) {
        self.push(
            section,
            format!("{key}.failed"),
            format!("{label}: failed"),
            Some(tally.failed as f64),
            "runs",
            Rule::Zero,
        );
        self.push(
            section,
            format!("{key}.lost"),
            format!("{label}: lost"),
            Some(tally.lost as f64),
            "runs",
            Rule::Zero,
        );
    }

    pub fn latency(&mut self, section: &str, key: &str, label: &str, tally: &Tally) {
        let percentiles = tally.percentiles();
        for (name, pick) in [
            (
                "p50",
                (|p: &crate::stats::Percentiles| p.p50_ms) as fn(&_) -> f64,
            ),
            ("p95", |p| p.p95_ms),
            ("p99", |p| p.p99_ms),
        ] {
            let value = percentiles.as_ref().map(pick);
            self.push(
                section,
                format!("{key}.{name}_ms"),
                format!("{label} {name}"),
                value,
                "ms",
                Rule::Positive,
            );
        }
        self.unsuccessful(section, key, label, tally);
    }

    /// How long a phase's runs waited for a sandbox (p50, p99): zero is a fine value.
    pub fn queueing(&mut self, section: &str, key: &str, label: &str, tally: &Tally) {
        let percentiles = tally.queue_percentiles();
        for (name, value) in [
            ("p50", percentiles.map(|p| p.p50_ms)),
            ("p99", percentiles.map(|p| p.p99_ms)),
        ] {
            self.push(
                section,
                format!("{key}.queue_{name}_ms"),
                format!("{label}: queued {name}"),
                value,
                "ms",
                Rule::Finite,
            );
        }
    }

    pub fn throughput(&mut self, section: &str, key: &str, label: &str, tally: &Tally) {
        self.push(
            section,
            format!("{key}.runs_per_s"),
            label.to_owned(),
            tally.throughput(),
            "runs/s",
            Rule::Positive,
        );
        self.unsuccessful(section, key, label, tally);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(rule: Rule, value: Option<f64>) -> Figure {
        Figure {
            key: "k".into(),
            section: "s".into(),
            label: "l".into(),
            value,
            unit: "ms",
            rule,
        }
    }

    #[test]
    fn check_rules_refuse_missing_nan_zero_and_failures() {
        assert!(figure(Rule::Positive, Some(1.0)).problem().is_none());
        assert!(figure(Rule::Positive, Some(0.0)).problem().is_some());
        assert!(figure(Rule::Positive, None).problem().is_some());
        assert!(figure(Rule::Finite, Some(f64::NAN)).problem().is_some());
        assert!(figure(Rule::Finite, Some(-3.0)).problem().is_none());
        assert!(figure(Rule::Zero, Some(0.0)).problem().is_none());
        assert!(figure(Rule::Zero, Some(2.0)).problem().is_some());
    }
}
