//! `portcullis serve`: open the store, prepare keys, listen, shut down gracefully.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::app::{router, AppState};
use crate::cli::redact_url;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, LogConfig, Mode};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("database {url}: {source}")]
    Database { url: String, source: StoreError },
    #[error("signing keys: {0}")]
    Keys(#[from] crate::keys::KeyError),
    #[error("mode = production requires a key-encryption key: set keys.kek (PORTCULLIS_KEYS_KEK) or keys.kek_file (PORTCULLIS_KEYS_KEK_FILE); `portcullis keys generate-kek` makes one")]
    NoKek,
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

/// Load (or generate) every server's keys before taking traffic. Private keys are sealed
/// under the KEK first; a wrong or missing KEK stops the start here, not a request later.
pub async fn prepare(state: &AppState) -> Result<(), ServeError> {
    if state.keys.encrypts()? {
        let sealed = state.keys.seal_stored_keys().await?;
        if sealed > 0 {
            tracing::info!(keys = sealed, "signing keys re-encrypted under keys.kek");
        }
    } else if state.config.mode == Mode::Production {
        return Err(ServeError::NoKek);
    } else {
        tracing::warn!(
            "NO KEY-ENCRYPTION KEY: signing keys are stored UNENCRYPTED in the database. \
             Set keys.kek or keys.kek_file (required with mode = production)."
        );
    }
    let servers = state
        .store
        .servers()
        .await
        .map_err(|source| ServeError::Database {
            url: redact_url(&state.config.database_url),
            source,
        })?;
    for server in servers {
        let set = state.keys.key_set(&server, state.now()).await?;
        let undecryptable = set.undecryptable().next().map(|(_, r)| r.to_string());
        if let Some(reason) = undecryptable {
            return Err(ServeError::Keys(crate::keys::KeyError::Kek(reason)));
        }
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
    // Every replica checks the schedule; the database lets one of them rotate.
    let rotation = tokio::spawn(crate::keys::rotation::run(
        state.clone(),
        state.config.keys.cache_ttl.as_duration(),
    ));
    let app = router(state);
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
    rotation.abort();
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
