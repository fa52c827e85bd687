//! The per-request budgets: however each limit is set, one request may not ask for more output
//! in all (tests × (stdout + stderr caps)) nor more wall time in all (compile + tests × run
//! wall) than the configured budgets, so no request can hold an executor slot for hours or
//! make it hold gigabytes.

use coderun_schema::catalog::Limits;
use coderun_schema::problem::FieldError;

use crate::config::RunsConfig;

/// What a request asks for in all.
#[derive(Debug, Clone, Copy)]
pub struct Asked {
    pub limits: Limits,
    /// Executions of the program (tests, or one).
    pub executions: u64,
    /// Whether the request listed `tests` (then `tests` is named in the errors too).
    pub explicit_tests: bool,
    /// Whether the language has a compile stage.
    pub compiles: bool,
}

/// The problems of a request over a budget, each naming the fields that add up to it.
pub fn over_budget(asked: Asked, settings: &RunsConfig) -> Vec<FieldError> {
    let mut problems = Vec::new();
    let mut refuse = |limit_field: &str, message: String| {
        if asked.explicit_tests {
            problems.push(FieldError {
                field: "tests".to_owned(),
                message: message.clone(),
            });
        }
        problems.push(FieldError {
            field: limit_field.to_owned(),
            message,
        });
    };
    let run = asked.limits.run;
    let output_kb = asked
        .executions
        .saturating_mul(run.output_kb.saturating_mul(2));
    if output_kb > settings.max_output_kb {
        refuse(
            "limits.run.output_kb",
            format!(
                "{} execution(s) × (stdout + stderr of {} KiB each) = {output_kb} KiB, over the per-request output budget of {} KiB",
                asked.executions, run.output_kb, settings.max_output_kb
            ),
        );
    }
    let compile_ms = if asked.compiles {
        asked.limits.compile.wall_ms
    } else {
        0
    };
    let wall_ms = compile_ms.saturating_add(asked.executions.saturating_mul(run.wall_ms));
    if wall_ms > settings.max_wall_ms {
        refuse(
            "limits.run.wall_ms",
            format!(
                "compile {compile_ms} ms + {} execution(s) × {} ms = {wall_ms} ms, over the per-request wall-time budget of {} ms",
                asked.executions, run.wall_ms, settings.max_wall_ms
            ),
        );
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use coderun_schema::catalog::Catalog;

    fn asked(executions: u64, output_kb: u64, wall_ms: u64) -> Asked {
        let mut limits = Catalog::builtin().limits.default;
        limits.run.output_kb = output_kb;
        limits.run.wall_ms = wall_ms;
        Asked {
            limits,
            executions,
            explicit_tests: true,
            compiles: true,
        }
    }

    fn fields(problems: &[FieldError]) -> Vec<&str> {
        problems
            .iter()
            .map(|problem| problem.field.as_str())
            .collect()
    }

    #[test]
    fn each_limit_alone_may_be_fine_while_the_sum_is_not() {
        let settings = crate::config::Config::defaults_for_tests().runs;
        assert!(
            over_budget(asked(100, 64, 5_000), &settings).is_empty(),
            "the defaults fit"
        );
        assert!(
            over_budget(asked(1, 8192, 60_000), &settings).is_empty(),
            "one maximal run fits"
        );
        assert_eq!(
            fields(&over_budget(asked(100, 8192, 1_000), &settings)),
            ["tests", "limits.run.output_kb"]
        );
        assert_eq!(
            fields(&over_budget(asked(100, 64, 60_000), &settings)),
            ["tests", "limits.run.wall_ms"]
        );
    }

    #[test]
    fn a_request_exactly_at_a_budget_fits_and_one_more_does_not() {
        let settings = crate::config::Config::defaults_for_tests().runs;
        let half = settings.max_output_kb / 2;
        assert!(over_budget(asked(1, half, 1_000), &settings).is_empty());
        assert_eq!(
            fields(&over_budget(asked(1, half + 1, 1_000), &settings)),
            ["tests", "limits.run.output_kb"]
        );
        let compile_ms = Catalog::builtin().limits.default.compile.wall_ms;
        let run_ms = settings.max_wall_ms - compile_ms;
        assert!(over_budget(asked(1, 64, run_ms), &settings).is_empty());
        assert_eq!(
            fields(&over_budget(asked(1, 64, run_ms + 1), &settings)),
            ["tests", "limits.run.wall_ms"]
        );
    }

    #[test]
    fn compile_time_counts_only_where_there_is_a_compile_stage_and_tests_only_when_listed() {
        let settings = crate::config::Config::defaults_for_tests().runs;
        let interpreted = Asked {
            compiles: false,
            explicit_tests: false,
            ..asked(1, 64, settings.max_wall_ms)
        };
        assert!(over_budget(interpreted, &settings).is_empty());
        let compiled = Asked {
            explicit_tests: false,
            ..asked(1, 64, settings.max_wall_ms)
        };
        assert_eq!(
            fields(&over_budget(compiled, &settings)),
            ["limits.run.wall_ms"]
        );
    }
}
