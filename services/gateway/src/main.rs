use clap::Parser;
use coderun_gateway::config::{Config, DEFAULTS, LIST_KEYS};
use coderun_gateway::Application;

/// coderun gateway: the public HTTP API.
#[derive(Parser)]
#[command(name = "coderun-gateway", version, about)]
struct Args {
    #[command(flatten)]
    boot: coderun_boot::ConfigArgs,
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _tracing = coderun_telemetry::logs::init("coderun-gateway");
    let config: Config =
        coderun_boot::load_or_exit("GATEWAY", DEFAULTS, LIST_KEYS, &args.boot, Config::validate);
    let shutdown = coderun_boot::shutdown_on_signal();
    Application::build(config).await?.run(shutdown).await
}
