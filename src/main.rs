//! The `portcullis` binary: parse the command line and dispatch.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = portcullis::cli::Cli::parse();
    portcullis::cli::run(cli).await
}
