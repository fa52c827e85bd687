use coderun_scheduler::config::{Config, DEFAULTS, LIST_KEYS};
use coderun_scheduler::Application;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    coderun_boot::init_tracing();
    let config: Config = coderun_boot::load_or_exit("SCHEDULER", DEFAULTS, LIST_KEYS);
    coderun_boot::exit_if_invalid("scheduler", config.validate());
    let shutdown = coderun_boot::shutdown_on_signal();
    Application::build(config).await?.run(shutdown).await
}
