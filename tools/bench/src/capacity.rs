//! The capacity report (`--capacity docs/capacity.md`): the machine, runs per second per core
//! of each language's hello world and of a CPU-bound program, coderun's overhead CPU per run,
//! and what a million runs cost on an instance of a given size and price.

use std::fmt::Write as _;

use crate::figures::CPU_GROUPS;
use crate::report::{number, Report};

/// Inputs of the cost model.
#[derive(Debug, Clone, Copy)]
pub struct CostModel {
    pub instance_vcpus: u32,
    /// USD per hour of the instance.
    pub hourly_price: f64,
}

impl CostModel {
    /// USD per million runs on the instance, when a vCPU does `runs_per_core` runs per second:
    /// hourly price / (runs per second per vCPU × vCPUs × 3600) × 10⁶.
    pub fn per_million_runs(&self, runs_per_core: f64) -> Option<f64> {
        let runs_per_hour = runs_per_core * f64::from(self.instance_vcpus) * 3600.0;
        (runs_per_hour > 0.0).then(|| self.hourly_price / runs_per_hour * 1e6)
    }
}

/// The executor settings a mode was benched with: the committed defaults that matter for
/// capacity, `worker.slots` as given, and every `--executor-env` override.
pub fn executor_settings(slots: u32, executor_env: &[String]) -> Vec<(String, String)> {
    let defaults: toml::Table =
        toml::from_str(coderun_executor::config::DEFAULTS).unwrap_or_default();
    let default = |section: &str, key: &str| {
        defaults
            .get(section)
            .and_then(|table| table.get(key))
            .map(|value| value.to_string())
            .unwrap_or_default()
    };
    let mut settings = vec![
        ("worker.slots".to_owned(), slots.to_string()),
        (
            "sandbox.isolation".to_owned(),
            default("sandbox", "isolation"),
        ),
        ("sandbox.runtime".to_owned(), default("sandbox", "runtime")),
        ("sandbox.cpus".to_owned(), default("sandbox", "cpus")),
        (
            "sandbox.warm_per_language".to_owned(),
            default("sandbox", "warm_per_language"),
        ),
    ];
    for assignment in executor_env {
        let Some((variable, value)) = assignment.split_once('=') else {
            continue;
        };
        let key = match variable.strip_prefix("CODERUN_EXECUTOR__") {
            Some(rest) => rest.to_ascii_lowercase().replace("__", "."),
            None => variable.to_owned(),
        };
        match settings.iter_mut().find(|(name, _)| *name == key) {
            Some(setting) => setting.1 = value.to_owned(),
            None => settings.push((key, value.to_owned())),
        }
    }
    settings
}

/// The mode's name: `--mode-name`, else the executor's isolation setting, else "strict".
pub fn mode_name(given: Option<&str>, settings: &[(String, String)]) -> String {
    given
        .map(str::to_owned)
        .or_else(|| {
            settings
                .iter()
                .find(|(key, value)| key == "sandbox.isolation" && !value.is_empty())
                .map(|(_, value)| value.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| "strict".to_owned())
}

/// The start of the report, before the modes' sections.
const HEADER: &str = "# Capacity\n\n\
Written by `tools/bench`: `scripts/bench.sh --capacity docs/capacity.md` writes the section of \
the mode it benched and keeps the other modes' sections (a mode is benched through the \
executor's configuration, e.g. `--executor-env CODERUN_EXECUTOR__SANDBOX__ISOLATION=strict`). \
Do not edit by hand. Every figure is one measurement on the machine named in its section, \
baselines and coderun side by side in the same run; another machine, or this one busier, gives \
other figures.\n";

/// Where each mode's section starts.
const MODE_HEADING: &str = "## Mode `";

/// `existing` (an earlier report, or nothing) with this run's mode's section written in place
/// of its old one, or after the others.
pub fn merged(existing: &str, report: &Report, model: CostModel) -> String {
    let section = mode_section(report, model);
    merge_section(existing, &report.settings.mode, &section)
}

/// `existing`'s mode sections with `mode`'s replaced by `section` (or added last), under the
/// report's header.
fn merge_section(existing: &str, mode: &str, section: &str) -> String {
    let heading = format!("{MODE_HEADING}{mode}`");
    let mut sections: Vec<String> = Vec::new();
    let mut rest = existing.find(MODE_HEADING).map_or("", |at| &existing[at..]);
    while !rest.is_empty() {
        let end = rest[MODE_HEADING.len()..]
            .find(MODE_HEADING)
            .map_or(rest.len(), |at| at + MODE_HEADING.len());
        sections.push(rest[..end].trim_end().to_owned());
        rest = &rest[end..];
    }
    let section = section.trim_end().to_owned();
    match sections
        .iter_mut()
        .find(|old| old.lines().next() == Some(heading.as_str()))
    {
        Some(old) => *old = section,
        None => sections.push(section),
    }
    format!("{HEADER}\n{}\n", sections.join("\n\n"))
}

/// One mode's section: where and how it was measured, runs per second, overhead and cost.
fn mode_section(report: &Report, model: CostModel) -> String {
    let (machine, settings) = (&report.machine, &report.settings);
    let get = |key: &str| report.figures.get(key);
    let shown = |value: Option<f64>| value.map_or("missing".to_owned(), number);
    let mut out = String::new();
    let _ = writeln!(out, "{MODE_HEADING}{}`\n", settings.mode);
    let _ = writeln!(out, "### Machine\n");
    let _ = writeln!(out, "| cores | CPU | kernel | Docker | measured |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} |\n",
        machine.cores, machine.cpu_model, machine.kernel, machine.docker, machine.date
    );
    let _ = writeln!(out, "Command: `{}`\n", settings.command);
    let _ = writeln!(out, "The executor ran with:\n");
    for (key, value) in executor_settings(settings.slots, &settings.executor_env) {
        let _ = writeln!(out, "- `{key}` = `{}`", value.trim_matches('"'));
    }
    let _ = writeln!(
        out,
        "\nOther settings are the committed defaults (`services/*/config/default.toml`).\n"
    );

    let _ = writeln!(out, "### Runs per second per core\n");
    let _ = writeln!(
        out,
        "Each program in a closed loop at the saturating concurrency of the python hello world \
         ({} at once), every answer checked; per core is runs per second divided by the {} \
         cores. The cost column is the cost model below.\n",
        shown(get("saturation.concurrency")),
        machine.cores
    );
    let _ = writeln!(
        out,
        "| program | runs/s | runs/s per core | USD per million runs (example price) |"
    );
    let _ = writeln!(out, "|---|---|---|---|");
    let mut programs: Vec<(String, String)> = report
        .figures
        .0
        .iter()
        .filter_map(|figure| {
            let name = figure
                .key
                .strip_prefix("capacity.")?
                .strip_suffix(".runs_per_s_per_core")?;
            Some((name.to_owned(), format!("capacity.{name}")))
        })
        .collect();
    programs.sort_by_key(|(name, _)| name == "cpu_bound");
    for (name, key) in programs {
        let per_core = get(&format!("{key}.runs_per_s_per_core"));
        let label = if name == "cpu_bound" {
            format!(
                "CPU-bound python (~{} ms of CPU)",
                shown(get("capacity.cpu_bound.program_cpu_ms"))
            )
        } else {
            format!("{name} hello world")
        };
        let cost = per_core.and_then(|runs| model.per_million_runs(runs));
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} |",
            shown(get(&format!("{key}.runs_per_s"))),
            shown(per_core),
            cost.map_or("missing".to_owned(), |usd| format!("{usd:.4}"))
        );
    }

    let _ = writeln!(out, "\n### Overhead CPU per run\n");
    let _ = writeln!(
        out,
        "The python hello world in a closed loop: the machine's busy CPU (`/proc/stat`) per run, \
         less the bench's own and the mean rate of two idle windows (just before the load, and \
         after it settled), is {} ms; the program's own CPU (what the runs report) is {} ms; \
         coderun's overhead is the difference, **{} ms per run**. The processes below, each \
         less its own idle rate, account for {} ms of it at least:\n",
        shown(get("cost.machine_cpu_ms")),
        shown(get("cost.program_cpu_ms")),
        shown(get("cost.overhead_cpu_ms")),
        shown(get("cost.listed_cpu_ms"))
    );
    let _ = writeln!(out, "| process | CPU ms per run |");
    let _ = writeln!(out, "|---|---|");
    for group in CPU_GROUPS {
        let _ = writeln!(
            out,
            "| {group} | {} |",
            shown(get(&format!("cost.cpu.{group}_ms")))
        );
    }
    let _ = writeln!(
        out,
        "| the rest: runc, the agents, the kernel (short-lived, only in the machine's figure) | {} |",
        shown(get("cost.cpu.unattributed_ms"))
    );
    for note in &report.notes {
        let _ = writeln!(out, "\n**Note:** {note}.");
    }

    let _ = writeln!(out, "\n### Cost model\n");
    let _ = writeln!(
        out,
        "USD per million runs = hourly price / (runs per second per vCPU × vCPUs × 3600) × 10⁶, \
         taking one vCPU of the instance to do what one core did here. Inputs: {} vCPUs \
         (`--instance-vcpus`) at {} USD per hour (`--hourly-price`) — an example input, not a \
         claim about any provider's price. The figures are for mode `{}`.",
        model.instance_vcpus, model.hourly_price, settings.mode
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_million_runs_cost_the_hours_they_take() {
        let model = CostModel {
            instance_vcpus: 2,
            hourly_price: 0.036,
        };
        // 10 runs/s per vCPU × 2 vCPUs = 72 000 runs an hour: 10⁶ runs take 13.9 hours.
        let cost = model.per_million_runs(10.0).expect("positive rate");
        assert!((cost - 0.5).abs() < 1e-9, "{cost}");
        assert_eq!(model.per_million_runs(0.0), None);
    }

    #[test]
    fn a_mode_section_replaces_its_own_and_keeps_the_others() {
        let first = merge_section("", "fast", "## Mode `fast`\n\nfast 1\n");
        let both = merge_section(&first, "strict", "## Mode `strict`\n\nstrict 1\n");
        let again = merge_section(&both, "fast", "## Mode `fast`\n\nfast 2\n");
        assert!(again.starts_with(HEADER), "{again}");
        assert_eq!(again.matches(MODE_HEADING).count(), 2, "{again}");
        let (fast, strict) = (again.find("fast 2"), again.find("strict 1"));
        assert!(
            fast.is_some_and(|fast| strict.is_some_and(|strict| fast < strict)),
            "{again}"
        );
        assert!(!again.contains("fast 1"), "{again}");
    }

    #[test]
    fn executor_overrides_replace_the_defaults_they_name() {
        let settings =
            executor_settings(8, &["CODERUN_EXECUTOR__SANDBOX__RUNTIME=runsc".to_owned()]);
        let get = |key: &str| {
            settings
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.clone())
        };
        assert_eq!(get("worker.slots").as_deref(), Some("8"));
        assert_eq!(get("sandbox.runtime").as_deref(), Some("runsc"));
        assert_eq!(get("sandbox.cpus").as_deref(), Some("1.0"));
        let strict = executor_settings(4, &["CODERUN_EXECUTOR__SANDBOX__ISOLATION=strict".into()]);
        assert_eq!(mode_name(None, &strict), "strict");
        assert_eq!(mode_name(Some("gvisor"), &strict), "gvisor");
    }
}
