//! `portcullis serve`: open the store, prepare keys, listen, shut down gracefully.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::app::{router, AppState};
use crate::cli::redact_url;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, LogConfig};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("database {url}: {source}")]
    Database { url: String, source: StoreError },
    #[error("signing keys: {0}")]
    Keys(#[from] crate::keys::KeyError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

pub fn init_tracing(log: &LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_new(&log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // try_init: a second initialisation (tests) is not an error worth failing for.
    let _ = if log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Open and migrate the store, and make sure the default server exists.
pub async fn open(config: &Config, clock: &dyn Clock) -> Result<Store, ServeError> {
    let db_error = |source| ServeError::Database {
        url: redact_url(&config.database_url),
        source,
    };
    let store = Store::connect(&config.database_url, config.database_max_connections)
        .await
        .map_err(db_error)?;
    store.migrate().await.map_err(db_error)?;
    store
        .ensure_default_server(clock.now())
        .await
        .map_err(db_error)?;
    Ok(store)
}

/// Load (or generate) every server's keys before taking traffic.
pub async fn prepare(state: &AppState) -> Result<(), ServeError> {
    let servers = state
        .store
        .servers()
        .await
        .map_err(|source| ServeError::Database {
            url: redact_url(&state.config.database_url),
            source,
        })?;
    for server in servers {
        state.keys.key_set(&server, state.now()).await?;
    }
    Ok(())
}

pub async fn run(config: Config) -> Result<(), ServeError> {
    init_tracing(&config.log);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = open(&config, clock.as_ref()).await?;
    let addr = config.listen_addr();
    let grace = config.http.shutdown_grace.as_duration();
    let state = AppState::new(config, store.clone(), clock);
    prepare(&state).await?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen {
            addr: addr.to_string(),
            source,
        })?;
    tracing::info!(
        issuer = %state.config.issuer,
        listen = %addr,
        database = store.backend(),
        "portcullis is ready"
    );
    let housekeeping = crate::housekeeping::spawn(state.clone());
    // The peer's address reaches handlers (`ClientIp`) as `ConnectInfo<SocketAddr>`.
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let stopping = Arc::new(Notify::new());
    let notify = stopping.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        notify.notify_waiters();
    });
    tokio::select! {
        result = server => result?,
        _ = async { stopping.notified().await; tokio::time::sleep(grace).await } => {
            tracing::warn!("shutdown grace period over; closing remaining connections");
        }
    }
    if let Some(task) = housekeeping {
        task.abort();
    }
    store.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
