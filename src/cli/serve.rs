//! `portcullis serve`: open the store, prepare keys, listen, shut down gracefully.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

use super::redact_url;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, LogConfig, LogFormat, Mode};
use crate::http::{metrics_router, router};
use crate::state::AppState;
use crate::store::servers::DEFAULT_SERVER;
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
    let filter = log.level.env_filter();
    // Colour codes only on a terminal: in a file or a log collector they are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    // try_init: a second initialisation (tests) is not an error worth failing for.
    let _ = if log.format == LogFormat::Json {
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
    let store = Store::connect(&config.database_url, config.database_pool_size())
        .await
        .map_err(db_error)?;
    store.migrate().await.map_err(db_error)?;
    store.set_cache_refresh_interval(config.cache.refresh_interval.as_duration());
    store
        .ensure_builtin_servers(clock.now())
        .await
        .map_err(db_error)?;
    Ok(store)
}

/// Check the signing keys before taking traffic: keys not under the KEK are sealed under it,
/// and a wrong or missing KEK stops the start here, not a request later. Only the default
/// server's keys are loaded (or its first key generated): every other server's are read and
/// unsealed on first use (`KeyRing::key_set`), so start-up does not grow with their number.
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
    state.keys.check_readable_without_kek().await?;
    let db_error = |source| ServeError::Database {
        url: redact_url(&state.config.database_url),
        source,
    };
    let default = state
        .store
        .server(DEFAULT_SERVER)
        .await
        .map_err(db_error)?
        .ok_or_else(|| db_error(StoreError::NotFound(format!("server `{DEFAULT_SERVER}`"))))?;
    // One server's keys actually opened with this KEK: every key is under it now.
    let set = state.keys.key_set(&default, state.now()).await?;
    let undecryptable = set.undecryptable().next().map(|(_, r)| r.to_string());
    if let Some(reason) = undecryptable {
        return Err(ServeError::Keys(crate::keys::KeyError::Kek(reason)));
    }
    Ok(())
}

pub async fn run(config: Config) -> Result<(), ServeError> {
    init_tracing(&config.log);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = open(&config, clock.as_ref()).await?;
    let addr = config.listen;
    let grace = config.http.shutdown_grace.as_duration();
    let state = AppState::new(config, store.clone(), clock);
    prepare(&state).await?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen {
            addr: addr.to_string(),
            source,
        })?;
    let metrics = if state.config.metrics.enabled {
        Some(serve_metrics(&state).await?)
    } else {
        None
    };
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
    let housekeeping = crate::housekeeping::spawn(state.clone());
    // Every replica polls the logout outbox; a lease gives each delivery one sender.
    let logout_outbox = tokio::spawn(crate::logout::run(state.clone()));
    let checkpoints = state.store.spawn_wal_checkpoints();
    let audit = state.audit.clone();
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let (stop_accepting, stop) = watch::channel(false);
    let listener = DrainingListener {
        addr: listener.local_addr()?,
        listener: Some(listener),
        queued: VecDeque::new(),
        stop,
    }
    // tap_io also makes the peer address available to `ConnectInfo<SocketAddr>` (axum
    // implements that for tapped listeners); small responses should not wait for Nagle.
    .tap_io(|tcp: &mut TcpStream| {
        let _ = tcp.set_nodelay(true);
    });
    let stopping = Arc::new(Notify::new());
    let notify = stopping.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stop_accepting.send(true);
        // axum's graceful shutdown drops a connection that has not yet sent the first bytes of
        // its request (hyper-util cancels the protocol detection), so a client connected an
        // instant ago would lose a request it already sent. Let such connections get that far.
        tokio::time::sleep(SETTLE).await;
        notify.notify_waiters();
    });
    tokio::select! {
        result = server => result?,
        _ = async { stopping.notified().await; tokio::time::sleep(grace).await } => {
            tracing::warn!("shutdown grace period over; closing remaining connections");
        }
    }
    rotation.abort();
    logout_outbox.abort();
    for task in [housekeeping, checkpoints, metrics].into_iter().flatten() {
        task.abort();
    }
    // Write the audit events still queued before the pool closes.
    audit.flush().await;
    store.close().await;
    Ok(())
}

/// `/metrics` on its own listener (`metrics.listen`); a port that cannot be bound stops the
/// start, as the main one does.
async fn serve_metrics(state: &AppState) -> Result<tokio::task::JoinHandle<()>, ServeError> {
    let addr = state.config.metrics.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen {
            addr: format!("{addr} (metrics.listen)"),
            source,
        })?;
    tracing::info!(listen = %listener.local_addr()?, "metrics served at /metrics");
    let app = metrics_router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics listener failed");
        }
    }))
}

/// After SIGTERM, how long connections already taken may take to send their request before
/// graceful shutdown starts (new connections are refused meanwhile).
const SETTLE: Duration = Duration::from_secs(1);

/// The listener handed to axum. On shutdown it takes the connections the kernel has already
/// queued, then closes the socket: a new client is refused (so a load balancer safely tries
/// another replica) instead of being reset after it sent its request, and every connection that
/// was accepted is served.
struct DrainingListener {
    listener: Option<TcpListener>,
    queued: VecDeque<(TcpStream, SocketAddr)>,
    stop: watch::Receiver<bool>,
    addr: SocketAddr,
}

impl axum::serve::Listener for DrainingListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            if let Some(connection) = self.queued.pop_front() {
                return connection;
            }
            let Some(listener) = &self.listener else {
                // Closed: axum stops asking once its shutdown signal fires.
                return std::future::pending().await;
            };
            let accepted = tokio::select! {
                biased;
                _ = self.stop.changed() => None,
                accepted = listener.accept() => Some(accepted),
            };
            match accepted {
                None => self.close(),
                Some(Ok(connection)) => return connection,
                Some(Err(e)) if is_connection_error(&e) => {}
                Some(Err(e)) => {
                    // Out of file descriptors, for example: wait for some to be released.
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

impl DrainingListener {
    /// Accept what is queued without waiting, then close the socket.
    fn close(&mut self) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        // Non-blocking, so accept returns WouldBlock once the queue is empty.
        let Ok(listener) = listener.into_std() else {
            return;
        };
        loop {
            match listener.accept() {
                Ok((stream, peer)) => {
                    let stream = stream
                        .set_nonblocking(true)
                        .and_then(|()| TcpStream::from_std(stream));
                    if let Ok(stream) = stream {
                        self.queued.push_back((stream, peer));
                    }
                }
                Err(e) if is_connection_error(&e) => {}
                Err(_) => break,
            }
        }
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
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
