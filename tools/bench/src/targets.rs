//! The performance targets, each a ratio or a difference of figures against its
//! limit. They are reported, never enforced: the machine is shared and noisy.

use serde::Serialize;

use crate::figure::Figures;

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub name: String,
    /// The figures behind the value, spelled out.
    pub from: String,
    pub value: Option<f64>,
    /// `<=` or `>=`.
    pub comparison: &'static str,
    pub limit: f64,
    pub unit: &'static str,
    /// `None` when a figure behind it is missing or unreliable.
    pub pass: Option<bool>,
    /// Why the value cannot be trusted this time, or why it is not judged.
    pub caveat: Option<String>,
    /// False for a ratio shown beside a target it is not judged by.
    pub judged: bool,
}

impl Target {
    fn new(
        name: &str,
        from: String,
        value: Option<f64>,
        comparison: &'static str,
        limit: f64,
        unit: &'static str,
    ) -> Self {
        let value = value.filter(|value| value.is_finite());
        let pass = value.map(|value| match comparison {
            ">=" => value >= limit,
            _ => value <= limit,
        });
        Self {
            name: name.to_owned(),
            from,
            value,
            comparison,
            limit,
            unit,
            pass,
            caveat: None,
            judged: true,
        }
    }

    fn unless(mut self, caveat: Option<&str>) -> Self {
        if let Some(caveat) = caveat {
            self.pass = None;
            self.caveat = Some(caveat.to_owned());
        }
        self
    }

    /// Shown beside the targets, not judged, for the reason given.
    fn shown_only(mut self, why: &str) -> Self {
        self.judged = false;
        self.unless(Some(why))
    }
}

/// Idle resident memory allowed per service, in MiB.
pub const MEMORY_LIMITS: &[(&str, f64)] = &[
    ("gateway", 25.0),
    ("scheduler", 25.0),
    ("prober", 25.0),
    ("executor", 40.0),
];

/// Why the Poisson loop's ratio is shown beside the target rather than judged by it.
const POISSON_CAVEAT: &str = "shown, not judged: random arrivals queue for slots \
    (Erlang C); the target is read on a constant arrival rate, as load tools send";

fn shown(value: Option<f64>) -> String {
    value.map_or("missing".to_owned(), |value| format!("{value:.1}"))
}

/// The targets; `machine_busy` says the machine-wide CPU figures are unreliable this time.
pub fn targets(figures: &Figures, machine_busy: bool) -> Vec<Target> {
    let get = |key: &str| figures.get(key);
    let ratio = |a: Option<f64>, b: Option<f64>| Some(a? / b?).filter(|r| r.is_finite());
    let mut targets = Vec::new();

    let (coderun, host) = (get("coderun.python.p50_ms"), get("b0.python.p50_ms"));
    targets.push(Target::new(
        "python hello, sequential idle: coderun p50 - host process p50",
        format!("{} ms - {} ms", shown(coderun), shown(host)),
        Some(coderun.zip(host).map(|(c, h)| c - h)).flatten(),
        "<=",
        10.0,
        "ms",
    ));

    let (saturation, churn) = (get("saturation.runs_per_s"), get("b2.python.runs_per_s"));
    targets.push(Target::new(
        "saturated throughput / container churn (B2)",
        format!("{} runs/s / {} runs/s", shown(saturation), shown(churn)),
        ratio(saturation, churn),
        ">=",
        3.0,
        "x",
    ));

    let p50 = get("coderun.python.p50_ms");
    let p99 = get("open_loop.even.p99_ms");
    targets.push(Target::new(
        "p99 at 70 % of saturation / idle p50 (python, evenly spaced)",
        format!("{} ms / {} ms", shown(p99), shown(p50)),
        ratio(p99, p50),
        "<=",
        3.0,
        "x",
    ));
    let p99 = get("open_loop.poisson.p99_ms");
    targets.push(
        Target::new(
            "p99 at 70 % of saturation / idle p50 (python, Poisson)",
            format!("{} ms / {} ms", shown(p99), shown(p50)),
            ratio(p99, p50),
            "<=",
            3.0,
            "x",
        )
        .shown_only(POISSON_CAVEAT),
    );

    let (overhead, program) = (get("cost.overhead_cpu_ms"), get("cost.program_cpu_ms"));
    targets.push(
        Target::new(
            "overhead CPU per run / the program's own (python hello)",
            format!("{} ms / {} ms", shown(overhead), shown(program)),
            ratio(overhead, program),
            "<=",
            1.0,
            "x",
        )
        .unless(machine_busy.then_some("the machine was busy with other work")),
    );

    for (service, limit) in MEMORY_LIMITS {
        let resident = get(&format!("memory.idle.{service}"));
        targets.push(Target::new(
            &format!("idle resident memory, {service}"),
            format!("{} MiB", shown(resident)),
            resident,
            "<=",
            *limit,
            "MiB",
        ));
    }
    targets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figure::{Figure, Rule};

    fn figures(values: &[(&str, f64)]) -> Figures {
        Figures(
            values
                .iter()
                .map(|(key, value)| Figure {
                    key: (*key).to_owned(),
                    section: String::new(),
                    label: String::new(),
                    value: Some(*value),
                    unit: "",
                    rule: Rule::Positive,
                })
                .collect(),
        )
    }

    #[test]
    fn targets_compare_the_right_ratios() {
        let targets = targets(
            &figures(&[
                ("coderun.python.p50_ms", 35.0),
                ("b0.python.p50_ms", 20.0),
                ("saturation.runs_per_s", 30.0),
                ("b2.python.runs_per_s", 5.0),
                ("open_loop.even.p99_ms", 70.0),
                ("open_loop.poisson.p99_ms", 210.0),
                ("cost.overhead_cpu_ms", 40.0),
                ("cost.program_cpu_ms", 20.0),
                ("memory.idle.executor", 30.0),
            ]),
            false,
        );
        let by_name = |start: &str| {
            targets
                .iter()
                .find(|target| target.name.starts_with(start))
                .expect("target")
        };
        assert_eq!(by_name("python hello").value, Some(15.0));
        assert_eq!(by_name("python hello").pass, Some(false));
        assert_eq!(by_name("saturated").value, Some(6.0));
        assert_eq!(by_name("saturated").pass, Some(true));
        assert_eq!(by_name("p99").value, Some(2.0));
        assert_eq!(by_name("p99").pass, Some(true));
        let poisson = by_name("p99 at 70 % of saturation / idle p50 (python, Poisson)");
        assert_eq!((poisson.value, poisson.pass), (Some(6.0), None));
        assert!(!poisson.judged);
        assert_eq!(by_name("overhead").pass, Some(false));
        assert_eq!(by_name("idle resident memory, executor").pass, Some(true));
        assert_eq!(by_name("idle resident memory, gateway").pass, None);
        let busy = super::targets(
            &figures(&[("cost.overhead_cpu_ms", 1.0), ("cost.program_cpu_ms", 20.0)]),
            true,
        );
        let overhead = busy
            .iter()
            .find(|target| target.name.starts_with("overhead"));
        assert_eq!(overhead.map(|target| target.pass), Some(None));
    }
}
