use clap::Parser;
use coderun_executor::config::{Config, DEFAULTS, LIST_KEYS};
use coderun_executor::Application;

/// coderun executor: runs each job in a locked-down container.
#[derive(Parser)]
#[command(name = "coderun-executor", version, about)]
struct Args {
    #[command(flatten)]
    boot: coderun_boot::ConfigArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _tracing = coderun_telemetry::logs::init("coderun-executor");
    let config: Config = coderun_boot::load_or_exit(
        "EXECUTOR",
        DEFAULTS,
        LIST_KEYS,
        &args.boot,
        Config::validate,
    );
    let shutdown = coderun_boot::shutdown_on_signal();
    Application::build(config).await?.run(shutdown).await
}
