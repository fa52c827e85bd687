//! The mix of runs a load sends: which language, which verdict the program must get, how
//! often; each entry's program and what its answer must be.

use coderun_schema::catalog::{Catalog, LanguageSpec};
use coderun_schema::run::{LimitsRequest, RunRequest, StageLimitsRequest, TestCase, Verdict};

/// A busy loop per language, for `time_limit` entries.
const BUSY_LOOPS: [(&str, &str); 11] = [
    ("python", "while True:\n    pass\n"),
    ("c", "int main(void) { for (;;) {} }\n"),
    ("cpp", "int main() { for (;;) {} }\n"),
    ("bash", "while :; do :; done\n"),
    ("javascript", "for (;;) {}\n"),
    ("ruby", "loop {}\n"),
    ("perl", "1 while 1;\n"),
    ("php", "<?php while (true) {}\n"),
    ("lua", "while true do end\n"),
    ("go", "package main\n\nfunc main() {\n\tfor {\n\t}\n}\n"),
    ("rust", "fn main() {\n    loop {}\n}\n"),
];

/// A source no compiler accepts.
const NOT_A_PROGRAM: &str = "}}} this is not a program {{{\n";

/// One kind of run in the mix.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// `language:verdict`, how the report names it.
    pub label: String,
    pub language: String,
    pub verdict: Verdict,
    pub weight: u32,
    source: String,
}

/// One run to send and what its answer must be.
#[derive(Debug, Clone)]
pub struct Job {
    /// Its number in the load (from 0).
    pub number: u64,
    pub label: String,
    pub request: RunRequest,
    pub verdict: Verdict,
    /// The whole stdout an `ok` run must print.
    pub stdout: Option<String>,
}

/// The entries and the order they are sent in.
#[derive(Debug, Clone)]
pub struct Mix {
    pub entries: Vec<Entry>,
    /// Indexes into `entries`, one cycle of the sending order: each entry `weight` times,
    /// spread out (smooth weighted round robin) rather than in blocks.
    cycle: Vec<usize>,
}

impl Mix {
    /// Parses `language:verdict=weight,…` against the catalog.
    pub fn parse(text: &str, catalog: &Catalog) -> Result<Self, String> {
        let mut entries = Vec::new();
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            entries.push(entry(item, catalog)?);
        }
        if entries.is_empty() {
            return Err("the mix is empty".to_owned());
        }
        let cycle = smooth_cycle(&entries);
        Ok(Self { entries, cycle })
    }

    /// The `number`th run of the load (numbers start at 0); `ok` runs echo a line holding
    /// the number, so an answer that is another run's shows.
    pub fn job(&self, number: u64) -> Job {
        let entry = &self.entries[self.cycle[(number % self.cycle.len() as u64) as usize]];
        let mut request = RunRequest {
            language: entry.language.clone(),
            source: Some(entry.source.clone()),
            ..Default::default()
        };
        let mut stdout = None;
        match entry.verdict {
            Verdict::Ok => {
                let line = format!("coderun-load run {number}\n");
                request.stdin = line.clone();
                stdout = Some(line);
            }
            Verdict::WrongAnswer => {
                request.tests = vec![TestCase {
                    stdin: format!("run {number}\n"),
                    expected_stdout: Some(format!("not run {number}\n")),
                }];
            }
            Verdict::TimeLimit => {
                request.limits = LimitsRequest {
                    run: Some(StageLimitsRequest {
                        cpu_ms: Some(300),
                        wall_ms: Some(1_000),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
            }
            _ => {}
        }
        Job {
            number,
            label: entry.label.clone(),
            request,
            verdict: entry.verdict,
            stdout,
        }
    }
}

fn entry(item: &str, catalog: &Catalog) -> Result<Entry, String> {
    let (kind, weight) = item.split_once('=').unwrap_or((item, "1"));
    let weight: u32 = weight
        .parse()
        .ok()
        .filter(|weight| *weight > 0)
        .ok_or_else(|| format!("`{item}`: the weight must be a whole number above 0"))?;
    let (language, verdict) = kind
        .split_once(':')
        .ok_or_else(|| format!("`{item}` is not `language:verdict=weight`"))?;
    let spec = catalog
        .find(language)
        .ok_or_else(|| format!("`{item}`: no language `{language}` in the catalog"))?;
    let verdict = parse_verdict(verdict).ok_or_else(|| {
        format!("`{item}`: the verdict must be ok, wrong_answer, runtime_error, compile_error or time_limit")
    })?;
    let source = source(spec, verdict).ok_or_else(|| match verdict {
        Verdict::CompileError => format!("`{item}`: {} is not compiled", spec.id),
        _ => format!(
            "`{item}`: no busy loop for {}; time_limit is for {}",
            spec.id,
            BUSY_LOOPS.map(|(id, _)| id).join(", ")
        ),
    })?;
    Ok(Entry {
        label: format!("{}:{}", spec.id, verdict_name(verdict)),
        language: spec.id.clone(),
        verdict,
        weight,
        source,
    })
}

fn parse_verdict(name: &str) -> Option<Verdict> {
    [
        Verdict::Ok,
        Verdict::WrongAnswer,
        Verdict::RuntimeError,
        Verdict::CompileError,
        Verdict::TimeLimit,
    ]
    .into_iter()
    .find(|verdict| verdict_name(*verdict) == name)
}

/// The verdict as the API writes it.
pub fn verdict_name(verdict: Verdict) -> String {
    serde_json::to_value(verdict)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{verdict:?}"))
}

fn source(spec: &LanguageSpec, verdict: Verdict) -> Option<String> {
    match verdict {
        Verdict::Ok | Verdict::WrongAnswer => Some(spec.echo_stdin.clone()),
        Verdict::RuntimeError => Some(spec.runtime_error.clone()),
        Verdict::CompileError => spec.compile.is_some().then(|| NOT_A_PROGRAM.to_owned()),
        Verdict::TimeLimit => BUSY_LOOPS
            .iter()
            .find(|(id, _)| *id == spec.id)
            .map(|(_, source)| (*source).to_owned()),
        _ => None,
    }
}

/// Smooth weighted round robin: each step every entry gains its weight, the richest is sent
/// and pays the total; weights 2 and 1 give a, b, a rather than a, a, b.
fn smooth_cycle(entries: &[Entry]) -> Vec<usize> {
    let total: i64 = entries.iter().map(|entry| i64::from(entry.weight)).sum();
    let mut credit = vec![0i64; entries.len()];
    (0..total)
        .map(|_| {
            for (credit, entry) in credit.iter_mut().zip(entries) {
                *credit += i64::from(entry.weight);
            }
            let richest = (0..entries.len())
                .max_by_key(|&index| (credit[index], std::cmp::Reverse(index)))
                .unwrap_or(0);
            credit[richest] -= total;
            richest
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(text: &str) -> Result<Mix, String> {
        Mix::parse(text, &Catalog::builtin())
    }

    #[test]
    fn the_default_mix_parses_and_sends_each_entry_by_its_weight() {
        let mix = mix(crate::args::DEFAULT_MIX).expect("the default mix parses");
        let total: u32 = mix.entries.iter().map(|entry| entry.weight).sum();
        let labels: Vec<String> = (0..u64::from(total)).map(|n| mix.job(n).label).collect();
        for entry in &mix.entries {
            let sent = labels.iter().filter(|label| **label == entry.label).count();
            assert_eq!(sent, entry.weight as usize, "{}", entry.label);
        }
        // Spread out: the heaviest entry is never sent three times running.
        assert!(!labels
            .windows(3)
            .any(|three| three.iter().all(|l| l == "python:ok")));
    }

    #[test]
    fn an_ok_run_must_echo_a_line_of_its_own() {
        let mix = mix("python:ok").expect("parses");
        let (first, second) = (mix.job(1), mix.job(2));
        assert_eq!(Some(&first.request.stdin), first.stdout.as_ref());
        assert_ne!(first.stdout, second.stdout);
        assert_eq!(first.verdict, Verdict::Ok);
    }

    #[test]
    fn each_verdict_gets_a_program_that_earns_it() {
        let mix = mix("c:compile_error,python:wrong_answer,bash:time_limit,ruby:runtime_error")
            .expect("parses");
        let jobs: Vec<Job> = (0..4).map(|n| mix.job(n)).collect();
        assert_eq!(jobs[0].request.source.as_deref(), Some(NOT_A_PROGRAM));
        let test = &jobs[1].request.tests[0];
        assert_ne!(Some(&test.stdin), test.expected_stdout.as_ref());
        let run_limits = jobs[2].request.limits.run.as_ref();
        assert_eq!(run_limits.and_then(|limits| limits.cpu_ms), Some(300));
        assert_eq!(jobs[3].verdict, Verdict::RuntimeError);
    }

    #[test]
    fn a_mix_that_cannot_be_sent_says_why() {
        assert!(mix("cobol:ok")
            .expect_err("refused")
            .contains("no language `cobol`"));
        assert!(mix("python:compile_error")
            .expect_err("refused")
            .contains("not compiled"));
        assert!(mix("sql:time_limit")
            .expect_err("refused")
            .contains("no busy loop"));
        assert!(mix("python:ok=0").expect_err("refused").contains("weight"));
        assert!(mix("python:cancelled")
            .expect_err("refused")
            .contains("verdict must be"));
        assert!(mix("").expect_err("refused").contains("empty"));
    }
}
