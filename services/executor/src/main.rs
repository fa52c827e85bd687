use coderun_executor::config::{Config, DEFAULTS, LIST_KEYS};
use coderun_executor::Application;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    coderun_boot::init_tracing();
    let config: Config = coderun_boot::load_or_exit("EXECUTOR", DEFAULTS, LIST_KEYS);
    coderun_boot::exit_if_invalid("executor", config.validate());
    let shutdown = coderun_boot::shutdown_on_signal();
    Application::build(config).await?.run(shutdown).await
}
