use clap::Parser;
use coderun_scheduler::config::{Config, DEFAULTS, LIST_KEYS};
use coderun_scheduler::Application;

/// coderun scheduler: admission, tenant fairness and routing of runs to executor pools.
#[derive(Parser)]
#[command(name = "coderun-scheduler", version, about)]
struct Args {
    #[command(flatten)]
    boot: coderun_boot::ConfigArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _tracing = coderun_telemetry::logs::init("coderun-scheduler");
    let config: Config = coderun_boot::load_or_exit(
        "SCHEDULER",
        DEFAULTS,
        LIST_KEYS,
        &args.boot,
        Config::validate,
    );
    let shutdown = coderun_boot::shutdown_on_signal();
    Application::build(config).await?.run(shutdown).await
}
