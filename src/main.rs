//! The `portcullis` binary: parse the command line and dispatch.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than glibc's malloc: after a process has served discovery, keys and tokens
/// for thousands of authorization servers, glibc's heap makes every later request cost more
/// CPU (same instructions, more time: docs/performance.md, "Tenants"); mimalloc's per-thread
/// free lists do not degrade that way.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = portcullis::cli::Cli::parse();
    portcullis::cli::run(cli).await
}
