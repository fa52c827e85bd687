use std::time::Duration;

use clap::Parser;
use coderun_client::Client;
use coderun_prober::{check_hello_worlds, CheckResult, Config, DEFAULTS};

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
        coderun_boot::load_or_exit("PROBER", DEFAULTS, &[], &args.boot, Config::validate);
    let client = Client::new(&config.target.base_url, &config.target.api_key)?;
    if args.once {
        let results = check_hello_worlds(&client).await?;
        for result in &results {
            let mark = if result.passed { "pass" } else { "FAIL" };
            println!(
                "{mark} {} ({} ms): {}",
                result.name, result.millis, result.detail
            );
        }
        if results.is_empty() || results.iter().any(|result| !result.passed) {
            std::process::exit(1);
        }
        return Ok(());
    }
    let shutdown = coderun_boot::shutdown_on_signal();
    let mut ticker = tokio::time::interval(Duration::from_secs(config.probe.interval_secs));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = ticker.tick() => log_round(check_hello_worlds(&client).await),
        }
    }
}

fn log_round(round: anyhow::Result<Vec<CheckResult>>) {
    match round {
        Ok(results) => {
            for result in results {
                if result.passed {
                    tracing::info!(check = %result.name, millis = result.millis as u64, "pass");
                } else {
                    tracing::error!(check = %result.name, detail = %result.detail, "FAIL");
                }
            }
        }
        Err(error) => tracing::error!(error = %format!("{error:#}"), "the checks could not run"),
    }
}
