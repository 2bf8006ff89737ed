//! `GET /metrics`: Prometheus metrics of this replica, in the OpenMetrics text format. Mounted
//! at the root only (one process, one set of metrics), and only with `metrics.enabled`.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::Error;
use crate::metrics::CONTENT_TYPE;
use crate::state::AppState;

pub async fn metrics(State(state): State<AppState>) -> Result<Response, Error> {
    // Pool gauges are read now, not tracked on every checkout.
    let (open, idle) = state.store.pool_stats();
    state.metrics.set_pool(open, idle);
    let body = state.metrics.encode().map_err(Error::internal)?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response())
}
