//! The `fabricsim` binary: parse the command line, install the crypto provider and
//! tracing, run the command, print its error once.

use std::process::ExitCode;

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = fabricsim::commands::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("FABRICSIM_LOG").unwrap_or_else(|_| EnvFilter::new("error")))
        .with_writer(std::io::stderr)
        .init();
    match fabricsim::commands::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fabricsim: {e}");
            ExitCode::FAILURE
        }
    }
}
