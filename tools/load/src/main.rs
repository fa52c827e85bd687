use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = coderun_load::args::Args::parse();
    match coderun_load::run(args).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(error) => {
            eprintln!("coderun-load: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}
