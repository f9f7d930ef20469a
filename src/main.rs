//! The `fabricsim` binary: parse the command line, install the crypto provider and
//! tracing, run the command, print its error once.

use std::process::ExitCode;

use clap::Parser as _;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// What the nodes log when `FABRICSIM_LOG` is not set (or does not parse): fabricsim's own
/// warnings. openraft reports every unreachable peer as an error, which is routine while
/// nodes stop and start.
const DEFAULT_LOG: &str = "warn,openraft=off";

/// The allocator of every node in this process. Under glibc's, the threads of a large
/// fabric waited for each other's arena locks (a log writer frees what a runtime thread
/// allocated): at 50 nodes, two thirds of the process's `futex` calls were those locks.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = fabricsim::commands::Cli::parse();
    // One process-wide TLS provider; the library also passes it explicitly everywhere.
    let _ = fabricsim::wire::crypto_provider()
        .as_ref()
        .clone()
        .install_default();
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(log_filter()),
        )
        .with(fabricsim::commands::logs::layer())
        .init();
    match fabricsim::commands::run_blocking(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fabricsim: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The log filter from `FABRICSIM_LOG`: a `RUST_LOG`-style list of `level` and
/// `target=level` entries, such as `info,openraft=warn`.
fn log_filter() -> Targets {
    std::env::var("FABRICSIM_LOG")
        .ok()
        .filter(|text| !text.trim().is_empty())
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| DEFAULT_LOG.parse().expect("DEFAULT_LOG is a valid filter"))
}
