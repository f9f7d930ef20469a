//! The `fabricsim` binary: parse the command line, install the crypto provider and
//! tracing, run the command, print its error once.

use std::process::ExitCode;

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

/// What the nodes log when `FABRICSIM_LOG` is not set: fabricsim's own warnings. openraft
/// reports every unreachable peer as an error, which is routine while nodes stop and start.
const DEFAULT_LOG: &str = "warn,openraft=off";

#[tokio::main]
async fn main() -> ExitCode {
    let cli = fabricsim::commands::Cli::parse();
    // One process-wide TLS provider; the library also passes it explicitly everywhere.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("FABRICSIM_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG)),
        )
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
