use clap::Parser;
use coderun_prober::{Config, Listeners, Prober, DEFAULTS, LIST_KEYS};

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
    let tracing_guard = coderun_telemetry::logs::init("coderun-prober");
    let config: Config =
        coderun_boot::load_or_exit("PROBER", DEFAULTS, LIST_KEYS, &args.boot, Config::validate);
    let listeners = if args.once {
        Listeners::ReceiverOnly
    } else {
        Listeners::WithOps
    };
    let prober = Prober::start(config, listeners).await?;
    if args.once {
        let round = prober.round().await;
        print!("{}", round.table());
        prober.stop().await;
        if round.failed() > 0 {
            // Exported spans are flushed before the exit.
            drop(tracing_guard);
            std::process::exit(1);
        }
        return Ok(());
    }
    let shutdown = coderun_boot::shutdown_on_signal();
    prober.run(shutdown).await;
    Ok(())
}
