use coderun_gateway::config::{Config, DEFAULTS, LIST_KEYS};
use coderun_gateway::Application;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    coderun_boot::init_tracing();
    let config: Config = coderun_boot::load_or_exit("GATEWAY", DEFAULTS, LIST_KEYS);
    coderun_boot::exit_if_invalid("gateway", config.validate());
    let shutdown = coderun_boot::shutdown_on_signal();
    Application::build(config).await?.run(shutdown).await
}
