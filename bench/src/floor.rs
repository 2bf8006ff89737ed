//! `floor`: an empty axum server (`GET /` answers `ok`), on the same runtime, listener and
//! framework as Portcullis. bench/run.sh measures it pinned and loaded exactly like the server,
//! so every run states what this machine, its loopback and the load generator allow at all:
//! the ceiling for the static endpoints, and the fixed cost under every other scenario.

use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let Some(listen) = std::env::args().nth(1) else {
        eprintln!("usage: floor HOST:PORT");
        return std::process::ExitCode::FAILURE;
    };
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("floor: cannot listen on {listen}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // As Portcullis does with every accepted connection.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app = Router::new().route("/", get(|| async { "ok" }));
    match axum::serve(listener, app).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floor: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
