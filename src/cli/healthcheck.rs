//! `portcullis healthcheck`: a container HEALTHCHECK without curl in the image.

use std::time::Duration;

use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::CliError;
use crate::config::Config;

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// Address to probe (default: `listen`, with 0.0.0.0 read as 127.0.0.1).
    #[arg(long)]
    addr: Option<std::net::SocketAddr>,
}

pub async fn run(config: &Config, args: HealthcheckArgs) -> Result<(), CliError> {
    let mut addr = args.addr.unwrap_or(config.listen);
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let probe = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(3), probe)
        .await
        .map_err(|_| CliError(format!("{addr}: timed out")))?
        .map_err(|e| CliError(format!("{addr}: {e}")))?;
    if response.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(CliError(format!("{addr}: unhealthy")))
    }
}
