use coderun_client::Client;
use coderun_prober::{check_hello_worlds, Config, DEFAULTS};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    coderun_boot::init_tracing();
    let once = std::env::args().skip(1).any(|arg| arg == "--once");
    if !once {
        eprintln!("coderun-prober: only --once is implemented so far (the periodic loop and metrics are not built yet)");
        std::process::exit(coderun_boot::EXIT_BAD_CONFIG);
    }
    let config: Config =
        coderun_boot::load_config("PROBER", DEFAULTS, None, &[]).unwrap_or_else(|message| {
            eprintln!("coderun-prober: {message}");
            std::process::exit(coderun_boot::EXIT_BAD_CONFIG);
        });
    let client = Client::new(&config.target.base_url, &config.target.api_key)?;
    let results = check_hello_worlds(&client).await?;
    let failed = results.iter().filter(|result| !result.passed).count();
    for result in &results {
        let mark = if result.passed { "pass" } else { "FAIL" };
        println!(
            "{mark} {} ({} ms): {}",
            result.name, result.millis, result.detail
        );
    }
    if results.is_empty() || failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}
