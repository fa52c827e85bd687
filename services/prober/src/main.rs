use std::time::Duration;

use clap::Parser;
use coderun_client::Client;
use coderun_prober::{run_round, CheckResult, Config, DEFAULTS, LIST_KEYS};

/// coderun prober: synthetic checks through the public API.
#[derive(Parser)]
#[command(name = "coderun-prober", version, about)]
struct Args {
    #[command(flatten)]
    boot: coderun_boot::ConfigArgs,
    /// Run every check once, print one line per check, and exit 1 if any failed (a release
    /// gate); without it, the checks run every `probe.interval_secs` until SIGTERM.
    #[arg(long)]
    once: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    coderun_boot::init_tracing();
    let config: Config =
        coderun_boot::load_or_exit("PROBER", DEFAULTS, LIST_KEYS, &args.boot, Config::validate);
    let client = Client::new(&config.target.base_url, &config.target.api_key)?;
    let (languages, timing) = (config.probe.languages.clone(), config.probe.timing());
    if args.once {
        let results = run_round(&client, &config.target.api_key, &languages, timing).await;
        for result in &results {
            let mark = match (result.passed, result.within_objective) {
                (false, _) => "FAIL",
                (true, false) => "slow",
                (true, true) => "pass",
            };
            println!(
                "{mark}  {:<28} {:>7} ms  {}",
                result.name, result.millis, result.detail
            );
        }
        let failed = results.iter().filter(|result| !result.passed).count();
        println!("{} checks, {failed} failed", results.len());
        if failed > 0 {
            std::process::exit(1);
        }
        return Ok(());
    }
    let shutdown = coderun_boot::shutdown_on_signal();
    let mut ticker = tokio::time::interval(Duration::from_secs(config.probe.interval_secs));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = ticker.tick() => log_round(run_round(&client, &config.target.api_key, &languages, timing).await),
        }
    }
}

fn log_round(results: Vec<CheckResult>) {
    for result in results {
        let millis = result.millis as u64;
        if !result.passed {
            tracing::error!(check = %result.name, millis, detail = %result.detail, "FAIL");
        } else if !result.within_objective {
            tracing::warn!(check = %result.name, millis, "slow");
        } else {
            tracing::info!(check = %result.name, millis, "pass");
        }
    }
}
